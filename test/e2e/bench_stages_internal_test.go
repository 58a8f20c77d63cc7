package e2e

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// TestRunningAndReady: the e2e_deploy figures count a pod once it is Running with its
// Ready condition True, not once it is Running: a pod whose readiness probe has not yet
// passed (Running, Ready False, or no Ready condition yet) is not done.
func TestRunningAndReady(t *testing.T) {
	ready := func(s corev1.ConditionStatus) []corev1.PodCondition {
		return []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}, {Type: corev1.PodReady, Status: s}}
	}
	for _, c := range []struct {
		name  string
		phase corev1.PodPhase
		conds []corev1.PodCondition
		want  bool
	}{
		{"running and ready", corev1.PodRunning, ready(corev1.ConditionTrue), true},
		{"running, not ready", corev1.PodRunning, ready(corev1.ConditionFalse), false},
		{"running, no ready condition", corev1.PodRunning, nil, false},
		{"pending", corev1.PodPending, nil, false},
		{"succeeded, ready", corev1.PodSucceeded, ready(corev1.ConditionTrue), false},
	} {
		p := &corev1.Pod{Status: corev1.PodStatus{Phase: c.phase, Conditions: c.conds}}
		if got := runningAndReady(p); got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
}
