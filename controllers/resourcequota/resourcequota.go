// Package resourcequota is Kubernetes' ResourceQuota controller: it keeps each quota's
// status true — status.hard a copy of spec.hard, status.used what the namespace's
// objects use of it — so that the API server's quota admission (which charges each new
// object to status.used) limits by the right numbers, and gets back what deleted and
// finished objects no longer use. It recomputes a quota when it changes, when a pod in
// its namespace goes or finishes, when an object of another kind it counts goes (of the
// kinds the controller-manager watches, and Secrets and ConfigMaps, which the controller
// watches itself keeping only their names), and every ResyncPeriod.
//
// A recomputation cannot undo a charge: it reads the quota, then lists the objects (both
// linearizably), and writes the status on the condition that the quota is unchanged; a
// create charged in between changed it, and the controller tries again.
package resourcequota

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/quota"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers sync different quotas concurrently. Default 5, as Kubernetes'
	// --concurrent-resource-quota-syncs.
	Workers int
	// ResyncPeriod is how often every quota is recomputed, which gives back what
	// deleted objects of kinds other than pods used. Default 5 minutes, as Kubernetes'
	// --resource-quota-sync-period.
	ResyncPeriod time.Duration
	// Logger receives the controller's logs, named "resourcequota". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock (pods past their grace period use nothing).
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Workers: 5, ResyncPeriod: 5 * time.Minute, Logger: hclog.NewNullLogger(), Now: time.Now}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.ResyncPeriod <= 0 {
		errs = append(errs, fmt.Errorf("resyncPeriod: %v must be positive", c.ResyncPeriod))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("now: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("resourcequota controller config: %w", err)
	}
	return nil
}

// Controller is the ResourceQuota controller.
type Controller struct {
	cfg    Config
	cs     *client.Clientset
	quotas *cache.Informer[*corev1.ResourceQuota]
	lister *cache.Lister[*corev1.ResourceQuota]
	queue  *workqueue.Queue
	log    hclog.Logger
	// own are the informers the controller runs itself (see New).
	own []interface{ Run(context.Context) }
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	quotas := cache.InformerFor[*corev1.ResourceQuota](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, quotas: quotas, lister: quotas.Lister(),
		queue: workqueue.New(workqueue.Config{}), log: cfg.Logger.Named("resourcequota")}
	quotas.AddHandler(cache.Handler[*corev1.ResourceQuota]{
		OnAdd: func(q *corev1.ResourceQuota) { c.queue.Add(cache.Key(q)) },
		OnUpdate: func(_, q *corev1.ResourceQuota) {
			if !equality.Semantic.DeepEqual(q.Spec.Hard, q.Status.Hard) {
				c.queue.Add(cache.Key(q))
			}
		},
	})
	// Replenishment: a pod that goes or finishes gives back what it used.
	pods := cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{})
	pods.AddHandler(cache.Handler[*corev1.Pod]{
		OnUpdate: func(old, pod *corev1.Pod) {
			now := cfg.Now()
			if quota.Counts(old, now) && !quota.Counts(pod, now) {
				c.enqueueNamespace(pod.Namespace)
			}
		},
		OnDelete: func(pod *corev1.Pod) { c.enqueueNamespace(pod.Namespace) },
	})
	// And so does a deleted object of the kinds the controller-manager watches anyway
	// (Kubernetes' quota monitor watches every kind; here the others are given back at
	// the next resync).
	replenish[*corev1.Service](c, f)
	replenish[*corev1.PersistentVolumeClaim](c, f)
	replenish[*corev1.ServiceAccount](c, f)
	replenish[*appsv1.Deployment](c, f)
	replenish[*appsv1.ReplicaSet](c, f)
	replenish[*corev1.ReplicationController](c, f)
	replenish[*appsv1.DaemonSet](c, f)
	replenish[*appsv1.StatefulSet](c, f)
	replenish[*appsv1.ControllerRevision](c, f)
	replenish[*batchv1.Job](c, f)
	replenish[*batchv1.CronJob](c, f)
	replenish[*policyv1.PodDisruptionBudget](c, f)
	// Secrets and ConfigMaps, which no other controller watches (Kubernetes' quota tests
	// count on them coming back within the resync period, which they barely did):
	// informers of the controller's own, which keep only where each object is, not its
	// data, and which no other controller shares.
	where := func(m metav1.ObjectMeta) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: m.Name, Namespace: m.Namespace, UID: m.UID, ResourceVersion: m.ResourceVersion}
	}
	secrets := cache.NewInformer(client.For[*corev1.Secret](cs.Conn), "", client.ListOptions{}, c.log)
	secrets.SetTransform(func(s *corev1.Secret) *corev1.Secret { return &corev1.Secret{ObjectMeta: where(s.ObjectMeta)} })
	configMaps := cache.NewInformer(client.For[*corev1.ConfigMap](cs.Conn), "", client.ListOptions{}, c.log)
	configMaps.SetTransform(func(m *corev1.ConfigMap) *corev1.ConfigMap { return &corev1.ConfigMap{ObjectMeta: where(m.ObjectMeta)} })
	replenishOn(c, secrets)
	replenishOn(c, configMaps)
	c.own = append(c.own, secrets, configMaps)
	return c, nil
}

