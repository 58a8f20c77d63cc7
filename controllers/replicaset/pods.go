package replicaset

import (
	"sort"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// IsActive says whether a pod counts toward replicas: not finished and not being deleted.
func IsActive(p *corev1.Pod) bool {
	ph := p.Status.Phase
	return ph != corev1.PodSucceeded && ph != corev1.PodFailed && p.DeletionTimestamp == nil
}

// readyCondition returns the pod's Ready condition, or nil.
func readyCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodReady {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// IsReady says whether the pod's Ready condition is True.
func IsReady(p *corev1.Pod) bool {
	c := readyCondition(p)
	return c != nil && c.Status == corev1.ConditionTrue
}

// AvailableIn says whether a pod is available at now — ready for at least minReady — and
// if it is ready but not yet available, how long until it is. The Ready condition's
// lastTransitionTime is whole seconds, as Kubernetes stores it.
func AvailableIn(p *corev1.Pod, minReady time.Duration, now time.Time) (bool, time.Duration) {
	c := readyCondition(p)
	if c == nil || c.Status != corev1.ConditionTrue {
		return false, 0
	}
	if minReady <= 0 || c.LastTransitionTime.IsZero() {
		return true, 0
	}
	at := c.LastTransitionTime.Add(minReady)
	if !now.Before(at) {
		return true, 0
	}
	return false, at.Sub(now)
}

// rankForDeletion orders pods so that the ones to delete first come first, as Kubernetes
// does: unscheduled before scheduled, pending before unknown before running, not ready
// before ready, ready for less time before longer, more restarts before fewer, newer
// before older. Ready and creation times are whole seconds, so ties are common: the name
// breaks them, so that the order is the same on every sync.
func rankForDeletion(pods []*corev1.Pod) {
	phaseRank := map[corev1.PodPhase]int{corev1.PodPending: 0, corev1.PodUnknown: 1, corev1.PodRunning: 2}
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
			return a.Spec.NodeName == ""
		}
		if pa, pb := phaseRank[a.Status.Phase], phaseRank[b.Status.Phase]; pa != pb {
			return pa < pb
		}
		if IsReady(a) != IsReady(b) {
			return !IsReady(a)
		}
		if IsReady(a) {
			ta, tb := readyCondition(a).LastTransitionTime, readyCondition(b).LastTransitionTime
			if !ta.Equal(&tb) {
				return tb.Before(&ta)
			}
		}
		if ra, rb := restarts(a), restarts(b); ra != rb {
			return ra > rb
		}
		if ca, cb := a.CreationTimestamp, b.CreationTimestamp; !ca.Equal(&cb) {
			return cb.Before(&ca)
		}
		return a.Name > b.Name
	})
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}
