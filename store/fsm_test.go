package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// testFSM is a state machine driven directly with log entries, without Raft.
type testFSM struct {
	t    testing.TB
	f    *fsm
	next uint64
}

func newTestFSM(t testing.TB, historySize int) *testFSM {
	t.Helper()
	f, err := openFSM(filepath.Join(t.TempDir(), "state.db"), 0, 1<<20, nil, newHistory(historySize, 0), testIdentity(t), hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.close() })
	return &testFSM{t: t, f: f, next: 1}
}

// apply applies transactions as one batch and returns their outcomes.
func (tf *testFSM) apply(txns ...[]Op) []*txnOutcome {
	tf.t.Helper()
	logs := make([]*raft.Log, len(txns))
	for i, ops := range txns {
		cmd, err := encodeTxn(ops)
		if err != nil {
			tf.t.Fatal(err)
		}
		logs[i] = &raft.Log{Index: tf.next, Type: raft.LogCommand, Data: cmd}
		tf.next++
	}
	out := make([]*txnOutcome, len(txns))
	for i, r := range tf.f.ApplyBatch(logs) {
		out[i] = r.(*txnOutcome)
	}
	return out
}

func (tf *testFSM) one(ops ...Op) (*TxnResult, error) {
	o := tf.apply(ops)[0]
	return o.result, o.err
}

// list lists as Store.List does, without the read barrier.
func (tf *testFSM) list(kind string, opts ListOptions) ([]Object, int64, error) {
	l, err := tf.f.list(context.Background(), kind, opts)
	return l.Objects, l.Revision, err
}

func key(name string) Key { return Key{Kind: "ConfigMap", Namespace: "default", Name: name} }

func TestPreconditions(t *testing.T) {
	tf := newTestFSM(t, 100)
	res, err := tf.one(Op{Type: Create, Key: key("a"), Value: []byte("v1"), UID: "u1"})
	if err != nil || res.Revision != 1 || res.Objects[0].ModRevision != 1 || res.Objects[0].CreateRevision != 1 {
		t.Fatalf("create: %+v %v", res, err)
	}
	for _, tc := range []struct {
		name  string
		op    Op
		class error
		cur   int64
	}{
		{"create existing", Op{Type: Create, Key: key("a"), Value: []byte("x")}, ErrAlreadyExists, 1},
		{"update missing", Op{Type: Update, Key: key("b"), Value: []byte("x")}, ErrNotFound, 0},
		{"update stale revision", Op{Type: Update, Key: key("a"), Value: []byte("x"), IfRevision: 7}, ErrConflict, 1},
		{"update wrong uid", Op{Type: Update, Key: key("a"), Value: []byte("x"), IfUID: "u2"}, ErrConflict, 1},
		{"delete missing", Op{Type: Delete, Key: key("b")}, ErrNotFound, 0},
		{"delete wrong uid", Op{Type: Delete, Key: key("a"), IfUID: "u9"}, ErrConflict, 1},
		{"delete stale revision", Op{Type: Delete, Key: key("a"), IfRevision: 3}, ErrConflict, 1},
	} {
		_, err := tf.one(tc.op)
		var pe *PreconditionError
		if !errors.Is(err, tc.class) || !errors.As(err, &pe) || pe.CurrentRevision != tc.cur || pe.Key != tc.op.Key {
			t.Errorf("%s: err = %v, want %v with current revision %d", tc.name, err, tc.class, tc.cur)
		}
	}
	// Failed transactions still take a revision (their log index) but change nothing.
	res, err = tf.one(Op{Type: Update, Key: key("a"), Value: []byte("v2"), IfRevision: 1, UID: "ignored"})
	if err != nil || res.Revision != 9 || res.Objects[0].CreateRevision != 1 || res.Objects[0].UID != "u1" {
		t.Fatalf("update: %+v %v", res, err)
	}
	obj, rev, err := tf.f.get(key("a"))
	if err != nil || string(obj.Value) != "v2" || obj.ModRevision != 9 || rev != 9 {
		t.Fatalf("get after update: %+v rev %d %v", obj, rev, err)
	}
	res, err = tf.one(Op{Type: Delete, Key: key("a"), IfUID: "u1", IfRevision: 9})
	if err != nil || res.Objects[0].ModRevision != 10 || string(res.Objects[0].Value) != "v2" {
		t.Fatalf("delete: %+v %v", res, err)
	}
	if _, _, err := tf.f.get(key("a")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get after delete: %v", err)
	}
}

