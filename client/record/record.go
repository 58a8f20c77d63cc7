// Package record writes Events about objects, as client-go's record package does:
// recording never blocks the caller; identical events (same object, reason, message and
// type from the same component) within the cache window are aggregated into one Event
// whose count and lastTimestamp grow; writes happen in the background, new events
// recorded together created in one CreateBatch call, and one Event's writes never race
// each other. When the server refuses events as over its event rate budget, the
// recorder as a whole backs off (the longer of the server's delay, which is its place in
// the budget's line and kept as given, and its own back-off, doubling while refusals go
// on, a write the server took only in part counting as refused, halving with each write
// that went through, jittered) and then writes what it holds together: a thousand
// kubelets refused by their namespace's budget would otherwise each come back at a
// few-millisecond delay, a storm of refusals costing more than the events.
//
// Like client-go's recorder, it gives up: an Event whose writes failed maxTries times in
// a row is dropped (its aggregated state stays, and a later occurrence writes it again),
// and at most MaxPending Events wait to be written, new ones beyond that dropped. Drops
// are counted in Metrics (skiff_recorder_events_dropped_total by reason) and logged; the
// recorders made without Metrics of their own count in Registry, which each process's
// /metrics serves.
package record

import (
	"container/list"
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/internal/workers"
	"github.com/skiffhq/skiff/kinds"
)

// Event types.
const (
	Normal  = "Normal"
	Warning = "Warning"
)

// Config tunes a recorder.
type Config struct {
	// Component and Host identify the reporter (Event.source).
	Component, Host string
	// Workers write concurrently, each a batch of events at a time. Default 8.
	Workers int
	// Pool runs the writers on goroutines kept warm (internal/workers), shared by the
	// recorders and queues of a process; nil: each on a goroutine of its own.
	Pool *workers.Pool
	// BatchDelay is how long a batch waits for more events after its first. Default
	// 5ms; negative: no wait.
	BatchDelay time.Duration
	// MaxPending bounds the events waiting to be written, those waiting out a refusal
	// included; beyond it new ones are dropped (reason "backlog"). Default 1,000, as
	// client-go's maxQueuedEvents; at most CacheSize.
	MaxPending int
	// CacheSize bounds the events remembered for aggregation. Default 4096.
	CacheSize int
	// RetryBase and RetryMax bound the back-off after refusals: RetryBase (or the
	// server's delay, when longer) doubling with each refused write up to RetryMax.
	// Defaults 100ms and 10s (client-go waits 10s between an event's tries).
	RetryBase, RetryMax time.Duration
	// Metrics counts the dropped events; one can serve every recorder of a process.
	// Default: the counters in Registry.
	Metrics *Metrics
	Logger  hclog.Logger
	Now     func() time.Time
}

// Metrics are the recorders' counters.
type Metrics struct {
	dropped *prometheus.CounterVec
}

// Reasons an event is dropped, the label of skiff_recorder_events_dropped_total.
const (
	DroppedBacklog = "backlog" // MaxPending events were waiting already
	DroppedTries   = "tries"   // its writes failed maxTries times in a row
	DroppedRefused = "refused" // refused as forbidden or invalid: it would be again
)

// Registry holds the counters of the recorders made without Metrics of their own: a
// process's /metrics serves it beside its own registry.
var Registry = prometheus.NewRegistry()

// defaultMetrics are the counters in Registry.
var defaultMetrics = sync.OnceValue(func() *Metrics { return NewMetrics(Registry) })

// NewMetrics makes the counters, registered with reg unless it is nil.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	m := &Metrics{dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "skiff_recorder_events_dropped_total",
		Help: "Events a recorder gave up writing, by reason: backlog (too many waiting), tries (failed too often), refused (forbidden or invalid).",
	}, []string{"reason"})}
	if reg != nil {
		reg.MustRegister(m.dropped)
	}
	return m
}

