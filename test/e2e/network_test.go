package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet/cni"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/test/containerdtest"
	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/waitfor"
	"github.com/skiffhq/skiff/up/daemon"
)

// The cluster's address plan in the network tests: the API servers' defaults.
const (
	netTestClusterCIDR = "10.42.0.0/16"
	netTestServiceCIDR = "10.43.0.0/16"
)

// netLab is a LAN of nodes on this machine: each node a network namespace with a
// veth on a bridge, the bridge in a namespace of its own (the LAN's switch), and the
// host on the LAN through a veth of its own (the API server listens there). The
// nodes have no default route: a packet no rule or route sends to a node of the LAN
// ends where it is, in the node's namespace; and a guard in the host's namespace
// drops whatever the host would forward from or to the LAN and anything for the
// cluster and service ranges leaving by the host's outward interfaces (docs/
// networking.md, "Tests and the outward interface").
type netLab struct {
	t      *testing.T
	id     string
	lan    string // the switch's namespace
	hostIf string // the host's veth on the LAN
	hostIP string
	nodes  []*labNode
	dir    string // the nodes' directories
}

// labNode is a node of the LAN: its namespace and address, and its kubelet.
type labNode struct {
	name, netns, ip, ctrdNS, dir string
	args                         []string // the kubelet's
	kubelet                      *proc
}

// netTestSkips skips t unless it can run the network lab: root, iproute2, nsenter,
// nft, the CNI plugins, br_netfilter, a static busybox and containerd.
func netTestSkips(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes network namespaces, a bridge, nftables rules and containers")
	}
	for _, bin := range []string{"ip", "nsenter", "nft"} {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s (iproute2, util-linux, nftables)", bin)
		}
	}
	for _, p := range []string{"bridge", "host-local", "loopback", "portmap"} {
		if _, err := os.Stat(filepath.Join("/usr/lib/cni", p)); err != nil {
			t.Skipf("needs the CNI plugins in /usr/lib/cni (apt-get install containernetworking-plugins): %v", err)
		}
	}
	if _, err := os.Stat("/proc/sys/net/bridge/bridge-nf-call-iptables"); err != nil {
		t.Skip("needs the br_netfilter module (modprobe br_netfilter): bridged traffic must pass netfilter")
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("the pods' image comes from /bin/busybox (busybox-static), which is missing")
	}
	if err := daemon.Usable(); err != nil {
		t.Skipf("containerd: %v", err)
	}
}

