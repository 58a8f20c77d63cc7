// Package nodeipam is the node IPAM controller: it gives each Node a range of the
// cluster CIDR for its pods (spec.podCIDR and spec.podCIDRs, a /24 by default), the
// lowest range no node has. The API server records every range in use, in the
// transaction that sets it on the Node, and refuses a range another node has: so two
// controllers running at once (a leader that does not know yet it was replaced) never
// give two nodes one range — the second write fails and that controller picks again.
// A Node's range is freed when the Node is deleted (in the same transaction).
package nodeipam

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
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
	cfg     Config
	cluster netip.Prefix
	cs      *client.Clientset
	nodes   *cache.Lister[*corev1.Node]
	synced  []interface{ HasSynced() bool }
	queue   *workqueue.Queue
	log     hclog.Logger
	// given are the ranges this controller set that its cache may not show yet: range
	// to node. One worker reads and writes it.
	given map[netip.Prefix]string
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	inf := cache.InformerFor[*corev1.Node](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cluster: netip.MustParsePrefix(cfg.ClusterCIDR), cs: cs, nodes: inf.Lister(),
		synced: []interface{ HasSynced() bool }{inf}, queue: workqueue.New(workqueue.Config{}),
		log: cfg.Logger.Named("nodeipam"), given: map[netip.Prefix]string{}}
	enqueue := func(n *corev1.Node) {
		if n.Spec.PodCIDR == "" {
			c.queue.Add(n.Name)
		}
	}
	inf.AddHandler(cache.Handler[*corev1.Node]{OnAdd: enqueue, OnUpdate: func(_, n *corev1.Node) { enqueue(n) }})
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
	taken := map[netip.Prefix]bool{}
	for range maxPicks {
		cidr, ok := c.pick(taken)
		if !ok {
			return 0, fmt.Errorf("node %s: no range of %s left for a /%d", key, c.cluster, c.cfg.NodeMaskSize)
		}
		next := node.DeepCopy()
		next.Spec.PodCIDR, next.Spec.PodCIDRs = cidr.String(), []string{cidr.String()}
		_, err := c.cs.Nodes.Update(ctx, next)
		switch {
		case err == nil:
			c.given[cidr] = key
			c.log.Info("node range given", "node", key, "podCIDR", cidr)
			return 0, nil
		case client.IsInvalid(err):
			taken[cidr] = true // another node has it: the cache is behind another writer
		case client.IsNotFound(err):
			return 0, nil
		default:
			return 0, fmt.Errorf("node %s: set podCIDR %s: %w", key, cidr, err)
		}
	}
	return 0, fmt.Errorf("node %s: %d ranges in a row were taken meanwhile", key, maxPicks)
}

// pick is the lowest range no node has, as far as this controller knows.
func (c *Controller) pick(taken map[netip.Prefix]bool) (netip.Prefix, bool) {
	used := map[netip.Prefix]bool{}
	cached := map[string]string{}
	for _, n := range c.nodes.List(labels.Everything()) {
		cached[n.Name] = n.Spec.PodCIDR
		if p, err := netip.ParsePrefix(n.Spec.PodCIDR); err == nil {
			used[p] = true
		}
	}
	for p, node := range c.given {
		cidr, present := cached[node]
		if !present || cidr != "" { // deleted, or the cache shows what was set
			delete(c.given, p)
			continue
		}
		used[p] = true
	}
	count := 1 << (c.cfg.NodeMaskSize - c.cluster.Bits())
	for i := range count {
		p := nthSubnet(c.cluster, c.cfg.NodeMaskSize, i)
		if !used[p] && !taken[p] {
			return p, true
		}
	}
	return netip.Prefix{}, false
}

// nthSubnet is the i-th range of prefix length bits in cluster.
func nthSubnet(cluster netip.Prefix, bits, i int) netip.Prefix {
	base := new(big.Int).SetBytes(cluster.Addr().AsSlice())
	base.Add(base, new(big.Int).Lsh(big.NewInt(int64(i)), uint(32-bits)))
	var b [4]byte
	base.FillBytes(b[:])
	return netip.PrefixFrom(netip.AddrFrom4(b), bits)
}
