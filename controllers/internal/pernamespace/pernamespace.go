// Package pernamespace keeps one object of a kind, of one name, in every namespace:
// made when the namespace appears, made again when deleted, and (when the caller says
// how) put back when changed; a namespace being deleted gets none. Kubernetes has
// several such controllers (the ServiceAccounts controller's "default" account, the
// root CA publisher's kube-root-ca.crt); each here is a Spec on this one loop.
package pernamespace

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/kinds"
)

// Config is what each such controller takes. Start from DefaultConfig.
type Config struct {
	// Workers reconcile different namespaces concurrently. Default 2.
	Workers int
	// Logger receives the controller's logs. Default: discarded.
	Logger hclog.Logger
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config { return Config{Workers: 2, Logger: hclog.NewNullLogger()} }

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	return errors.Join(errs...)
}

// Spec says which object every namespace has.
type Spec[T kinds.Object] struct {
	// Name is the object's name in every namespace.
	Name string
	// New is the object namespace ns should have, named Name in ns.
	New func(ns string) T
	// Fix returns a changed copy of cur as it should be and true, or false when cur is
	// right. Nil: an object that exists is left as it is.
	Fix func(cur T) (T, bool)
}

// Controller keeps Spec's object in every namespace. Its queue holds namespace names.
type Controller[T kinds.Object] struct {
	spec    Spec[T]
	objects *client.Client[T]
	workers int
	nsInf   *cache.Informer[*corev1.Namespace]
	objInf  *cache.Informer[T]
	ns      *cache.Lister[*corev1.Namespace]
	objs    *cache.Lister[T]
	queue   *workqueue.Queue
	log     hclog.Logger
}

// New makes the controller on the factory's informers, writing through objects, with
// cfg's workers reconciling different namespaces concurrently and its logger (which the
// caller names; cfg is valid); Run starts it.
func New[T kinds.Object](objects *client.Client[T], f *cache.Factory, spec Spec[T], cfg Config) *Controller[T] {
	nsInf := cache.InformerFor[*corev1.Namespace](f, "", client.ListOptions{})
	objInf := cache.InformerFor[T](f, "", client.ListOptions{})
	c := &Controller[T]{spec: spec, objects: objects, workers: cfg.Workers, nsInf: nsInf, objInf: objInf,
		ns: nsInf.Lister(), objs: objInf.Lister(), queue: workqueue.New(workqueue.Config{}), log: cfg.Logger}
	nsInf.AddHandler(cache.Handler[*corev1.Namespace]{
		OnAdd:    func(ns *corev1.Namespace) { c.queue.Add(ns.Name) },
		OnUpdate: func(_, ns *corev1.Namespace) { c.queue.Add(ns.Name) },
	})
	ours := func(o T) {
		if o.GetName() == spec.Name {
			c.queue.Add(o.GetNamespace())
		}
	}
	objInf.AddHandler(cache.Handler[T]{
		OnUpdate: func(_, o T) { ours(o) },
		OnDelete: ours,
	})
	return c
}

// Run reconciles until ctx ends. The factory must be started.
func (c *Controller[T]) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.nsInf, c.objInf) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.workers, c.log, func(ctx context.Context, ns string) (time.Duration, error) {
		return 0, c.Reconcile(ctx, ns)
	})
	return nil
}

// Resync reconciles every namespace again: what Spec wants changed.
func (c *Controller[T]) Resync() {
	for _, ns := range c.ns.List(labels.Everything()) {
		c.queue.Add(ns.Name)
	}
}

// Reconcile makes namespace ns's object, or puts it back as Spec.Fix wants it, unless
// the namespace is gone or going.
func (c *Controller[T]) Reconcile(ctx context.Context, ns string) error {
	n, ok := c.ns.Get("", ns)
	if !ok || n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating {
		return nil
	}
	kind := c.objects.Kind().Kind
	cur, ok := c.objs.Get(ns, c.spec.Name)
	if !ok {
		_, err := c.objects.Create(ctx, c.spec.New(ns))
		switch {
		case err == nil:
			c.log.Debug("made", "kind", kind, "namespace", ns, "name", c.spec.Name)
			return nil
		case client.IsAlreadyExists(err), client.IsRetriedCreate(err):
			return nil // the cache will show it, and its update brings it back here
		case status.Code(err) == codes.FailedPrecondition || client.IsNotFound(err):
			// The namespace went, or began terminating, since the cache said otherwise.
			c.log.Debug("namespace takes no new object", "kind", kind, "namespace", ns, "error", err)
			return nil
		}
		return fmt.Errorf("create %s %s/%s: %w", kind, ns, c.spec.Name, err)
	}
	if c.spec.Fix == nil {
		return nil
	}
	fixed, changed := c.spec.Fix(cur)
	if !changed {
		return nil
	}
	_, err := c.objects.Update(ctx, fixed)
	switch {
	case err == nil:
		c.log.Debug("put back", "kind", kind, "namespace", ns, "name", c.spec.Name)
		return nil
	case client.IsNotFound(err):
		return nil // deleted meanwhile: its deletion brings it back here
	}
	return fmt.Errorf("update %s %s/%s: %w", kind, ns, c.spec.Name, err)
}
