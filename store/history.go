package store

import (
	"context"
	"sort"
	"sync"
	"time"
)

// history is a node's window of recent events, in revision order, shared by every
// watcher on the node. Apply appends and wakes watchers; it never waits for them. Each
// watcher reads at its own pace from its own position, so a slow watcher costs only its
// position, and is cut once it falls too far behind.
//
// The window is bounded three ways: by count (the ring), by the bytes of the objects it
// holds (maxBytes: a few large objects must not hold more memory than many small ones),
// and by age (ttl: what was written and then deleted is given back once no watcher can
// be expected to resume from it). The oldest events go first; a watcher that needed one
// gets a CompactedError and re-lists.
type history struct {
	mu   sync.RWMutex
	ring []Event
	// meta is, per ring slot, what the event costs and when it was appended.
	meta     []eventMeta
	bytes    int64         // the held events' cost
	maxBytes int64         // 0: no byte bound
	ttl      time.Duration // 0: no age bound
	start    int           // ring index of the oldest event
	n        int           // events held
	first    uint64        // sequence number of the oldest event held
	epoch    uint64        // bumped when the history restarts (snapshot restore)
	closed   bool
	// compacted: events of revisions <= compacted may be missing; a watch must start
	// after a revision >= compacted.
	compacted int64
	// head is the latest applied revision, whether or not it produced events.
	head int64
	// wake is closed (and replaced) whenever head moves (waitApplied). Watchers do not
	// wait on it: each is signalled only by events of its kind, or of its index value.
	wake chan struct{}
	// indexes are the indexes watches asked for, by kind: each kind's kindIndex and the
	// field indexes of indexed watches.
	indexes map[string][]*fieldIndex
	// latest is, per key, the sequence number of the newest event of it held: the apply
	// shares that event's object with the next change's Prev (see writer.share) rather
	// than holding a second decoded copy of it.
	latest map[Key]uint64
}

// fieldIndex lists, for one (kind, field) pair, the events of each value of the field:
// an event is listed under the object's value after the change and, if it differs, the
// value before. An indexed watcher reads only its value's list, and apply signals only
// the watchers of the values an event touches: with a thousand kubelets each watching
// its node's pods, an event costs one watcher's attention, not a thousand.
//
// A watch without an index field reads its kind's kindIndex: every event of the kind,
// listed under one value. A thousand kubelets each watching every Service then cost a
// Pod's event nothing, where each of them scanned the whole ring for Services.
//
// A watch of one object by name (WatchOptions.Name: kubectl wait, rollout status, an
// informer of one object) reads its kind's nameIndex, which is sparse: it lists only the
// names someone watches, each from when its first watcher came (valueLog.from), so a
// kind of 150,000 objects costs it one lookup an event, not a list per name.
type fieldIndex struct {
	field string
	// from is the sequence number of the first event indexed: events before it (applied
	// before the first watch asked for this index) are found by scanning the ring.
	from   uint64
	values map[string]*valueLog
	// sparse lists an event only under the values that have a list already (watched).
	sparse bool
}

// kindIndex is the field of a kind's own index: no object has it, so every event of the
// kind is listed under the value "".
const kindIndex = ""

// nameIndex is the field of a kind's index of names (an object's Name, not a field: no
// Fields key starts with a NUL).
const nameIndex = "\x00name"

// value is o's value of the index's field.
func (fi *fieldIndex) value(o *Object) string {
	if fi.field == nameIndex {
		return o.Name
	}
	return o.Fields[fi.field]
}

// valueLog is one value's events (ring sequence numbers, ascending, all still in the
// ring) and the watchers that follow it. It lives while it holds events or watchers.
type valueLog struct {
	seqs     []uint64
	watchers map[*Watcher]struct{}
	// lastEvicted is the sequence number of this value's latest event pushed out of the
	// ring (valid when evicted): a watcher that had not read it has lost it.
	lastEvicted uint64
	evicted     bool
	// from, in a sparse index, is the sequence number of the first event listed here:
	// the ones before it are found by scanning the ring.
	from uint64
}

func (l *valueLog) signal() {
	for w := range l.watchers {
		select {
		case w.notify <- struct{}{}:
		default:
		}
	}
}

