// Package garbagecollector deletes objects whose owners are gone, as Kubernetes' garbage
// collector does for the kinds Skiff owns through ownerReferences (Deployments own
// ReplicaSets, ReplicaSets own Pods):
//   - background: an object all of whose owners are gone is deleted; owners that are gone
//     are removed from an object that still has others;
//   - foreground: an owner deleted with the foregroundDeletion finalizer has its dependents
//     deleted (in foreground, too), and loses the finalizer once no dependent with
//     blockOwnerDeletion remains;
//   - orphan: an owner deleted with the orphan finalizer has its references removed from
//     its dependents, then loses the finalizer.
//
// A missing owner is confirmed with a live read before anything is deleted, so a cache
// that lags never costs an object.
package garbagecollector

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
)

// The finalizers the API server adds for foreground and orphan deletion.
const (
	FinalizerForeground = "foregroundDeletion"
	FinalizerOrphan     = "orphan"
)

// Config tunes the collector. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers collect different objects concurrently. Default 5.
	Workers int
	// Logger receives the collector's logs, named "gc". Default: discarded.
	Logger hclog.Logger
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config { return Config{Workers: 5, Logger: hclog.NewNullLogger()} }

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
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
	byOwner func(uid string) []kinds.Object
	synced  func() bool
}

// Collector is the garbage collector.
type Collector struct {
	cfg   Config
	conn  *client.Conn
	kinds map[string]*tracked
	queue *workqueue.Queue
	log   hclog.Logger
}

// New makes the collector on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c := &Collector{cfg: cfg, conn: cs.Conn, kinds: map[string]*tracked{}, queue: workqueue.New(workqueue.Config{}), log: cfg.Logger.Named("gc")}
	track(c, cache.InformerFor[*corev1.Deployment](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*corev1.ReplicaSet](f, "", client.ListOptions{}))
	track(c, cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{}))
	return c, nil
}

func track[T kinds.Object](c *Collector, inf *cache.Informer[T]) {
	var zero T
	info := kinds.Of(zero)
	inf.AddIndexer(cache.IndexOwner, cache.ByOwner[T])
	l := inf.Lister()
	c.kinds[info.Kind] = &tracked{
		info:   info,
		client: client.ForKind(c.conn, info),
		get: func(ns, name string) (kinds.Object, bool) {
			o, ok := l.Get(ns, name)
			return o, ok
		},
		byOwner: func(uid string) []kinds.Object {
			var out []kinds.Object
			for _, o := range l.ByIndex(cache.IndexOwner, uid) {
				out = append(out, o)
			}
			return out
		},
		synced: inf.HasSynced,
	}
	changed := func(o T) {
		c.queue.Add(info.Kind + "|" + cache.Key(o))
	}
	inf.AddHandler(cache.Handler[T]{
		OnAdd:    changed,
		OnUpdate: func(_, o T) { changed(o) },
		OnDelete: func(o T) {
			// Its dependents may now be garbage; its owners may be waiting for it.
			uid := o.GetMetadata().GetUid()
			for _, t := range c.kinds {
				for _, d := range t.byOwner(uid) {
					c.queue.Add(t.info.Kind + "|" + cache.Key(d))
				}
			}
			for _, ref := range o.GetMetadata().GetOwnerReferences() {
				c.queue.Add(ref.GetKind() + "|" + keyIn(o.GetMetadata().GetNamespace(), ref.GetName()))
			}
		},
	})
}

func keyIn(ns, name string) string {
	if ns == "" {
		return name
	}
	return ns + "/" + name
}

// Run collects until ctx ends. The factory must be started.
func (c *Collector) Run(ctx context.Context) error {
	var synced []interface{ HasSynced() bool }
	for _, t := range c.kinds {
		synced = append(synced, syncedFunc(t.synced))
	}
	if !cache.WaitForSync(ctx, synced...) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, func(ctx context.Context, key string) (time.Duration, error) {
		return 0, c.Reconcile(ctx, key)
	})
	return nil
}

type syncedFunc func() bool

func (f syncedFunc) HasSynced() bool { return f() }

// Reconcile looks at one object, "Kind|namespace/name": as a dependent (are its owners
// there?) and as an owner being deleted (what do its finalizers ask for?).
func (c *Collector) Reconcile(ctx context.Context, key string) error {
	kind, k, _ := strings.Cut(key, "|")
	t := c.kinds[kind]
	if t == nil {
		return nil
	}
	ns, name := cache.SplitKey(k)
	obj, ok := t.get(ns, name)
	if !ok {
		return nil
	}
	if err := c.asDependent(ctx, t, obj); err != nil {
		return err
	}
	return c.asOwner(ctx, t, obj)
}

