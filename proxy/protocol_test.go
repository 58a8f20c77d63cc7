package proxy_test

import (
	"errors"
	"net"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"
)

// serveUDP answers every datagram to addr in ns with name, until the test ends.
func serveUDP(t testing.TB, ns netns, addr, name string) {
	t.Helper()
	var pc net.PacketConn
	if err := ns.do(func() (err error) { pc, err = net.ListenPacket("udp", addr); return err }); err != nil {
		t.Fatalf("listen udp in %s: %v", ns.name, err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 512)
		for {
			_, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo([]byte(name), from)
		}
	}()
}

// udpConn is a UDP socket of ns connected to addr: every datagram it sends has the
// same source port, so one conntrack entry carries them all.
func udpConn(t testing.TB, ns netns, addr string) net.Conn {
	t.Helper()
	var c net.Conn
	if err := ns.do(func() (err error) { c, err = net.Dial("udp", addr); return err }); err != nil {
		t.Fatalf("dial udp %s from %s: %v", addr, ns.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// askUDP sends one datagram on c and returns the answer.
func askUDP(c net.Conn) (string, error) {
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("hostName")); err != nil {
		return "", err
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	return string(buf[:n]), err
}

// multiprotocol is the Service of Kubernetes' conformance test "should serve
// endpoints on same port and different protocols": port 80 over TCP and UDP, to
// port 8080 of the pods, ports picked by name.
func multiprotocol(ports ...string) (*corev1.Service, *discoveryv1.EndpointSlice) {
	svc := service("multi", clusterIP, false)
	svc.Spec.Type = corev1.ServiceTypeClusterIP
	svc.Spec.Ports = nil
	es := slice("multi", ready1)
	es.Ports = nil
	for _, name := range ports {
		proto := corev1.ProtocolTCP
		if name == "udp" {
			proto = corev1.ProtocolUDP
		}
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: name, Protocol: proto, Port: 80, TargetPort: intstr.FromInt32(8080)})
		es.Ports = append(es.Ports, discoveryv1.EndpointPort{Name: ptr.To(name), Protocol: ptr.To(proto), Port: ptr.To[int32](8080)})
	}
	return svc, es
}

// TestProxyProtocolRemoved: a Service port whose protocol leaves the Service is
// refused on the cluster IP at once, as kube-proxy's cluster-ips-check does, rather
// than sent untranslated to the node's default route. The test's default router
// (the client's namespace) answers port 80 of the cluster IP, as a network that
// intercepts port 80 does (the conformance run's): without the refusal, a TCP
// connection to the Service's removed TCP port succeeds there.
func TestProxyProtocolRemoved(t *testing.T) {
	tp := newTopology(t)
	serveUDP(t, tp.pod1, ":8080", "pod1")
	tp.client.ip(t, "addr add "+clusterIP+"/32 dev lo")
	serve(t, tp.client, clusterIP+":80", "outside")
	p := newProxier(t, tp)
	defer p.Cleanup()
	cip := clusterIP + ":80"

	both, es := multiprotocol("tcp", "udp")
	sync(t, p, []*corev1.Service{both}, es)
	for _, ns := range []netns{tp.pod2, tp.node} {
		if got := hits(t, ns, cip, 3); got["pod1"] != 3 {
			t.Fatalf("TCP from %s with both ports: %v", ns.name, got)
		}
		if got, err := askUDP(udpConn(t, ns, cip)); err != nil || got != "pod1" {
			t.Fatalf("UDP from %s with both ports: %q, %v", ns.name, got, err)
		}
	}

	udp, es := multiprotocol("udp")
	sync(t, p, []*corev1.Service{udp}, es)
	for _, ns := range []netns{tp.pod2, tp.node} {
		if got, err := askUDP(udpConn(t, ns, cip)); err != nil || got != "pod1" {
			t.Fatalf("UDP from %s with the UDP port alone: %q, %v", ns.name, got, err)
		}
		if body, err := get(ns, cip); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("TCP from %s to the removed TCP port: %q, %v; want connection refused", ns.name, body, err)
		}
	}

	tcp, es := multiprotocol("tcp")
	sync(t, p, []*corev1.Service{tcp}, es)
	if got := hits(t, tp.pod2, cip, 3); got["pod1"] != 3 {
		t.Fatalf("TCP with the TCP port alone: %v", got)
	}
	if got, err := askUDP(udpConn(t, tp.pod2, cip)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("UDP to the removed UDP port: %q, %v; want connection refused", got, err)
	}
}

// TestProxyUDPConntrack: a UDP flow (one socket, one source port, one conntrack
// entry) follows the Service: when its endpoint leaves, the stale conntrack entry is
// deleted and the next datagram goes to the endpoint there is now; when the port
// leaves the Service, the next datagram is refused. Without the deletion the entry's
// translation outlives both (as long as datagrams keep it alive).
func TestProxyUDPConntrack(t *testing.T) {
	tp := newTopology(t)
	serveUDP(t, tp.pod1, ":8080", "pod1")
	serveUDP(t, tp.pod2, ":8080", "pod2")
	p := newProxier(t, tp)
	defer p.Cleanup()
	cip := clusterIP + ":80"

	svc, es := multiprotocol("udp")
	sync(t, p, []*corev1.Service{svc}, es)
	c := udpConn(t, tp.node, cip)
	if got, err := askUDP(c); err != nil || got != "pod1" {
		t.Fatalf("UDP to pod1: %q, %v", got, err)
	}
	moved := es.DeepCopy()
	moved.Endpoints[0].Addresses = []string{pod2IP}
	sync(t, p, []*corev1.Service{svc}, moved)
	if got, err := askUDP(c); err != nil || got != "pod2" {
		t.Fatalf("the same flow after its endpoint moved to pod2: %q, %v; want pod2", got, err)
	}
	if got, err := askUDP(udpConn(t, tp.node, cip)); err != nil || got != "pod2" {
		t.Fatalf("a new flow after the endpoint moved to pod2: %q, %v", got, err)
	}

	tcp, tes := multiprotocol("tcp")
	tes.Endpoints[0].Addresses = []string{pod2IP}
	sync(t, p, []*corev1.Service{tcp}, tes)
	// The node's own datagram is rejected in the output hook: the write fails.
	if got, err := askUDP(c); !errors.Is(err, syscall.ECONNREFUSED) && !errors.Is(err, syscall.EPERM) {
		t.Fatalf("the same flow after the UDP port left the Service: %q, %v; want it refused", got, err)
	}
}
