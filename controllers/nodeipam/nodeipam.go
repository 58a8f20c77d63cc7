// Package nodeipam is the node IPAM controller: it gives each Node a range of the
// cluster CIDR for its pods (spec.podCIDR and spec.podCIDRs, a /24 by default), the
// lowest range no node has. The API server records every range in use, in the
// transaction that sets it on the Node, and refuses a range another node has: so two
// controllers running at once (a leader that does not know yet it was replaced) never
// give two nodes one range — the second write fails and that controller picks again.
// A Node's range is freed when the Node is deleted (in the same transaction).
//
// The controller keeps which ranges are in use from the node informer's events (a
// bitmap of the cluster CIDR's ranges, as Kubernetes' range allocator does), so giving
// a node a range costs O(1) amortised rather than a look at every node.
package nodeipam

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/client/workqueue"
)

// DefaultNodeMaskSize is Kubernetes' --node-cidr-mask-size for IPv4.
const DefaultNodeMaskSize = 24

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// ClusterCIDR is the range the nodes' ranges are cut from (the cluster's
	// --cluster-cidr, as the API servers report it).
	ClusterCIDR string
	// NodeMaskSize is the prefix length of a node's range. Default 24.
	NodeMaskSize int
	// Logger receives the controller's logs, named "nodeipam". Default: discarded.
	Logger hclog.Logger
}

// DefaultConfig has Kubernetes' values; ClusterCIDR is to be set.
func DefaultConfig() Config {
	return Config{NodeMaskSize: DefaultNodeMaskSize, Logger: hclog.NewNullLogger()}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	p, err := netip.ParsePrefix(c.ClusterCIDR)
	switch {
	case err != nil || !p.Addr().Is4():
		errs = append(errs, fmt.Errorf("clusterCIDR: %q is not an IPv4 CIDR", c.ClusterCIDR))
	case c.NodeMaskSize < p.Bits() || c.NodeMaskSize > 30:
		errs = append(errs, fmt.Errorf("nodeMaskSize: %d must be between the cluster CIDR's /%d and /30", c.NodeMaskSize, p.Bits()))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node IPAM controller config: %w", err)
	}
	return nil
}

// Controller is the node IPAM controller.
type Controller struct {
	cfg    Config
	cs     *client.Clientset
	nodes  *cache.Lister[*corev1.Node]
	synced []interface{ HasSynced() bool }
	queue  *workqueue.Queue
	rec    *record.Recorder
	log    hclog.Logger
	used   *usedRanges
}

// New makes the controller on the factory's informers; Run starts it. rec receives the
// CIDRNotAvailable events of nodes left without a range.
func New(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	inf := cache.InformerFor[*corev1.Node](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, nodes: inf.Lister(),
		synced: []interface{ HasSynced() bool }{inf}, queue: workqueue.New(workqueue.Config{}), rec: rec,
		log: cfg.Logger.Named("nodeipam"), used: newUsedRanges(netip.MustParsePrefix(cfg.ClusterCIDR), cfg.NodeMaskSize)}
	enqueue := func(n *corev1.Node) {
		if n.Spec.PodCIDR == "" {
			c.queue.Add(n.Name)
		}
	}
	inf.AddHandler(cache.Handler[*corev1.Node]{
		OnAdd:    func(n *corev1.Node) { c.used.seen(nil, n); enqueue(n) },
		OnUpdate: func(old, n *corev1.Node) { c.used.seen(old, n); enqueue(n) },
		OnDelete: c.used.deleted,
	})
	return c, nil
}

// Run gives nodes ranges until ctx ends. The factory must be started. One worker: each
// pick sees the ranges of the picks before it.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	c.queue.Run(ctx, 1, c.log, c.Reconcile)
	return nil
}

// maxPicks bounds how many ranges one sync tries that other writers took first.
const maxPicks = 16

