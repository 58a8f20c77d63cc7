package proxy_test

import (
	"bufio"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netns is a network namespace the test made, named under /run/netns.
type netns struct {
	name string
}

// newNetns makes a network namespace, deleted when the test ends.
func newNetns(t testing.TB, role string) netns {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	n := netns{name: "skpx-" + role + "-" + hex.EncodeToString(b)}
	run(t, "ip", "netns", "add", n.name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", n.name).Run() })
	n.ip(t, "link set lo up")
	return n
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
}

// ip runs "ip -n NS args".
func (n netns) ip(t testing.TB, args string) {
	t.Helper()
	run(t, "ip", append([]string{"-n", n.name}, strings.Fields(args)...)...)
}

// fd opens the namespace (closed when the test ends).
func (n netns) fd(t testing.TB) int {
	t.Helper()
	fd, err := unix.Open("/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("open netns %s: %v", n.name, err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// do runs f on a thread in the namespace: sockets f makes stay in it.
func (n netns) do(f func() error) error {
	fd, err := unix.Open("/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Unshare(unix.CLONE_FS); err != nil {
			errc <- err
			return
		}
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", n.name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// veth joins a and b with a veth pair named an (in a) and bn (in b).
func veth(t testing.TB, a netns, an string, b netns, bn string) {
	t.Helper()
	tmp := "skpx" + hex.EncodeToString([]byte(an + bn))[:8]
	run(t, "ip", "-n", a.name, "link", "add", an, "type", "veth", "peer", "name", tmp)
	run(t, "ip", "-n", a.name, "link", "set", tmp, "netns", b.name)
	b.ip(t, "link set "+tmp+" name "+bn)
	a.ip(t, "link set "+an+" up")
	b.ip(t, "link set "+bn+" up")
}

// serve answers HTTP in ns on addr with name, until the test ends.
func serve(t testing.TB, ns netns, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := ns.do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("listen in %s: %v", ns.name, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, name) })}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// dial connects from ns to addr.
func dial(ns netns, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.do(func() (err error) {
		c, err = net.DialTimeout("tcp", addr, 3*time.Second)
		return err
	})
	return c, err
}

// ask sends one request on c and returns the body.
func ask(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(3 * time.Second))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}

// get connects from ns to addr, asks once, and closes.
func get(ns netns, addr string) (string, error) {
	c, err := dial(ns, addr)
	if err != nil {
		return "", err
	}
	defer c.Close()
	return ask(c)
}

func requireRoot(t testing.TB) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes network namespaces and nftables rules")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2's ip")
	}
}

// topology is a node (its own namespace) with two pods on a bridge and a client on
// a separate link, as a machine outside the cluster on the node's LAN. No packet
// leaves these namespaces.
type topology struct {
	node, client, pod1, pod2 netns
}

const (
	nodeLAN   = "10.99.0.1"
	clientLAN = "10.99.0.2"
	pod1IP    = "10.42.1.2"
	pod2IP    = "10.42.1.3"
)

func newTopology(t testing.TB) topology {
	requireRoot(t)
	tp := topology{node: newNetns(t, "node"), client: newNetns(t, "cl"), pod1: newNetns(t, "p1"), pod2: newNetns(t, "p2")}
	veth(t, tp.node, "lan0", tp.client, "eth0")
	tp.node.ip(t, "addr add "+nodeLAN+"/24 dev lan0")
	tp.client.ip(t, "addr add "+clientLAN+"/24 dev eth0")
	tp.client.ip(t, "route add default via "+nodeLAN)
	// The node's default route (a Service's cluster IP needs one to be routed before
	// it is translated) is the client: the LAN's router, as far as the test goes.
	tp.node.ip(t, "route add default via "+clientLAN)
	tp.node.ip(t, "link add cni0 type bridge")
	tp.node.ip(t, "addr add 10.42.1.1/24 dev cni0")
	tp.node.ip(t, "link set cni0 up")
	for i, p := range []struct {
		ns netns
		ip string
	}{{tp.pod1, pod1IP}, {tp.pod2, pod2IP}} {
		host := fmt.Sprintf("veth%d", i)
		veth(t, tp.node, host, p.ns, "eth0")
		tp.node.ip(t, "link set "+host+" master cni0")
		// As CNI's bridge plugin with hairpinMode, what Kubernetes uses: a pod
		// reaching itself through a Service gets its packets back on its own port.
		tp.node.ip(t, "link set "+host+" type bridge_slave hairpin on")
		p.ns.ip(t, "addr add "+p.ip+"/24 dev eth0")
		p.ns.ip(t, "route add default via 10.42.1.1")
	}
	// Forwarding, and bridged traffic through netfilter: pod2's answer to pod1, on
	// one bridge, must be translated back like any other (as Kubernetes requires).
	run(t, "ip", "netns", "exec", tp.node.name, "sysctl", "-qw", "net.ipv4.ip_forward=1", "net.bridge.bridge-nf-call-iptables=1")
	serve(t, tp.pod1, ":8080", "pod1")
	serve(t, tp.pod2, ":8080", "pod2")
	return tp
}
