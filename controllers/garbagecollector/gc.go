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
//     its dependents, then loses the finalizer; a dependent the collector sees only once
//     such an owner is gone is orphaned too (orphanedOwners), not collected.
//
// An owner reference names its owner's kind by apiVersion and kind; one of a kind Skiff
// does not serve is left alone. A namespaced dependent's owner is looked for in the
// dependent's namespace (or is cluster-scoped): one in another namespace is absent, and
// the dependent gets Kubernetes' OwnerRefInvalidNamespace event; a cluster-scoped
// dependent naming a namespaced kind is left alone, with that event. A missing owner is
// confirmed with a live read before anything is deleted, so a cache that lags never
// costs an object.
//
// The collector follows, as dependents and as owners, every kind Skiff serves (all of
// which can be listed, watched and deleted) but Events, which Kubernetes' collector
// ignores too, and the custom resources of every established CustomResourceDefinition.
// The kinds the controllers cache whole anyway (Pods, ReplicaSets, Deployments, Nodes,
// ...: sharedKinds) it reads through the factory's informers, without a second cache
// or watch; every other kind through an informer of its own that decodes and keeps only
// the metadata it needs (monitors.go: uid, name, namespace, ownerReferences, finalizers,
// deletionTimestamp), started and stopped as the CRDs come and go, as Kubernetes'
// collector rediscovers the served resources. An owner of a kind it does not follow (an
// Event) is confirmed with a live read; one being deleted in the foreground or with the
// orphan finalizer is finished by the collector once a dependent sees it so (within
// UncachedOwnerResync).
package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
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
	// UnsyncedKindGrace is how long an owner's foreground or orphan deletion waits for a
	// followed kind's cache to list before going on without that kind: a kind that cannot
	// be listed (custom resources whose conversion webhook is down) must not stop every
	// such deletion in the cluster. Its dependents are then not known, so neither waited
	// for nor orphaned, as Kubernetes' collector does since 1.31 (blockOwnerDeletion is
	// best-effort). Default 30s.
	UnsyncedKindGrace time.Duration
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Workers: 5, Logger: hclog.NewNullLogger(), UncachedOwnerResync: 30 * time.Second, UnsyncedKindGrace: 30 * time.Second}
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
	if c.UnsyncedKindGrace <= 0 {
		errs = append(errs, fmt.Errorf("unsyncedKindGrace: %v must be positive", c.UnsyncedKindGrace))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("garbage collector config: %w", err)
	}
	return nil
}

// tracked is one kind the collector follows: its cache, and its client.
type tracked struct {
	info *kinds.Info
	// client reads and writes whole objects.
	client  *client.Client[kinds.Object]
	get     func(ns, name string) (kinds.Object, bool)
	byOwner func(uid types.UID) []kinds.Object
	// withUID finds the cached object of a uid (a scan: only for a reference found
	// invalid).
	withUID func(uid types.UID) (kinds.Object, bool)
	synced  func() bool
	// started is when the collector began to follow the kind; unsynced logs once that
	// its cache has not listed within UnsyncedKindGrace.
	started  time.Time
	unsynced atomic.Bool
	// metadataOnly: the cache holds the objects' metadata alone, so a write reads the
	// object live first.
	metadataOnly bool
}

// Collector is the garbage collector.
type Collector struct {
	cfg    Config
	conn   *client.Conn
	queue  *workqueue.Queue
	log    hclog.Logger
	events *record.Recorder

	mu    sync.RWMutex
	kinds map[string]*tracked // by Kind: the shared kinds New tracks, and the kinds followKinds monitors
	// shared are the kinds read through the factory's informers.
	shared map[string]bool

	crds       *cache.Lister[*apiextensionsv1.CustomResourceDefinition]
	crdsSynced func() bool
	crdChanged chan struct{} // a CRD was added, changed or deleted (buffered, one)

	orphaned orphanedOwners
}

