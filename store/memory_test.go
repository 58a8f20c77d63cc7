package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// bigOp creates ConfigMap name with a value of size bytes.
func bigOp(name string, size int) Op {
	return Op{Type: Create, Key: key(name), Value: bytes.Repeat([]byte("x"), size)}
}

func TestHistoryBoundedByBytes(t *testing.T) {
	const size = 1000
	tf := newTestFSM(t, 100) // room for 100 events by count
	tf.f.hist.maxBytes = 3 * (size + eventOverhead)
	w, _ := tf.f.hist.watch(WatchOptions{Kind: "ConfigMap"}, 0)
	for i := 0; i < 5; i++ {
		tf.one(bigOp(fmt.Sprint(i), size)) // revisions 1..5
	}
	if n, b := tf.f.hist.held(); n != 3 || b != tf.f.hist.maxBytes {
		t.Fatalf("history holds %d events, %d bytes; want the newest 3, %d bytes", n, b, tf.f.hist.maxBytes)
	}
	// The first two revisions are gone: a watch from before them must re-list, and the
	// watcher that had not read them learns it lost them.
	_, err := tf.f.hist.watch(WatchOptions{Kind: "ConfigMap", After: 1}, 0)
	var ce *CompactedError
	if !errors.As(err, &ce) || ce.Oldest != 2 {
		t.Fatalf("watch after 1 = %v, want compacted with oldest 2", err)
	}
	if _, err := w.Next(context.Background()); !errors.Is(err, ErrCompacted) {
		t.Fatalf("watcher overtaken by the byte bound = %v, want ErrCompacted", err)
	}
	// A modification costs its previous value too; a deletion shares it.
	tf.one(Op{Type: Update, Key: key("4"), Value: bytes.Repeat([]byte("y"), size)})
	if _, b := tf.f.hist.held(); b > tf.f.hist.maxBytes {
		t.Fatalf("history holds %d bytes, over its bound %d", b, tf.f.hist.maxBytes)
	}
	// One event over the whole budget is still kept: watches at the head resume.
	tf.one(bigOp("huge", 10*size))
	if n, _ := tf.f.hist.held(); n != 1 {
		t.Fatalf("history holds %d events after an oversized one, want it alone", n)
	}
}

func TestHistoryExpiresByAge(t *testing.T) {
	tf := newTestFSM(t, 100)
	h := tf.f.hist
	h.ttl = time.Minute
	tf.one(bigOp("a", 10)) // 1
	tf.one(bigOp("b", 10)) // 2
	at := time.Unix(0, h.ring[h.start].Applied)
	if freed := h.expire(at.Add(time.Minute)); freed != 0 {
		t.Fatalf("expire at the TTL freed %d bytes, want none", freed)
	}
	if freed := h.expire(at.Add(time.Minute + time.Nanosecond)); freed < 10+eventOverhead {
		t.Fatalf("expire past the first event's TTL freed %d bytes, want it", freed)
	}
	h.expire(time.Now().Add(time.Hour))
	if n, b := h.held(); n != 0 || b != 0 {
		t.Fatalf("history holds %d events, %d bytes after expiry", n, b)
	}
	// A watch at the head still starts and sees what comes next; one from before the
	// expired events re-lists.
	w, err := h.watch(WatchOptions{Kind: "ConfigMap", After: 2}, 0)
	if err != nil {
		t.Fatalf("watch at the head after expiry: %v", err)
	}
	tf.one(bigOp("c", 10))
	if evs, err := w.Next(context.Background()); err != nil || len(evs) != 1 || evs[0].Revision != 3 {
		t.Fatalf("after expiry = %v %v", evs, err)
	}
	if _, err := h.watch(WatchOptions{Kind: "ConfigMap", After: 1}, 0); !errors.Is(err, ErrCompacted) {
		t.Fatalf("watch from an expired revision = %v, want ErrCompacted", err)
	}
}