// Reconcile gives the node named key a range if it has none.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	node, ok := c.nodes.Get("", key)
	if !ok || node.Spec.PodCIDR != "" || node.DeletionTimestamp != nil {
		return 0, nil
	}
	var refused []netip.Prefix // another node has them: the cache is behind another writer
	defer func() { c.used.giveBack(key, refused...) }()
	for range maxPicks {
		cidr, ok := c.used.allocate(key)
		if !ok {
			// As Kubernetes' range allocator reports it.
			c.rec.Eventf(node, record.Normal, "CIDRNotAvailable", "Node %s status is now: CIDRNotAvailable", key)
			return 0, fmt.Errorf("node %s: no range of %s left for a /%d", key, c.cfg.ClusterCIDR, c.cfg.NodeMaskSize)
		}
		next := node.DeepCopy()
		next.Spec.PodCIDR, next.Spec.PodCIDRs = cidr.String(), []string{cidr.String()}
		_, err := c.cs.Nodes.Update(ctx, next)
		switch {
		case err == nil:
			c.log.Info("node range given", "node", key, "podCIDR", cidr)
			return 0, nil
		case client.IsInvalid(err):
			refused = append(refused, cidr)
		case client.IsNotFound(err):
			c.used.giveBack(key, cidr)
			return 0, nil
		default:
			c.used.giveBack(key, cidr)
			return 0, fmt.Errorf("node %s: set podCIDR %s: %w", key, cidr, err)
		}
	}
	return 0, fmt.Errorf("node %s: %d ranges in a row were taken meanwhile", key, maxPicks)
}

// usedRanges is which ranges of the cluster CIDR are in use as far as this controller
// knows, kept from the node informer's events rather than recomputed per allocation:
// the ranges the cache's nodes have (set by this controller or anyone else) and the
// ones this controller set that the cache does not show yet. The informer's handlers
// and the worker use it.
type usedRanges struct {
	mu  sync.Mutex
	set *cidrSet
	// owner is the node of each range in use: as the cache shows it, or as this
	// controller set it.
	owner map[netip.Prefix]string
	// pending are the ranges this controller set, or is setting, that the cache does
	// not show yet: node to range.
	pending map[string]netip.Prefix
}

func newUsedRanges(cluster netip.Prefix, nodeBits int) *usedRanges {
	return &usedRanges{set: newCIDRSet(cluster, nodeBits), owner: map[netip.Prefix]string{}, pending: map[string]netip.Prefix{}}
}

// nodeRanges are the ranges node n has (spec.podCIDRs, or spec.podCIDR alone).
func nodeRanges(n *corev1.Node) []netip.Prefix {
	cidrs := n.Spec.PodCIDRs
	if len(cidrs) == 0 && n.Spec.PodCIDR != "" {
		cidrs = []string{n.Spec.PodCIDR}
	}
	var out []netip.Prefix
	for _, s := range cidrs {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p)
		}
	}
	return out
}

// seen takes in a node the cache added (old nil) or changed.
func (r *usedRanges) seen(old, n *corev1.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old != nil {
		for _, p := range nodeRanges(old) {
			if !slices.Contains(nodeRanges(n), p) {
				r.free(old.Name, p)
			}
		}
	}
	ps := nodeRanges(n)
	if len(ps) > 0 {
		if p, ok := r.pending[n.Name]; ok && !slices.Contains(ps, p) {
			r.free(n.Name, p) // someone else set another range first
		}
		delete(r.pending, n.Name)
	}
	for _, p := range ps {
		r.owner[p] = n.Name
		r.set.occupy(p)
	}
}

// deleted frees a deleted node's ranges, including one the cache never showed it with.
func (r *usedRanges) deleted(n *corev1.Node) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range nodeRanges(n) {
		r.free(n.Name, p)
	}
	if p, ok := r.pending[n.Name]; ok {
		r.free(n.Name, p)
		delete(r.pending, n.Name)
	}
}

// free releases node's range p, unless another node has it now. Called with r.mu held.
func (r *usedRanges) free(node string, p netip.Prefix) {
	if owner, ok := r.owner[p]; ok && owner != node {
		return
	}
	delete(r.owner, p)
	r.set.release(p)
}

// allocate takes the lowest free range for node, held as node's from then on (pending),
// before the write that gives it, so that node's deletion seen meanwhile frees it;
// giveBack returns it when the write failed.
func (r *usedRanges) allocate(node string) (netip.Prefix, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.set.allocate()
	if ok {
		r.owner[p] = node
		r.pending[node] = p
	}
	return p, ok
}

// giveBack frees ranges allocate returned for node that node did not get, unless the
// cache shows another node with them meanwhile, or node's deletion freed them.
func (r *usedRanges) giveBack(node string, ps ...netip.Prefix) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range ps {
		if r.pending[node] == p {
			delete(r.pending, node)
		}
		if r.owner[p] == node {
			delete(r.owner, p)
			r.set.release(p)
		}
	}
}
