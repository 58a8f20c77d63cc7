package scheduler

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// Builders for test objects.

type nodeOpt func(*corev1.Node)

func makeNode(name, cpu, mem string, opts ...nodeOpt) *corev1.Node {
	n := &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{}},
		Status: corev1.NodeStatus{
			Allocatable: corev1.ResourceList{
				corev1.ResourceCPU:    resource.MustParse(cpu),
				corev1.ResourceMemory: resource.MustParse(mem),
				corev1.ResourcePods:   resource.MustParse("110"),
			},
			Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue}},
		},
	}
	for _, o := range opts {
		o(n)
	}
	return n
}

func withLabel(k, v string) nodeOpt { return func(n *corev1.Node) { n.Labels[k] = v } }

func withTaint(k, v string, effect corev1.TaintEffect) nodeOpt {
	return func(n *corev1.Node) {
		n.Spec.Taints = append(n.Spec.Taints, corev1.Taint{Key: k, Value: v, Effect: effect})
	}
}

func withMaxPods(p string) nodeOpt {
	return func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourcePods] = resource.MustParse(p) }
}

func notReady(n *corev1.Node) { n.Status.Conditions[0].Status = corev1.ConditionFalse }

func cordoned(n *corev1.Node) { n.Spec.Unschedulable = true }

type podOpt func(*corev1.Pod)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func makePod(name, cpu, mem string, opts ...podOpt) *corev1.Pod {
	req := corev1.ResourceList{}
	if cpu != "" {
		req[corev1.ResourceCPU] = resource.MustParse(cpu)
	}
	if mem != "" {
		req[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: types.UID("uid-" + name),
			CreationTimestamp: metav1.NewTime(epoch)},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox",
			Resources: corev1.ResourceRequirements{Requests: req}}}},
		Status: corev1.PodStatus{Phase: corev1.PodPending},
	}
	for _, o := range opts {
		o(p)
	}
	return p
}

func onNode(n string) podOpt { return func(p *corev1.Pod) { p.Spec.NodeName = n } }

func withSelector(k, v string) podOpt {
	return func(p *corev1.Pod) {
		if p.Spec.NodeSelector == nil {
			p.Spec.NodeSelector = map[string]string{}
		}
		p.Spec.NodeSelector[k] = v
	}
}

func withToleration(k string, op corev1.TolerationOperator, v string, effect corev1.TaintEffect) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: k, Operator: op, Value: v, Effect: effect})
	}
}

func withHostPort(port int32, proto corev1.Protocol, ip string) podOpt {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Ports = append(c.Ports, corev1.ContainerPort{ContainerPort: port, HostPort: port, Protocol: proto, HostIP: ip})
	}
}

func ownedBy(uid string) podOpt {
	return func(p *corev1.Pod) {
		p.OwnerReferences = append(p.OwnerReferences, metav1.OwnerReference{
			APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "rs", UID: types.UID(uid), Controller: ptr.To(true)})
	}
}

func createdAt(sec int) podOpt {
	return func(p *corev1.Pod) {
		p.CreationTimestamp = metav1.NewTime(epoch.Add(time.Duration(sec) * time.Second))
	}
}

// nodeInfoWith builds a NodeInfo with pods counted on it.
func nodeInfoWith(n *corev1.Node, pods ...*corev1.Pod) *NodeInfo {
	ni := NewNodeInfo(n)
	for _, p := range pods {
		ni.AddPod(NewPodInfo(p))
	}
	return ni
}

// cacheWith makes a cache holding nodes, and pods bound to them.
func cacheWith(nodes []*corev1.Node, pods ...*corev1.Pod) *Cache {
	c := NewCache()
	for _, n := range nodes {
		c.AddNode(n)
	}
	for _, p := range pods {
		c.SetPod(p)
	}
	return c
}

// runFilter runs a filter plugin on one node as a cycle would: its PreFilter first,
// over a cache holding only that node and its pods.
func runFilter(pl FilterPlugin, pi *PodInfo, n *NodeInfo) *Status {
	state := &CycleState{}
	if pf, ok := pl.(PreFilterPlugin); ok {
		c := NewCache()
		if n.Node != nil {
			c.AddNode(n.Node)
		}
		for _, p := range n.pods {
			c.SetPod(p.Pod)
		}
		st := pf.PreFilter(state, pi, c)
		if st != nil && st.Code == Skip {
			return nil
		}
		if !st.IsSuccess() {
			return st
		}
		if ni := c.nodes[n.Name]; ni != nil {
			n = ni // the node as the cache lists it
		}
	}
	return pl.Filter(state, pi, n)
}

func withPodLabel(k, v string) podOpt {
	return func(p *corev1.Pod) {
		if p.Labels == nil {
			p.Labels = map[string]string{}
		}
		p.Labels[k] = v
	}
}

func inNamespace(ns string) podOpt { return func(p *corev1.Pod) { p.Namespace = ns } }

func affinityOf(p *corev1.Pod) *corev1.Affinity {
	if p.Spec.Affinity == nil {
		p.Spec.Affinity = &corev1.Affinity{}
	}
	return p.Spec.Affinity
}

