package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
)

// The watch workload: several watchers per node watch every ConfigMap of the run's
// namespace from the revision the run started at; half of them ask for bookmarks. When a
// stream ends (its node died, was cut off, or fell behind; or, after one bookmark in
// four, on purpose) the watcher resumes from the last revision it saw (an event's or a
// bookmark's), on another node. Each watcher's
// events and bookmarks are kept in the batches they arrived in, then checked against the
// reference history that every node serves at the end. These are etcd's robustness test
// guarantees (tests/robustness/validate/watch.go):
//
//   - ordered: revisions only increase, within a stream and across its resumes;
//   - unique: no event is delivered twice;
//   - atomic: a revision's events arrive together, in one batch;
//   - reliable: no revision is missing between the start and the last revision the
//     watcher reached (an event's or a bookmark's), except where its resume point was
//     compacted and it re-listed;
//   - resumable: a stream resumed on another node continues with exactly the events
//     after its resume point, and a watch started at the end from any revision the
//     nodes still hold returns exactly the reference's events after it;
//   - bookmarkable: a bookmark comes only to a stream that asked, is never behind an
//     event the stream delivered, and never ahead of one: every revision up to it was
//     delivered before it (so none arrives after it, and resuming from it loses nothing);
//   - the same event sequence on every member (every node's history, over the
//     revisions they all hold), and every acknowledged write in it at its revision.

// wev is one watch event, reduced to what the checks compare.
type wev struct {
	Rev  int64  `json:"rev"`
	Type string `json:"type"`
	Name string `json:"name"`
	Val  string `json:"val"`
}

// watchBatch is what one read of a stream returned: events, or a bookmark (a progress
// notification: every event up to Bookmark was sent).
type watchBatch struct {
	Node     string `json:"node"`
	Stream   int    `json:"stream"` // index in the watcher's Streams
	Events   []wev  `json:"events,omitempty"`
	Bookmark int64  `json:"bookmark,omitempty"`
}

// watchStream is one (re)start of a watcher's watch.
type watchStream struct {
	Node string `json:"node"`
	From int64  `json:"from"`
	// FromBookmark: From is a bookmark's revision (no event came after it).
	FromBookmark bool `json:"fromBookmark,omitempty"`
}

func (s watchStream) String() string {
	if s.FromBookmark {
		return fmt.Sprintf("%s@%d(bookmark)", s.Node, s.From)
	}
	return fmt.Sprintf("%s@%d", s.Node, s.From)
}

// watchRecord is one watcher's history.
type watchRecord struct {
	ID      int           `json:"id"`
	Home    string        `json:"home"`
	Batches []watchBatch  `json:"-"`
	Streams []watchStream `json:"streams"` // each (re)start
	// Bookmarks: the watcher asks for bookmarks.
	Bookmarks bool `json:"bookmarks"`
	// Gaps are ranges (from, to] a watcher skipped because its resume point was compacted:
	// it re-listed and went on from the list's revision.
	Gaps [][2]int64 `json:"gaps,omitempty"`
	Last int64      `json:"last"`

	mu sync.Mutex
}

type watchWorkload struct {
	c    *cluster
	ns   string
	base int64

	watchers []*watchRecord
}

func eventOf(ev client.Event[*corev1.ConfigMap]) wev {
	rev, _ := strconv.ParseInt(ev.ResourceVersion, 10, 64)
	d := ev.Object.Data
	val, ok := d["v"]
	if !ok {
		val = d["id"]
	}
	return wev{Rev: rev, Type: string(ev.Type), Name: ev.Object.Name, Val: val}
}

func (w *watchWorkload) last(rec *watchRecord) int64 {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return rec.Last
}

