package workqueue

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/internal/workers"
)

// ReconcileFunc brings one key's world in line. A non-nil error retries the key with
// back-off; otherwise a positive requeueAfter looks at it again after that long.
type ReconcileFunc func(ctx context.Context, key string) (requeueAfter time.Duration, err error)

// Run reconciles the queue's keys on up to workers goroutines at once until ctx ends,
// then shuts the queue down and waits for the keys being reconciled. Workers are
// started as keys come (see Serve): an idle queue holds no goroutine but Run's own.
func (q *Queue) Run(ctx context.Context, workers int, log hclog.Logger, reconcile ReconcileFunc) {
	stop := context.AfterFunc(ctx, q.ShutDown)
	defer stop()
	take := func() (string, bool) {
		key, shutdown := q.Get()
		return key, !shutdown
	}
	Serve(workers, q.cfg.Pool, take, q.tryGet, func(key string) {
		after, err := reconcile(ctx, key)
		switch {
		case err != nil && ctx.Err() == nil:
			log.Debug("reconcile failed; retrying", "key", key, "error", err, "retries", q.NumRequeues(key))
			q.AddRateLimited(key)
		case err == nil:
			q.Forget(key)
			if after > 0 {
				q.AddAfter(key, after)
			}
		}
		q.Done(key)
	})
	q.ShutDown() // ended by ctx: wait for the shutdown AfterFunc began
}

// tryGet is Get without the wait: a ready key, if there is one.
func (q *Queue) tryGet() (string, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.queue) == 0 {
		return "", false
	}
	return q.take(), true
}

// Serve runs work on each item take hands out, on at most n goroutines at once (at
// least one), until take reports that there are no more; then it waits for the work
// under way. take blocks until an item is ready, and is called only while fewer than n
// items are being worked on, so items wait in take's source, not in Serve. A goroutine
// is started for an item when every one running is busy; after its work it takes the
// next ready item from poll (which must not block; nil: none) and ends when poll has
// none. So a pool of idle workers costs no goroutines: a process of thousands of
// simulated nodes, each with its queues, would otherwise hold a dozen idle ones a node
// (issue 26), while a busy pool keeps its goroutines and their grown stacks. The
// goroutines are pool's workers (nil: goroutines of their own), whose stacks have grown
// to the work's depth already.
func Serve[T any](n int, pool *workers.Pool, take func() (T, bool), poll func() (T, bool), work func(T)) {
	slots := make(chan struct{}, max(n, 1))
	var wg sync.WaitGroup
	for {
		slots <- struct{}{}
		item, ok := take()
		if !ok {
			break
		}
		wg.Add(1)
		pool.Go(func() {
			defer wg.Done()
			defer func() { <-slots }()
			for {
				work(item)
				if poll == nil {
					return
				}
				if item, ok = poll(); !ok {
					return
				}
			}
		})
	}
	wg.Wait()
}
