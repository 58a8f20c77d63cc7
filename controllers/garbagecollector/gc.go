// Package garbagecollector deletes objects whose owners are gone, as Kubernetes' garbage
// collector does, through the ownerReferences of every kind Skiff serves (Deployments
// own ReplicaSets, ReplicaSets own Pods, and any object may own any other):
//   - background: an object all of whose owners are gone is deleted; owners that are gone
//     are removed from an object that still has others;
//   - foreground: an owner deleted with the foregroundDeletion finalizer has its dependents
//     deleted (in foreground, too), and loses the finalizer once no dependent with
//     blockOwnerDeletion remains; owners in a circle stop blocking each other's deletion
//     (inCircle);
//   - orphan: an owner deleted with the orphan finalizer has its references removed from
//     its dependents, then loses the finalizer.
//
// An owner reference names its owner's kind by apiVersion and kind; one of a kind Skiff
// does not serve is left alone. A missing owner is confirmed with a live read before
// anything is deleted, so a cache that lags never costs an object.
//
// The collector follows, as dependents and as owners, the kinds the controllers create
// and own (Deployments, ReplicaSets, ReplicationControllers, Pods, ...), through the controllers' shared informers:
// caching every kind, as Kubernetes' collector does, would hold every Event and Lease of
// the cluster in the controller-manager for nothing. It follows the custom resources of
// every established CustomResourceDefinition too, with an informer per CRD that a watch on
// the CRDs starts and stops (followCRDs; Kubernetes' collector finds them by rediscovering
// the served resources every 30 s). An owner of another kind is confirmed with a live
// read; one being deleted in the foreground or with the orphan finalizer is finished by
// the collector once a dependent it follows sees it so (within UncachedOwnerResync).
package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/kinds"
)

// The finalizers the API server adds for foreground and orphan deletion.
const (
	FinalizerForeground = metav1.FinalizerDeleteDependents // "foregroundDeletion"
	FinalizerOrphan     = metav1.FinalizerOrphanDependents // "orphan"
)

// Config tunes the collector. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers collect different objects concurrently. Default 5.
	Workers int
	// Logger receives the collector's logs, named "gc". Default: discarded.
	Logger hclog.Logger
	// UncachedOwnerResync is how often a dependent whose owner is of a kind the collector
	// does not cache (nothing tells it when such an owner goes) is looked at again.
	// Default 30s.
	UncachedOwnerResync time.Duration
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Workers: 5, Logger: hclog.NewNullLogger(), UncachedOwnerResync: 30 * time.Second}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.UncachedOwnerResync <= 0 {
		errs = append(errs, fmt.Errorf("uncachedOwnerResync: %v must be positive", c.UncachedOwnerResync))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("garbage collector config: %w", err)
	}
	return nil
}

// tracked is one kind the collector follows: its cache, and its client.
type tracked struct {
	info    *kinds.Info
	client  *client.Client[kinds.Object]
	get     func(ns, name string) (kinds.Object, bool)
	byOwner func(uid types.UID) []kinds.Object
	synced  func() bool
}

// Collector is the garbage collector.
type Collector struct {
	cfg   Config
	conn  *client.Conn
	queue *workqueue.Queue
	log   hclog.Logger

	mu    sync.RWMutex
	kinds map[string]*tracked // by Kind: the built-in kinds New tracks, and the custom kinds followCRDs does

	crds       *cache.Lister[*apiextensionsv1.CustomResourceDefinition]
	crdsSynced func() bool
	crdChanged chan struct{} // a CRD was added, changed or deleted (buffered, one)
}

