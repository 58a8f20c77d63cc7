package scheduler

import (
	"container/heap"
	"context"
	"maps"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/types"
)

// QueuedPod is a pending pod as the queue holds it.
type QueuedPod struct {
	Pod *corev1.Pod
	Key string
	// Attempts counts the scheduling attempts so far; it sets the back-off.
	Attempts int
	// Cycle is the scheduling cycle in which the pod was last popped.
	Cycle int64
	// RetryOnPodAdded, set by the scheduler before AddUnschedulable, says that a pod
	// bound anywhere may make this one fit (a plugin that rejected it is
	// PodAddSensitive): such a pod is retried on that event too.
	RetryOnPodAdded bool

	// priority is the pod's spec.priority (0 without one): higher goes first.
	priority int32
	// created is the pod's creationTimestamp: whole seconds, so pods created within
	// one second tie, and seq (the order the queue saw them) keeps them first in,
	// first out.
	created   time.Time
	seq       uint64
	uid       types.UID // of the pod as popped
	backoffAt time.Time // when its back-off ends
	parkedAt  time.Time // when it became unschedulable
	index     int       // in its heap
}

// QueueConfig tunes a Queue.
type QueueConfig struct {
	InitialBackoff, MaxBackoff time.Duration
	// MaxUnschedulable is how long a pod stays unschedulable without an event.
	MaxUnschedulable time.Duration
	Now              func() time.Time
}

// Queue holds the pods waiting for a node, in three parts (Kubernetes'
// PriorityQueue):
//   - active: ready to be tried, highest priority first, then oldest first (by
//     creation time, then arrival), as Kubernetes' PrioritySort orders them;
//   - backoff: failed recently, waiting out a back-off that doubles per attempt;
//   - unschedulable: no node fitted; they wait for a cluster event that may make one
//     fit (a node added or changed, a pod deleted; a pod bound, for pods waiting on
//     other pods' placement), or for MaxUnschedulable.
//
// A pod is in at most one part, or in flight (popped, being scheduled). An event that
// arrives while pods are in flight sends them to back-off rather than unschedulable
// when they fail, since the event may already have made them fit.
type Queue struct {
	cfg    QueueConfig
	notify chan struct{} // wakes Pop
	// flushWake wakes Run when a pod enters back-off or becomes unschedulable, so that
	// its timer covers the new deadline.
	flushWake chan struct{}

	mu            sync.Mutex
	active        podHeap
	backoff       podHeap
	unschedulable map[string]*QueuedPod
	// waitingForPods holds the unschedulable pods with RetryOnPodAdded.
	waitingForPods map[string]*QueuedPod
	where          map[string]*podHeap // the heap a queued key is in
	inFlight       map[string]*QueuedPod
	gone           map[string]bool // in-flight keys deleted meanwhile
	cycle          int64
	moveCycle      int64 // the cycle in which the last move event came
	podAddCycle    int64 // the cycle in which the last pod-bound event came
	seq            uint64
}

// NewQueue makes an empty queue. Run moves pods out of back-off as their time comes.
func NewQueue(cfg QueueConfig) *Queue {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Queue{cfg: cfg, notify: make(chan struct{}, 1), flushWake: make(chan struct{}, 1),
		active: podHeap{less: byPriority}, backoff: podHeap{less: byBackoff},
		unschedulable: map[string]*QueuedPod{}, waitingForPods: map[string]*QueuedPod{}, where: map[string]*podHeap{},
		inFlight: map[string]*QueuedPod{}, gone: map[string]bool{}}
}

func podKey(pod *corev1.Pod) string { return pod.Namespace + "/" + pod.Name }

// podPriority is a pod's priority, which the Priority admission sets: 0 without one.
func podPriority(pod *corev1.Pod) int32 {
	if pod.Spec.Priority != nil {
		return *pod.Spec.Priority
	}
	return 0
}

func (q *Queue) wake() { signal(q.notify) }

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// Add queues a new pending pod, or updates a queued one.
func (q *Queue) Add(pod *corev1.Pod) { q.Update(nil, pod) }

// Update records a pending pod's new state. A pod that was unschedulable is tried
// again when what the scheduler looks at changed (not for a status write).
func (q *Queue) Update(old, pod *corev1.Pod) {
	key := podKey(pod)
	q.mu.Lock()
	defer q.mu.Unlock()
	if qp, ok := q.inFlight[key]; ok {
		qp.Pod = pod
		delete(q.gone, key)
		return
	}
	if h, ok := q.where[key]; ok {
		qp := h.get(key)
		qp.Pod = pod
		return
	}
	if qp, ok := q.unschedulable[key]; ok {
		qp.Pod = pod
		if old == nil || schedulingChanged(old, pod) {
			q.unpark(key)
			q.requeueLocked(qp)
		}
		return
	}
	q.seq++
	qp := &QueuedPod{Pod: pod, Key: key, priority: podPriority(pod), created: pod.CreationTimestamp.Time, seq: q.seq}
	q.push(&q.active, qp)
	q.wake()
}

