package kubelet

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	testingclock "k8s.io/utils/clock/testing"

	"github.com/skiffhq/skiff/internal/workers"
	"github.com/skiffhq/skiff/test/goroutines"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestPeriodicWorkHoldsNoGoroutine: 200 kubelets' periodic steps (a node's status, Lease
// and relist loops are each one), each due again in an hour, hold no goroutine while
// they wait: before, each was a goroutine sleeping on its timer. Each ran once at once,
// and all end with their context, wg counting them until then.
func TestPeriodicWorkHoldsNoGoroutine(t *testing.T) {
	const loops = 200
	k := &Kubelet{cfg: DefaultConfig()}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var ran atomic.Int64
	for range loops {
		k.every(ctx, &wg, func(context.Context) time.Duration {
			ran.Add(1)
			return time.Hour
		})
	}
	waitfor.Condition(t, time.Minute, "every step run once", func() (bool, string) {
		return ran.Load() == loops, fmt.Sprintf("%d of %d", ran.Load(), loops)
	})
	// The step's goroutine ends just after it returns: wait for none to be left.
	waitfor.Condition(t, time.Minute, "no goroutine of a step left", func() (bool, string) {
		n := goroutines.Running("kubelet.(*Kubelet).every")
		return n == 0, fmt.Sprintf("%d goroutines in every", n)
	})
	if n := ran.Load(); n != loops {
		t.Fatalf("%d steps ran, want %d (each once)", n, loops)
	}
	cancel()
	wg.Wait()
}

// TestPeriodicWorkOnThePool: with a Pool (the simulated nodes of a process share one),
// every step runs on one of its workers, whose stack has grown already, not on a
// goroutine of its own: the first step and those its timer starts.
func TestPeriodicWorkOnThePool(t *testing.T) {
	const loops = 50
	stop := make(chan struct{})
	defer close(stop)
	cfg := DefaultConfig()
	cfg.Pool = workers.New(loops, time.Hour, stop)
	k := &Kubelet{cfg: cfg}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ran, elsewhere atomic.Int64
	for range loops {
		k.every(ctx, &wg, func(context.Context) time.Duration {
			if !goroutines.Within("workers.(*Pool).loop") {
				elsewhere.Add(1)
			}
			if ran.Add(1) > loops {
				return time.Hour // the second step of each: enough
			}
			return time.Millisecond
		})
	}
	waitfor.Condition(t, time.Minute, "every step run twice", func() (bool, string) {
		return ran.Load() >= 2*loops, fmt.Sprintf("%d of %d", ran.Load(), 2*loops)
	})
	cancel()
	wg.Wait()
	if n := elsewhere.Load(); n > 0 {
		t.Fatalf("%d of %d steps ran on a goroutine of their own, not on the pool's workers", n, ran.Load())
	}
}

// TestPeriodicWorkFollowsItsWaits: on a fake clock, a step runs again when the wait it
// returned has passed and not before, is never run twice at once, and is not run after
// its context ended.
func TestPeriodicWorkFollowsItsWaits(t *testing.T) {
	clk := testClock{testingclock.NewFakeClock(time.Unix(1000, 0))}
	cfg := DefaultConfig()
	cfg.Clock = clk
	k := &Kubelet{cfg: cfg}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var ran, running atomic.Int64
	k.every(ctx, &wg, func(context.Context) time.Duration {
		if running.Add(1) != 1 {
			t.Error("a step ran while another did")
		}
		defer running.Add(-1)
		ran.Add(1)
		return 10 * time.Second
	})
	wantRuns := func(n int64) {
		t.Helper()
		waitfor.Condition(t, time.Minute, fmt.Sprintf("%d steps run", n), func() (bool, string) {
			return ran.Load() == n && running.Load() == 0 && clk.HasWaiters(), fmt.Sprintf("%d run", ran.Load())
		})
	}
	wantRuns(1)
	clk.Step(9 * time.Second)
	if n := ran.Load(); n != 1 {
		t.Fatalf("%d steps run 9s after the first, want 1", n)
	}
	clk.Step(time.Second)
	wantRuns(2)
	clk.Step(10 * time.Second)
	wantRuns(3)
	cancel()
	wg.Wait()
	clk.Step(time.Minute)
	if n := ran.Load(); n != 3 {
		t.Fatalf("%d steps run after the context ended, want 3", n)
	}
}