// New makes the collector on the factory's informers; Run starts it. The factory must be
// started.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Collector{cfg: cfg, conn: cs.Conn, kinds: map[string]*tracked{}, queue: workqueue.New(workqueue.Config{}), log: cfg.Logger.Named("gc"),
		crdChanged: make(chan struct{}, 1)}
	track(c, cache.InformerFor[*appsv1.Deployment](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*appsv1.ReplicaSet](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*corev1.ReplicationController](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*appsv1.DaemonSet](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*appsv1.StatefulSet](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*appsv1.ControllerRevision](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*batchv1.Job](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*batchv1.CronJob](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*corev1.PersistentVolumeClaim](f, "", client.ListOptions{}))
	crds := cache.InformerFor[*apiextensionsv1.CustomResourceDefinition](f, "", client.ListOptions{})
	c.crds, c.crdsSynced = crds.Lister(), crds.HasSynced
	crds.AddHandler(cache.Handler[*apiextensionsv1.CustomResourceDefinition]{
		OnAdd:    func(*apiextensionsv1.CustomResourceDefinition) { c.crdsChanged() },
		OnUpdate: func(_, _ *apiextensionsv1.CustomResourceDefinition) { c.crdsChanged() },
		OnDelete: func(*apiextensionsv1.CustomResourceDefinition) { c.crdsChanged() },
	})
	return c, nil
}

func track[T kinds.Object](c *Collector, inf *cache.Informer[T]) {
	trackAs(c, kinds.OfType[T](), inf)
}

// trackAs follows the objects of kind info through inf, as dependents and as owners.
func trackAs[T kinds.Object](c *Collector, info *kinds.Info, inf *cache.Informer[T]) *tracked {
	inf.AddIndexer(cache.IndexOwner, cache.ByOwner[T])
	l := inf.Lister()
	t := &tracked{
		info:   info,
		client: client.ForKind(c.conn, info),
		get: func(ns, name string) (kinds.Object, bool) {
			o, ok := l.Get(ns, name)
			return o, ok
		},
		byOwner: func(uid types.UID) []kinds.Object {
			var out []kinds.Object
			for _, o := range l.ByIndex(cache.IndexOwner, string(uid)) {
				out = append(out, o)
			}
			return out
		},
		synced: inf.HasSynced,
	}
	c.mu.Lock()
	c.kinds[info.Kind] = t
	c.mu.Unlock()
	inf.AddHandler(cache.Handler[T]{
		OnAdd:    func(o T) { c.changed(t, o) },
		OnUpdate: func(_, o T) { c.changed(t, o) },
		OnDelete: func(o T) { c.deleted(o) },
	})
	return t
}

// tracked returns the kind named, when the collector follows it.
func (c *Collector) tracked(kind string) *tracked {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.kinds[kind]
}

// all returns the kinds the collector follows.
func (c *Collector) all() []*tracked {
	c.mu.RLock()
	defer c.mu.RUnlock()
	out := make([]*tracked, 0, len(c.kinds))
	for _, t := range c.kinds {
		out = append(out, t)
	}
	return out
}

// changed queues an object that may be garbage (it has owners) or an owner whose
// deletion waits on the collector (it is being deleted); others have nothing to collect.
// A dependent being deleted queues its owners too: one waiting for it in the foreground
// may have stopped waiting (its reference unblocked).
func (c *Collector) changed(t *tracked, o kinds.Object) {
	if len(o.GetOwnerReferences()) > 0 || o.GetDeletionTimestamp() != nil {
		c.queue.Add(t.info.Kind + "|" + cache.Key(o))
	}
	if o.GetDeletionTimestamp() != nil {
		c.queueOwners(o)
	}
}

// queueOwners queues o's owners: those the collector follows, and those of other kinds
// (reconcile reads them live) that a deletion in the foreground may be waiting on o for.
func (c *Collector) queueOwners(o kinds.Object) {
	for _, ref := range o.GetOwnerReferences() {
		if info := c.ownerKind(ref); info != nil && (c.tracked(info.Kind) != nil || ptr.Deref(ref.BlockOwnerDeletion, false)) {
			c.queue.Add(info.Kind + "|" + keyIn(ownerNamespace(info, o), ref.Name))
		}
	}
}

// deleted queues what o's deletion may concern: its dependents may now be garbage, its
// owners may be waiting for it.
func (c *Collector) deleted(o kinds.Object) {
	for _, t := range c.all() {
		for _, d := range t.byOwner(o.GetUID()) {
			c.queue.Add(t.info.Kind + "|" + cache.Key(d))
		}
	}
	c.queueOwners(o)
}

