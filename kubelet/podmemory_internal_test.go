package kubelet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
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

// What the kubelet remembers of a pod that has needed nothing yet (no back-off, no
// waiting reason) is one allocation: its maps are made on first use, as put makes them.
func TestPodMemoryMapsOnFirstUse(t *testing.T) {
	k := &Kubelet{memory: map[string]*podMemory{}}
	uids := []types.UID{"a", "b"}
	n := 0
	if allocs := testing.AllocsPerRun(100, func() {
		n++
		k.memoryOf("default/p", uids[n%2]) // another uid: a new pod of the name
	}); allocs > 1 {
		t.Errorf("a new pod's memory is %v allocations, want 1", allocs)
	}
	m := k.memoryOf("default/p", "u")
	put(&m.waiting, "app", &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff})
	put(&m.waiting, "side", nil)
	if len(m.waiting) != 2 || m.waiting["app"].Reason != ReasonCrashLoopBackOff {
		t.Errorf("waiting %v", m.waiting)
	}
}
