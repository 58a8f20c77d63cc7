package slowstart

import (
	"errors"
	"fmt"
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

// TestRunBatches: each batch is one call covering its range of the n, in RunFrom's
// doubling sizes, and a batch with a failure ends the run.
func TestRunBatches(t *testing.T) {
	var got [][2]int
	ok, largest, err := RunBatches(10, 1, func(start, size int) []error {
		got = append(got, [2]int{start, size})
		return make([]error, size)
	})
	want := [][2]int{{0, 1}, {1, 2}, {3, 4}, {7, 3}}
	if ok != 10 || largest != 4 || err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("ok %d, largest %d, err %v, batches %v; want 10, 4, nil, %v", ok, largest, err, got, want)
	}
	got = nil
	ok, largest, err = RunBatches(10, 1, func(start, size int) []error {
		got = append(got, [2]int{start, size})
		errs := make([]error, size)
		if start == 3 {
			errs[1] = errors.New("quota exceeded")
		}
		return errs
	})
	// Batches 1 and 2 succeed; batch 4 has one failure, so the last batch never runs.
	if ok != 6 || largest != 2 || err == nil || len(got) != 3 {
		t.Fatalf("failing: ok %d, largest %d, err %v, batches %v", ok, largest, err, got)
	}
}

// TestMemory: an object's creations begin with the largest batch that last succeeded
// for it, each object its own; a failure (or Forget) sends it back to 1.
func TestMemory(t *testing.T) {
	var m Memory
	run := func(key string, n, failAt int) [][2]int {
		var got [][2]int
		m.RunBatches(key, n, func(start, size int) []error {
			got = append(got, [2]int{start, size})
			errs := make([]error, size)
			if failAt >= start && failAt < start+size {
				errs[failAt-start] = errors.New("quota exceeded")
			}
			return errs
		})
		return got
	}
	for _, step := range []struct {
		key       string
		n, failAt int
		want      string
	}{
		{"a", 10, -1, "[[0 1] [1 2] [3 4] [7 3]]"}, // the first creations slow-start from 1
		{"a", 7, -1, "[[0 4] [4 3]]"},              // then from the 4 that succeeded
		{"b", 3, -1, "[[0 1] [1 2]]"},              // another object has its own
		{"a", 3, -1, "[[0 3]]"},                    // a smaller run keeps the 4
		{"a", 12, -1, "[[0 4] [4 8]]"},
		{"a", 20, 9, "[[0 8] [8 12]]"}, // from 8; a failure in the second batch ends the run
		{"a", 3, -1, "[[0 1] [1 2]]"},  // and the next begins at 1
	} {
		if got := fmt.Sprint(run(step.key, step.n, step.failAt)); got != step.want {
			t.Fatalf("%s: %d creations: batches %s, want %s", step.key, step.n, got, step.want)
		}
	}
	m.Forget("b")
	if got := fmt.Sprint(run("b", 3, -1)); got != "[[0 1] [1 2]]" {
		t.Fatalf("after Forget: batches %s, want [[0 1] [1 2]]", got)
	}
}
