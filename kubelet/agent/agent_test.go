package agent_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/miekg/dns"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet/agent"
	"github.com/skiffhq/skiff/kubelet/routes"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func TestValidate(t *testing.T) {
	if err := agent.DefaultConfig().Validate(); err != nil {
		t.Fatalf("the default config is invalid: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*agent.Config)
		want   string
	}{
		{"unknown runtime", func(c *agent.Config) { c.Runtime = "docker" }, `--runtime: Unsupported value: "docker": supported values: containerd, sim`},
		{"negative sim nodes", func(c *agent.Config) { c.Runtime, c.SimNodes = agent.RuntimeSim, -1 }, "--sim-nodes: -1 must not be negative"},
		{"no log server address", func(c *agent.Config) { c.LogListen = "" }, "--kubelet-listen: must be set (none: no log server)"},
		{"no logger", func(c *agent.Config) { c.Logger = nil }, "logger: must be set"},
		{"cni with sim", func(c *agent.Config) { c.Runtime, c.CNI = agent.RuntimeSim, true }, "--cni: the CNI pod network is for the containerd runtime (--runtime sim has --sim-pod-network)"},
		{"zones for one node", func(c *agent.Config) { c.Zones = []string{"a", "b"} }, "--zone: a node is in one zone; 2 are for several simulated nodes (--sim-nodes)"},
		{"bad zone", func(c *agent.Config) { c.Zones = []string{"a b"} }, `--zone "a b": a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := agent.DefaultConfig()
			tc.change(&c)
			if err := c.Validate(); err == nil || err.Error() != tc.want {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// cluster starts an API server for the test and connects to it.
func cluster(t *testing.T) *client.Clientset {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return client.NewClientset(conn)
}

// testConfig is an agent of one node, name, on the simulated runtime, without a log
// server, its kubelet's root a directory of the test's (not the host's
// /var/lib/skiff/kubelet, which other tests and a real node share).
func testConfig(t testing.TB, name string) agent.Config {
	cfg := agent.DefaultConfig()
	cfg.Runtime, cfg.LogListen = agent.RuntimeSim, agent.NoLogServer
	cfg.Kubelet.NodeName, cfg.Kubelet.NodeIP, cfg.Kubelet.RootDir = name, "127.0.0.1", t.TempDir()
	return cfg
}

// simConfig is testConfig's agent running n simulated nodes named name-0 … instead.
func simConfig(t testing.TB, name string, n int) agent.Config {
	cfg := testConfig(t, name)
	cfg.SimNodes = n
	return cfg
}

// TestRunSimNodes runs three simulated nodes in one agent: they register under their
// numbered names, each publishing the one log server's port, and stop with the context.
func TestRunSimNodes(t *testing.T) {
	cs := cluster(t)
	cfg := simConfig(t, "sim", 3)
	cfg.LogListen = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, cs, cfg) }()
	defer func() { cancel(); <-done }()

	waitfor.Condition(t, time.Minute, "three simulated nodes, sharing one log server", func() (bool, string) {
		l, err := cs.Nodes.List(ctx, "", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var names []string
		ports := map[int32]bool{}
		for _, n := range l.Items {
			names = append(names, n.Name)
			ports[n.Status.DaemonEndpoints.KubeletEndpoint.Port] = true
		}
		slices.Sort(names)
		return slices.Equal(names, []string{"sim-0", "sim-1", "sim-2"}) && len(ports) == 1 && !ports[0],
			fmt.Sprintf("nodes %s, log ports %v", strings.Join(names, ","), ports)
	})
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run returned %v once stopped", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of its context ending")
	}
	done <- nil // for the deferred wait
}

// TestSimNodesAsThemselves: in a TLS cluster each simulated node connects with its own
// kubelet certificate (NodeClient), and the node authorizer lets each register only
// itself: the agent's own connection, as another node, could register none of them.
func TestSimNodesAsThemselves(t *testing.T) {
	certs := apicluster.Certs(t, "other", "sim-0", "sim-1", "sim-2")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: certs})
	admin := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	cfg := simConfig(t, "sim", 3)
	cfg.NodeClient = func(node string) (*client.Clientset, error) {
		return client.NewClientset(c.Dial(t, "kubelet-"+node, client.Options{})), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, client.NewClientset(c.Dial(t, "kubelet-other", client.Options{})), cfg) }()
	defer func() { cancel(); <-done }()
	waitfor.Condition(t, time.Minute, "three simulated nodes registered", func() (bool, string) {
		l, err := admin.Nodes.List(ctx, "", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var names []string
		for _, n := range l.Items {
			names = append(names, n.Name)
		}
		slices.Sort(names)
		return slices.Equal(names, []string{"sim-0", "sim-1", "sim-2"}), strings.Join(names, ",")
	})
}

// TestRunRefusesABadKubeletConfig: a kubelet that cannot be made fails Run at once.
func TestRunRefusesABadKubeletConfig(t *testing.T) {
	cfg := testConfig(t, "Not_A_Name")
	err := agent.Run(context.Background(), nil, cfg)
	if err == nil || !strings.Contains(err.Error(), `nodeName "Not_A_Name"`) {
		t.Fatalf("error %v, want the node name refused", err)
	}
}

// TestSimNodesInZones: simulated nodes take the zones given in turn, and advertise the
// extended resources of the kubelet's configuration.
func TestSimNodesInZones(t *testing.T) {
	cs := cluster(t)
	cfg := simConfig(t, "zoned", 3)
	cfg.Kubelet.Labels = map[string]string{"disktype": "ssd"}
	cfg.Kubelet.Capacity = map[string]string{"cpu": "4", "memory": "4Gi", "pods": "110", "example.com/dongle": "2"}
	cfg.Zones = []string{"zone-a", "zone-b"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, cs, cfg) }()
	defer func() { cancel(); <-done }()

	want := map[string]string{"zoned-0": "zone-a", "zoned-1": "zone-b", "zoned-2": "zone-a"}
	waitfor.Condition(t, time.Minute, "three nodes in their zones, with two dongles each", func() (bool, string) {
		l, err := cs.Nodes.List(ctx, "", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		var wrong []string
		for name, zone := range want {
			i := slices.IndexFunc(l.Items, func(n *corev1.Node) bool { return n.Name == name })
			if i < 0 {
				wrong = append(wrong, name+" missing")
				continue
			}
			n := l.Items[i]
			d := n.Status.Allocatable["example.com/dongle"]
			if n.Labels[corev1.LabelTopologyZone] != zone || n.Labels[corev1.LabelHostname] != name || n.Labels["disktype"] != "ssd" || d.String() != "2" {
				wrong = append(wrong, fmt.Sprintf("%s: labels %v, dongles %s", name, n.Labels, d.String()))
			}
		}
		return len(wrong) == 0, strings.Join(wrong, "; ")
	})
}

// TestClusterDNS: the agent serves the cluster DNS, reading Services as its node (the
// node authorizer lets it), on the address given, over UDP and TCP.
func TestClusterDNS(t *testing.T) {
	certs := apicluster.Certs(t, "dns")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: certs})
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := pc.LocalAddr().String()
	pc.Close() // a free port, for the agent
	cfg := testConfig(t, "dns")
	cfg.ClusterDNSListen, cfg.Kubelet.ClusterDomain = addr, "cluster.local"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, client.NewClientset(c.Dial(t, "kubelet-dns", client.Options{})), cfg) }()
	defer func() { cancel(); <-done }()
	for _, network := range []string{"udp", "tcp"} {
		waitfor.Condition(t, time.Minute, "kubernetes.default answered over "+network, func() (bool, string) {
			m := new(dns.Msg)
			m.SetQuestion("kubernetes.default.svc.cluster.local.", dns.TypeA)
			in, _, err := (&dns.Client{Net: network, Timeout: time.Second}).Exchange(m, addr)
			if err != nil {
				return false, err.Error()
			}
			return len(in.Answer) == 1 && in.Answer[0].(*dns.A).A.String() == "10.43.0.1", in.String()
		})
	}
}

// TestSimPodNetwork: with SimPodNetwork, a simulated node's pods get addresses of the
// node's podCIDR.
func TestSimPodNetwork(t *testing.T) {
	cs := cluster(t)
	cfg := simConfig(t, "simnet", 0)
	cfg.SimPodNetwork = true
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, cs, cfg) }()
	defer func() { cancel(); <-done }()
	// The node IPAM's part: the node gets a range.
	waitfor.Condition(t, time.Minute, "the node registered and given a range", func() (bool, string) {
		n, err := cs.Nodes.Get(ctx, "", "simnet")
		if err != nil {
			return false, err.Error() // not registered yet
		}
		n.Spec.PodCIDR = "10.42.5.0/24"
		if _, err = cs.Nodes.Update(ctx, n); err != nil {
			return false, err.Error() // a conflict with the kubelet's own write: again
		}
		return true, ""
	})
	if _, err := cs.Pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"},
		Spec: corev1.PodSpec{NodeName: "simnet", Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "the pod running at an address of 10.42.5.0/24", func() (bool, string) {
		p, err := cs.Pods.Get(ctx, "default", "p")
		if err != nil {
			return false, err.Error()
		}
		return p.Status.Phase == corev1.PodRunning && strings.HasPrefix(p.Status.PodIP, "10.42.5."), p.Status.PodIP
	})
}

// TestServiceProxy: the agent's service proxy, reading Services and EndpointSlices as
// its node, translates a Service's cluster IP to its endpoint. It programs a network
// namespace the test makes (an endpoint on a veth pair within it, its only route), so that
// nothing reaches the host's rules or interfaces.
func TestServiceProxy(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a network namespace and nftables rules")
	}
	ns := fmt.Sprintf("skagent-%d", os.Getpid())
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
	}
	sh("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh("-n", ns, "link", "set", "lo", "up")
	sh("-n", ns, "link", "add", "ep0", "type", "veth", "peer", "name", "ep1")
	sh("-n", ns, "addr", "add", "10.42.9.2/24", "dev", "ep0")
	sh("-n", ns, "link", "set", "ep0", "up")
	sh("-n", ns, "link", "set", "ep1", "up")
	sh("-n", ns, "route", "add", "default", "dev", "ep1")
	nsfd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nsfd)
	// inNS runs f on a thread in the namespace; the sockets it makes stay there.
	inNS := func(f func() error) error {
		errc := make(chan error, 1)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
			if err := unix.Setns(nsfd, unix.CLONE_NEWNET); err != nil {
				errc <- err
				return
			}
			errc <- f()
		}()
		return <-errc
	}
	var ln net.Listener
	if err := inNS(func() (err error) { ln, err = net.Listen("tcp", "10.42.9.2:8080"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "web") })}
	go srv.Serve(ln)
	defer srv.Close()

	certs := apicluster.Certs(t, "px")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: certs})
	admin := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if _, err := admin.Services.Create(ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.77", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.EndpointSlices.Create(ctx, &discoveryv1.EndpointSlice{
		ObjectMeta:  metav1.ObjectMeta{Name: "web-1", Namespace: "default", Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{"10.42.9.2"}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](8080)}},
	}); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "px")
	cfg.ServiceProxy, cfg.ServiceProxyNetNS, cfg.ClusterCIDR = true, nsfd, "10.42.0.0/16"
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, client.NewClientset(c.Dial(t, "kubelet-px", client.Options{})), cfg) }()
	waitfor.Condition(t, time.Minute, "web's cluster IP answered by its endpoint", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("the agent stopped: %v", err)
		default:
		}
		var body []byte
		err := inNS(func() error {
			conn, err := net.DialTimeout("tcp", "10.43.0.77:80", time.Second)
			if err != nil {
				return err
			}
			defer conn.Close()
			conn.SetDeadline(time.Now().Add(2 * time.Second))
			io.WriteString(conn, "GET / HTTP/1.0\r\n\r\n")
			body, err = io.ReadAll(conn)
			return err
		})
		if err != nil {
			return false, err.Error()
		}
		return strings.HasSuffix(string(body), "web"), string(body)
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Stopped, the proxy removed its table.
	if out, _ := exec.Command("ip", "netns", "exec", ns, "nft", "list", "tables").CombinedOutput(); strings.Contains(string(out), "skiff-proxy") {
		t.Fatalf("the proxy's table is left after it stopped: %s", out)
	}
}

// TestNodeRoutes: the agent, reading the Nodes as its node (the node authorizer lets
// it), routes another node's podCIDR via that node's InternalIP, in a network
// namespace the test makes (its only link a veth pair inside it), and drops the route
// when that Node goes.
func TestNodeRoutes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes a network namespace and routes")
	}
	ns := fmt.Sprintf("skroutes-%d", os.Getpid())
	sh := func(args ...string) string {
		t.Helper()
		out, err := exec.Command("ip", args...).CombinedOutput()
		if err != nil {
			t.Fatalf("ip %v: %v: %s", args, err, out)
		}
		return string(out)
	}
	sh("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	sh("-n", ns, "link", "add", "lan0", "type", "veth", "peer", "name", "lan1")
	sh("-n", ns, "addr", "add", "10.99.0.1/24", "dev", "lan0")
	sh("-n", ns, "link", "set", "lan0", "up")
	sh("-n", ns, "link", "set", "lan1", "up")
	nsfd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(nsfd)

	certs := apicluster.Certs(t, "rt")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: certs})
	admin := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	other, err := admin.Nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "other"}, Spec: corev1.NodeSpec{PodCIDR: "10.42.7.0/24"}})
	if err != nil {
		t.Fatal(err)
	}
	other.Status.Addresses = []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "10.99.0.5"}}
	if _, err := admin.Nodes.UpdateStatus(ctx, other); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(t, "rt")
	cfg.NodeRoutes, cfg.NodeRoutesNetNS = true, nsfd
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, client.NewClientset(c.Dial(t, "kubelet-rt", client.Options{})), cfg) }()
	routesNow := func() string { return sh("-n", ns, "route", "show", "proto", fmt.Sprint(int(routes.Protocol))) }
	waitfor.Condition(t, time.Minute, "the route to node other's pods", func() (bool, string) {
		select {
		case err := <-done:
			t.Fatalf("the agent stopped: %v", err)
		default:
		}
		got := routesNow()
		return strings.TrimSpace(got) == "10.42.7.0/24 via 10.99.0.5 dev lan0", got
	})
	if _, err := admin.Nodes.Delete(ctx, "", "other", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "the route gone with node other", func() (bool, string) {
		got := routesNow()
		return strings.TrimSpace(got) == "", got
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestSimNodesShareServices: the simulated nodes of one agent hold one watch of Services
// between them (for their pods' service variables), not one each.
func TestSimNodesShareServices(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	cfg := simConfig(t, "shared", 5)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, cs, cfg) }()
	defer func() { cancel(); <-done }()
	watches := func(kind string) float64 {
		mfs, err := c.Server(0).Gatherer().Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() != "skiff_apiserver_watches" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, l := range m.GetLabel() {
					if l.GetName() == "kind" && l.GetValue() == kind {
						return m.GetGauge().GetValue()
					}
				}
			}
		}
		return 0
	}
	waitfor.Condition(t, time.Minute, "five nodes Ready, each watching its pods", func() (bool, string) {
		l, err := cs.Nodes.List(ctx, "", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := 0
		for _, n := range l.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == "Ready" && cond.Status == "True" {
					ready++
				}
			}
		}
		return ready == 5 && watches("Pod") >= 5, fmt.Sprintf("%d Ready, %v watches of pods", ready, watches("Pod"))
	})
	if n := watches("Service"); n != 1 {
		t.Fatalf("%v watches of Services for five simulated nodes, want one shared", n)
	}
}

// TestLocalDNS: the kube-dns Service leads to the node's cluster DNS on the address
// it listens on, the node's address when it listens on all; pods cannot reach a
// loopback address or a port picked at random.
func TestLocalDNS(t *testing.T) {
	for _, tc := range []struct{ listen, want, err string }{
		{listen: "10.0.0.5:53", want: "10.0.0.5:53"},
		{listen: ":53", want: "192.168.1.7:53"},
		{listen: "0.0.0.0:5353", want: "192.168.1.7:5353"},
		{listen: "127.0.0.1:53", err: `--cluster-dns-listen "127.0.0.1:53": pods cannot reach 127.0.0.1: listen on the node's IPv4 address (or on every address)`},
		{listen: "10.0.0.5:0", err: `--cluster-dns-listen "10.0.0.5:0": the cluster DNS needs a port of its own (53) for pods to reach it through the kube-dns Service`},
		{listen: "dns.example:53", err: `--cluster-dns-listen "dns.example:53": not an IP address and port`},
	} {
		got, err := agent.LocalDNS(tc.listen, "192.168.1.7")
		switch {
		case tc.err != "" && (err == nil || err.Error() != tc.err):
			t.Errorf("%s: %v, %v; want error %q", tc.listen, got, err, tc.err)
		case tc.err == "" && (err != nil || got.String() != tc.want):
			t.Errorf("%s: %v, %v; want %s", tc.listen, got, err, tc.want)
		}
	}
}