// after returns the position in seqs of the first event at or after seq.
func (l *valueLog) after(seq uint64) int {
	return sort.Search(len(l.seqs), func(i int) bool { return l.seqs[i] >= seq })
}

func (fi *fieldIndex) log(value string) *valueLog {
	l := fi.values[value]
	if l == nil {
		l = &valueLog{}
		fi.values[value] = l
	}
	return l
}

// add lists the event at seq under the values it touches and signals their watchers.
func (fi *fieldIndex) add(ev *Event, seq uint64) {
	v := fi.value(&ev.Object)
	fi.list(v, seq)
	if ev.Prev != nil {
		if pv := fi.value(ev.Prev); pv != v {
			fi.list(pv, seq)
		}
	}
}

func (fi *fieldIndex) list(value string, seq uint64) {
	l := fi.values[value]
	if l == nil {
		if fi.sparse {
			return
		}
		l = fi.log(value)
	}
	l.seqs = append(l.seqs, seq)
	l.signal()
}

// evict drops the event at seq (the oldest in the ring) from the lists it is on.
func (fi *fieldIndex) evict(ev *Event, seq uint64) {
	if seq < fi.from {
		return
	}
	v := fi.value(&ev.Object)
	fi.drop(v, seq)
	if ev.Prev != nil {
		if pv := fi.value(ev.Prev); pv != v {
			fi.drop(pv, seq)
		}
	}
}

func (fi *fieldIndex) drop(value string, seq uint64) {
	l := fi.values[value]
	if l == nil || len(l.seqs) == 0 || l.seqs[0] != seq {
		return
	}
	l.seqs[0] = 0
	l.seqs = l.seqs[1:]
	l.lastEvicted, l.evicted = seq, true
	if len(l.seqs) == 0 && len(l.watchers) == 0 {
		delete(fi.values, value)
	}
}

// restart empties the index after a history reset; from then on it covers every event.
func (fi *fieldIndex) restart(from uint64) {
	fi.from = from
	for v, l := range fi.values {
		if len(l.watchers) == 0 {
			delete(fi.values, v)
			continue
		}
		l.seqs, l.evicted, l.lastEvicted = nil, false, 0
		l.signal()
	}
}

type eventMeta struct {
	size int64
}

// eventOverhead is what an event costs beyond its objects' values: the ring slot, key,
// labels and fields, roughly.
const eventOverhead = 512

// eventSize is what holding ev costs: its object's value and, for a modification, the
// previous value (a deletion's object shares its value with Prev).
func eventSize(ev *Event) int64 {
	n := int64(eventOverhead + len(ev.Object.Value))
	if ev.Type == Modified && ev.Prev != nil {
		n += int64(len(ev.Prev.Value))
	}
	return n
}

func newHistory(size int, rev int64) *history {
	return &history{ring: make([]Event, size), meta: make([]eventMeta, size), compacted: rev, head: rev, wake: make(chan struct{})}
}

// evictOldest drops the oldest event. Called with h.mu held for writing and h.n > 0.
func (h *history) evictOldest() {
	old := &h.ring[h.start]
	if old.Revision > h.compacted {
		h.compacted = old.Revision
	}
	for _, fi := range h.indexes[old.Object.Kind] {
		fi.evict(old, h.first)
	}
	if seq, ok := h.latest[old.Object.Key]; ok && seq == h.first {
		delete(h.latest, old.Object.Key)
	}
	*old = Event{}
	h.bytes -= h.meta[h.start].size
	h.meta[h.start] = eventMeta{}
	h.start = (h.start + 1) % len(h.ring)
	h.n--
	h.first++
	if h.n == 0 {
		h.latest = nil // a map keeps its peak size: an idle history gives it back
	}
}

