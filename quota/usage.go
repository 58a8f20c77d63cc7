// Package quota is Kubernetes' resource accounting, shared by the API server's admission
// and the controller-manager: what an object uses of a ResourceQuota (usage.go), whether
// a quota allows it (admit.go), and what a LimitRange makes of a pod (limitrange.go). It
// holds rules only: reading and writing the objects is its callers' job.
package quota

import (
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/skiffhq/skiff/kinds"
)

// The compute resources a pod is charged for, as Kubernetes names them in a quota.
const (
	Pods                     corev1.ResourceName = "pods"
	CPU                                          = corev1.ResourceCPU
	Memory                                       = corev1.ResourceMemory
	EphemeralStorage                             = corev1.ResourceEphemeralStorage
	RequestsCPU                                  = corev1.ResourceRequestsCPU
	RequestsMemory                               = corev1.ResourceRequestsMemory
	RequestsEphemeralStorage                     = corev1.ResourceRequestsEphemeralStorage
	LimitsCPU                                    = corev1.ResourceLimitsCPU
	LimitsMemory                                 = corev1.ResourceLimitsMemory
	LimitsEphemeralStorage                       = corev1.ResourceLimitsEphemeralStorage
)

// podCompute are the names a pod's requests and limits are charged under.
var podCompute = map[corev1.ResourceName]bool{
	CPU: true, Memory: true, EphemeralStorage: true, RequestsCPU: true, RequestsMemory: true,
	RequestsEphemeralStorage: true, LimitsCPU: true, LimitsMemory: true, LimitsEphemeralStorage: true,
}

// requestRequired are the names whose quota obliges every container to say how much it
// asks for: Kubernetes' backward-compatible rule for cpu and memory.
var requestRequired = map[corev1.ResourceName]bool{
	CPU: true, Memory: true, RequestsCPU: true, RequestsMemory: true, LimitsCPU: true, LimitsMemory: true,
}

// legacyCounts are Kubernetes' object counts named without "count/".
var legacyCounts = map[corev1.ResourceName]string{
	"configmaps": kinds.ConfigMap, "secrets": kinds.Secret, "resourcequotas": kinds.ResourceQuota,
	PersistentVolumeClaims: kinds.PersistentVolumeClaim, corev1.ResourceReplicationControllers: kinds.ReplicationController,
	corev1.ResourceServices: kinds.Service,
}

// serviceResources are what a Service is charged under beyond its counts: the node ports
// it asks for and whether it is a load balancer.
var serviceResources = map[corev1.ResourceName]bool{corev1.ResourceServicesNodePorts: true, corev1.ResourceServicesLoadBalancers: true}

// What a PersistentVolumeClaim is charged under, as Kubernetes names it: the claims'
// count and the storage they request, in all and per storage class
// (<class>.storageclass.storage.k8s.io/requests.storage and /persistentvolumeclaims).
const (
	PersistentVolumeClaims     = corev1.ResourcePersistentVolumeClaims
	RequestsStorage            = corev1.ResourceRequestsStorage
	storageClassSuffix         = ".storageclass.storage.k8s.io/"
	betaStorageClassAnnotation = "volume.beta.kubernetes.io/storage-class"
)

// storageClassResource is the name a claim of class is charged under for res.
func storageClassResource(class string, res corev1.ResourceName) corev1.ResourceName {
	return corev1.ResourceName(class + storageClassSuffix + string(res))
}

// claimResource reports whether name is what a PersistentVolumeClaim is charged under
// (other than its counts).
func claimResource(name corev1.ResourceName) bool {
	if name == RequestsStorage {
		return true
	}
	_, res, ok := strings.Cut(string(name), storageClassSuffix)
	return ok && (res == string(RequestsStorage) || res == string(PersistentVolumeClaims))
}

// ClaimClass is the storage class a claim asks for: the beta annotation, else
// spec.storageClassName ("" for none), as Kubernetes reads it.
func ClaimClass(pvc *corev1.PersistentVolumeClaim) string {
	if c, ok := pvc.Annotations[betaStorageClassAnnotation]; ok {
		return c
	}
	if pvc.Spec.StorageClassName != nil {
		return *pvc.Spec.StorageClassName
	}
	return ""
}

