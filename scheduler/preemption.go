package scheduler

import (
	"context"
	"fmt"
	"math"
	"slices"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/record"
)

// Preemption is Kubernetes' DefaultPreemption, run only for a pod no node fits: on
// each node, the pods of lower priority are taken away in simulation; where the pod
// then passes every filter, as many of them as can stay are given back (those a
// PodDisruptionBudget protects first, then by priority, highest first), and the others
// are the node's victims. Of the nodes with victims the scheduler picks the one with
// the fewest PDB violations, then the lowest highest victim priority, the lowest sum
// of victim priorities, the fewest victims; it nominates the pod to that node
// (status.nominatedNodeName), marks each victim with the DisruptionTarget condition
// (reason PreemptionByScheduler), deletes it with an Event, and tries the pod again
// when they are gone. Pods of the Never policy, and a pod whose earlier victims are
// still terminating on its nominated node, do not preempt.

// Kubernetes' words for preemption.
const (
	ConditionDisruptionTarget   = corev1.DisruptionTarget
	ReasonPreemptionByScheduler = "PreemptionByScheduler"
	reasonPreempted             = "Preempted"
	reasonNotEligibleToPreempt  = "not eligible due to preemptionPolicy=Never."
)

// PDBLister reads the PodDisruptionBudgets; preemption avoids the disruptions they do
// not allow, where it can.
type PDBLister func() []*policyv1.PodDisruptionBudget

// Preemption is where a pod fits once Victims are gone.
type Preemption struct {
	Node    string
	Victims []*corev1.Pod
	// PDBViolations counts the victims whose budget allows no disruption.
	PDBViolations int
}

// eligibleToPreempt is Kubernetes' PodEligibleToPreemptOthers: a pod of the Never
// policy does not preempt, nor one nominated to a node where lower-priority pods are
// still terminating (its earlier victims, most likely). The caller holds the lock.
func (c *Cache) eligibleToPreempt(pod *corev1.Pod) bool {
	if p := pod.Spec.PreemptionPolicy; p != nil && *p == corev1.PreemptNever {
		return false
	}
	if nom := pod.Status.NominatedNodeName; nom != "" {
		if ni := c.nodes[nom]; ni != nil {
			prio := podPriority(pod)
			for _, pi := range ni.pods {
				if pi.Pod.DeletionTimestamp != nil && podPriority(pi.Pod) < prio {
					return false
				}
			}
		}
	}
	return true
}

// Preempt finds, under the cache's lock, the node where pi fits once lower-priority
// pods go, and those pods; ok is false when there is none (or pi may not preempt).
func (c *Cache) Preempt(fw *Framework, pi *PodInfo, pdbs PDBLister) (Preemption, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.eligibleToPreempt(pi.Pod) {
		return Preemption{}, false, nil
	}
	state := &CycleState{}
	if err := fw.preFilter(state, pi, c); err != nil {
		return Preemption{}, false, err
	}
	prio := podPriority(pi.Pod)
	var budgets []*policyv1.PodDisruptionBudget
	budgetsRead := false
	var best *Preemption
	var bestKey candidateKey
	for _, ni := range c.list {
		if state.narrowed && !state.nodeNames[ni.Name] {
			continue
		}
		var lower []*PodInfo
		for _, p := range ni.pods {
			if podPriority(p.Pod) < prio {
				lower = append(lower, p)
			}
		}
		if len(lower) == 0 {
			continue
		}
		if !budgetsRead && pdbs != nil {
			budgets, budgetsRead = pdbs(), true
		}
		cand, ok := fw.selectVictims(state, pi, ni, lower, budgets)
		if !ok {
			continue
		}
		if key := cand.key(); best == nil || key.less(bestKey) {
			best, bestKey = &cand, key
		}
	}
	if best == nil {
		return Preemption{}, false, nil
	}
	return *best, true, nil
}

