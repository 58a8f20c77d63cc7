package cache

import (
	"context"
	"fmt"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// Factory shares informers within a process: one watch per kind, namespace and selector,
// whichever components ask for it.
type Factory struct {
	cs  *client.Clientset
	log hclog.Logger

	mu        sync.Mutex
	informers map[string]runner
	started   map[string]bool
	ctx       context.Context
	wg        sync.WaitGroup
}

type runner interface {
	Run(ctx context.Context)
	HasSynced() bool
}

// NewFactory makes a factory over a clientset.
func NewFactory(cs *client.Clientset, log hclog.Logger) *Factory {
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Factory{cs: cs, log: log, informers: map[string]runner{}, started: map[string]bool{}}
}

// InformerFor returns the factory's informer for T in namespace with opts, making it on
// first use. Informers made after Start start at once.
func InformerFor[T kinds.Object](f *Factory, namespace string, opts client.ListOptions) *Informer[T] {
	c := client.For[T](f.cs.Conn)
	key := fmt.Sprintf("%s|%s|%s|%s", c.Kind().Kind, namespace, opts.LabelSelector, opts.FieldSelector)
	f.mu.Lock()
	defer f.mu.Unlock()
	if inf, ok := f.informers[key]; ok {
		return inf.(*Informer[T])
	}
	inf := NewInformer(c, namespace, opts, f.log)
	f.informers[key] = inf
	if f.ctx != nil {
		f.run(key, inf)
	}
	return inf
}

// Start runs every informer made so far (and later ones) until ctx ends; Wait waits for
// them to stop.
func (f *Factory) Start(ctx context.Context) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ctx = ctx
	for key, inf := range f.informers {
		f.run(key, inf)
	}
}

func (f *Factory) run(key string, inf runner) {
	if f.started[key] {
		return
	}
	f.started[key] = true
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		inf.Run(f.ctx)
	}()
}

// WaitForSync waits until every informer made so far has synced.
func (f *Factory) WaitForSync(ctx context.Context) bool {
	f.mu.Lock()
	var all []interface{ HasSynced() bool }
	for _, inf := range f.informers {
		all = append(all, inf)
	}
	f.mu.Unlock()
	return WaitForSync(ctx, all...)
}

// Wait blocks until the informers have stopped (after Start's ctx ends).
func (f *Factory) Wait() { f.wg.Wait() }
