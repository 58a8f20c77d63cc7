package scheduler

import (
	"fmt"
	"maps"
	"sync"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/kinds"
)

// Cache is the scheduler's view of the nodes and of the pods counted on them: the
// bound pods the watch reports, and the pods this scheduler assumed onto a node before
// their binding is confirmed (so that the next cycle counts them at once). An assumed
// pod becomes confirmed when the watch reports it bound; Forget undoes an assumption
// whose binding failed. Pods that finished (Succeeded, Failed) or were deleted no
// longer count.
type Cache struct {
	mu    sync.RWMutex
	nodes map[string]*NodeInfo
	// list holds the nodes that exist (Node != nil), in a stable order the framework's
	// sampling rotates through.
	list []*NodeInfo
	pods map[string]*podState
	// idx indexes the counted pods, their affinity terms, the nodes' labels and the
	// namespaces' labels (index.go).
	idx *index
	// vols reads claims, volumes and classes (the volume binding filter); nil without
	// their informers.
	vols *Volumes
	// nominated holds the pods that preempted others, by key, with the node they wait
	// for: filtering counts them there for pods of no higher priority (Kubernetes'
	// nominator), so that the room their victims leave is theirs.
	nominated map[string]nomination
}

type nomination struct {
	info *PodInfo
	node string
}

// Nominate reserves node for pi, which preempted pods there.
func (c *Cache) Nominate(pi *PodInfo, node string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.nominated == nil {
		c.nominated = map[string]nomination{}
	}
	c.nominated[pi.Key] = nomination{info: pi, node: node}
}

// ForgetNomination drops the pod with key's reservation: placed, or deleted.
func (c *Cache) ForgetNomination(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.nominated, key)
}

// withNominated is, for the nodes where pods of at least pi's priority (other than pi)
// are nominated, a copy of the node holding them too; nil when there are none, as
// while nothing preempts. The caller holds the lock.
func (c *Cache) withNominated(pi *PodInfo) map[string]*NodeInfo {
	if len(c.nominated) == 0 {
		return nil
	}
	prio := podPriority(pi.Pod)
	var out map[string]*NodeInfo
	for key, n := range c.nominated {
		ni := c.nodes[n.node]
		if key == pi.Key || ni == nil || ni.Node == nil || podPriority(n.info.Pod) < prio {
			continue
		}
		if out == nil {
			out = map[string]*NodeInfo{}
		}
		sim, ok := out[n.node]
		if !ok {
			sim = ni.without(nil)
			out[n.node] = sim
		}
		sim.AddPod(n.info)
	}
	return out
}

// SetVolumes gives the cache what the volume binding filter reads.
func (c *Cache) SetVolumes(v *Volumes) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.vols = v
}

// volumes is what SetVolumes gave; PreFilter calls it with the cache locked.
func (c *Cache) volumes() *Volumes { return c.vols }

type podState struct {
	info    *PodInfo
	node    string
	assumed bool
	// ni is the NodeInfo the pod is counted on.
	ni *NodeInfo
	// groups are the term groups of the pod's affinity terms (index.go).
	groups []*termGroup
}

// NewCache makes an empty cache.
func NewCache() *Cache {
	return &Cache{nodes: map[string]*NodeInfo{}, pods: map[string]*podState{}, idx: newIndex()}
}

// AddNode adds or updates a node.
func (c *Cache) AddNode(node *corev1.Node) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni, ok := c.nodes[node.Name]
	if !ok {
		ni = NewNodeInfo(node)
		c.nodes[node.Name] = ni
		c.idx.addNode(ni, node.Labels)
	} else {
		existed, old := ni.Node != nil, nodeLabelsOf(ni)
		ni.SetNode(node)
		if !existed || !maps.Equal(old, node.Labels) {
			if existed {
				c.idx.removeNode(ni, old)
			}
			c.idx.addNode(ni, node.Labels)
			c.recountPods(ni, old, node.Labels)
		}
	}
	if ni.index < 0 {
		ni.index = len(c.list)
		c.list = append(c.list, ni)
	}
}

// UpdateNode is AddNode.
func (c *Cache) UpdateNode(node *corev1.Node) { c.AddNode(node) }

// RemoveNode stops offering a node. Pods still counted on it keep counting, should it
// come back, until they go.
func (c *Cache) RemoveNode(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ni, ok := c.nodes[name]
	if !ok || ni.Node == nil {
		return
	}
	c.unlist(ni)
	old := ni.Node.Labels
	ni.Node = nil
	c.idx.removeNode(ni, old)
	c.recountPods(ni, old, nil)
	if ni.NumPods() == 0 {
		delete(c.nodes, name)
	}
}

// recountPods moves the terms of the pods on ni from the domains of its old labels to
// those of its new ones.
func (c *Cache) recountPods(ni *NodeInfo, old, labels map[string]string) {
	for key := range ni.pods {
		if ps, ok := c.pods[key]; ok && len(ps.groups) > 0 {
			c.idx.countGroups(ps, old, -1)
			c.idx.countGroups(ps, labels, 1)
		}
	}
}

func (c *Cache) unlist(ni *NodeInfo) {
	if ni.index < 0 {
		return
	}
	last := len(c.list) - 1
	c.list[ni.index] = c.list[last]
	c.list[ni.index].index = ni.index
	c.list[last] = nil
	c.list = c.list[:last]
	ni.index = -1
}

