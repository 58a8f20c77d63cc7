package scheduler

import (
	"context"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time       { return c.t }
func (c *fakeClock) step(d time.Duration) { c.t = c.t.Add(d) }
func newTestQueue() (*Queue, *fakeClock) {
	clk := &fakeClock{t: epoch}
	return NewQueue(QueueConfig{InitialBackoff: time.Second, MaxBackoff: 10 * time.Second, MaxUnschedulable: time.Minute, Now: clk.now}), clk
}

// pop takes the next active pod without blocking.
func pop(t *testing.T, q *Queue) *QueuedPod {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	qp, err := q.Pop(ctx)
	if err != nil {
		t.Fatalf("pop: %v", err)
	}
	return qp
}

func wantLens(t *testing.T, q *Queue, active, backoff, unsched int) {
	t.Helper()
	a, b, u := q.Lens()
	if a != active || b != backoff || u != unsched {
		t.Fatalf("queue lengths active/backoff/unschedulable = %d/%d/%d, want %d/%d/%d", a, b, u, active, backoff, unsched)
	}
}

func TestQueueFIFOByCreation(t *testing.T) {
	q, _ := newTestQueue()
	q.Add(makePod("c", "", "", createdAt(3)))
	q.Add(makePod("a", "", "", createdAt(1)))
	q.Add(makePod("b", "", "", createdAt(2)))
	q.Add(makePod("a", "", "", createdAt(1))) // a duplicate add updates in place
	wantLens(t, q, 3, 0, 0)
	for _, want := range []string{"default/a", "default/b", "default/c"} {
		if qp := pop(t, q); qp.Key != want {
			t.Fatalf("popped %s, want %s", qp.Key, want)
		}
	}
}

// creationTimestamp keeps whole seconds only, so pods created within one second tie:
// they leave in the order the queue saw them.
func TestQueueFIFOWithinASecond(t *testing.T) {
	q, _ := newTestQueue()
	for _, name := range []string{"z", "b", "y", "a"} {
		q.Add(makePod(name, "", "", createdAt(2)))
	}
	q.Add(makePod("old", "", "", createdAt(1)))
	for _, want := range []string{"default/old", "default/z", "default/b", "default/y", "default/a"} {
		if qp := pop(t, q); qp.Key != want {
			t.Fatalf("popped %s, want %s", qp.Key, want)
		}
	}
}

// A new pod of a name in flight queues behind the pods that arrived before it, even
// within the same second.
func TestQueueReplacedPodQueuesBehind(t *testing.T) {
	q, _ := newTestQueue()
	q.Add(makePod("e", "", "", createdAt(1)))
	qp := pop(t, q)
	q.Add(makePod("f", "", "", createdAt(1)))
	e2 := makePod("e", "", "", createdAt(1))
	e2.UID = "uid-e2"
	q.Delete(qp.Pod)
	q.Add(e2)
	q.Done(qp.Key)
	for _, want := range []string{"default/f", "default/e"} {
		if qp := pop(t, q); qp.Key != want {
			t.Fatalf("popped %s, want %s", qp.Key, want)
		}
	}
}

func TestQueuePopWaitsForAdd(t *testing.T) {
	q, _ := newTestQueue()
	got := make(chan string, 1)
	go func() {
		qp, err := q.Pop(context.Background())
		if err == nil {
			got <- qp.Key
		}
	}()
	q.Add(makePod("a", "", ""))
	select {
	case k := <-got:
		if k != "default/a" {
			t.Fatalf("popped %s", k)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Pop did not return after Add")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := q.Pop(ctx); err == nil {
		t.Fatal("Pop on an empty queue with a cancelled context returned a pod")
	}
}

func TestQueueUnschedulableMovesOnEvent(t *testing.T) {
	q, clk := newTestQueue()
	q.Add(makePod("a", "", ""))
	qp := pop(t, q)
	q.AddUnschedulable(qp)
	wantLens(t, q, 0, 0, 1)
	q.Flush()
	wantLens(t, q, 0, 0, 1) // no event: it waits

	// An event during its back-off sends it to back-off, then active when that ends.
	q.MoveAllToActive()
	wantLens(t, q, 0, 1, 0)
	clk.step(999 * time.Millisecond)
	q.Flush()
	wantLens(t, q, 0, 1, 0)
	clk.step(time.Millisecond)
	q.Flush()
	wantLens(t, q, 1, 0, 0)

	// After its back-off, an event sends it straight to active.
	qp = pop(t, q)
	q.AddUnschedulable(qp)
	clk.step(time.Minute - time.Second)
	q.MoveAllToActive()
	wantLens(t, q, 1, 0, 0)
}

func TestQueueUnschedulableTimesOut(t *testing.T) {
	q, clk := newTestQueue()
	q.Add(makePod("a", "", ""))
	q.AddUnschedulable(pop(t, q))
	clk.step(59 * time.Second)
	if next := q.Flush(); !next.Equal(clk.t.Add(time.Second)) {
		t.Fatalf("next flush at %v, want %v", next, clk.t.Add(time.Second))
	}
	wantLens(t, q, 0, 0, 1)
	clk.step(time.Second)
	q.Flush()
	wantLens(t, q, 1, 0, 0)
}

func TestQueueEventDuringCycleSkipsParking(t *testing.T) {
	q, _ := newTestQueue()
	q.Add(makePod("a", "", ""))
	qp := pop(t, q)
	q.MoveAllToActive() // a node arrived while the pod was being scheduled
	q.AddUnschedulable(qp)
	wantLens(t, q, 0, 1, 0)
}

func TestQueueBackoffDoubles(t *testing.T) {
	q, clk := newTestQueue()
	q.Add(makePod("a", "", ""))
	for attempt, want := range []time.Duration{1, 2, 4, 8, 10, 10} {
		qp := pop(t, q)
		if qp.Attempts != attempt+1 {
			t.Fatalf("attempts %d, want %d", qp.Attempts, attempt+1)
		}
		q.AddBackoff(qp)
		clk.step(want*time.Second - time.Millisecond)
		q.Flush()
		wantLens(t, q, 0, 1, 0)
		clk.step(time.Millisecond)
		q.Flush()
		wantLens(t, q, 1, 0, 0)
	}
}

func TestQueueUpdateAndDelete(t *testing.T) {
	q, _ := newTestQueue()
	a := makePod("a", "", "")
	q.Add(a)
	qp := pop(t, q)
	q.AddUnschedulable(qp)

	// A status-only update leaves it parked; a spec change retries it.
	b := makePod("a", "", "")
	b.Status.Message = "x"
	q.Update(a, b)
	wantLens(t, q, 0, 0, 1)
	c := makePod("a", "", "", withSelector("k", "v"))
	q.Update(b, c)
	wantLens(t, q, 0, 1, 0) // still in its back-off

	q.Delete(c)
	wantLens(t, q, 0, 0, 0)

	// Deleted while in flight: not queued again.
	q.Add(a)
	qp = pop(t, q)
	q.Delete(a)
	q.AddBackoff(qp)
	wantLens(t, q, 0, 0, 0)

	// Updated while in flight: queued again with the newer pod.
	q.Add(a)
	qp = pop(t, q)
	q.Update(a, c)
	q.AddBackoff(qp)
	wantLens(t, q, 0, 1, 0)
	if got := q.backoff.items[0].Pod; got != c {
		t.Fatal("requeued pod is not the latest state")
	}

	// Replaced by a new pod of the name while in flight: Done queues the new one.
	q.Add(makePod("e", "", ""))
	qp = pop(t, q)
	e2 := makePod("e", "", "")
	e2.UID = "uid-e2"
	q.Delete(qp.Pod)
	q.Add(e2)
	q.Done(qp.Key)
	wantLens(t, q, 1, 1, 0)
	if qp = pop(t, q); qp.Pod != e2 {
		t.Fatal("the new pod was not queued")
	}
	q.Done(qp.Key)

	// Done ends a cycle: nothing is queued.
	q.Add(makePod("d", "", ""))
	q.Done(pop(t, q).Key)
	wantLens(t, q, 0, 1, 0)
}

// A pod bound somewhere retries only the pods waiting on other pods' placement (pod
// affinity, spread); one that waits for room stays parked.
func TestQueuePodBoundRetriesThoseWaitingForPods(t *testing.T) {
	q, clk := newTestQueue()
	q.Add(makePod("affinity", "", "", createdAt(1)))
	q.Add(makePod("cpu", "", "", createdAt(2)))
	aff := pop(t, q)
	aff.RetryOnPodAdded = true
	q.AddUnschedulable(aff)
	q.AddUnschedulable(pop(t, q))
	wantLens(t, q, 0, 0, 2)
	clk.step(time.Second) // past their back-off
	q.MoveWaitingForPods()
	wantLens(t, q, 1, 0, 1)
	if qp := pop(t, q); qp.Key != "default/affinity" {
		t.Fatalf("retried %s", qp.Key)
	}

	// A pod bound while it was being scheduled: it backs off instead of parking.
	q.MoveWaitingForPods()
	aff.RetryOnPodAdded = true
	q.AddUnschedulable(aff)
	wantLens(t, q, 0, 1, 1)
}
