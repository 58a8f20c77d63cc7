// Package workqueue is the queue between informer handlers and a controller's workers
// (client-go's workqueue, smaller): keys are deduplicated while waiting, a key is never
// handed to two workers at once (one added while it is processed is handed out again
// after Done), retries are rate limited per key (exponential) and overall (token bucket),
// and shutdown lets workers drain what they hold.
package workqueue

import (
	"container/heap"
	"math"
	"sync"
	"time"

	"github.com/skiffhq/skiff/internal/workers"
)

// Clock is the time the queue runs on (tests inject a fake).
type Clock interface {
	Now() time.Time
	NewTimer(d time.Duration) Timer
}

// Timer is the part of *time.Timer the queue uses.
type Timer interface {
	C() <-chan time.Time
	Stop() bool
}

type realClock struct{}

func (realClock) Now() time.Time                 { return time.Now() }
func (realClock) NewTimer(d time.Duration) Timer { return realTimer{time.NewTimer(d)} }

type realTimer struct{ t *time.Timer }

func (t realTimer) C() <-chan time.Time { return t.t.C }
func (t realTimer) Stop() bool          { return t.t.Stop() }

// Config tunes a queue. Zero fields take the defaults.
type Config struct {
	// BaseDelay and MaxDelay bound a key's exponential retry delay (5ms doubling to 60s).
	BaseDelay, MaxDelay time.Duration
	// RetryQPS and RetryBurst bound all retries together (100/s, burst 1000). They do not
	// slow first attempts: a controller keeps up with the store, not with a quota.
	RetryQPS   float64
	RetryBurst int
	Clock      Clock
	// Pool runs Run's workers on goroutines kept warm (internal/workers), shared by the
	// queues of a process; nil: each on a goroutine of its own.
	Pool *workers.Pool
}

// Queue is a rate-limited, deduplicating work queue of string keys.
type Queue struct {
	cfg  Config
	mu   sync.Mutex
	cond *sync.Cond

	queue      []string
	dirty      map[string]bool // waiting (in queue, or re-added while processing)
	processing map[string]bool
	failures   map[string]int

	waiting     delayHeap
	waitingKeys map[string]*delayed
	wake        chan struct{}

	tokens   float64
	lastFill time.Time

	shuttingDown bool
	stopped      chan struct{}
	// delaying: the delay goroutine runs (it ends when no key is delayed); delays
	// counts it, for ShutDown to wait.
	delaying bool
	delays   sync.WaitGroup
}

// New makes a queue. A goroutine moves delayed keys into it while there are any
// (ShutDown stops it): an idle queue holds none (issue 26: a process of simulated nodes
// holds two queues a node).
func New(cfg Config) *Queue {
	if cfg.BaseDelay <= 0 {
		cfg.BaseDelay = 5 * time.Millisecond
	}
	if cfg.MaxDelay <= 0 {
		cfg.MaxDelay = 60 * time.Second
	}
	if cfg.RetryQPS <= 0 {
		cfg.RetryQPS = 100
	}
	if cfg.RetryBurst <= 0 {
		cfg.RetryBurst = 1000
	}
	if cfg.Clock == nil {
		cfg.Clock = realClock{}
	}
	q := &Queue{
		cfg: cfg, dirty: map[string]bool{}, processing: map[string]bool{}, failures: map[string]int{},
		waitingKeys: map[string]*delayed{}, wake: make(chan struct{}, 1),
		tokens: float64(cfg.RetryBurst), lastFill: cfg.Clock.Now(),
		stopped: make(chan struct{}),
	}
	q.cond = sync.NewCond(&q.mu)
	return q
}

// Add queues key unless it is already waiting.
func (q *Queue) Add(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.add(key)
}

func (q *Queue) add(key string) {
	if q.shuttingDown || q.dirty[key] {
		return
	}
	q.dirty[key] = true
	if q.processing[key] {
		return // handed out again after Done
	}
	q.queue = append(q.queue, key)
	q.cond.Signal()
}

// Len is the number of keys waiting to be handed out.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.queue)
}

// Get blocks until a key is ready and hands it to the caller, who must call Done(key)
// when finished. shutdown is true once the queue is shut down and empty.
func (q *Queue) Get() (key string, shutdown bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.promoteDue()
	if !q.waitReady() {
		return "", true
	}
	return q.take(), false
}

// GetBatch is Get for up to max keys: it blocks until a key is ready, then hands out the
// ready keys, oldest first, up to max. The caller calls Done for each.
func (q *Queue) GetBatch(max int) (keys []string, shutdown bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.promoteDue()
	if !q.waitReady() {
		return nil, true
	}
	return q.takeUpTo(max), false
}

// TryGetBatch is GetBatch without the wait: the keys ready now, up to max, maybe none.
func (q *Queue) TryGetBatch(max int) []string {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.promoteDue()
	return q.takeUpTo(max)
}

// promoteDue queues the delayed keys whose time has come: they are ready whether or not
// the delay goroutine has woken to move them yet. A batch taken the moment a delay ends
// has the keys it delayed (the Event recorder's events held back through a pause come
// back in the batch that ends it), however late the goroutine runs on a busy machine.
// Called with q.mu held.
func (q *Queue) promoteDue() {
	if q.waiting.Len() == 0 {
		return
	}
	now := q.cfg.Clock.Now()
	for q.waiting.Len() > 0 && !q.waiting[0].at.After(now) {
		w := heap.Pop(&q.waiting).(*delayed)
		delete(q.waitingKeys, w.key)
		q.add(w.key)
	}
}

