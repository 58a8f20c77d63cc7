// Package servicelb is the service load balancer, as k3s' ServiceLB is: a Service of
// type LoadBalancer is served on its node ports by every node (the service proxy), so
// its load balancer's ingress points (status.loadBalancer.ingress) are the addresses of
// the nodes that are Ready — each node's ExternalIP, or its InternalIP when it has none.
// A Service that is no longer of type LoadBalancer has its ingress points cleared. One
// with a loadBalancerClass is another implementation's, left alone.
package servicelb

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers sync different Services concurrently. Default 2.
	Workers int
	// Logger receives the controller's logs, named "servicelb". Default: discarded.
	Logger hclog.Logger
}

// DefaultConfig has the defaults.
func DefaultConfig() Config { return Config{Workers: 2, Logger: hclog.NewNullLogger()} }

// Controller is the service load balancer.
type Controller struct {
	cfg    Config
	cs     *client.Clientset
	svcs   *cache.Lister[*corev1.Service]
	nodes  *cache.Lister[*corev1.Node]
	synced []interface{ HasSynced() bool }
	queue  *workqueue.Queue
	log    hclog.Logger
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if cfg.Workers < 1 || cfg.Logger == nil {
		return nil, errors.New("servicelb config: workers must be at least 1 and logger set")
	}
	svcInf := cache.InformerFor[*corev1.Service](f, "", client.ListOptions{})
	nodeInf := cache.InformerFor[*corev1.Node](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, svcs: svcInf.Lister(), nodes: nodeInf.Lister(),
		synced: []interface{ HasSynced() bool }{svcInf, nodeInf}, queue: workqueue.New(workqueue.Config{}), log: cfg.Logger.Named("servicelb")}
	enqueue := func(s *corev1.Service) { c.queue.Add(cache.Key(s)) }
	svcInf.AddHandler(cache.Handler[*corev1.Service]{OnAdd: enqueue, OnUpdate: func(_, s *corev1.Service) { enqueue(s) }})
	// A node's address or readiness changes every load balancer's ingress points.
	nodeChanged := func(*corev1.Node) {
		for _, s := range c.svcs.List(labels.Everything()) {
			if s.Spec.Type == corev1.ServiceTypeLoadBalancer {
				enqueue(s)
			}
		}
	}
	nodeInf.AddHandler(cache.Handler[*corev1.Node]{OnAdd: nodeChanged, OnDelete: nodeChanged,
		OnUpdate: func(old, n *corev1.Node) {
			if Address(old) != Address(n) || isReady(old) != isReady(n) {
				nodeChanged(n)
			}
		}})
	return c, nil
}

// Run syncs Services until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Reconcile sets one Service's ingress points, "namespace/name".
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	svc, ok := c.svcs.Get(ns, name)
	if !ok {
		return 0, nil
	}
	if svc.Spec.LoadBalancerClass != nil {
		// Another implementation's load balancer: its ingress points are its to write,
		// as Kubernetes' default implementations leave such a Service alone.
		return 0, nil
	}
	var want []corev1.LoadBalancerIngress
	if svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
		want = Ingress(c.nodes.List(labels.Everything()))
	}
	if equality.Semantic.DeepEqual(want, svc.Status.LoadBalancer.Ingress) || len(want) == 0 && len(svc.Status.LoadBalancer.Ingress) == 0 {
		return 0, nil
	}
	next := svc.DeepCopy()
	next.Status.LoadBalancer.Ingress = want
	if _, err := c.cs.Services.UpdateStatus(ctx, next); err != nil && !client.IsNotFound(err) {
		return 0, fmt.Errorf("update status of service %s: %w", key, err)
	}
	return 0, nil
}

// Ingress is the ingress points of a load balancer over nodes: the Ready nodes'
// addresses, in order.
func Ingress(nodes []*corev1.Node) []corev1.LoadBalancerIngress {
	var addrs []netip.Addr
	for _, n := range nodes {
		if a, err := netip.ParseAddr(Address(n)); err == nil && isReady(n) && n.DeletionTimestamp == nil {
			addrs = append(addrs, a)
		}
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	addrs = slices.Compact(addrs)
	var out []corev1.LoadBalancerIngress
	for _, a := range addrs {
		out = append(out, corev1.LoadBalancerIngress{IP: a.String()})
	}
	return out
}

// Address is the node's ExternalIP, else its InternalIP ("" if none).
func Address(n *corev1.Node) string {
	internal := ""
	for _, a := range n.Status.Addresses {
		switch a.Type {
		case corev1.NodeExternalIP:
			return a.Address
		case corev1.NodeInternalIP:
			if internal == "" {
				internal = a.Address
			}
		}
	}
	return internal
}

func isReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
