package kubelet

import (
	"context"
	"sync"
	"time"

	"github.com/skiffhq/skiff/client/workqueue"
)

// every runs step at once, then again each time the wait it returned has passed, until
// ctx ends; wg counts it until then, the step under way included. Between steps no
// goroutine waits: the step is called from a timer's function (time.AfterFunc on the
// wall clock), so a node's periodic work — its status, its Lease, its relist — holds a
// goroutine only while it runs. A process of thousands of simulated nodes held three
// sleeping goroutines a node for them, with their stacks (issue 26); the Go runtime's
// timers are now the one loop that wakes every node's work when it is due. A step is
// never run twice at once: the next is scheduled only when the last has returned. The
// steps run on the kubelet's Pool: the timer's own goroutine hands the step to a worker
// whose stack has grown to a call's depth already, instead of growing its own.
func (k *Kubelet) every(ctx context.Context, wg *sync.WaitGroup, step func(context.Context) time.Duration) {
	wg.Add(1)
	var (
		mu   sync.Mutex
		t    workqueue.Timer // the timer of the next step; nil while the first runs
		done bool            // wg is done
		fire func()
	)
	end := func() {
		if !done {
			done = true
			wg.Done()
		}
	}
	fire = func() {
		var wait time.Duration
		if ctx.Err() == nil {
			wait = step(ctx)
		}
		mu.Lock()
		defer mu.Unlock()
		if ctx.Err() != nil {
			end()
			return
		}
		t = afterFunc(k.cfg.Clock, wait, func() { k.cfg.Pool.Go(fire) })
	}
	k.cfg.Pool.Go(fire)
	context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		// A timer stopped before it fired ends the loop here; a step under way (the
		// first, or one whose timer fired) ends it in fire, which sees ctx ended.
		if t != nil && t.Stop() {
			end()
		}
	})
}

// funcClock is a Clock that calls a function when a timer fires without a goroutine
// waiting for it (the wall clock: time.AfterFunc).
type funcClock interface {
	AfterFunc(d time.Duration, f func()) workqueue.Timer
}

// afterFunc calls f in a goroutine of its own once d has passed on c, unless the timer
// returned is stopped first. On a clock without AfterFunc (a test's fake) a goroutine
// waits for the timer.
func afterFunc(c Clock, d time.Duration, f func()) workqueue.Timer {
	if fc, ok := c.(funcClock); ok {
		return fc.AfterFunc(d, f)
	}
	w := &waitingTimer{t: c.NewTimer(d), stop: make(chan struct{})}
	go func() {
		select {
		case <-w.t.C():
			f()
		case <-w.stop:
		}
	}()
	return w
}

// waitingTimer is a timer of a clock without AfterFunc and the goroutine waiting on it.
type waitingTimer struct {
	t    workqueue.Timer
	stop chan struct{}
}

func (w *waitingTimer) C() <-chan time.Time { return nil } // f is called instead
func (w *waitingTimer) Stop() bool {
	if !w.t.Stop() {
		return false // fired: f runs, or has
	}
	close(w.stop)
	return true
}
