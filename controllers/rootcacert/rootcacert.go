// Package rootcacert is Kubernetes' root CA certificate publisher: every namespace has a
// ConfigMap named "kube-root-ca.crt" whose "ca.crt" is the cluster CA's certificate
// (PEM), so that a pod can verify the API servers it reaches from inside the cluster.
// The ConfigMap is made when the namespace appears, made again when deleted and put back
// when its data is changed, as Kubernetes' root-ca-cert-publisher does; a namespace being
// deleted gets none.
package rootcacert

import (
	"context"
	"errors"
	"fmt"
	"maps"
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

// Kubernetes' names: the ConfigMap, its key, and the annotation that says what it is for.
const (
	ConfigMapName         = "kube-root-ca.crt"
	DataKey               = "ca.crt"
	DescriptionAnnotation = "kubernetes.io/description"
	Description           = "Contains a CA bundle that can be used to verify the kube-apiserver when using internal endpoints such as the internal service IP or kubernetes.default.svc. " +
		"No other usage is guaranteed across distributions of Kubernetes clusters."
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// RootCA is the CA bundle published (PEM). Required.
	RootCA []byte
	// Workers reconcile different namespaces concurrently. Default 2.
	Workers int
	// Logger receives the controller's logs, named "rootcacert". Default: discarded.
	Logger hclog.Logger
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config { return Config{Workers: 2, Logger: hclog.NewNullLogger()} }

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if len(c.RootCA) == 0 {
		errs = append(errs, errors.New("rootCA: must be set"))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("root CA publisher config: %w", err)
	}
	return nil
}

// Controller is the publisher. Its queue holds namespace names.
type Controller struct {
	cfg   Config
	cs    *client.Clientset
	nsInf *cache.Informer[*corev1.Namespace]
	cmInf *cache.Informer[*corev1.ConfigMap]
	ns    *cache.Lister[*corev1.Namespace]
	cms   *cache.Lister[*corev1.ConfigMap]
	queue *workqueue.Queue
	log   hclog.Logger
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nsInf := cache.InformerFor[*corev1.Namespace](f, "", client.ListOptions{})
	cmInf := cache.InformerFor[*corev1.ConfigMap](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, nsInf: nsInf, cmInf: cmInf, ns: nsInf.Lister(), cms: cmInf.Lister(),
		queue: workqueue.New(workqueue.Config{}), log: cfg.Logger.Named("rootcacert")}
	nsInf.AddHandler(cache.Handler[*corev1.Namespace]{
		OnAdd:    func(ns *corev1.Namespace) { c.queue.Add(ns.Name) },
		OnUpdate: func(_, ns *corev1.Namespace) { c.queue.Add(ns.Name) },
	})
	ours := func(cm *corev1.ConfigMap) {
		if cm.Name == ConfigMapName {
			c.queue.Add(cm.Namespace)
		}
	}
	cmInf.AddHandler(cache.Handler[*corev1.ConfigMap]{
		OnUpdate: func(_, cm *corev1.ConfigMap) { ours(cm) },
		OnDelete: ours,
	})
	return c, nil
}

// Run publishes until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.nsInf, c.cmInf) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, func(ctx context.Context, ns string) (_ time.Duration, err error) {
		return 0, c.Reconcile(ctx, ns)
	})
	return nil
}

// Reconcile makes namespace ns's kube-root-ca.crt, or puts its data and annotation back,
// unless the namespace is gone or going.
func (c *Controller) Reconcile(ctx context.Context, ns string) error {
	n, ok := c.ns.Get("", ns)
	if !ok || n.DeletionTimestamp != nil || n.Status.Phase == corev1.NamespaceTerminating {
		return nil
	}
	data := map[string]string{DataKey: string(c.cfg.RootCA)}
	cm, ok := c.cms.Get(ns, ConfigMapName)
	if !ok {
		_, err := c.cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: ConfigMapName, Annotations: map[string]string{DescriptionAnnotation: Description}},
			Data:       data,
		})
		switch {
		case err == nil:
			c.log.Debug("published the root CA", "namespace", ns)
			return nil
		case client.IsAlreadyExists(err), client.IsRetriedCreate(err):
			return nil // the cache will show it, and its update brings it back here
		case status.Code(err) == codes.FailedPrecondition || client.IsNotFound(err):
			// The namespace went, or began terminating, since the cache said otherwise.
			c.log.Debug("namespace takes no new config map", "namespace", ns, "error", err)
			return nil
		}
		return fmt.Errorf("create config map %s/%s: %w", ns, ConfigMapName, err)
	}
	if maps.Equal(cm.Data, data) && len(cm.BinaryData) == 0 && cm.Annotations[DescriptionAnnotation] == Description {
		return nil
	}
	cm = cm.DeepCopy()
	cm.Data, cm.BinaryData = data, nil
	if cm.Annotations == nil {
		cm.Annotations = map[string]string{}
	}
	cm.Annotations[DescriptionAnnotation] = Description
	_, err := c.cs.ConfigMaps.Update(ctx, cm)
	switch {
	case err == nil:
		c.log.Debug("put the root CA back", "namespace", ns)
		return nil
	case client.IsNotFound(err):
		return nil // deleted meanwhile: its deletion brings it back here
	}
	return fmt.Errorf("update config map %s/%s: %w", ns, ConfigMapName, err)
}
