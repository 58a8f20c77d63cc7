package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/skiffhq/skiff/kinds"
)

// Resources is the part of a node's capacity the scheduler accounts: cpu in
// millicores, memory in bytes, a pod count, and extended resources (example.com/dongle)
// in their units. Quantities are converted into it once per pod and once per node update
// (as Kubernetes' framework.Resource), never per filter call.
type Resources struct {
	MilliCPU int64
	Memory   int64
	Pods     int64
	// Scalar holds the other resources by name: extended resources, which nodes
	// advertise and pods request in whole units. nil when there are none.
	Scalar map[corev1.ResourceName]int64
}

func (r *Resources) add(o Resources) {
	r.MilliCPU += o.MilliCPU
	r.Memory += o.Memory
	r.Pods += o.Pods
	for name, v := range o.Scalar {
		r.addScalar(name, v)
	}
}

func (r *Resources) sub(o Resources) {
	r.MilliCPU -= o.MilliCPU
	r.Memory -= o.Memory
	r.Pods -= o.Pods
	for name, v := range o.Scalar {
		r.addScalar(name, -v)
	}
}

func (r *Resources) addScalar(name corev1.ResourceName, v int64) {
	if r.Scalar == nil {
		r.Scalar = map[corev1.ResourceName]int64{}
	}
	if r.Scalar[name] += v; r.Scalar[name] == 0 {
		delete(r.Scalar, name)
	}
}

// scalar reports whether the scheduler counts name as a Scalar resource: whatever is
// not cpu, memory or pods, but for ephemeral-storage, which it does not account.
func scalar(name corev1.ResourceName) bool {
	switch name {
	case corev1.ResourceCPU, corev1.ResourceMemory, corev1.ResourcePods, corev1.ResourceEphemeralStorage:
		return false
	}
	return true
}

// Defaults Kubernetes assumes, for scoring only, for a pod that requests nothing, so
// that such pods still spread (its DefaultMilliCPURequest and DefaultMemoryRequest).
const (
	defaultMilliCPURequest = 100
	defaultMemoryRequest   = 200 << 20
	// defaultMaxPods is the pod capacity of a node whose allocatable does not say
	// (the kubelet's default --max-pods).
	defaultMaxPods = 110
)

// PodInfo is a pod with what the scheduler needs from it parsed once.
type PodInfo struct {
	Pod *corev1.Pod
	Key string
	// Requests sums the containers' requests; Pods is 1.
	Requests Resources
	// NonZero is Requests with defaults for what the pod leaves unset (scoring only).
	NonZero Resources
	Ports   []kinds.HostPort
	// Owner is the uid of the pod's controller owner, or "".
	Owner string
	// affinity is the pod's inter-pod affinity, parsed (nil: none); affinityErr says
	// why it could not be.
	affinity    *podAffinity
	affinityErr error
}

// resizing says whether a pod's status reports requests other than its spec's for a
// container (allocatedResources, resources): a resize not done yet. Other pods take the
// spec's sum, which is cheaper.
func resizing(pod *corev1.Pod) bool {
	cs := pod.Status.ContainerStatuses
	for i := range cs {
		if cs[i].AllocatedResources == nil && cs[i].Resources == nil {
			continue
		}
		var spec corev1.ResourceList
		if i < len(pod.Spec.Containers) && pod.Spec.Containers[i].Name == cs[i].Name {
			spec = pod.Spec.Containers[i].Resources.Requests
		} else {
			return true // not in the spec's order: let PodRequests match them
		}
		if !sameCPUMemory(spec, cs[i].AllocatedResources) || cs[i].Resources != nil && !sameCPUMemory(spec, cs[i].Resources.Requests) {
			return true
		}
	}
	return false
}

// sameCPUMemory: a and b ask for the same cpu and memory.
func sameCPUMemory(a, b corev1.ResourceList) bool {
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		x, y := a[name], b[name]
		if x.Cmp(y) != 0 {
			return false
		}
	}
	return true
}