// Recorder records Events.
type Recorder struct {
	cfg    Config
	events *client.Client[*corev1.Event]
	log    hclog.Logger
	queue  *workqueue.Queue

	mu      sync.Mutex
	similar map[string]similarCount
	entries map[string]*entry
	lru     *list.List // of keys, most recent at the front
	// pending are the entries whose state waits to be written (queued, being written,
	// or waiting out a refusal); at most MaxPending.
	pending int
	dropped int // events dropped, for the log's sparing warnings

	unbatched atomic.Bool // the server has no CreateBatch

	// refusals is the back-off's level: one more with each rate-limit refusal, one
	// less with each write that went through whole (a token of a budget many writers
	// share says little about the next: starting again at RetryBase after each had a
	// thousand kubelets probing a spent namespace budget ten times a second each). No
	// write starts before pausedUntil. Both under mu.
	refusals    int
	pausedUntil time.Time
	// window is how many events a write may carry (under mu): maxBatch, one after a
	// write the budget refused any of, twice as many after each it took whole (a slow
	// start, as TCP's). While a namespace's budget is spent, a recorder asks with one
	// event, not with its whole backlog to have all but one refused: in the
	// 150,000-pod run the refused events' building, encoding, sending and refusing were
	// a sixth of what the simulated nodes allocated (issue 26). An event held back
	// waits out the pause as a refused one does, a try counted: the budget it would
	// have asked is spent.
	window int
}

// maxTries is how many writes of an event's state may fail in a row before it is
// dropped: client-go's maxTriesPerEvent. With the default back-off, about a minute of
// refusals; longer when the member hands out later places in its budget's line (at most
// 30 s past its next token each).
const maxTries = 12

// entry is a recorded event: what its Event is made of, kept instead of the Event (a
// quarter of the bytes, issue 26). A recorder keeps up to CacheSize of them, and a
// process of simulated nodes has a recorder per node; the strings are the recorded
// object's own, shared with it. event makes the Event to write.
type entry struct {
	name                 string // the Event's
	namespace            string // the Event's: the object's, or default
	info                 *kinds.Info
	objNamespace, object string
	uid                  types.UID
	resourceVersion      string
	reason, message, typ string
	count                int32
	created              bool
	// pending says its state waits to be written; tries counts the failed writes of it
	// since the last that went through.
	pending     bool
	tries       int
	first, last time.Time
	elem        *list.Element
}

// event is e's Event as it should be stored. Called with r.mu held.
func (r *Recorder) event(e *entry) *corev1.Event {
	// firstTimestamp and lastTimestamp keep seconds, as Kubernetes' do; eventTime keeps
	// microseconds, which is what the chain's trace reads.
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: e.name},
		InvolvedObject: corev1.ObjectReference{
			Kind: e.info.Kind, APIVersion: e.info.APIVersion, Namespace: e.objNamespace, Name: e.object,
			UID: e.uid, ResourceVersion: e.resourceVersion,
		},
		Reason: e.reason, Message: e.message, Type: e.typ, Count: e.count,
		Source:         corev1.EventSource{Component: r.cfg.Component, Host: r.cfg.Host},
		FirstTimestamp: metav1.NewTime(e.first), LastTimestamp: metav1.NewTime(e.last), EventTime: metav1.NewMicroTime(e.first),
		ReportingController: r.cfg.Component, ReportingInstance: r.cfg.Host,
	}
}

// New makes a recorder; Run writes what it records.
func New(events *client.Client[*corev1.Event], cfg Config) *Recorder {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 1000
	}
	if cfg.BatchDelay == 0 {
		cfg.BatchDelay = 5 * time.Millisecond
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 4096
	}
	cfg.MaxPending = min(cfg.MaxPending, cfg.CacheSize)
	if cfg.RetryBase <= 0 {
		cfg.RetryBase = 100 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 10 * time.Second
	}
	if cfg.Metrics == nil {
		cfg.Metrics = defaultMetrics()
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Recorder{cfg: cfg, events: events, log: cfg.Logger.Named("events"), queue: workqueue.New(workqueue.Config{BaseDelay: cfg.RetryBase / 20, MaxDelay: 3 * cfg.RetryMax}),
		entries: map[string]*entry{}, similar: map[string]similarCount{}, lru: list.New(), window: maxBatch}
}

// Eventf records an event about obj.
func (r *Recorder) Eventf(obj kinds.Object, eventType, reason, format string, args ...any) {
	r.Event(obj, eventType, reason, fmt.Sprintf(format, args...))
}

