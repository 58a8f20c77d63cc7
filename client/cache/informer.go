package cache

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// Handler receives an informer's changes. Any of the funcs may be nil. They run on the
// informer's goroutine, in order: keep them quick (enqueue a key) and never modify the
// objects they get.
type Handler[T kinds.Object] struct {
	OnAdd    func(obj T)
	OnUpdate func(old, new T)
	OnDelete func(obj T)
}

// Informer keeps a cache of one kind in step with the API servers: it lists, then
// watches from the list's resourceVersion; when a watch breaks it resumes from the last
// resourceVersion it saw, on whichever server the connection reaches; when the servers
// no longer hold that version (too old), it lists again and delivers the difference as
// adds, updates and deletes. Handlers therefore always see a cache that moved from one
// consistent state to the next.
type Informer[T kinds.Object] struct {
	client    *client.Client[T]
	namespace string
	opts      client.ListOptions
	log       hclog.Logger
	store     *indexedStore[T]

	mu        sync.Mutex
	handlers  []Handler[T]
	started   bool
	transform func(T) T

	synced atomic.Bool
	rv     atomic.Value // string: last resourceVersion seen
	// relists counts full lists (tests and metrics).
	relists atomic.Int64
}

// NewInformer makes an informer for the objects of c's kind in namespace ("" for all)
// that match opts' selectors.
func NewInformer[T kinds.Object](c *client.Client[T], namespace string, opts client.ListOptions, log hclog.Logger) *Informer[T] {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	inf := &Informer[T]{client: c, namespace: namespace, opts: opts, store: newIndexedStore[T](),
		log: log.Named("informer").With("kind", c.Kind().Kind)}
	inf.rv.Store("")
	inf.store.addIndexer(IndexNamespace, ByNamespace[T])
	return inf
}

// AddIndexer adds a secondary index, usable through the lister's ByIndex.
func (inf *Informer[T]) AddIndexer(name string, fn IndexFunc[T]) { inf.store.addIndexer(name, fn) }

// AddHandler registers a handler. Added after the informer started, it first receives an
// add for every cached object.
func (inf *Informer[T]) AddHandler(h Handler[T]) {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	if inf.started && h.OnAdd != nil {
		for _, k := range inf.store.keys() {
			if obj, ok := inf.Lister().GetByKey(k); ok {
				h.OnAdd(obj)
			}
		}
	}
	inf.handlers = append(inf.handlers, h)
}

// SetTransform makes the informer pass every object it receives through fn before it
// caches it and hands it to handlers: a component that reads a few fields of many
// objects keeps only those (client-go's SetTransform). fn may change the object it is
// given (nobody else holds it) and returns what to keep. Call it before Run.
func (inf *Informer[T]) SetTransform(fn func(T) T) {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	if inf.started {
		panic("cache: SetTransform after the informer started")
	}
	inf.transform = fn
}

func (inf *Informer[T]) keep(obj T) T {
	if inf.transform == nil {
		return obj
	}
	return inf.transform(obj)
}

// Lister reads the cache.
func (inf *Informer[T]) Lister() *Lister[T] { return &Lister[T]{s: inf.store} }

// HasSynced reports whether the first list has been delivered.
func (inf *Informer[T]) HasSynced() bool { return inf.synced.Load() }

// ResourceVersion is the last resourceVersion the informer has seen.
func (inf *Informer[T]) ResourceVersion() string { return inf.rv.Load().(string) }

// Relists counts the full lists made so far.
func (inf *Informer[T]) Relists() int64 { return inf.relists.Load() }

func (inf *Informer[T]) emit(fn func(h Handler[T])) {
	inf.mu.Lock()
	defer inf.mu.Unlock()
	for _, h := range inf.handlers {
		fn(h)
	}
}

func (inf *Informer[T]) added(obj T) {
	inf.emit(func(h Handler[T]) {
		if h.OnAdd != nil {
			h.OnAdd(obj)
		}
	})
}

func (inf *Informer[T]) updated(old, obj T) {
	inf.emit(func(h Handler[T]) {
		if h.OnUpdate != nil {
			h.OnUpdate(old, obj)
		}
	})
}

