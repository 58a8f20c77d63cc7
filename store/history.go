package store

import (
	"context"
	"sync"
	"time"
)

// history is a node's window of recent events, in revision order, shared by every
// watcher on the node. Apply appends and wakes watchers; it never waits for them. Each
// watcher reads at its own pace from its own position, so a slow watcher costs only its
// position, and is cut once it falls too far behind.
type history struct {
	mu     sync.RWMutex
	ring   []Event
	start  int    // ring index of the oldest event
	n      int    // events held
	first  uint64 // sequence number of the oldest event held
	epoch  uint64 // bumped when the history restarts (snapshot restore)
	closed bool
	// compacted: events of revisions <= compacted may be missing; a watch must start
	// after a revision >= compacted.
	compacted int64
	// head is the latest applied revision, whether or not it produced events.
	head int64
	// wake is closed (and replaced) whenever head moves.
	wake chan struct{}
}

func newHistory(size int, rev int64) *history {
	return &history{ring: make([]Event, size), compacted: rev, head: rev, wake: make(chan struct{})}
}

// append adds the events of entries up to rev (possibly none) and wakes waiters.
func (h *history) append(events []Event, rev int64) {
	h.mu.Lock()
	for _, ev := range events {
		if h.n == len(h.ring) {
			old := &h.ring[h.start]
			if old.Revision > h.compacted {
				h.compacted = old.Revision
			}
			*old = Event{}
			h.start = (h.start + 1) % len(h.ring)
			h.n--
			h.first++
		}
		h.ring[(h.start+h.n)%len(h.ring)] = ev
		h.n++
	}
	if rev > h.head {
		h.head = rev
	}
	close(h.wake)
	h.wake = make(chan struct{})
	h.mu.Unlock()
}

// reset empties the history after the state jumped to rev (a snapshot was restored):
// every existing watcher's position is void.
func (h *history) reset(rev int64) {
	h.mu.Lock()
	for i := range h.ring {
		h.ring[i] = Event{}
	}
	h.first += uint64(h.n)
	h.start, h.n = 0, 0
	h.epoch++
	h.compacted, h.head = rev, rev
	close(h.wake)
	h.wake = make(chan struct{})
	h.mu.Unlock()
}

func (h *history) close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.wake)
	}
	h.mu.Unlock()
}