// sh runs a command, failing t with its output when it fails.
func sh(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// newNetLab makes the LAN and its nodes' namespaces (not their kubelets), removed when
// the test ends.
func newNetLab(t *testing.T, nodes ...string) *netLab {
	b := make([]byte, 3)
	rand.Read(b)
	id := hex.EncodeToString(b)
	l := &netLab{t: t, id: id, lan: "skn-" + id + "-lan", hostIf: "skn" + id}
	// A /24 of 198.18.0.0/15 (RFC 2544's benchmarking range, never routed), one the
	// host does not use.
	for i := 0; ; i++ {
		c := fmt.Sprintf("198.18.%d", (int(b[0])+i)%256)
		if !strings.Contains(sh(t, "ip", "-4", "-o", "addr")+sh(t, "ip", "-4", "route"), c+".") {
			l.hostIP = c + ".1"
			for i, n := range nodes {
				l.nodes = append(l.nodes, &labNode{name: "net" + n + "-" + id, netns: "skn-" + id + "-" + n, ip: fmt.Sprintf("%s.%d", c, 11+i),
					ctrdNS: "skiff-net-" + id + "-" + n})
			}
			break
		}
		if i == 255 {
			t.Skip("no /24 of 198.18.0.0/16 free on this host")
		}
	}

	// The switch, and the host on it.
	sh(t, "ip", "netns", "add", l.lan)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", l.lan).Run() })
	sh(t, "ip", "-n", l.lan, "link", "set", "lo", "up")
	sh(t, "ip", "-n", l.lan, "link", "add", "br0", "type", "bridge")
	sh(t, "ip", "-n", l.lan, "link", "set", "br0", "up")
	sh(t, "ip", "link", "add", l.hostIf, "type", "veth", "peer", "name", "uplink", "netns", l.lan)
	t.Cleanup(func() { exec.Command("ip", "link", "del", l.hostIf).Run() })
	sh(t, "ip", "-n", l.lan, "link", "set", "uplink", "master", "br0", "up")
	sh(t, "ip", "addr", "add", l.hostIP+"/24", "dev", l.hostIf)
	sh(t, "ip", "link", "set", l.hostIf, "up")
	l.guard()

	// The nodes: eth0 on the switch, no default route, forwarding on and bridged
	// traffic through netfilter (the service proxy's rules see the pods' bridge).
	for i, n := range l.nodes {
		sh(t, "ip", "netns", "add", n.netns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", n.netns).Run() })
		port := fmt.Sprintf("p%d", i)
		sh(t, "ip", "-n", n.netns, "link", "set", "lo", "up")
		sh(t, "ip", "-n", l.lan, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.netns)
		sh(t, "ip", "-n", l.lan, "link", "set", port, "master", "br0", "up")
		sh(t, "ip", "-n", n.netns, "addr", "add", n.ip+"/24", "dev", "eth0")
		sh(t, "ip", "-n", n.netns, "link", "set", "eth0", "up")
		sh(t, "ip", "netns", "exec", n.netns, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1")
	}
	return l
}

// guard installs, for the test's run, a table in the host's namespace that drops what
// the host would forward from or to the LAN, and whatever the host sends to the
// cluster's and the services' ranges by an interface with a default route.
func (l *netLab) guard() {
	t := l.t
	var outward []string
	for _, line := range strings.Split(sh(t, "ip", "-4", "route", "show", "default"), "\n") {
		f := strings.Fields(line)
		if i := slices.Index(f, "dev"); i >= 0 && i+1 < len(f) && !slices.Contains(outward, f[i+1]) {
			outward = append(outward, `"`+f[i+1]+`"`)
		}
	}
	table := "skn-" + l.id + "-guard"
	rules := fmt.Sprintf(`table inet %s {
	chain forward {
		type filter hook forward priority -400; policy accept;
		iifname %q drop
		oifname %q drop
	}
	chain output {
		type filter hook output priority -400; policy accept;
`, table, l.hostIf, l.hostIf)
	if len(outward) > 0 {
		rules += fmt.Sprintf("\t\toifname { %s } ip daddr { %s, %s } drop\n", strings.Join(outward, ", "), netTestClusterCIDR, netTestServiceCIDR)
	}
	rules += "\t}\n}\n"
	cmd := exec.Command("nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nft -f: %v: %s\n%s", err, out, rules)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("nft", "delete", "table", "inet", table).CombinedOutput(); err != nil {
			t.Errorf("remove the guard: %v: %s", err, out)
		}
	})
}

// prepareNodes makes the nodes' directories and registers, before containerd and
// the kubelets start (so that it runs after they stopped), the cleanup of what they
// may leave: the pods' network namespaces (torn down through CNI in the node's
// namespace), mounts under the directories, the directories, the pods' cgroups.
func (l *netLab) prepareNodes() {
	t := l.t
	dir, err := os.MkdirTemp("", "skn-")
	if err != nil {
		t.Fatal(err)
	}
	l.dir = dir
	t.Cleanup(func() {
		for _, n := range l.nodes {
			l.tearDownPods(n)
		}
		unmountUnder(t, dir)
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("remove %s: %v", dir, err)
		}
	})
	for _, n := range l.nodes {
		n.dir = filepath.Join(dir, n.name)
		containerdtest.RemoveCgroups(t, "/"+n.ctrdNS)
	}
}