func (inf *Informer[T]) deleted(obj T) {
	inf.emit(func(h Handler[T]) {
		if h.OnDelete != nil {
			h.OnDelete(obj)
		}
	})
}

// Run keeps the cache in step until ctx ends.
func (inf *Informer[T]) Run(ctx context.Context) {
	inf.mu.Lock()
	inf.started = true
	inf.mu.Unlock()
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		if err := inf.listAndWatch(ctx); err != nil && ctx.Err() == nil {
			inf.log.Warn("list failed; retrying", "error", err, "in", wait)
			select {
			case <-time.After(wait/2 + time.Duration(rand.Int64N(int64(wait)))):
			case <-ctx.Done():
			}
			wait = min(2*wait, 10*time.Second)
			continue
		}
		wait = 100 * time.Millisecond
	}
}

// listAndWatch lists, replaces the cache, then watches until the history no longer holds
// the informer's position (too old) or ctx ends. Transient failures of the watch resume
// from the last resourceVersion without a list.
func (inf *Informer[T]) listAndWatch(ctx context.Context) error {
	list, err := inf.client.List(ctx, inf.namespace, inf.opts)
	if err != nil {
		return err
	}
	inf.relists.Add(1)
	for i := range list.Items {
		list.Items[i] = inf.keep(list.Items[i])
	}
	inf.replace(list.Items)
	inf.rv.Store(list.ResourceVersion)
	inf.synced.Store(true)

	wait := 50 * time.Millisecond
	for ctx.Err() == nil {
		w, err := inf.client.Watch(ctx, inf.namespace, client.WatchOptions{
			ListOptions: inf.opts, ResourceVersion: inf.ResourceVersion(), AllowBookmarks: true,
		})
		if err == nil {
			err = inf.follow(w)
			w.Stop()
			wait = 50 * time.Millisecond
		}
		if ctx.Err() != nil {
			return nil
		}
		if client.IsTooOld(err) {
			inf.log.Info("watch position is older than the servers' history; listing again", "resourceVersion", inf.ResourceVersion())
			return nil
		}
		inf.log.Debug("watch ended; resuming", "resourceVersion", inf.ResourceVersion(), "error", err)
		select {
		case <-time.After(wait/2 + time.Duration(rand.Int64N(int64(wait)))):
		case <-ctx.Done():
		}
		wait = min(2*wait, 5*time.Second)
	}
	return nil
}

// follow applies a watch's events until it ends.
func (inf *Informer[T]) follow(w *client.Watcher[T]) error {
	for {
		evs, err := w.Next()
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if ev.Type != client.Bookmark {
				ev.Object = inf.keep(ev.Object)
			}
			switch ev.Type {
			case client.Added, client.Modified:
				if old, existed := inf.store.put(ev.Object); existed {
					inf.updated(old, ev.Object)
				} else {
					inf.added(ev.Object)
				}
			case client.Deleted:
				if old, existed := inf.store.remove(Key(ev.Object)); existed {
					_ = old
					inf.deleted(ev.Object)
				}
			}
			inf.rv.Store(ev.ResourceVersion)
		}
	}
}

// replace makes the cache equal to a fresh list, delivering the difference.
func (inf *Informer[T]) replace(items []T) {
	fresh := make(map[string]bool, len(items))
	for _, obj := range items {
		k := Key(obj)
		fresh[k] = true
		old, existed := inf.store.put(obj)
		switch {
		case !existed:
			inf.added(obj)
		case old.GetResourceVersion() != obj.GetResourceVersion():
			inf.updated(old, obj)
		}
	}
	for _, k := range inf.store.keys() {
		if !fresh[k] {
			if old, existed := inf.store.remove(k); existed {
				inf.deleted(old)
			}
		}
	}
}

// WaitForSync waits until every informer has synced or ctx ends.
func WaitForSync(ctx context.Context, informers ...interface{ HasSynced() bool }) bool {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		all := true
		for _, inf := range informers {
			all = all && inf.HasSynced()
		}
		if all {
			return true
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return false
		}
	}
}