// Event records an event about obj. It never blocks.
func (r *Recorder) Event(obj kinds.Object, eventType, reason, message string) {
	// A message may quote a program's output: keep it to what the API accepts.
	message = truncate(strings.ToValidUTF8(message, "\uFFFD"), MaxMessage)
	now := r.cfg.Now()
	info := kinds.Of(obj)
	ns := obj.GetNamespace()
	if ns == "" {
		ns = "default" // events about cluster-scoped objects live in default, as in Kubernetes
	}
	// similar is a prefix of key, sharing its bytes.
	key := string(obj.GetUID()) + "\x00" + reason + "\x00" + eventType + "\x00" + message
	similar := key[:len(obj.GetUID())+len(reason)+len(eventType)+2]
	r.mu.Lock()
	if _, seen := r.entries[key]; !seen && r.combine(similar, now) {
		// Like Kubernetes' EventAggregator: past maxSimilar events of one reason about one
		// object within similarWindow, they become one event whose count grows, so that a
		// 10,000-pod scale-up writes a dozen events, not 10,000.
		key = similar + "\x00combined"
		message = truncate("(combined from similar events): "+message, MaxMessage)
		if e, ok := r.entries[key]; ok {
			e.message = message
		}
	}
	if e, ok := r.entries[key]; ok {
		e.count++
		e.last = now
		r.lru.MoveToFront(e.elem)
		queue := r.hold(e)
		r.mu.Unlock()
		if queue {
			r.queue.Add(key)
		}
		return
	}
	if r.pending >= r.cfg.MaxPending {
		r.drop(DroppedBacklog, "event backlog full; dropping events")
		r.mu.Unlock()
		return
	}
	e := &entry{
		name: obj.GetName() + "." + strconv.FormatInt(now.UnixNano(), 16), namespace: ns,
		info: info, objNamespace: obj.GetNamespace(), object: obj.GetName(), uid: obj.GetUID(), resourceVersion: obj.GetResourceVersion(),
		reason: reason, message: message, typ: eventType, count: 1, first: now, last: now,
	}
	e.elem = r.lru.PushFront(key)
	r.entries[key] = e
	r.hold(e)
	for r.lru.Len() > r.cfg.CacheSize {
		oldest := r.lru.Back()
		r.lru.Remove(oldest)
		old := r.entries[oldest.Value.(string)]
		delete(r.entries, oldest.Value.(string))
		if old.pending { // an event waiting out refusals longer than CacheSize others lasted
			r.pending--
			r.drop(DroppedBacklog, "event backlog full; dropping events")
		}
	}
	r.mu.Unlock()
	r.queue.Add(key)
}

// hold marks e's state as waiting to be written, and says whether to queue it: not when
// the backlog is full and e was not waiting already (its count grows, and is written
// with its next occurrence). Called with r.mu held.
func (r *Recorder) hold(e *entry) bool {
	if e.pending {
		return true
	}
	if r.pending >= r.cfg.MaxPending {
		r.drop(DroppedBacklog, "event backlog full; dropping events")
		return false
	}
	e.pending = true
	r.pending++
	return true
}

// release ends e's wait to be written: its state went through or was dropped. Called
// with r.mu held.
func (r *Recorder) release(e *entry) {
	if e.pending {
		e.pending = false
		r.pending--
	}
	e.tries = 0
}

// drop counts an event dropped for reason, warning in the log at the first and every
// thousandth after. Called with r.mu held.
func (r *Recorder) drop(reason, msg string) {
	r.cfg.Metrics.dropped.WithLabelValues(reason).Inc()
	r.dropped++
	if r.dropped%1000 == 1 {
		r.log.Warn(msg, "reason", reason, "dropped", r.dropped)
	}
}

// maxBatch is the most events one write takes.
const maxBatch = client.MaxCreateBatch

// Run writes recorded events until ctx ends. Events recorded together (a container's
// Pulled, Created and Started; a scheduler's burst of bindings) are written together:
// the new ones in one CreateBatch call. A batch gathers what is recorded within
// BatchDelay of its first event, and whatever waited while every worker was busy.
func (r *Recorder) Run(ctx context.Context) {
	stop := context.AfterFunc(ctx, r.queue.ShutDown) // returns once the writes under way are done
	defer stop()
	// Writers are started as batches come (workqueue.Serve): an idle recorder, one of
	// each simulated node's, holds no goroutine but Run's.
	take := func() ([]string, bool) {
		keys, shutdown := r.queue.GetBatch(maxBatch)
		if shutdown {
			return nil, false
		}
		wait := r.paused()
		if len(keys) < maxBatch && r.cfg.BatchDelay > 0 {
			wait = max(wait, r.cfg.BatchDelay)
		}
		// A refusal during the wait may extend the pause: wait that out too.
		for ; wait > 0 && ctx.Err() == nil; wait = r.paused() {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-ctx.Done():
				t.Stop()
			}
		}
		if len(keys) < maxBatch {
			keys = append(keys, r.queue.TryGetBatch(maxBatch-len(keys))...)
		}
		return keys, true
	}
	workqueue.Serve(r.cfg.Workers, r.cfg.Pool, take, nil, func(keys []string) {
		r.write(ctx, keys)
		for _, key := range keys {
			r.queue.Done(key)
		}
	})
	r.queue.ShutDown() // ended by ctx: wait for the shutdown AfterFunc began
}

