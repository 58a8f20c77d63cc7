package daemonset

import (
	"maps"
	"slices"
	"sort"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	v1helper "k8s.io/component-helpers/scheduling/corev1"
	"k8s.io/component-helpers/scheduling/corev1/nodeaffinity"
	"k8s.io/klog/v2"

	"github.com/skiffhq/skiff/controllers/replicaset"
	"github.com/skiffhq/skiff/kinds"
)

// The decisions of the controller, as pure functions of a DaemonSet, its nodes and its
// pods (Kubernetes' daemon_controller.go and update.go): which nodes should run a pod,
// which pods to create and delete, the rolling update's next step, and the status.

// HashLabel is the label of a DaemonSet's pods (and revisions) that names the revision
// of the template they were made from (Kubernetes' DefaultDaemonSetUniqueLabelKey).
const HashLabel = appsv1.DefaultDaemonSetUniqueLabelKey

// daemonTolerations are the tolerations Kubernetes gives every DaemonSet pod
// (AddOrUpdateDaemonPodTolerations): it stays on a node that is not ready, unreachable,
// under pressure or cordoned, and is placed on such a node.
var daemonTolerations = []corev1.Toleration{
	{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute},
	{Key: corev1.TaintNodeDiskPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeMemoryPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodePIDPressure, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
	{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule},
}

// networkUnavailableToleration is added for pods on the host's network, which need no
// pod network (Kubernetes adds it for hostNetwork pods).
var networkUnavailableToleration = corev1.Toleration{Key: corev1.TaintNodeNetworkUnavailable, Operator: corev1.TolerationOpExists,
	Effect: corev1.TaintEffectNoSchedule}

// addTolerations adds the daemon tolerations a pod spec does not have yet.
func addTolerations(spec *corev1.PodSpec) {
	add := daemonTolerations
	if spec.HostNetwork {
		add = append(slices.Clone(add), networkUnavailableToleration)
	}
	for _, t := range add {
		if !slices.ContainsFunc(spec.Tolerations, func(x corev1.Toleration) bool {
			return x.Key == t.Key && x.Effect == t.Effect && x.Operator == t.Operator && x.Value == ""
		}) {
			spec.Tolerations = append(spec.Tolerations, t)
		}
	}
}

// NewPod is the pod ds runs on node: its template, with the daemon tolerations and a
// required node affinity to that node alone (Kubernetes places DaemonSet pods through
// the scheduler this way since 1.12), labelled with the template's revision hash.
func NewPod(ds *appsv1.DaemonSet, node, hash string) *corev1.Pod {
	t := ds.Spec.Template.DeepCopy()
	pod := &corev1.Pod{ObjectMeta: t.ObjectMeta, Spec: t.Spec}
	pod.Name, pod.Namespace, pod.GenerateName = "", ds.Namespace, ds.Name+"-"
	pod.OwnerReferences = []metav1.OwnerReference{kinds.NewControllerRef(ds)}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels = maps.Clone(pod.Labels)
	pod.Labels[HashLabel] = hash
	addTolerations(&pod.Spec)
	if pod.Spec.Affinity == nil {
		pod.Spec.Affinity = &corev1.Affinity{}
	}
	if pod.Spec.Affinity.NodeAffinity == nil {
		pod.Spec.Affinity.NodeAffinity = &corev1.NodeAffinity{}
	}
	pod.Spec.Affinity.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution = &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchFields: []corev1.NodeSelectorRequirement{
			{Key: metav1.ObjectNameField, Operator: corev1.NodeSelectorOpIn, Values: []string{node}}}}}}
	return pod
}

// ShouldRun is Kubernetes' NodeShouldRunDaemonPod: whether ds should run a pod on node
// (its node name, node selector and node affinity match the node, and its pods tolerate
// the node's NoSchedule and NoExecute taints), and whether a pod it already runs there
// should go on running (it tolerates the NoExecute taints: an untolerated NoSchedule
// taint keeps new pods off, not old ones).
func ShouldRun(node *corev1.Node, ds *appsv1.DaemonSet) (shouldRun, shouldContinueRunning bool) {
	return placementOf(ds).shouldRun(node)
}

