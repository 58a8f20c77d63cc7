package slowstart

import (
	"errors"
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