// nodeFor returns the NodeInfo of name, making a placeholder (no Node) when a pod
// names a node the cache has not seen.
func (c *Cache) nodeFor(name string) *NodeInfo {
	ni, ok := c.nodes[name]
	if !ok {
		ni = &NodeInfo{Name: name, pods: map[string]*PodInfo{}, ports: map[kinds.HostPort]int{}, owners: map[string]int{}, index: -1}
		c.nodes[name] = ni
	}
	return ni
}

// addToNode counts ps on its node, and indexes it.
func (c *Cache) addToNode(ps *podState) {
	ps.ni = c.nodeFor(ps.node)
	ps.ni.AddPod(ps.info)
	c.idx.addPod(ps)
}

func (c *Cache) removeFromNode(ps *podState) {
	c.idx.removePod(ps)
	if ni := ps.ni; ni != nil {
		ni.RemovePod(ps.info.Key)
		if ni.Node == nil && ni.NumPods() == 0 && c.nodes[ps.node] == ni {
			delete(c.nodes, ps.node)
		}
	}
}

// setPodObject gives a counted pod its newer object, with the same requests and terms
// (a pod's spec does not change once bound), reindexing its labels if they changed.
func (c *Cache) setPodObject(ps *podState, pod *corev1.Pod) {
	relabel := !maps.Equal(ps.info.Pod.Labels, pod.Labels)
	if relabel {
		c.idx.removeLabels(ps, ps.info.Pod.Labels)
	}
	if ps.assumed {
		info := *ps.info // the scheduling cycle's, left as it was
		ps.info = &info
		// The node counts the same requests and now reads the newer object (a
		// victim's deletion, for preemption) and no longer holds the assumed one,
		// which would be a second object a pod for as long as it runs.
		ps.ni.replacePod(ps.info)
	}
	ps.info.Pod = pod
	if relabel {
		c.idx.addLabels(ps, pod.Labels)
	}
}

// Assume counts pi on node before its binding is confirmed.
func (c *Cache) Assume(pi *PodInfo, node string) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.assumeLocked(pi, node)
}

func (c *Cache) assumeLocked(pi *PodInfo, node string) error {
	if ps, ok := c.pods[pi.Key]; ok {
		return fmt.Errorf("assume pod %s on %s: it is already counted on %s", pi.Key, node, ps.node)
	}
	ps := &podState{info: pi, node: node, assumed: true}
	c.pods[pi.Key] = ps
	delete(c.nominated, pi.Key)
	c.addToNode(ps)
	return nil
}

// Forget undoes Assume: the binding failed. A pod the watch has confirmed meanwhile
// stays counted where it is bound.
func (c *Cache) Forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[key]
	if !ok || !ps.assumed {
		return
	}
	delete(c.pods, key)
	c.removeFromNode(ps)
}

// IsAssumed reports whether the pod with key is assumed and not yet confirmed.
func (c *Cache) IsAssumed(key string) bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ps, ok := c.pods[key]
	return ok && ps.assumed
}

// Counted reports where the pod with key is counted, if anywhere.
func (c *Cache) Counted(key string) (node string, assumed, ok bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ps, ok := c.pods[key]
	if !ok {
		return "", false, false
	}
	return ps.node, ps.assumed, true
}

// terminal reports whether a pod has finished and holds no resources.
func terminal(pod *corev1.Pod) bool {
	return pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
}

// SetPod records a pod's current state from the watch: a bound pod counts on its node
// (confirming an assumption, or moving it when another scheduler bound it elsewhere);
// a finished pod no longer counts; an unbound pod is not the cache's business unless
// it is assumed, in which case it stays assumed.
func (c *Cache) SetPod(pod *corev1.Pod) {
	node := pod.Spec.NodeName
	if node == "" {
		return
	}
	key := podKey(pod)
	if terminal(pod) {
		c.RemovePod(key)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	ps, ok := c.pods[key]
	if ok && ps.node == node && ps.info.Pod.UID == pod.UID {
		// Confirmed as assumed, or a status or label change: the requests and terms
		// are the same (a pod's spec does not change), so keep the parsed info and take
		// the newer object.
		c.setPodObject(ps, pod)
		ps.assumed = false
		return
	}
	pi := NewPodInfo(pod)
	if ok {
		c.removeFromNode(ps)
	}
	ps = &podState{info: pi, node: node}
	c.pods[key] = ps
	c.addToNode(ps)
}

// SetNamespace records a namespace's labels, which namespaceSelectors of affinity
// terms select by.
func (c *Cache) SetNamespace(ns *corev1.Namespace) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idx.namespaces[ns.Name] = labels.Set(ns.Labels)
}

// RemoveNamespace forgets a namespace's labels.
func (c *Cache) RemoveNamespace(name string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.idx.namespaces, name)
}

// RemovePod stops counting the pod with key (deleted, or finished).
func (c *Cache) RemovePod(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if ps, ok := c.pods[key]; ok {
		delete(c.pods, key)
		c.removeFromNode(ps)
	}
}

// NodeInfo returns a copy of a node's accounting, for inspection.
func (c *Cache) NodeInfo(name string) (Resources, int, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	ni, ok := c.nodes[name]
	if !ok {
		return Resources{}, 0, false
	}
	return ni.Requested, ni.NumPods(), true
}

// NumNodes is the number of nodes offered to pods.
func (c *Cache) NumNodes() int {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.list)
}

// scheduleAndAssume runs one cycle under the cache's lock, so that no pod lands on a
// node between its filtering and the assumption.
func (c *Cache) scheduleAndAssume(fw *Framework, pi *PodInfo) (Result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, err := fw.Schedule(pi, c)
	if err != nil {
		return res, err
	}
	return res, c.assumeLocked(pi, res.Node)
}