// placement is what ShouldRun reads of a DaemonSet, prepared once for all its nodes: a
// sync asks it of every node several times, and copying the template and parsing its
// affinity for each was most of a sync's cost on a thousand nodes.
type placement struct {
	nodeName    string
	affinity    nodeaffinity.RequiredNodeAffinity
	tolerations []corev1.Toleration
}

func placementOf(ds *appsv1.DaemonSet) placement {
	spec := &ds.Spec.Template.Spec
	withTolerations := corev1.PodSpec{HostNetwork: spec.HostNetwork, Tolerations: slices.Clone(spec.Tolerations)}
	addTolerations(&withTolerations)
	return placement{
		nodeName: spec.NodeName,
		// GetRequiredNodeAffinity only reads the pod's selector and affinity.
		affinity:    nodeaffinity.GetRequiredNodeAffinity(&corev1.Pod{Spec: corev1.PodSpec{NodeSelector: spec.NodeSelector, Affinity: spec.Affinity}}),
		tolerations: withTolerations.Tolerations,
	}
}

func (pl placement) shouldRun(node *corev1.Node) (shouldRun, shouldContinueRunning bool) {
	if pl.nodeName != "" && pl.nodeName != node.Name {
		return false, false
	}
	if ok, _ := pl.affinity.Match(node); !ok {
		return false, false
	}
	_, untolerated := v1helper.FindMatchingUntoleratedTaint(klog.Logger{}, node.Spec.Taints, pl.tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoExecute || t.Effect == corev1.TaintEffectNoSchedule
	}, false)
	if !untolerated {
		return true, true
	}
	_, untoleratedNoExecute := v1helper.FindMatchingUntoleratedTaint(klog.Logger{}, node.Spec.Taints, pl.tolerations, func(t *corev1.Taint) bool {
		return t.Effect == corev1.TaintEffectNoExecute
	}, false)
	return false, !untoleratedNoExecute
}

// TargetNode is the node a daemon pod is for: its nodeName once bound, else the node its
// required node affinity names (Kubernetes' GetTargetNodeName).
func TargetNode(pod *corev1.Pod) string {
	if pod.Spec.NodeName != "" {
		return pod.Spec.NodeName
	}
	aff := pod.Spec.Affinity
	if aff == nil || aff.NodeAffinity == nil || aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution == nil {
		return ""
	}
	for _, term := range aff.NodeAffinity.RequiredDuringSchedulingIgnoredDuringExecution.NodeSelectorTerms {
		for _, r := range term.MatchFields {
			if r.Key == metav1.ObjectNameField && r.Operator == corev1.NodeSelectorOpIn && len(r.Values) == 1 {
				return r.Values[0]
			}
		}
	}
	return ""
}

// ByNode groups pods by the node they are for; pods for no node are left out.
func ByNode(pods []*corev1.Pod) map[string][]*corev1.Pod {
	out := map[string][]*corev1.Pod{}
	for _, p := range pods {
		if n := TargetNode(p); n != "" {
			out[n] = append(out[n], p)
		}
	}
	return out
}

// Plan is what one sync does: the nodes to create a pod on, the pods to delete.
type Plan struct {
	Create []string
	Delete []*corev1.Pod
	// Failed are the failed pods among Delete (an event says so).
	Failed []*corev1.Pod
	// RetryFailed, when set, is when a failed pod held back by its node's back-off may be
	// replaced.
	RetryFailed time.Duration
}

// Backoff says, for a node, how long to wait before replacing a failed pod there: 0
// when it may be replaced now (and the back-off grows).
type Backoff func(node string) time.Duration