func TestTransactionsAreAtomic(t *testing.T) {
	tf := newTestFSM(t, 100)
	if _, err := tf.one(Op{Type: Create, Key: key("a"), Value: []byte("a")}); err != nil {
		t.Fatal(err)
	}
	// The second operation fails, so the first must not happen either.
	_, err := tf.one(
		Op{Type: Create, Key: key("b"), Value: []byte("b")},
		Op{Type: Update, Key: key("a"), Value: []byte("a2"), IfRevision: 99},
	)
	var pe *PreconditionError
	if !errors.As(err, &pe) || pe.Op != 1 {
		t.Fatalf("err = %v, want a precondition failure of op 1", err)
	}
	if _, _, err := tf.f.get(key("b")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("b exists after a failed transaction: %v", err)
	}
	// Operations see the transaction's own earlier writes.
	res, err := tf.one(
		Op{Type: Create, Key: key("c"), Value: []byte("c1")},
		Op{Type: Update, Key: key("c"), Value: []byte("c2")},
		Op{Type: Delete, Key: key("a")},
	)
	if err != nil || len(res.Objects) != 3 {
		t.Fatalf("txn: %+v %v", res, err)
	}
	objs, _, _ := tf.list("ConfigMap", ListOptions{})
	if len(objs) != 1 || objs[0].Name != "c" || string(objs[0].Value) != "c2" {
		t.Fatalf("list = %+v", objs)
	}
}

func TestBatchOrdersRacingWriters(t *testing.T) {
	tf := newTestFSM(t, 100)
	res, _ := tf.one(Op{Type: Create, Key: key("n"), Value: []byte("0")})
	rev := res.Revision
	// Two writers read the same revision and race in one batch: exactly one wins.
	out := tf.apply(
		[]Op{{Type: Update, Key: key("n"), Value: []byte("1"), IfRevision: rev}},
		[]Op{{Type: Update, Key: key("n"), Value: []byte("2"), IfRevision: rev}},
	)
	if out[0].err != nil || !errors.Is(out[1].err, ErrConflict) {
		t.Fatalf("outcomes: %v, %v", out[0].err, out[1].err)
	}
}

func TestFieldIndexAndList(t *testing.T) {
	tf := newTestFSM(t, 100)
	pod := func(ns, name, node string) Op {
		return Op{Type: Create, Key: Key{Kind: "Pod", Namespace: ns, Name: name}, Value: []byte(name),
			Labels: map[string]string{"app": name[:1]}, Fields: map[string]string{"spec.nodeName": node}}
	}
	tf.apply([]Op{pod("a", "p1", "w1")}, []Op{pod("a", "p2", "w2")}, []Op{pod("b", "p3", "w1")}, []Op{pod("b", "q4", "")})
	names := func(objs []Object) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.Namespace+"/"+o.Name)
		}
		return out
	}
	for _, tc := range []struct {
		opts ListOptions
		want []string
	}{
		{ListOptions{}, []string{"a/p1", "a/p2", "b/p3", "b/q4"}},
		{ListOptions{Namespace: "b"}, []string{"b/p3", "b/q4"}},
		{ListOptions{IndexField: "spec.nodeName", IndexValue: "w1"}, []string{"a/p1", "b/p3"}},
		{ListOptions{IndexField: "spec.nodeName", IndexValue: "w1", Namespace: "b"}, []string{"b/p3"}},
		{ListOptions{IndexField: "spec.nodeName", IndexValue: ""}, []string{"b/q4"}},
		{ListOptions{Predicate: func(o *Object) bool { return o.Labels["app"] == "q" }}, []string{"b/q4"}},
	} {
		objs, rev, err := tf.list("Pod", tc.opts)
		if err != nil || rev != 4 || !reflect.DeepEqual(names(objs), tc.want) {
			t.Errorf("list %+v = %v rev %d %v; want %v", tc.opts, names(objs), rev, err, tc.want)
		}
	}
	// ValuesOnly: the same objects, without their maps, a Predicate's too; ignored with
	// an IndexField, which reads the fields.
	for _, tc := range []struct {
		opts ListOptions
		want []string
		maps bool
	}{
		{ListOptions{ValuesOnly: true}, []string{"a/p1", "a/p2", "b/p3", "b/q4"}, false},
		{ListOptions{ValuesOnly: true, Namespace: "a", Limit: 1}, []string{"a/p1"}, false},
		{ListOptions{ValuesOnly: true, IndexField: "spec.nodeName", IndexValue: "w2"}, []string{"a/p2"}, true},
		{ListOptions{ValuesOnly: true, Predicate: func(o *Object) bool { return o.Labels == nil && string(o.Value) == "q4" }}, []string{"b/q4"}, false},
	} {
		objs, _, err := tf.list("Pod", tc.opts)
		if err != nil || !reflect.DeepEqual(names(objs), tc.want) {
			t.Errorf("list %+v = %v %v; want %v", tc.opts, names(objs), err, tc.want)
		}
		for _, o := range objs {
			if hasMaps := o.Labels != nil && o.Fields != nil; hasMaps != tc.maps || string(o.Value) != o.Name || o.ModRevision == 0 {
				t.Errorf("list %+v: %s read as %+v; want its value and revision, and its maps %v", tc.opts, o.Name, o, tc.maps)
			}
		}
	}
	full, _, _ := tf.list("Pod", ListOptions{})
	bare, _, _ := tf.list("Pod", ListOptions{ValuesOnly: true})
	lists := func(opts ListOptions) func() {
		return func() {
			if _, _, err := tf.list("Pod", opts); err != nil {
				t.Fatal(err)
			}
		}
	}
	if withMaps, without := testing.AllocsPerRun(20, lists(ListOptions{})), testing.AllocsPerRun(20, lists(ListOptions{ValuesOnly: true})); without > withMaps-float64(2*len(full)) {
		t.Errorf("a list of %d objects: %v allocations without their maps, %v with them; want two an object fewer at least", len(bare), without, withMaps)
	}
	// Moving a pod moves its index entry; deleting removes it.
	tf.one(Op{Type: Update, Key: Key{Kind: "Pod", Namespace: "a", Name: "p1"}, Value: []byte("p1"), Fields: map[string]string{"spec.nodeName": "w2"}})
	tf.one(Op{Type: Delete, Key: Key{Kind: "Pod", Namespace: "a", Name: "p2"}})
	objs, _, _ := tf.list("Pod", ListOptions{IndexField: "spec.nodeName", IndexValue: "w2"})
	if got := names(objs); !reflect.DeepEqual(got, []string{"a/p1"}) {
		t.Errorf("w2 after move and delete = %v", got)
	}
	objs, _, _ = tf.list("Pod", ListOptions{IndexField: "spec.nodeName", IndexValue: "w1"})
	if got := names(objs); !reflect.DeepEqual(got, []string{"b/p3"}) {
		t.Errorf("w1 after move = %v", got)
	}
}

