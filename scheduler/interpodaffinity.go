package scheduler

import (
	"math"

	corev1 "k8s.io/api/core/v1"
)

// InterPodAffinity places pods by the pods already on nodes, as Kubernetes' plugin of
// the name does (spec.affinity.podAffinity and podAntiAffinity). A term selects pods by
// labelSelector among the namespaces it names (namespaces and namespaceSelector; its
// own pod's namespace when it names none), and a topologyKey groups nodes into domains
// (a node, kubernetes.io/hostname; a zone, topology.kubernetes.io/zone): a node is in
// the domain of every node with the same value for the key.
//
// Filter rejects a node
//   - lacking a required affinity term's key, or in a domain holding no pod that matches
//     all the required affinity terms (unless no pod anywhere does and the pod matches
//     its own terms: the first replica of a group that wants to be together);
//   - in the domain of a pod that a required anti-affinity term selects;
//   - in the domain of a pod whose own required anti-affinity selects this pod.
//
// Score adds, for each domain, the weights of the preferred terms of the pod met by
// the pods there (anti-affinity's subtract), and those of the pods there whose terms
// select the pod (a required affinity weighs 1), and scales the sums to 0..100.
//
// What it reads is indexed by the cache (index.go): the pods a term selects are found
// through its labels, and the terms of the pods already counted are grouped and counted
// by domain, so a cycle costs the pods and domains it concerns, not the cluster's pods.
type InterPodAffinity struct{}

func (InterPodAffinity) Name() string { return NameInterPodAffinity }

// RetryOnPodAdded: a pod that waits for the pods its affinity asks for is retried when
// a pod is bound.
func (InterPodAffinity) RetryOnPodAdded() {}

// hardPodAffinityWeight is what a counted pod's required affinity term weighs in the
// score of the pods it selects (Kubernetes' default hardPodAffinityWeight).
const hardPodAffinityWeight = 1

const interPodAffinityScoreKey = NameInterPodAffinity + "/score"

// interPodAffinityState is what Filter reads: the verdicts of PreFilter, by node.
type interPodAffinityState struct {
	// affinity holds the nodes that, for every required affinity term, are in a
	// domain of the term's key holding a pod that matches all the terms; nil when the
	// pod has no required affinity (or when selfOnly).
	affinity nodeSet
	// selfOnly: no pod matches the required affinity terms but the pod itself does, so
	// any node with every term's key (keys) will do.
	selfOnly bool
	keys     []string
	// anti holds the nodes in a domain of a pod that a required anti-affinity term
	// selects; existing those in a domain of a placed pod whose own required
	// anti-affinity selects this pod. nil: none.
	anti, existing nodeSet
}

func (InterPodAffinity) PreFilter(state *CycleState, p *PodInfo, c *Cache) *Status {
	if p.affinityErr != nil {
		return NewStatus(Error, "parse pod affinity: "+p.affinityErr.Error())
	}
	s := &interPodAffinityState{}
	nodes := len(c.list)
	c.idx.eachGroupSelecting(p.Pod, 1<<requiredAntiAffinity, func(g *termGroup) {
		for v := range g.counts {
			if s.existing == nil {
				s.existing = newNodeSet(nodes)
			}
			c.idx.markDomain(s.existing, g.term.topologyKey, v)
		}
	})
	if aff := p.affinity; aff != nil {
		if terms := aff.required(); len(terms) > 0 {
			s.requiredAffinity(c, p.Pod, terms)
		}
		for i := range aff.requiredAnti() {
			t := &aff.requiredAnti()[i]
			marked := map[string]bool{}
			c.idx.eachSelected(c.idx.termNamespaces(t), t.selector, func(ps *podState) {
				if v, ok := nodeLabelsOf(ps.ni)[t.topologyKey]; ok && !marked[v] {
					marked[v] = true
					if s.anti == nil {
						s.anti = newNodeSet(nodes)
					}
					c.idx.markDomain(s.anti, t.topologyKey, v)
				}
			})
		}
	}
	if s.affinity == nil && !s.selfOnly && s.anti == nil && s.existing == nil {
		return NewStatus(Skip)
	}
	state.Write(NameInterPodAffinity, s)
	return nil
}