// tearDownPods tears down the pod networks a node's kubelet left.
func (l *netLab) tearDownPods(n *labNode) {
	t := l.t
	fd, err := unix.Open("/run/netns/"+n.netns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Logf("node %s: %v", n.name, err)
		return
	}
	defer unix.Close(fd)
	nw, err := cni.New(cni.Config{StateDir: filepath.Join(n.dir, "cni"), NodeNetNS: fd})
	if err != nil {
		t.Logf("node %s: %v", n.name, err)
		return
	}
	uids, err := nw.SetUpPods()
	if err != nil {
		t.Logf("node %s: %v", n.name, err)
	}
	for _, uid := range uids {
		if err := nw.TearDown(context.Background(), uid); err != nil {
			t.Errorf("node %s: tear down pod %s: %v", n.name, uid, err)
		}
	}
}

// unmountUnder unmounts every mount under dir, deepest first.
func unmountUnder(t *testing.T, dir string) {
	if err := detachMounts(dir); err != nil {
		t.Logf("%v", err)
	}
}

// startKubelet starts (or starts again) n's kubelet in n's namespace.
func (l *netLab) startKubelet(n *labNode, name string) {
	n.kubelet = startCommand(l.t, name, exec.Command("nsenter", append([]string{"--net=/run/netns/" + n.netns, "--", filepath.Join(binDir, "skiff")}, n.args...)...))
}

// diagnoseOnFailure logs, when the test fails, each node's links, addresses, routes
// and nftables rules (before the kubelets are stopped).
func (l *netLab) diagnoseOnFailure() {
	l.t.Cleanup(func() {
		if !l.t.Failed() {
			return
		}
		for _, n := range l.nodes {
			var b strings.Builder
			for _, c := range [][]string{{"ip", "-n", n.netns, "-br", "addr"}, {"ip", "-n", n.netns, "route"},
				{"ip", "netns", "exec", n.netns, "nft", "list", "ruleset"}} {
				out, _ := exec.Command(c[0], c[1:]...).CombinedOutput()
				fmt.Fprintf(&b, "$ %s\n%s", strings.Join(c, " "), out)
			}
			l.t.Logf("--- network of node %s ---\n%s", n.name, b.String())
		}
	})
}