// takeUpTo hands out the ready keys, oldest first, up to max. Called with q.mu held.
func (q *Queue) takeUpTo(max int) []string {
	var keys []string
	for len(keys) < max && len(q.queue) > 0 {
		keys = append(keys, q.take())
	}
	return keys
}

// waitReady waits until a key is ready (true) or the queue is shut down and empty.
// Called with q.mu held.
func (q *Queue) waitReady() bool {
	for len(q.queue) == 0 && !q.shuttingDown {
		q.cond.Wait()
	}
	return len(q.queue) > 0
}

// take hands out the oldest ready key. Called with q.mu held.
func (q *Queue) take() string {
	key := q.queue[0]
	q.queue[0] = ""
	q.queue = q.queue[1:]
	q.processing[key] = true
	delete(q.dirty, key)
	return key
}

// Done marks key finished; if it was added meanwhile, it is queued again.
func (q *Queue) Done(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.processing, key)
	if q.dirty[key] {
		q.queue = append(q.queue, key)
		q.cond.Signal()
	}
	if q.shuttingDown && len(q.processing) == 0 {
		q.cond.Broadcast()
	}
}

// AddAfter queues key after d (at once when d <= 0). A key already waiting for a later
// time moves earlier; never later.
func (q *Queue) AddAfter(key string, d time.Duration) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.addAfter(key, d)
}

func (q *Queue) addAfter(key string, d time.Duration) {
	if q.shuttingDown {
		return
	}
	if d <= 0 {
		q.add(key)
		return
	}
	at := q.cfg.Clock.Now().Add(d)
	if w, ok := q.waitingKeys[key]; ok {
		if at.Before(w.at) {
			w.at = at
			heap.Fix(&q.waiting, w.index)
		}
	} else {
		w := &delayed{key: key, at: at}
		q.waitingKeys[key] = w
		heap.Push(&q.waiting, w)
	}
	if !q.delaying {
		q.delaying = true
		q.delays.Go(q.delayLoop)
		return
	}
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// AddRateLimited queues key after its retry delay: BaseDelay·2^failures, capped, and no
// sooner than the overall retry budget allows.
func (q *Queue) AddRateLimited(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n := q.failures[key]
	q.failures[key] = n + 1
	d := time.Duration(float64(q.cfg.BaseDelay) * math.Pow(2, float64(n)))
	if d > q.cfg.MaxDelay || d <= 0 {
		d = q.cfg.MaxDelay
	}
	if b := q.reserveToken(); b > d {
		d = b
	}
	q.addAfter(key, d)
}

// reserveToken takes one retry token and returns how long to wait for it.
func (q *Queue) reserveToken() time.Duration {
	now := q.cfg.Clock.Now()
	q.tokens = math.Min(float64(q.cfg.RetryBurst), q.tokens+now.Sub(q.lastFill).Seconds()*q.cfg.RetryQPS)
	q.lastFill = now
	q.tokens--
	if q.tokens >= 0 {
		return 0
	}
	return time.Duration(-q.tokens / q.cfg.RetryQPS * float64(time.Second))
}

// Forget clears key's failure count: its next retry starts from BaseDelay.
func (q *Queue) Forget(key string) {
	q.mu.Lock()
	defer q.mu.Unlock()
	delete(q.failures, key)
}

// NumRequeues is how many times key has been retried since it was last forgotten.
func (q *Queue) NumRequeues(key string) int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.failures[key]
}

// ShutDown stops handing out keys once the queue is empty, drops delayed keys, waits for
// workers to call Done on the keys they hold, and stops the delay goroutine.
func (q *Queue) ShutDown() {
	q.mu.Lock()
	if !q.shuttingDown {
		q.shuttingDown = true
		close(q.stopped)
	}
	q.cond.Broadcast()
	for len(q.processing) > 0 {
		q.cond.Wait()
	}
	q.mu.Unlock()
	q.delays.Wait()
}

// ShuttingDown reports whether ShutDown was called.
func (q *Queue) ShuttingDown() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.shuttingDown
}

// delayLoop moves delayed keys into the queue when their time comes, and ends when no
// key is delayed (addAfter starts it again) or the queue shuts down.
func (q *Queue) delayLoop() {
	for {
		q.mu.Lock()
		q.promoteDue()
		if q.waiting.Len() == 0 || q.shuttingDown {
			q.delaying = false
			q.mu.Unlock()
			return
		}
		timer := q.cfg.Clock.NewTimer(q.waiting[0].at.Sub(q.cfg.Clock.Now()))
		q.mu.Unlock()
		select {
		case <-q.stopped:
		case <-q.wake:
		case <-timer.C():
		}
		timer.Stop()
	}
}

type delayed struct {
	key   string
	at    time.Time
	index int
}

type delayHeap []*delayed

func (h delayHeap) Len() int           { return len(h) }
func (h delayHeap) Less(i, j int) bool { return h[i].at.Before(h[j].at) }
func (h delayHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *delayHeap) Push(x any)        { w := x.(*delayed); w.index = len(*h); *h = append(*h, w) }
func (h *delayHeap) Pop() any          { old := *h; w := old[len(old)-1]; *h = old[:len(old)-1]; return w }