// selectVictims is Kubernetes' SelectVictimsOnNode: whether pi fits ni without the
// pods of lower, and the fewest of them (by priority, those a budget protects kept
// first) that must go.
func (fw *Framework) selectVictims(state *CycleState, pi *PodInfo, ni *NodeInfo, lower []*PodInfo, budgets []*policyv1.PodDisruptionBudget) (Preemption, bool) {
	sim := ni.without(lower)
	if !fw.runFilters(state, pi, sim).IsSuccess() {
		return Preemption{}, false
	}
	// The most important first: they are the first given back.
	slices.SortStableFunc(lower, func(a, b *PodInfo) int {
		if pa, pb := podPriority(a.Pod), podPriority(b.Pod); pa != pb {
			return int(pb) - int(pa)
		}
		return a.Pod.CreationTimestamp.Compare(b.Pod.CreationTimestamp.Time)
	})
	violating, safe := splitByBudget(lower, budgets)
	cand := Preemption{Node: ni.Name}
	reprieve := func(p *PodInfo) bool {
		sim.AddPod(p)
		if fw.runFilters(state, pi, sim).IsSuccess() {
			return true
		}
		sim.RemovePod(p.Key)
		cand.Victims = append(cand.Victims, p.Pod)
		return false
	}
	for _, p := range violating {
		if !reprieve(p) {
			cand.PDBViolations++
		}
	}
	for _, p := range safe {
		reprieve(p)
	}
	return cand, len(cand.Victims) > 0
}

// splitByBudget is Kubernetes' filterPodsWithPDBViolation: the pods whose removal a
// budget does not allow (each budget allowing its disruptionsAllowed, in order), and
// the others, each in the order given.
func splitByBudget(pods []*PodInfo, budgets []*policyv1.PodDisruptionBudget) (violating, safe []*PodInfo) {
	allowed := make([]int32, len(budgets))
	for i, b := range budgets {
		allowed[i] = b.Status.DisruptionsAllowed
	}
	for _, p := range pods {
		violates := false
		for i, b := range budgets {
			if b.Namespace != p.Pod.Namespace || b.Spec.Selector == nil {
				continue
			}
			sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
			if err != nil || sel.Empty() || !sel.Matches(labels.Set(p.Pod.Labels)) {
				continue
			}
			if allowed[i]--; allowed[i] < 0 {
				violates = true
			}
		}
		if violates {
			violating = append(violating, p)
		} else {
			safe = append(safe, p)
		}
	}
	return violating, safe
}

// without is a copy of ni without pods: what the node would hold once they are gone.
func (ni *NodeInfo) without(pods []*PodInfo) *NodeInfo {
	sim := NewNodeInfo(ni.Node)
	for key, p := range ni.pods {
		if !slices.ContainsFunc(pods, func(v *PodInfo) bool { return v.Key == key }) {
			sim.AddPod(p)
		}
	}
	return sim
}

// candidateKey orders candidates as Kubernetes' pickOneNodeForPreemption: fewer PDB
// violations, a lower highest victim priority, a lower sum of priorities, fewer victims.
type candidateKey struct {
	violations int
	highest    int32
	sum        int64
	victims    int
}

func (p *Preemption) key() candidateKey {
	k := candidateKey{violations: p.PDBViolations, highest: math.MinInt32, victims: len(p.Victims)}
	for _, v := range p.Victims {
		prio := podPriority(v)
		k.highest = max(k.highest, prio)
		// Shifted so that negative priorities still add up to more with more pods.
		k.sum += int64(prio) + math.MaxInt32 + 1
	}
	return k
}

func (a candidateKey) less(b candidateKey) bool {
	switch {
	case a.violations != b.violations:
		return a.violations < b.violations
	case a.highest != b.highest:
		return a.highest < b.highest
	case a.sum != b.sum:
		return a.sum < b.sum
	}
	return a.victims < b.victims
}

