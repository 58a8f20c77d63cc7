package workqueue

import (
	"context"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
)

// ReconcileFunc brings one key's world in line. A non-nil error retries the key with
// back-off; otherwise a positive requeueAfter looks at it again after that long.
type ReconcileFunc func(ctx context.Context, key string) (requeueAfter time.Duration, err error)

// Run hands keys to workers goroutines running reconcile until ctx ends, then shuts the
// queue down and waits for the workers to finish their current keys.
func (q *Queue) Run(ctx context.Context, workers int, log hclog.Logger, reconcile ReconcileFunc) {
	var wg sync.WaitGroup
	for i := 0; i < max(workers, 1); i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				key, shutdown := q.Get()
				if shutdown {
					return
				}
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
			}
		}()
	}
	<-ctx.Done()
	q.ShutDown()
	wg.Wait()
}
