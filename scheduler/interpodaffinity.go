package scheduler

import (
	"math"
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

type topologyPair struct{ key, value string }

// interPodAffinityState is what Filter reads.
type interPodAffinityState struct {
	aff *podAffinity
	// affinity counts the pods matching all the required affinity terms, by the domain
	// of each term's key; anti the pods each required anti-affinity term selects, by
	// the domain of its key.
	affinity, anti map[topologyPair]int
	// selfMatch: the pod matches all its own required affinity terms.
	selfMatch bool
	// existing are the required anti-affinity terms of counted pods that select the
	// pod, with their counts by domain.
	existing []*termGroup
}

func (InterPodAffinity) PreFilter(state *CycleState, p *PodInfo, c *Cache) *Status {
	if p.affinityErr != nil {
		return NewStatus(Error, "parse pod affinity: "+p.affinityErr.Error())
	}
	s := &interPodAffinityState{aff: p.affinity}
	c.idx.eachGroupSelecting(p.Pod, 1<<requiredAntiAffinity, func(g *termGroup) {
		if len(g.counts) > 0 {
			s.existing = append(s.existing, g)
		}
	})
	if s.aff == nil || (len(s.aff.required()) == 0 && len(s.aff.requiredAnti()) == 0) {
		if len(s.existing) == 0 {
			return NewStatus(Skip)
		}
		state.Write(NameInterPodAffinity, s)
		return nil
	}
	if terms := s.aff.required(); len(terms) > 0 {
		s.affinity = map[topologyPair]int{}
		first := &terms[0]
		c.idx.eachSelected(c.idx.termNamespaces(first), first.selector, func(ps *podState) {
			labels := nodeLabelsOf(ps.ni)
			if labels == nil {
				return
			}
			nsLabels := c.idx.namespaces[ps.info.Pod.Namespace]
			for i := 1; i < len(terms); i++ {
				if !terms[i].matches(ps.info.Pod, nsLabels) {
					return
				}
			}
			for i := range terms {
				if v, ok := labels[terms[i].topologyKey]; ok {
					s.affinity[topologyPair{terms[i].topologyKey, v}]++
				}
			}
		})
		s.selfMatch = true
		nsLabels := c.idx.namespaces[p.Pod.Namespace]
		for i := range terms {
			if !terms[i].matches(p.Pod, nsLabels) {
				s.selfMatch = false
			}
		}
	}
	if terms := s.aff.requiredAnti(); len(terms) > 0 {
		s.anti = map[topologyPair]int{}
		for i := range terms {
			t := &terms[i]
			c.idx.eachSelected(c.idx.termNamespaces(t), t.selector, func(ps *podState) {
				if v, ok := nodeLabelsOf(ps.ni)[t.topologyKey]; ok {
					s.anti[topologyPair{t.topologyKey, v}]++
				}
			})
		}
	}
	state.Write(NameInterPodAffinity, s)
	return nil
}

func (InterPodAffinity) Filter(state *CycleState, _ *PodInfo, n *NodeInfo) *Status {
	s, _ := state.Read(NameInterPodAffinity).(*interPodAffinityState)
	if s == nil {
		return nil
	}
	labels := n.Node.Labels
	if s.aff != nil {
		if terms := s.aff.required(); len(terms) > 0 {
			podsExist := true
			for i := range terms {
				v, ok := labels[terms[i].topologyKey]
				if !ok {
					return unschedulable(ReasonAffinityRulesNotMatch) // every key must be on the node
				}
				if s.affinity[topologyPair{terms[i].topologyKey, v}] <= 0 {
					podsExist = false
				}
			}
			if !podsExist && !(len(s.affinity) == 0 && s.selfMatch) {
				return unschedulable(ReasonAffinityRulesNotMatch)
			}
		}
		if len(s.anti) > 0 {
			for _, t := range s.aff.requiredAnti() {
				if v, ok := labels[t.topologyKey]; ok && s.anti[topologyPair{t.topologyKey, v}] > 0 {
					return unschedulable(ReasonAntiAffinityRulesNotMatch)
				}
			}
		}
	}
	for _, g := range s.existing {
		if v, ok := labels[g.term.topologyKey]; ok && g.counts[v] > 0 {
			return unschedulable(ReasonExistingAntiAffinityRulesNotMatch)
		}
	}
	return nil
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