// NewPodInfo reads what the scheduler needs from pod. Its requests are quantities the
// API server has already parsed; its affinity terms' selectors too, but should one not
// parse, the pod's cycles fail with the error (affinityErr).
func NewPodInfo(pod *corev1.Pod) *PodInfo {
	pi := &PodInfo{Pod: pod, Key: podKey(pod), Requests: Resources{Pods: 1}}
	var cpuSet, memSet bool
	for i := range pod.Spec.Containers {
		c := &pod.Spec.Containers[i]
		counted := 0
		if q, ok := c.Resources.Requests[corev1.ResourceCPU]; ok {
			pi.Requests.MilliCPU += q.MilliValue()
			cpuSet = true
			counted++
		}
		if q, ok := c.Resources.Requests[corev1.ResourceMemory]; ok {
			pi.Requests.Memory += q.Value()
			memSet = true
			counted++
		}
		if len(c.Resources.Requests) > counted {
			for name, q := range c.Resources.Requests {
				if scalar(name) {
					pi.Requests.addScalar(name, q.Value())
				}
			}
		}
	}
	pi.Ports = kinds.HostPorts(pod)
	if len(pod.Spec.InitContainers) > 0 || resizing(pod) {
		// Init containers run one at a time before the app containers, and sidecars
		// beside them: the pod needs Kubernetes' effective request, the larger of the
		// app containers' and sidecars' sum and what each init container needs with the
		// sidecars started before it (component-helpers' PodRequests). A pod being
		// resized counts each container's larger of its spec's and its allocated
		// requests (or its allocated ones alone when the resize is infeasible).
		pi.Requests = Resources{Pods: 1}
		for name, q := range resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{ExcludeOverhead: true, UseStatusResources: true}) {
			switch {
			case name == corev1.ResourceCPU:
				pi.Requests.MilliCPU, cpuSet = q.MilliValue(), true
			case name == corev1.ResourceMemory:
				pi.Requests.Memory, memSet = q.Value(), true
			case scalar(name):
				pi.Requests.addScalar(name, q.Value())
			}
		}
	}
	pi.NonZero = pi.Requests
	pi.NonZero.Scalar = nil // scoring weighs cpu and memory only
	if !cpuSet {
		pi.NonZero.MilliCPU = defaultMilliCPURequest
	}
	if !memSet {
		pi.NonZero.Memory = defaultMemoryRequest
	}
	// The pod's overhead (its RuntimeClass's) takes room on the node beyond its
	// containers' requests, as Kubernetes counts it.
	for name, q := range pod.Spec.Overhead {
		switch {
		case name == corev1.ResourceCPU:
			pi.Requests.MilliCPU += q.MilliValue()
			pi.NonZero.MilliCPU += q.MilliValue()
		case name == corev1.ResourceMemory:
			pi.Requests.Memory += q.Value()
			pi.NonZero.Memory += q.Value()
		case scalar(name):
			pi.Requests.addScalar(name, q.Value())
		}
	}
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil {
		pi.Owner = string(ref.UID)
	}
	pi.affinity, pi.affinityErr = newPodAffinity(pod)
	return pi
}

// NodeInfo is a node with the pods the scheduler counts on it: bound pods the watch
// reported and pods assumed by this scheduler. Node is nil for a node that was deleted
// while pods still counted on it.
type NodeInfo struct {
	Node *corev1.Node
	Name string

	Allocatable Resources
	// Requested sums the counted pods' requests; NonZeroRequested their NonZero.
	Requested        Resources
	NonZeroRequested Resources
	Ready            bool
	Unschedulable    bool
	// Taints are the node's NoSchedule and NoExecute taints.
	Taints []corev1.Taint

	pods  map[string]*PodInfo
	ports map[kinds.HostPort]int
	// owners counts the pods by controller owner uid.
	owners map[string]int
	// index is the node's place in the cache's node list, or -1.
	index int
}