// run drives one watcher until ctx ends.
func (w *watchWorkload) run(ctx context.Context, rec *watchRecord) {
	r := rand.New(rand.NewPCG(uint64(rec.ID), uint64(time.Now().UnixNano())))
	from, node := w.base, rec.Home
	fromBookmark := false
	cms := func(conn *client.Conn) *client.Client[*corev1.ConfigMap] { return client.For[*corev1.ConfigMap](conn) }
	for ctx.Err() == nil {
		// The watch call retries on its node until its context ends; give it 3s.
		wctx, cancel := context.WithCancel(ctx)
		timer := time.AfterFunc(3*time.Second, cancel)
		watch, err := cms(w.c.pinned(node)).Watch(wctx, w.ns, client.WatchOptions{ResourceVersion: strconv.FormatInt(from, 10), AllowBookmarks: rec.Bookmarks})
		timer.Stop()
		if err != nil {
			cancel()
			if client.IsTooOld(err) {
				lctx, lcancel := context.WithTimeout(ctx, 5*time.Second)
				l, lerr := cms(w.c.failover()).List(lctx, w.ns, client.ListOptions{})
				lcancel()
				if lerr == nil {
					to, _ := strconv.ParseInt(l.ResourceVersion, 10, 64)
					rec.mu.Lock()
					rec.Gaps = append(rec.Gaps, [2]int64{from, to})
					rec.Last = to
					rec.mu.Unlock()
					from, fromBookmark = to, false
				}
			}
			node = w.c.randomRunning(r)
			continue
		}
		rec.mu.Lock()
		stream := len(rec.Streams)
		rec.Streams = append(rec.Streams, watchStream{Node: node, From: from, FromBookmark: fromBookmark})
		rec.mu.Unlock()
		for resume := false; !resume; {
			evs, err := watch.Next()
			if err != nil {
				break
			}
			b := watchBatch{Node: node, Stream: stream, Events: make([]wev, 0, len(evs))}
			for _, ev := range evs {
				if ev.Type == client.Bookmark {
					// A bookmark is a batch of its own, even if it came with events.
					if len(b.Events) > 0 {
						from = w.record(rec, b, from)
						b.Events = nil
					}
					rev, _ := strconv.ParseInt(ev.ResourceVersion, 10, 64)
					from = w.record(rec, watchBatch{Node: node, Stream: stream, Bookmark: rev}, from)
					fromBookmark = from == rev
					// Now and then resume from it on purpose, as an informer would after
					// a disconnect: nothing may be lost or repeated.
					resume = fromBookmark && r.IntN(4) == 0
					continue
				}
				b.Events = append(b.Events, eventOf(ev))
			}
			if len(b.Events) > 0 {
				from = w.record(rec, b, from)
				fromBookmark = false
			}
		}
		cancel()
		// Resume elsewhere: a restarted stream on another node must continue seamlessly.
		node = w.c.randomRunning(r)
	}
}

