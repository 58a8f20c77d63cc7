package store

import (
	"bytes"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/skiffhq/skiff/test/waitfor"
)

func TestLogBytesCounts(t *testing.T) {
	disk := &memLogStore{logs: map[uint64]*raft.Log{}}
	l := newLogBytes(disk, 1000, 1000)
	entry := func(i uint64, n int) *raft.Log { return &raft.Log{Index: i, Data: make([]byte, n)} }
	size := func(n int) int64 { return int64(entryOverhead + n) }
	for i := uint64(1); i <= 4; i++ {
		l.StoreLog(entry(i, 100))
	}
	if n, b := l.held(); n != 4 || b != 4*size(100) {
		t.Fatalf("held %d entries, %d bytes; want 4, %d", n, b, 4*size(100))
	}
	select {
	case <-l.wake:
		t.Fatal("woke the compactor under its limit")
	default:
	}
	// Raft replaces a conflicting suffix: 3 and 4 stored again, larger.
	l.StoreLogs([]*raft.Log{entry(3, 900), entry(4, 900)})
	if n, b := l.held(); n != 4 || b != 2*size(100)+2*size(900) {
		t.Fatalf("after a replaced suffix: %d entries, %d bytes", n, b)
	}
	select {
	case <-l.wake:
	default:
		t.Fatal("over its limit (2,000 bytes) without waking the compactor")
	}
	// The newest entries within a budget; at least one even when it alone is over it.
	for _, c := range []struct {
		budget int64
		want   uint64
	}{{size(900), 1}, {2 * size(900), 2}, {2*size(900) + size(100), 3}, {1 << 20, 4}, {10, 1}} {
		if got := l.fit(c.budget); got != c.want {
			t.Errorf("fit(%d) = %d, want %d", c.budget, got, c.want)
		}
	}
	// Compaction from the front, and a deleted suffix.
	l.DeleteRange(1, 2)
	if n, b := l.held(); n != 2 || b != 2*size(900) {
		t.Fatalf("after compaction: %d entries, %d bytes", n, b)
	}
	l.DeleteRange(4, 4)
	if n, b := l.held(); n != 1 || b != size(900) {
		t.Fatalf("after deleting the last entry: %d entries, %d bytes", n, b)
	}
	// What was stored before fit does not count towards waking again until minNew more.
	l.fit(0)
	l.StoreLog(entry(4, 100))
	select {
	case <-l.wake:
		t.Fatal("woke again without minNew bytes stored since the last compaction")
	default:
	}
}

// TestLogCompactedBySize: large objects make the Raft log compact by its bytes, long
// before SnapshotThreshold entries; Raft's trailing-entry count is back afterwards and
// every object is still there, also after a restart.
func TestLogCompactedBySize(t *testing.T) {
	const size = 64 << 10
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.TrailingLogBytes, cfg.SnapshotLogBytes = 256<<10, 256<<10
		cfg.SnapshotInterval = time.Hour // no snapshot by count or time in this test
	})
	ctx := ctxT(t, 60*time.Second)
	c.leader()
	s := c.nodes[0]
	const n = 48 // 3 MiB of objects: six times what the log may hold
	for i := 0; i < n; i++ {
		if _, err := s.Txn(ctx, Op{Type: Create, Key: key(strconv.Itoa(i)), Value: bytes.Repeat([]byte{'x'}, size)}); err != nil {
			t.Fatal(err)
		}
	}
	waitfor.Condition(t, 30*time.Second, "the log compacted by its size", func() (bool, string) {
		first, _ := s.logs.FirstIndex()
		last, _ := s.logs.LastIndex()
		entries, b := s.logBytes.held()
		trailing := s.raft.ReloadableConfig().TrailingLogs // lowered while a compaction runs
		return first > 1 && b <= 512<<10+size+entryOverhead && last-first+1 <= uint64(entries) && trailing == c.cfgs[0].TrailingLogs,
			fmt.Sprintf("log %d..%d, %d entries counted, %d bytes, TrailingLogs %d", first, last, entries, b, trailing)
	})
	c.stop(0)
	s = c.start(0)
	c.leader()
	objs, _, err := s.List(ctx, "ConfigMap", ListOptions{})
	if err != nil || len(objs) != n {
		t.Fatalf("after restart: %d objects, %v", len(objs), err)
	}
}