// append adds the events of entries up to rev (possibly none) and wakes waiters.
func (h *history) append(events []Event, rev int64) {
	h.mu.Lock()
	now := time.Now().UnixNano()
	for _, ev := range events {
		if h.n == len(h.ring) {
			h.evictOldest()
		}
		seq := h.first + uint64(h.n)
		i := (h.start + h.n) % len(h.ring)
		slot := &h.ring[i]
		*slot = ev
		slot.Applied = now
		h.meta[i] = eventMeta{size: eventSize(slot)}
		h.bytes += h.meta[i].size
		h.n++
		for _, fi := range h.indexes[ev.Object.Kind] {
			fi.add(slot, seq)
		}
		if h.latest == nil {
			h.latest = map[Key]uint64{}
		}
		h.latest[slot.Object.Key] = seq
		// The newest event stays even alone over the budget: a watch that has seen
		// everything before it can still resume.
		for h.maxBytes > 0 && h.bytes > h.maxBytes && h.n > 1 {
			h.evictOldest()
		}
	}
	if rev > h.head {
		h.head = rev
	}
	close(h.wake)
	h.wake = make(chan struct{})
	h.mu.Unlock()
}

// expire drops the events appended before now-ttl; it reports how many bytes it freed.
func (h *history) expire(now time.Time) int64 {
	if h.ttl <= 0 {
		return 0
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	before := h.bytes
	for h.n > 0 && now.UnixNano()-h.ring[h.start].Applied > int64(h.ttl) {
		h.evictOldest()
	}
	return before - h.bytes
}

// latestObject returns the object of the newest event of k the history holds, if any.
// Its value, labels and fields are shared: never modified.
func (h *history) latestObject(k Key) (Object, bool) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	seq, ok := h.latest[k]
	if !ok {
		return Object{}, false
	}
	return h.ring[(h.start+int(seq-h.first))%len(h.ring)].Object, true
}

// held returns the events held and their cost.
func (h *history) held() (events int, bytes int64) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return h.n, h.bytes
}

// reset empties the history after the state jumped to rev (a snapshot was restored):
// every existing watcher's position is void.
func (h *history) reset(rev int64) {
	h.mu.Lock()
	for i := range h.ring {
		h.ring[i], h.meta[i] = Event{}, eventMeta{}
	}
	h.bytes = 0
	h.latest = nil
	h.first += uint64(h.n)
	h.start, h.n = 0, 0
	h.epoch++
	h.compacted, h.head = rev, rev
	for _, fis := range h.indexes {
		for _, fi := range fis {
			fi.restart(h.first)
		}
	}
	close(h.wake)
	h.wake = make(chan struct{})
	h.mu.Unlock()
}

