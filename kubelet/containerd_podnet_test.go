package kubelet_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/cni"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/test/waitfor"
)

// testContainerdPodNetwork: with the CNI pod network, two pods on one node each bind
// port 80 in a namespace of their own, get addresses of the node's podCIDR in their
// status, and answer on them. The plugins run in a node namespace the test makes (the
// bridge is there), so every packet stays in the test's namespaces.
func testContainerdPodNetwork(e *env, rt *containerd.Runtime) {
	t := e.t
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		t.Skip("needs the CNI plugins (apt-get install containernetworking-plugins)")
	}
	b := make([]byte, 3)
	rand.Read(b)
	node := "skpn-" + hex.EncodeToString(b)
	if out, err := exec.Command("ip", "netns", "add", node).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", node).Run() })
	nodeFD, err := unix.Open("/run/netns/"+node, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(nodeFD) })
	nsdir := t.TempDir()
	nw, err := cni.New(cni.Config{StateDir: t.TempDir(), NetNSDir: nsdir, NodeNetNS: nodeFD})
	if err != nil {
		t.Fatal(err)
	}
	// Once the kubelet has stopped (its cleanup runs first), the pods' namespaces it
	// did not tear down yet go.
	t.Cleanup(func() {
		entries, _ := os.ReadDir(nsdir)
		for _, de := range entries {
			if uid, ok := strings.CutPrefix(de.Name(), "skiff-"); ok {
				if err := nw.TearDown(context.Background(), types.UID(uid)); err != nil {
					t.Errorf("tear down pod %s: %v", uid, err)
				}
			}
		}
	})
	// The stream server, for port-forward.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ls := kubelet.NewLogServer(nil)
	ls.Register(e.node, rt)
	done := make(chan error, 1)
	go func() { done <- ls.Serve(e.ctx, ln, nil) }()
	t.Cleanup(func() { <-done })
	cfg := testConfig(e.node)
	cfg.PodNetwork = nw
	cfg.NodeIP, cfg.LogPort = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	e.start(rt, cfg)
	waitfor.Condition(t, time.Minute, "the node registered and given a range", func() (bool, string) {
		n, err := e.cs.Nodes.Get(e.ctx, "", e.node)
		if err != nil {
			return false, err.Error() // not registered yet
		}
		n.Spec.PodCIDR = "10.42.4.0/24"
		if _, err = e.cs.Nodes.Update(e.ctx, n); err != nil {
			return false, err.Error() // a conflict with the kubelet's own write: again
		}
		return true, ""
	})
	for _, name := range []string{"web-1", "web-2"} {
		if _, err := e.cs.Pods.Create(e.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
			Spec: corev1.PodSpec{NodeName: e.node, Containers: []corev1.Container{{Name: "main", Image: busyboxImage,
				Command: []string{"sh", "-c", "mkdir -p /tmp/www && echo " + name + " > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www"}}}},
		}); err != nil {
			t.Fatal(err)
		}
	}
	ips := map[string]string{}
	for _, name := range []string{"web-1", "web-2"} {
		p := e.waitPod(name, "Running with an address of 10.42.4.0/24", func(p *corev1.Pod) bool {
			ip, err := netip.ParseAddr(p.Status.PodIP)
			return p.Status.Phase == corev1.PodRunning && err == nil && netip.MustParsePrefix("10.42.4.0/24").Contains(ip) &&
				len(p.Status.PodIPs) == 1 && p.Status.PodIPs[0].IP == p.Status.PodIP
		})
		ips[name] = p.Status.PodIP
	}
	if ips["web-1"] == ips["web-2"] {
		t.Fatalf("two pods share the address %s", ips["web-1"])
	}
	for name, ip := range ips {
		waitfor.Condition(t, 30*time.Second, name+" answering on "+ip+":80", func() (bool, string) {
			body, err := fetchIn("/run/netns/"+node, ip+":80")
			if err != nil {
				return false, err.Error()
			}
			return strings.Contains(body, name), body
		})
	}
	// Port-forward reaches each pod's own port 80 (on its namespace's loopback),
	// and a hostNetwork pod's port on the node's loopback.
	for _, name := range []string{"web-1", "web-2"} {
		got, err := portForwardGet(e, name, 80)
		if err != nil || !strings.HasSuffix(got, "\r\n\r\n"+name+"\n") {
			t.Errorf("port-forward to %s:80: %q, %v; want its own index page", name, got, err)
		}
	}
	e.createPod("host", e.node, "", busyboxImage, "sh", "-c",
		"mkdir -p /tmp/www && echo host > /tmp/www/index.html && exec httpd -f -p 127.0.0.1:0 -h /tmp/www")
	e.waitPod("host", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	hostPort := listeningPort(e, "host")
	waitfor.Condition(t, 30*time.Second, "port-forward to the hostNetwork pod", func() (bool, string) {
		got, err := portForwardGet(e, "host", hostPort)
		if err != nil {
			return false, err.Error() // httpd not listening yet
		}
		return strings.HasSuffix(got, "\r\n\r\nhost\n"), got
	})
}

// portForwardGet asks pod's port for its index page through port-forward.
func portForwardGet(e *env, pod string, port int) (string, error) {
	fc, err := e.cs.Conn.PortForward(e.ctx, e.ns, pod, port)
	if err != nil {
		return "", err
	}
	defer fc.Close()
	if _, err := io.WriteString(fc, "GET /index.html HTTP/1.0\r\n\r\n"); err != nil {
		return "", err
	}
	b, err := io.ReadAll(fc)
	return string(b), err
}

// fetchIn asks addr for / from the network namespace at path.
func fetchIn(path, addr string) (string, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(fd)
	type result struct {
		body string
		err  error
	}
	rc := make(chan result, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			rc <- result{err: err}
			return
		}
		c, err := net.DialTimeout("tcp", addr, 2*time.Second)
		if err != nil {
			rc <- result{err: err}
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(2 * time.Second))
		io.WriteString(c, "GET / HTTP/1.0\r\n\r\n")
		b, err := io.ReadAll(c)
		rc <- result{string(b), err}
	}()
	r := <-rc
	return r.body, r.err
}
