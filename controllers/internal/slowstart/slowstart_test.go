package slowstart

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
)

func TestRun(t *testing.T) {
	var calls atomic.Int32
	ok, err := Run(10, func() error { calls.Add(1); return nil })
	if ok != 10 || err != nil || calls.Load() != 10 {
		t.Fatalf("all succeed: %d %v %d", ok, err, calls.Load())
	}
	calls.Store(0)
	ok, err = Run(100, func() error {
		if calls.Add(1) > 2 {
			return errors.New("quota exceeded")
		}
		return nil
	})
	// Batch 1 succeeds; the third call fails inside batch 2, so batch 4 never runs.
	if err == nil || calls.Load() > 3 || ok != 2 {
		t.Fatalf("failing: ok %d, err %v, calls %d; want the batches to stop at the first failure", ok, err, calls.Load())
	}
}

// TestRunFrom: the first batch is as large as asked, and the largest batch that
// succeeded in full is reported.
func TestRunFrom(t *testing.T) {
	var calls, most, running atomic.Int32
	ok, largest, err := RunFrom(100, 64, func() error {
		defer running.Add(-1)
		n := running.Add(1)
		for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
		}
		calls.Add(1)
		return nil
	})
	// Batches of 64 then 36.
	if ok != 100 || largest != 64 || err != nil || calls.Load() != 100 || most.Load() > 64 {
		t.Fatalf("ok %d, largest %d, err %v, calls %d, at most %d at once", ok, largest, err, calls.Load(), most.Load())
	}
	calls.Store(0)
	ok, largest, err = RunFrom(10, 4, func() error {
		if calls.Add(1) > 5 {
			return errors.New("quota exceeded")
		}
		return nil
	})
	// Batch 4 succeeds; batch 6 fails after its first call.
	if ok != 5 || largest != 4 || err == nil {
		t.Fatalf("failing: ok %d, largest %d, err %v", ok, largest, err)
	}
}

func TestRunChunks(t *testing.T) {
	var mu sync.Mutex
	var calls [][2]int
	record := func(lo, hi int) { mu.Lock(); calls = append(calls, [2]int{lo, hi}); mu.Unlock() }
	done, largest, err := RunChunks(250, 64, 100, func(lo, hi int) (int, error) { record(lo, hi); return hi - lo, nil })
	// Batches of 64 and 128 (two calls: 100 and 28), then the last 58.
	if done != 250 || largest != 128 || err != nil || len(calls) != 4 {
		t.Fatalf("done %d, largest %d, err %v, calls %v", done, largest, err, calls)
	}
	seen := make([]bool, 250)
	for _, c := range calls {
		if c[1]-c[0] > 100 {
			t.Errorf("call %v holds more than 100", c)
		}
		for i := c[0]; i < c[1]; i++ {
			if seen[i] {
				t.Errorf("item %d made twice", i)
			}
			seen[i] = true
		}
	}
	calls = nil
	done, largest, err = RunChunks(100, 1, 100, func(lo, hi int) (int, error) {
		record(lo, hi)
		if hi > 2 {
			return hi - lo - 1, errors.New("quota exceeded")
		}
		return hi - lo, nil
	})
	// Batch 1 succeeds; batch 2 (items 1-2) has one failure, so batch 4 never runs.
	if done != 2 || largest != 1 || err == nil || len(calls) != 2 {
		t.Fatalf("failing: done %d, largest %d, err %v, calls %v", done, largest, err, calls)
	}
}