// ownerKind is the kind an owner reference names (its group and kind: Skiff serves each
// kind at one version, a custom kind in any of its CRD's versions over one storage
// version), or nil when Skiff does not serve it.
func (c *Collector) ownerKind(ref metav1.OwnerReference) *kinds.Info {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	if err != nil {
		return nil
	}
	if t := c.tracked(ref.Kind); t != nil && t.info.Group == gv.Group {
		return t.info
	}
	info, ok := kinds.Lookup(ref.Kind)
	if !ok || info.Kind != ref.Kind || info.Group != gv.Group {
		return nil
	}
	return info
}

// ownerNamespace is where dependent's owner of kind info lives: the dependent's
// namespace, or none for a cluster-scoped owner.
func ownerNamespace(info *kinds.Info, dependent kinds.Object) string {
	if !info.Namespaced {
		return ""
	}
	return dependent.GetNamespace()
}

func keyIn(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// Run collects until ctx ends.
func (c *Collector) Run(ctx context.Context) error {
	synced := []interface{ HasSynced() bool }{syncedFunc(c.crdsSynced)}
	for _, t := range c.all() {
		synced = append(synced, syncedFunc(t.synced))
	}
	if !cache.WaitForSync(ctx, synced...) {
		return ctx.Err()
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.followCRDs(ctx) })
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.reconcile)
	wg.Wait()
	return nil
}

type syncedFunc func() bool

func (f syncedFunc) HasSynced() bool { return f() }

// Reconcile looks at one object, "Kind|namespace/name": as a dependent (are its owners
// there?) and as an owner being deleted (what do its finalizers ask for?).
func (c *Collector) Reconcile(ctx context.Context, key string) error {
	_, err := c.reconcile(ctx, key)
	return err
}

// reconcile is Reconcile, and when to look at the object again: a dependent that keeps an
// owner of a kind not cached is looked at every UncachedOwnerResync.
func (c *Collector) reconcile(ctx context.Context, key string) (time.Duration, error) {
	kind, k, _ := strings.Cut(key, "|")
	ns, name := cache.SplitKey(k)
	t := c.tracked(kind)
	if t == nil {
		return 0, c.uncachedOwner(ctx, kind, ns, name)
	}
	obj, ok := t.get(ns, name)
	if !ok {
		return 0, nil
	}
	uncached, err := c.asDependent(ctx, t, obj)
	if err != nil {
		return 0, err
	}
	if err := c.asOwner(ctx, t, obj); err != nil {
		return 0, err
	}
	if uncached {
		return c.cfg.UncachedOwnerResync, nil
	}
	return 0, nil
}

// ownerState says whether the owner ref of dependent points at an existing object, and
// whether that owner is being deleted in the foreground. waiting says the owner is of a
// kind the collector does not follow and is being deleted with a finalizer the collector
// must act on (foreground or orphan): nothing else would tell it.
func (c *Collector) ownerState(ctx context.Context, dependent kinds.Object, ref metav1.OwnerReference) (exists, foreground, waiting bool, err error) {
	info := c.ownerKind(ref)
	if info == nil {
		return true, false, false, nil // a kind Skiff does not serve: leave it alone
	}
	ns := ownerNamespace(info, dependent)
	check := func(o kinds.Object) (bool, bool) {
		return o.GetUID() == ref.UID, o.GetDeletionTimestamp() != nil && slices.Contains(o.GetFinalizers(), FinalizerForeground)
	}
	t := c.tracked(info.Kind)
	if t != nil {
		if o, ok := t.get(ns, ref.Name); ok {
			if e, fg := check(o); e {
				return e, fg, false, nil
			}
		}
	}
	// Absent (or another uid) in the cache, or a kind not cached: ask the servers before
	// acting on it.
	o, err := client.ForKind(c.conn, info).Get(ctx, ns, ref.Name)
	if client.IsNotFound(err) {
		return false, false, false, nil
	}
	if err != nil {
		return false, false, false, fmt.Errorf("get owner %s %s: %w", info.Singular, keyIn(ns, ref.Name), err)
	}
	exists, foreground = check(o)
	waiting = exists && t == nil && o.GetDeletionTimestamp() != nil &&
		(foreground || slices.Contains(o.GetFinalizers(), FinalizerOrphan))
	return exists, foreground, waiting, nil
}