// TestListPagesAtOneRevision: a list cut into pages reads every page at the first
// page's revision, whatever changed since (the changes are undone from the history),
// through the index or not; a revision the history no longer holds is compacted.
func TestListPagesAtOneRevision(t *testing.T) {
	for _, indexed := range []bool{false, true} {
		t.Run(fmt.Sprintf("indexed=%v", indexed), func(t *testing.T) {
			tf := newTestFSM(t, 100)
			if indexed {
				f, err := openFSM(filepath.Join(t.TempDir(), "state.db"), 0, 1<<20, map[string][]string{"Pod": {"spec.nodeName"}}, newHistory(100, 0), testIdentity(t), hclog.NewNullLogger())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { f.close() })
				tf.f = f
			}
			pod := func(typ OpType, ns, name, node string) []Op {
				return []Op{{Type: typ, Key: Key{Kind: "Pod", Namespace: ns, Name: name}, Value: []byte(name + "@" + node),
					Fields: map[string]string{"spec.nodeName": node}}}
			}
			tf.apply(pod(Create, "a", "p1", "w1"), pod(Create, "a", "p2", "w1"), pod(Create, "b", "p3", "w1"), pod(Create, "b", "p4", "w2"), pod(Create, "c", "p5", "w1"))
			opts := ListOptions{IndexField: "spec.nodeName", IndexValue: "w1", Limit: 2}
			first, err := tf.f.list(context.Background(), "Pod", opts)
			if err != nil || first.Revision != 5 || !first.More || len(first.Objects) != 2 || first.Objects[1].Name != "p2" {
				t.Fatalf("first page = %+v %v", first, err)
			}
			// Between pages: p3 leaves w1, p4 joins it, p5 changes, p2 goes, a/p0 and b/p6 come.
			tf.apply(pod(Update, "b", "p3", "w2"), pod(Update, "b", "p4", "w1"), pod(Update, "c", "p5", "w1"))
			tf.apply([]Op{{Type: Delete, Key: Key{Kind: "Pod", Namespace: "a", Name: "p2"}}}, pod(Create, "a", "p0", "w1"), pod(Create, "b", "p6", "w1"))
			var got []string
			opts.Revision, opts.After = first.Revision, first.Objects[1].Key
			for {
				page, err := tf.f.list(context.Background(), "Pod", opts)
				if err != nil || page.Revision != first.Revision {
					t.Fatalf("page after %v = %+v %v", opts.After, page, err)
				}
				for _, o := range page.Objects {
					got = append(got, o.Namespace+"/"+string(o.Value))
				}
				if !page.More {
					break
				}
				opts.After = page.Objects[len(page.Objects)-1].Key
			}
			if want := []string{"b/p3@w1", "c/p5@w1"}; !reflect.DeepEqual(got, want) {
				t.Errorf("later pages = %v, want %v", got, want)
			}
			// The whole list at revision 5 and now.
			then, _ := tf.f.list(context.Background(), "Pod", ListOptions{Revision: 5})
			now, _ := tf.f.list(context.Background(), "Pod", ListOptions{})
			if len(then.Objects) != 5 || len(now.Objects) != 6 || now.Revision != 11 {
				t.Errorf("at 5: %d objects; now: %d at %d", len(then.Objects), len(now.Objects), now.Revision)
			}
			// Past the history's reach.
			for i := 0; i < 100; i++ {
				tf.apply(pod(Update, "c", "p5", "w1"))
			}
			var ce *CompactedError
			if _, err := tf.f.list(context.Background(), "Pod", ListOptions{Revision: 5}); !errors.As(err, &ce) {
				t.Errorf("list at a compacted revision: %v", err)
			}
		})
	}
}

