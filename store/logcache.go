package store

import (
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// logCache keeps the newest Raft log entries in memory in front of the log on disk, so a
// leader replicates what it just appended without reading it back. Unlike raft.LogCache,
// which holds a fixed number of entries whatever their size, it is bounded by count, by
// bytes and by age: a thousand 1 MiB writes must not pin a GiB, and entries every
// follower has long since received are given back. It keeps copies of the entries it is
// given, never the caller's pointers (see StoreLogs).
type logCache struct {
	raft.LogStore
	maxBytes int64
	ttl      time.Duration

	mu     sync.Mutex
	ring   []cachedLog // entry i at ring[i % len(ring)]
	lo, hi uint64      // the cached entries are lo..hi-1
	bytes  int64
}

type cachedLog struct {
	log *raft.Log
	at  time.Time
}

// logOverhead is what caching an entry costs beyond its data, roughly.
const logOverhead = 128

func newLogCache(store raft.LogStore, entries int, maxBytes int64, ttl time.Duration) *logCache {
	return &logCache{LogStore: store, maxBytes: maxBytes, ttl: ttl, ring: make([]cachedLog, entries)}
}

var _ raft.MonotonicLogStore = (*logCache)(nil)

// IsMonotonic passes on whether the store underneath keeps indexes monotonic.
func (c *logCache) IsMonotonic() bool {
	m, ok := c.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

func (c *logCache) GetLog(idx uint64, log *raft.Log) error {
	c.mu.Lock()
	if idx >= c.lo && idx < c.hi {
		*log = *c.ring[idx%uint64(len(c.ring))].log
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	return c.LogStore.GetLog(idx, log)
}

func (c *logCache) StoreLog(log *raft.Log) error { return c.StoreLogs([]*raft.Log{log}) }

func (c *logCache) StoreLogs(logs []*raft.Log) error {
	if err := c.LogStore.StoreLogs(logs); err != nil {
		return err
	}
	now := time.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, l := range logs {
		if l.Index != c.hi || c.lo == c.hi {
			c.clear() // not contiguous with what is cached: start over from here
			c.lo, c.hi = l.Index, l.Index
		}
		for c.hi-c.lo >= uint64(len(c.ring)) {
			c.dropOldest() // frees the slot the entry goes to
		}
		// A copy: on the leader, l points into Raft's future for the entry, which also
		// holds the entry's result (a deleted object, whole) until the entry is dropped.
		cp := *l
		c.ring[l.Index%uint64(len(c.ring))] = cachedLog{log: &cp, at: now}
		c.bytes += int64(logOverhead + len(l.Data))
		c.hi++
		for c.maxBytes > 0 && c.bytes > c.maxBytes && c.hi-c.lo > 1 {
			c.dropOldest()
		}
	}
	return nil
}

func (c *logCache) DeleteRange(min, max uint64) error {
	c.mu.Lock()
	c.clear()
	c.mu.Unlock()
	return c.LogStore.DeleteRange(min, max)
}

// expire drops the entries cached before now-ttl; it reports the bytes it freed.
func (c *logCache) expire(now time.Time) int64 {
	if c.ttl <= 0 {
		return 0
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	before := c.bytes
	for c.lo < c.hi && now.Sub(c.ring[c.lo%uint64(len(c.ring))].at) > c.ttl {
		c.dropOldest()
	}
	return before - c.bytes
}

// held returns the entries cached and their cost.
func (c *logCache) held() (entries int, bytes int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int(c.hi - c.lo), c.bytes
}

// dropOldest forgets entry lo. Called with c.mu held and c.lo < c.hi.
func (c *logCache) dropOldest() {
	slot := &c.ring[c.lo%uint64(len(c.ring))]
	c.bytes -= int64(logOverhead + len(slot.log.Data))
	*slot = cachedLog{}
	c.lo++
}

func (c *logCache) clear() {
	for c.lo < c.hi {
		c.dropOldest()
	}
	c.lo, c.hi, c.bytes = 0, 0, 0
}
