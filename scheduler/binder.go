package scheduler

import (
	"context"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
)

// binder binds pods to nodes: the API servers' compare-and-swap Bind, or a fake.
type binder interface {
	Bind(ctx context.Context, pod *corev1.Pod, node string) error
}

// batchBinder binds through the API servers, the binds that wait at once together: a
// write-ahead log's group commit. Each Bind queues its binding and waits; calls
// goroutines each take what is queued (up to size bindings) and send it as one call
// (client.Conn.BindEach: one BindBatch, which the servers commit in one store
// transaction; a lone binding is one Bind), then take what queued meanwhile. A pod
// scheduled while the calls are idle goes at once and alone; under a burst the
// bindings queue behind the calls in flight and go a hundred at a time. Each binding
// keeps its own outcome (BindEach's per binding), so a pod bound meanwhile by another
// scheduler, or deleted, fails alone.
type batchBinder struct {
	bindEach func(ctx context.Context, bs []client.Binding) ([]*corev1.Pod, []error)
	size     int           // the most bindings one call carries
	calls    int           // the goroutines sending calls
	timeout  time.Duration // bounds one call
	queue    chan *queuedBind
}

// queuedBind is one Bind waiting for its call's outcome.
type queuedBind struct {
	ctx     context.Context // the Bind's: once it ends, the binding is not sent
	binding client.Binding
	done    chan error // buffered: the sender never waits for the Bind
}

var _ binder = (*batchBinder)(nil)

func newBatchBinder(conn *client.Conn, cfg Config) *batchBinder {
	return &batchBinder{bindEach: conn.BindEach, size: cfg.BindBatchSize, calls: cfg.BindCalls, timeout: cfg.BindTimeout,
		queue: make(chan *queuedBind, cfg.MaxConcurrentBinds)}
}

// Bind queues the binding of pod to node and waits for its outcome, or for ctx to end
// (the binding may then still be made: the watch says).
func (b *batchBinder) Bind(ctx context.Context, pod *corev1.Pod, node string) error {
	q := &queuedBind{ctx: ctx, done: make(chan error, 1),
		binding: client.Binding{Namespace: pod.Namespace, Name: pod.Name, UID: string(pod.UID), Node: node}}
	var err error
	select {
	case b.queue <- q:
		select {
		case err = <-q.done:
		case <-ctx.Done():
			err = ctx.Err()
		}
	case <-ctx.Done():
		err = ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("bind pod %s/%s to %s: %w", pod.Namespace, pod.Name, node, err)
	}
	return nil
}

// run sends the queued bindings until ctx ends, from calls goroutines, and returns when
// they have.
func (b *batchBinder) run(ctx context.Context) {
	var wg sync.WaitGroup
	for range b.calls {
		wg.Go(func() {
			for {
				batch, ok := b.take(ctx)
				if !ok {
					return
				}
				b.send(ctx, batch)
			}
		})
	}
	wg.Wait()
}

// take waits for a binding, then takes what else is queued, up to size, without
// waiting. Bindings whose Bind has given up are dropped.
func (b *batchBinder) take(ctx context.Context) ([]*queuedBind, bool) {
	var batch []*queuedBind
	add := func(q *queuedBind) {
		if err := q.ctx.Err(); err != nil {
			q.done <- err
			return
		}
		batch = append(batch, q)
	}
	for len(batch) == 0 {
		select {
		case q := <-b.queue:
			add(q)
		case <-ctx.Done():
			return nil, false
		}
	}
	for len(batch) < b.size {
		select {
		case q := <-b.queue:
			add(q)
		default:
			return batch, true
		}
	}
	return batch, true
}

// send makes one call for batch and gives each Bind its outcome.
func (b *batchBinder) send(ctx context.Context, batch []*queuedBind) {
	bs := make([]client.Binding, len(batch))
	for i, q := range batch {
		bs[i] = q.binding
	}
	cctx, cancel := context.WithTimeout(ctx, b.timeout)
	_, errs := b.bindEach(cctx, bs)
	cancel()
	for i, q := range batch {
		q.done <- errs[i]
	}
}
