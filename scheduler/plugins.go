package scheduler

import (
	"fmt"
	"slices"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
)

// The built-in plugins' names, as profiles refer to them.
const (
	NameNodeReady          = "NodeReady"
	NameNodeResourcesFit   = "NodeResourcesFit"
	NameNodeAffinity       = "NodeAffinity"
	NameInterPodAffinity   = "InterPodAffinity"
	NamePodTopologySpread  = "PodTopologySpread"
	NameTaintToleration    = "TaintToleration"
	NameNodePorts          = "NodePorts"
	NameLeastAllocated     = "LeastAllocated"
	NameBalancedAllocation = "BalancedAllocation"
	NameOwnerSpread        = "OwnerSpread"
	NameVolumeBinding      = "VolumeBinding"
)

// The reasons the built-in filters give, as Kubernetes words them.
const (
	ReasonNodeUnschedulable = "node(s) were unschedulable"
	ReasonNodeNotReady      = "node(s) were not ready"
	ReasonInsufficientCPU   = "Insufficient cpu"
	ReasonInsufficientMem   = "Insufficient memory"
	ReasonTooManyPods       = "Too many pods"
	ReasonNodeSelector      = "node(s) didn't match Pod's node affinity/selector"
	ReasonNodePorts         = "node(s) didn't have free ports for the requested pod ports"

	ReasonAffinityRulesNotMatch             = "node(s) didn't match pod affinity rules"
	ReasonAntiAffinityRulesNotMatch         = "node(s) didn't match pod anti-affinity rules"
	ReasonExistingAntiAffinityRulesNotMatch = "node(s) didn't satisfy existing pods anti-affinity rules"
	ReasonTopologySpreadConstraintsNotMatch = "node(s) didn't match pod topology spread constraints"
	ReasonTopologySpreadNodeLabelMissing    = ReasonTopologySpreadConstraintsNotMatch + " (missing required label)"

	ReasonUnboundImmediateClaims = "pod has unbound immediate PersistentVolumeClaims"
	ReasonVolumeNodeAffinity     = "node(s) had volume node affinity conflict"
)

// unschedulable makes a fresh status: the framework writes its Plugin field.
func unschedulable(reasons ...string) *Status { return &Status{Code: Unschedulable, Reasons: reasons} }

var (
	_ FilterPlugin    = NodeReady{}
	_ FilterPlugin    = NodeResourcesFit{}
	_ PreFilterPlugin = NodeAffinity{}
	_ PreScorePlugin  = NodeAffinity{}
	_ ScoreNormalizer = NodeAffinity{}
	_ PreFilterPlugin = InterPodAffinity{}
	_ PreScorePlugin  = InterPodAffinity{}
	_ ScoreNormalizer = InterPodAffinity{}
	_ PodAddSensitive = InterPodAffinity{}
	_ PreFilterPlugin = PodTopologySpread{}
	_ PreScorePlugin  = PodTopologySpread{}
	_ ScoreNormalizer = PodTopologySpread{}
	_ PodAddSensitive = PodTopologySpread{}
	_ FilterPlugin    = TaintToleration{}
	_ FilterPlugin    = NodePorts{}
	_ ScorePlugin     = LeastAllocated{}
	_ ScorePlugin     = BalancedAllocation{}
	_ ScorePlugin     = OwnerSpread{}
	_ ScoreNormalizer = OwnerSpread{}
	_ PreFilterPlugin = VolumeBinding{}
)

// NodeReady passes nodes whose Ready condition is True and that are not cordoned
// (spec.unschedulable) unless the pod tolerates the node.kubernetes.io/unschedulable
// NoSchedule taint (Kubernetes' NodeUnschedulable: a DaemonSet's pods do), and never a
// node the cache knows only from its pods.
type NodeReady struct{}

func (NodeReady) Name() string { return NameNodeReady }

// unschedulableTaint is what a pod tolerates to go to a cordoned node.
var unschedulableTaint = corev1.Taint{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}

func (NodeReady) Filter(_ *CycleState, p *PodInfo, n *NodeInfo) *Status {
	switch {
	case n.Node == nil:
		return unschedulable(ReasonNodeNotReady)
	case n.Unschedulable && !tolerated(p.Pod.Spec.Tolerations, &unschedulableTaint):
		return unschedulable(ReasonNodeUnschedulable)
	case !n.Ready:
		return unschedulable(ReasonNodeNotReady)
	}
	return nil
}

// NodeResourcesFit passes nodes whose allocatable cpu, memory, pod count and extended
// resources hold the pod besides every pod counted there (bound and assumed). A node
// that does not advertise an extended resource the pod requests has none of it.
type NodeResourcesFit struct{}

func (NodeResourcesFit) Name() string { return NameNodeResourcesFit }

