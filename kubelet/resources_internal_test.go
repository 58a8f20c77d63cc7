package kubelet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
	"k8s.io/utils/ptr"
)

// The pod's cgroup budget counts a sidecar beside the app containers, and with the init
// containers after it; one container without a limit leaves the pod unlimited.
func TestPodResourcesSidecars(t *testing.T) {
	ctr := func(name, cpu, mem string) corev1.Container {
		return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse(mem)},
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}
	}
	side := ctr("side", "500m", "100Mi")
	side.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	spec := &corev1.PodSpec{InitContainers: []corev1.Container{ctr("first", "1200m", "1Gi"), side, ctr("after", "1", "2Gi")},
		Containers: []corev1.Container{ctr("app", "1", "256Mi")}}
	if got, want := podResources(spec), (PodResources{QOSClass: "Guaranteed", CPUMillis: 1500, MemoryBytes: 2148 << 20, CPURequestMillis: 1500}); got != want {
		t.Errorf("podResources = %+v, want %+v", got, want)
	}
	spec.Containers[0].Resources.Limits = nil
	if got := podResources(spec); got.CPUMillis != 0 || got.MemoryBytes != 0 {
		t.Errorf("with a container unlimited: %+v", got)
	}
}

// podEphemeralLimit answers as component-helpers' PodLimits does, and for a pod with no
// ephemeral-storage limit (most pods, asked at every sync) without allocating.
func TestPodEphemeralLimit(t *testing.T) {
	limited := func(name, storage string) corev1.Container {
		return corev1.Container{Name: name, Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{
			corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceEphemeralStorage: resource.MustParse(storage)}}}
	}
	plain := corev1.Container{Name: "plain", Resources: corev1.ResourceRequirements{
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("1Gi")}}}
	side := limited("side", "300Mi")
	side.RestartPolicy = ptr.To(corev1.ContainerRestartPolicyAlways)
	for _, tc := range []struct {
		name string
		spec corev1.PodSpec
		want string // "": none
	}{
		{"no limits", corev1.PodSpec{Containers: []corev1.Container{{Name: "app"}}}, ""},
		{"cpu and memory only", corev1.PodSpec{InitContainers: []corev1.Container{plain}, Containers: []corev1.Container{plain}}, ""},
		{"an app container's", corev1.PodSpec{Containers: []corev1.Container{plain, limited("app", "1Gi")}}, "1Gi"},
		{"two app containers'", corev1.PodSpec{Containers: []corev1.Container{limited("a", "1Gi"), limited("b", "512Mi")}}, "1536Mi"},
		{"an init container's, larger", corev1.PodSpec{InitContainers: []corev1.Container{limited("init", "4Gi")},
			Containers: []corev1.Container{limited("app", "1Gi")}}, "4Gi"},
		{"an init container's only", corev1.PodSpec{InitContainers: []corev1.Container{limited("init", "2Gi")}, Containers: []corev1.Container{plain}}, "2Gi"},
		{"a sidecar's with the app's", corev1.PodSpec{InitContainers: []corev1.Container{side}, Containers: []corev1.Container{limited("app", "1Gi")}}, "1324Mi"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := podEphemeralLimit(&tc.spec)
			ref, refOK := resourcehelper.PodLimits(&corev1.Pod{Spec: tc.spec}, resourcehelper.PodResourcesOptions{})[corev1.ResourceEphemeralStorage]
			if ok != refOK || got.Cmp(ref) != 0 {
				t.Errorf("podEphemeralLimit = %v, %v; PodLimits says %v, %v", got.String(), ok, ref.String(), refOK)
			}
			if tc.want == "" {
				if ok {
					t.Errorf("limited to %v, want no limit", got.String())
				}
				if n := testing.AllocsPerRun(100, func() { podEphemeralLimit(&tc.spec) }); n != 0 {
					t.Errorf("%v allocations a call for a pod without a limit, want none", n)
				}
				return
			}
			if want := resource.MustParse(tc.want); !ok || got.Cmp(want) != 0 {
				t.Errorf("limited to %v (%v), want %v", got.String(), ok, tc.want)
			}
		})
	}
}
