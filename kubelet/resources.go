package kubelet

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	resourcehelper "k8s.io/component-helpers/resource"
)

// qosClass is the pod's QoS class, computed as Kubernetes' GetPodQOS: BestEffort when no
// container (init or app) requests or limits cpu or memory; Guaranteed when every
// container limits both, with requests equal to limits; Burstable otherwise.
func qosClass(spec *corev1.PodSpec) corev1.PodQOSClass {
	requests, limits := corev1.ResourceList{}, corev1.ResourceList{}
	guaranteed := true
	any := false
	for _, list := range [][]corev1.Container{spec.InitContainers, spec.Containers} {
		for i := range list {
			r := &list[i].Resources
			for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
				req, hasReq := r.Requests[name]
				lim, hasLim := r.Limits[name]
				if hasReq && !req.IsZero() {
					any = true
					add(requests, name, req)
				}
				if hasLim && !lim.IsZero() {
					any = true
					add(limits, name, lim)
				} else {
					guaranteed = false
				}
			}
		}
	}
	switch {
	case !any:
		return corev1.PodQOSBestEffort
	case guaranteed && len(limits) == 2:
		for name, req := range requests {
			if lim := limits[name]; lim.Cmp(req) != 0 {
				return corev1.PodQOSBurstable
			}
		}
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

func add(l corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
	sum := l[name]
	sum.Add(q)
	l[name] = sum
}

// podResources is a pod's cgroup budget, as Kubernetes sizes the pod cgroup: its
// effective limits (component-helpers' PodLimits: the app containers' and sidecars'
// added up, or what an init container needs with the sidecars started before it, if
// that is more, and the pod's overhead, its RuntimeClass's, beyond them), unlimited
// when a container has no limit; cpu requests likewise.
func podResources(spec *corev1.PodSpec) PodResources {
	pr := PodResources{QOSClass: string(qosClass(spec))}
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
