package e2e

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/test/waitfor"
	"github.com/skiffhq/skiff/up/daemon"
)

// TestUpPodNetwork: skiff up with containerd, as root, runs the pod network: a pod gets
// an address of its node's podCIDR, its resolv.conf names the kube-dns Service, and a
// lookup through 10.43.0.10 inside the pod is answered by the node's cluster DNS.
//
// skiff up runs in a network namespace of the test's, as a machine would: its bridge,
// nftables table, routes and DNS are there, its only link a veth pair to the test's
// namespace without a default route, so nothing it or its pods send leaves the two.
func TestUpPodNetwork(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, CNI and nftables")
	}
	if err := daemon.Usable(); err != nil {
		t.Skipf("skiff up's private containerd: %v", err)
	}
	for _, f := range []string{"/bin/busybox", "/usr/lib/cni/bridge"} {
		if _, err := os.Stat(f); err != nil {
			t.Skipf("needs %s (busybox-static, containernetworking-plugins)", f)
		}
	}
	ip := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	ns := fmt.Sprintf("skup-%d", os.Getpid())
	hostLink := fmt.Sprintf("skup%d", os.Getpid()%100000)
	ip("netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	ip("link", "add", hostLink, "type", "veth", "peer", "name", "eth0", "netns", ns)
	t.Cleanup(func() { exec.Command("ip", "link", "del", hostLink).Run() })
	ip("addr", "add", "10.97.0.1/30", "dev", hostLink)
	ip("link", "set", hostLink, "up")
	ip("-n", ns, "addr", "add", "10.97.0.2/30", "dev", "eth0")
	ip("-n", ns, "link", "set", "eth0", "up")
	ip("-n", ns, "link", "set", "lo", "up")

	dir, local := upPlace(t, 1)
	_, port, _ := strings.Cut(local, ":")
	addr := "10.97.0.2:" + port
	// nsenter rather than ip netns exec, which mounts a /sys of its own, without the
	// cgroups the containers need.
	dataDir := filepath.Join(dir, "up")
	args := []string{"--net=/run/netns/" + ns, filepath.Join(binDir, "skiff"), "up", "--data-dir", dataDir, "--listen", addr,
		"--node-name", "e2e-net", "--ui-listen", "", "--containerd-address", staleSocket(t, dir)}
	// The pods' namespaces are mounted in skiff up's directory under /run/skiff: none
	// outlives the test.
	sum := sha256.Sum256([]byte(dataDir))
	netnsDir := filepath.Join("/run/skiff", "netns-"+hex.EncodeToString(sum[:6]))
	t.Cleanup(func() {
		left, _ := filepath.Glob(filepath.Join(netnsDir, "*"))
		for _, f := range left {
			syscall.Unmount(f, syscall.MNT_DETACH)
		}
		os.RemoveAll(netnsDir)
	})
	cmd := exec.Command("nsenter", args...)
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	up := &proc{name: "skiff up in " + ns, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { cmd.Wait(); close(up.done) }()
	t.Cleanup(func() {
		up.kill()
		if t.Failed() {
			t.Logf("--- output of skiff up ---\n%s", lastLines(out.String(), 400))
		}
	})
	privateContainerd(t, up)
	waitfor.Condition(t, 60*time.Second, "skiff up says it runs the pod network", func() (bool, string) {
		return strings.Contains(out.String(), "Pod network: pods on bridge cni0") && strings.Contains(out.String(), "pods resolving through kube-dns 10.43.0.10"), out.String()
	})

	var node corev1.Node
	waitfor.Condition(t, 60*time.Second, "the node ready, with a podCIDR", func() (bool, string) {
		o, errs, err := ctl(addr, "get", "node", "e2e-net", "-o", "json")
		if err != nil || json.Unmarshal([]byte(o), &node) != nil {
			return false, o + errs
		}
		return node.Spec.PodCIDR != "", o
	})
	cidr := netip.MustParsePrefix(node.Spec.PodCIDR)

	mustCtlStdin(t, addr, `apiVersion: v1
kind: Pod
metadata: {name: net}
spec:
  containers:
  - name: c
    image: docker.io/library/busybox:latest
    imagePullPolicy: Never
    command: [sleep, "3600"]
`, "apply", "-f", "-")
	t.Cleanup(func() {
		if t.Failed() {
			o, errs, _ := ctl(addr, "describe", "pod", "net")
			t.Logf("--- the pod ---\n%s%s", o, errs)
		}
	})
	var pod corev1.Pod
	waitfor.Condition(t, 90*time.Second, "the pod running with an address of the node's podCIDR", func() (bool, string) {
		o, errs, err := ctl(addr, "get", "pod", "net", "-o", "json")
		if err != nil || json.Unmarshal([]byte(o), &pod) != nil {
			return false, o + errs
		}
		return pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != "", fmt.Sprint(pod.Status.Phase, " ", pod.Status.PodIP)
	})
	if a, err := netip.ParseAddr(pod.Status.PodIP); err != nil || !cidr.Contains(a) || pod.Status.PodIP == "10.97.0.2" {
		t.Fatalf("pod address %s, want one of the node's podCIDR %s", pod.Status.PodIP, cidr)
	}
	conf := mustCtl(t, addr, "exec", "net", "--", "cat", "/etc/resolv.conf")
	if want := "search default.svc.cluster.local svc.cluster.local cluster.local"; !strings.Contains(conf, want) ||
		!strings.Contains(conf, "nameserver 10.43.0.10\n") || !strings.Contains(conf, "options ndots:5") {
		t.Fatalf("the pod's resolv.conf:\n%s\nwant %q, nameserver 10.43.0.10 and options ndots:5", conf, want)
	}
	// The kubernetes Service's name, through kube-dns' cluster IP: the proxy leads it
	// to the node's cluster DNS.
	waitfor.Condition(t, 30*time.Second, "kubernetes.default resolved in the pod", func() (bool, string) {
		o, errs, err := ctl(addr, "exec", "net", "--", "busybox", "nslookup", "kubernetes.default.svc.cluster.local")
		return err == nil && bytes.Contains([]byte(o), []byte("10.43.0.1")), o + errs
	})
	up.stop(t)
}
