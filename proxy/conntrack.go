package proxy

import (
	"fmt"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Stale UDP flows. A UDP flow has no end the kernel sees: its conntrack entry, and
// with it the translation to the endpoint its first datagram was sent to, lives as
// long as datagrams keep coming (a DNS resolver's socket, statsd). So when a UDP
// Service port loses an endpoint, or leaves its Service, the entries of the flows
// to it that go to no serving endpoint of it any more are deleted, as kube-proxy
// does: the next datagram is translated by the rules of now (to an endpoint there
// is, or refused). TCP needs none of this: a connection to a gone endpoint breaks
// and the client makes a new one.

// udpFrontend is a UDP Service port whose flows may be stale: its cluster IP, port
// and node port (0: none), and the endpoints its flows may keep going to.
type udpFrontend struct {
	ip       netip.Addr
	port     uint16
	nodePort uint16
	serving  []endpoint
}

// appendStaleUDP appends the UDP frontends a service port's change from old to now
// (either nil: added or removed) may have left stale flows to.
func appendStaleUDP(out []udpFrontend, old, now *servicePort) []udpFrontend {
	const udp = unix.IPPROTO_UDP
	var of, nf *udpFrontend
	if old != nil && old.proto == udp {
		of = &udpFrontend{ip: old.clusterIP, port: old.port, nodePort: old.nodePort, serving: old.serving}
	}
	if now != nil && now.proto == udp {
		nf = &udpFrontend{ip: now.clusterIP, port: now.port, nodePort: now.nodePort, serving: now.serving}
	}
	switch {
	case nf == nil && of == nil:
		return out
	case nf == nil:
		of.serving = nil // gone: no flow to it is kept
		return append(out, *of)
	case of == nil:
		// New (or new to this proxy, which may have restarted): flows that an
		// earlier table translated elsewhere.
		return append(out, *nf)
	}
	if of.ip != nf.ip || of.port != nf.port || of.nodePort != nf.nodePort {
		of.serving = nil
		return append(out, *of, *nf)
	}
	if !slices.Equal(of.serving, nf.serving) {
		return append(out, *nf)
	}
	return out
}

// conntrackCleaner deletes the conntrack entries of stale UDP flows in a network
// namespace.
type conntrackCleaner struct {
	netns  int // a file descriptor of the namespace; 0: the process's own
	handle *netlink.Handle
}

// clean deletes the entries of UDP flows to the frontends that go to none of their
// serving endpoints: to the cluster IP and port, and, when the frontend has serving
// endpoints, to its node port on any address (as kube-proxy, which leaves a node
// port without endpoints alone: matching on the port alone, it would delete flows
// of other hosts' with that port number).
func (c *conntrackCleaner) clean(fronts []udpFrontend) error {
	if len(fronts) == 0 {
		return nil
	}
	if c.handle == nil {
		ns := netns.None()
		if c.netns != 0 {
			ns = netns.NsHandle(c.netns)
		}
		h, err := netlink.NewHandleAt(ns, unix.NETLINK_NETFILTER)
		if err != nil {
			return fmt.Errorf("open conntrack netlink: %w", err)
		}
		c.handle = h
	}
	f := staleFlows{byIPPort: map[netip.AddrPort][]endpoint{}, byNodePort: map[uint16][]endpoint{}}
	for _, fr := range fronts {
		f.byIPPort[netip.AddrPortFrom(fr.ip, fr.port)] = fr.serving
		if fr.nodePort != 0 && len(fr.serving) > 0 {
			f.byNodePort[fr.nodePort] = fr.serving
		}
	}
	if _, err := c.handle.ConntrackDeleteFilters(netlink.ConntrackTable, unix.AF_INET, f); err != nil {
		return fmt.Errorf("delete stale UDP conntrack entries: %w", err)
	}
	return nil
}

// close releases the netlink socket.
func (c *conntrackCleaner) close() {
	if c.handle != nil {
		c.handle.Close()
		c.handle = nil
	}
}

// staleFlows matches the UDP flows to a frontend (by its original destination) that
// are answered by none of its serving endpoints (by the reply's source).
type staleFlows struct {
	byIPPort   map[netip.AddrPort][]endpoint
	byNodePort map[uint16][]endpoint
}

func (f staleFlows) MatchConntrackFlow(flow *netlink.ConntrackFlow) bool {
	if flow.Forward.Protocol != unix.IPPROTO_UDP {
		return false
	}
	dst, ok := netip.AddrFromSlice(flow.Forward.DstIP)
	if !ok {
		return false
	}
	from, ok := netip.AddrFromSlice(flow.Reverse.SrcIP)
	if !ok {
		return false
	}
	answered := endpoint{ip: from.Unmap(), port: flow.Reverse.SrcPort}
	serving, ok := f.byIPPort[netip.AddrPortFrom(dst.Unmap(), flow.Forward.DstPort)]
	if !ok {
		serving, ok = f.byNodePort[flow.Forward.DstPort]
	}
	return ok && !slices.Contains(serving, answered)
}

var _ netlink.CustomConntrackFilter = staleFlows{}
