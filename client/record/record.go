// Package record writes Events about objects, as client-go's record package does:
// recording never blocks the caller; identical events (same object, reason, message and
// type from the same component) within the cache window are aggregated into one Event
// whose count and lastTimestamp grow; writes happen in the background, a few at a time,
// and one Event's writes never race each other.
package record

import (
	"container/list"
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/workqueue"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
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
	// Workers write concurrently. Default 8.
	Workers int
	// MaxPending bounds events waiting to be written; beyond it new ones are dropped
	// (and counted in the log). Default 10,000.
	MaxPending int
	// CacheSize bounds the events remembered for aggregation. Default 4096.
	CacheSize int
	Logger    hclog.Logger
	Now       func() time.Time
}

// Recorder records Events.
type Recorder struct {
	cfg    Config
	events *client.Client[*corev1.Event]
	log    hclog.Logger
	queue  *workqueue.Queue

	mu      sync.Mutex
	similar map[string]*similarCount
	entries map[string]*entry
	lru     *list.List // of keys, most recent at the front
	dropped int
}

type entry struct {
	event   *corev1.Event // the Event as it should be stored
	created bool
	elem    *list.Element
}

// New makes a recorder; Run writes what it records.
func New(events *client.Client[*corev1.Event], cfg Config) *Recorder {
	if cfg.Workers <= 0 {
		cfg.Workers = 8
	}
	if cfg.MaxPending <= 0 {
		cfg.MaxPending = 10000
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = 4096
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Recorder{cfg: cfg, events: events, log: cfg.Logger.Named("events"), queue: workqueue.New(workqueue.Config{MaxDelay: 30 * time.Second}),
		entries: map[string]*entry{}, similar: map[string]*similarCount{}, lru: list.New()}
}

// Eventf records an event about obj.
func (r *Recorder) Eventf(obj kinds.Object, eventType, reason, format string, args ...any) {
	r.Event(obj, eventType, reason, fmt.Sprintf(format, args...))
}

// Event records an event about obj. It never blocks.
func (r *Recorder) Event(obj kinds.Object, eventType, reason, message string) {
	now := r.cfg.Now()
	md := obj.GetMetadata()
	info := kinds.Of(obj)
	ns := md.GetNamespace()
	if ns == "" {
		ns = "default" // events about cluster-scoped objects live in default, as in Kubernetes
	}
	similar := md.GetUid() + "\x00" + reason + "\x00" + eventType
	key := similar + "\x00" + message
	r.mu.Lock()
	if _, seen := r.entries[key]; !seen && r.combine(similar, now) {
		// Like Kubernetes' EventAggregator: past maxSimilar events of one reason about one
		// object within similarWindow, they become one event whose count grows, so that a
		// 10,000-pod scale-up writes a dozen events, not 10,000.
		key = similar + "\x00combined"
		message = "(combined from similar events): " + message
		if e, ok := r.entries[key]; ok {
			e.event.Message = message
		}
	}
	if e, ok := r.entries[key]; ok {
		e.event.Count++
		e.event.LastTimestamp = timestamppb.New(now)
		r.lru.MoveToFront(e.elem)
		r.mu.Unlock()
		r.queue.Add(key)
		return
	}
	if r.queue.Len() >= r.cfg.MaxPending {
		r.dropped++
		if r.dropped%1000 == 1 {
			r.log.Warn("event queue full; dropping events", "dropped", r.dropped)
		}
		r.mu.Unlock()
		return
	}
	ts := timestamppb.New(now)
	ev := &corev1.Event{
		Metadata: &corev1.ObjectMeta{Namespace: ns, Name: md.GetName() + "." + strconv.FormatInt(now.UnixNano(), 16)},
		InvolvedObject: &corev1.ObjectReference{
			Kind: info.Kind, ApiVersion: info.APIVersion, Namespace: md.GetNamespace(), Name: md.GetName(),
			Uid: md.GetUid(), ResourceVersion: md.GetResourceVersion(),
		},
		Reason: reason, Message: message, Type: eventType, Count: 1,
		Source:         &corev1.EventSource{Component: r.cfg.Component, Host: r.cfg.Host},
		FirstTimestamp: ts, LastTimestamp: ts, EventTime: ts,
		ReportingComponent: r.cfg.Component, ReportingInstance: r.cfg.Host,
	}
	e := &entry{event: ev}
	e.elem = r.lru.PushFront(key)
	r.entries[key] = e
	for r.lru.Len() > r.cfg.CacheSize {
		oldest := r.lru.Back()
		r.lru.Remove(oldest)
		delete(r.entries, oldest.Value.(string))
	}
	r.mu.Unlock()
	r.queue.Add(key)
}

// Run writes recorded events until ctx ends.
func (r *Recorder) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for i := 0; i < r.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				key, shutdown := r.queue.Get()
				if shutdown {
					return
				}
				r.write(ctx, key)
				r.queue.Done(key)
			}
		}()
	}
	<-ctx.Done()
	r.queue.ShutDown()
	wg.Wait()
}

// write stores an event's current state: create it the first time, update it after.
func (r *Recorder) write(ctx context.Context, key string) {
	r.mu.Lock()
	e, ok := r.entries[key]
	if !ok {
		r.mu.Unlock()
		return // evicted: its last state was written when it was queued before
	}
	ev := proto.Clone(e.event).(*corev1.Event)
	created := e.created
	r.mu.Unlock()

	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	if created {
		_, err = r.events.Update(wctx, ev)
		if client.IsNotFound(err) {
			created = false // deleted meanwhile: write it anew
		}
	}
	if !created {
		_, err = r.events.Create(wctx, ev)
		if client.IsAlreadyExists(err) {
			_, err = r.events.Update(wctx, ev)
		}
	}
	if err != nil {
		if ctx.Err() == nil {
			r.log.Debug("write event failed; retrying", "event", ev.GetMetadata().GetName(), "reason", ev.GetReason(), "error", err)
			r.queue.AddRateLimited(key)
		}
		return
	}
	r.queue.Forget(key)
	r.mu.Lock()
	if e, ok := r.entries[key]; ok {
		e.created = true
	}
	r.mu.Unlock()
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
		c = &similarCount{since: now}
		r.similar[similar] = c
	}
	c.n++
	return c.n > maxSimilar
}
