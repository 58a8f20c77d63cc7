package scheduler

import (
	"math"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// PodTopologySpread spreads pods over topology domains by the pod's
// topologySpreadConstraints, as Kubernetes' plugin of the name does. A constraint
// counts the pods of the pod's namespace that its labelSelector selects in each domain
// of its topologyKey (the nodes with the same value for that label); the domains are
// those of the nodes that carry every constraint's key and, by nodeAffinityPolicy
// (default Honor) and nodeTaintsPolicy (default Ignore), match the pod's node affinity
// and tolerate the node's taints.
//
// A DoNotSchedule constraint is a filter: placing the pod in a domain must not make that
// domain's count exceed the lowest count of any domain by more than maxSkew (the lowest
// is 0 while there are fewer domains than minDomains). A node without the key fails.
// A ScheduleAnyway constraint is a score: nodes in domains with fewer matching pods
// score higher.
//
// Spreading over every domain reads the cache's count of nodes by label rather than
// the nodes, unless a policy or a node lacking a key makes the domains depend on the
// pod; the matching pods are found through the cache's label index.
type PodTopologySpread struct{}

func (PodTopologySpread) Name() string { return NamePodTopologySpread }

// RetryOnPodAdded: a pod refused for skew may fit once a pod lands in another domain.
func (PodTopologySpread) RetryOnPodAdded() {}

const podTopologySpreadScoreKey = NamePodTopologySpread + "/score"

// spreadConstraint is a TopologySpreadConstraint, parsed.
type spreadConstraint struct {
	maxSkew     int32
	topologyKey string
	selector    labels.Selector
	minDomains  int32
	// honorAffinity and honorTaints are nodeAffinityPolicy and nodeTaintsPolicy Honor.
	honorAffinity, honorTaints bool
}

// spreadConstraints parses the pod's constraints of one kind (DoNotSchedule or
// ScheduleAnyway).
func spreadConstraints(pod *corev1.Pod, action corev1.UnsatisfiableConstraintAction) ([]spreadConstraint, error) {
	var out []spreadConstraint
	for i := range pod.Spec.TopologySpreadConstraints {
		tc := &pod.Spec.TopologySpreadConstraints[i]
		if tc.WhenUnsatisfiable != action {
			continue
		}
		sel, err := metav1.LabelSelectorAsSelector(tc.LabelSelector)
		if err != nil {
			return nil, err
		}
		c := spreadConstraint{maxSkew: tc.MaxSkew, topologyKey: tc.TopologyKey, selector: sel, minDomains: 1,
			honorAffinity: tc.NodeAffinityPolicy == nil || *tc.NodeAffinityPolicy == corev1.NodeInclusionPolicyHonor,
			honorTaints:   tc.NodeTaintsPolicy != nil && *tc.NodeTaintsPolicy == corev1.NodeInclusionPolicyHonor}
		if tc.MinDomains != nil {
			c.minDomains = *tc.MinDomains
		}
		out = append(out, c)
	}
	return out, nil
}

// spreadScope decides which nodes a pod's constraints count on.
type spreadScope struct {
	pod         *corev1.Pod
	constraints []spreadConstraint
	affinity    nodeaffinity.RequiredNodeAffinity
	// restricted: the pod has a nodeSelector or required node affinity.
	restricted bool
}

func newSpreadScope(pod *corev1.Pod, cs []spreadConstraint) *spreadScope {
	s := &spreadScope{pod: pod, constraints: cs, affinity: nodeaffinity.GetRequiredNodeAffinity(pod)}
	aff := pod.Spec.Affinity
	s.restricted = len(pod.Spec.NodeSelector) > 0 || (aff != nil && aff.NodeAffinity != nil &&
		aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution != nil)
	return s
}

// hasKeys reports whether a node's labels carry every constraint's key.
func (s *spreadScope) hasKeys(l map[string]string) bool {
	for i := range s.constraints {
		if _, ok := l[s.constraints[i].topologyKey]; !ok {
			return false
		}
	}
	return true
}

// includes reports whether constraint i counts on node n (which has every key) by its
// node inclusion policies.
func (s *spreadScope) includes(i int, n *NodeInfo) bool {
	c := &s.constraints[i]
	if c.honorAffinity && s.restricted {
		if ok, _ := s.affinity.Match(n.Node); !ok {
			return false
		}
	}
	if c.honorTaints {
		for j := range n.Taints {
			if !tolerated(s.pod.Spec.Tolerations, &n.Taints[j]) {
				return false
			}
		}
	}
	return true
}

// everyNode reports whether every node counts for every constraint: no policy narrows
// them and every node has every key. Then a constraint's domains are the values of
// its key in the cache's node index.
func (s *spreadScope) everyNode(c *Cache) bool {
	for i := range s.constraints {
		con := &s.constraints[i]
		if con.honorTaints || (con.honorAffinity && s.restricted) || c.idx.nodeKeys[con.topologyKey] != len(c.list) {
			return false
		}
	}
	return true
}

// eachCounted calls fn for every pod constraint i counts: of the pod's namespace,
// selected, not terminating, on a node that exists. A selector that selects every pod
// counts none, as in Kubernetes.
func (s *spreadScope) eachCounted(c *Cache, i int, fn func(ps *podState)) {
	sel := s.constraints[i].selector
	if sel.Empty() {
		return
	}
	c.idx.eachSelected([]string{s.pod.Namespace}, sel, func(ps *podState) {
		if ps.ni.Node != nil && ps.info.Pod.DeletionTimestamp == nil {
			fn(ps)
		}
	})
}

// podTopologySpreadState is what Filter reads.
type podTopologySpreadState struct {
	constraints []spreadConstraint
	// counts holds each constraint's matching pods by domain; least its lowest count
	// over its domains; self whether the pod matches it.
	counts []map[string]int
	least  []int
	self   []bool
}

// prepareSpread parses the pod's constraints of one kind into a scope, or says to skip
// them (none) or why it cannot.
func prepareSpread(pod *corev1.Pod, action corev1.UnsatisfiableConstraintAction) (*spreadScope, *Status) {
	cs, err := spreadConstraints(pod, action)
	if err != nil {
		return nil, NewStatus(Error, "parse topology spread constraints: "+err.Error())
	}
	if len(cs) == 0 {
		return nil, NewStatus(Skip)
	}
	return newSpreadScope(pod, cs), nil
}

func (PodTopologySpread) PreFilter(state *CycleState, p *PodInfo, c *Cache) *Status {
	scope, st := prepareSpread(p.Pod, corev1.DoNotSchedule)
	if st != nil {
		return st
	}
	cs := scope.constraints
	s := &podTopologySpreadState{constraints: cs, counts: make([]map[string]int, len(cs)),
		least: make([]int, len(cs)), self: make([]bool, len(cs))}
	domains := make([]int, len(cs))
	every := scope.everyNode(c)
	if every {
		for i := range cs {
			domains[i] = len(c.idx.nodeLabels[cs[i].topologyKey])
		}
	} else {
		seen := make([]map[string]bool, len(cs))
		for i := range seen {
			seen[i] = map[string]bool{}
		}
		for _, n := range c.list {
			if !scope.hasKeys(n.Node.Labels) {
				continue
			}
			for i := range cs {
				if scope.includes(i, n) {
					seen[i][n.Node.Labels[cs[i].topologyKey]] = true
				}
			}
		}
		for i := range cs {
			domains[i] = len(seen[i])
		}
	}
	podLabels := labels.Set(p.Pod.Labels)
	for i := range cs {
		counts := map[string]int{}
		scope.eachCounted(c, i, func(ps *podState) {
			n := ps.ni
			if !every && (!scope.hasKeys(n.Node.Labels) || !scope.includes(i, n)) {
				return
			}
			if v, ok := n.Node.Labels[cs[i].topologyKey]; ok {
				counts[v]++
			}
		})
		s.counts[i] = counts
		s.self[i] = cs[i].selector.Matches(podLabels)
		if domains[i] >= int(cs[i].minDomains) && len(counts) >= domains[i] {
			least := math.MaxInt
			for _, n := range counts {
				least = min(least, n)
			}
			s.least[i] = least
		}
	}
	state.Write(NamePodTopologySpread, s)
	return nil
}

func (PodTopologySpread) Filter(state *CycleState, _ *PodInfo, n *NodeInfo) *Status {
	s, _ := state.Read(NamePodTopologySpread).(*podTopologySpreadState)
	if s == nil {
		return nil
	}
	for i := range s.constraints {
		c := &s.constraints[i]
		v, ok := n.Node.Labels[c.topologyKey]
		if !ok {
			return unschedulable(ReasonTopologySpreadNodeLabelMissing)
		}
		skew := s.counts[i][v] - s.least[i]
		if s.self[i] {
			skew++
		}
		if skew > int(c.maxSkew) {
			return unschedulable(ReasonTopologySpreadConstraintsNotMatch)
		}
	}
	return nil
}

// podTopologySpreadScores is what Score reads.
type podTopologySpreadScores struct {
	constraints []spreadConstraint
	// ignored are the nodes lacking a constraint's key: they score 0.
	ignored map[*NodeInfo]bool
	// counts holds each constraint's matching pods by domain, but for a constraint
	// over kubernetes.io/hostname, whose counts are by node (perNode).
	counts  []map[string]int
	perNode []map[*NodeInfo]int
	// weight is each constraint's weight: log(domains + 2), so that a constraint over
	// many small domains does not drown one over a few large ones.
	weight []float64
}

func (PodTopologySpread) PreScore(state *CycleState, p *PodInfo, c *Cache, nodes []*NodeInfo) *Status {
	scope, st := prepareSpread(p.Pod, corev1.ScheduleAnyway)
	if st != nil {
		return st
	}
	cs := scope.constraints
	s := &podTopologySpreadScores{constraints: cs, ignored: map[*NodeInfo]bool{}, counts: make([]map[string]int, len(cs)),
		perNode: make([]map[*NodeInfo]int, len(cs)), weight: make([]float64, len(cs))}
	for i := range cs {
		s.counts[i] = map[string]int{}
	}
	for _, n := range nodes {
		if !scope.hasKeys(n.Node.Labels) {
			s.ignored[n] = true
			continue
		}
		for i := range cs {
			if cs[i].topologyKey != corev1.LabelHostname {
				s.counts[i][n.Node.Labels[cs[i].topologyKey]] = 0
			}
		}
	}
	for i := range cs {
		size := len(s.counts[i])
		if cs[i].topologyKey == corev1.LabelHostname {
			size = len(nodes) - len(s.ignored)
			s.perNode[i] = map[*NodeInfo]int{}
			scope.eachCounted(c, i, func(ps *podState) { s.perNode[i][ps.ni]++ })
		} else {
			scope.eachCounted(c, i, func(ps *podState) {
				n := ps.ni
				if !scope.hasKeys(n.Node.Labels) || !scope.includes(i, n) {
					return
				}
				// Only the domains of the nodes being scored matter.
				if v := n.Node.Labels[cs[i].topologyKey]; s.counts[i] != nil {
					if _, ok := s.counts[i][v]; ok {
						s.counts[i][v]++
					}
				}
			})
		}
		s.weight[i] = math.Log(float64(size + 2))
	}
	state.Write(podTopologySpreadScoreKey, s)
	return nil
}

// Score is, summed over the constraints, the matching pods in the node's domain
// weighted by the constraint's weight, plus maxSkew − 1: lower is better, until
// normalized.
func (PodTopologySpread) Score(state *CycleState, _ *PodInfo, n *NodeInfo) int64 {
	s, _ := state.Read(podTopologySpreadScoreKey).(*podTopologySpreadScores)
	if s == nil || s.ignored[n] {
		return 0
	}
	var score float64
	for i := range s.constraints {
		c := &s.constraints[i]
		var count int
		if c.topologyKey == corev1.LabelHostname {
			count = s.perNode[i][n]
		} else {
			count = s.counts[i][n.Node.Labels[c.topologyKey]]
		}
		score += float64(count)*s.weight[i] + float64(c.maxSkew-1)
	}
	return int64(math.Round(score))
}

// NormalizeScores turns the counts into preferences: the node with the fewest
// matching pods scores MaxNodeScore; ignored nodes score 0.
func (PodTopologySpread) NormalizeScores(state *CycleState, _ *PodInfo, nodes []*NodeInfo, scores []int64) {
	s, _ := state.Read(podTopologySpreadScoreKey).(*podTopologySpreadScores)
	if s == nil {
		return
	}
	lo, hi := int64(math.MaxInt64), int64(0)
	for i, n := range nodes {
		if s.ignored[n] {
			continue
		}
		lo, hi = min(lo, scores[i]), max(hi, scores[i])
	}
	for i, n := range nodes {
		switch {
		case s.ignored[n]:
			scores[i] = 0
		case hi == 0:
			scores[i] = MaxNodeScore
		default:
			scores[i] = MaxNodeScore * (hi + lo - scores[i]) / hi
		}
	}
}