// Manage is Kubernetes' manage and podsShouldBeOnNode: a pod on every node that should
// run one, none on the others; failed and finished pods replaced (failed ones no faster
// than backoff allows, as a kubelet that keeps rejecting a pod would otherwise make the
// controller loop); of several pods on a node, one kept (with maxSurge, an updated pod
// that is not yet ready may stand beside the old ready one).
func Manage(ds *appsv1.DaemonSet, nodes []*corev1.Node, byNode map[string][]*corev1.Pod, hash string, surge bool, backoff Backoff, now time.Time) Plan {
	var plan Plan
	pl := placementOf(ds)
	for _, node := range nodes {
		shouldRun, shouldContinue := pl.shouldRun(node)
		pods := byNode[node.Name]
		switch {
		case shouldRun && len(pods) == 0:
			plan.Create = append(plan.Create, node.Name)
		case shouldContinue:
			var running []*corev1.Pod
			for _, p := range pods {
				switch {
				case p.DeletionTimestamp != nil:
				case p.Status.Phase == corev1.PodFailed:
					if wait := backoff(node.Name); wait > 0 {
						if plan.RetryFailed == 0 || wait < plan.RetryFailed {
							plan.RetryFailed = wait
						}
						continue
					}
					plan.Delete = append(plan.Delete, p)
					plan.Failed = append(plan.Failed, p)
				case p.Status.Phase == corev1.PodSucceeded:
					plan.Delete = append(plan.Delete, p)
				default:
					running = append(running, p)
				}
			}
			plan.Delete = append(plan.Delete, extraPods(ds, running, hash, surge, now)...)
		case len(pods) > 0:
			for _, p := range pods {
				if p.DeletionTimestamp == nil {
					plan.Delete = append(plan.Delete, p)
				}
			}
		}
	}
	return plan
}

// extraPods are the pods of one node beyond the one it should keep: without surge, all
// but the oldest; with surge, the oldest updated pod stays, and the oldest old pod with
// it only while the updated one is not ready and the old one is.
func extraPods(ds *appsv1.DaemonSet, running []*corev1.Pod, hash string, surge bool, now time.Time) []*corev1.Pod {
	if len(running) <= 1 {
		return nil
	}
	sortOldestFirst(running)
	if !surge {
		return running[1:]
	}
	var updated, old *corev1.Pod
	for _, p := range running {
		switch {
		case p.Labels[HashLabel] == hash && updated == nil:
			updated = p
		case p.Labels[HashLabel] != hash && old == nil:
			old = p
		}
	}
	keep := map[*corev1.Pod]bool{}
	switch {
	case updated == nil:
		keep[old] = true
	case old != nil && !replicaset.IsReady(updated) && available(old, ds, now):
		keep[updated], keep[old] = true, true
	default:
		keep[updated] = true
	}
	var out []*corev1.Pod
	for _, p := range running {
		if !keep[p] {
			out = append(out, p)
		}
	}
	return out
}

// sortOldestFirst orders pods by creation, then name (Kubernetes breaks ties by phase;
// whole-second timestamps make the name the steadier tie-break).
func sortOldestFirst(pods []*corev1.Pod) {
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
			return a.CreationTimestamp.Before(&b.CreationTimestamp)
		}
		return a.Name < b.Name
	})
}

func available(p *corev1.Pod, ds *appsv1.DaemonSet, now time.Time) bool {
	ok, _ := replicaset.AvailableIn(p, time.Duration(ds.Spec.MinReadySeconds)*time.Second, now)
	return ok
}

// desiredNodes counts the nodes that should run a pod.
func desiredNodes(ds *appsv1.DaemonSet, nodes []*corev1.Node) int {
	n := 0
	pl := placementOf(ds)
	for _, node := range nodes {
		if run, _ := pl.shouldRun(node); run {
			n++
		}
	}
	return n
}

// Fenceposts are a rolling update's maxSurge and maxUnavailable as pod counts of the
// desired nodes, both rounded up, with one unavailable when both are zero (Kubernetes'
// updatedDesiredNodeCounts).
func Fenceposts(ds *appsv1.DaemonSet, desired int) (surge, unavailable int) {
	ru := ds.Spec.UpdateStrategy.RollingUpdate
	var s, u *intstr.IntOrString
	if ru != nil {
		s, u = ru.MaxSurge, ru.MaxUnavailable
	}
	one, zero := intstr.FromInt32(1), intstr.FromInt32(0)
	surge, _ = intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(s, zero), desired, true)
	unavailable, _ = intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(u, one), desired, true)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable
}