// orphanedOwners remembers the uids of owners the collector orphaned the dependents of
// (deleted with the orphan finalizer), so that a dependent it sees only after its owner
// is gone is orphaned too rather than collected. Nothing orders the events of two kinds:
// a dependent created just before its owner's orphan deletion can reach the collector's
// cache after the owner's finalizer was handled and the owner removed; it would then be
// an object whose owner is gone, and deleted (the race Kubernetes' collector documents,
// kubernetes#26120). Two generations of at most orphanedGeneration uids each, the older
// dropped when the newer fills: bounded, and an owner's dependents are long seen before
// thousands of other orphanings have passed.
type orphanedOwners struct {
	mu        sync.Mutex
	cur, prev map[types.UID]bool
}

const orphanedGeneration = 4096

func (o *orphanedOwners) add(uid types.UID) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.cur) >= orphanedGeneration {
		o.prev, o.cur = o.cur, nil
	}
	if o.cur == nil {
		o.cur = map[types.UID]bool{}
	}
	o.cur[uid] = true
}

func (o *orphanedOwners) has(uid types.UID) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.cur[uid] || o.prev[uid]
}

// New makes the collector on the factory's informers; Run starts it. The factory must be
// started. events records the OwnerRefInvalidNamespace events (nil: none).
func New(cs *client.Clientset, f *cache.Factory, events *record.Recorder, cfg Config) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Collector{cfg: cfg, conn: cs.Conn, kinds: map[string]*tracked{}, shared: map[string]bool{}, queue: workqueue.New(workqueue.Config{}),
		log: cfg.Logger.Named("gc"), events: events, crdChanged: make(chan struct{}, 1)}
	// sharedKinds: the kinds the controller-manager's controllers cache whole anyway.
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
	track(c, cache.InformerFor[*corev1.Node](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*corev1.Namespace](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*corev1.Service](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*discoveryv1.EndpointSlice](f, "", client.ListOptions{}))
	crds := cache.InformerFor[*apiextensionsv1.CustomResourceDefinition](f, "", client.ListOptions{})
	track(c, crds)
	c.crds, c.crdsSynced = crds.Lister(), crds.HasSynced
	crds.AddHandler(cache.Handler[*apiextensionsv1.CustomResourceDefinition]{
		OnAdd:    func(*apiextensionsv1.CustomResourceDefinition) { c.crdsChanged() },
		OnUpdate: func(_, _ *apiextensionsv1.CustomResourceDefinition) { c.crdsChanged() },
		OnDelete: func(*apiextensionsv1.CustomResourceDefinition) { c.crdsChanged() },
	})
	return c, nil
}

// track follows a shared kind through the factory's informer.
func track[T kinds.Object](c *Collector, inf *cache.Informer[T]) {
	info := kinds.OfType[T]()
	c.shared[info.Kind] = true
	trackAs(c, info, inf, false)
}

// trackAs follows the objects of kind info through inf, as dependents and as owners:
// the one way the collector follows a kind, whether its informer is shared or a
// monitor. metadataOnly says inf keeps only the objects' metadata.
func trackAs[T kinds.Object](c *Collector, info *kinds.Info, inf *cache.Informer[T], metadataOnly bool) *tracked {
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
		withUID: func(uid types.UID) (kinds.Object, bool) {
			for _, o := range l.List(labels.Everything()) {
				if o.GetUID() == uid {
					return o, true
				}
			}
			return nil, false
		},
		synced:       inf.HasSynced,
		started:      time.Now(),
		metadataOnly: metadataOnly,
	}
	c.mu.Lock()
	c.kinds[info.Kind] = t
	c.mu.Unlock()
	inf.AddHandler(cache.Handler[T]{
		OnAdd: func(o T) { c.changed(t, o) },
		OnUpdate: func(old, o T) {
			if ownersChanged(old, o) {
				c.queueOwners(old) // an owner waiting in the foreground may no longer be blocked
			} else if !deletionChanged(old, o) {
				return // nothing the collector looks at changed (Kubernetes' graph builder ignores it too)
			}
			c.changed(t, o)
		},
		OnDelete: func(o T) { c.deleted(o) },
	})
	return t
}

