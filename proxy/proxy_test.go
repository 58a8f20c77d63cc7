package proxy_test

import (
	"errors"
	"fmt"
	"maps"
	"net"
	"syscall"
	"testing"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/proxy"
)

const (
	clusterIP = "10.43.0.50"
	nodePort  = 30080
)

func service(name, ip string, affinity bool) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeNodePort, ClusterIP: ip, ClusterIPs: []string{ip},
			Ports: []corev1.ServicePort{{Name: "http", Protocol: corev1.ProtocolTCP, Port: 80,
				TargetPort: intstr.FromInt32(8080), NodePort: nodePort}}}}
	if affinity {
		svc.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	}
	return svc
}

type ep struct {
	ip                          string
	ready, serving, terminating bool
}

func slice(svc string, eps ...ep) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: svc + "-abc", Namespace: "default",
		Labels: map[string]string{discoveryv1.LabelServiceName: svc}},
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("http"), Protocol: ptr.To(corev1.ProtocolTCP), Port: ptr.To[int32](8080)}}}
	for _, e := range eps {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{e.ip},
			Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(e.ready), Serving: ptr.To(e.serving), Terminating: ptr.To(e.terminating)}})
	}
	return es
}

var (
	ready1 = ep{ip: pod1IP, ready: true, serving: true}
	ready2 = ep{ip: pod2IP, ready: true, serving: true}
)

// hits asks addr n times from ns, each on a new connection, and counts the answers.
func hits(t *testing.T, ns netns, addr string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		body, err := get(ns, addr)
		if err != nil {
			t.Fatalf("GET %s from %s: %v", addr, ns.name, err)
		}
		got[body]++
	}
	return got
}

func newProxier(t *testing.T, tp topology) *proxy.Proxier {
	t.Helper()
	p, err := proxy.New(proxy.Config{ClusterCIDR: "10.42.0.0/16", NetNS: tp.node.fd(t)})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func sync(t *testing.T, p *proxy.Proxier, svcs []*corev1.Service, eps ...*discoveryv1.EndpointSlice) {
	t.Helper()
	if err := p.Sync(svcs, eps); err != nil {
		t.Fatal(err)
	}
}

// TestProxy: connections to a cluster IP (from outside the node, from the node
// itself, from a pod) and to a node port reach the ready endpoints, at random; an
// endpoint that turns not ready gets no new connection; a terminating one drains
// (its open connection goes on, new ones go elsewhere); a Service without endpoints
// refuses connections; a removed Service is no longer translated.
func TestProxy(t *testing.T) {
	tp := newTopology(t)
	p := newProxier(t, tp)
	web := []*corev1.Service{service("web", clusterIP, false)}
	cip := clusterIP + ":80"

	sync(t, p, web, slice("web", ready1, ready2))
	if st := p.Stats(); !st.Full || st.ServicePortsWritten != 1 {
		t.Fatalf("first sync: %+v, want a full sync writing 1 service port", st)
	}
	if got := hits(t, tp.client, cip, 40); got["pod1"] == 0 || got["pod2"] == 0 || len(got) != 2 {
		t.Fatalf("cluster IP from the client: %v, want both pods", got)
	}
	if got := hits(t, tp.client, fmt.Sprintf("%s:%d", nodeLAN, nodePort), 40); got["pod1"] == 0 || got["pod2"] == 0 {
		t.Fatalf("node port from the client: %v, want both pods", got)
	}
	if got := hits(t, tp.node, cip, 40); got["pod1"] == 0 || got["pod2"] == 0 {
		t.Fatalf("cluster IP from the node: %v, want both pods", got)
	}
	// A pod reaching itself through its Service (hairpin) and its neighbour.
	if got := hits(t, tp.pod1, cip, 40); got["pod1"] == 0 || got["pod2"] == 0 {
		t.Fatalf("cluster IP from pod1: %v, want both pods", got)
	}

	// Not ready: no new connection.
	sync(t, p, web, slice("web", ready1, ep{ip: pod2IP}))
	if st := p.Stats(); st.Full || st.ServicePortsWritten != 1 {
		t.Fatalf("sync of one endpoint change: %+v, want an incremental sync writing 1 service port", st)
	}
	if got := hits(t, tp.client, cip, 30); got["pod1"] != 30 {
		t.Fatalf("pod2 not ready: %v, want every connection on pod1", got)
	}

	// Terminating: a connection pod2 has goes on, new ones go to pod1.
	sync(t, p, web, slice("web", ready1, ready2))
	var held []string
	var conn2 net.Conn
	for range 100 {
		c, err := dial(tp.client, cip)
		if err != nil {
			t.Fatal(err)
		}
		body, err := ask(c)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, body)
		if body == "pod2" {
			conn2 = c
			defer c.Close()
			break
		}
		c.Close()
	}
	if conn2 == nil {
		t.Fatalf("no connection reached pod2 in 100: %v", held)
	}
	sync(t, p, web, slice("web", ready1, ep{ip: pod2IP, serving: true, terminating: true}))
	if got := hits(t, tp.client, cip, 30); got["pod1"] != 30 {
		t.Fatalf("pod2 terminating: %v, want every new connection on pod1", got)
	}
	if body, err := ask(conn2); err != nil || body != "pod2" {
		t.Fatalf("pod2's open connection while it terminates: %q, %v; want pod2's answer", body, err)
	}
	// Only terminating endpoints left: they serve, as in Kubernetes.
	sync(t, p, web, slice("web", ep{ip: pod2IP, serving: true, terminating: true}))
	if got := hits(t, tp.client, cip, 10); got["pod2"] != 10 {
		t.Fatalf("only pod2, terminating: %v, want pod2", got)
	}

	// No endpoints: refused, from the node, from a pod, and on the node port.
	sync(t, p, web, slice("web"))
	for _, ns := range []netns{tp.node, tp.pod1} {
		if _, err := get(ns, cip); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("cluster IP without endpoints from %s: %v, want connection refused", ns.name, err)
		}
	}
	if _, err := get(tp.client, fmt.Sprintf("%s:%d", nodeLAN, nodePort)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("node port without endpoints: %v, want connection refused", err)
	}

	// Back, then gone.
	sync(t, p, web, slice("web", ready1))
	if got := hits(t, tp.client, cip, 5); got["pod1"] != 5 {
		t.Fatalf("pod1 again: %v", got)
	}
	sync(t, p, nil)
	if st := p.Stats(); st.ServicePorts != 0 {
		t.Fatalf("after the Service's deletion: %+v, want no service port", st)
	}
	if _, err := get(tp.client, cip); err == nil {
		t.Fatal("the deleted Service's cluster IP still answers")
	}
	if err := p.Cleanup(); err != nil {
		t.Fatal(err)
	}
}

