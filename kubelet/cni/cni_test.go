package cni_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/cni"
)

// inNS runs f on a thread in the namespace at path; the sockets it makes stay there.
func inNS(t *testing.T, path string, f func() error) error {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		errc <- f()
	}()
	return <-errc
}

func fetch(t *testing.T, from, addr string) (string, error) {
	var body []byte
	err := inNS(t, from, func() error {
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
		body, err = io.ReadAll(c)
		return err
	})
	return string(body), err
}

func serve(t *testing.T, ns, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := inNS(t, ns, func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

func pod(uid string) kubelet.PodRef {
	return kubelet.PodRef{UID: types.UID(uid), Namespace: "default", Name: uid}
}

// TestNetwork: pods get namespaces and addresses of the node's range through the
// reference plugins (run in a node namespace the test makes, so the bridge and every
// packet stay in the test's namespaces): two pods reach each other and the node
// reaches them; a hostPort is forwarded; a torn-down pod's namespace goes; a
// restarted network keeps a live pod's address and never gives it to another.
func TestNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes network namespaces")
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("needs the CNI plugins (apt-get install containernetworking-plugins)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	node := "skcni-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", node).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", node).Run() })
	exec.Command("ip", "-n", node, "link", "set", "lo", "up").Run()
	exec.Command("ip", "netns", "exec", node, "sysctl", "-qw", "net.ipv4.ip_forward=1").Run()
	nodePath := "/run/netns/" + node
	nodeFD, err := unix.Open(nodePath, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(nodeFD) }) // after the pods' tear-downs
	state, nsdir := t.TempDir(), t.TempDir()
	newNet := func() *cni.Network {
		n, err := cni.New(cni.Config{StateDir: state, NetNSDir: nsdir, NodeNetNS: nodeFD})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	ctx := context.Background()
	nw := newNet()
	const cidr = "10.42.3.0/24"
	rangeOf := netip.MustParsePrefix(cidr)
	ips := map[string]string{}
	a := pod("a")
	a.HostPorts = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 18080, Protocol: corev1.ProtocolTCP}}
	for _, p := range []kubelet.PodRef{a, pod("b")} {
		ip, err := nw.SetUp(ctx, p, cidr)
		if err != nil {
			t.Fatal(err)
		}
		addr := netip.MustParseAddr(ip)
		if !rangeOf.Contains(addr) || ip == "10.42.3.1" || ip == "10.42.3.0" {
			t.Fatalf("pod %s got %s, want a host address of %s other than the gateway", p.Name, ip, cidr)
		}
		ips[p.Name] = ip
		t.Cleanup(func() {
			if err := nw.TearDown(ctx, p.UID); err != nil {
				t.Errorf("tear down pod %s: %v", p.Name, err)
			}
		})
	}
	if ips["a"] == ips["b"] {
		t.Fatalf("two pods got one address %s", ips["a"])
	}
	serve(t, nw.NetNSPath("a"), ":8080", "pod a")
	serve(t, nw.NetNSPath("b"), ":8080", "pod b")
	// Pod to pod, node to pod, both binding port 8080 in their own namespaces.
	if body, err := fetch(t, nw.NetNSPath("b"), ips["a"]+":8080"); err != nil || !strings.HasSuffix(body, "pod a") {
		t.Fatalf("pod b to pod a: %q, %v", body, err)
	}
	if body, err := fetch(t, nodePath, ips["b"]+":8080"); err != nil || !strings.HasSuffix(body, "pod b") {
		t.Fatalf("node to pod b: %q, %v", body, err)
	}
	// hostPort: the node's gateway address, port 18080, reaches pod a's 8080, from pod b.
	if body, err := fetch(t, nw.NetNSPath("b"), "10.42.3.1:18080"); err != nil || !strings.HasSuffix(body, "pod a") {
		t.Fatalf("pod a's hostPort 18080 from pod b: %q, %v", body, err)
	}
	// Set up again: the same address.
	if ip, err := nw.SetUp(ctx, pod("b"), cidr); err != nil || ip != ips["b"] {
		t.Fatalf("pod b set up again: %s, %v; want its address %s", ip, err, ips["b"])
	}
	// Torn down: its namespace goes.
	if err := nw.TearDown(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(nw.NetNSPath("b")); !os.IsNotExist(err) {
		t.Fatalf("pod b's namespace after tear-down: %v", err)
	}
	if err := nw.TearDown(ctx, "b"); err != nil {
		t.Fatalf("tear-down twice: %v", err)
	}
	// Nothing of pod b stays in libcni's cache (its network's nor its loopback's).
	if left, _ := filepath.Glob(filepath.Join(state, "cache", "*", "*-b-*")); len(left) != 0 {
		t.Fatalf("pod b's cached CNI results after its tear-down: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(state, "cache", "*", "*-a-*")); len(left) != 2 {
		t.Fatalf("pod a's cached CNI results: %v, want its network's and its loopback's", left)
	}
	// A torn-down pod's hostPort rules go with it (the portmap plugin's chain and the
	// jump to it).
	c := pod("c")
	c.HostPorts = []corev1.ContainerPort{{ContainerPort: 8080, HostPort: 18081, Protocol: corev1.ProtocolTCP}}
	if _, err := nw.SetUp(ctx, c, cidr); err != nil {
		t.Fatal(err)
	}
	nat := func() string {
		out, err := exec.Command("ip", "netns", "exec", node, "iptables", "-t", "nat", "-S").CombinedOutput()
		if err != nil {
			t.Fatalf("iptables: %v: %s", err, out)
		}
		return string(out)
	}
	if !strings.Contains(nat(), "18081") {
		t.Fatalf("pod c's hostPort 18081 not forwarded: %s", nat())
	}
	if err := nw.TearDown(ctx, "c"); err != nil {
		t.Fatal(err)
	}
	if rules := nat(); strings.Contains(rules, "18081") || strings.Contains(rules, `id: \"c\"`) {
		t.Fatalf("pod c's hostPort rules after its tear-down:\n%s", rules)
	}
	// A restarted network: it knows pod a is set up; pod a keeps its address, new
	// pods never get it.
	nw = newNet()
	if uids, err := nw.SetUpPods(); err != nil || len(uids) != 1 || uids[0] != "a" {
		t.Fatalf("set-up pods after a restart: %v, %v; want [a]", uids, err)
	}
	if ip, err := nw.SetUp(ctx, a, cidr); err != nil || ip != ips["a"] {
		t.Fatalf("pod a after a restart: %s, %v; want %s", ip, err, ips["a"])
	}
	for i := range 5 {
		p := pod("n" + string(rune('0'+i)))
		ip, err := nw.SetUp(ctx, p, cidr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := nw.TearDown(ctx, p.UID); err != nil {
				t.Errorf("tear down pod %s: %v", p.Name, err)
			}
		})
		if ip == ips["a"] {
			t.Fatalf("new pod %s got live pod a's address %s", p.Name, ip)
		}
	}
}