// pendingWrite is one event's state to store.
type pendingWrite struct {
	key string
	ev  *corev1.Event
}

// write stores the events' current states: create each the first time, update it after;
// those past the window are held back (holdBack). The recorder's back-off eases only
// with a write the server took whole, of everything waiting: one it took in part was
// over the budget too.
func (r *Recorder) write(ctx context.Context, keys []string) {
	var creates, updates []pendingWrite
	held := false
	r.mu.Lock()
	for _, key := range keys {
		e, ok := r.entries[key]
		if !ok {
			continue // pushed out of the cache, and counted then
		}
		if len(creates)+len(updates) == r.window {
			r.holdBack(key, e)
			held = true
			continue
		}
		w := pendingWrite{key: key, ev: r.event(e)}
		if e.created {
			updates = append(updates, w)
		} else {
			creates = append(creates, w)
		}
	}
	r.mu.Unlock()

	var o outcome
	defer func() {
		r.mu.Lock()
		switch {
		case o.throttled:
			r.window = 1
		case o.wrote:
			// A write the window kept small says less of the budget than one of
			// everything waiting: it opens the window, and leaves the back-off.
			if !held {
				r.refusals = max(r.refusals-1, 0)
			}
			r.window = min(2*r.window, maxBatch)
		}
		r.mu.Unlock()
	}()
	// A refusal for the rate comes back at once, not after the connection's own retries:
	// the recorder backs off as a whole, and writes what it holds together.
	wctx, cancel := context.WithTimeout(client.OwnThrottling(ctx), 30*time.Second)
	defer cancel()
	for _, w := range updates {
		_, err := r.events.Update(wctx, w.ev)
		if client.IsNotFound(err) {
			_, err = r.create(wctx, w.ev) // deleted meanwhile: write it anew
		}
		r.written(ctx, w, err, client.RetryAfter(err), &o)
	}
	if len(creates) > 1 && !r.unbatched.Load() {
		evs := make([]*corev1.Event, len(creates))
		for i, w := range creates {
			evs[i] = w.ev
		}
		_, errs, err := r.events.CreateBatch(wctx, evs)
		switch {
		case status.Code(err) == codes.Unimplemented:
			r.unbatched.Store(true) // a server older than batches: create one at a time
			r.log.Info("the API server cannot create events in batches; creating them one at a time")
		case err != nil:
			// One refusal for the whole batch: its delay is read once, not for each
			// event (reading it decodes the status's details).
			retry := client.RetryAfter(err)
			for _, w := range creates {
				r.written(ctx, w, err, retry, &o)
			}
			return
		default:
			for i, w := range creates {
				err := errs[i]
				if client.IsAlreadyExists(err) {
					_, err = r.events.Update(wctx, w.ev)
				}
				r.written(ctx, w, err, client.RetryAfter(err), &o)
			}
			return
		}
	}
	for _, w := range creates {
		_, err := r.create(wctx, w.ev)
		r.written(ctx, w, err, client.RetryAfter(err), &o)
	}
}

// create creates ev, or updates it when it exists (a lost reply's retry).
func (r *Recorder) create(ctx context.Context, ev *corev1.Event) (*corev1.Event, error) {
	out, err := r.events.Create(ctx, ev)
	if client.IsAlreadyExists(err) {
		out, err = r.events.Update(ctx, ev)
	}
	return out, err
}

// outcome is what one write's events met: some stored, some refused for the rate.
type outcome struct{ wrote, throttled bool }