// ownersChanged says whether an update changed the object's ownerReferences.
func ownersChanged(old, o kinds.Object) bool {
	return !slices.EqualFunc(old.GetOwnerReferences(), o.GetOwnerReferences(), func(a, b metav1.OwnerReference) bool {
		return a.UID == b.UID && a.Name == b.Name && a.Kind == b.Kind && a.APIVersion == b.APIVersion &&
			ptr.Deref(a.Controller, false) == ptr.Deref(b.Controller, false) && ptr.Deref(a.BlockOwnerDeletion, false) == ptr.Deref(b.BlockOwnerDeletion, false)
	})
}

// deletionChanged says whether an update started the object's deletion or changed its
// finalizers.
func deletionChanged(old, o kinds.Object) bool {
	return (old.GetDeletionTimestamp() == nil) != (o.GetDeletionTimestamp() == nil) || !slices.Equal(old.GetFinalizers(), o.GetFinalizers())
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

// Run collects until ctx ends. It starts once the shared kinds and the CRDs are cached;
// the monitors of the other kinds start then, and an owner's foreground or orphan
// deletion waits for all of them to have listed, each for UnsyncedKindGrace at most
// (asOwner).
func (c *Collector) Run(ctx context.Context) error {
	var synced []interface{ HasSynced() bool }
	for _, t := range c.all() {
		synced = append(synced, syncedFunc(t.synced))
	}
	if !cache.WaitForSync(ctx, synced...) {
		return ctx.Err()
	}
	var wg sync.WaitGroup
	wg.Go(func() { c.followKinds(ctx) })
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
	if info.Namespaced && dependent.GetNamespace() == "" {
		// A cluster-scoped object cannot be owned by a namespaced one: Kubernetes'
		// collector leaves it, the reference unresolvable, and says so.
		c.invalidNamespace(dependent, ref)
		return true, false, false, nil
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
	if err != nil && !client.IsNotFound(err) {
		return false, false, false, fmt.Errorf("get owner %s %s: %w", info.Singular, keyIn(ns, ref.Name), err)
	}
	if err == nil {
		exists, foreground = check(o)
	}
	if !exists {
		if info.Namespaced && t != nil {
			if o, ok := t.withUID(ref.UID); ok && o.GetNamespace() != dependent.GetNamespace() {
				c.invalidNamespace(dependent, ref) // the owner is there, in another namespace
			}
		}
		return false, false, false, nil
	}
	waiting = t == nil && o.GetDeletionTimestamp() != nil &&
		(foreground || slices.Contains(o.GetFinalizers(), FinalizerOrphan))
	return exists, foreground, waiting, nil
}

// invalidNamespace records Kubernetes' event about a dependent whose owner reference
// names an owner outside the dependent's namespace.
func (c *Collector) invalidNamespace(dependent kinds.Object, ref metav1.OwnerReference) {
	if c.events == nil {
		return
	}
	if m, ok := dependent.(*metav1.PartialObjectMetadata); ok {
		if _, served := kinds.ForGroupVersionKind(m.APIVersion, m.Kind); !served {
			return // a custom kind this process no longer knows: nothing to name in the event
		}
	}
	ns := dependent.GetNamespace()
	c.events.Eventf(dependent, corev1.EventTypeWarning, "OwnerRefInvalidNamespace", "ownerRef [%s/%s, namespace: %s, name: %s, uid: %s] does not exist in namespace %q",
		ref.APIVersion, ref.Kind, ns, ref.Name, ref.UID, ns)
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
	case len(alive) == 0 && !foreground && orphanedOnly(refs, c.orphaned.has):
		// Every owner was deleted with its dependents orphaned, this one reaching the
		// cache after: orphaned as they were, not collected.
		return false, c.update(ctx, t, obj, "orphan", func(o kinds.Object) bool {
			return dropOwners(o, func(r metav1.OwnerReference) bool { return c.orphaned.has(r.UID) })
		})
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
		keep := map[types.UID]bool{}
		for _, r := range alive {
			keep[r.UID] = true
		}
		return uncached, c.update(ctx, t, obj, "remove gone owners from", func(o kinds.Object) bool {
			return dropOwners(o, func(r metav1.OwnerReference) bool { return !keep[r.UID] })
		})
	}
	return uncached, nil
}

// orphanedOnly says whether refs (all of owners that are gone) are some, each naming an
// owner whose dependents were orphaned.
func orphanedOnly(refs []metav1.OwnerReference, orphaned func(types.UID) bool) bool {
	for _, r := range refs {
		if !orphaned(r.UID) {
			return false
		}
	}
	return len(refs) > 0
}

// dropOwners removes o's owner references that gone says are gone, and says whether
// there were any.
func dropOwners(o kinds.Object, gone func(metav1.OwnerReference) bool) bool {
	refs := o.GetOwnerReferences()
	keep := slices.DeleteFunc(slices.Clone(refs), gone)
	if len(keep) == len(refs) {
		return false
	}
	if len(keep) == 0 {
		keep = nil
	}
	o.SetOwnerReferences(keep)
	return true
}

// update changes obj's metadata with change, which says whether it changed anything.
// change is applied to the object as it is now: the cached one, or, for a kind cached as
// metadata alone, the object read live (an update writes the spec or data back too). A
// conflict is returned, so the key is looked at again: the update filter (trackAs)
// does not queue an object for the change that made the conflict.
func (c *Collector) update(ctx context.Context, t *tracked, obj kinds.Object, what string, change func(kinds.Object) bool) error {
	var next kinds.Object
	if t.metadataOnly {
		o, err := t.client.Get(ctx, obj.GetNamespace(), obj.GetName())
		if client.IsNotFound(err) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s %s %s: get: %w", what, t.info.Singular, cache.Key(obj), err)
		}
		if o.GetUID() != obj.GetUID() {
			return nil // another object of the name: its events will say what to do
		}
		next = o
	} else {
		next = obj.DeepCopyObject().(kinds.Object)
	}
	if !change(next) {
		return nil
	}
	_, err := t.client.Update(ctx, next)
	if err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("%s %s %s: %w", what, t.info.Singular, cache.Key(obj), err)
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

// errNotSynced: a kind's cache has not listed yet (within UnsyncedKindGrace of its
// start), so the dependents of an owner are not all known.
var errNotSynced = errors.New("waiting for the caches of every kind to sync")

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
		if dt.synced() {
			continue
		}
		if time.Since(dt.started) < c.cfg.UnsyncedKindGrace {
			// A dependent not yet cached would be orphaned, or not waited for, too soon.
			return fmt.Errorf("%s %s: %w", t.info.Singular, cache.Key(obj), errNotSynced)
		}
		if !dt.unsynced.Swap(true) {
			c.log.Warn("a kind's cache has not listed: foreground and orphan deletions go on without its objects",
				"kind", dt.info.Kind, "group", dt.info.Group, "since", dt.started.Format(time.RFC3339))
		}
	}
	uid := obj.GetUID()
	var errs []error
	switch {
	case slices.Contains(obj.GetFinalizers(), FinalizerOrphan):
		c.orphaned.add(uid)
		for _, dt := range all {
			for _, d := range dt.byOwner(uid) {
				err := c.update(ctx, dt, d, "orphan", func(o kinds.Object) bool {
					return dropOwners(o, func(r metav1.OwnerReference) bool { return r.UID == uid })
				})
				if err != nil {
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
	err := c.update(ctx, t, obj, "unblock the owners of", func(o kinds.Object) bool {
		refs := slices.Clone(o.GetOwnerReferences())
		changed := false
		for i := range refs {
			if ptr.Deref(refs[i].BlockOwnerDeletion, false) {
				refs[i].BlockOwnerDeletion = ptr.To(false)
				changed = true
			}
		}
		o.SetOwnerReferences(refs)
		return changed
	})
	if err != nil {
		return err
	}
	c.log.Debug("unblocked owners of a dependent in a circle", "kind", t.info.Kind, "object", cache.Key(obj))
	return nil // the update's event queues the owners (trackAs)
}

func (c *Collector) removeFinalizer(ctx context.Context, t *tracked, obj kinds.Object, fin string) error {
	return c.update(ctx, t, obj, "remove finalizer "+fin+" from", func(o kinds.Object) bool {
		fins := o.GetFinalizers()
		keep := slices.DeleteFunc(slices.Clone(fins), func(f string) bool { return f == fin })
		o.SetFinalizers(keep)
		return len(keep) != len(fins)
	})
}
