package store

import (
	"context"
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"testing"
	"time"
)

func podKey(name string) Key { return Key{Kind: "Pod", Namespace: "default", Name: name} }

func onNode(node string) map[string]string { return map[string]string{"spec.nodeName": node} }

// poll drains what a watcher has now: Next with a cancelled context reads once and
// returns without waiting.
func poll(t *testing.T, w *Watcher) ([]Event, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out []Event
	for {
		evs, err := w.Next(ctx)
		if errors.Is(err, context.Canceled) {
			return out, nil
		}
		if err != nil {
			return out, err
		}
		out = append(out, evs...)
	}
}

type seen struct {
	Type EventType
	Rev  int64
	Name string
	Val  string
}

func summarize(evs []Event) []seen {
	out := []seen{}
	for _, e := range evs {
		out = append(out, seen{e.Type, e.Revision, e.Object.Name, string(e.Object.Value)})
	}
	return out
}

func indexed(node string, after int64) WatchOptions {
	return WatchOptions{Kind: "Pod", IndexField: "spec.nodeName", IndexValue: node, After: after}
}

func TestIndexedWatchTransitions(t *testing.T) {
	tf := newTestFSM(t, 100)
	tf.one(Op{Type: Create, Key: key("cm"), Value: []byte("x")}) // 1: before any watch
	w1, err := tf.f.hist.watch(indexed("w1", 0), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w1.Close()
	tf.one(Op{Type: Create, Key: podKey("p"), Value: []byte("pending"), Fields: onNode("")})   // 2
	tf.one(Op{Type: Update, Key: podKey("p"), Value: []byte("bound"), Fields: onNode("w1")})   // 3
	tf.one(Op{Type: Update, Key: podKey("p"), Value: []byte("running"), Fields: onNode("w1")}) // 4
	tf.one(Op{Type: Create, Key: podKey("q"), Value: []byte("other"), Fields: onNode("w2")})   // 5
	tf.one(Op{Type: Update, Key: podKey("p"), Value: []byte("moved"), Fields: onNode("w2")})   // 6
	tf.one(Op{Type: Update, Key: podKey("q"), Value: []byte("back"), Fields: onNode("w1")},    // 7
		Op{Type: Create, Key: Key{Kind: "Pod", Namespace: "other", Name: "r"}, Fields: onNode("w1")}) // 7
	tf.one(Op{Type: Delete, Key: podKey("q")}) // 8

	want := []seen{
		{Added, 3, "p", "bound"},
		{Modified, 4, "p", "running"},
		{Deleted, 6, "p", "running"},
		{Added, 7, "q", "back"},
		{Added, 7, "r", ""},
		{Deleted, 8, "q", "back"},
	}
	evs, err := poll(t, w1)
	if err != nil {
		t.Fatal(err)
	}
	if got := summarize(evs); !reflect.DeepEqual(got, want) {
		t.Errorf("w1 events:\n got %v\nwant %v", got, want)
	}
	if w1.Revision() != 8 {
		t.Errorf("w1 at revision %d, want 8", w1.Revision())
	}
	// Resuming from any revision replays exactly the later events; a namespace limits it.
	for after := int64(1); after <= 8; after++ {
		w, err := tf.f.hist.watch(indexed("w1", after), 0)
		if err != nil {
			t.Fatal(err)
		}
		evs, err := poll(t, w)
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		var exp []seen
		for _, e := range want {
			if e.Rev > after {
				exp = append(exp, e)
			}
		}
		if got := summarize(evs); len(exp) > 0 && !reflect.DeepEqual(got, exp) || len(exp) == 0 && len(got) > 0 {
			t.Errorf("resume after %d:\n got %v\nwant %v", after, got, exp)
		}
	}
	ns := indexed("w1", 1)
	ns.Namespace = "default"
	w, _ := tf.f.hist.watch(ns, 0)
	defer w.Close()
	evs, _ = poll(t, w)
	if got := summarize(evs); len(got) != 5 || got[3].Name != "q" || got[4].Type != Deleted {
		t.Errorf("namespaced indexed watch = %v", got)
	}
}

// An indexed watch delivers exactly what a scan with the equivalent predicate delivers,
// from every starting revision, whether its events came before the index existed (ring
// scan) or after (index), in batches that never split a revision.
func TestIndexedWatchMatchesScan(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	nodes := []string{"", "w1", "w2", "w3"}
	tf := newTestFSM(t, 1000)
	pods := map[string]string{} // name -> node
	step := func() {
		var ops []Op
		used := map[string]bool{}
		for n := 1 + rng.Intn(3); n > 0; n-- {
			name := fmt.Sprintf("p%d", rng.Intn(12))
			if used[name] {
				continue
			}
			used[name] = true
			node := nodes[rng.Intn(len(nodes))]
			val := []byte(fmt.Sprint(rng.Int()))
			switch cur, ok := pods[name]; {
			case !ok:
				ops = append(ops, Op{Type: Create, Key: podKey(name), Value: val, Fields: onNode(node)})
				pods[name] = node
			case rng.Intn(4) == 0:
				ops = append(ops, Op{Type: Delete, Key: podKey(name)})
				delete(pods, name)
			default:
				if rng.Intn(2) == 0 {
					node = cur
				}
				ops = append(ops, Op{Type: Update, Key: podKey(name), Value: val, Fields: onNode(node)})
				pods[name] = node
			}
		}
		if rng.Intn(3) == 0 {
			ops = append(ops, Op{Type: Create, Key: key(fmt.Sprint(rng.Int())), Value: []byte("cm")})
		}
		if len(ops) > 0 {
			if _, err := tf.one(ops...); err != nil {
				t.Fatal(err)
			}
		}
	}
	for i := 0; i < 100; i++ {
		step()
	}
	live := map[string]*Watcher{}
	for _, n := range nodes {
		w, err := tf.f.hist.watch(indexed(n, 0), 0) // the index starts here
		if err != nil {
			t.Fatal(err)
		}
		defer w.Close()
		live[n] = w
	}
	start := tf.f.applied.Load()
	for i := 0; i < 100; i++ {
		step()
	}
	head := tf.f.applied.Load()
	for _, n := range nodes {
		for after := int64(1); after <= head; after += 7 {
			node := n
			scan, _ := tf.f.hist.watch(WatchOptions{Kind: "Pod", After: after, MaxBatch: 2,
				Predicate: func(o *Object) bool { return o.Fields["spec.nodeName"] == node }}, 0)
			want, err := poll(t, scan)
			if err != nil {
				t.Fatal(err)
			}
			opts := indexed(n, after)
			opts.MaxBatch = 2
			w, _ := tf.f.hist.watch(opts, 0)
			got, err := poll(t, w)
			w.Close()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(summarize(got), summarize(want)) {
				t.Fatalf("node %q after %d:\n got %v\nwant %v", n, after, summarize(got), summarize(want))
			}
			if w.Revision() != head {
				t.Errorf("node %q after %d: watcher at %d, want %d", n, after, w.Revision(), head)
			}
		}
		scan, _ := tf.f.hist.watch(WatchOptions{Kind: "Pod", After: start,
			Predicate: func(o *Object) bool { return o.Fields["spec.nodeName"] == n }}, 0)
		want, _ := poll(t, scan)
		got, err := poll(t, live[n])
		if err != nil || !reflect.DeepEqual(summarize(got), summarize(want)) {
			t.Fatalf("live watcher of %q: %v\n got %v\nwant %v", n, err, summarize(got), summarize(want))
		}
	}
}

// Only the watchers of the values an event touches are signalled.
func TestIndexedWatchSignalsOnlyItsValue(t *testing.T) {
	tf := newTestFSM(t, 100)
	w1, _ := tf.f.hist.watch(indexed("w1", 0), 0)
	w2, _ := tf.f.hist.watch(indexed("w2", 0), 0)
	defer w1.Close()
	defer w2.Close()
	tf.one(Op{Type: Create, Key: podKey("a"), Fields: onNode("w2")})
	tf.one(Op{Type: Create, Key: key("cm"), Value: []byte("x")})
	if len(w1.notify) != 0 || len(w2.notify) != 1 {
		t.Fatalf("after a w2 event: w1 signalled %d, w2 %d", len(w1.notify), len(w2.notify))
	}
	tf.one(Op{Type: Update, Key: podKey("a"), Fields: onNode("w1")}) // leaves w2, joins w1
	if len(w1.notify) != 1 {
		t.Fatal("w1 not signalled by a pod moving to it")
	}
	// A waiting watcher wakes on its event.
	<-w1.notify
	done := make(chan []Event, 1)
	go func() {
		evs, _ := w1.Next(context.Background())
		done <- evs
	}()
	select {
	case evs := <-done:
		if len(evs) != 1 || evs[0].Type != Added || evs[0].Revision != 3 {
			t.Fatalf("w1 = %v", summarize(evs))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("w1 never woke")
	}
	// Closing the history wakes a waiting indexed watcher with ErrClosed.
	errc := make(chan error, 1)
	go func() {
		_, err := w1.Next(context.Background())
		errc <- err
	}()
	tf.f.hist.close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("after close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("close did not wake the watcher")
	}
}

func TestIndexedWatchCompactionAndLag(t *testing.T) {
	tf := newTestFSM(t, 4)
	tf.one(Op{Type: Create, Key: podKey("a"), Fields: onNode("w1")}) // 1
	quiet, _ := tf.f.hist.watch(indexed("w1", 0), 2)
	defer quiet.Close()
	lagging, _ := tf.f.hist.watch(indexed("w2", 0), 2)
	defer lagging.Close()
	for i := 0; i < 10; i++ { // 2..11: w2's events push everything else out of the ring
		tf.one(Op{Type: Create, Key: podKey(fmt.Sprint("b", i)), Fields: onNode("w2")})
	}
	// A watcher none of whose events were evicted or pending is neither compacted nor
	// too slow, however many other events went by.
	if evs, err := poll(t, quiet); err != nil || len(evs) != 0 || quiet.Revision() != 11 {
		t.Fatalf("quiet watcher: %v %v at %d", summarize(evs), err, quiet.Revision())
	}
	// Lost events compact; with all still held, more than maxLag pending is too slow.
	if _, err := poll(t, lagging); !errors.Is(err, ErrCompacted) {
		t.Fatalf("watcher whose events were evicted = %v", err)
	}
	slow, _ := tf.f.hist.watch(indexed("w1", 0), 2)
	defer slow.Close()
	for i := 0; i < 3; i++ { // 12..14
		tf.one(Op{Type: Update, Key: podKey("a"), Value: []byte{byte(i)}, Fields: onNode("w1")})
	}
	_, err := slow.Next(context.Background())
	var ts *TooSlowError
	if !errors.As(err, &ts) || ts.LastRevision != 11 {
		t.Fatalf("slow watcher = %v, want TooSlowError at 11", err)
	}
	again, err := tf.f.hist.watch(indexed("w1", ts.LastRevision), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if evs, err := poll(t, again); err != nil || len(evs) != 3 || evs[0].Revision != 12 {
		t.Fatalf("resumed = %v %v", summarize(evs), err)
	}
	// A watch that starts before its index existed scans the ring for those events, and
	// is compacted when they are gone.
	tf2 := newTestFSM(t, 4)
	tf2.one(Op{Type: Create, Key: podKey("a"), Fields: onNode("w1")}) // 1
	tf2.one(Op{Type: Create, Key: podKey("b"), Fields: onNode("w2")}) // 2
	early, _ := tf2.f.hist.watch(indexed("w3", 1), 0)                 // index starts after 2
	defer early.Close()
	for i := 0; i < 4; i++ {
		tf2.one(Op{Type: Create, Key: podKey(fmt.Sprint("c", i)), Fields: onNode("w2")})
	}
	if _, err := poll(t, early); !errors.Is(err, ErrCompacted) {
		t.Fatalf("pre-index events evicted = %v", err)
	}
}

func TestIndexedWatchRestoreAndClose(t *testing.T) {
	src := newTestFSM(t, 10)
	src.one(Op{Type: Create, Key: podKey("a"), Fields: onNode("w1")})
	snap, err := src.f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	snap.Release()

	dst := newTestFSM(t, 10)
	w, _ := dst.f.hist.watch(indexed("w1", 0), 0)
	errc := make(chan error, 1)
	go func() {
		_, err := w.Next(context.Background())
		errc <- err
	}()
	if err := dst.f.Restore(sink.reader()); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrCompacted) {
			t.Fatalf("indexed watcher across restore = %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("restore did not wake the watcher")
	}
	// After the restore the index covers every event; closing the last watcher of a value
	// with no events forgets the value.
	w.Close()
	fi := dst.f.hist.indexes["Pod"][0]
	if _, ok := fi.values["w1"]; ok {
		t.Error("closed watcher's empty value log kept")
	}
	w2, _ := dst.f.hist.watch(indexed("w1", 0), 0)
	defer w2.Close()
	dst.next = src.next
	dst.one(Op{Type: Update, Key: podKey("a"), Value: []byte("x"), Fields: onNode("w1")})
	if evs, err := poll(t, w2); err != nil || len(evs) != 1 || evs[0].Type != Modified {
		t.Fatalf("after restore = %v %v", summarize(evs), err)
	}
	if _, err := w.Next(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Next after Close = %v", err)
	}
}

// TestWatcherNextReusesItsProgressTimer: a watcher with a progress interval makes its
// timer once, not on every Next (the allocations of a Next that finds an event are
// its batch's alone), and the timer still brings a bookmark once the watch is idle.
func TestWatcherNextReusesItsProgressTimer(t *testing.T) {
	h := newHistory(1000, 0)
	w, err := h.watch(WatchOptions{Kind: "Pod", ProgressInterval: 50 * time.Millisecond, MaxBatch: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	ctx := context.Background()
	const n = 200
	for i := 1; i <= n+1; i++ {
		h.append([]Event{{Type: Added, Revision: int64(i), Object: Object{Key: Key{Kind: "Pod", Namespace: "ns", Name: fmt.Sprint(i)}, ModRevision: int64(i)}}}, int64(i))
	}
	if _, err := w.Next(ctx); err != nil { // the first Next makes the timer
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(n-1, func() {
		if evs, err := w.Next(ctx); err != nil || len(evs) != 1 {
			t.Fatalf("next = %v, %v", evs, err)
		}
	})
	if allocs > 1 {
		t.Errorf("a Next of one event allocates %.1f times, want 1 (its batch)", allocs)
	}
	for { // drain, then wait for the bookmark
		evs, err := w.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if evs[0].Type == Bookmark {
			if evs[0].Revision != n+1 {
				t.Fatalf("bookmark at %d, want %d", evs[0].Revision, n+1)
			}
			break
		}
	}
}

// A watch without an index field reads its kind's events only: other kinds' events
// neither signal it, nor make it too slow, nor compact it when they push everything
// out of the ring (as Kubernetes' watch caches are per resource); its own kind's
// events do all three as before.
func TestKindWatchIgnoresOtherKinds(t *testing.T) {
	tf := newTestFSM(t, 4)
	svcKey := func(name string) Key { return Key{Kind: "Service", Namespace: "default", Name: name} }
	services, _ := tf.f.hist.watch(WatchOptions{Kind: "Service"}, 2)
	defer services.Close()
	pods, _ := tf.f.hist.watch(WatchOptions{Kind: "Pod"}, 0)
	defer pods.Close()
	for i := 0; i < 10; i++ { // 1..10: pods push everything else out of the ring
		tf.one(Op{Type: Create, Key: podKey(fmt.Sprint("p", i)), Fields: onNode("w1")})
	}
	if len(services.notify) != 0 {
		t.Error("the Service watcher was signalled by pods' events")
	}
	if evs, err := poll(t, services); err != nil || len(evs) != 0 || services.Revision() != 10 {
		t.Fatalf("Service watcher after 10 pod events: %v %v at %d", summarize(evs), err, services.Revision())
	}
	if _, err := poll(t, pods); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Pod watcher whose events were evicted = %v", err)
	}
	tf.one(Op{Type: Create, Key: svcKey("web"), Value: []byte("s")}) // 11
	if len(services.notify) != 1 {
		t.Fatal("the Service watcher was not signalled by a Service's event")
	}
	if evs, err := poll(t, services); err != nil || !reflect.DeepEqual(summarize(evs), []seen{{Added, 11, "web", "s"}}) {
		t.Fatalf("Service watcher = %v %v", summarize(evs), err)
	}
	// Its own kind's events still make it too slow beyond maxLag.
	for i := 0; i < 3; i++ { // 12..14
		tf.one(Op{Type: Update, Key: svcKey("web"), Value: []byte{byte('a' + i)}})
	}
	var ts *TooSlowError
	if _, err := services.Next(context.Background()); !errors.As(err, &ts) || ts.LastRevision != 11 {
		t.Fatalf("Service watcher 3 events behind (maxLag 2) = %v, want TooSlowError at 11", err)
	}
	// Resumed from the revision the error gave, it reads the rest.
	again, err := tf.f.hist.watch(WatchOptions{Kind: "Service", After: 11}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if evs, err := poll(t, again); err != nil || len(evs) != 3 || evs[0].Revision != 12 || evs[2].Revision != 14 {
		t.Fatalf("resumed Service watcher = %v %v", summarize(evs), err)
	}
}

// TestNameWatch: a watch of one name (WatchOptions.Name) is woken only by its name's
// events, reads the ones before it came from the ring, and the kind's index of names
// lists only watched names, forgetting each when its last watcher goes.
func TestNameWatch(t *testing.T) {
	tf := newTestFSM(t, 8)
	in := func(ns, name string) Key { return Key{Kind: "Pod", Namespace: ns, Name: name} }
	tf.one(Op{Type: Create, Key: in("a", "web"), Value: []byte("1")}) // 1
	tf.one(Op{Type: Create, Key: in("b", "web"), Value: []byte("2")}) // 2
	tf.one(Op{Type: Create, Key: in("a", "db"), Value: []byte("3")})  // 3
	// From now, in every namespace; and from revision 1 in one: what the ring holds.
	all, err := tf.f.hist.watch(WatchOptions{Kind: "Pod", Name: "web"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer all.Close()
	if evs, err := poll(t, all); err != nil || len(evs) != 0 {
		t.Fatalf("watch from now = %v %v", summarize(evs), err)
	}
	inB, err := tf.f.hist.watch(WatchOptions{Kind: "Pod", Namespace: "b", Name: "web", After: 1}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer inB.Close()
	if evs, err := poll(t, inB); err != nil || !reflect.DeepEqual(summarize(evs), []seen{{Added, 2, "web", "2"}}) {
		t.Fatalf("watch of b/web after revision 1 = %v %v", summarize(evs), err)
	}
	// Other names' events neither list nor signal.
	tf.one(Op{Type: Update, Key: in("a", "db"), Value: []byte("4")})  // 4
	tf.one(Op{Type: Create, Key: in("a", "api"), Value: []byte("5")}) // 5
	if len(all.notify) != 0 || len(inB.notify) != 0 {
		t.Error("watchers of web were signalled by other names' events")
	}
	names := tf.f.hist.indexes["Pod"][0]
	if names.field != nameIndex || !names.sparse || len(names.values) != 1 || len(names.values["web"].seqs) != 0 {
		t.Fatalf("the index of names = %+v, want web's empty list alone", names)
	}
	tf.one(Op{Type: Update, Key: in("b", "web"), Value: []byte("6")}) // 6
	if len(all.notify) != 1 || len(inB.notify) != 1 {
		t.Error("the watchers of web were not signalled by b/web")
	}
	if evs, err := poll(t, all); err != nil || !reflect.DeepEqual(summarize(evs), []seen{{Modified, 6, "web", "6"}}) {
		t.Fatalf("watch of web = %v %v", summarize(evs), err)
	}
	if evs, err := poll(t, inB); err != nil || !reflect.DeepEqual(summarize(evs), []seen{{Modified, 6, "web", "6"}}) {
		t.Fatalf("watch of b/web = %v %v", summarize(evs), err)
	}
	tf.one(Op{Type: Delete, Key: in("a", "web")}) // 7
	if evs, err := poll(t, all); err != nil || !reflect.DeepEqual(summarize(evs), []seen{{Deleted, 7, "web", "1"}}) {
		t.Fatalf("watch of web after a/web's delete = %v %v", summarize(evs), err)
	}
	if evs, err := poll(t, inB); err != nil || len(evs) != 0 || inB.Revision() != 7 {
		t.Fatalf("watch of b/web after a/web's delete = %v %v at %d", summarize(evs), err, inB.Revision())
	}
	// Its events pushed out of the ring unread: compacted, as any watch.
	for i := 0; i < 3; i++ {
		tf.one(Op{Type: Update, Key: in("b", "web"), Value: []byte{byte('a' + i)}}) // 8-10
	}
	for i := 0; i < 8; i++ {
		tf.one(Op{Type: Update, Key: in("a", "db"), Value: []byte{byte('k' + i)}}) // 11-18
	}
	if _, err := poll(t, all); !errors.Is(err, ErrCompacted) {
		t.Fatalf("watch of web whose events were evicted = %v", err)
	}
	// The last watcher gone, the name is forgotten.
	all.Close()
	inB.Close()
	if len(names.values) != 0 {
		t.Errorf("the index of names after its watchers closed holds %d names", len(names.values))
	}
	again, err := tf.f.hist.watch(WatchOptions{Kind: "Pod", Name: "web"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	tf.one(Op{Type: Update, Key: in("b", "web"), Value: []byte("z")}) // 19
	if evs, err := poll(t, again); err != nil || !reflect.DeepEqual(summarize(evs), []seen{{Modified, 19, "web", "z"}}) {
		t.Fatalf("a new watch of web = %v %v", summarize(evs), err)
	}
}