// TestNetworkSharesNetNSDir: two kubelets on one machine (two nodes' networks) keep
// their pods' namespaces in one directory, as they do in /run/netns: each lists only
// the pods it set up, so that a kubelet that starts tears down none of the other's.
// A pod whose cached result is lost is still torn down, its address released.
func TestNetworkSharesNetNSDir(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes network namespaces")
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("needs the CNI plugins (apt-get install containernetworking-plugins)")
	}
	nsdir := t.TempDir()
	ctx := context.Background()
	type node struct {
		nw    *cni.Network
		state string
	}
	var nodes []node
	for i, cidr := range []string{"10.42.5.0/24", "10.42.6.0/24"} {
		b := make([]byte, 3)
		rand.Read(b)
		name := "skcni-" + hex.EncodeToString(b)
		if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
		t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
		fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) }) // after the pods' tear-downs
		state := t.TempDir()
		nw, err := cni.New(cni.Config{StateDir: state, NetNSDir: nsdir, NodeNetNS: fd})
		if err != nil {
			t.Fatal(err)
		}
		uid := types.UID([]string{"on-a", "on-b"}[i])
		if _, err := nw.SetUp(ctx, pod(string(uid)), cidr); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if err := nw.TearDown(ctx, uid); err != nil {
				t.Errorf("tear down pod %s: %v", uid, err)
			}
		})
		nodes = append(nodes, node{nw, state})
	}
	for i, want := range []types.UID{"on-a", "on-b"} {
		if uids, err := nodes[i].nw.SetUpPods(); err != nil || len(uids) != 1 || uids[0] != want {
			t.Errorf("node %d's set-up pods: %v, %v; want [%s]", i, uids, err, want)
		}
	}

	// Node b's cached results are lost: its pod is still its own, and torn down.
	if err := os.RemoveAll(filepath.Join(nodes[1].state, "cache")); err != nil {
		t.Fatal(err)
	}
	if uids, err := nodes[1].nw.SetUpPods(); err != nil || len(uids) != 1 || uids[0] != "on-b" {
		t.Fatalf("node b's set-up pods without their cached results: %v, %v; want [on-b]", uids, err)
	}
	if err := nodes[1].nw.TearDown(ctx, "on-b"); err != nil {
		t.Fatalf("tear down without the cached result: %v", err)
	}
	if _, err := os.Stat(nodes[1].nw.NetNSPath("on-b")); !os.IsNotExist(err) {
		t.Errorf("pod on-b's namespace after tear-down: %v", err)
	}
	if uids, err := nodes[1].nw.SetUpPods(); err != nil || len(uids) != 0 {
		t.Errorf("node b's set-up pods after the tear-down: %v, %v; want none", uids, err)
	}
	reserved, _ := filepath.Glob(filepath.Join(nodes[1].state, "ipam", "skiff", "10.42.6.*"))
	if len(reserved) != 0 {
		t.Errorf("addresses still reserved after the tear-down: %v", reserved)
	}
	if _, err := os.Stat(nodes[0].nw.NetNSPath("on-a")); err != nil {
		t.Errorf("node a's pod: %v", err)
	}
}
