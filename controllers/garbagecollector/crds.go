package garbagecollector

import (
	"context"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/kinds"
)

// crdsChanged wakes followCRDs (the CRD informer's handlers call it).
func (c *Collector) crdsChanged() {
	select {
	case c.crdChanged <- struct{}{}:
	default: // already woken: it will read the CRDs as they are then
	}
}

// customFollowed is the informer of one custom kind that followCRDs runs.
type customFollowed struct {
	info   *kinds.Info
	cancel context.CancelFunc
	done   chan struct{}
}

// followCRDs keeps one informer running per established CRD (its storage version's kind)
// until ctx ends, starting and stopping them as the CRDs come, change and go. It owns
// them; the collector's kinds map holds what they cache for the workers.
func (c *Collector) followCRDs(ctx context.Context) {
	running := map[string]*customFollowed{} // by Kind
	stop := func(f *customFollowed) {
		c.mu.Lock()
		if t := c.kinds[f.info.Kind]; t != nil && t.info == f.info {
			delete(c.kinds, f.info.Kind)
		}
		c.mu.Unlock()
		f.cancel()
		<-f.done
		delete(running, f.info.Kind)
		c.log.Debug("stopped following custom resources", "kind", f.info.Kind, "group", f.info.Group)
	}
	for {
		want := customKinds(c.crds.List(labels.Everything()))
		for kind, f := range running {
			if w := want[kind]; w == nil || !sameKind(w, f.info) {
				stop(f)
			}
		}
		for kind, info := range want {
			if running[kind] != nil {
				continue
			}
			c.mu.RLock()
			builtin := c.kinds[kind] != nil
			c.mu.RUnlock()
			if builtin {
				continue // a built-in kind's name: the registry refuses such a CRD (KindConflict)
			}
			inf := cache.NewInformer(client.ForKind(c.conn, info), "", client.ListOptions{}, c.log)
			trackAs(c, info, inf)
			ictx, cancel := context.WithCancel(ctx)
			f := &customFollowed{info: info, cancel: cancel, done: make(chan struct{})}
			running[kind] = f
			go func() { defer close(f.done); inf.Run(ictx) }() // stop waits for it
			c.log.Debug("following custom resources", "kind", kind, "group", info.Group)
		}
		select {
		case <-ctx.Done():
			for _, f := range running {
				stop(f)
			}
			return
		case <-c.crdChanged:
		}
	}
}

// customKinds returns, by Kind, the kinds whose objects the collector follows for crds:
// the storage version of each established CRD that is not being deleted, as the
// registry serves them (kinds.ServeCRDs).
func customKinds(crds []*apiextensionsv1.CustomResourceDefinition) map[string]*kinds.Info {
	out := map[string]*kinds.Info{}
	for _, crd := range crds {
		if !kinds.Established(crd) || crd.DeletionTimestamp != nil {
			continue
		}
		for _, in := range kinds.NewCustomKinds(crd, nil) {
			if in.Conversion == nil {
				out[in.Kind] = in
			}
		}
	}
	return out
}

// sameKind says whether a and b name the same objects: a CRD's update that changes
// neither keeps its informer.
func sameKind(a, b *kinds.Info) bool {
	return a.Kind == b.Kind && a.Group == b.Group && a.Version == b.Version && a.Plural == b.Plural && a.Namespaced == b.Namespaced
}
