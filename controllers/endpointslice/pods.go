package endpointslice

import (
	"maps"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
)

// ServicePods finds a Service's pods and the Services whose selector picks a pod,
// through indexes on the shared informers: what the EndpointSlice and the endpoints
// controllers both follow.
type ServicePods struct {
	Services *cache.Lister[*corev1.Service]
	Pods     *cache.Lister[*corev1.Pod]
	synced   []interface{ HasSynced() bool }
	svcInf   *cache.Informer[*corev1.Service]
	podInf   *cache.Informer[*corev1.Pod]
}

// bySelector indexes Services with a selector under one of its labels, the first key's
// (cache.LabelValue), or "namespace/" for an empty selector (every pod of the namespace):
// a pod's change is matched only against the Services its labels could select, not
// against every Service of its namespace (1,000 Services × 10,000 pods at the start).
const bySelector = "selector"

func selectorIndex(s *corev1.Service) []string {
	if s.Spec.Selector == nil {
		return nil
	}
	if len(s.Spec.Selector) == 0 {
		return []string{s.Namespace + "/"}
	}
	k := slices.Min(slices.Collect(maps.Keys(s.Spec.Selector)))
	return []string{cache.LabelValue(s.Namespace, k, s.Spec.Selector[k])}
}

// NewServicePods indexes the factory's Service and pod informers.
func NewServicePods(f *cache.Factory) *ServicePods {
	svcInf := cache.InformerFor[*corev1.Service](f, "", client.ListOptions{})
	podInf := cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{})
	svcInf.AddIndexer(bySelector, selectorIndex)
	// A Service's pods are found through the labels index (Of).
	podInf.AddIndexer(cache.IndexLabels, cache.ByLabels[*corev1.Pod])
	return &ServicePods{Services: svcInf.Lister(), Pods: podInf.Lister(), svcInf: svcInf, podInf: podInf,
		synced: []interface{ HasSynced() bool }{svcInf, podInf}}
}

// HasSynced says whether both informers have listed.
func (sp *ServicePods) HasSynced() bool {
	for _, s := range sp.synced {
		if !s.HasSynced() {
			return false
		}
	}
	return true
}

// Watch calls changed with the key ("namespace/name") of every Service that changes and
// of every Service a pod's change may concern: those selecting it, before and after a
// change of its labels.
func (sp *ServicePods) Watch(changed func(key string)) {
	svcChanged := func(s *corev1.Service) { changed(cache.Key(s)) }
	sp.svcInf.AddHandler(cache.Handler[*corev1.Service]{OnAdd: svcChanged,
		OnUpdate: func(_, s *corev1.Service) { svcChanged(s) }, OnDelete: svcChanged})
	podChanged := func(pod *corev1.Pod) {
		for _, s := range sp.Selecting(pod) {
			changed(cache.Key(s))
		}
	}
	sp.podInf.AddHandler(cache.Handler[*corev1.Pod]{
		OnAdd: podChanged,
		OnUpdate: func(old, p *corev1.Pod) {
			if !equality.Semantic.DeepEqual(old.Labels, p.Labels) {
				podChanged(old)
			}
			podChanged(p)
		},
		OnDelete: podChanged,
	})
}

// Selecting lists the Services whose selector picks pod.
func (sp *ServicePods) Selecting(pod *corev1.Pod) []*corev1.Service {
	set := labels.Set(pod.Labels)
	candidates := sp.Services.ByIndex(bySelector, pod.Namespace+"/")
	for k, v := range pod.Labels {
		candidates = append(candidates, sp.Services.ByIndex(bySelector, cache.LabelValue(pod.Namespace, k, v))...)
	}
	var out []*corev1.Service
	for _, s := range candidates {
		if labels.SelectorFromValidatedSet(s.Spec.Selector).Matches(set) {
			out = append(out, s)
		}
	}
	return out
}

// Of lists the pods svc's selector picks; svc must have a selector.
func (sp *ServicePods) Of(svc *corev1.Service) []*corev1.Pod {
	return sp.Pods.ListSelected(svc.Namespace, svc.Spec.Selector)
}

// HasEndpoint says whether pod has an endpoint (Kubernetes' ShouldPodBeInEndpoints): an
// address, a phase not final, and, unless includeTerminating, no deletion under way.
func HasEndpoint(pod *corev1.Pod, includeTerminating bool) bool {
	if pod.Status.PodIP == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	return includeTerminating || pod.DeletionTimestamp == nil
}

// Hostname is the hostname pod's endpoint has in svc: the pod's own when its subdomain
// is the Service (Kubernetes' ShouldSetHostname), else "".
func Hostname(svc *corev1.Service, pod *corev1.Pod) string {
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name && pod.Namespace == svc.Namespace {
		return pod.Spec.Hostname
	}
	return ""
}

// FindPort is the port number pod serves sp's targetPort on (Kubernetes' FindPort): a
// number as is, a name the number of the pod's container port of that name and
// protocol; false when no container has it.
func FindPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, bool) {
	if sp.TargetPort.Type == intstr.Int {
		return sp.TargetPort.IntVal, true
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if p.Name == sp.TargetPort.StrVal && proto == sp.Protocol {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}