// waitApplied blocks until the applied revision reaches rev.
func (h *history) waitApplied(ctx context.Context, rev int64) error {
	for {
		h.mu.RLock()
		head, closed, wake := h.head, h.closed, h.wake
		h.mu.RUnlock()
		if head >= rev {
			return nil
		}
		if closed {
			return ErrClosed
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// WatchOptions selects what a watch delivers.
type WatchOptions struct {
	Kind string
	// Namespace, when set, limits the watch to one namespace.
	Namespace string
	// After is the revision to start after: every event with a greater revision is
	// delivered. 0 starts from the current revision.
	After int64
	// Predicate, when set, filters objects (label and field selectors). An object that
	// starts matching arrives as Added, one that stops matching as Deleted.
	Predicate func(*Object) bool
	// ProgressInterval, when positive, makes Next return a Bookmark carrying the current
	// revision after that long without events.
	ProgressInterval time.Duration
	// MaxBatch caps the events one Next returns; a revision's events are never split.
	// Defaults to 1000.
	MaxBatch int
}

// Watcher reads one watch's events. It is not safe for concurrent use.
type Watcher struct {
	h      *history
	opts   WatchOptions
	maxLag int
	epoch  uint64
	seq    uint64 // next event to read
	after  int64  // every matching event up to this revision has been delivered
	idle   time.Time
}

func (h *history) watch(opts WatchOptions, maxLag int) (*Watcher, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return nil, ErrClosed
	}
	if opts.After == 0 {
		opts.After = h.head
	}
	if opts.After < h.compacted {
		return nil, &CompactedError{Requested: opts.After, Oldest: h.compacted}
	}
	w := &Watcher{h: h, opts: opts, maxLag: maxLag, epoch: h.epoch, after: opts.After, idle: time.Now()}
	// Position at the first event after opts.After (events are in revision order).
	lo, hi := 0, h.n
	for lo < hi {
		mid := (lo + hi) / 2
		if h.ring[(h.start+mid)%len(h.ring)].Revision <= opts.After {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	w.seq = h.first + uint64(lo)
	return w, nil
}

// Revision is the revision up to which the watcher has delivered every event.
func (w *Watcher) Revision() int64 { return w.after }

// Next returns the next events, all of whole revisions, in order; or a single Bookmark
// after ProgressInterval without events. It blocks until there is something to return.
// Errors: ErrCompacted (the history restarted under the watch: re-list), a TooSlowError
// (resume from its LastRevision), ErrClosed, or the context's error.
func (w *Watcher) Next(ctx context.Context) ([]Event, error) {
	var timer *time.Timer
	var tick <-chan time.Time
	if w.opts.ProgressInterval > 0 {
		timer = time.NewTimer(w.opts.ProgressInterval)
		defer timer.Stop()
		tick = timer.C
	}
	for {
		events, wake, err := w.read()
		if err != nil || len(events) > 0 {
			if len(events) > 0 {
				w.idle = time.Now()
			}
			return events, err
		}
		if tick != nil && time.Since(w.idle) >= w.opts.ProgressInterval {
			w.idle = time.Now()
			obj := Object{Key: Key{Kind: w.opts.Kind}, ModRevision: w.after}
			return []Event{{Type: Bookmark, Revision: w.after, Object: obj}}, nil
		}
		select {
		case <-wake:
		case <-tick:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// read takes what is available under the read lock; with nothing matching, it returns
// the channel that signals more.
func (w *Watcher) read() ([]Event, <-chan struct{}, error) {
	h := w.h
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return nil, nil, ErrClosed
	}
	if w.epoch != h.epoch || w.seq < h.first {
		return nil, nil, &CompactedError{Requested: w.after, Oldest: h.compacted}
	}
	end := h.first + uint64(h.n)
	if lag := int(end - w.seq); w.maxLag > 0 && lag > w.maxLag {
		return nil, nil, &TooSlowError{LastRevision: w.after, Lag: lag}
	}
	var out []Event
	for w.seq < end {
		ev := &h.ring[(h.start+int(w.seq-h.first))%len(h.ring)]
		if len(out) >= w.opts.MaxBatch && ev.Revision != out[len(out)-1].Revision {
			w.after = out[len(out)-1].Revision
			return out, nil, nil
		}
		w.seq++
		if ev.Revision <= w.after {
			continue // before the watch's start
		}
		if e, ok := w.filter(ev); ok {
			out = append(out, e)
		}
	}
	// Everything applied so far has been seen, so the watcher is at the head: a bookmark
	// may claim it, and later events are all after it.
	if h.head > w.after {
		w.after = h.head
	}
	if len(out) > 0 {
		return out, nil, nil
	}
	return nil, h.wake, nil
}

// filter decides what a watcher sees of one event.
func (w *Watcher) filter(ev *Event) (Event, bool) {
	if ev.Object.Kind != w.opts.Kind || (w.opts.Namespace != "" && ev.Object.Namespace != w.opts.Namespace) {
		return Event{}, false
	}
	p := w.opts.Predicate
	if p == nil {
		return *ev, true
	}
	switch ev.Type {
	case Added:
		return *ev, p(&ev.Object)
	case Deleted:
		return *ev, p(ev.Prev)
	}
	was, is := p(ev.Prev), p(&ev.Object)
	switch {
	case was && is:
		return *ev, true
	case is:
		return Event{Type: Added, Revision: ev.Revision, Object: ev.Object}, true
	case was:
		gone := *ev.Prev
		gone.ModRevision = ev.Revision
		return Event{Type: Deleted, Revision: ev.Revision, Object: gone, Prev: ev.Prev}, true
	}
	return Event{}, false
}
