package routes_test

import (
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
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kubelet/routes"
)

// ns is a network namespace the test made.
type ns string

func newNS(t *testing.T, role string) ns {
	t.Helper()
	b := make([]byte, 3)
	rand.Read(b)
	n := ns("skrt-" + role + "-" + hex.EncodeToString(b))
	sh(t, "netns", "add", string(n))
	t.Cleanup(func() { exec.Command("ip", "netns", "del", string(n)).Run() })
	n.ip(t, "link set lo up")
	return n
}

func sh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

func (n ns) ip(t *testing.T, args string) {
	t.Helper()
	sh(t, append([]string{"-n", string(n)}, strings.Fields(args)...)...)
}

func (n ns) fd(t *testing.T) int {
	t.Helper()
	fd, err := unix.Open("/run/netns/"+string(n), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// do runs f on a thread in the namespace; the sockets it makes stay there.
func (n ns) do(t *testing.T, f func() error) error {
	fd := n.fd(t)
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

// link joins a (name an, address aip) and b (bn, bip) with a veth pair.
func link(t *testing.T, a ns, an, aip string, b ns, bn, bip string) {
	t.Helper()
	tmp := fmt.Sprintf("skrt%x", os.Getpid()%0xffff) + bn
	sh(t, "-n", string(a), "link", "add", an, "type", "veth", "peer", "name", tmp)
	sh(t, "-n", string(a), "link", "set", tmp, "netns", string(b))
	b.ip(t, "link set "+tmp+" name "+bn)
	a.ip(t, "addr add "+aip+" dev "+an)
	b.ip(t, "addr add "+bip+" dev "+bn)
	a.ip(t, "link set "+an+" up")
	b.ip(t, "link set "+bn+" up")
}

func node(name, cidr, ip string) *corev1.Node {
	return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.NodeSpec{PodCIDR: cidr},
		Status: corev1.NodeStatus{Addresses: []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: ip}}}}
}

// TestRoutes: two nodes (namespaces on one link, as VMs on a LAN), a pod behind each
// (a namespace on a link of its node's range, the node its gateway): with each node's
// routes to the other's range, a pod reaches the other node's pod by its address;
// without the Node, the route goes. Every packet stays in the test's namespaces.
func TestRoutes(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: makes network namespaces and routes")
	}
	a, b, podA, podB := newNS(t, "a"), newNS(t, "b"), newNS(t, "pa"), newNS(t, "pb")
	link(t, a, "lan0", "10.99.0.1/24", b, "lan0", "10.99.0.2/24")
	link(t, a, "pod0", "10.42.1.1/24", podA, "eth0", "10.42.1.2/24")
	link(t, b, "pod0", "10.42.2.1/24", podB, "eth0", "10.42.2.2/24")
	podA.ip(t, "route add default via 10.42.1.1")
	podB.ip(t, "route add default via 10.42.2.1")
	for _, n := range []ns{a, b} {
		if out, err := exec.Command("ip", "netns", "exec", string(n), "sysctl", "-qw", "net.ipv4.ip_forward=1").CombinedOutput(); err != nil {
			t.Fatalf("%v: %s", err, out)
		}
	}
	var ln net.Listener
	if err := podB.do(t, func() (err error) { ln, err = net.Listen("tcp", "10.42.2.2:8080"); return err }); err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pod b") })}
	go srv.Serve(ln)
	defer srv.Close()
	fetch := func() (string, error) {
		var body []byte
		err := podA.do(t, func() error {
			c, err := net.DialTimeout("tcp", "10.42.2.2:8080", 2*time.Second)
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
	if _, err := fetch(); err == nil {
		t.Fatal("pod a reached pod b without routes")
	}

	nodes := []*corev1.Node{node("a", "10.42.1.0/24", "10.99.0.1"), node("b", "10.42.2.0/24", "10.99.0.2"),
		node("c", "", "10.99.0.3")} // c has no range yet: no route
	ctrl := map[ns]*routes.Controller{}
	for name, n := range map[string]ns{"a": a, "b": b} {
		c, err := routes.New(routes.Config{NodeName: name, NetNS: n.fd(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		ctrl[n] = c
		if err := c.Sync(nodes); err != nil {
			t.Fatal(err)
		}
	}
	if body, err := fetch(); err != nil || !strings.HasSuffix(body, "pod b") {
		t.Fatalf("pod a to pod b with the routes: %q, %v", body, err)
	}
	out, _ := exec.Command("ip", "-n", string(a), "route", "show", "proto", fmt.Sprint(int(routes.Protocol))).CombinedOutput()
	if got := strings.TrimSpace(string(out)); got != "10.42.2.0/24 via 10.99.0.2 dev lan0" {
		t.Fatalf("node a's routes: %q, want only 10.42.2.0/24 via 10.99.0.2", got)
	}
	// Idempotent.
	if err := ctrl[a].Sync(nodes); err != nil {
		t.Fatal(err)
	}
	// Node b gone: its route too; the others' routes (the links' own) stay.
	if err := ctrl[a].Sync(nodes[:1]); err != nil {
		t.Fatal(err)
	}
	out, _ = exec.Command("ip", "-n", string(a), "route", "show").CombinedOutput()
	if strings.Contains(string(out), "10.42.2.0/24") || !strings.Contains(string(out), "10.99.0.0/24 dev lan0") {
		t.Fatalf("node a's routes after node b left:\n%s", out)
	}
	if _, err := fetch(); err == nil {
		t.Fatal("pod a reached pod b after the route went")
	}
}
