package up

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/kubelet/agent"
)

// TestWireNetwork: skiff up's node runs the pod network with containerd as root — CNI,
// the service proxy, node routes, the cluster DNS on the node's address with pods'
// resolv.conf naming the kube-dns Service — leaving out what is turned off or what the
// machine cannot run, and saying so.
func TestWireNetwork(t *testing.T) {
	ok := host{root: true, cniPlugins: func() error { return nil }, canListen: func(string) error { return nil }}
	noPlugins := ok
	noPlugins.cniPlugins = func() error { return errors.New("plugin bridge not found") }
	busy := ok
	busy.canListen = func(addr string) error { return errors.New("listen udp " + addr + ": bind: address already in use") }
	notRoot := ok
	notRoot.root = false
	type want struct {
		cni, proxy, routes bool
		dnsListen          string
		clusterDNS         []string
		note               string
	}
	all := want{cni: true, proxy: true, routes: true, dnsListen: "192.168.1.7:53", clusterDNS: []string{"10.43.0.10"},
		note: "pods on bridge cni0 with addresses of the node's podCIDR (CNI), service proxy (nftables table ip skiff-proxy), routes to other nodes' pods, " +
			"cluster DNS on 192.168.1.7:53, pods resolving through kube-dns 10.43.0.10"}
	for _, tc := range []struct {
		name       string
		n          func(*Network)
		containerd bool
		h          host
		want       want
	}{
		{name: "all of it", containerd: true, h: ok, want: all},
		{name: "simulated containers", containerd: false, h: ok, want: want{note: "none with simulated containers: pods have the node's address"}},
		{name: "not root", containerd: true, h: notRoot, want: want{note: "none (network namespaces, routes and nftables need root): pods use the node's network"}},
		{name: "off", n: func(n *Network) { n.Off = true }, containerd: true, h: ok, want: want{note: "off (--pod-network=false): pods use the node's network"}},
		{name: "no CNI plugins", containerd: true, h: noPlugins, want: want{proxy: true, routes: true, dnsListen: "192.168.1.7:53", clusterDNS: []string{"10.43.0.10"},
			note: "service proxy (nftables table ip skiff-proxy), routes to other nodes' pods, cluster DNS on 192.168.1.7:53, pods resolving through kube-dns 10.43.0.10; " +
				"left out: CNI: plugin bridge not found"}},
		{name: "port 53 taken", containerd: true, h: busy, want: want{cni: true, proxy: true, routes: true,
			note: "pods on bridge cni0 with addresses of the node's podCIDR (CNI), service proxy (nftables table ip skiff-proxy), routes to other nodes' pods; " +
				"left out: cluster DNS: listen udp 192.168.1.7:53: bind: address already in use"}},
		{name: "no cluster DNS", n: func(n *Network) { n.ClusterDNSListen = NoClusterDNS }, containerd: true, h: ok, want: want{cni: true, proxy: true, routes: true,
			note: "pods on bridge cni0 with addresses of the node's podCIDR (CNI), service proxy (nftables table ip skiff-proxy), routes to other nodes' pods"}},
		{name: "DNS without the proxy", n: func(n *Network) { n.ServiceProxy, n.CNI, n.NodeRoutes = false, false, false }, containerd: true, h: ok,
			want: want{dnsListen: "192.168.1.7:53", clusterDNS: []string{"192.168.1.7"}, note: "cluster DNS on 192.168.1.7:53, pods resolving through it"}},
		{name: "DNS on another port without the proxy", n: func(n *Network) { n.ServiceProxy, n.ClusterDNSListen = false, "192.168.1.7:5353" }, containerd: true, h: ok,
			want: want{cni: true, routes: true, note: "pods on bridge cni0 with addresses of the node's podCIDR (CNI), routes to other nodes' pods; " +
				"left out: cluster DNS: pods reach 192.168.1.7:5353 only through the service proxy (a resolv.conf names no port)"}},
		{name: "DNS on loopback", n: func(n *Network) { n.ClusterDNSListen = "127.0.0.1:53" }, containerd: true, h: ok, want: want{cni: true, proxy: true, routes: true,
			note: "pods on bridge cni0 with addresses of the node's podCIDR (CNI), service proxy (nftables table ip skiff-proxy), routes to other nodes' pods; " +
				`left out: cluster DNS: --cluster-dns-listen "127.0.0.1:53": pods cannot reach 127.0.0.1: listen on the node's IPv4 address (or on every address)`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := DefaultNetwork()
			if tc.n != nil {
				tc.n(&n)
			}
			node := agent.DefaultConfig()
			node.Kubelet.NodeIP = "192.168.1.7"
			note := wireNetwork(n, &node, tc.containerd, "/data", tc.h)
			got := want{cni: node.CNI, proxy: node.ServiceProxy, routes: node.NodeRoutes, dnsListen: node.ClusterDNSListen, clusterDNS: node.Kubelet.ClusterDNS, note: note}
			if got.note != tc.want.note || got.cni != tc.want.cni || got.proxy != tc.want.proxy || got.routes != tc.want.routes ||
				got.dnsListen != tc.want.dnsListen || !slices.Equal(got.clusterDNS, tc.want.clusterDNS) {
				t.Fatalf("got  %+v\nwant %+v", got, tc.want)
			}
			if node.CNI && node.CNIConfig.StateDir != "/data/cni" {
				t.Errorf("CNI state in %q, want /data/cni (skiff up's data)", node.CNIConfig.StateDir)
			}
			if node.CNI && (!strings.HasPrefix(node.CNIConfig.NetNSDir, "/run/skiff/netns-") || node.CNIConfig.NetNSDir == netnsDir("/other")) {
				t.Errorf("pods' namespaces in %q, want a directory of this data directory's own under /run/skiff", node.CNIConfig.NetNSDir)
			}
			if node.ServiceProxy && node.ClusterCIDR != "10.42.0.0/16" {
				t.Errorf("proxy's cluster CIDR %q, want the cluster's 10.42.0.0/16", node.ClusterCIDR)
			}
		})
	}
}
