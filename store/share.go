package store

import (
	"bytes"
	"encoding/binary"
	"maps"
	"slices"
)

// What a member's watch history holds is most of its heap (issue 26): every event an
// object and, for an update, the object before it, each decoded with its label and field
// maps. Most of it repeats: an update's previous object is the object of the event
// before it, and a Deployment's pods carry one set of labels, the pods of a node one
// set of fields. The apply makes them one copy: a decoded previous object takes the
// history's copy of the same revision (share), an update's unchanged maps are its
// previous object's (sameMap), and maps met recently are reused (mapTable). Everything
// shared is read only: objects and their maps are never modified once applied.

// share points o's value, labels and fields at those of the same revision of the
// object that the watch history still holds, when they are equal, and the decoded copy
// becomes garbage: an update's event (its Prev) and the event before it then hold one
// copy of the object between them, not two.
func (w *writer) share(o *Object) {
	if w.hist == nil {
		return
	}
	h, ok := w.hist.latestObject(o.Key)
	if !ok || h.ModRevision != o.ModRevision || h.UID != o.UID || !bytes.Equal(h.Value, o.Value) {
		o.Labels, o.Fields = w.maps.intern(o.Labels), w.maps.intern(o.Fields)
		return
	}
	o.Value, o.UID = h.Value, h.UID
	o.Labels, o.Fields = w.sameMap(o.Labels, h.Labels), w.sameMap(o.Fields, h.Fields)
}

// sameMap returns shared when it equals m, else m as the table has it.
func (w *writer) sameMap(m, shared map[string]string) map[string]string {
	if maps.Equal(m, shared) {
		return shared
	}
	return w.maps.intern(m)
}

// mapTableSize bounds the maps a mapTable remembers: a Deployment's labels, a node's
// pods' fields recur within a few thousand writes.
const mapTableSize = 4096

// mapTable remembers recently applied label and field maps by their content, so that
// equal maps of different objects are one. It is the apply goroutine's own. Full, it
// starts over: what it held stays shared by the events that hold it.
type mapTable struct {
	m   map[string]map[string]string
	key []byte
}

// intern returns the map the table holds equal to m, remembering m if none is.
func (t *mapTable) intern(m map[string]string) map[string]string {
	if t == nil || len(m) == 0 {
		return m
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	// Each name and value goes in after its length, so that no two different maps
	// have one key, whatever bytes their values hold (a field's value may hold a NUL).
	t.key = t.key[:0]
	for _, k := range names {
		t.key = binary.AppendUvarint(t.key, uint64(len(k)))
		t.key = append(t.key, k...)
		t.key = binary.AppendUvarint(t.key, uint64(len(m[k])))
		t.key = append(t.key, m[k]...)
	}
	if held, ok := t.m[string(t.key)]; ok { // no allocation: the compiler looks up by the bytes
		return held
	}
	if t.m == nil || len(t.m) >= mapTableSize {
		t.m = make(map[string]map[string]string, mapTableSize)
	}
	t.m[string(t.key)] = m
	return m
}