// CountName is the quota resource that counts objects of a kind: count/<plural> for the
// core group, count/<plural>.<group> for the others.
func CountName(info *kinds.Info) corev1.ResourceName {
	if info.Group == "" {
		return corev1.ResourceName("count/" + info.Plural)
	}
	return corev1.ResourceName("count/" + info.Plural + "." + info.Group)
}

// Tracked reports whether Skiff accounts for a quota resource: the pod's compute
// resources and count, and the count of any namespaced kind it serves.
func Tracked(name corev1.ResourceName) bool {
	if name == Pods || podCompute[name] || podExtended(name) || claimResource(name) || serviceResources[name] {
		return true
	}
	if _, ok := legacyCounts[name]; ok {
		return true
	}
	return countedKind(name) != nil
}

// podExtended reports whether name is an extended resource as a quota names what pods
// request of it, requests.<resource> (example.com/dongle is whole units, never
// overcommitted: Kubernetes charges its requests only).
func podExtended(name corev1.ResourceName) bool {
	res, ok := strings.CutPrefix(string(name), corev1.DefaultResourceRequestsPrefix)
	return ok && kinds.IsExtendedResourceName(corev1.ResourceName(res))
}

// countedKind is the namespaced kind a count/ resource counts, or nil.
func countedKind(name corev1.ResourceName) *kinds.Info {
	res, ok := strings.CutPrefix(string(name), "count/")
	if !ok {
		return nil
	}
	for _, in := range kinds.All() {
		if in.Namespaced && CountName(in) == corev1.ResourceName("count/"+res) {
			return in
		}
	}
	return nil
}

// Kinds are the kinds whose objects the resources of hard count or use: what a quota's
// usage is computed from.
func Kinds(hard corev1.ResourceList) []*kinds.Info {
	var out []*kinds.Info
	seen := map[*kinds.Info]bool{}
	add := func(in *kinds.Info) {
		if in != nil && !seen[in] {
			seen[in] = true
			out = append(out, in)
		}
	}
	for name := range hard {
		switch {
		case name == Pods || podCompute[name] || podExtended(name):
			add(kinds.MustLookup(kinds.Pod))
		case claimResource(name):
			add(kinds.MustLookup(kinds.PersistentVolumeClaim))
		case serviceResources[name]:
			add(kinds.MustLookup(kinds.Service))
		case legacyCounts[name] != "":
			add(kinds.MustLookup(legacyCounts[name]))
		default:
			add(countedKind(name))
		}
	}
	return out
}

// Usage is what obj, a stored object of its kind, uses of quota resources, at now: a pod
// that finished, or whose grace period ran out, uses nothing. Only the names that
// concern obj's kind appear.
func Usage(obj kinds.Object, now time.Time) corev1.ResourceList {
	info := kinds.Of(obj)
	one := *resource.NewQuantity(1, resource.DecimalSI)
	out := corev1.ResourceList{CountName(info): one}
	for name, kind := range legacyCounts {
		if kind == info.Kind {
			out[name] = one
		}
	}
	if pvc, ok := obj.(*corev1.PersistentVolumeClaim); ok {
		addClaimUsage(out, pvc)
		return out
	}
	if svc, ok := obj.(*corev1.Service); ok {
		addServiceUsage(out, svc)
		return out
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return out
	}
	if !Counts(pod, now) {
		return corev1.ResourceList{}
	}
	out[Pods] = one
	req, lim := PodRequests(pod), PodLimits(pod)
	// The pod's overhead (its RuntimeClass's) is charged too, as Kubernetes charges
	// it: to requests, and to the limits the pod has.
	req = Add(req, pod.Spec.Overhead)
	for name, q := range pod.Spec.Overhead {
		if l, ok := lim[name]; ok {
			l.Add(q)
			lim[name] = l
		}
	}
	for _, r := range []corev1.ResourceName{CPU, Memory, EphemeralStorage} {
		if q, ok := req[r]; ok {
			out[r] = q
			out["requests."+r] = q
		}
		if q, ok := lim[r]; ok {
			out["limits."+r] = q
		}
	}
	for r, q := range req {
		if kinds.IsExtendedResourceName(r) {
			out[corev1.DefaultResourceRequestsPrefix+r] = q
		}
	}
	return out
}

