package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// A pod being resized takes, for each container, the larger of its spec's and its
// allocated requests (Kubernetes' UseStatusResources); the allocated ones alone while
// the resize is infeasible; the spec's once the status agrees.
func TestPodInfoCountsAllocatedWhileResizing(t *testing.T) {
	pod := func(spec, allocated string, infeasible bool) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app",
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(spec)}}}}}}
		if allocated != "" {
			a := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(allocated)}
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", AllocatedResources: a, Resources: &corev1.ResourceRequirements{Requests: a}}}
		}
		if infeasible {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodResizePending, Status: corev1.ConditionTrue, Reason: corev1.PodReasonInfeasible}}
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want int64
	}{
		{"no status", pod("500m", "", false), 500},
		{"status agrees", pod("500m", "500m", false), 500},
		{"resized up, not allocated yet", pod("2", "500m", false), 2000},
		{"resized down, not applied yet", pod("200m", "500m", false), 500},
		{"infeasible: the allocated", pod("8", "500m", true), 500},
	} {
		if got := NewPodInfo(tc.pod).Requests.MilliCPU; got != tc.want {
			t.Errorf("%s: %dm, want %dm", tc.name, got, tc.want)
		}
	}
}
