package store

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"testing"
	"time"
)

// events returns the events the history holds, oldest first.
func (h *history) events() []Event {
	h.mu.RLock()
	defer h.mu.RUnlock()
	out := make([]Event, h.n)
	for i := range out {
		out[i] = h.ring[(h.start+i)%len(h.ring)]
	}
	return out
}

func sameArray(a, b []byte) bool { return len(a) > 0 && len(b) > 0 && &a[0] == &b[0] }

func sameMapOf(a, b map[string]string) bool {
	return a != nil && reflect.ValueOf(a).UnsafePointer() == reflect.ValueOf(b).UnsafePointer()
}

// TestUpdateSharesPrevWithHistory: an update's event holds as its Prev the object the
// event before it holds (one decoded copy, not two); unchanged labels and fields are
// one map along the chain; nothing the next change does alters an earlier event; and
// once the history no longer holds the earlier event, Prev is read from the state, as
// before, with the same content.
func TestUpdateSharesPrevWithHistory(t *testing.T) {
	tf := newTestFSM(t, 4)
	h := tf.f.hist
	k := podKey("p")
	lbl := map[string]string{"app": "web"}
	if _, err := tf.one(Op{Type: Create, Key: k, Value: []byte("v1"), UID: "u1", Labels: lbl, Fields: onNode("")}); err != nil {
		t.Fatal(err)
	}
	if _, err := tf.one(Op{Type: Update, Key: k, Value: []byte("v2"), Labels: maps.Clone(lbl), Fields: onNode("n1")}); err != nil {
		t.Fatal(err)
	}
	if _, err := tf.one(Op{Type: Update, Key: k, Value: []byte("v3"), Labels: map[string]string{"app": "web", "x": "y"}, Fields: onNode("n1")}); err != nil {
		t.Fatal(err)
	}
	evs := h.events()
	if len(evs) != 3 {
		t.Fatalf("%d events, want 3", len(evs))
	}
	created, bound, relabelled := evs[0], evs[1], evs[2]
	if !sameArray(bound.Prev.Value, created.Object.Value) || !sameMapOf(bound.Prev.Labels, created.Object.Labels) || !sameMapOf(bound.Prev.Fields, created.Object.Fields) {
		t.Errorf("the bind's Prev is a copy of the create's object, not it")
	}
	if !sameMapOf(bound.Object.Labels, created.Object.Labels) {
		t.Errorf("the bind's unchanged labels are a second map")
	}
	if !sameMapOf(relabelled.Prev.Fields, bound.Object.Fields) || !sameMapOf(relabelled.Object.Fields, bound.Object.Fields) {
		t.Errorf("the relabel's unchanged fields are not the bind's map")
	}
	if sameMapOf(relabelled.Object.Labels, bound.Object.Labels) {
		t.Errorf("the relabel's new labels share the bind's map")
	}
	// What each event says is what was written.
	for i, want := range []struct {
		value, prev string
		labels      map[string]string
		node        string
	}{{"v1", "", lbl, ""}, {"v2", "v1", lbl, "n1"}, {"v3", "v2", map[string]string{"app": "web", "x": "y"}, "n1"}} {
		ev := evs[i]
		if string(ev.Object.Value) != want.value || !maps.Equal(ev.Object.Labels, want.labels) || ev.Object.Fields["spec.nodeName"] != want.node {
			t.Errorf("event %d: object %q %v %v, want %q %v %q", i, ev.Object.Value, ev.Object.Labels, ev.Object.Fields, want.value, want.labels, want.node)
		}
		if (ev.Prev == nil) != (want.prev == "") || ev.Prev != nil && string(ev.Prev.Value) != want.prev {
			t.Errorf("event %d: prev %+v, want %q", i, ev.Prev, want.prev)
		}
	}
	if created.Object.Labels["x"] != "" || len(created.Object.Labels) != 1 {
		t.Errorf("the relabel changed the create's labels: %v", created.Object.Labels)
	}

	// Push the pod's events out of the ring (4 slots): the next update's Prev is decoded
	// from the state, and equal.
	for _, n := range []string{"a", "b", "c", "d"} {
		if _, err := tf.one(Op{Type: Create, Key: podKey(n), Value: []byte(n)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := h.latestObject(k); ok {
		t.Fatalf("the history still names an evicted event as the pod's latest")
	}
	if _, err := tf.one(Op{Type: Update, Key: k, Value: []byte("v4"), Labels: lbl}); err != nil {
		t.Fatal(err)
	}
	evs = h.events()
	last := evs[len(evs)-1]
	if last.Prev == nil || !bytes.Equal(last.Prev.Value, []byte("v3")) || last.Prev.Labels["x"] != "y" || last.Prev.ModRevision != relabelled.Revision || sameArray(last.Prev.Value, relabelled.Object.Value) {
		t.Errorf("after eviction, prev %+v: want v3 read from the state", last.Prev)
	}
	// An emptied history (its events aged out) holds no names either.
	h.ttl = time.Nanosecond
	h.expire(time.Now().Add(time.Second))
	if h.n != 0 || h.latest != nil {
		t.Errorf("expired history: %d events, names %v", h.n, h.latest)
	}
	// A restore empties the history and its names.
	h.reset(100)
	if _, ok := h.latestObject(k); ok {
		t.Errorf("a reset history still names the pod's latest event")
	}
}

// TestEqualMapsAreOne: the pods of one Deployment hold one labels map, the pods of one
// node one fields map, across transactions; different content is never merged; a full
// table starts over and still answers with equal content.
func TestEqualMapsAreOne(t *testing.T) {
	tf := newTestFSM(t, 100)
	for i, n := range []string{"a", "b", "c"} {
		node := "n1"
		if i == 2 {
			node = "n2"
		}
		if _, err := tf.one(Op{Type: Create, Key: podKey(n), Value: []byte(n), Labels: map[string]string{"app": "web", "hash": "1"}, Fields: onNode(node)}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := tf.one(Op{Type: Create, Key: podKey("d"), Value: []byte("d"), Labels: map[string]string{"app": "web", "hash": "2"}}); err != nil {
		t.Fatal(err)
	}
	evs := tf.f.hist.events()
	a, b, c, d := evs[0].Object, evs[1].Object, evs[2].Object, evs[3].Object
	if !sameMapOf(a.Labels, b.Labels) || !sameMapOf(a.Labels, c.Labels) || !sameMapOf(a.Fields, b.Fields) {
		t.Errorf("equal maps of different pods are copies")
	}
	if sameMapOf(a.Fields, c.Fields) || sameMapOf(a.Labels, d.Labels) || d.Labels["hash"] != "2" || c.Fields["spec.nodeName"] != "n2" {
		t.Errorf("different maps merged: %v %v, %v %v", a.Fields, c.Fields, a.Labels, d.Labels)
	}
	// Keys and values that run together when concatenated stay apart.
	var tab mapTable
	x := tab.intern(map[string]string{"ab": "c"})
	y := tab.intern(map[string]string{"a": "bc"})
	if sameMapOf(x, y) || y["a"] != "bc" {
		t.Errorf("{ab: c} and {a: bc} are one map")
	}
	// Nor do a value holding a NUL and two entries (a field's value may hold any byte).
	p := tab.intern(map[string]string{"k": "x\x00m\x00y"})
	q := tab.intern(map[string]string{"k": "x", "m": "y"})
	if sameMapOf(p, q) || len(q) != 2 {
		t.Errorf("{k: x\\0m\\0y} and {k: x, m: y} are one map")
	}
	for i := 0; i < 2*mapTableSize; i++ {
		m := tab.intern(map[string]string{"i": string(rune('a' + i%26)), "n": fmt.Sprint(i)})
		if m["n"] != fmt.Sprint(i) {
			t.Fatalf("intern %d: %v", i, m)
		}
	}
	if len(tab.m) > mapTableSize {
		t.Errorf("the table holds %d maps, over %d", len(tab.m), mapTableSize)
	}
}
