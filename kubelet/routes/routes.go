// Package routes keeps a node's routes to the other nodes' pods: for every other Node
// with a spec.podCIDR and an InternalIP, a route of that range via that address (the
// host-gateway mode of flannel and kube-router, for nodes on one L2 network, as VMs
// usually are). Its routes carry their own protocol number (Protocol), so that it
// finds and removes the ones no Node wants any more, across restarts, and never
// touches others.
package routes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
)

// Protocol is the routing protocol number (rtm_protocol) of the routes this package
// makes ("skiff" in /etc/iproute2/rt_protos terms; unassigned by IANA's list of the
// kernel's).
const Protocol = netlink.RouteProtocol(0x5c)

// Config configures a Controller.
type Config struct {
	// NodeName is this node: its own range is not routed (the pod network's bridge is).
	NodeName string
	// NetNS, when not 0, is a file descriptor of the network namespace to route in
	// (tests); 0: the process's own.
	NetNS int
	// Logger receives the controller's logs, named "routes". Default: discarded.
	Logger hclog.Logger
}

// Controller keeps the routes.
type Controller struct {
	cfg Config
	h   *netlink.Handle
	log hclog.Logger
}

// New makes a Controller.
func New(cfg Config) (*Controller, error) {
	if cfg.NodeName == "" {
		return nil, errors.New("routes config: node name: must be set")
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	var h *netlink.Handle
	var err error
	if cfg.NetNS != 0 {
		h, err = netlink.NewHandleAt(netns.NsHandle(cfg.NetNS))
	} else {
		h, err = netlink.NewHandle()
	}
	if err != nil {
		return nil, fmt.Errorf("routes: open netlink: %w", err)
	}
	return &Controller{cfg: cfg, h: h, log: cfg.Logger.Named("routes")}, nil
}

// Close releases the netlink handle.
func (c *Controller) Close() { c.h.Close() }

// wanted are the routes nodes call for.
func (c *Controller) wanted(nodes []*corev1.Node) map[netip.Prefix]netip.Addr {
	out := map[netip.Prefix]netip.Addr{}
	for _, n := range nodes {
		if n.Name == c.cfg.NodeName || n.DeletionTimestamp != nil {
			continue
		}
		dst, err := netip.ParsePrefix(n.Spec.PodCIDR)
		if err != nil || !dst.Addr().Is4() {
			continue
		}
		for _, a := range n.Status.Addresses {
			if a.Type != corev1.NodeInternalIP {
				continue
			}
			if gw, err := netip.ParseAddr(a.Address); err == nil && gw.Is4() {
				out[dst.Masked()] = gw
				break
			}
		}
	}
	return out
}

// Sync makes the node's routes those nodes call for: each replaced (added, or its
// gateway changed), the ones of this package no node wants deleted.
func (c *Controller) Sync(nodes []*corev1.Node) error {
	want := c.wanted(nodes)
	have, err := c.h.RouteListFiltered(netlink.FAMILY_V4, &netlink.Route{Protocol: Protocol, Table: 254}, netlink.RT_FILTER_PROTOCOL|netlink.RT_FILTER_TABLE)
	if err != nil {
		return fmt.Errorf("routes: list: %w", err)
	}
	var errs []error
	for _, r := range have {
		if r.Dst == nil {
			continue
		}
		dst, ok := netip.AddrFromSlice(r.Dst.IP)
		ones, _ := r.Dst.Mask.Size()
		if !ok {
			continue
		}
		pfx := netip.PrefixFrom(dst.Unmap(), ones)
		if gw, ok := want[pfx]; ok && r.Gw != nil && r.Gw.Equal(net.IP(gw.AsSlice())) {
			delete(want, pfx) // in place
			continue
		}
		if _, ok := want[pfx]; ok {
			continue // replaced below
		}
		if err := c.h.RouteDel(&r); err != nil {
			errs = append(errs, fmt.Errorf("delete the route to %s: %w", pfx, err))
		} else {
			c.log.Info("route deleted", "dst", pfx)
		}
	}
	for dst, gw := range want {
		r := &netlink.Route{Dst: &net.IPNet{IP: dst.Addr().AsSlice(), Mask: net.CIDRMask(dst.Bits(), 32)},
			Gw: gw.AsSlice(), Protocol: Protocol, Table: 254}
		if err := c.h.RouteReplace(r); err != nil {
			errs = append(errs, fmt.Errorf("route %s via %s: %w", dst, gw, err))
		} else {
			c.log.Info("route set", "dst", dst, "via", gw)
		}
	}
	return errors.Join(errs...)
}

// Run keeps the routes in step with the Nodes of f's informer until ctx ends (the
// factory is started by the caller); a failed sync is retried with backoff.
func (c *Controller) Run(ctx context.Context, f *cache.Factory) error {
	inf := cache.InformerFor[*corev1.Node](f, "", client.ListOptions{})
	kick := make(chan struct{}, 1)
	poke := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	inf.AddHandler(cache.Handler[*corev1.Node]{
		OnAdd: func(*corev1.Node) { poke() }, OnUpdate: func(_, _ *corev1.Node) { poke() }, OnDelete: func(*corev1.Node) { poke() },
	})
	if !cache.WaitForSync(ctx, inf) {
		return nil
	}
	nodes := inf.Lister()
	backoff := time.Second
	poke()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
		}
		if err := c.Sync(nodes.List(labels.Everything())); err != nil {
			c.log.Error("sync failed; retrying", "error", err, "in", backoff)
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(backoff):
				poke()
			}
			backoff = min(2*backoff, 30*time.Second)
			continue
		}
		backoff = time.Second
	}
}
