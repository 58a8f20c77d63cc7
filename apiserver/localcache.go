package apiserver

import (
	"context"
	"errors"
	"sync"

	"github.com/skiffhq/skiff/store"
)

// localCache remembers what the objects of a rarely changing kind say (a namespace's
// phase, a service account's image pull secrets) as read from this node's state, each
// with the revision it was read at. An entry answers only while no object of the kind
// has changed on this node since (store.LastChange), so it says exactly what a stale
// read would, and a burst of creates that each check one costs no read transaction.
type localCache[V any] struct {
	kind string
	// read is what the cache keeps of a stored object.
	read    func(store.Object) (V, error)
	mu      sync.RWMutex
	entries map[store.Key]cacheEntry[V]
}

type cacheEntry[V any] struct {
	v     V
	found bool
	rev   int64
}

func newLocalCache[V any](kind string, read func(store.Object) (V, error)) *localCache[V] {
	return &localCache[V]{kind: kind, read: read}
}

// get reads k from this node's state, or from the cache while that is as current.
func (c *localCache[V]) get(s *store.Store, k store.Key) (v V, found bool, err error) {
	changed := s.LastChange(c.kind)
	c.mu.RLock()
	e, ok := c.entries[k]
	c.mu.RUnlock()
	if ok && e.rev >= changed {
		return e.v, e.found, nil
	}
	o, rev, err := s.GetLocal(k)
	switch {
	case errors.Is(err, store.ErrNotFound):
		e = cacheEntry[V]{rev: rev}
	case err != nil:
		return v, false, err
	default:
		if v, err = c.read(o); err != nil {
			return v, false, err
		}
		e = cacheEntry[V]{v: v, found: true, rev: rev}
	}
	c.mu.Lock()
	if c.entries == nil || len(c.entries) > 10_000 { // bounded: unknown names are cached too
		c.entries = map[store.Key]cacheEntry[V]{}
	}
	if cur, ok := c.entries[k]; !ok || cur.rev < e.rev {
		c.entries[k] = e
	}
	c.mu.Unlock()
	return e.v, e.found, nil
}

// confirm reads k linearizably: this node's state may trail the leader's (a follower,
// or a node replaying its log after a restart), so a miss in it is confirmed before a
// write is refused for it.
func (c *localCache[V]) confirm(ctx context.Context, s *store.Store, k store.Key) (v V, found bool, err error) {
	o, err := s.Get(ctx, k, store.ReadOptions{})
	if errors.Is(err, store.ErrNotFound) {
		return v, false, nil
	}
	if err != nil {
		return v, false, err
	}
	v, err = c.read(o)
	return v, err == nil, err
}