// record adds b to rec's history and returns the revision to resume from after it.
func (w *watchWorkload) record(rec *watchRecord, b watchBatch, from int64) int64 {
	rev := b.Bookmark
	if len(b.Events) > 0 {
		rev = b.Events[len(b.Events)-1].Rev
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	rec.Batches = append(rec.Batches, b)
	rec.Last = max(rec.Last, rev)
	return max(from, rev)
}

// reference reads node's whole history from revision from (or the oldest it still has)
// up to upTo, with one watch. It returns the events and the revision after which they
// are complete.
func (w *watchWorkload) reference(ctx context.Context, node string, from, upTo int64) ([]wev, int64, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cms := client.For[*corev1.ConfigMap](w.c.pinned(node))
	// A node's history starts at its last snapshot when it restarted: "too old" (at the
	// call or on the stream's first message) moves the start to the oldest it has.
	var watch *client.Watcher[*corev1.ConfigMap]
	var first []client.Event[*corev1.ConfigMap]
	for attempt := 0; ; attempt++ {
		var err error
		watch, err = cms.Watch(ctx, w.ns, client.WatchOptions{ResourceVersion: strconv.FormatInt(from, 10)})
		if err == nil {
			if first, err = watch.Next(); err != nil {
				watch.Stop()
			}
		}
		if client.IsTooOld(err) && attempt < 3 {
			from = client.OldestResourceVersion(err)
			continue
		}
		if err != nil {
			return nil, 0, fmt.Errorf("watch %s from %d: %w", node, from, err)
		}
		break
	}
	defer watch.Stop()
	var out []wev
	for evs := first; len(out) == 0 || out[len(out)-1].Rev < upTo; {
		if evs == nil {
			var err error
			if evs, err = watch.Next(); err != nil {
				return out, from, fmt.Errorf("watch %s from %d, after %d events: %w", node, from, len(out), err)
			}
		}
		for _, ev := range evs {
			if ev.Type != client.Bookmark {
				out = append(out, eventOf(ev))
			}
		}
		evs = nil
	}
	return out, from, nil
}

// refHistory is the reference: events by revision, complete after lo.
type refHistory struct {
	lo, hi int64
	byRev  map[int64][]wev
	revs   []int64
}

func (h *refHistory) covers(rev int64) bool { return rev > h.lo && rev <= h.hi }

type watchResult struct {
	Watchers  int `json:"watchers"`
	Events    int `json:"events"`
	Bookmarks int `json:"bookmarks"`
	Resumes   int `json:"resumes"`
	// FromBookmark counts the resumes from a bookmark's revision.
	FromBookmark int `json:"resumesFromBookmark"`
	// Resumed counts the watches started at the end from a random revision (resumable).
	Resumed      int              `json:"resumedChecks"`
	Gaps         int              `json:"tooOldGaps"`
	Reference    map[string]int64 `json:"referenceFrom"` // per node: revision its history is complete after
	RefEvents    int              `json:"referenceEvents"`
	Unverifiable int              `json:"eventsBeforeReference"`
}

// buildReference compares every node's history over their common range and merges them.
func buildReference(per map[string][]wev, from map[string]int64, hi int64) (*refHistory, []anomaly) {
	var anomalies []anomaly
	ref := &refHistory{lo: -1, hi: hi, byRev: map[int64][]wev{}}
	names := make([]string, 0, len(per))
	for n := range per {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if ref.lo < 0 || from[n] < ref.lo {
			ref.lo = from[n]
		}
	}
	byNode := map[string]map[int64][]wev{}
	for _, n := range names {
		m := map[int64][]wev{}
		for _, ev := range per[n] {
			if ev.Rev <= hi {
				m[ev.Rev] = append(m[ev.Rev], ev)
			}
		}
		byNode[n] = m
		for rev, evs := range m {
			if _, ok := ref.byRev[rev]; !ok {
				ref.byRev[rev] = evs
				ref.revs = append(ref.revs, rev)
			}
		}
	}
	sort.Slice(ref.revs, func(i, j int) bool { return ref.revs[i] < ref.revs[j] })
	for _, rev := range ref.revs {
		for _, n := range names {
			if rev <= from[n] {
				continue
			}
			got := byNode[n][rev]
			if !sameEvents(got, ref.byRev[rev]) {
				anomalies = append(anomalies, anomaly{Checker: "watch", Kind: "nodes-disagree",
					Detail: fmt.Sprintf("revision %d: node %s has %v, another node has %v", rev, n, got, ref.byRev[rev])})
			}
		}
	}
	return ref, anomalies
}

func sameEvents(a, b []wev) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// checkWatcher checks one watcher against the reference.
func checkWatcher(rec *watchRecord, base int64, ref *refHistory) (events, unverifiable int, anomalies []anomaly) {
	add := func(kind, format string, args ...any) {
		if len(anomalies) < 20 {
			anomalies = append(anomalies, anomaly{Checker: "watch", Kind: kind, Detail: fmt.Sprintf("watcher %d (home %s): ", rec.ID, rec.Home) + fmt.Sprintf(format, args...)})
		}
	}
	inGap := func(rev int64) bool {
		for _, g := range rec.Gaps {
			if rev > g[0] && rev <= g[1] {
				return true
			}
		}
		return false
	}
	seen := map[int64][]wev{}
	last := base
	stream, bookmark := -1, int64(0) // the stream being read, and its last bookmark
	claimed := base                  // revisions up to here were checked at a bookmark
	for bi, b := range rec.Batches {
		if b.Stream != stream {
			stream, bookmark = b.Stream, 0
			if b.Stream < len(rec.Streams) {
				// Ordered across resumes: nothing at or before the resume point.
				last = max(last, rec.Streams[b.Stream].From)
			}
		}
		if len(b.Events) == 0 {
			// Bookmarkable: asked for, never behind a delivered event, and never ahead
			// of one: every revision up to it was delivered before it.
			if !rec.Bookmarks {
				add("unrequested-bookmark", "batch %d from %s: bookmark at %d on a watch that did not ask for bookmarks", bi, b.Node, b.Bookmark)
			}
			if b.Bookmark < last {
				add("bookmark-behind", "batch %d from %s: bookmark at %d after events up to %d (a resume from it repeats them)", bi, b.Node, b.Bookmark, last)
			}
			var missing []int64
			for _, rev := range ref.revs[sort.Search(len(ref.revs), func(i int) bool { return ref.revs[i] > claimed }):] {
				if rev > b.Bookmark {
					break
				}
				if rev > base && ref.covers(rev) && !inGap(rev) && seen[rev] == nil {
					missing = append(missing, rev)
				}
			}
			if len(missing) > 0 {
				add("bookmark-ahead", "batch %d from %s: bookmark at %d before revisions %v were delivered (a resume from it loses them)", bi, b.Node, b.Bookmark, missing[:min(len(missing), 5)])
			}
			claimed, bookmark = max(claimed, b.Bookmark), max(bookmark, b.Bookmark)
			continue
		}
		// Ordered: a batch starts after the previous one's last revision, and revisions
		// never decrease inside it; unique follows, and so does "a revision is never split
		// across batches".
		for i, ev := range b.Events {
			switch {
			case ev.Rev <= bookmark:
				add("event-after-bookmark", "batch %d from %s: event %+v after a bookmark at %d on the same stream", bi, b.Node, ev, bookmark)
			case (i == 0 && ev.Rev <= last) || (i > 0 && ev.Rev < b.Events[i-1].Rev):
				add("out-of-order", "batch %d from %s: event %+v after revision %d", bi, b.Node, ev, last)
			}
			for _, s := range seen[ev.Rev] {
				if s.Name == ev.Name {
					add("duplicate", "batch %d from %s: event %+v delivered twice", bi, b.Node, ev)
				}
			}
			seen[ev.Rev] = append(seen[ev.Rev], ev)
			last = max(last, ev.Rev)
			events++
		}
		// Atomic: each revision in the batch comes whole.
		counts := map[int64]int{}
		for _, ev := range b.Events {
			counts[ev.Rev]++
		}
		for rev, n := range counts {
			if ref.covers(rev) && n != len(ref.byRev[rev]) {
				add("not-atomic", "batch %d from %s: %d of revision %d's %d events", bi, b.Node, n, rev, len(ref.byRev[rev]))
			}
		}
	}
	// Reliable: within (base, last], minus compacted gaps, exactly the reference's events.
	for rev, evs := range seen {
		if !ref.covers(rev) {
			unverifiable += len(evs)
			continue
		}
		if !sameEvents(evs, ref.byRev[rev]) {
			add("wrong-events", "revision %d: watcher saw %v, history has %v", rev, evs, ref.byRev[rev])
		}
	}
	for _, rev := range ref.revs {
		if rev <= base || rev > last || !ref.covers(rev) || inGap(rev) {
			continue
		}
		if _, ok := seen[rev]; !ok {
			add("gap", "revision %d (%v) never delivered (streams: %v)", rev, ref.byRev[rev], rec.Streams)
		}
	}
	return events, unverifiable, anomalies
}

// checkResumed (resumable): a watch of node started at revision from, which the
// reference holds, returns exactly the reference's events after from (up to its end).
func checkResumed(node string, from int64, evs []wev, ref *refHistory) []anomaly {
	var want []wev
	for _, rev := range ref.revs {
		if rev > from && ref.covers(rev) {
			want = append(want, ref.byRev[rev]...)
		}
	}
	var got []wev
	for _, ev := range evs {
		if ev.Rev <= ref.hi {
			got = append(got, ev)
		}
	}
	if sameEvents(got, want) {
		return nil
	}
	i := 0
	for i < len(got) && i < len(want) && got[i] == want[i] {
		i++
	}
	at := func(evs []wev) string {
		if i < len(evs) {
			return fmt.Sprintf("%+v", evs[i])
		}
		return "nothing"
	}
	return []anomaly{{Checker: "watch", Kind: "not-resumable", Detail: fmt.Sprintf(
		"a watch of %s from revision %d returned %d events, the history has %d after it; event %d: %s, the history has %s",
		node, from, len(got), len(want), i, at(got), at(want))}}
}

// checkAcknowledged: every write a client saw succeed is in the history at its revision.
func checkAcknowledged(acked []ackedWrite, ref *refHistory) []anomaly {
	var anomalies []anomaly
	for _, a := range acked {
		if !ref.covers(a.Rev) {
			continue
		}
		found := false
		for _, ev := range ref.byRev[a.Rev] {
			found = found || (ev.Name == a.Name && ev.Val == a.Value)
		}
		if !found && len(anomalies) < 20 {
			anomalies = append(anomalies, anomaly{Checker: "watch", Kind: "acknowledged-write-missing",
				Detail: fmt.Sprintf("acknowledged %s of %s=%s at revision %d is not in the history (which has %v there)", a.What, a.Name, a.Value, a.Rev, ref.byRev[a.Rev])})
		}
	}
	return anomalies
}

// checkFinalState: the reference's last event per object agrees with a final list.
func checkFinalState(items []*corev1.ConfigMap, ref *refHistory) []anomaly {
	var anomalies []anomaly
	latest := map[string]wev{}
	for _, rev := range ref.revs {
		if !ref.covers(rev) {
			continue
		}
		for _, ev := range ref.byRev[rev] {
			latest[ev.Name] = ev
		}
	}
	listed := map[string]bool{}
	for _, cm := range items {
		name := cm.Name
		listed[name] = true
		rev, _ := strconv.ParseInt(cm.ResourceVersion, 10, 64)
		if !ref.covers(rev) {
			continue
		}
		if ev, ok := latest[name]; !ok || ev.Rev != rev {
			anomalies = append(anomalies, anomaly{Checker: "watch", Kind: "list-disagrees",
				Detail: fmt.Sprintf("list has %s at revision %d; the history's last event for it is %+v", name, rev, latest[name])})
		}
	}
	for name, ev := range latest {
		if ev.Type != "DELETED" && !listed[name] {
			anomalies = append(anomalies, anomaly{Checker: "watch", Kind: "list-disagrees",
				Detail: fmt.Sprintf("history has %s last at %+v; the final list lacks it", name, ev)})
		}
	}
	return anomalies
}
