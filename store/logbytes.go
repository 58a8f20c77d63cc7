package store

import (
	"errors"
	"sync"

	"github.com/hashicorp/raft"

	"github.com/skiffhq/skiff/internal/failpoint"
)

// logBytes counts the bytes of the Raft log on disk, so that the log is compacted by its
// size and not only by its number of entries. Raft snapshots after SnapshotThreshold
// entries and keeps TrailingLogs entries after a snapshot: counts that suit small
// objects, but with objects of a MiB a log of 10,240 trailing entries is 10 GiB on disk
// and, since bbolt reads its file through a memory map, as much of the member's resident
// memory once read. logBytes wakes the store's compactor (compactByBytes) when the log
// holds more than TrailingLogBytes+SnapshotLogBytes, and says how many of the newest
// entries fit in TrailingLogBytes.
//
// It knows the entries stored since the member started; entries already on disk then
// are not counted until compaction removes them.
type logBytes struct {
	raft.LogStore

	mu      sync.Mutex
	entries []sizedEntry // in index order, the oldest at entries[head]
	head    int
	total   int64 // bytes of entries[head:]
	stored  int64 // bytes stored since the compactor last ran
	limit   int64 // wake the compactor past this many bytes; 0: never
	minNew  int64 // ... and only after this many bytes stored since it last ran
	wake    chan struct{}
}

type sizedEntry struct {
	index uint64
	size  int64
}

// entryOverhead is what an entry costs in the log file beyond its data, roughly (its
// key, header fields and bbolt's page element).
const entryOverhead = 64

func newLogBytes(store raft.LogStore, trailing, snapshotAfter int64) *logBytes {
	l := &logBytes{LogStore: store, wake: make(chan struct{}, 1)}
	if trailing > 0 && snapshotAfter > 0 {
		l.limit, l.minNew = trailing+snapshotAfter, snapshotAfter/4
	}
	return l
}

var _ raft.MonotonicLogStore = (*logBytes)(nil)

// IsMonotonic passes on whether the store underneath keeps indexes monotonic.
func (l *logBytes) IsMonotonic() bool {
	m, ok := l.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (l *logBytes) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

func (l *logBytes) StoreLogs(logs []*raft.Log) error {
	failpoint.Inject(fpLogStore)
	if err := l.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, log := range logs {
		if n := len(l.entries); n > l.head && l.entries[n-1].index >= log.Index {
			l.dropFrom(log.Index) // an entry stored again (Raft replaced a conflicting suffix)
		}
		size := int64(entryOverhead + len(log.Data) + len(log.Extensions))
		l.entries = append(l.entries, sizedEntry{index: log.Index, size: size})
		l.total += size
		l.stored += size
	}
	if l.limit > 0 && l.total > l.limit && l.stored >= l.minNew {
		select {
		case l.wake <- struct{}{}:
		default:
		}
	}
	return nil
}

func (l *logBytes) DeleteRange(min, max uint64) error {
	failpoint.Inject(fpBeforeCompaction)
	if err := l.LogStore.DeleteRange(min, max); err != nil {
		return err
	}
	failpoint.Inject(fpAfterCompaction)
	l.mu.Lock()
	defer l.mu.Unlock()
	for l.head < len(l.entries) && l.entries[l.head].index >= min && l.entries[l.head].index <= max {
		l.total -= l.entries[l.head].size
		l.head++
	}
	if n := len(l.entries); n > l.head && l.entries[n-1].index >= min && l.entries[n-1].index <= max {
		l.dropFrom(min)
	}
	if l.head > len(l.entries)/2 { // give the dropped front back
		l.entries = append([]sizedEntry(nil), l.entries[l.head:]...)
		l.head = 0
	}
	return nil
}

// dropFrom forgets the entries from index on. Called with l.mu held.
func (l *logBytes) dropFrom(index uint64) {
	n := len(l.entries)
	for n > l.head && l.entries[n-1].index >= index {
		n--
		l.total -= l.entries[n].size
	}
	l.entries = l.entries[:n]
}

// fit returns how many of the newest entries together take at most budget bytes (at
// least one, so a single entry over the budget is kept), and marks the start of a
// compaction: what is stored from now on counts towards the next one.
func (l *logBytes) fit(budget int64) uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stored = 0
	var sum int64
	var n uint64
	for i := len(l.entries) - 1; i >= l.head; i-- {
		if sum += l.entries[i].size; sum > budget && n > 0 {
			break
		}
		n++
	}
	return max(n, 1)
}

// held returns the entries counted and their bytes.
func (l *logBytes) held() (entries int, bytes int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.entries) - l.head, l.total
}

// compactByBytes keeps the Raft log on disk within TrailingLogBytes+SnapshotLogBytes:
// woken when it holds more, it takes a snapshot with Raft's trailing entries lowered to
// those that fit in TrailingLogBytes (never more than TrailingLogs), so that Raft's
// compaction after the snapshot removes the rest; then it sets TrailingLogs back, so
// that the count-based snapshots of small entries keep their full tail for slow
// followers.
func (s *Store) compactByBytes() {
	defer s.wg.Done()
	for {
		select {
		case <-s.logBytes.wake:
		case <-s.ctx.Done():
			return
		}
		trailing := min(s.logBytes.fit(s.cfg.TrailingLogBytes), s.cfg.TrailingLogs)
		entries, bytes := s.logBytes.held()
		rc := s.raft.ReloadableConfig()
		rc.TrailingLogs = trailing
		if err := s.raft.ReloadConfig(rc); err != nil {
			s.log.Warn("cannot lower the Raft log's trailing entries for a compaction by size", "error", err)
			continue
		}
		err := s.raft.Snapshot().Error()
		rc.TrailingLogs = s.cfg.TrailingLogs
		if rerr := s.raft.ReloadConfig(rc); rerr != nil {
			s.log.Warn("cannot restore the Raft log's trailing entries", "error", rerr)
		}
		left, leftBytes := s.logBytes.held()
		switch {
		case err == nil || errors.Is(err, raft.ErrNothingNewToSnapshot):
			s.log.Debug("compacted the Raft log by its size", "entries_before", entries, "bytes_before", bytes,
				"entries_after", left, "bytes_after", leftBytes, "trailing", trailing)
		case errors.Is(err, raft.ErrRaftShutdown):
			return
		default:
			s.log.Warn("snapshot for a compaction of the Raft log by its size failed", "error", err, "log_bytes", bytes)
		}
	}
}
