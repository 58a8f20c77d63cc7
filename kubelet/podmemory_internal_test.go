package kubelet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestWrittenStatusForgottenOnceCached: the kubelet keeps the status it wrote only
// while its cache lags behind the write; from the write's revision on the cache's pod
// is the status, and the kubelet holds no second copy.
func TestWrittenStatusForgottenOnceCached(t *testing.T) {
	st := &corev1.PodStatus{Phase: corev1.PodRunning}
	for _, tc := range []struct {
		name, cached string
		at           int64
		keep         bool
	}{
		{"cache behind", "41", 42, true},
		{"cache at the write", "42", 42, false},
		{"cache past it", "57", 42, false},
		{"write's revision unknown", "57", 1<<63 - 1, true},
		{"cache's revision unreadable", "x", 42, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := &podMemory{written: st, writtenRV: tc.at}
			m.caughtUp(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{ResourceVersion: tc.cached}})
			if (m.written != nil) != tc.keep {
				t.Errorf("written kept %v, want %v", m.written != nil, tc.keep)
			}
		})
	}
	var m podMemory
	m.caughtUp(&corev1.Pod{}) // nothing written: nothing to forget
}