// TestNetworkMultiNode runs two nodes on one machine, each a network namespace on a
// LAN the test makes, with its own `skiff kubelet` (containerd, CNI, node routes, the
// service proxy and the cluster DNS), and the API server, controller-manager and
// scheduler as processes: a busybox pod on node A fetches from HTTP server pods on
// node B (two replicas, both on port 80) by pod IP, by cluster IP and by the
// Service's DNS name, and the host reaches them by node port on either node; a Service
// without a selector reaches the pod its user-written Endpoints name. A pod
// that turns not ready leaves the endpoints and traffic stops going to it; a deleted
// pod's endpoint goes terminating (no new connections), then away. A kubelet that
// restarts leaves the other node's pods' networks alone.
func TestNetworkMultiNode(t *testing.T) {
	netTestSkips(t)
	preload := t.TempDir()
	data, err := containerd.BusyboxArchive("/bin/busybox", "docker.io/library/busybox:latest")
	if err != nil {
		t.Skipf("no static busybox to build the test image from: %v", err)
	}
	if err := os.WriteFile(filepath.Join(preload, "busybox.tar"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	l := newNetLab(t, "a", "b")
	l.prepareNodes()
	socket := containerdtest.Start(t)

	ports := freeport.Loopback(t, 2)
	api := fmt.Sprintf("%s:%d", l.hostIP, ports[0])
	raft := fmt.Sprintf("127.0.0.1:%d", ports[1])
	start(t, "apiserver", "apiserver", "--name", "n1", "--data-dir", t.TempDir(), "--listen", api, "--raft-listen", raft,
		"--initial-cluster", "n1="+raft, "--insecure", "--log-level", "warn")
	waitfor.Condition(t, 60*time.Second, "the API server leading", func() (bool, string) {
		out, errs, err := ctl(api, "cluster", "status")
		return err == nil && strings.Contains(out, "leader"), out + errs
	})
	start(t, "controller-manager", "controller-manager", "--server", api, "--log-level", "warn")
	start(t, "scheduler", "scheduler", "--server", api, "--log-level", "warn")
	cc, err := client.Dial([]string{api}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	cs := client.NewClientset(cc)
	ctx := context.Background()

	for _, n := range l.nodes {
		n.args = []string{"kubelet", "--server", api, "--node-name", n.name, "--node-ip", n.ip,
			"--runtime", "containerd", "--containerd-address", socket, "--containerd-namespace", n.ctrdNS,
			"--container-log-dir", filepath.Join(n.dir, "logs"), "--root-dir", filepath.Join(n.dir, "root"), "--preload", preload,
			"--cni", "--cni-state-dir", filepath.Join(n.dir, "cni"), "--node-routes", "--service-proxy",
			"--cluster-dns-listen", n.ip + ":53", "--cluster-dns", "10.43.0.10", "--kubelet-listen", n.ip + ":10250", "--log-level", "warn"}
		l.startKubelet(n, "kubelet "+n.name)
	}
	l.diagnoseOnFailure()
	a, b := l.nodes[0], l.nodes[1]
	cidrs := map[string]netip.Prefix{}
	waitfor.Condition(t, 90*time.Second, "both nodes Ready with a podCIDR", func() (bool, string) {
		list, err := cs.Nodes.List(ctx, "", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var state []string
		for _, nd := range list.Items {
			if p, err := netip.ParsePrefix(nd.Spec.PodCIDR); err == nil && nodeReady(nd) {
				cidrs[nd.Name] = p
			}
			state = append(state, fmt.Sprintf("%s ready=%v podCIDR=%q", nd.Name, nodeReady(nd), nd.Spec.PodCIDR))
		}
		return len(cidrs) == 2, strings.Join(state, "; ")
	})

	mustCtlStdin(t, api, fmt.Sprintf(netTestManifests, b.name, a.name), "apply", "-f", "-")

	// Two replicas of web on node B, both on port 80, each with an address of B's
	// range; the client on node A with one of A's.
	var webs []*corev1.Pod
	waitfor.Condition(t, 3*time.Minute, "two web pods ready on node B and the client running on node A", func() (bool, string) {
		list, err := cs.Pods.List(ctx, "default", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		webs = nil
		var state []string
		clientUp := false
		for _, p := range list.Items {
			ip, _ := netip.ParseAddr(p.Status.PodIP)
			state = append(state, fmt.Sprintf("%s on %s: %s ip=%s ready=%v", p.Name, p.Spec.NodeName, p.Status.Phase, p.Status.PodIP, ready(p)))
			switch {
			case p.Name == "client":
				clientUp = p.Status.Phase == corev1.PodRunning && cidrs[a.name].Contains(ip)
			case p.Labels["app"] == "web" && ready(p) && cidrs[b.name].Contains(ip) && p.Spec.NodeName == b.name:
				webs = append(webs, p)
			}
		}
		return clientUp && len(webs) == 2, strings.Join(state, "; ")
	})
	web1, web2 := webs[0], webs[1]
	if web1.Status.PodIP == web2.Status.PodIP {
		t.Fatalf("two pods share the address %s", web1.Status.PodIP)
	}
	svc, err := cs.Services.Get(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	clusterIP, nodePort := svc.Spec.ClusterIP, svc.Spec.Ports[0].NodePort
	t.Logf("web pods %s (%s) and %s (%s) on %s; Service web %s:80, node port %d",
		web1.Name, web1.Status.PodIP, web2.Name, web2.Status.PodIP, b.name, clusterIP, nodePort)
	endpoints := func() map[string]discoveryv1.EndpointConditions {
		list, err := cs.EndpointSlices.List(ctx, "default", client.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=web"})
		if err != nil {
			return nil
		}
		out := map[string]discoveryv1.EndpointConditions{}
		for _, s := range list.Items {
			for _, e := range s.Endpoints {
				if e.TargetRef != nil {
					out[e.TargetRef.Name] = e.Conditions
				}
			}
		}
		return out
	}
	isTrue := func(b *bool) bool { return b != nil && *b }
	waitfor.Condition(t, 60*time.Second, "both web pods ready endpoints of Service web", func() (bool, string) {
		eps := endpoints()
		return isTrue(eps[web1.Name].Ready) && isTrue(eps[web2.Name].Ready), fmt.Sprint(eps)
	})

	// fetch asks url n times from the client pod on node A, each a new connection;
	// it returns the answers (the serving pods' names; "FAIL" for a failed request).
	// (Debian's static busybox 1.35 wget crashes with -T: timeout bounds it instead.)
	fetch := func(url string, n int) ([]string, error) {
		script := fmt.Sprintf(`i=0; while [ $i -lt %d ]; do timeout 5 wget -qO- %s || echo FAIL; i=$((i+1)); done`, n, url)
		out, errs, err := ctl(api, "exec", "client", "--", "sh", "-c", script)
		if err != nil {
			return nil, fmt.Errorf("%v: %s", err, errs)
		}
		return strings.Fields(out), nil
	}
	// fromHost asks url n times from the host's namespace, each a new connection.
	hc := &http.Client{Timeout: 3 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	fromHost := func(url string, n int) ([]string, error) {
		var out []string
		for range n {
			resp, err := hc.Get(url)
			if err != nil {
				out = append(out, "FAIL")
				continue
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			out = append(out, strings.TrimSpace(string(body)))
		}
		return out, nil
	}
	// spread says whether the answers are all from want's pods, each of them answering.
	spread := func(answers []string, want ...string) bool {
		for _, a := range answers {
			if !slices.Contains(want, a) {
				return false
			}
		}
		for _, w := range want {
			if !slices.Contains(answers, w) {
				return false
			}
		}
		return true
	}
	waitAnswers := func(what string, get func() ([]string, error), want ...string) {
		t.Helper()
		waitfor.Condition(t, 60*time.Second, what, func() (bool, string) {
			answers, err := get()
			if err != nil {
				return false, err.Error()
			}
			return spread(answers, want...), fmt.Sprint(answers)
		})
	}
	byPodIP := func() {
		t.Helper()
		for _, w := range []*corev1.Pod{web1, web2} {
			waitAnswers("the client on node A reaching "+w.Name+" on node B by its pod IP "+w.Status.PodIP,
				func() ([]string, error) { return fetch("http://"+w.Status.PodIP+"/", 1) }, w.Name)
		}
	}
	viaClusterIP := func(want ...string) {
		t.Helper()
		waitAnswers(fmt.Sprintf("the client's requests to the cluster IP %s answered by %v", clusterIP, want),
			func() ([]string, error) { return fetch("http://"+clusterIP+"/", 20) }, want...)
	}
	viaNodePort := func(want ...string) {
		t.Helper()
		for _, n := range l.nodes {
			url := fmt.Sprintf("http://%s:%d/", n.ip, nodePort)
			waitAnswers(fmt.Sprintf("the host's requests to %s's node port (%s) answered by %v", n.name, url, want),
				func() ([]string, error) { return fromHost(url, 20) }, want...)
		}
	}

	byPodIP()
	viaClusterIP(web1.Name, web2.Name)
	viaNodePort(web1.Name, web2.Name)
	// A Service without a selector takes the traffic of the Endpoints a user writes for
	// it: the mirroring controller makes them slices, which the proxies program.
	manual, err := cs.Services.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "manual", Namespace: "default"},
		Spec: corev1.ServiceSpec{Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cs.Endpoints.Create(ctx, &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "manual", Namespace: "default"},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: web2.Status.PodIP}},
			Ports: []corev1.EndpointPort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}}}}); err != nil {
		t.Fatal(err)
	}
	waitAnswers("the client's requests to the selectorless Service manual ("+manual.Spec.ClusterIP+") answered by its Endpoints' "+web2.Name,
		func() ([]string, error) { return fetch("http://"+manual.Spec.ClusterIP+"/", 5) }, web2.Name)
	// By the Service's name: the client's resolv.conf names kube-dns (10.43.0.10),
	// which node A's service proxy leads to node A's cluster DNS.
	if out := mustCtl(t, api, "exec", "client", "--", "cat", "/etc/resolv.conf"); !strings.Contains(out, "nameserver 10.43.0.10\n") ||
		!strings.Contains(out, "search default.svc.cluster.local svc.cluster.local cluster.local") || !strings.Contains(out, "options ndots:5") {
		t.Fatalf("the client's resolv.conf:\n%s", out)
	}
	waitAnswers("the client's requests to web.default.svc.cluster.local answered by both web pods",
		func() ([]string, error) { return fetch("http://web.default.svc.cluster.local/", 20) }, web1.Name, web2.Name)
	waitAnswers("the client's requests to web (the namespace's search path) answered by both web pods",
		func() ([]string, error) { return fetch("http://web/", 20) }, web1.Name, web2.Name)

	// A kubelet that restarts keeps its pods' addresses and tears down no other node's
	// pod networks (the pods' namespaces of both nodes are under /run/netns).
	a.kubelet.stop(t)
	l.startKubelet(a, "kubelet "+a.name+" again")
	waitfor.Condition(t, 60*time.Second, "node A's kubelet back", func() (bool, string) {
		nd, err := cs.Nodes.Get(ctx, "", a.name)
		return err == nil && nodeReady(nd), fmt.Sprint(err)
	})
	byPodIP()
	viaClusterIP(web1.Name, web2.Name)
	if p, err := cs.Pods.Get(ctx, "default", "client"); err != nil || p.Status.PodIP == "" || !cidrs[a.name].Contains(netip.MustParseAddr(p.Status.PodIP)) {
		t.Fatalf("the client after its kubelet restarted: %v %+v", err, p.Status)
	}

	// web1 turns not ready: it leaves the ready endpoints, and traffic stops going to it.
	mustCtl(t, api, "exec", web1.Name, "--", "rm", "/tmp/ready")
	var podNotReady time.Time
	waitfor.Condition(t, 60*time.Second, web1.Name+" not a ready endpoint", func() (bool, string) {
		if p, err := cs.Pods.Get(ctx, "default", web1.Name); podNotReady.IsZero() && err == nil && !ready(p) {
			podNotReady = time.Now()
		}
		eps := endpoints()
		c, ok := eps[web1.Name]
		return ok && !isTrue(c.Ready) && isTrue(eps[web2.Name].Ready), fmt.Sprint(eps)
	})
	if !podNotReady.IsZero() {
		t.Logf("%s left the ready endpoints %v after the test saw it not ready", web1.Name, time.Since(podNotReady).Round(time.Millisecond))
	}
	viaClusterIP(web2.Name)
	viaNodePort(web2.Name)
	mustCtl(t, api, "exec", web1.Name, "--", "touch", "/tmp/ready")
	viaClusterIP(web1.Name, web2.Name)

	// web2 is deleted: its endpoint turns terminating (its preStop hook holds it until
	// the test lets it go), no new connection goes to it, then it goes away.
	mustCtl(t, api, "delete", "pod", web2.Name)
	waitfor.Condition(t, 60*time.Second, web2.Name+"'s endpoint terminating", func() (bool, string) {
		eps := endpoints()
		c := eps[web2.Name]
		return isTrue(c.Terminating) && !isTrue(c.Ready), fmt.Sprint(eps)
	})
	waitfor.Condition(t, 60*time.Second, "no request to the cluster IP going to "+web2.Name+" while it terminates", func() (bool, string) {
		answers, err := fetch("http://"+clusterIP+"/", 20)
		if err != nil {
			return false, err.Error()
		}
		return !slices.Contains(answers, web2.Name) && !slices.Contains(answers, "FAIL"), fmt.Sprint(answers)
	})
	if c := endpoints()[web2.Name]; !isTrue(c.Terminating) {
		t.Fatalf("%s's endpoint no longer terminating after the requests: %+v", web2.Name, c)
	}
	mustCtl(t, api, "exec", web2.Name, "--", "touch", "/tmp/done")
	waitfor.Condition(t, 90*time.Second, web2.Name+"'s endpoint gone", func() (bool, string) {
		eps := endpoints()
		_, ok := eps[web2.Name]
		return eps != nil && !ok, fmt.Sprint(eps)
	})

	// The end: every pod deleted (their preStop hooks let go), the kubelets stopped.
	list, err := cs.Pods.List(ctx, "default", client.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	uids := []types.UID{web2.UID}
	for _, p := range list.Items {
		uids = append(uids, p.UID)
	}
	if c, err := cs.Pods.Get(ctx, "default", "client"); err == nil {
		uids = append(uids, c.UID)
	}
	mustCtl(t, api, "delete", "deployment", "web")
	for _, p := range list.Items {
		ctl(api, "exec", p.Name, "--", "touch", "/tmp/done")
	}
	mustCtl(t, api, "delete", "pod", "client")
	waitfor.Condition(t, 2*time.Minute, "every pod gone", func() (bool, string) {
		list, err := cs.Pods.List(ctx, "default", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var names []string
		for _, p := range list.Items {
			names = append(names, p.Name)
		}
		return len(names) == 0, fmt.Sprint(names)
	})
	for _, n := range l.nodes {
		n.kubelet.stop(t)
	}
	// Every pod's namespace and address released (host-local keeps a file per
	// address in use).
	for _, uid := range uids {
		if _, err := os.Stat("/run/netns/skiff-" + string(uid)); !os.IsNotExist(err) {
			t.Errorf("pod %s's network namespace after the pod went: %v", uid, err)
		}
	}
	for _, n := range l.nodes {
		if reserved, _ := filepath.Glob(filepath.Join(n.dir, "cni", "ipam", "skiff", "10.*")); len(reserved) > 0 {
			t.Errorf("node %s: addresses still reserved after every pod went: %v", n.name, reserved)
		}
	}
}

// netTestManifests: %[1]s is node B, %[2]s node A. web's pods serve their name on
// port 80 while /tmp/ready exists; their preStop hook waits for /tmp/done.
const netTestManifests = `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      nodeSelector: {kubernetes.io/hostname: %[1]s}
      terminationGracePeriodSeconds: 60
      containers:
      - name: httpd
        image: docker.io/library/busybox:latest
        imagePullPolicy: IfNotPresent
        env:
        - name: POD_NAME
          valueFrom: {fieldRef: {fieldPath: metadata.name}}
        command: [sh, -c, 'mkdir -p /www && echo $POD_NAME > /www/index.html && touch /tmp/ready && httpd -p 80 -h /www && trap "exit 0" TERM && while true; do sleep 1; done']
        ports: [{name: http, containerPort: 80}]
        readinessProbe:
          exec: {command: [test, -f, /tmp/ready]}
          periodSeconds: 1
          failureThreshold: 1
        lifecycle:
          preStop:
            exec: {command: [sh, -c, 'while [ ! -f /tmp/done ]; do sleep 1; done']}
---
apiVersion: v1
kind: Service
metadata: {name: web}
spec:
  type: NodePort
  selector: {app: web}
  ports: [{name: http, port: 80, targetPort: http}]
---
apiVersion: v1
kind: Pod
metadata: {name: client}
spec:
  nodeSelector: {kubernetes.io/hostname: %[2]s}
  terminationGracePeriodSeconds: 5
  containers:
  - name: client
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'trap "exit 0" TERM; while true; do sleep 1; done']
`