func (h *history) close() {
	h.mu.Lock()
	if !h.closed {
		h.closed = true
		close(h.wake)
		for _, fis := range h.indexes {
			for _, fi := range fis {
				for _, l := range fi.values {
					l.signal()
				}
			}
		}
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

// changes calls fn with each event of kind in revisions (since, to] (since >= from),
// in order, with the key and its object's state before the event (nil: created). It
// runs under the history's read lock: fn must be quick. The history must have every
// event up to to (waitApplied); it fails with a *CompactedError when it no longer holds
// every event after from, the revision a list reads at.
func (h *history) changes(kind string, from, since, to int64, fn func(k Key, prev *Object)) error {
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return ErrClosed
	}
	if from < h.compacted {
		return &CompactedError{Requested: from, Oldest: h.compacted}
	}
	lo, hi := 0, h.n
	for lo < hi {
		mid := (lo + hi) / 2
		if h.ring[(h.start+mid)%len(h.ring)].Revision <= since {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	for i := lo; i < h.n; i++ {
		ev := &h.ring[(h.start+i)%len(h.ring)]
		if ev.Revision > to {
			break
		}
		if ev.Object.Kind == kind {
			fn(ev.Object.Key, ev.Prev)
		}
	}
	return nil
}

// WatchOptions selects what a watch delivers.
type WatchOptions struct {
	Kind string
	// Namespace, when set, limits the watch to one namespace.
	Namespace string
	// IndexField and IndexValue, when IndexField is set, limit the watch to objects whose
	// Fields[IndexField] equals IndexValue (as ListOptions do), and serve it from an
	// index: the watcher reads, and is woken for, only the events of objects that had
	// that value before or after the change. An object whose field changes to the value
	// arrives as Added, one whose field changes away from it as Deleted. Without it the
	// watch is served from its kind's index: it reads, and is woken for, only events of
	// its kind. Close every watcher when done with it.
	IndexField, IndexValue string
	// Name, when set, limits the watch to objects of that name (in Namespace, when set),
	// and serves it from its kind's index of names: the watcher is woken only by that
	// name's events, whatever its other options.
	Name string
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
	// MaxBatchBytes caps the object bytes one Next returns (what a watcher's server
	// holds and encodes at once), but never splits a revision. Defaults to 4 MiB.
	MaxBatchBytes int
}

// Watcher reads one watch's events. It is not safe for concurrent use.
type Watcher struct {
	h      *history
	opts   WatchOptions
	maxLag int
	epoch  uint64
	seq    uint64 // next event to consider
	after  int64  // every matching event up to this revision has been delivered
	idle   time.Time
	// batchBytes is the object bytes of the batch being read.
	batchBytes int
	// The index the watch reads (its name's, its field's, or its kind's), its value and
	// the value's list in it, and the signal that an event was listed there (or the
	// history reset or closed).
	index  *fieldIndex
	value  string
	log    *valueLog
	notify chan struct{}
	closed bool
	// progress is the timer of ProgressInterval, made once and reset by each Next: a
	// timer made and stopped per call was a fifth of Next's cost under a rollout's
	// stream of single events to thousands of watchers.
	progress *time.Timer
}

func (h *history) watch(opts WatchOptions, maxLag int) (*Watcher, error) {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 1000
	}
	if opts.MaxBatchBytes <= 0 {
		opts.MaxBatchBytes = 4 << 20
	}
	if opts.IndexField != "" {
		field, value, pred := opts.IndexField, opts.IndexValue, opts.Predicate
		opts.Predicate = func(o *Object) bool {
			return o.Fields[field] == value && (pred == nil || pred(o))
		}
	}
	if opts.Name != "" {
		name, pred := opts.Name, opts.Predicate
		opts.Predicate = func(o *Object) bool {
			return o.Name == name && (pred == nil || pred(o))
		}
	}
	h.mu.Lock()
	defer h.mu.Unlock()
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
	// Every watch reads an index: its name's, its field's value, or its kind's
	// (kindIndex).
	field, value := opts.IndexField, opts.IndexValue
	switch {
	case opts.Name != "":
		field, value = nameIndex, opts.Name
	case field == "":
		field, value = kindIndex, ""
	}
	w.index = h.fieldIndex(opts.Kind, field)
	w.value = value
	if w.log = w.index.values[value]; w.log == nil {
		w.log = w.index.log(value)
		if w.index.sparse {
			w.log.from = h.first + uint64(h.n) // the events before it are in the ring
		}
	}
	if w.log.watchers == nil {
		w.log.watchers = map[*Watcher]struct{}{}
	}
	w.notify = make(chan struct{}, 1)
	w.log.watchers[w] = struct{}{}
	return w, nil
}

// fieldIndex returns the index of (kind, field), starting it if no watch used it yet.
// Called with h.mu held for writing.
func (h *history) fieldIndex(kind, field string) *fieldIndex {
	for _, fi := range h.indexes[kind] {
		if fi.field == field {
			return fi
		}
	}
	if h.indexes == nil {
		h.indexes = map[string][]*fieldIndex{}
	}
	fi := &fieldIndex{field: field, from: h.first + uint64(h.n), values: map[string]*valueLog{}, sparse: field == nameIndex}
	h.indexes[kind] = append(h.indexes[kind], fi)
	return fi
}

// Close releases the watcher. Next must not be called after it; a watcher stays
// registered with its index until closed.
func (w *Watcher) Close() {
	if w.progress != nil {
		w.progress.Stop()
	}
	if w.closed {
		return
	}
	w.closed = true
	h := w.h
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(w.log.watchers, w)
	// A sparse index forgets a name nobody watches: a new watcher of it lists it again
	// from then on.
	if len(w.log.watchers) == 0 && (len(w.log.seqs) == 0 || w.index.sparse) && w.index.values[w.value] == w.log {
		delete(w.index.values, w.value)
	}
}

// Revision is the revision up to which the watcher has delivered every event.
func (w *Watcher) Revision() int64 { return w.after }

// Next returns the next events, all of whole revisions, in order; or a single Bookmark
// after ProgressInterval without events. It blocks until there is something to return.
// Errors: ErrCompacted (the history restarted under the watch: re-list), a TooSlowError
// (resume from its LastRevision), ErrClosed, or the context's error.
func (w *Watcher) Next(ctx context.Context) ([]Event, error) {
	if w.closed {
		return nil, ErrClosed
	}
	var tick <-chan time.Time
	if w.opts.ProgressInterval > 0 {
		// Since Go 1.23 a reset timer delivers nothing stale.
		if w.progress == nil {
			w.progress = time.NewTimer(w.opts.ProgressInterval)
		} else {
			w.progress.Reset(w.opts.ProgressInterval)
		}
		tick = w.progress.C
	}
	for {
		// Take the pending signal first: an event listed from now on signals again.
		select {
		case <-w.notify:
		default:
		}
		events, err := w.readIndexed()
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
		case <-w.notify:
		case <-tick:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// readIndexed takes what is available under the read lock: it scans the ring only for
// events older than its index, then reads its value's list. Compaction and lag count
// only the events it would have read: a watcher whose node (or kind) is quiet is neither
// behind nor compacted.
func (w *Watcher) readIndexed() ([]Event, error) {
	h := w.h
	h.mu.RLock()
	defer h.mu.RUnlock()
	if h.closed {
		return nil, ErrClosed
	}
	fi, l := w.index, w.log
	// Events before from are not on the list: they are read from the ring.
	from := max(fi.from, l.from)
	lost := w.seq < h.first && (w.seq < from || (l.evicted && l.lastEvicted >= w.seq))
	if w.epoch != h.epoch || lost {
		return nil, &CompactedError{Requested: w.after, Oldest: h.compacted}
	}
	end := h.first + uint64(h.n)
	i := l.after(w.seq)
	lag := len(l.seqs) - i
	if w.seq < from {
		lag += int(from - w.seq)
	}
	if w.maxLag > 0 && lag > w.maxLag {
		return nil, &TooSlowError{LastRevision: w.after, Lag: lag}
	}
	w.batchBytes = 0
	var out []Event
	for w.seq < end && w.seq < from {
		if !w.take(&out, w.seq) {
			return out, nil
		}
	}
	for ; i < len(l.seqs); i++ {
		if !w.take(&out, l.seqs[i]) {
			return out, nil
		}
	}
	w.seq = end
	w.caughtUp()
	return out, nil
}

// take considers the event at seq, moving the watcher past it; it returns false, leaving
// the watcher at seq, when the batch is full (by count or bytes) and the event starts a
// new revision. Called with h.mu held.
func (w *Watcher) take(out *[]Event, seq uint64) bool {
	h := w.h
	ev := &h.ring[(h.start+int(seq-h.first))%len(h.ring)]
	full := len(*out) >= w.opts.MaxBatch || w.batchBytes >= w.opts.MaxBatchBytes
	if n := len(*out); n > 0 && full && ev.Revision != (*out)[n-1].Revision {
		w.seq = seq
		w.after = (*out)[n-1].Revision
		return false
	}
	w.seq = seq + 1
	if ev.Revision <= w.after {
		return true // before the watch's start
	}
	if e, ok := w.filter(ev); ok {
		*out = append(*out, e)
		w.batchBytes += len(e.Object.Value)
	}
	return true
}

// caughtUp records that everything applied so far has been seen, so the watcher is at
// the head: a bookmark may claim it, and later events are all after it.
func (w *Watcher) caughtUp() {
	if w.h.head > w.after {
		w.after = w.h.head
	}
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
		return Event{Type: Added, Revision: ev.Revision, Object: ev.Object, Applied: ev.Applied}, true
	case was:
		gone := *ev.Prev
		gone.ModRevision = ev.Revision
		return Event{Type: Deleted, Revision: ev.Revision, Object: gone, Prev: ev.Prev, Applied: ev.Applied}, true
	}
	return Event{}, false
}