// replenish recomputes, when an object of kind T is deleted, the quotas of its
// namespace that count or charge that kind.
func replenish[T kinds.Object](c *Controller, f *cache.Factory) {
	replenishOn(c, cache.InformerFor[T](f, "", client.ListOptions{}))
}

// replenishOn is replenish on the informer inf.
func replenishOn[T kinds.Object](c *Controller, inf *cache.Informer[T]) {
	kind := kinds.OfType[T]().Kind
	inf.AddHandler(cache.Handler[T]{OnDelete: func(obj T) {
		for _, q := range c.lister.ListNamespace(obj.GetNamespace(), labels.Everything()) {
			for _, in := range quota.Kinds(q.Spec.Hard) {
				if in.Kind == kind {
					c.queue.Add(cache.Key(q))
					break
				}
			}
		}
	}})
}

func (c *Controller) enqueueNamespace(ns string) {
	for _, q := range c.lister.ListNamespace(ns, labels.Everything()) {
		c.queue.Add(cache.Key(q))
	}
}

// Run syncs quotas until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	defer wg.Wait()
	for _, inf := range c.own {
		wg.Go(func() { inf.Run(ctx) })
	}
	if !cache.WaitForSync(ctx, c.quotas) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Reconcile recomputes one quota's status by key, and asks to be run again after
// ResyncPeriod.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	if _, ok := c.lister.Get(ns, name); !ok {
		return 0, nil
	}
	q, err := c.cs.ResourceQuotas.Get(ctx, ns, name)
	if client.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get resourcequota %s: %w", key, err)
	}
	used, err := c.usage(ctx, q)
	if err != nil {
		return 0, fmt.Errorf("usage of resourcequota %s: %w", key, err)
	}
	st := corev1.ResourceQuotaStatus{Hard: q.Spec.Hard.DeepCopy(), Used: used}
	if !equality.Semantic.DeepEqual(st, q.Status) {
		next := q.DeepCopy() // its resourceVersion makes the write a compare-and-swap
		next.Status = st
		if _, err := c.cs.ResourceQuotas.UpdateStatus(ctx, next); err != nil && !client.IsNotFound(err) {
			return 0, fmt.Errorf("update status of resourcequota %s: %w", key, err)
		}
	}
	return c.cfg.ResyncPeriod, nil
}

// usage is what the objects of q's namespace that q concerns use of the resources of its
// spec.hard, each present (zero when nothing uses it).
func (c *Controller) usage(ctx context.Context, q *corev1.ResourceQuota) (corev1.ResourceList, error) {
	hard := q.Spec.Hard
	used := corev1.ResourceList{}
	for name := range hard {
		used[name] = *resource.NewQuantity(0, resource.DecimalSI)
	}
	now := c.cfg.Now()
	for _, info := range quota.Kinds(hard) {
		list, err := client.ForKind(c.cs.Conn, info).List(ctx, q.Namespace, client.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("list %s: %w", info.Plural, err)
		}
		for _, obj := range list.Items {
			if !quota.Matches(q, obj) {
				continue
			}
			used = quota.Add(used, quota.Mask(quota.Usage(obj, now), hard))
		}
	}
	return used, nil
}