// TestProxyEgress: a pod's connection leaving the cluster CIDR (to the client, on the
// node's LAN) goes out as the node; one to another pod keeps the pod's address.
func TestProxyEgress(t *testing.T) {
	tp := newTopology(t)
	p := newProxier(t, tp)
	defer p.Cleanup()
	sync(t, p, nil)
	var ln net.Listener
	if err := tp.client.do(func() (err error) { ln, err = net.Listen("tcp", clientLAN+":9090"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	seen := make(chan string, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	c, err := dial(tp.pod1, clientLAN+":9090")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := <-seen; got != nodeLAN {
		t.Fatalf("pod1's connection out of the cluster came from %s, want the node's %s", got, nodeLAN)
	}
	// Within the cluster CIDR: pod2 sees pod1's own address.
	var ln2 net.Listener
	if err := tp.pod2.do(func() (err error) { ln2, err = net.Listen("tcp", pod2IP+":9090"); return err }); err != nil {
		t.Fatal(err)
	}
	defer ln2.Close()
	go func() {
		c, err := ln2.Accept()
		if err != nil {
			return
		}
		seen <- c.RemoteAddr().(*net.TCPAddr).IP.String()
		c.Close()
	}()
	c, err = dial(tp.pod1, pod2IP+":9090")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := <-seen; got != pod1IP {
		t.Fatalf("pod1's connection to pod2 came from %s, want pod1's %s", got, pod1IP)
	}
}

// TestProxyAffinity: with sessionAffinity ClientIP a client's connections all go to
// one endpoint.
func TestProxyAffinity(t *testing.T) {
	tp := newTopology(t)
	p := newProxier(t, tp)
	defer p.Cleanup()
	sync(t, p, []*corev1.Service{service("web", clusterIP, true)}, slice("web", ready1, ready2))
	got := hits(t, tp.client, clusterIP+":80", 30)
	if len(got) != 1 {
		t.Fatalf("ClientIP affinity: %v, want every connection on one pod", got)
	}
	// The node port keeps the client on the same pod (one affinity per Service port,
	// whichever address the client used), as Kubernetes' NodePort affinity test asks.
	if np := hits(t, tp.client, fmt.Sprintf("%s:%d", nodeLAN, nodePort), 30); len(np) != 1 || !maps.Equal(np, map[string]int{firstKey(got): 30}) {
		t.Fatalf("ClientIP affinity through the node port: %v, want every connection on the cluster IP's pod (%v)", np, got)
	}
	// The chosen pod not ready: the client goes to the other, and stays there.
	var other ep
	if got["pod1"] > 0 {
		sync(t, p, []*corev1.Service{service("web", clusterIP, true)}, slice("web", ep{ip: pod1IP}, ready2))
		other = ready2
	} else {
		sync(t, p, []*corev1.Service{service("web", clusterIP, true)}, slice("web", ready1, ep{ip: pod2IP}))
		other = ready1
	}
	if got := hits(t, tp.client, clusterIP+":80", 10); len(got) != 1 {
		t.Fatalf("ClientIP affinity after the chosen pod left: %v, want every connection on %s", got, other.ip)
	}
	sync(t, p, []*corev1.Service{service("web", clusterIP, true)}, slice("web", ready1, ready2))
	// Without affinity again, both.
	sync(t, p, []*corev1.Service{service("web", clusterIP, false)}, slice("web", ready1, ready2))
	if got := hits(t, tp.client, clusterIP+":80", 40); len(got) != 2 {
		t.Fatalf("affinity removed: %v, want both pods", got)
	}
}

// firstKey is a map's one key (of a map with one).
func firstKey(m map[string]int) string {
	for k := range m {
		return k
	}
	return ""
}