// NewNodeInfo makes the NodeInfo of node with no pods.
func NewNodeInfo(node *corev1.Node) *NodeInfo {
	ni := &NodeInfo{pods: map[string]*PodInfo{}, ports: map[kinds.HostPort]int{}, owners: map[string]int{}, index: -1}
	ni.SetNode(node)
	return ni
}

// SetNode replaces the node, keeping the pods.
func (ni *NodeInfo) SetNode(node *corev1.Node) {
	ni.Node = node
	if node == nil {
		return
	}
	ni.Name = node.Name
	alloc := node.Status.Allocatable
	if len(alloc) == 0 {
		alloc = node.Status.Capacity
	}
	ni.Allocatable = Resources{Pods: defaultMaxPods}
	if q, ok := alloc[corev1.ResourceCPU]; ok {
		ni.Allocatable.MilliCPU = q.MilliValue()
	}
	if q, ok := alloc[corev1.ResourceMemory]; ok {
		ni.Allocatable.Memory = q.Value()
	}
	if q, ok := alloc[corev1.ResourcePods]; ok {
		ni.Allocatable.Pods = q.Value()
	}
	for name, q := range alloc {
		if scalar(name) {
			ni.Allocatable.addScalar(name, q.Value())
		}
	}
	ni.Ready = false
	for _, c := range node.Status.Conditions {
		if c.Type == corev1.NodeReady {
			ni.Ready = c.Status == corev1.ConditionTrue
		}
	}
	ni.Unschedulable = node.Spec.Unschedulable
	ni.Taints = ni.Taints[:0]
	for _, t := range node.Spec.Taints {
		if t.Effect == corev1.TaintEffectNoSchedule || t.Effect == corev1.TaintEffectNoExecute {
			ni.Taints = append(ni.Taints, t)
		}
	}
}

// NumPods is the number of pods counted on the node.
func (ni *NodeInfo) NumPods() int { return len(ni.pods) }

// OwnerCount is the number of counted pods whose controller owner has uid owner.
func (ni *NodeInfo) OwnerCount(owner string) int { return ni.owners[owner] }

// AddPod counts pi on the node.
func (ni *NodeInfo) AddPod(pi *PodInfo) {
	if _, dup := ni.pods[pi.Key]; dup {
		ni.RemovePod(pi.Key)
	}
	ni.pods[pi.Key] = pi
	ni.Requested.add(pi.Requests)
	ni.NonZeroRequested.add(pi.NonZero)
	for _, p := range pi.Ports {
		ni.ports[p]++
	}
	if pi.Owner != "" {
		ni.owners[pi.Owner]++
	}
}

// replacePod puts pi in the place of the counted PodInfo of its key, which asks for the
// same (a newer object of the same bound pod).
func (ni *NodeInfo) replacePod(pi *PodInfo) {
	if _, ok := ni.pods[pi.Key]; ok {
		ni.pods[pi.Key] = pi
	}
}

// RemovePod stops counting the pod with key.
func (ni *NodeInfo) RemovePod(key string) {
	pi, ok := ni.pods[key]
	if !ok {
		return
	}
	delete(ni.pods, key)
	ni.Requested.sub(pi.Requests)
	ni.NonZeroRequested.sub(pi.NonZero)
	for _, p := range pi.Ports {
		if ni.ports[p]--; ni.ports[p] <= 0 {
			delete(ni.ports, p)
		}
	}
	if pi.Owner != "" {
		if ni.owners[pi.Owner]--; ni.owners[pi.Owner] <= 0 {
			delete(ni.owners, pi.Owner)
		}
	}
}

// portInUse reports whether p conflicts with a port a counted pod holds: the same
// protocol and port, on the same address or where either side binds every address.
func (ni *NodeInfo) portInUse(p kinds.HostPort) bool {
	if len(ni.ports) == 0 {
		return false
	}
	if ni.ports[p] > 0 {
		return true
	}
	for used := range ni.ports {
		if used.Conflicts(p) {
			return true
		}
	}
	return false
}
