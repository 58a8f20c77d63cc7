package up

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/kubelet/agent"
)

// NoClusterDNS, as Network.ClusterDNSListen, runs no cluster DNS.
const NoClusterDNS = "none"

// Network is the pod network skiff up runs when containerd runs the pods and skiff up
// runs as root (network namespaces, routes and nftables need it): what `skiff
// kubelet` runs with --cni, --service-proxy, --node-routes, --cluster-dns-listen and
// --cluster-dns. Each part can be turned off; Off turns them all off, and pods then
// use the node's network, as before.
type Network struct {
	// Off runs none of it (--pod-network=false).
	Off bool
	// CNI gives each pod a network namespace and an address of the node's podCIDR.
	CNI bool
	// ServiceProxy translates Services' cluster IPs and node ports (nftables).
	ServiceProxy bool
	// NodeRoutes routes the other nodes' podCIDRs via their addresses.
	NodeRoutes bool
	// ClusterDNSListen is where the node's cluster DNS listens, UDP and TCP: "" for
	// the node's address, port 53; NoClusterDNS for none. With ServiceProxy, pods'
	// resolv.conf names the kube-dns Service (10.43.0.10), which the proxy leads to
	// it; without, the DNS's own address (on port 53).
	ClusterDNSListen string
}

// DefaultNetwork runs all of it.
func DefaultNetwork() Network { return Network{CNI: true, ServiceProxy: true, NodeRoutes: true} }

// host is what wiring the pod network asks of the machine; the tests fake it.
type host struct {
	// root says whether skiff up runs as root.
	root bool
	// cniPlugins says why the CNI plugins cannot be used, or nil.
	cniPlugins func() error
	// canListen says why the cluster DNS cannot listen on addr (UDP and TCP), or nil.
	canListen func(addr string) error
}

// realHost is this machine.
func realHost() host {
	return host{root: os.Geteuid() == 0, cniPlugins: cniPlugins, canListen: canListen}
}

// kubeDNSIP is the kube-dns Service's cluster IP in skiff up's cluster (the default
// service CIDR's tenth address).
func kubeDNSIP() string {
	p := netip.MustParsePrefix(apiserver.DefaultServiceCIDR)
	a := p.Addr().As4()
	a[3] += 10
	return netip.AddrFrom4(a).String()
}

// wireNetwork sets node's pod network as n asks, when containerd runs the pods (and
// skiff up runs as root); it returns the line that tells the user what runs. A part
// the machine cannot run (no CNI plugins, port 53 taken) is left out and said.
func wireNetwork(n Network, node *agent.Config, containerd bool, dataDir string, h host) string {
	switch {
	case n.Off:
		return "off (--pod-network=false): pods use the node's network"
	case !containerd:
		return "none with simulated containers: pods have the node's address"
	case !h.root:
		return "none (network namespaces, routes and nftables need root): pods use the node's network"
	}
	var parts, missing []string
	if n.CNI {
		if err := h.cniPlugins(); err != nil {
			missing = append(missing, "CNI: "+err.Error())
		} else {
			node.CNI = true
			node.CNIConfig.StateDir = filepath.Join(dataDir, "cni")
			node.CNIConfig.NetNSDir = netnsDir(dataDir)
			parts = append(parts, "pods on bridge cni0 with addresses of the node's podCIDR (CNI)")
		}
	}
	if n.ServiceProxy {
		node.ServiceProxy, node.ClusterCIDR, node.ServiceCIDR = true, apiserver.DefaultClusterCIDR, apiserver.DefaultServiceCIDR
		parts = append(parts, "service proxy (nftables table ip skiff-proxy)")
	}
	if n.NodeRoutes {
		node.NodeRoutes = true
		parts = append(parts, "routes to other nodes' pods")
	}
	if listen := n.ClusterDNSListen; listen != NoClusterDNS {
		if listen == "" {
			listen = net.JoinHostPort(node.Kubelet.NodeIP, "53")
		}
		local, err := agent.LocalDNS(listen, node.Kubelet.NodeIP)
		if err == nil {
			err = h.canListen(listen)
		}
		switch {
		case err != nil:
			missing = append(missing, "cluster DNS: "+err.Error())
		case node.ServiceProxy:
			node.ClusterDNSListen, node.Kubelet.ClusterDNS = listen, []string{kubeDNSIP()}
			parts = append(parts, fmt.Sprintf("cluster DNS on %s, pods resolving through kube-dns %s", local, kubeDNSIP()))
		case local.Port() == 53:
			node.ClusterDNSListen, node.Kubelet.ClusterDNS = listen, []string{local.Addr().String()}
			parts = append(parts, fmt.Sprintf("cluster DNS on %s, pods resolving through it", local))
		default:
			missing = append(missing, fmt.Sprintf("cluster DNS: pods reach %s only through the service proxy (a resolv.conf names no port)", local))
		}
	}
	line := strings.Join(parts, ", ")
	if line == "" {
		line = "none of it (pods use the node's network)"
	}
	if len(missing) > 0 {
		line += "; left out: " + strings.Join(missing, "; ")
	}
	return line
}

// netnsDir is where the node's pods' network namespaces are mounted: in /run (they
// describe running pods), one directory per data directory, so that a kubelet
// tearing down the namespaces of pods it no longer has never touches another's (a
// skiff kubelet's in /run/netns, another skiff up's).
func netnsDir(dataDir string) string {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		abs = dataDir
	}
	sum := sha256.Sum256([]byte(abs))
	return filepath.Join("/run/skiff", "netns-"+hex.EncodeToString(sum[:6]))
}

// cniPlugins says why the reference plugins skiff's CNI network runs are missing.
func cniPlugins() error {
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		found := false
		for _, d := range []string{"/usr/lib/cni", "/opt/cni/bin"} {
			if _, err := os.Stat(filepath.Join(d, p)); err == nil {
				found = true
			}
		}
		if !found {
			return fmt.Errorf("plugin %s not found in /usr/lib/cni or /opt/cni/bin (Debian: apt-get install containernetworking-plugins; make run installs it)", p)
		}
	}
	return nil
}

// canListen says why addr cannot be listened on, UDP and TCP (another DNS server has
// port 53), or nil.
func canListen(addr string) error {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return err
	}
	defer pc.Close()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	return ln.Close()
}

// prepareBridgeNetfilter makes bridged traffic pass netfilter (the br_netfilter module,
// net.bridge.bridge-nf-call-iptables=1), as Kubernetes requires of a node and k3s'
// agent sets: an endpoint's answer to a pod on the same bridge is then translated
// back. Failing, it warns: Services still work across the bridge's router.
func prepareBridgeNetfilter(log hclog.Logger) {
	const knob = "/proc/sys/net/bridge/bridge-nf-call-iptables"
	if _, err := os.Stat(knob); errors.Is(err, os.ErrNotExist) {
		if out, err := exec.Command("modprobe", "br_netfilter").CombinedOutput(); err != nil {
			log.Warn("cannot load br_netfilter: a pod reaching a Service whose endpoint is on its own bridge may get no answer", "error", err, "output", strings.TrimSpace(string(out)))
			return
		}
	}
	if err := os.WriteFile(knob, []byte("1"), 0o644); err != nil {
		log.Warn("cannot set net.bridge.bridge-nf-call-iptables=1", "error", err)
	}
}
