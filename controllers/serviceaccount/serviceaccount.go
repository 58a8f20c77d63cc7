// Package serviceaccount is Kubernetes' ServiceAccounts controller: every namespace has a
// ServiceAccount named "default", made when the namespace appears and made again when it
// is deleted, so that a pod that names no account runs as that one (the API server's
// admission fills it in, and refuses a pod whose account does not exist). A namespace
// being deleted gets none.
package serviceaccount

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
)

// DefaultName is the account every namespace has, as Kubernetes names it.
const DefaultName = "default"

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers reconcile different namespaces concurrently. Default 2.
	Workers int
	// Logger receives the controller's logs, named "serviceaccount". Default: discarded.
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
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("serviceaccount controller config: %w", err)
	}
	return nil
}

// Controller is the ServiceAccounts controller. Its queue holds namespace names.
type Controller struct {
	cfg   Config
	cs    *client.Clientset
	nsInf *cache.Informer[*corev1.Namespace]
	saInf *cache.Informer[*corev1.ServiceAccount]
	ns    *cache.Lister[*corev1.Namespace]
	sas   *cache.Lister[*corev1.ServiceAccount]
	queue *workqueue.Queue
	log   hclog.Logger
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nsInf := cache.InformerFor[*corev1.Namespace](f, "", client.ListOptions{})
	saInf := cache.InformerFor[*corev1.ServiceAccount](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, nsInf: nsInf, saInf: saInf, ns: nsInf.Lister(), sas: saInf.Lister(),
		queue: workqueue.New(workqueue.Config{}), log: cfg.Logger.Named("serviceaccount")}
	nsInf.AddHandler(cache.Handler[*corev1.Namespace]{
		OnAdd:    func(ns *corev1.Namespace) { c.queue.Add(ns.Name) },
		OnUpdate: func(_, ns *corev1.Namespace) { c.queue.Add(ns.Name) },
	})
	saInf.AddHandler(cache.Handler[*corev1.ServiceAccount]{
		OnDelete: func(sa *corev1.ServiceAccount) {
			if sa.Name == DefaultName {
				c.queue.Add(sa.Namespace)
			}
		},
	})
	return c, nil
}

// Run ensures the accounts until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.nsInf, c.saInf) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, func(ctx context.Context, ns string) (_ time.Duration, err error) {
		return 0, c.Reconcile(ctx, ns)
	})
	return nil
}

// Reconcile makes namespace ns's default ServiceAccount unless it has one, or the
// namespace is gone or going.
func (c *Controller) Reconcile(ctx context.Context, ns string) error {
	n, ok := c.ns.Get("", ns)
	if !ok || n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating {
		return nil
	}
	if _, ok := c.sas.Get(ns, DefaultName); ok {
		return nil
	}
	_, err := c.cs.ServiceAccounts.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: DefaultName}})
	switch {
	case err == nil:
		c.log.Debug("made the default service account", "namespace", ns)
		return nil
	case client.IsAlreadyExists(err), client.IsRetriedCreate(err):
		return nil
	case status.Code(err) == codes.FailedPrecondition || client.IsNotFound(err):
		// The namespace went, or began terminating, since the cache said otherwise.
		c.log.Debug("namespace takes no new account", "namespace", ns, "error", err)
		return nil
	}
	return fmt.Errorf("create service account %s/%s: %w", ns, DefaultName, err)
}