// addServiceUsage adds what a Service uses beyond its counts, as Kubernetes' evaluator
// charges it: a NodePort or LoadBalancer service one node port per port (a load
// balancer that allocates none, those it names), a LoadBalancer one load balancer.
func addServiceUsage(out corev1.ResourceList, svc *corev1.Service) {
	var nodePorts, balancers int64
	switch svc.Spec.Type {
	case corev1.ServiceTypeNodePort:
		nodePorts = int64(len(svc.Spec.Ports))
	case corev1.ServiceTypeLoadBalancer:
		balancers = 1
		nodePorts = int64(len(svc.Spec.Ports))
		if a := svc.Spec.AllocateLoadBalancerNodePorts; a != nil && !*a {
			nodePorts = 0
			for _, p := range svc.Spec.Ports {
				if p.NodePort != 0 {
					nodePorts++
				}
			}
		}
	}
	out[corev1.ResourceServicesNodePorts] = *resource.NewQuantity(nodePorts, resource.DecimalSI)
	out[corev1.ResourceServicesLoadBalancers] = *resource.NewQuantity(balancers, resource.DecimalSI)
}

// addClaimUsage adds what a PersistentVolumeClaim uses beyond its counts: the storage it
// requests (or was allocated, if more), rounded up to a whole byte, and its class's
// count and storage, as Kubernetes' evaluator charges them.
func addClaimUsage(out corev1.ResourceList, pvc *corev1.PersistentVolumeClaim) {
	class := ClaimClass(pvc)
	if class != "" {
		out[storageClassResource(class, PersistentVolumeClaims)] = *resource.NewQuantity(1, resource.DecimalSI)
	}
	req := pvc.Spec.Resources.Requests[corev1.ResourceStorage]
	if alloc, ok := pvc.Status.AllocatedResources[corev1.ResourceStorage]; ok && alloc.Cmp(req) > 0 {
		req = alloc
	}
	if req.IsZero() {
		return
	}
	req = req.DeepCopy()
	req.RoundUp(0)
	out[RequestsStorage] = req
	if class != "" {
		out[storageClassResource(class, RequestsStorage)] = req
	}
}

// Counts reports whether a pod uses its quota at now: Kubernetes' rule that a finished
// pod does not, nor one marked for deletion whose grace period ran out.
func Counts(pod *corev1.Pod, now time.Time) bool {
	if pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
		return false
	}
	if ts, grace := pod.DeletionTimestamp, pod.DeletionGracePeriodSeconds; ts != nil && grace != nil {
		if ts.Add(time.Duration(*grace) * time.Second).Before(now) {
			return false
		}
	}
	return true
}

// PodRequests is what a pod's containers ask for, as Kubernetes' quota counts it
// (component-helpers' PodRequests): its app containers' and sidecars' requests added up,
// or what an init container asks for with the sidecars started before it, if that is
// more. The pod's overhead is not in it (Usage adds it). A pod being resized counts each
// container's larger of its spec's and its allocated resources, as Kubernetes' quota
// does (UseStatusResources).
func PodRequests(pod *corev1.Pod) corev1.ResourceList {
	return resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{ExcludeOverhead: true, UseStatusResources: true})
}

// PodLimits is PodRequests for limits.
func PodLimits(pod *corev1.Pod) corev1.ResourceList {
	return resourcehelper.PodLimits(pod, resourcehelper.PodResourcesOptions{ExcludeOverhead: true, UseStatusResources: true})
}

// Add returns a + b, name by name.
func Add(a, b corev1.ResourceList) corev1.ResourceList {
	out := a.DeepCopy()
	if out == nil {
		out = corev1.ResourceList{}
	}
	for name, q := range b {
		sum := out[name]
		sum.Add(q)
		out[name] = sum
	}
	return out
}