// asDependent deletes obj when its owners are gone, or drops the owners that are. It
// says whether obj keeps an owner of a kind the collector does not cache.
func (c *Collector) asDependent(ctx context.Context, t *tracked, obj kinds.Object) (uncached bool, err error) {
	refs := obj.GetOwnerReferences()
	if len(refs) == 0 || obj.GetDeletionTimestamp() != nil {
		return false, nil
	}
	var alive []metav1.OwnerReference
	foreground := false
	for _, ref := range refs {
		exists, fg, waiting, err := c.ownerState(ctx, obj, ref)
		if err != nil {
			return false, err
		}
		if exists {
			alive = append(alive, ref)
			foreground = foreground || fg
			if info := c.ownerKind(ref); info != nil && c.tracked(info.Kind) == nil {
				uncached = true
				if waiting {
					c.queue.Add(info.Kind + "|" + keyIn(ownerNamespace(info, obj), ref.Name))
				}
			}
		}
	}
	switch {
	case len(alive) == 0 || foreground:
		policy := "Background"
		if foreground {
			policy = "Foreground"
		}
		_, err := t.client.Delete(ctx, obj.GetNamespace(), obj.GetName(), client.DeleteOptions{UID: string(obj.GetUID()), PropagationPolicy: policy})
		if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
			return false, fmt.Errorf("delete %s %s: %w", t.info.Singular, cache.Key(obj), err)
		}
		c.log.Debug("deleted dependent", "kind", t.info.Kind, "object", cache.Key(obj), "policy", policy)
		return false, nil
	case len(alive) < len(refs):
		return uncached, c.setOwners(ctx, t, obj, alive)
	}
	return uncached, nil
}

func (c *Collector) setOwners(ctx context.Context, t *tracked, obj kinds.Object, refs []metav1.OwnerReference) error {
	next := obj.DeepCopyObject().(kinds.Object)
	next.SetOwnerReferences(refs)
	_, err := t.client.Update(ctx, next)
	if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		return fmt.Errorf("update owners of %s %s: %w", t.info.Singular, cache.Key(obj), err)
	}
	return nil
}

// uncachedOwner finishes the deletion of an owner of a kind the collector does not follow
// (a dependent found it being deleted, or a dependent of it went), read live.
func (c *Collector) uncachedOwner(ctx context.Context, kind, ns, name string) error {
	info, ok := kinds.Lookup(kind)
	if !ok || info.Kind != kind {
		return nil
	}
	cl := client.ForKind(c.conn, info)
	obj, err := cl.Get(ctx, ns, name)
	if client.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get owner %s %s: %w", info.Singular, keyIn(ns, name), err)
	}
	return c.asOwner(ctx, &tracked{info: info, client: cl}, obj)
}

// errNotSynced: a kind's cache has not listed yet, so the dependents of an owner are not
// all known.
var errNotSynced = errors.New("waiting for the caches of custom resources to sync")

