package quota

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// QOSClass is a pod's QoS class, computed as Kubernetes' GetPodQOS: BestEffort when no
// container (init or app) requests or limits cpu or memory; Guaranteed when every
// container limits both, with requests equal to limits; Burstable otherwise. The API
// server sets it on a new pod, the kubelet keeps it in the status.
func QOSClass(spec *corev1.PodSpec) corev1.PodQOSClass {
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
					addTo(requests, name, req)
				}
				if hasLim && !lim.IsZero() {
					any = true
					addTo(limits, name, lim)
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

func addTo(l corev1.ResourceList, name corev1.ResourceName, q resource.Quantity) {
	sum := l[name]
	sum.Add(q)
	l[name] = sum
}