// requiredAffinity finds the domains, for each of the pod's required affinity terms,
// of the pods that match them all, and marks their nodes.
func (s *interPodAffinityState) requiredAffinity(c *Cache, pod *corev1.Pod, terms []affinityTerm) {
	domains := make([]map[string]bool, len(terms))
	for i := range domains {
		domains[i] = map[string]bool{}
	}
	found := false
	first := &terms[0]
	c.idx.eachSelected(c.idx.termNamespaces(first), first.selector, func(ps *podState) {
		labels := nodeLabelsOf(ps.ni)
		nsLabels := c.idx.namespaces[ps.info.Pod.Namespace]
		for i := 1; i < len(terms); i++ {
			if !terms[i].matches(ps.info.Pod, nsLabels) {
				return
			}
		}
		for i := range terms {
			if v, ok := labels[terms[i].topologyKey]; ok {
				domains[i][v] = true
				found = true
			}
		}
	})
	if !found {
		// The first of a group that wants to be together: it may go anywhere its terms'
		// keys are, if it matches its own terms (else nowhere).
		nsLabels := c.idx.namespaces[pod.Namespace]
		s.selfOnly = true
		for i := range terms {
			s.selfOnly = s.selfOnly && terms[i].matches(pod, nsLabels)
			s.keys = append(s.keys, terms[i].topologyKey)
		}
		if !s.selfOnly {
			s.affinity = newNodeSet(len(c.list))
		}
		return
	}
	for i := range terms {
		set := newNodeSet(len(c.list))
		for v := range domains[i] {
			c.idx.markDomain(set, terms[i].topologyKey, v)
		}
		if s.affinity == nil {
			s.affinity = set
		} else {
			s.affinity.intersect(set)
		}
	}
}

func (InterPodAffinity) Filter(state *CycleState, _ *PodInfo, n *NodeInfo) *Status {
	s, _ := state.Read(NameInterPodAffinity).(*interPodAffinityState)
	switch {
	case s == nil:
	case s.affinity != nil && !s.affinity.has(n.index):
		return unschedulable(ReasonAffinityRulesNotMatch)
	case s.selfOnly && !hasKeys(n.Node.Labels, s.keys):
		return unschedulable(ReasonAffinityRulesNotMatch)
	case s.anti != nil && s.anti.has(n.index):
		return unschedulable(ReasonAntiAffinityRulesNotMatch)
	case s.existing != nil && s.existing.has(n.index):
		return unschedulable(ReasonExistingAntiAffinityRulesNotMatch)
	}
	return nil
}

func hasKeys(l map[string]string, keys []string) bool {
	for _, k := range keys {
		if _, ok := l[k]; !ok {
			return false
		}
	}
	return true
}

// interPodAffinityScores is the score of each domain: topology key, then value.
type interPodAffinityScores map[string]map[string]int64

func (t interPodAffinityScores) add(key, value string, v int64) {
	m, ok := t[key]
	if !ok {
		m = map[string]int64{}
		t[key] = m
	}
	m[value] += v
}

func (InterPodAffinity) PreScore(state *CycleState, p *PodInfo, c *Cache, _ []*NodeInfo) *Status {
	if p.affinityErr != nil {
		return NewStatus(Error, "parse pod affinity: "+p.affinityErr.Error())
	}
	scores := interPodAffinityScores{}
	if aff := p.affinity; aff != nil {
		for kind, sign := range map[termKind]int64{preferredAffinity: 1, preferredAntiAffinity: -1} {
			for i := range aff.terms[kind] {
				t := &aff.terms[kind][i]
				c.idx.eachSelected(c.idx.termNamespaces(t), t.selector, func(ps *podState) {
					if v, ok := nodeLabelsOf(ps.ni)[t.topologyKey]; ok {
						scores.add(t.topologyKey, v, sign*int64(t.weight))
					}
				})
			}
		}
	}
	// The terms of counted pods that select this pod, each counted by domain.
	c.idx.eachGroupSelecting(p.Pod, 1<<requiredAffinity|1<<preferredAffinity|1<<preferredAntiAffinity, func(g *termGroup) {
		w := int64(g.term.weight)
		switch g.kind {
		case requiredAffinity:
			w = hardPodAffinityWeight
		case preferredAntiAffinity:
			w = -w
		}
		for v, n := range g.counts {
			scores.add(g.term.topologyKey, v, w*int64(n))
		}
	})
	if len(scores) == 0 {
		return NewStatus(Skip)
	}
	state.Write(interPodAffinityScoreKey, scores)
	return nil
}

// Score sums the scores of the node's domains; it may be negative until normalized.
func (InterPodAffinity) Score(state *CycleState, _ *PodInfo, n *NodeInfo) int64 {
	scores, _ := state.Read(interPodAffinityScoreKey).(interPodAffinityScores)
	var total int64
	for key, values := range scores {
		if v, ok := n.Node.Labels[key]; ok {
			total += values[v]
		}
	}
	return total
}

// NormalizeScores maps the lowest sum to 0 and the highest to MaxNodeScore.
func (InterPodAffinity) NormalizeScores(_ *CycleState, _ *PodInfo, _ []*NodeInfo, scores []int64) {
	lo, hi := int64(math.MaxInt64), int64(math.MinInt64)
	for _, s := range scores {
		lo, hi = min(lo, s), max(hi, s)
	}
	for i, s := range scores {
		if hi > lo {
			scores[i] = int64(float64(MaxNodeScore) * float64(s-lo) / float64(hi-lo))
		} else {
			scores[i] = 0
		}
	}
}