// TestListPagesUndoChangesAsTheyCome: the pages of a list at a past revision, with
// writes between every two of them, each read as of that revision: an object changed
// again keeps its first change's state before, one created since is not listed, one
// deleted since is; a page asked again, or one from further back, reads the same. Each
// page reads only the history since the page before: what the list keeps of the
// changes is what follows the page's start, up to the current revision.
func TestListPagesUndoChangesAsTheyCome(t *testing.T) {
	tf := newTestFSM(t, 100)
	pod := func(typ OpType, name, version string) []Op {
		return []Op{{Type: typ, Key: Key{Kind: "Pod", Namespace: "a", Name: name}, Value: []byte(name + "@" + version)}}
	}
	for i := 0; i < 10; i++ {
		tf.apply(pod(Create, fmt.Sprintf("p%d", i), "1"))
	}
	ctx := context.Background()
	first, err := tf.f.list(ctx, "Pod", ListOptions{Limit: 3, CountRemaining: true})
	if err != nil || first.Revision != 10 || first.Remaining != 7 {
		t.Fatalf("first page = %+v %v", first, err)
	}
	page := func(after string) (got []string, res ListResult) {
		t.Helper()
		res, err := tf.f.list(ctx, "Pod", ListOptions{Limit: 3, CountRemaining: true, Revision: first.Revision, After: Key{Namespace: "a", Name: after}})
		if err != nil || res.Revision != first.Revision {
			t.Fatalf("page after %s = %+v %v", after, res, err)
		}
		for _, o := range res.Objects {
			got = append(got, string(o.Value))
		}
		return got, res
	}
	want := func(after string, names ...string) {
		t.Helper()
		if got, _ := page(after); !reflect.DeepEqual(got, names) {
			t.Errorf("page after %s = %v, want %v", after, got, names)
		}
	}
	tf.apply(pod(Update, "p5", "2"), []Op{{Type: Delete, Key: Key{Kind: "Pod", Namespace: "a", Name: "p7"}}}, pod(Create, "p35", "1"))
	want("p2", "p3@1", "p4@1", "p5@1")
	tf.apply(pod(Update, "p5", "3"), pod(Update, "p6", "2"), pod(Update, "p1", "2"), pod(Create, "p55", "1"))
	want("p2", "p3@1", "p4@1", "p5@1") // asked again
	tf.apply(pod(Update, "p8", "2"), pod(Create, "p75", "1"))
	got, res := page("p5")
	if want := []string{"p6@1", "p7@1", "p8@1"}; !reflect.DeepEqual(got, want) || !res.More || res.Remaining != 1 {
		t.Errorf("page after p5 = %v, more %v, remaining %d; want %v and 1 more", got, res.More, res.Remaining, want)
	}
	u := tf.f.past.lists[pastListKey{kind: "Pod", rev: first.Revision}]
	if u == nil || u.to != 19 || string(u.floor) != string(objectKey(Key{Kind: "Pod", Namespace: "a", Name: "p5"})) {
		t.Fatalf("the list's undone changes: %+v", u)
	}
	var kept []string
	for _, c := range u.ahead {
		kept = append(kept, parseObjectKey(c.key).Name)
	}
	if want := []string{"p55", "p6", "p7", "p75", "p8"}; !reflect.DeepEqual(kept, want) {
		t.Errorf("kept the changes of %v, want %v (those after p5)", kept, want)
	}
	want("p8", "p9@1")
	want("p0", "p1@1", "p2@1", "p3@1") // from further back
}