// written records the outcome of an event's write: retried later when it failed, up to
// maxTries writes in a row. retry is client.RetryAfter(err), read by the caller once
// for every event a refusal covers.
func (r *Recorder) written(ctx context.Context, w pendingWrite, err error, retry time.Duration, o *outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	e := r.entries[w.key]
	if e == nil {
		return // pushed out of the cache meanwhile, and counted then
	}
	if err == nil {
		o.wrote = true
		e.created = true
		e.tries = 0
		if w.ev.Count == e.count { // else it occurred again meanwhile, and is queued
			r.release(e)
		}
		r.queue.Forget(w.key)
		return
	}
	if ctx.Err() != nil {
		return // stopping
	}
	if retry > 0 {
		o.throttled = true
	}
	switch e.tries++; {
	case client.IsForbidden(err) || client.IsInvalid(err):
		// Refused for what it is, not for when it came: it would be refused again.
		r.log.Warn("event refused; dropping it", "event", w.ev.Name, "reason", w.ev.Reason, "error", err)
		r.release(e)
		r.queue.Forget(w.key)
		r.drop(DroppedRefused, "events refused; dropping them")
	case e.tries >= maxTries:
		r.log.Debug("event not written after its last try; dropping it", "event", w.ev.Name, "reason", w.ev.Reason, "tries", e.tries, "error", err)
		r.release(e)
		r.queue.Forget(w.key)
		r.drop(DroppedTries, "events not written after their last try; dropping them")
	case retry > 0:
		// Over the server's event rate budget: write it once the server said a
		// token is there and the recorder's back-off has passed, not asking sooner.
		after := r.throttled(retry)
		r.log.Debug("event rate limited; waiting", "event", w.ev.Name, "reason", w.ev.Reason, "after", after)
		r.queue.AddAfter(w.key, after)
	default:
		r.log.Debug("write event failed; retrying", "event", w.ev.Name, "reason", w.ev.Reason, "error", err)
		r.queue.AddRateLimited(w.key)
	}
}

// holdBack keeps e, past the write's window, for after the recorder's pause, as a
// refused event: a try counted, dropped at the last. Called with r.mu held.
func (r *Recorder) holdBack(key string, e *entry) {
	if e.tries++; e.tries >= maxTries {
		r.log.Debug("event not written after its last try; dropping it", "event", e.name, "reason", e.reason, "tries", e.tries)
		r.release(e)
		r.queue.Forget(key)
		r.drop(DroppedTries, "events not written after their last try; dropping them")
		return
	}
	r.queue.AddAfter(key, max(time.Until(r.pausedUntil), r.cfg.RetryBase))
}

// throttled notes a rate-limit refusal for which the server asked to wait server, and
// says how long the refused event waits: until the recorder's pause ends. The refusals
// of one write (and of writes under way together) share one pause, so their events
// come back together, in one batch; a refusal after the pause doubles the recorder's
// own back-off. The server's delay is the writer's place in its budget's line (the
// slot at which a token is there for it): it is kept as given, without jitter, when it
// is the longer; only the recorder's own back-off is jittered.
// Called with r.mu held.
func (r *Recorder) throttled(server time.Duration) time.Duration {
	now := time.Now() // the queue's and Run's timers' clock, not the events' (cfg.Now)
	if now.Before(r.pausedUntil) {
		if until := now.Add(server); until.After(r.pausedUntil) {
			r.pausedUntil = until
		}
		return r.pausedUntil.Sub(now)
	}
	if r.refusals == 0 || r.cfg.RetryBase<<min(r.refusals-1, 16) < r.cfg.RetryMax {
		r.refusals++ // no higher than RetryMax's level, which a write then lowers
	}
	own := min(r.cfg.RetryBase<<min(r.refusals-1, 16), r.cfg.RetryMax)
	// Up to half again of jitter, so that many recorders refused together do not
	// return together.
	own += time.Duration(rand.Int64N(int64(own/2) + 1))
	d := max(own, server)
	r.pausedUntil = now.Add(d)
	return d
}

// paused is how long the recorder still waits before its next write.
func (r *Recorder) paused() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return time.Until(r.pausedUntil)
}

// Aggregation of similar events (same object, reason and type, different messages).
const (
	maxSimilar    = 10
	similarWindow = 10 * time.Minute
)

type similarCount struct {
	n     int
	since time.Time
}

// combine counts one more distinct message for similar and says whether it is past
// maxSimilar in the current window. Called with r.mu held.
func (r *Recorder) combine(similar string, now time.Time) bool {
	c, ok := r.similar[similar]
	if !ok || now.Sub(c.since) > similarWindow {
		if len(r.similar) >= r.cfg.CacheSize {
			for k := range r.similar { // drop an arbitrary one: a bound, not an LRU
				delete(r.similar, k)
				break
			}
		}
		c = similarCount{since: now}
	}
	c.n++
	r.similar[similar] = c
	return c.n > maxSimilar
}

// MaxMessage is the longest message an event may carry (the API server's limit, as
// Kubernetes'); longer ones are cut, ending in "...".
const MaxMessage = 1024

// truncate cuts s to at most n bytes, on a rune boundary, marking the cut.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	cut := n - len("...")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}
