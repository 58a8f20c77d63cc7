package kubelet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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