// term is a pod affinity term over pods labelled k=v.
func term(topologyKey, k, v string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{TopologyKey: topologyKey,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}}
}

func withAffinity(topologyKey, k, v string) podOpt {
	return withAffinityTerm(term(topologyKey, k, v))
}

func withAffinityTerm(t corev1.PodAffinityTerm) podOpt {
	return func(p *corev1.Pod) { required, _ := podAffinityTerms(p, false); *required = append(*required, t) }
}

func withAntiAffinity(topologyKey, k, v string) podOpt {
	return withAntiAffinityTerm(term(topologyKey, k, v))
}

func withAntiAffinityTerm(t corev1.PodAffinityTerm) podOpt {
	return func(p *corev1.Pod) { required, _ := podAffinityTerms(p, true); *required = append(*required, t) }
}

// podAffinityTerms returns the pod's lists of required and preferred pod affinity (or
// anti-affinity) terms, to append to.
func podAffinityTerms(p *corev1.Pod, anti bool) (*[]corev1.PodAffinityTerm, *[]corev1.WeightedPodAffinityTerm) {
	a := affinityOf(p)
	if anti {
		if a.PodAntiAffinity == nil {
			a.PodAntiAffinity = &corev1.PodAntiAffinity{}
		}
		return &a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution, &a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution
	}
	if a.PodAffinity == nil {
		a.PodAffinity = &corev1.PodAffinity{}
	}
	return &a.PodAffinity.RequiredDuringSchedulingIgnoredDuringExecution, &a.PodAffinity.PreferredDuringSchedulingIgnoredDuringExecution
}

func withPreferredAffinity(weight int32, t corev1.PodAffinityTerm) podOpt {
	return func(p *corev1.Pod) {
		_, preferred := podAffinityTerms(p, false)
		*preferred = append(*preferred, corev1.WeightedPodAffinityTerm{Weight: weight, PodAffinityTerm: t})
	}
}

func withPreferredAntiAffinity(weight int32, t corev1.PodAffinityTerm) podOpt {
	return func(p *corev1.Pod) {
		_, preferred := podAffinityTerms(p, true)
		*preferred = append(*preferred, corev1.WeightedPodAffinityTerm{Weight: weight, PodAffinityTerm: t})
	}
}

// withNodeAffinity requires one of terms (ORed), each of requirements (ANDed).
func withNodeAffinity(terms ...corev1.NodeSelectorTerm) podOpt {
	return func(p *corev1.Pod) {
		a := affinityOf(p)
		if a.NodeAffinity == nil {
			a.NodeAffinity = &corev1.NodeAffinity{}
		}
		a.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{NodeSelectorTerms: terms}
	}
}

func withPreferredNodeAffinity(weight int32, t corev1.NodeSelectorTerm) podOpt {
	return func(p *corev1.Pod) {
		a := affinityOf(p)
		if a.NodeAffinity == nil {
			a.NodeAffinity = &corev1.NodeAffinity{}
		}
		a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution = append(a.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution,
			corev1.PreferredSchedulingTerm{Weight: weight, Preference: t})
	}
}

// expr is a node selector requirement.
func expr(key string, op corev1.NodeSelectorOperator, values ...string) corev1.NodeSelectorRequirement {
	return corev1.NodeSelectorRequirement{Key: key, Operator: op, Values: values}
}

// spread adds a topology spread constraint over pods labelled k=v.
func withSpread(maxSkew int32, topologyKey string, when corev1.UnsatisfiableConstraintAction, k, v string, opts ...func(*corev1.TopologySpreadConstraint)) podOpt {
	return func(p *corev1.Pod) {
		c := corev1.TopologySpreadConstraint{MaxSkew: maxSkew, TopologyKey: topologyKey, WhenUnsatisfiable: when,
			LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}}
		for _, o := range opts {
			o(&c)
		}
		p.Spec.TopologySpreadConstraints = append(p.Spec.TopologySpreadConstraints, c)
	}
}

func withRequest(name, q string) podOpt {
	return func(p *corev1.Pod) {
		c := &p.Spec.Containers[0]
		c.Resources.Requests[corev1.ResourceName(name)] = resource.MustParse(q)
		if c.Resources.Limits == nil {
			c.Resources.Limits = corev1.ResourceList{}
		}
		c.Resources.Limits[corev1.ResourceName(name)] = resource.MustParse(q)
	}
}

func withAllocatable(name, q string) nodeOpt {
	return func(n *corev1.Node) { n.Status.Allocatable[corev1.ResourceName(name)] = resource.MustParse(q) }
}

// hostNode is a node labelled with its host name and zone, as a kubelet labels it.
func hostNode(name, zone string, opts ...nodeOpt) *corev1.Node {
	return makeNode(name, "8", "8Gi", append([]nodeOpt{withLabel(corev1.LabelHostname, name), withLabel(corev1.LabelTopologyZone, zone)}, opts...)...)
}