func (NodeResourcesFit) Filter(_ *CycleState, p *PodInfo, n *NodeInfo) *Status {
	var reasons []string
	if n.Requested.Pods+1 > n.Allocatable.Pods {
		reasons = append(reasons, ReasonTooManyPods)
	}
	if p.Requests.MilliCPU > 0 && n.Requested.MilliCPU+p.Requests.MilliCPU > n.Allocatable.MilliCPU {
		reasons = append(reasons, ReasonInsufficientCPU)
	}
	if p.Requests.Memory > 0 && n.Requested.Memory+p.Requests.Memory > n.Allocatable.Memory {
		reasons = append(reasons, ReasonInsufficientMem)
	}
	first := len(reasons)
	for name, v := range p.Requests.Scalar {
		if v > 0 && n.Requested.Scalar[name]+v > n.Allocatable.Scalar[name] {
			reasons = append(reasons, "Insufficient "+string(name))
		}
	}
	slices.Sort(reasons[first:])
	if reasons != nil {
		return unschedulable(reasons...)
	}
	return nil
}

// TaintToleration passes nodes whose NoSchedule and NoExecute taints the pod all
// tolerates.
type TaintToleration struct{}

func (TaintToleration) Name() string { return NameTaintToleration }

func (TaintToleration) Filter(_ *CycleState, p *PodInfo, n *NodeInfo) *Status {
	tols := p.Pod.Spec.Tolerations
	for i := range n.Taints {
		if t := &n.Taints[i]; !tolerated(tols, t) {
			return unschedulable(fmt.Sprintf("node(s) had untolerated taint {%s: %s}", t.Key, t.Value))
		}
	}
	return nil
}

// tolerated reports whether any toleration tolerates taint, by Kubernetes' own
// Toleration.ToleratesTaint with the numeric operators (Lt, Gt) off, as Kubernetes
// without its TaintTolerationComparisonOperators feature (the API server refuses
// them). With them off it never logs, hence the no-op logger.
func tolerated(tols []corev1.Toleration, taint *corev1.Taint) bool {
	for i := range tols {
		if tols[i].ToleratesTaint(klog.Logger{}, taint, false) {
			return true
		}
	}
	return false
}

// NodePorts passes nodes where none of the host ports the pod asks for is taken.
type NodePorts struct{}

func (NodePorts) Name() string { return NameNodePorts }

func (NodePorts) Filter(_ *CycleState, p *PodInfo, n *NodeInfo) *Status {
	for _, port := range p.Ports {
		if n.portInUse(port) {
			return unschedulable(ReasonNodePorts)
		}
	}
	return nil
}

// LeastAllocated prefers nodes with the most cpu and memory left once the pod is
// there (Kubernetes' NodeResourcesFit LeastAllocated strategy, equal weights).
type LeastAllocated struct{}

func (LeastAllocated) Name() string { return NameLeastAllocated }

func (LeastAllocated) Score(_ *CycleState, p *PodInfo, n *NodeInfo) int64 {
	return (leastAllocated(n.NonZeroRequested.MilliCPU+p.NonZero.MilliCPU, n.Allocatable.MilliCPU) +
		leastAllocated(n.NonZeroRequested.Memory+p.NonZero.Memory, n.Allocatable.Memory)) / 2
}

func leastAllocated(requested, capacity int64) int64 {
	if capacity <= 0 || requested > capacity {
		return 0
	}
	return (capacity - requested) * MaxNodeScore / capacity
}

// BalancedAllocation prefers nodes whose cpu and memory would be used in equal
// fractions once the pod is there: 100·(1 − |cpu fraction − memory fraction|/2).
type BalancedAllocation struct{}

func (BalancedAllocation) Name() string { return NameBalancedAllocation }

func (BalancedAllocation) Score(_ *CycleState, p *PodInfo, n *NodeInfo) int64 {
	cpu := fraction(n.NonZeroRequested.MilliCPU+p.NonZero.MilliCPU, n.Allocatable.MilliCPU)
	mem := fraction(n.NonZeroRequested.Memory+p.NonZero.Memory, n.Allocatable.Memory)
	d := cpu - mem
	if d < 0 {
		d = -d
	}
	return int64((1 - d/2) * MaxNodeScore)
}

func fraction(requested, capacity int64) float64 {
	if capacity <= 0 {
		return 1
	}
	f := float64(requested) / float64(capacity)
	if f > 1 {
		return 1
	}
	return f
}

// OwnerSpread prefers nodes with fewer pods of the pod's controller owner (its
// ReplicaSet), so that replicas spread across nodes. Pods without a controller score
// the same everywhere.
type OwnerSpread struct{}

func (OwnerSpread) Name() string { return NameOwnerSpread }

// Score is the raw count; NormalizeScores turns it into a preference.
func (OwnerSpread) Score(_ *CycleState, p *PodInfo, n *NodeInfo) int64 {
	if p.Owner == "" {
		return 0
	}
	return int64(n.OwnerCount(p.Owner))
}

func (OwnerSpread) NormalizeScores(_ *CycleState, p *PodInfo, _ []*NodeInfo, scores []int64) {
	var most int64
	for _, s := range scores {
		most = max(most, s)
	}
	for i, s := range scores {
		if most == 0 {
			scores[i] = MaxNodeScore
		} else {
			scores[i] = MaxNodeScore * (most - s) / most
		}
	}
}
