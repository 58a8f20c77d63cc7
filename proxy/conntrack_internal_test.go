package proxy

import (
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// TestStaleUDPFlows: which UDP frontends a service port's change leaves stale flows
// to, and which conntrack entries of those are deleted: the flows to the cluster IP
// and port (or, with serving endpoints, to the node port) answered by no serving
// endpoint; never a TCP flow, never a flow to a serving endpoint.
func TestStaleUDPFlows(t *testing.T) {
	ip := netip.MustParseAddr("10.43.0.10")
	e1 := endpoint{netip.MustParseAddr("10.42.0.5"), 53}
	e2 := endpoint{netip.MustParseAddr("10.42.0.6"), 53}
	udp := func(port, nodePort uint16, serving ...endpoint) *servicePort {
		return &servicePort{clusterIP: ip, proto: unix.IPPROTO_UDP, port: port, nodePort: nodePort, serving: serving}
	}
	tcp := &servicePort{clusterIP: ip, proto: unix.IPPROTO_TCP, port: 53}
	for _, c := range []struct {
		name     string
		old, now *servicePort
		want     []udpFrontend
	}{
		{"unchanged", udp(53, 0, e1), udp(53, 0, e1), nil},
		{"tcp", tcp, tcp, nil},
		{"tcp removed", tcp, nil, nil},
		{"added", nil, udp(53, 0, e1), []udpFrontend{{ip: ip, port: 53, serving: []endpoint{e1}}}},
		{"removed", udp(53, 30053, e1), nil, []udpFrontend{{ip: ip, port: 53, nodePort: 30053}}},
		{"endpoint replaced", udp(53, 0, e1), udp(53, 0, e2), []udpFrontend{{ip: ip, port: 53, serving: []endpoint{e2}}}},
		{"port moved", udp(53, 0, e1), udp(54, 0, e1), []udpFrontend{{ip: ip, port: 53}, {ip: ip, port: 54, serving: []endpoint{e1}}}},
		{"tcp to udp", tcp, udp(53, 0, e1), []udpFrontend{{ip: ip, port: 53, serving: []endpoint{e1}}}},
		{"udp to tcp", udp(53, 0, e1), tcp, []udpFrontend{{ip: ip, port: 53}}},
	} {
		got := appendStaleUDP(nil, c.old, c.now)
		if len(got) != len(c.want) {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
			continue
		}
		for i := range got {
			g, w := got[i], c.want[i]
			if g.ip != w.ip || g.port != w.port || g.nodePort != w.nodePort || len(g.serving) != len(w.serving) {
				t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
			}
		}
	}

	f := staleFlows{byIPPort: map[netip.AddrPort][]endpoint{}, byNodePort: map[uint16][]endpoint{}}
	f.byIPPort[netip.AddrPortFrom(ip, 53)] = []endpoint{e2}
	f.byNodePort[30053] = []endpoint{e2}
	f.byIPPort[netip.AddrPortFrom(ip, 54)] = nil // removed
	flow := func(proto uint8, dst string, dport uint16, replyFrom endpoint) *netlink.ConntrackFlow {
		return &netlink.ConntrackFlow{
			Forward: netlink.IPTuple{Protocol: proto, SrcIP: net.ParseIP("10.42.1.9"), SrcPort: 40000, DstIP: net.ParseIP(dst), DstPort: dport},
			Reverse: netlink.IPTuple{Protocol: proto, SrcIP: replyFrom.ip.AsSlice(), SrcPort: replyFrom.port, DstIP: net.ParseIP("10.42.1.9"), DstPort: 40000},
		}
	}
	untranslated := endpoint{ip, 53}
	for _, c := range []struct {
		name string
		flow *netlink.ConntrackFlow
		want bool
	}{
		{"to a gone endpoint", flow(unix.IPPROTO_UDP, "10.43.0.10", 53, e1), true},
		{"to a serving endpoint", flow(unix.IPPROTO_UDP, "10.43.0.10", 53, e2), false},
		{"untranslated", flow(unix.IPPROTO_UDP, "10.43.0.10", 53, untranslated), true},
		{"tcp", flow(unix.IPPROTO_TCP, "10.43.0.10", 53, e1), false},
		{"to a removed port", flow(unix.IPPROTO_UDP, "10.43.0.10", 54, endpoint{e1.ip, 54}), true},
		{"another service", flow(unix.IPPROTO_UDP, "10.43.0.11", 53, e1), false},
		{"node port, gone endpoint", flow(unix.IPPROTO_UDP, "192.168.1.5", 30053, e1), true},
		{"node port, serving endpoint", flow(unix.IPPROTO_UDP, "192.168.1.5", 30053, e2), false},
	} {
		if got := f.MatchConntrackFlow(c.flow); got != c.want {
			t.Errorf("%s: deleted %t, want %t", c.name, got, c.want)
		}
	}
}