func (c *Collector) asOwner(ctx context.Context, t *tracked, obj kinds.Object) error {
	if obj.GetDeletionTimestamp() == nil {
		return nil
	}
	fins := obj.GetFinalizers()
	if !slices.Contains(fins, FinalizerOrphan) && !slices.Contains(fins, FinalizerForeground) {
		return nil
	}
	all := c.all()
	for _, dt := range all {
		if !dt.synced() {
			// A dependent not yet cached would be orphaned, or not waited for, too soon.
			return fmt.Errorf("%s %s: %w", t.info.Singular, cache.Key(obj), errNotSynced)
		}
	}
	uid := obj.GetUID()
	var errs []error
	switch {
	case slices.Contains(obj.GetFinalizers(), FinalizerOrphan):
		for _, dt := range all {
			for _, d := range dt.byOwner(uid) {
				var keep []metav1.OwnerReference
				for _, r := range d.GetOwnerReferences() {
					if r.UID != uid {
						keep = append(keep, r)
					}
				}
				if err := c.setOwners(ctx, dt, d, keep); err != nil {
					errs = append(errs, err)
				}
			}
		}
		if len(errs) == 0 {
			return c.removeFinalizer(ctx, t, obj, FinalizerOrphan)
		}
	case slices.Contains(obj.GetFinalizers(), FinalizerForeground):
		if c.inCircle(uid) {
			if err := c.unblockOwners(ctx, t, obj); err != nil {
				return err
			}
		}
		blocking := 0
		for _, dt := range all {
			for _, d := range dt.byOwner(uid) {
				for _, r := range d.GetOwnerReferences() {
					if r.UID == uid && ptr.Deref(r.BlockOwnerDeletion, false) {
						blocking++
					}
				}
				if d.GetDeletionTimestamp() == nil {
					_, err := dt.client.Delete(ctx, d.GetNamespace(), d.GetName(),
						client.DeleteOptions{UID: string(d.GetUID()), PropagationPolicy: "Foreground"})
					if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
						errs = append(errs, fmt.Errorf("delete dependent %s %s: %w", dt.info.Singular, cache.Key(d), err))
					}
				}
			}
		}
		if blocking == 0 && len(errs) == 0 {
			return c.removeFinalizer(ctx, t, obj, FinalizerForeground)
		}
	}
	return errors.Join(errs...)
}

// inCircle says whether an owner being deleted in the foreground may be in a circle of
// owners: one of its dependents is itself waiting, in the foreground, for dependents of
// its own. Each of them would wait for the next forever (three pods owning each other,
// one deleted in the foreground). As Kubernetes' collector does, with the same false
// positives (a chain, not a circle, that is being deleted in the foreground), such an
// owner stops blocking its own owners' deletion (unblockOwners), which breaks the circle.
func (c *Collector) inCircle(uid types.UID) bool {
	for _, dt := range c.all() {
		for _, d := range dt.byOwner(uid) {
			if d.GetDeletionTimestamp() != nil && slices.Contains(d.GetFinalizers(), FinalizerForeground) && c.hasDependents(d.GetUID()) {
				return true
			}
		}
	}
	return false
}

func (c *Collector) hasDependents(uid types.UID) bool {
	for _, dt := range c.all() {
		if len(dt.byOwner(uid)) > 0 {
			return true
		}
	}
	return false
}

// unblockOwners sets blockOwnerDeletion false on obj's owner references that have it:
// those owners' foreground deletion no longer waits for obj.
func (c *Collector) unblockOwners(ctx context.Context, t *tracked, obj kinds.Object) error {
	refs := slices.Clone(obj.GetOwnerReferences())
	changed := false
	for i := range refs {
		if ptr.Deref(refs[i].BlockOwnerDeletion, false) {
			refs[i].BlockOwnerDeletion = ptr.To(false)
			changed = true
		}
	}
	if !changed {
		return nil
	}
	if err := c.setOwners(ctx, t, obj, refs); err != nil {
		return err
	}
	c.log.Debug("unblocked owners of a dependent in a circle", "kind", t.info.Kind, "object", cache.Key(obj))
	return nil // the update's event queues the owners (changed)
}

func (c *Collector) removeFinalizer(ctx context.Context, t *tracked, obj kinds.Object, fin string) error {
	next := obj.DeepCopyObject().(kinds.Object)
	next.SetFinalizers(slices.DeleteFunc(slices.Clone(obj.GetFinalizers()), func(f string) bool { return f == fin }))
	_, err := t.client.Update(ctx, next)
	if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		return fmt.Errorf("remove finalizer %s from %s %s: %w", fin, t.info.Singular, cache.Key(obj), err)
	}
	return nil
}