// schedulingChanged reports whether an update changed what scheduling looks at.
func schedulingChanged(old, pod *corev1.Pod) bool {
	return !equality.Semantic.DeepEqual(&old.Spec, &pod.Spec) || !maps.Equal(old.Labels, pod.Labels)
}

// Delete drops a pod: deleted, or bound.
func (q *Queue) Delete(pod *corev1.Pod) {
	key := podKey(pod)
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.inFlight[key]; ok {
		q.gone[key] = true
		return
	}
	if h, ok := q.where[key]; ok {
		h.remove(key)
		delete(q.where, key)
	}
	q.unpark(key)
}

// unpark takes a pod out of unschedulable.
func (q *Queue) unpark(key string) {
	delete(q.unschedulable, key)
	delete(q.waitingForPods, key)
}

func (q *Queue) push(h *podHeap, qp *QueuedPod) {
	heap.Push(h, qp)
	q.where[qp.Key] = h
}

// Pop waits for an active pod and hands it out; the caller reports its outcome with
// Done, AddUnschedulable or AddBackoff.
func (q *Queue) Pop(ctx context.Context) (*QueuedPod, error) {
	for {
		q.mu.Lock()
		if q.active.Len() > 0 {
			qp := heap.Pop(&q.active).(*QueuedPod)
			delete(q.where, qp.Key)
			q.cycle++
			qp.Cycle = q.cycle
			qp.Attempts++
			qp.uid = qp.Pod.UID
			q.inFlight[qp.Key] = qp
			more := q.active.Len() > 0
			q.mu.Unlock()
			if more {
				q.wake()
			}
			return qp, nil
		}
		q.mu.Unlock()
		select {
		case <-q.notify:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Done ends a popped pod's cycle: it was assumed onto a node (or dropped). A new pod
// of the same name that arrived meanwhile is queued.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp, ok := q.inFlight[key]
	gone := q.gone[key]
	delete(q.inFlight, key)
	delete(q.gone, key)
	if ok && !gone && qp.Pod.UID != qp.uid {
		// A new pod: it queues as one, behind those that arrived before it.
		q.seq++
		qp.Attempts, qp.priority, qp.created, qp.seq = 0, podPriority(qp.Pod), qp.Pod.CreationTimestamp.Time, q.seq
		q.push(&q.active, qp)
		q.wake()
	}
}

// takeInFlight ends qp's cycle and reports whether it should be queued again.
func (q *Queue) takeInFlight(qp *QueuedPod) (*QueuedPod, bool) {
	if cur, ok := q.inFlight[qp.Key]; ok {
		delete(q.inFlight, qp.Key)
		if q.gone[qp.Key] {
			delete(q.gone, qp.Key)
			return nil, false
		}
		qp = cur
	}
	if _, queued := q.where[qp.Key]; queued {
		return nil, false // queued again meanwhile, with a newer state
	}
	if _, parked := q.unschedulable[qp.Key]; parked {
		return nil, false
	}
	return qp, true
}

// AddUnschedulable parks a pod no node fitted until an event may make one fit. When
// such an event came during its cycle it goes to back-off instead.
func (q *Queue) AddUnschedulable(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp, ok := q.takeInFlight(qp)
	if !ok {
		return
	}
	now := q.cfg.Now()
	qp.backoffAt = now.Add(q.backoffDuration(qp))
	if q.moveCycle >= qp.Cycle || (qp.RetryOnPodAdded && q.podAddCycle >= qp.Cycle) {
		q.push(&q.backoff, qp)
	} else {
		qp.parkedAt = now
		q.unschedulable[qp.Key] = qp
		if qp.RetryOnPodAdded {
			q.waitingForPods[qp.Key] = qp
		}
	}
	signal(q.flushWake)
}

// AddBackoff queues a pod again after its back-off: its cycle or binding failed for a
// reason other than fit.
func (q *Queue) AddBackoff(qp *QueuedPod) {
	q.mu.Lock()
	defer q.mu.Unlock()
	qp, ok := q.takeInFlight(qp)
	if !ok {
		return
	}
	qp.backoffAt = q.cfg.Now().Add(q.backoffDuration(qp))
	q.push(&q.backoff, qp)
	signal(q.flushWake)
}

func (q *Queue) backoffDuration(qp *QueuedPod) time.Duration {
	d := q.cfg.InitialBackoff
	for i := 1; i < qp.Attempts && d < q.cfg.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, q.cfg.MaxBackoff)
}

// requeueLocked sends a pod to active, or to back-off while its back-off lasts.
func (q *Queue) requeueLocked(qp *QueuedPod) {
	if q.cfg.Now().Before(qp.backoffAt) {
		q.push(&q.backoff, qp)
		signal(q.flushWake)
	} else {
		q.push(&q.active, qp)
		q.wake()
	}
}

// MoveAllToActive retries every unschedulable pod: event (a node added or changed, a
// pod deleted) may have made room. Pods still in back-off wait it out first.
func (q *Queue) MoveAllToActive() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.moveCycle = q.cycle
	q.retryLocked(q.unschedulable)
}