// ownerState says whether the owner ref points at an existing object, and whether that
// owner is being deleted in the foreground.
func (c *Collector) ownerState(ctx context.Context, ns string, ref *corev1.OwnerReference) (exists, foreground bool, err error) {
	info, ok := kinds.Lookup(ref.GetKind())
	if !ok || info.Kind != ref.GetKind() {
		return true, false, nil // a kind Skiff does not know: leave it alone
	}
	if !info.Namespaced {
		ns = ""
	}
	check := func(o kinds.Object) (bool, bool) {
		md := o.GetMetadata()
		return md.GetUid() == ref.GetUid(), md.GetDeletionTimestamp() != nil && contains(md.GetFinalizers(), FinalizerForeground)
	}
	if t := c.kinds[info.Kind]; t != nil {
		if o, ok := t.get(ns, ref.GetName()); ok {
			if e, fg := check(o); e {
				return e, fg, nil
			}
		}
	}
	// Absent (or another uid) in the cache: ask the servers before acting on it.
	o, err := client.ForKind(c.conn, info).Get(ctx, ns, ref.GetName())
	if client.IsNotFound(err) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("get owner %s %s/%s: %w", ref.GetKind(), ns, ref.GetName(), err)
	}
	exists, foreground = check(o)
	return exists, foreground, nil
}

func (c *Collector) asDependent(ctx context.Context, t *tracked, obj kinds.Object) error {
	md := obj.GetMetadata()
	refs := md.GetOwnerReferences()
	if len(refs) == 0 || md.GetDeletionTimestamp() != nil {
		return nil
	}
	var alive []*corev1.OwnerReference
	foreground := false
	for _, ref := range refs {
		exists, fg, err := c.ownerState(ctx, md.GetNamespace(), ref)
		if err != nil {
			return err
		}
		if exists {
			alive = append(alive, ref)
			foreground = foreground || fg
		}
	}
	switch {
	case len(alive) == 0 || foreground:
		policy := "Background"
		if foreground {
			policy = "Foreground"
		}
		_, err := t.client.Delete(ctx, md.GetNamespace(), md.GetName(), client.DeleteOptions{UID: md.GetUid(), PropagationPolicy: policy})
		if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
			return fmt.Errorf("delete %s %s: %w", t.info.Singular, cache.Key(obj), err)
		}
		c.log.Debug("deleted dependent", "kind", t.info.Kind, "object", cache.Key(obj), "policy", policy)
	case len(alive) < len(refs):
		return c.setOwners(ctx, t, obj, alive)
	}
	return nil
}

func (c *Collector) setOwners(ctx context.Context, t *tracked, obj kinds.Object, refs []*corev1.OwnerReference) error {
	next := proto.Clone(obj).(kinds.Object)
	next.GetMetadata().OwnerReferences = refs
	_, err := t.client.Update(ctx, next)
	if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		return fmt.Errorf("update owners of %s %s: %w", t.info.Singular, cache.Key(obj), err)
	}
	return nil
}

func (c *Collector) asOwner(ctx context.Context, t *tracked, obj kinds.Object) error {
	md := obj.GetMetadata()
	if md.GetDeletionTimestamp() == nil {
		return nil
	}
	uid := md.GetUid()
	var errs []error
	switch {
	case contains(md.GetFinalizers(), FinalizerOrphan):
		for _, dt := range c.kinds {
			for _, d := range dt.byOwner(uid) {
				var keep []*corev1.OwnerReference
				for _, r := range d.GetMetadata().GetOwnerReferences() {
					if r.GetUid() != uid {
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
	case contains(md.GetFinalizers(), FinalizerForeground):
		blocking := 0
		for _, dt := range c.kinds {
			for _, d := range dt.byOwner(uid) {
				for _, r := range d.GetMetadata().GetOwnerReferences() {
					if r.GetUid() == uid && r.GetBlockOwnerDeletion() {
						blocking++
					}
				}
				if d.GetMetadata().GetDeletionTimestamp() == nil {
					_, err := dt.client.Delete(ctx, d.GetMetadata().GetNamespace(), d.GetMetadata().GetName(),
						client.DeleteOptions{UID: d.GetMetadata().GetUid(), PropagationPolicy: "Foreground"})
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

func (c *Collector) removeFinalizer(ctx context.Context, t *tracked, obj kinds.Object, fin string) error {
	next := proto.Clone(obj).(kinds.Object)
	md := next.GetMetadata()
	var keep []string
	for _, f := range md.GetFinalizers() {
		if f != fin {
			keep = append(keep, f)
		}
	}
	md.Finalizers = keep
	_, err := t.client.Update(ctx, next)
	if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		return fmt.Errorf("remove finalizer %s from %s %s: %w", fin, t.info.Singular, cache.Key(obj), err)
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