// preempt tries to make room for a pod that fits nowhere (fit says why): it chooses the
// node and the victims, and reserves the node for the pod. It reports the message the
// pod's FailedScheduling carries: fit's, with what preemption found.
func (s *Scheduler) preempt(pod *corev1.Pod, fit *FitError) (msg string, res Preemption, ok bool) {
	msg = fit.Error()
	if p := pod.Spec.PreemptionPolicy; p != nil && *p == corev1.PreemptNever {
		return fmt.Sprintf("%s preemption: %s", msg, reasonNotEligibleToPreempt), Preemption{}, false
	}
	res, ok, err := s.cache.Preempt(s.fw, NewPodInfo(pod), s.pdbs)
	if err != nil {
		s.log.Warn("preemption failed", "pod", podKey(pod), "error", err)
		return msg, Preemption{}, false
	}
	if !ok {
		return msg, Preemption{}, false
	}
	s.log.Debug("preempting", "pod", podKey(pod), "node", res.Node, "victims", len(res.Victims))
	s.cache.Nominate(NewPodInfo(pod), res.Node)
	return msg, res, true
}

// evictAll writes the preemptor's status (PodScheduled=False and its nominated node)
// and then deletes the victims, in that order: the pod says where it waits before the
// room it waits for is made.
func (s *Scheduler) evictAll(ctx context.Context, pod *corev1.Pod, msg string, res Preemption) {
	if s.pods != nil {
		if err := s.setUnschedulable(ctx, pod, msg, res.Node); err != nil && ctx.Err() == nil {
			s.log.Warn("set nominated node failed", "pod", podKey(pod), "error", err)
		}
	}
	for _, v := range res.Victims {
		if err := s.evict(ctx, pod, v, res.Node); err != nil && ctx.Err() == nil {
			s.log.Warn("preemption: delete victim failed", "pod", podKey(pod), "victim", podKey(v), "error", err)
		}
	}
}

// evict deletes a victim of pod's preemption: the DisruptionTarget condition first (so
// that its controllers and the user see why it goes), then an Event, then the deletion
// with the victim's own grace period.
func (s *Scheduler) evict(ctx context.Context, preemptor, victim *corev1.Pod, node string) error {
	if s.pods == nil {
		return nil
	}
	wctx, cancel := context.WithTimeout(ctx, s.cfg.BindTimeout)
	defer cancel()
	cur, err := s.pods.Get(wctx, victim.Namespace, victim.Name)
	if client.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if cur.UID != victim.UID {
		return nil // another pod of the name
	}
	scheduler := preemptor.Spec.SchedulerName
	if scheduler == "" {
		scheduler = corev1.DefaultSchedulerName
	}
	now := metav1.NewTime(s.cfg.Now())
	cond := corev1.PodCondition{Type: ConditionDisruptionTarget, Status: corev1.ConditionTrue, Reason: ReasonPreemptionByScheduler,
		Message: scheduler + ": preempting to accommodate a higher priority pod", LastTransitionTime: now}
	next := cur.DeepCopy()
	replaced := false
	for i := range next.Status.Conditions {
		if next.Status.Conditions[i].Type == ConditionDisruptionTarget {
			next.Status.Conditions[i], replaced = cond, true
		}
	}
	if !replaced {
		next.Status.Conditions = append(next.Status.Conditions, cond)
	}
	if _, err := s.pods.UpdateStatus(wctx, next); err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		return fmt.Errorf("mark pod %s/%s for preemption: %w", victim.Namespace, victim.Name, err)
	}
	s.events.Eventf(victim, record.Normal, reasonPreempted, "Preempted by pod %s on node %s", preemptor.UID, node)
	_, err = s.pods.Delete(wctx, victim.Namespace, victim.Name, client.DeleteOptions{UID: string(victim.UID)})
	if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		return fmt.Errorf("delete pod %s/%s: %w", victim.Namespace, victim.Name, err)
	}
	return nil
}