// retryLocked requeues the unschedulable pods of parked (unschedulable, or a part of
// it).
func (q *Queue) retryLocked(parked map[string]*QueuedPod) {
	for key, qp := range parked {
		q.unpark(key)
		q.requeueLocked(qp)
	}
}

// MoveWaitingForPods retries the unschedulable pods that a pod bound somewhere (or a
// namespace's new labels) may make fit: those with RetryOnPodAdded. Others stay.
func (q *Queue) MoveWaitingForPods() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.podAddCycle = q.cycle
	q.retryLocked(q.waitingForPods)
}

// Flush moves pods whose back-off ended to active, and pods unschedulable for longer
// than MaxUnschedulable to active (or back-off). It returns when it should next run.
func (q *Queue) Flush() time.Time {
	q.mu.Lock()
	defer q.mu.Unlock()
	now := q.cfg.Now()
	moved := false
	for q.backoff.Len() > 0 && !now.Before(q.backoff.items[0].backoffAt) {
		qp := heap.Pop(&q.backoff).(*QueuedPod)
		q.push(&q.active, qp)
		moved = true
	}
	next := now.Add(q.cfg.MaxUnschedulable)
	for key, qp := range q.unschedulable {
		if deadline := qp.parkedAt.Add(q.cfg.MaxUnschedulable); !now.Before(deadline) {
			q.unpark(key)
			q.requeueLocked(qp)
		} else if deadline.Before(next) {
			next = deadline
		}
	}
	if q.backoff.Len() > 0 && q.backoff.items[0].backoffAt.Before(next) {
		next = q.backoff.items[0].backoffAt
	}
	if moved {
		q.wake()
	}
	return next
}

// Run flushes the back-off and unschedulable pods when their time comes, until ctx
// ends.
func (q *Queue) Run(ctx context.Context) {
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for {
		next := q.Flush()
		t.Reset(max(next.Sub(q.cfg.Now()), 0))
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-q.flushWake:
		}
	}
}

// Lens reports how many pods are active, in back-off and unschedulable.
func (q *Queue) Lens() (active, backoff, unschedulable int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active.Len(), q.backoff.Len(), len(q.unschedulable)
}

// podHeap is a heap of queued pods with an index by key.
type podHeap struct {
	items []*QueuedPod
	byKey map[string]*QueuedPod
	less  func(a, b *QueuedPod) bool
}

// byPriority is Kubernetes' PrioritySort: the higher priority first, then the older
// pod, then the one the queue saw first.
func byPriority(a, b *QueuedPod) bool {
	if a.priority != b.priority {
		return a.priority > b.priority
	}
	if !a.created.Equal(b.created) {
		return a.created.Before(b.created)
	}
	return a.seq < b.seq
}

func byBackoff(a, b *QueuedPod) bool { return a.backoffAt.Before(b.backoffAt) }

func (h *podHeap) Len() int           { return len(h.items) }
func (h *podHeap) Less(i, j int) bool { return h.less(h.items[i], h.items[j]) }
func (h *podHeap) Swap(i, j int) {
	h.items[i], h.items[j] = h.items[j], h.items[i]
	h.items[i].index, h.items[j].index = i, j
}
func (h *podHeap) Push(x any) {
	qp := x.(*QueuedPod)
	if h.byKey == nil {
		h.byKey = map[string]*QueuedPod{}
	}
	qp.index = len(h.items)
	h.items = append(h.items, qp)
	h.byKey[qp.Key] = qp
}
func (h *podHeap) Pop() any {
	last := len(h.items) - 1
	qp := h.items[last]
	h.items[last] = nil
	h.items = h.items[:last]
	delete(h.byKey, qp.Key)
	return qp
}
func (h *podHeap) get(key string) *QueuedPod { return h.byKey[key] }
func (h *podHeap) remove(key string) {
	if qp, ok := h.byKey[key]; ok {
		heap.Remove(h, qp.index)
	}
}