func TestWatchBatchBoundedByBytes(t *testing.T) {
	tf := newTestFSM(t, 100)
	tf.one(bigOp("a", 600), bigOp("b", 600)) // 1: one revision over the budget
	tf.one(bigOp("c", 600))                  // 2
	tf.one(bigOp("d", 100))                  // 3
	w, _ := tf.f.hist.watch(WatchOptions{Kind: "ConfigMap", MaxBatchBytes: 1000}, 0)
	w.after, w.seq = 0, tf.f.hist.first
	var got [][]int64
	for i := 0; i < 2; i++ {
		evs, err := w.Next(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var revs []int64
		for _, e := range evs {
			revs = append(revs, e.Revision)
		}
		got = append(got, revs)
	}
	// Revision 1 stays whole though over the budget; 2 and 3 fit together.
	if fmt.Sprint(got) != "[[1 1] [2 3]]" {
		t.Fatalf("batches = %v, want [[1 1] [2 3]]", got)
	}
}

// memLogStore is a LogStore in a map, counting reads.
type memLogStore struct {
	logs  map[uint64]*raft.Log
	reads int
}

func (m *memLogStore) FirstIndex() (uint64, error) { return 0, nil }
func (m *memLogStore) LastIndex() (uint64, error)  { return 0, nil }
func (m *memLogStore) GetLog(i uint64, l *raft.Log) error {
	m.reads++
	x, ok := m.logs[i]
	if !ok {
		return raft.ErrLogNotFound
	}
	*l = *x
	return nil
}
func (m *memLogStore) StoreLog(l *raft.Log) error { return m.StoreLogs([]*raft.Log{l}) }
func (m *memLogStore) StoreLogs(ls []*raft.Log) error {
	for _, l := range ls {
		m.logs[l.Index] = l
	}
	return nil
}
func (m *memLogStore) DeleteRange(lo, hi uint64) error {
	for i := lo; i <= hi; i++ {
		delete(m.logs, i)
	}
	return nil
}

func TestLogCacheBounds(t *testing.T) {
	disk := &memLogStore{logs: map[uint64]*raft.Log{}}
	const size = 1000
	c := newLogCache(disk, 4, 2*(size+logOverhead), time.Minute)
	entry := func(i uint64, n int) *raft.Log { return &raft.Log{Index: i, Data: make([]byte, n)} }
	cached := func(i uint64) bool {
		before := disk.reads
		var l raft.Log
		if err := c.GetLog(i, &l); err != nil || l.Index != i {
			t.Fatalf("get %d = %+v %v", i, l, err)
		}
		return disk.reads == before
	}
	// Small entries: bounded by count.
	for i := uint64(1); i <= 6; i++ {
		c.StoreLog(entry(i, 10))
	}
	if n, _ := c.held(); n != 4 || cached(2) || !cached(3) || !cached(6) {
		t.Fatalf("cache holds %d entries; want 3..6", n)
	}
	// Large entries: bounded by bytes.
	c.StoreLogs([]*raft.Log{entry(7, size), entry(8, size), entry(9, size)})
	if n, b := c.held(); n != 2 || b != 2*(size+logOverhead) || cached(7) || !cached(8) || !cached(9) {
		t.Fatalf("cache holds %d entries, %d bytes; want 8..9", n, b)
	}
	// The cache keeps its own copy, not the caller's log (Raft's future around it).
	l := entry(10, 10)
	c.StoreLog(l)
	if c.ring[10%4].log == l {
		t.Fatal("cache kept the caller's *raft.Log")
	}
	// By age.
	at := c.ring[c.lo%4].at
	if c.expire(at.Add(time.Minute)); !cached(9) {
		t.Fatal("entry expired at its TTL")
	}
	c.expire(time.Now().Add(time.Hour))
	if n, b := c.held(); n != 0 || b != 0 || cached(10) {
		t.Fatalf("cache holds %d entries, %d bytes past the TTL", n, b)
	}
	// Compaction drops everything; a gap starts over.
	c.StoreLogs([]*raft.Log{entry(11, 10), entry(12, 10)})
	c.StoreLog(entry(20, 10))
	if n, _ := c.held(); n != 1 || !cached(20) {
		t.Fatalf("after a gap the cache holds %d entries, want 20 alone", n)
	}
	c.DeleteRange(1, 20)
	if n, _ := c.held(); n != 0 {
		t.Fatalf("after DeleteRange the cache holds %d entries", n)
	}
}
