package scheduler

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
)

// NodeAffinity passes the nodes that the pod's nodeSelector and required node affinity
// (spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution: any of
// its nodeSelectorTerms, each a conjunction of matchExpressions over the node's labels
// and matchFields over its name) both accept, and scores nodes by the summed weights of
// the preferred terms they match. The matching is Kubernetes' own
// (k8s.io/component-helpers' nodeaffinity), as the kube-scheduler's NodeAffinity plugin
// uses it: a term that does not parse matches no node.
type NodeAffinity struct{}

func (NodeAffinity) Name() string { return NameNodeAffinity }

const nodeAffinityScoreKey = NameNodeAffinity + "/score"

// PreFilter parses the pod's requirements once; a pod without any skips the filter.
func (NodeAffinity) PreFilter(state *CycleState, p *PodInfo, _ *Cache) *Status {
	spec := &p.Pod.Spec
	if len(spec.NodeSelector) == 0 && (spec.Affinity == nil || spec.Affinity.NodeAffinity == nil ||
		spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil) {
		return NewStatus(Skip)
	}
	req := nodeaffinity.GetRequiredNodeAffinity(p.Pod)
	state.Write(NameNodeAffinity, &req)
	if names := affinityNodeNames(spec.Affinity); names != nil {
		state.RestrictNodes(names)
	}
	return nil
}

// affinityNodeNames is the set of nodes the pod's required node affinity names by
// metadata.name In, when every term names some (a term that names none lets any node
// through); nil otherwise (Kubernetes' NodeAffinity PreFilterResult). A DaemonSet's
// pods each name one node this way.
func affinityNodeNames(aff *corev1.Affinity) map[string]bool {
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return nil
	}
	terms := aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms
	if len(terms) == 0 {
		return nil
	}
	names := map[string]bool{}
	for _, t := range terms {
		var term map[string]bool // the requirements of a term all hold: intersect
		for _, r := range t.MatchFields {
			if r.Key != metav1.ObjectNameField || r.Operator != corev1.NodeSelectorOpIn {
				continue
			}
			in := map[string]bool{}
			for _, v := range r.Values {
				if term == nil || term[v] {
					in[v] = true
				}
			}
			term = in
		}
		if term == nil {
			return nil // the terms are ORed: this one allows every node
		}
		for n := range term {
			names[n] = true
		}
	}
	return names
}

func (NodeAffinity) Filter(state *CycleState, _ *PodInfo, n *NodeInfo) *Status {
	req, _ := state.Read(NameNodeAffinity).(*nodeaffinity.RequiredNodeAffinity)
	if req == nil {
		return nil
	}
	if ok, _ := req.Match(n.Node); !ok {
		return unschedulable(ReasonNodeSelector)
	}
	return nil
}

// PreScore parses the pod's preferred terms; a pod without any skips the score.
func (NodeAffinity) PreScore(state *CycleState, p *PodInfo, _ *Cache, _ []*NodeInfo) *Status {
	aff := p.Pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || len(aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution) == 0 {
		return NewStatus(Skip)
	}
	terms, err := nodeaffinity.NewPreferredSchedulingTerms(aff.NodeAffinity.PreferredDuringSchedulingIgnoredDuringExecution)
	if err != nil {
		return NewStatus(Error, err.Error())
	}
	state.Write(nodeAffinityScoreKey, terms)
	return nil
}

// Score is the sum of the weights of the preferred terms the node matches.
func (NodeAffinity) Score(state *CycleState, _ *PodInfo, n *NodeInfo) int64 {
	terms, _ := state.Read(nodeAffinityScoreKey).(*nodeaffinity.PreferredSchedulingTerms)
	if terms == nil {
		return 0
	}
	return terms.Score(n.Node)
}

// NormalizeScores scales the sums so that the best node scores MaxNodeScore.
func (NodeAffinity) NormalizeScores(_ *CycleState, _ *PodInfo, _ []*NodeInfo, scores []int64) {
	normalizeToMax(scores, false)
}

// normalizeToMax scales scores so that the highest is MaxNodeScore (reversed: so that
// the lowest is), leaving them alone when all are 0 (Kubernetes' DefaultNormalizeScore).
func normalizeToMax(scores []int64, reverse bool) {
	var most int64
	for _, s := range scores {
		most = max(most, s)
	}
	if most == 0 {
		if reverse {
			for i := range scores {
				scores[i] = MaxNodeScore
			}
		}
		return
	}
	for i, s := range scores {
		s = MaxNodeScore * s / most
		if reverse {
			s = MaxNodeScore - s
		}
		scores[i] = s
	}
}