// podsOnNode splits the active pods of one node into the updated and the old one, or
// says there is more than one of either (manage sorts that out first).
func podsOnNode(pods []*corev1.Pod, hash string) (updated, old *corev1.Pod, ok bool) {
	for _, p := range pods {
		if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded {
			continue
		}
		if p.Labels[HashLabel] == hash {
			if updated != nil {
				return nil, nil, false
			}
			updated = p
		} else {
			if old != nil {
				return nil, nil, false
			}
			old = p
		}
	}
	return updated, old, true
}

// RollingUpdate is Kubernetes' rollingUpdate: the next step of replacing old pods by
// updated ones. Without surge, old pods are deleted (manage then creates their
// replacements) while no more than maxUnavailable nodes lack an available pod, the
// unavailable old pods first and at no cost; with surge, updated pods are created beside
// old ones on up to maxSurge nodes, and each old pod goes once its replacement is
// available.
func RollingUpdate(ds *appsv1.DaemonSet, nodes []*corev1.Node, byNode map[string][]*corev1.Pod, hash string, now time.Time) Plan {
	surge, maxUnavailable := Fenceposts(ds, desiredNodes(ds, nodes))
	names := make([]string, 0, len(byNode))
	for _, node := range nodes {
		if _, ok := byNode[node.Name]; ok {
			names = append(names, node.Name)
		}
	}
	var plan Plan
	if surge == 0 {
		unavailable := 0
		var free, candidates []*corev1.Pod
		for _, name := range names {
			updated, old, ok := podsOnNode(byNode[name], hash)
			switch {
			case !ok:
				unavailable++
			case old == nil && updated == nil, old != nil && updated != nil:
				unavailable++
			case updated != nil:
				if !available(updated, ds, now) {
					unavailable++
				}
			case !available(old, ds, now):
				free = append(free, old)
			case unavailable >= maxUnavailable:
			default:
				candidates = append(candidates, old)
			}
		}
		remaining := min(max(maxUnavailable-unavailable, 0), len(candidates))
		plan.Delete = append(free, candidates[:remaining]...)
		return plan
	}
	surged := 0
	var freeNodes, candidateNodes []string
	for _, name := range names {
		updated, old, ok := podsOnNode(byNode[name], hash)
		switch {
		case !ok:
			surged++
		case old == nil:
		case updated == nil:
			switch {
			case !available(old, ds, now):
				freeNodes = append(freeNodes, name)
			case surged >= surge:
			default:
				candidateNodes = append(candidateNodes, name)
			}
		case !available(updated, ds, now):
			surged++
		default:
			plan.Delete = append(plan.Delete, old)
		}
	}
	remaining := min(max(surge-surged, 0), len(candidateNodes))
	plan.Create = append(freeNodes, candidateNodes[:remaining]...)
	return plan
}

// Status is Kubernetes' updateDaemonSetStatus: counts over the nodes that should run a
// pod (of each, its oldest active pod), and the pods on nodes that should not.
func Status(ds *appsv1.DaemonSet, nodes []*corev1.Node, byNode map[string][]*corev1.Pod, hash string, now time.Time) appsv1.DaemonSetStatus {
	st := appsv1.DaemonSetStatus{ObservedGeneration: ds.Generation, CollisionCount: ds.Status.CollisionCount, Conditions: ds.Status.Conditions}
	pl := placementOf(ds)
	for _, node := range nodes {
		shouldRun, _ := pl.shouldRun(node)
		var active []*corev1.Pod
		for _, p := range byNode[node.Name] {
			if p.DeletionTimestamp == nil && replicaset.IsActive(p) {
				active = append(active, p)
			}
		}
		switch {
		case shouldRun:
			st.DesiredNumberScheduled++
			if len(active) == 0 {
				continue
			}
			st.CurrentNumberScheduled++
			sortOldestFirst(active)
			p := active[0]
			if replicaset.IsReady(p) {
				st.NumberReady++
				if available(p, ds, now) {
					st.NumberAvailable++
				}
			}
			for _, q := range active {
				if q.Labels[HashLabel] == hash {
					st.UpdatedNumberScheduled++
					break
				}
			}
		case len(active) > 0:
			st.NumberMisscheduled++
		}
	}
	st.NumberUnavailable = max(st.DesiredNumberScheduled-st.NumberAvailable, 0)
	return st
}
