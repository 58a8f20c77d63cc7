package kubelet

import (
	corev1 "k8s.io/api/core/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/skiffhq/skiff/quota"
)

// podResources is a pod's cgroup budget, as Kubernetes sizes the pod cgroup: its
// effective limits (component-helpers' PodLimits: the app containers' and sidecars'
// added up, or what an init container needs with the sidecars started before it, if
// that is more, and the pod's overhead, its RuntimeClass's, beyond them), unlimited
// when a container has no limit; cpu requests likewise.
func podResources(spec *corev1.PodSpec) PodResources {
	pr := PodResources{QOSClass: string(quota.QOSClass(spec))}
	pod := &corev1.Pod{Spec: *spec}
	cpuLimited, memLimited := true, true
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range list {
			_, cpu := list[i].Resources.Limits[corev1.ResourceCPU]
			_, mem := list[i].Resources.Limits[corev1.ResourceMemory]
			cpuLimited, memLimited = cpuLimited && cpu, memLimited && mem
		}
	}
	limits := resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{})
	if q, ok := limits[corev1.ResourceCPU]; ok && cpuLimited {
		pr.CPUMillis = q.MilliValue()
	}
	if q, ok := limits[corev1.ResourceMemory]; ok && memLimited {
		pr.MemoryBytes = q.Value()
	}
	if q, ok := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})[corev1.ResourceCPU]; ok {
		pr.CPURequestMillis = q.MilliValue()
	}
	return pr
}