// TestListPagesConcurrently: lists paging at one past revision at the same time, while
// writes go on, share the changes they undo and each read the state at that revision.
func TestListPagesConcurrently(t *testing.T) {
	tf := newTestFSM(t, 10_000)
	pod := func(typ OpType, i, version int) []Op {
		return []Op{{Type: typ, Key: Key{Kind: "Pod", Namespace: "a", Name: fmt.Sprintf("p%03d", i)}, Value: []byte(fmt.Sprintf("%d@%d", i, version))}}
	}
	for i := 0; i < 200; i += 2 {
		tf.apply(pod(Create, i, 0))
	}
	ctx := context.Background()
	then, err := tf.f.list(ctx, "Pod", ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, o := range then.Objects {
		want = append(want, string(o.Value))
	}
	var wg sync.WaitGroup
	wg.Go(func() { // 2,000 writes, well within the history
		for v := 1; v <= 1000; v++ {
			tf.apply(pod(Update, (v*37)%200/2*2, v), pod(Create, v%100*2+1, v))
		}
	})
	errs := make(chan error, 4)
	for range 4 {
		wg.Go(func() {
			var got []string
			opts := ListOptions{Limit: 7, CountRemaining: true, Revision: then.Revision}
			for {
				res, err := tf.f.list(ctx, "Pod", opts)
				if err != nil {
					errs <- err
					return
				}
				for _, o := range res.Objects {
					got = append(got, string(o.Value))
				}
				if !res.More {
					break
				}
				opts.After = res.Objects[len(res.Objects)-1].Key
			}
			if !reflect.DeepEqual(got, want) {
				errs <- fmt.Errorf("paged list at %d = %v, want %v", then.Revision, got, want)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestListCountsRemaining: a full page of a list without field or predicate counts the
// objects after it (Kubernetes' remainingItemCount), in a namespace, at the page's
// revision whatever changed since; with a predicate it does not.
func TestListCountsRemaining(t *testing.T) {
	tf := newTestFSM(t, 100)
	pod := func(typ OpType, ns, name string) []Op {
		return []Op{{Type: typ, Key: Key{Kind: "Pod", Namespace: ns, Name: name}, Value: []byte(name)}}
	}
	tf.apply(pod(Create, "a", "p1"), pod(Create, "a", "p2"), pod(Create, "a", "p3"), pod(Create, "b", "p4"), pod(Create, "b", "p5"))
	ctx := context.Background()
	for _, tc := range []struct {
		opts      ListOptions
		more      bool
		remaining int64
	}{
		{ListOptions{Limit: 2, CountRemaining: true}, true, 3},
		{ListOptions{Limit: 2, CountRemaining: true, Namespace: "a"}, true, 1},
		{ListOptions{Limit: 2, CountRemaining: true, Namespace: "b"}, false, 0},
		{ListOptions{Limit: 2, CountRemaining: true, After: Key{Namespace: "a", Name: "p3"}}, false, 0},
		{ListOptions{Limit: 1, CountRemaining: true, After: Key{Namespace: "a", Name: "p2"}}, true, 2},
		{ListOptions{Limit: 2}, true, 0},
		{ListOptions{Limit: 1, CountRemaining: true, Predicate: func(o *Object) bool { return o.Namespace == "a" }}, true, 0},
	} {
		res, err := tf.f.list(ctx, "Pod", tc.opts)
		if err != nil || res.More != tc.more || res.Remaining != tc.remaining {
			t.Errorf("list %+v: more %v remaining %d %v; want %v %d", tc.opts, res.More, res.Remaining, err, tc.more, tc.remaining)
		}
	}
	// At the first page's revision: what was deleted and created since is undone.
	first, err := tf.f.list(ctx, "Pod", ListOptions{Limit: 2, CountRemaining: true})
	if err != nil {
		t.Fatal(err)
	}
	tf.apply([]Op{{Type: Delete, Key: Key{Kind: "Pod", Namespace: "b", Name: "p4"}}}, pod(Create, "c", "p6"), pod(Create, "a", "p0"))
	next, err := tf.f.list(ctx, "Pod", ListOptions{Limit: 1, CountRemaining: true, Revision: first.Revision, After: first.Objects[1].Key})
	if err != nil || len(next.Objects) != 1 || next.Objects[0].Name != "p3" || !next.More || next.Remaining != 2 {
		t.Errorf("next page at %d = %+v %v; want p3 and 2 more", first.Revision, next, err)
	}
	now, err := tf.f.list(ctx, "Pod", ListOptions{Limit: 1, CountRemaining: true})
	if err != nil || now.Remaining != 5 {
		t.Errorf("now: remaining %d %v; want 5", now.Remaining, err)
	}
}

func TestWatchReplaysAndFilters(t *testing.T) {
	tf := newTestFSM(t, 100)
	ctx := context.Background()
	tf.one(Op{Type: Create, Key: key("a"), Value: []byte("1"), Labels: map[string]string{"x": "1"}})         // 1
	tf.one(Op{Type: Create, Key: Key{Kind: "Pod", Namespace: "default", Name: "p"}, Value: []byte("p")})     // 2
	tf.one(Op{Type: Update, Key: key("a"), Value: []byte("2"), Labels: map[string]string{"x": "2"}})         // 3
	tf.one(Op{Type: Create, Key: Key{Kind: "ConfigMap", Namespace: "other", Name: "b"}, Value: []byte("b")}) // 4
	tf.one(Op{Type: Update, Key: key("a"), Value: []byte("3"), Labels: map[string]string{"x": "1"}})         // 5
	tf.one(Op{Type: Delete, Key: key("a")})                                                                  // 6

	w, err := tf.f.hist.watch(WatchOptions{Kind: "ConfigMap", Namespace: "default", After: 0}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if w.Revision() != 6 {
		t.Fatalf("a watch from now starts at %d", w.Revision())
	}
	type ev struct {
		typ EventType
		rev int64
		val string
	}
	collect := func(w *Watcher) []ev {
		var out []ev
		cctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		for {
			evs, err := w.Next(cctx)
			if err != nil {
				return out
			}
			for _, e := range evs {
				out = append(out, ev{e.Type, e.Revision, string(e.Object.Value)})
			}
		}
	}
	w1, _ := tf.f.hist.watch(WatchOptions{Kind: "ConfigMap", Namespace: "default", After: 1}, 0)
	if got, want := collect(w1), []ev{{Modified, 3, "2"}, {Modified, 5, "3"}, {Deleted, 6, "3"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("replay after 1 = %v, want %v", got, want)
	}
	// A selector turns transitions into ADDED / DELETED.
	sel := func(o *Object) bool { return o.Labels["x"] == "1" }
	w3, _ := tf.f.hist.watch(WatchOptions{Kind: "ConfigMap", After: 1, Predicate: sel}, 0)
	if got, want := collect(w3), []ev{{Deleted, 3, "1"}, {Added, 5, "3"}, {Deleted, 6, "3"}}; !reflect.DeepEqual(got, want) {
		t.Errorf("selector replay = %v, want %v", got, want)
	}
	// New events reach a waiting watcher.
	done := make(chan []Event, 1)
	go func() {
		evs, _ := w.Next(ctx)
		done <- evs
	}()
	tf.one(Op{Type: Create, Key: key("z"), Value: []byte("z")})
	select {
	case evs := <-done:
		if len(evs) != 1 || evs[0].Type != Added || evs[0].Revision != 7 {
			t.Errorf("live event = %+v", evs)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("live event never arrived")
	}
}

func TestWatchBatchesWholeRevisions(t *testing.T) {
	tf := newTestFSM(t, 100)
	var ops []Op
	for _, n := range []string{"a", "b", "c"} {
		ops = append(ops, Op{Type: Create, Key: key(n), Value: []byte(n)})
	}
	tf.one(ops...)                                              // revision 1: three events
	tf.one(Op{Type: Create, Key: key("d"), Value: []byte("d")}) // 2
	// After 0 means "from now", so start the watcher at the history's beginning by hand.
	w, _ := tf.f.hist.watch(WatchOptions{Kind: "ConfigMap", MaxBatch: 2}, 0)
	w.after, w.seq = 0, tf.f.hist.first
	evs, err := w.Next(context.Background())
	if err != nil || len(evs) != 3 || evs[2].Revision != 1 {
		t.Fatalf("first batch = %d events %v, want revision 1's three", len(evs), err)
	}
	evs, err = w.Next(context.Background())
	if err != nil || len(evs) != 1 || evs[0].Revision != 2 {
		t.Fatalf("second batch = %+v %v", evs, err)
	}
}

func TestWatchCompactedAndTooSlow(t *testing.T) {
	tf := newTestFSM(t, 4)
	for i := 0; i < 6; i++ {
		tf.one(Op{Type: Create, Key: key(string(rune('a' + i))), Value: []byte{byte(i)}}) // revisions 1..6
	}
	_, err := tf.f.hist.watch(WatchOptions{Kind: "ConfigMap", After: 1}, 0)
	var ce *CompactedError
	if !errors.As(err, &ce) || ce.Oldest != 2 {
		t.Fatalf("watch after 1 = %v, want compacted with oldest 2", err)
	}
	w, err := tf.f.hist.watch(WatchOptions{Kind: "ConfigMap", After: 2}, 0)
	if err != nil {
		t.Fatalf("watch after 2: %v", err)
	}
	if evs, err := w.Next(context.Background()); err != nil || len(evs) != 4 || evs[0].Revision != 3 {
		t.Fatalf("replay = %v %v", evs, err)
	}
	// A watcher more than maxLag events behind is cut with a resumable error.
	slow, _ := tf.f.hist.watch(WatchOptions{Kind: "ConfigMap", After: 6}, 2)
	for i := 0; i < 3; i++ {
		tf.one(Op{Type: Create, Key: key(string(rune('p' + i))), Value: []byte{byte(i)}}) // 7..9
	}
	_, err = slow.Next(context.Background())
	var ts *TooSlowError
	if !errors.As(err, &ts) || ts.LastRevision != 6 {
		t.Fatalf("slow watcher = %v, want TooSlowError at 6", err)
	}
	// It resumes from where it was cut, without gap.
	again, err := tf.f.hist.watch(WatchOptions{Kind: "ConfigMap", After: ts.LastRevision}, 0)
	if err != nil {
		t.Fatal(err)
	}
	if evs, err := again.Next(context.Background()); err != nil || len(evs) != 3 || evs[0].Revision != 7 {
		t.Fatalf("resumed = %v %v", evs, err)
	}
	// A watcher overtaken by eviction gets ErrCompacted.
	behind, _ := tf.f.hist.watch(WatchOptions{Kind: "ConfigMap", After: 6}, 0)
	for i := 0; i < 5; i++ {
		tf.one(Op{Type: Create, Key: key(string(rune('t' + i))), Value: []byte{byte(i)}})
	}
	if _, err := behind.Next(context.Background()); !errors.Is(err, ErrCompacted) {
		t.Fatalf("overtaken watcher = %v", err)
	}
}

func TestWatchBookmarks(t *testing.T) {
	tf := newTestFSM(t, 10)
	tf.one(Op{Type: Create, Key: key("a"), Value: []byte("a")})
	w, _ := tf.f.hist.watch(WatchOptions{Kind: "Pod", After: 0, ProgressInterval: 20 * time.Millisecond}, 0)
	tf.one(Op{Type: Create, Key: key("b"), Value: []byte("b")}) // not a Pod
	evs, err := w.Next(context.Background())
	if err != nil || len(evs) != 1 || evs[0].Type != Bookmark || evs[0].Revision != 2 {
		t.Fatalf("bookmark = %+v %v", evs, err)
	}
}

func TestRestoreResetsWatchers(t *testing.T) {
	src := newTestFSM(t, 10)
	src.one(Op{Type: Create, Key: key("a"), Value: []byte("a")})
	src.one(Op{Type: Create, Key: key("b"), Value: []byte("b")})
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
	dst.one(Op{Type: Create, Key: key("old"), Value: []byte("x")})
	w, _ := dst.f.hist.watch(WatchOptions{Kind: "ConfigMap", After: 0}, 0)
	if err := dst.f.Restore(sink.reader()); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Next(context.Background()); !errors.Is(err, ErrCompacted) {
		t.Fatalf("watcher across restore = %v", err)
	}
	objs, rev, err := dst.list("ConfigMap", ListOptions{})
	if err != nil || rev != 2 || len(objs) != 2 || dst.f.applied.Load() != 2 {
		t.Fatalf("after restore: %d objects rev %d applied %d %v", len(objs), rev, dst.f.applied.Load(), err)
	}
}

// indexKeys lists the index bucket's entries as "kind field=value ns/name".
func indexKeys(t *testing.T, f *fsm) []string {
	t.Helper()
	var out []string
	err := f.view(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketIndex).ForEach(func(k, _ []byte) error {
			p := strings.Split(string(k), "\x00")
			out = append(out, p[0]+" "+p[1]+"="+p[2]+" "+p[3]+"/"+p[4])
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// With IndexedFields, only those fields are indexed; other fields still list (by a
// scan), and a snapshot made with other fields gets its index rebuilt on restore.
func TestIndexedFieldsOnly(t *testing.T) {
	open := func(fields map[string][]string) *testFSM {
		f, err := openFSM(filepath.Join(t.TempDir(), "state.db"), 0, 1<<20, fields, newHistory(100, 0), testIdentity(t), hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.close() })
		return &testFSM{t: t, f: f, next: 1}
	}
	pod := func(name, node, phase string) map[string]string {
		return map[string]string{"spec.nodeName": node, "status.phase": phase}
	}
	nodeOnly := map[string][]string{"Pod": {"spec.nodeName"}}
	some := open(nodeOnly)
	all := open(nil)
	for _, tf := range []*testFSM{some, all} {
		tf.one(Op{Type: Create, Key: podKey("a"), Fields: pod("a", "w1", "Pending")})
		tf.one(Op{Type: Create, Key: podKey("b"), Fields: pod("b", "w1", "Pending")},
			Op{Type: Create, Key: key("cm"), Fields: map[string]string{"x": "1"}})
		tf.one(Op{Type: Update, Key: podKey("a"), Fields: pod("a", "w2", "Running")})
	}
	wantSome := []string{"Pod spec.nodeName=w1 default/b", "Pod spec.nodeName=w2 default/a"}
	if got := indexKeys(t, some.f); !reflect.DeepEqual(got, wantSome) {
		t.Errorf("index with IndexedFields = %v, want %v", got, wantSome)
	}
	wantAll := []string{"ConfigMap x=1 default/cm", "Pod spec.nodeName=w1 default/b", "Pod spec.nodeName=w2 default/a",
		"Pod status.phase=Pending default/b", "Pod status.phase=Running default/a"}
	if got := indexKeys(t, all.f); !reflect.DeepEqual(got, wantAll) {
		t.Errorf("index of every field = %v, want %v", got, wantAll)
	}
	names := func(objs []Object) []string {
		var out []string
		for _, o := range objs {
			out = append(out, o.Namespace+"/"+o.Name)
		}
		return out
	}
	check := func(tf *testFSM, what string) {
		t.Helper()
		for _, tc := range []struct{ field, value, want string }{
			{"spec.nodeName", "w1", "[default/b]"},
			{"status.phase", "Running", "[default/a]"},
			{"status.phase", "Pending", "[default/b]"},
		} {
			objs, _, err := tf.list("Pod", ListOptions{IndexField: tc.field, IndexValue: tc.value})
			if got := fmt.Sprint(names(objs)); err != nil || got != tc.want {
				t.Errorf("%s: list %s=%s = %s %v, want %s", what, tc.field, tc.value, got, err, tc.want)
			}
		}
	}
	check(some, "IndexedFields")
	check(all, "every field")
	// Snapshots cross between the two: the restored index is this node's.
	for _, tc := range []struct {
		from, to *testFSM
		want     []string
	}{{all, open(nodeOnly), wantSome}, {some, open(nil), wantAll}} {
		snap, err := tc.from.f.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		sink := &memSink{}
		if err := snap.Persist(sink); err != nil {
			t.Fatal(err)
		}
		snap.Release()
		if err := tc.to.f.Restore(sink.reader()); err != nil {
			t.Fatal(err)
		}
		if got := indexKeys(t, tc.to.f); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("restored index = %v, want %v", got, tc.want)
		}
		check(tc.to, "restored")
	}
}

func TestLastChangeTracksKindsAndRestores(t *testing.T) {
	tf := newTestFSM(t, 100)
	ns := Key{Kind: "Namespace", Name: "team"}
	if got := tf.f.lastChange("Namespace"); got != 0 {
		t.Fatalf("lastChange before any write = %d", got)
	}
	tf.apply([]Op{{Type: Create, Key: ns, Value: []byte("v")}})
	tf.apply([]Op{{Type: Create, Key: key("a"), Value: []byte("v")}})
	if got := tf.f.lastChange("Namespace"); got != 1 {
		t.Fatalf("lastChange(Namespace) = %d, want 1 (a ConfigMap write is not a namespace change)", got)
	}
	tf.apply([]Op{{Type: Delete, Key: ns}})
	if got := tf.f.lastChange("Namespace"); got != 3 {
		t.Fatalf("lastChange(Namespace) after delete = %d, want 3", got)
	}
	// A restore may change anything: every kind counts as changed at its revision.
	sink := &memSink{}
	if _, err := tf.f.writeTo(sink); err != nil {
		t.Fatal(err)
	}
	other := newTestFSM(t, 100)
	if err := other.f.Restore(sink.reader()); err != nil {
		t.Fatal(err)
	}
	if got := other.f.lastChange("Pod"); got != 3 {
		t.Fatalf("lastChange(Pod) after restoring revision 3 = %d", got)
	}
}

// TestListByName: ListOptions.Name lists the objects of one name: in a namespace, across
// namespaces, of a kind without namespaces, as of a past revision, by page, and with an
// index field; the same objects as a predicate on the name would.
func TestListByName(t *testing.T) {
	tf := newTestFSM(t, 100)
	pod := func(ns, name, node string) Op {
		return Op{Type: Create, Key: Key{Kind: "Pod", Namespace: ns, Name: name}, Value: []byte(name), Fields: onNode(node)}
	}
	node := func(name string) Op { return Op{Type: Create, Key: Key{Kind: "Node", Name: name}, Value: []byte(name)} }
	tf.apply([]Op{pod("a", "web", "w1")}, []Op{pod("a", "db", "w1")}, []Op{pod("b", "web", "w2")}, []Op{pod("c", "web", "w1")}, // 1-4
		[]Op{node("n1")}, []Op{node("n2")}, []Op{node("n3")}) // 5-7
	tf.one(Op{Type: Delete, Key: Key{Kind: "Pod", Namespace: "c", Name: "web"}}) // 8
	tf.one(pod("d", "web", "w2"))                                                // 9
	names := func(objs []Object) []string {
		out := []string{}
		for _, o := range objs {
			out = append(out, o.Namespace+"/"+o.Name)
		}
		return out
	}
	for _, tc := range []struct {
		kind string
		opts ListOptions
		want []string
	}{
		{"Pod", ListOptions{Name: "web", Namespace: "a"}, []string{"a/web"}},
		{"Pod", ListOptions{Name: "web"}, []string{"a/web", "b/web", "d/web"}},
		{"Pod", ListOptions{Name: "db"}, []string{"a/db"}},
		{"Pod", ListOptions{Name: "web", Namespace: "c"}, []string{}},
		{"Pod", ListOptions{Name: "nope"}, []string{}},
		{"Node", ListOptions{Name: "n2"}, []string{"/n2"}},
		{"Node", ListOptions{Name: "n9"}, []string{}},
		{"Service", ListOptions{Name: "web"}, []string{}},
		// As of revision 7: c/web still there, d/web not yet.
		{"Pod", ListOptions{Name: "web", Revision: 7}, []string{"a/web", "b/web", "c/web"}},
		{"Pod", ListOptions{Name: "web", Namespace: "c", Revision: 7}, []string{"c/web"}},
		{"Pod", ListOptions{Name: "web", Namespace: "d", Revision: 7}, []string{}},
		// By page, and from after a page.
		{"Pod", ListOptions{Name: "web", Limit: 2}, []string{"a/web", "b/web"}},
		{"Pod", ListOptions{Name: "web", After: Key{Namespace: "b", Name: "web"}}, []string{"d/web"}},
		{"Pod", ListOptions{Name: "web", Namespace: "a", After: Key{Namespace: "a", Name: "web"}}, []string{}},
		// With an index field, both hold.
		{"Pod", ListOptions{Name: "web", IndexField: "spec.nodeName", IndexValue: "w2"}, []string{"b/web", "d/web"}},
		{"Pod", ListOptions{Name: "db", IndexField: "spec.nodeName", IndexValue: "w2"}, []string{}},
	} {
		objs, _, err := tf.list(tc.kind, tc.opts)
		if err != nil || !reflect.DeepEqual(names(objs), tc.want) {
			t.Errorf("list %s %+v = %v %v; want %v", tc.kind, tc.opts, names(objs), err, tc.want)
		}
		// The same as a predicate on the name reads, scanning.
		byPred := tc.opts
		byPred.Name = ""
		byPred.Predicate = func(o *Object) bool { return o.Name == tc.opts.Name }
		scanned, _, err := tf.list(tc.kind, byPred)
		if err != nil || !reflect.DeepEqual(names(scanned), tc.want) {
			t.Errorf("list %s by predicate %+v = %v %v; want %v", tc.kind, byPred, names(scanned), err, tc.want)
		}
	}
	// A page by name says whether more follow.
	l, err := tf.f.list(context.Background(), "Pod", ListOptions{Name: "web", Limit: 2})
	if err != nil || !l.More {
		t.Errorf("a page of 2 of 3 pods named web: More %v, %v", l.More, err)
	}
}
