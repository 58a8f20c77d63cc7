package garbagecollector

import (
	"context"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/kinds"
)

// ignored are the kinds the collector does not follow: Kubernetes' collector's default
// ignored resources, events in the core group and in events.k8s.io (the latter a
// version of the former in Skiff: kinds.Info.Conversion). An Event owning something
// is still read live when a dependent names it.
var ignored = map[string]bool{kinds.Event: true}

// crdsChanged wakes followKinds (the CRD informer's handlers call it).
func (c *Collector) crdsChanged() {
	select {
	case c.crdChanged <- struct{}{}:
	default: // already woken: it will read the CRDs as they are then
	}
}

// monitor is the informer of one kind that followKinds runs: the kind's metadata alone.
type monitor struct {
	info   *kinds.Info
	cancel context.CancelFunc
	done   chan struct{}
}

// followKinds keeps one monitor running for each kind the collector follows but does not
// read through the factory's shared informers, until ctx ends: the built-in kinds Skiff
// serves, and the storage version of each established CRD, monitors started and stopped
// as the CRDs come, change and go. It owns the monitors; the collector's kinds map holds
// what they cache for the workers.
func (c *Collector) followKinds(ctx context.Context) {
	running := map[string]*monitor{} // by Kind
	stop := func(m *monitor) {
		c.mu.Lock()
		if t := c.kinds[m.info.Kind]; t != nil && t.info == m.info {
			delete(c.kinds, m.info.Kind)
		}
		c.mu.Unlock()
		m.cancel()
		<-m.done
		delete(running, m.info.Kind)
		c.log.Debug("stopped following a kind", "kind", m.info.Kind, "group", m.info.Group)
	}
	for {
		want := c.monitoredKinds(c.crds.List(labels.Everything()))
		for kind, m := range running {
			if w := want[kind]; w == nil || !sameKind(w, m.info) {
				stop(m)
			}
		}
		for kind, info := range want {
			if running[kind] == nil {
				running[kind] = c.startMonitor(ctx, info)
			}
		}
		select {
		case <-ctx.Done():
			for _, m := range running {
				stop(m)
			}
			return
		case <-c.crdChanged:
		}
	}
}

// startMonitor runs an informer of info's objects that keeps their metadata alone.
func (c *Collector) startMonitor(ctx context.Context, info *kinds.Info) *monitor {
	inf := cache.NewInformer(client.ForMetadata(c.conn, info), "", client.ListOptions{}, c.log)
	inf.SetTransform(func(m *metav1.PartialObjectMetadata) *metav1.PartialObjectMetadata { return collected(info, m) })
	trackAs(c, info, inf, true)
	mctx, cancel := context.WithCancel(ctx)
	m := &monitor{info: info, cancel: cancel, done: make(chan struct{})}
	go func() { defer close(m.done); inf.Run(mctx) }() // stop waits for it
	c.log.Debug("following a kind", "kind", info.Kind, "group", info.Group)
	return m
}

// collected is what the collector keeps of an object: the metadata it reads, under the
// kind's own apiVersion and kind strings (not one copy per object).
func collected(info *kinds.Info, m *metav1.PartialObjectMetadata) *metav1.PartialObjectMetadata {
	return &metav1.PartialObjectMetadata{
		TypeMeta: metav1.TypeMeta{APIVersion: info.APIVersion, Kind: info.Kind},
		ObjectMeta: metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion,
			DeletionTimestamp: m.DeletionTimestamp, OwnerReferences: m.OwnerReferences, Finalizers: m.Finalizers},
	}
}

// monitoredKinds returns, by Kind, the kinds followKinds runs a monitor for: every
// built-in kind Skiff stores (each can be listed, watched and deleted) that is neither
// shared nor ignored, and the custom kinds of crds.
func (c *Collector) monitoredKinds(crds []*apiextensionsv1.CustomResourceDefinition) map[string]*kinds.Info {
	out := map[string]*kinds.Info{}
	for _, in := range kinds.All() {
		if in.Conversion == nil && !ignored[in.Kind] && !c.shared[in.Kind] {
			out[in.Kind] = in
		}
	}
	for kind, in := range customKinds(crds) {
		// Never a built-in kind's name: the registry refuses such a CRD (KindConflict).
		if out[kind] == nil && !c.shared[kind] {
			out[kind] = in
		}
	}
	return out
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
