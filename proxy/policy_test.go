package proxy_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/proxy"
)

// serveWho answers HTTP in ns on addr with name and the client's address.
func serveWho(t *testing.T, ns netns, addr, name string) {
	t.Helper()
	var ln net.Listener
	if err := ns.do(func() (err error) { ln, err = net.Listen("tcp", addr); return err }); err != nil {
		t.Fatalf("listen in %s: %v", ns.name, err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		io.WriteString(w, name+" "+host)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
}

// onNode gives the slice's endpoints their nodes, in order.
func onNode(es *discoveryv1.EndpointSlice, nodes ...string) *discoveryv1.EndpointSlice {
	for i := range es.Endpoints {
		es.Endpoints[i].NodeName = ptr.To(nodes[i])
	}
	return es
}

// dropped is true when a connection from ns to addr gets no answer at all (not
// refused: the packets were dropped).
func dropped(ns netns, addr string) (bool, error) {
	var err error
	ns.do(func() error {
		var c net.Conn
		c, err = net.DialTimeout("tcp", addr, time.Second)
		if c != nil {
			c.Close()
		}
		return nil
	})
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true, nil
	}
	return false, err
}

// TestProxyTrafficPolicyLocal: the proxy of node-a, whose endpoint is pod1 (pod2's
// slice entry names node-b). externalTrafficPolicy Local: the node port goes to
// pod1 only and pod1 sees the client's own address; the cluster IP still goes to
// both; pods and the node itself reach every endpoint through the node port; without
// a local endpoint the node port drops connections (Kubernetes' "has no local
// endpoints"), though it refuses them without any endpoint. internalTrafficPolicy
// Local: the cluster IP goes to pod1 only, and drops without it.
func TestProxyTrafficPolicyLocal(t *testing.T) {
	tp := newTopology(t)
	serveWho(t, tp.pod1, ":8090", "pod1")
	serveWho(t, tp.pod2, ":8090", "pod2")
	p, err := proxy.New(proxy.Config{ClusterCIDR: "10.42.0.0/16", NetNS: tp.node.fd(t), NodeName: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Cleanup()
	svc := func(etp corev1.ServiceExternalTrafficPolicy, itp corev1.ServiceInternalTrafficPolicy) []*corev1.Service {
		s := service("web", clusterIP, false)
		s.Spec.ExternalTrafficPolicy = etp
		s.Spec.InternalTrafficPolicy = &itp
		return []*corev1.Service{s}
	}
	both := func(eps ...ep) *discoveryv1.EndpointSlice {
		es := slice("web", eps...)
		es.Ports[0].Port = ptr.To[int32](8090)
		return onNode(es, "node-a", "node-b")
	}
	cip, np := clusterIP+":80", fmt.Sprintf("%s:%d", nodeLAN, nodePort)
	count := func(ns netns, addr string, n int) (pods, sources map[string]int) {
		t.Helper()
		pods, sources = map[string]int{}, map[string]int{}
		for body, k := range hits(t, ns, addr, n) {
			pod, src, _ := strings.Cut(body, " ")
			pods[pod] += k
			sources[src] += k
		}
		return pods, sources
	}

	// Cluster, for comparison: the node port goes to both, masqueraded.
	sync(t, p, svc(corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyCluster), both(ready1, ready2))
	if pods, srcs := count(tp.client, np, 40); pods["pod1"] == 0 || pods["pod2"] == 0 || srcs[clientLAN] != 0 {
		t.Fatalf("node port, policy Cluster: pods %v, sources %v; want both pods, none seeing the client's address", pods, srcs)
	}

	sync(t, p, svc(corev1.ServiceExternalTrafficPolicyLocal, corev1.ServiceInternalTrafficPolicyCluster), both(ready1, ready2))
	if pods, srcs := count(tp.client, np, 30); pods["pod1"] != 30 || srcs[clientLAN] != 30 {
		t.Fatalf("node port, externalTrafficPolicy Local: pods %v, sources %v; want pod1 only, seeing the client's %s", pods, srcs, clientLAN)
	}
	if pods, _ := count(tp.client, cip, 40); pods["pod1"] == 0 || pods["pod2"] == 0 {
		t.Fatalf("cluster IP, externalTrafficPolicy Local: %v, want both pods", pods)
	}
	for _, ns := range []netns{tp.node, tp.pod2} {
		if pods, _ := count(ns, np, 40); pods["pod1"] == 0 || pods["pod2"] == 0 {
			t.Fatalf("node port from %s, externalTrafficPolicy Local: %v, want both pods", ns.name, pods)
		}
	}
	// No local endpoint: dropped; no endpoint at all: refused.
	sync(t, p, svc(corev1.ServiceExternalTrafficPolicyLocal, corev1.ServiceInternalTrafficPolicyCluster), both(ep{ip: pod1IP}, ready2))
	if ok, err := dropped(tp.client, np); !ok {
		t.Fatalf("node port without a local endpoint: %v, want the connection dropped", err)
	}
	if pods, _ := count(tp.client, cip, 10); pods["pod2"] != 10 {
		t.Fatalf("cluster IP, externalTrafficPolicy Local, pod1 not ready: %v, want pod2", pods)
	}
	sync(t, p, svc(corev1.ServiceExternalTrafficPolicyLocal, corev1.ServiceInternalTrafficPolicyCluster), both())
	if _, err := get(tp.client, np); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("node port without endpoints: %v, want connection refused", err)
	}

	// internalTrafficPolicy Local.
	sync(t, p, svc(corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal), both(ready1, ready2))
	for _, ns := range []netns{tp.client, tp.node, tp.pod2} {
		if pods, _ := count(ns, cip, 30); pods["pod1"] != 30 {
			t.Fatalf("cluster IP from %s, internalTrafficPolicy Local: %v, want pod1 only", ns.name, pods)
		}
	}
	// A cluster IP's connection from outside the cluster CIDR is masqueraded, one
	// from a pod is not.
	if _, srcs := count(tp.client, cip, 5); srcs[clientLAN] != 0 {
		t.Fatalf("cluster IP from the client: sources %v, want the client masqueraded", srcs)
	}
	if _, srcs := count(tp.pod2, cip, 5); srcs[pod2IP] != 5 {
		t.Fatalf("cluster IP from pod2: sources %v, want pod2's own address", srcs)
	}
	if pods, srcs := count(tp.client, np, 40); pods["pod1"] == 0 || pods["pod2"] == 0 || srcs[clientLAN] != 0 {
		t.Fatalf("node port, internalTrafficPolicy Local: pods %v, sources %v; want both, masqueraded", pods, srcs)
	}
	sync(t, p, svc(corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyLocal), both(ep{ip: pod1IP}, ready2))
	if ok, err := dropped(tp.pod2, cip); !ok {
		t.Fatalf("cluster IP without a local endpoint: %v, want the connection dropped", err)
	}

	// Both Local: the client gets pod1 with its own address; a pod, both.
	sync(t, p, svc(corev1.ServiceExternalTrafficPolicyLocal, corev1.ServiceInternalTrafficPolicyLocal), both(ready1, ready2))
	if pods, srcs := count(tp.client, np, 30); pods["pod1"] != 30 || srcs[clientLAN] != 30 {
		t.Fatalf("node port, both policies Local: pods %v, sources %v; want pod1, seeing the client", pods, srcs)
	}
	if pods, _ := count(tp.pod2, np, 40); pods["pod1"] == 0 || pods["pod2"] == 0 {
		t.Fatalf("node port from a pod, both policies Local: %v, want both pods", pods)
	}
	if pods, _ := count(tp.pod2, cip, 20); pods["pod1"] != 20 {
		t.Fatalf("cluster IP from a pod, both policies Local: %v, want pod1", pods)
	}
	// And back to Cluster: every chain of the Local layouts rewritten or gone.
	sync(t, p, svc(corev1.ServiceExternalTrafficPolicyCluster, corev1.ServiceInternalTrafficPolicyCluster), both(ready1, ready2))
	if pods, srcs := count(tp.client, np, 40); pods["pod1"] == 0 || pods["pod2"] == 0 || srcs[clientLAN] != 0 {
		t.Fatalf("node port, back to Cluster: pods %v, sources %v", pods, srcs)
	}
}

// TestProxyHealthCheckNodePort: a LoadBalancer Service with externalTrafficPolicy
// Local has its health check node port served on the node: 200 and kube-proxy's JSON
// while the node has a ready endpoint, 503 without; nothing once the Service has no
// health check node port.
func TestProxyHealthCheckNodePort(t *testing.T) {
	tp := newTopology(t)
	p, err := proxy.New(proxy.Config{ClusterCIDR: "10.42.0.0/16", NetNS: tp.node.fd(t), NodeName: "node-a"})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Cleanup()
	const hcPort = 32100
	lb := func(etp corev1.ServiceExternalTrafficPolicy) []*corev1.Service {
		s := service("web", clusterIP, false)
		s.Spec.Type = corev1.ServiceTypeLoadBalancer
		s.Spec.ExternalTrafficPolicy = etp
		if etp == corev1.ServiceExternalTrafficPolicyLocal {
			s.Spec.HealthCheckNodePort = hcPort
		}
		return []*corev1.Service{s}
	}
	// The connection is made in the client's namespace (an http.Client would dial on
	// another thread, outside it).
	check := func() (int, string, error) {
		c, err := dial(tp.client, fmt.Sprintf("%s:%d", nodeLAN, hcPort))
		if err != nil {
			return 0, "", err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(3 * time.Second))
		if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
			return 0, "", err
		}
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}
	want := func(n int) string {
		return fmt.Sprintf("{\n\t\"service\": {\n\t\t\"namespace\": \"default\",\n\t\t\"name\": \"web\"\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": true\n}", n)
	}
	sync(t, p, lb(corev1.ServiceExternalTrafficPolicyLocal), onNode(slice("web", ready1, ready2), "node-a", "node-b"))
	if code, body, err := check(); err != nil || code != http.StatusOK || body != want(1) {
		t.Fatalf("health check with a local endpoint: %d %q, %v; want 200 %q", code, body, err, want(1))
	}
	sync(t, p, lb(corev1.ServiceExternalTrafficPolicyLocal), onNode(slice("web", ep{ip: pod1IP}, ready2), "node-a", "node-b"))
	if code, body, err := check(); err != nil || code != http.StatusServiceUnavailable || body != want(0) {
		t.Fatalf("health check without a local endpoint: %d %q, %v; want 503 %q", code, body, err, want(0))
	}
	sync(t, p, lb(corev1.ServiceExternalTrafficPolicyCluster), onNode(slice("web", ready1, ready2), "node-a", "node-b"))
	if _, _, err := check(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("health check once the Service has none: %v, want connection refused", err)
	}
}

// TestProxyPortChange: a Service port whose number changes (same name, same
// endpoints) is translated on its new number and no longer on the old.
func TestProxyPortChange(t *testing.T) {
	tp := newTopology(t)
	p := newProxier(t, tp)
	defer p.Cleanup()
	web := service("web", clusterIP, false)
	sync(t, p, []*corev1.Service{web}, slice("web", ready1))
	if got := hits(t, tp.client, clusterIP+":80", 3); got["pod1"] != 3 {
		t.Fatalf("port 80: %v", got)
	}
	moved := web.DeepCopy()
	moved.Spec.Ports[0].Port, moved.Spec.Ports[0].NodePort = 81, nodePort+1
	sync(t, p, []*corev1.Service{moved}, slice("web", ready1))
	if got := hits(t, tp.client, clusterIP+":81", 3); got["pod1"] != 3 {
		t.Fatalf("port 81 after the change: %v", got)
	}
	if got := hits(t, tp.client, fmt.Sprintf("%s:%d", nodeLAN, nodePort+1), 3); got["pod1"] != 3 {
		t.Fatalf("node port %d after the change: %v", nodePort+1, got)
	}
	if _, err := get(tp.client, fmt.Sprintf("%s:%d", nodeLAN, nodePort)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("the old node port after the change: %v, want connection refused", err)
	}
}
