package replicaset

import (
	"sort"
	"time"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

// IsActive says whether a pod counts toward replicas: not finished and not being deleted.
func IsActive(p *corev1.Pod) bool {
	ph := p.GetStatus().GetPhase()
	return ph != "Succeeded" && ph != "Failed" && p.GetMetadata().GetDeletionTimestamp() == nil
}

// readyCondition returns the pod's Ready condition, or nil.
func readyCondition(p *corev1.Pod) *corev1.PodCondition {
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == "Ready" {
			return c
		}
	}
	return nil
}

// IsReady says whether the pod's Ready condition is True.
func IsReady(p *corev1.Pod) bool { return readyCondition(p).GetStatus() == "True" }

// AvailableIn says whether a pod is available at now — ready for at least minReady — and
// if it is ready but not yet available, how long until it is.
func AvailableIn(p *corev1.Pod, minReady time.Duration, now time.Time) (bool, time.Duration) {
	c := readyCondition(p)
	if c.GetStatus() != "True" {
		return false, 0
	}
	if minReady <= 0 || c.GetLastTransitionTime() == nil {
		return true, 0
	}
	at := c.GetLastTransitionTime().AsTime().Add(minReady)
	if !now.Before(at) {
		return true, 0
	}
	return false, at.Sub(now)
}

// rankForDeletion orders pods so that the ones to delete first come first, as Kubernetes
// does: unscheduled before scheduled, pending before unknown before running, not ready
// before ready, ready for less time before longer, more restarts before fewer, newer
// before older.
func rankForDeletion(pods []*corev1.Pod) {
	phaseRank := map[string]int{"Pending": 0, "Unknown": 1, "Running": 2}
	sort.SliceStable(pods, func(i, j int) bool {
		a, b := pods[i], pods[j]
		if (a.GetSpec().GetNodeName() == "") != (b.GetSpec().GetNodeName() == "") {
			return a.GetSpec().GetNodeName() == ""
		}
		if pa, pb := phaseRank[a.GetStatus().GetPhase()], phaseRank[b.GetStatus().GetPhase()]; pa != pb {
			return pa < pb
		}
		if IsReady(a) != IsReady(b) {
			return !IsReady(a)
		}
		if IsReady(a) {
			ta, tb := readyCondition(a).GetLastTransitionTime().AsTime(), readyCondition(b).GetLastTransitionTime().AsTime()
			if !ta.Equal(tb) {
				return ta.After(tb)
			}
		}
		if ra, rb := restarts(a), restarts(b); ra != rb {
			return ra > rb
		}
		ca, cb := a.GetMetadata().GetCreationTimestamp().AsTime(), b.GetMetadata().GetCreationTimestamp().AsTime()
		if !ca.Equal(cb) {
			return ca.After(cb)
		}
		return a.GetMetadata().GetName() > b.GetMetadata().GetName()
	})
}

func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.GetStatus().GetContainerStatuses() {
		n += cs.GetRestartCount()
	}
	return n
}
