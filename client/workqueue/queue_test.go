package workqueue

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/internal/workers"
	"github.com/skiffhq/skiff/test/goroutines"
	"github.com/skiffhq/skiff/test/waitfor"
)

// fakeClock advances only when told; timers fire when it passes them.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func (t *fakeTimer) C() <-chan time.Time { return t.c }
func (t *fakeTimer) Stop() bool          { return true }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) NewTimer(d time.Duration) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{at: c.now.Add(d), c: make(chan time.Time, 1)}
	c.timers = append(c.timers, t)
	return t
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	for _, t := range c.timers {
		if !t.at.After(c.now) {
			select {
			case t.c <- c.now:
			default:
			}
		}
	}
	c.mu.Unlock()
}

func waitLen(t *testing.T, q *Queue, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for q.Len() != n {
		if time.Now().After(deadline) {
			t.Fatalf("queue length %d, want %d", q.Len(), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestDedupAndNoConcurrentProcessing(t *testing.T) {
	q := New(Config{})
	defer q.ShutDown()
	q.Add("a")
	q.Add("a")
	q.Add("b")
	if q.Len() != 2 {
		t.Fatalf("len = %d, want 2", q.Len())
	}
	k, _ := q.Get()
	if k != "a" {
		t.Fatalf("got %s", k)
	}
	q.Add("a") // while processing: not handed out again yet
	k2, _ := q.Get()
	if k2 != "b" || q.Len() != 0 {
		t.Fatalf("got %s with %d waiting; a must wait for Done", k2, q.Len())
	}
	q.Done("a")
	if q.Len() != 1 {
		t.Fatal("a was not requeued after Done")
	}
	q.Done("b")
}

func TestRateLimitedRetriesBackOff(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	q := New(Config{BaseDelay: time.Second, MaxDelay: 4 * time.Second, Clock: clk})
	defer q.ShutDown()
	for i, want := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second} {
		q.AddRateLimited("k")
		clk.Advance(want - time.Millisecond)
		time.Sleep(5 * time.Millisecond) // let a wrong timer fire: nothing may arrive early
		if q.Len() != 0 {
			t.Fatalf("retry %d arrived before %v", i, want)
		}
		clk.Advance(time.Millisecond)
		waitLen(t, q, 1)
		k, _ := q.Get()
		q.Done(k)
	}
	if q.NumRequeues("k") != 4 {
		t.Fatalf("requeues = %d", q.NumRequeues("k"))
	}
	q.Forget("k")
	q.AddRateLimited("k")
	clk.Advance(time.Second)
	waitLen(t, q, 1)
}

func TestOverallRetryBudget(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	q := New(Config{BaseDelay: time.Millisecond, RetryQPS: 1, RetryBurst: 2, Clock: clk})
	defer q.ShutDown()
	for _, k := range []string{"a", "b", "c"} {
		q.AddRateLimited(k)
	}
	clk.Advance(time.Millisecond)
	waitLen(t, q, 2) // the burst
	clk.Advance(time.Second)
	waitLen(t, q, 3) // the third waits for a token
}

func TestShutDownDrains(t *testing.T) {
	q := New(Config{})
	q.Add("a")
	k, _ := q.Get()
	var finished atomic.Bool
	done := make(chan struct{})
	go func() {
		q.ShutDown()
		if !finished.Load() {
			t.Error("ShutDown returned before the worker finished")
		}
		close(done)
	}()
	for !q.ShuttingDown() {
		time.Sleep(time.Millisecond)
	}
	finished.Store(true)
	q.Done(k)
	<-done
	if _, shutdown := q.Get(); !shutdown {
		t.Fatal("Get after shutdown did not report it")
	}
	q.Add("x")
	if q.Len() != 0 {
		t.Fatal("Add after shutdown queued a key")
	}
}

func TestRunRetriesAndStops(t *testing.T) {
	q := New(Config{BaseDelay: time.Millisecond, MaxDelay: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	calls := map[string]int{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run(ctx, 2, hclog.NewNullLogger(), func(_ context.Context, key string) (time.Duration, error) {
			mu.Lock()
			defer mu.Unlock()
			calls[key]++
			if key == "flaky" && calls[key] < 3 {
				return 0, errors.New("not yet")
			}
			if key == "again" && calls[key] < 2 {
				return time.Millisecond, nil
			}
			return 0, nil
		})
	}()
	q.Add("flaky")
	q.Add("again")
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		ok := calls["flaky"] == 3 && calls["again"] == 2
		mu.Unlock()
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("calls %v", calls)
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	<-done
	if !q.ShuttingDown() {
		t.Fatal("queue not shut down after Run returned")
	}
}

func TestGetBatch(t *testing.T) {
	q := New(Config{})
	defer q.ShutDown()
	if keys := q.TryGetBatch(10); len(keys) != 0 {
		t.Fatalf("TryGetBatch on an empty queue: %v", keys)
	}
	for _, k := range []string{"a", "b", "c", "a"} {
		q.Add(k)
	}
	keys, shutdown := q.GetBatch(2)
	if shutdown || len(keys) != 2 || keys[0] != "a" || keys[1] != "b" {
		t.Fatalf("GetBatch(2) = %v, %v; want [a b]", keys, shutdown)
	}
	q.Add("a") // while processing: handed out again only after Done
	if keys := q.TryGetBatch(10); len(keys) != 1 || keys[0] != "c" {
		t.Fatalf("TryGetBatch = %v, want [c]", keys)
	}
	q.Done("a")
	q.Done("b")
	q.Done("c")
	if keys := q.TryGetBatch(10); len(keys) != 1 || keys[0] != "a" {
		t.Fatalf("after Done: %v, want the re-added [a]", keys)
	}
	q.Done("a")
	got := make(chan []string)
	go func() { keys, _ := q.GetBatch(10); got <- keys }()
	q.Add("d")
	if keys := <-got; len(keys) != 1 || keys[0] != "d" {
		t.Fatalf("a waiting GetBatch got %v, want [d]", keys)
	}
	q.Done("d")
}

// Run reconciles at most workers keys at once, and an idle queue holds no worker
// goroutine: they are started as keys come and end when none is ready (issue 26: a
// process of simulated nodes runs a queue a node).
func TestRunStartsWorkersAsKeysCome(t *testing.T) {
	const workers, keys = 4, 20
	q := New(Config{})
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	running, peak, reconciled := 0, 0, 0
	gate := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run(ctx, workers, hclog.NewNullLogger(), func(context.Context, string) (time.Duration, error) {
			mu.Lock()
			running++
			peak = max(peak, running)
			mu.Unlock()
			<-gate
			mu.Lock()
			running--
			reconciled++
			mu.Unlock()
			return 0, nil
		})
	}()
	defer func() { cancel(); <-done }()
	for i := range keys {
		q.Add(fmt.Sprint("k", i))
	}
	waitfor.Condition(t, 10*time.Second, "every worker busy", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return running == workers, fmt.Sprint(running, " running")
	})
	close(gate)
	// Idle, one goroutine waits for a key: Run's own.
	waitfor.Condition(t, 10*time.Second, "every key reconciled, one goroutine waiting for the next", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		n := goroutines.Running("workqueue.(*Queue).Get(")
		return reconciled == keys && n == 1, fmt.Sprintf("%d reconciled, %d goroutines waiting", reconciled, n)
	})
	if peak != workers {
		t.Errorf("%d keys reconciled at once, want at most and at peak %d", peak, workers)
	}
}

// With a Pool, Run reconciles on the pool's workers, whose stacks have grown already.
func TestRunOnThePool(t *testing.T) {
	const n, keys = 3, 30
	stop := make(chan struct{})
	defer close(stop)
	q := New(Config{Pool: workers.New(8, time.Hour, stop)})
	ctx, cancel := context.WithCancel(context.Background())
	var mu sync.Mutex
	reconciled, elsewhere := 0, 0
	done := make(chan struct{})
	go func() {
		defer close(done)
		q.Run(ctx, n, hclog.NewNullLogger(), func(context.Context, string) (time.Duration, error) {
			on := goroutines.Within("workers.(*Pool).loop")
			mu.Lock()
			defer mu.Unlock()
			if !on {
				elsewhere++
			}
			reconciled++
			return 0, nil
		})
	}()
	defer func() { cancel(); <-done }()
	for i := range keys {
		q.Add(fmt.Sprint("k", i))
	}
	waitfor.Condition(t, 10*time.Second, "every key reconciled", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return reconciled == keys, fmt.Sprint(reconciled, " reconciled")
	})
	mu.Lock()
	defer mu.Unlock()
	if elsewhere > 0 {
		t.Fatalf("%d of %d keys reconciled off the pool's workers", elsewhere, keys)
	}
}

// A queue holds its delay goroutine only while keys are delayed (issue 26).
func TestDelayGoroutineOnlyWhileDelayed(t *testing.T) {
	q := New(Config{})
	defer q.ShutDown()
	delays := func() int { return goroutines.Running("workqueue.(*Queue).delayLoop") }
	if n := delays(); n != 0 {
		t.Fatalf("%d delay goroutines in a new queue", n)
	}
	q.AddAfter("k", time.Millisecond)
	if key, _ := q.Get(); key != "k" {
		t.Fatalf("Get = %q, want the delayed k", key)
	}
	q.Done("k")
	waitfor.Condition(t, 10*time.Second, "no delay goroutine once no key is delayed", func() (bool, string) {
		n := delays()
		return n == 0, fmt.Sprint(n, " delay goroutines")
	})
	q.AddAfter("k", time.Millisecond) // started again
	if key, _ := q.Get(); key != "k" {
		t.Fatalf("Get = %q, want k delayed again", key)
	}
	q.Done("k")
}

// A delayed key whose time has come is ready whether or not the delay goroutine has
// woken to move it: TryGetBatch, GetBatch and Get taken just after the time have it
// (here the clock moves without firing the goroutine's timer).
func TestDueDelayedKeyIsReady(t *testing.T) {
	clk := &fakeClock{now: time.Unix(1000, 0)}
	q := New(Config{Clock: clk})
	defer q.ShutDown()
	later := func() { // past every delay, the timers not fired
		clk.mu.Lock()
		clk.now = clk.now.Add(time.Second)
		clk.mu.Unlock()
	}
	q.AddAfter("a", time.Second)
	q.Add("now")
	if got := q.TryGetBatch(10); len(got) != 1 || got[0] != "now" {
		t.Fatalf("before its time: %v, want [now]", got)
	}
	q.Done("now")
	later()
	if got := q.TryGetBatch(10); len(got) != 1 || got[0] != "a" {
		t.Fatalf("TryGetBatch after its time: %v, want [a]", got)
	}
	q.Done("a")
	for _, get := range []struct {
		name string
		f    func() []string
	}{
		{"GetBatch", func() []string { keys, _ := q.GetBatch(10); return keys }},
		{"Get", func() []string { key, _ := q.Get(); return []string{key} }},
	} {
		q.AddAfter("b", time.Second)
		later()
		got := make(chan []string, 1)
		go func() { got <- get.f() }()
		select {
		case keys := <-got:
			if len(keys) != 1 || keys[0] != "b" {
				t.Fatalf("%s after its time: %v, want [b]", get.name, keys)
			}
		case <-time.After(10 * time.Second):
			q.Add("unblock") // let the goroutine end
			t.Fatalf("%s after the key's time: still waiting after 10 s", get.name)
		}
		q.Done("b")
	}
}
