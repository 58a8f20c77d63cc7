package kubelet

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
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

// podResources is a pod's cgroup budget, as Kubernetes sizes the pod cgroup: the sum of
// its app containers' limits, or of any init container's if that is more (they run
// alone), unlimited when a container has no limit; cpu requests likewise.
func podResources(spec *corev1.PodSpec) PodResources {
	pr := PodResources{QOSClass: string(qosClass(spec))}
	cpuLimited, memLimited := true, true
	var cpu, mem, req int64
	for i := range spec.Containers {
		r := &spec.Containers[i].Resources
		if q, ok := r.Limits[corev1.ResourceCPU]; ok {
			cpu += q.MilliValue()
		} else {
			cpuLimited = false
		}
		if q, ok := r.Limits[corev1.ResourceMemory]; ok {
			mem += q.Value()
		} else {
			memLimited = false
		}
		if q, ok := r.Requests[corev1.ResourceCPU]; ok {
			req += q.MilliValue()
		}
	}
	for i := range spec.InitContainers {
		r := &spec.InitContainers[i].Resources
		if q, ok := r.Limits[corev1.ResourceCPU]; ok {
			cpu = max(cpu, q.MilliValue())
		} else {
			cpuLimited = false
		}
		if q, ok := r.Limits[corev1.ResourceMemory]; ok {
			mem = max(mem, q.Value())
		} else {
			memLimited = false
		}
		if q, ok := r.Requests[corev1.ResourceCPU]; ok {
			req = max(req, q.MilliValue())
		}
	}
	// The pod's overhead (its RuntimeClass's) is the pod's own, beyond its containers'.
	overCPU, overMem := spec.Overhead[corev1.ResourceCPU], spec.Overhead[corev1.ResourceMemory]
	if cpuLimited {
		pr.CPUMillis = cpu + overCPU.MilliValue()
	}
	if memLimited {
		pr.MemoryBytes = mem + overMem.Value()
	}
	pr.CPURequestMillis = req + overCPU.MilliValue()
	return pr
}
