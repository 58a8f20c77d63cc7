package bench

import (
	"context"
	"errors"
	"runtime/pprof"
	"sync/atomic"
	"testing"
)

// TestCalls: every call is made once, by callers labelled component=benchmark; the first
// error stops the callers and is returned.
func TestCalls(t *testing.T) {
	const total = 1000
	var made [total]atomic.Int32
	var unlabelled atomic.Int32
	err := Calls(t, context.Background(), "test_calls", 7, total, func(ctx context.Context, i int) error {
		made[i].Add(1)
		if v, _ := pprof.Label(ctx, ComponentLabel); v != "benchmark" {
			unlabelled.Add(1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for i := range made {
		if n := made[i].Load(); n != 1 {
			t.Errorf("call %d made %d times", i, n)
		}
	}
	if n := unlabelled.Load(); n != 0 {
		t.Errorf("%d calls without the label component=benchmark", n)
	}

	boom := errors.New("boom")
	var calls atomic.Int32
	err = Calls(t, context.Background(), "test_calls_failing", 3, total, func(ctx context.Context, i int) error {
		calls.Add(1)
		if i == 10 {
			return boom
		}
		return nil
	})
	if !errors.Is(err, boom) {
		t.Errorf("error %v, want %v", err, boom)
	}
	if n := calls.Load(); n == total {
		t.Errorf("all %d calls made after the first failed", n)
	}
}