// Mask keeps the names of list that names holds.
func Mask(list, names corev1.ResourceList) corev1.ResourceList {
	out := corev1.ResourceList{}
	for name, q := range list {
		if _, ok := names[name]; ok {
			out[name] = q
		}
	}
	return out
}

// Scopes are the quota scopes Skiff supports: Kubernetes' Terminating, NotTerminating,
// BestEffort, NotBestEffort and PriorityClass, which only pods match.
var Scopes = []corev1.ResourceQuotaScope{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating,
	corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopePriorityClass}

// Selectors are a quota's scopes and its scopeSelector's expressions together, a scope
// being the expression that it Exists (as Kubernetes reads them).
func Selectors(spec *corev1.ResourceQuotaSpec) []corev1.ScopedResourceSelectorRequirement {
	var out []corev1.ScopedResourceSelectorRequirement
	for _, s := range spec.Scopes {
		out = append(out, corev1.ScopedResourceSelectorRequirement{ScopeName: s, Operator: corev1.ScopeSelectorOpExists})
	}
	if spec.ScopeSelector != nil {
		out = append(out, spec.ScopeSelector.MatchExpressions...)
	}
	return out
}

// Matches reports whether a quota concerns obj: a quota without scopes concerns every
// object of its namespace, one with scopes (or a scopeSelector) only the pods that
// match them all.
func Matches(q *corev1.ResourceQuota, obj kinds.Object) bool {
	if len(q.Spec.Scopes) == 0 && q.Spec.ScopeSelector == nil {
		return true
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return false
	}
	for _, s := range Selectors(&q.Spec) {
		if !matchesScope(s, pod) {
			return false
		}
	}
	return true
}

func matchesScope(s corev1.ScopedResourceSelectorRequirement, pod *corev1.Pod) bool {
	terminating := pod.Spec.ActiveDeadlineSeconds != nil && *pod.Spec.ActiveDeadlineSeconds >= 0
	switch s.ScopeName {
	case corev1.ResourceQuotaScopeTerminating:
		return terminating
	case corev1.ResourceQuotaScopeNotTerminating:
		return !terminating
	case corev1.ResourceQuotaScopeBestEffort:
		return BestEffort(pod)
	case corev1.ResourceQuotaScopeNotBestEffort:
		return !BestEffort(pod)
	case corev1.ResourceQuotaScopePriorityClass:
		if s.Operator == corev1.ScopeSelectorOpExists {
			return pod.Spec.PriorityClassName != ""
		}
		// Kubernetes matches the other operators as a label selector on the one
		// label PriorityClass=<the pod's class, or "">.
		op, ok := selectorOps[s.Operator]
		if !ok {
			return false
		}
		req, err := labels.NewRequirement(string(s.ScopeName), op, s.Values)
		if err != nil {
			return false
		}
		return req.Matches(labels.Set{string(s.ScopeName): pod.Spec.PriorityClassName})
	}
	return false
}

// selectorOps are the scope selector's operators as label selection's.
var selectorOps = map[corev1.ScopeSelectorOperator]selection.Operator{
	corev1.ScopeSelectorOpIn: selection.In, corev1.ScopeSelectorOpNotIn: selection.NotIn,
	corev1.ScopeSelectorOpExists: selection.Exists, corev1.ScopeSelectorOpDoesNotExist: selection.DoesNotExist,
}

// BestEffort reports whether a pod is of Kubernetes' BestEffort QoS class: none of its
// containers asks for or is limited in cpu or memory.
func BestEffort(pod *corev1.Pod) bool {
	for _, list := range []corev1.ResourceList{PodRequests(pod), PodLimits(pod)} {
		for name, q := range list {
			if (name == CPU || name == Memory) && !q.IsZero() {
				return false
			}
		}
	}
	return true
}

// ScopeAllows reports whether a quota with scope may limit resource name, as Kubernetes
// says: BestEffort pods are counted only, the other scopes limit pods' count and compute.
func ScopeAllows(s corev1.ResourceQuotaScope, name corev1.ResourceName) bool {
	if name == Pods || name == "count/pods" {
		return true
	}
	return s != corev1.ResourceQuotaScopeBestEffort && podCompute[name] && !strings.Contains(string(name), "ephemeral-storage")
}
