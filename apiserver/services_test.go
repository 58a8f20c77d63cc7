package apiserver_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/store"
	"github.com/skiffhq/skiff/test/apicluster"
)

func service(name string, typ corev1.ServiceType, ports ...int32) *corev1.Service {
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: typ, Selector: map[string]string{"app": name}}}
	for i, p := range ports {
		svc.Spec.Ports = append(svc.Spec.Ports, corev1.ServicePort{Name: fmt.Sprintf("p%d", i), Port: p, TargetPort: intstr.FromString("http")})
	}
	return svc
}

var serviceCIDR = netip.MustParsePrefix(apiserver.DefaultServiceCIDR)

// TestServiceAllocation: the API server gives a Service a cluster IP of the service CIDR
// and node ports of 30000-32767 as its type needs, refuses values taken or out of
// range, and frees them when the Service gives them up or goes.
func TestServiceAllocation(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx := testCtx(t)
	svcs := client.NewClientset(c.Dial(t, "admin", client.Options{})).Services

	// The Services every cluster has: the API servers' and the cluster DNS'.
	for _, tc := range []struct{ ns, name, ip string }{{"default", "kubernetes", "10.43.0.1"}, {"kube-system", "kube-dns", "10.43.0.10"}} {
		got, err := svcs.Get(ctx, tc.ns, tc.name)
		if err != nil || got.Spec.ClusterIP != tc.ip {
			t.Fatalf("%s/%s: %v, cluster IP %q, want %s", tc.ns, tc.name, err, got.Spec.ClusterIP, tc.ip)
		}
	}

	web, err := svcs.Create(ctx, service("web", corev1.ServiceTypeNodePort, 80, 443))
	if err != nil {
		t.Fatal(err)
	}
	ip := netip.MustParseAddr(web.Spec.ClusterIP)
	if !serviceCIDR.Contains(ip) || len(web.Spec.ClusterIPs) != 1 || web.Spec.ClusterIPs[0] != ip.String() {
		t.Fatalf("cluster IP %q (%v) not one address of %s", web.Spec.ClusterIP, web.Spec.ClusterIPs, serviceCIDR)
	}
	ports := []int32{web.Spec.Ports[0].NodePort, web.Spec.Ports[1].NodePort}
	for _, p := range ports {
		if p < apiserver.NodePortMin || p > apiserver.NodePortMax {
			t.Fatalf("node port %d out of range", p)
		}
	}
	if ports[0] == ports[1] {
		t.Fatalf("both ports got node port %d", ports[0])
	}

	// Taken values, and values out of range, are refused by field.
	for _, tc := range []struct {
		name string
		svc  func() *corev1.Service
		want string
	}{
		{"same IP", func() *corev1.Service {
			s := service("a", corev1.ServiceTypeClusterIP, 80)
			s.Spec.ClusterIP = ip.String()
			return s
		}, "spec.clusterIPs: Invalid value: [\"" + ip.String() + "\"]: failed to allocate IP " + ip.String() + ": provided IP is already allocated"},
		{"IP out of range", func() *corev1.Service {
			s := service("b", corev1.ServiceTypeClusterIP, 80)
			s.Spec.ClusterIP = "10.99.0.1"
			return s
		}, "the provided IP (10.99.0.1) is not in the valid range. The range of valid IPs is 10.43.0.0/16"},
		{"same node port", func() *corev1.Service {
			s := service("c", corev1.ServiceTypeNodePort, 80)
			s.Spec.Ports[0].NodePort = ports[0]
			return s
		}, fmt.Sprintf("spec.ports[0].nodePort: Invalid value: %d: provided port is already allocated", ports[0])},
		{"node port out of range", func() *corev1.Service {
			s := service("d", corev1.ServiceTypeNodePort, 80)
			s.Spec.Ports[0].NodePort = 8080
			return s
		}, "spec.ports[0].nodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"},
		{"node port of a ClusterIP Service", func() *corev1.Service {
			s := service("e", corev1.ServiceTypeClusterIP, 80)
			s.Spec.Ports[0].NodePort = 30500
			return s
		}, "spec.ports[0].nodePort: Forbidden: may not be used when `type` is 'ClusterIP'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svcs.Create(ctx, tc.svc())
			if !client.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want Invalid with %q", err, tc.want)
			}
		})
	}

	// Headless and ExternalName Services get no address.
	headless := service("db", corev1.ServiceTypeClusterIP, 5432)
	headless.Spec.ClusterIP = corev1.ClusterIPNone
	if got, err := svcs.Create(ctx, headless); err != nil || got.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Fatalf("headless: %v, cluster IP %q", err, got.Spec.ClusterIP)
	}
	ext := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "default"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName, ExternalName: "example.com"}}
	if got, err := svcs.Create(ctx, ext); err != nil || got.Spec.ClusterIP != "" {
		t.Fatalf("ExternalName: %v, cluster IP %q", err, got.Spec.ClusterIP)
	}

	// An update that leaves the allocated values out keeps them (a manifest applied
	// again); one that turns the Service into a ClusterIP one frees its node ports.
	again := service("web", corev1.ServiceTypeNodePort, 80, 443)
	again.ResourceVersion = web.ResourceVersion
	if got, err := svcs.Update(ctx, again); err != nil || got.Spec.ClusterIP != web.Spec.ClusterIP || got.Spec.Ports[0].NodePort != ports[0] {
		t.Fatalf("applied again: %v, %+v", err, got)
	}
	cur, err := svcs.Get(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	cur.Spec.Type, cur.Spec.ExternalTrafficPolicy = corev1.ServiceTypeClusterIP, ""
	if got, err := svcs.Update(ctx, cur); err != nil || got.Spec.Ports[0].NodePort != 0 {
		t.Fatalf("to ClusterIP: %v, node port %d", err, got.Spec.Ports[0].NodePort)
	}
	reuse := service("reuse", corev1.ServiceTypeNodePort, 80)
	reuse.Spec.Ports[0].NodePort = ports[0]
	if _, err := svcs.Create(ctx, reuse); err != nil {
		t.Fatalf("node port %d after it was freed: %v", ports[0], err)
	}

	// Deleting the Service frees its cluster IP.
	if _, err := svcs.Delete(ctx, "default", "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	same := service("same", corev1.ServiceTypeClusterIP, 80)
	same.Spec.ClusterIP = ip.String()
	if _, err := svcs.Create(ctx, same); err != nil {
		t.Fatalf("IP %s after its Service went: %v", ip, err)
	}
}

// TestServiceHealthCheckNodePort: a LoadBalancer with externalTrafficPolicy Local gets
// a health check node port from the node ports' range and records, as in Kubernetes:
// one asked for by number is refused when taken, by a node port or another health
// check, and on a Service that has none; it is kept by an update that leaves it out,
// may not change, and is freed when the Service stops needing it.
func TestServiceHealthCheckNodePort(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx := testCtx(t)
	svcs := client.NewClientset(c.Dial(t, "admin", client.Options{})).Services
	lb := func(name string) *corev1.Service {
		s := service(name, corev1.ServiceTypeLoadBalancer, 80)
		s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
		return s
	}
	web, err := svcs.Create(ctx, lb("web"))
	if err != nil {
		t.Fatal(err)
	}
	hc := web.Spec.HealthCheckNodePort
	if hc < apiserver.NodePortMin || hc > apiserver.NodePortMax || hc == web.Spec.Ports[0].NodePort {
		t.Fatalf("health check node port %d: want one of %d-%d other than the node port %d", hc, apiserver.NodePortMin, apiserver.NodePortMax, web.Spec.Ports[0].NodePort)
	}
	for _, tc := range []struct {
		name string
		svc  func() *corev1.Service
		want string
	}{
		{"another's health check", func() *corev1.Service {
			s := lb("a")
			s.Spec.HealthCheckNodePort = hc
			return s
		}, fmt.Sprintf("spec.healthCheckNodePort: Invalid value: %d: provided port is already allocated", hc)},
		{"a node port", func() *corev1.Service {
			s := lb("b")
			s.Spec.HealthCheckNodePort = web.Spec.Ports[0].NodePort
			return s
		}, fmt.Sprintf("spec.healthCheckNodePort: Invalid value: %d: provided port is already allocated", web.Spec.Ports[0].NodePort)},
		{"its own node port", func() *corev1.Service {
			s := lb("c")
			s.Spec.Ports[0].NodePort, s.Spec.HealthCheckNodePort = 31111, 31111
			return s
		}, "spec.healthCheckNodePort: Invalid value: 31111: provided port is already allocated"},
		{"a node port taking the health check's", func() *corev1.Service {
			s := service("d", corev1.ServiceTypeNodePort, 80)
			s.Spec.Ports[0].NodePort = hc
			return s
		}, fmt.Sprintf("spec.ports[0].nodePort: Invalid value: %d: provided port is already allocated", hc)},
		{"out of range", func() *corev1.Service {
			s := lb("e")
			s.Spec.HealthCheckNodePort = 8080
			return s
		}, "spec.healthCheckNodePort: Invalid value: 8080: provided port is not in the valid range. The range of valid ports is 30000-32767"},
		{"not needed", func() *corev1.Service {
			s := service("f", corev1.ServiceTypeNodePort, 80)
			s.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyLocal
			s.Spec.HealthCheckNodePort = 31222
			return s
		}, "spec.healthCheckNodePort: Invalid value: 31222: may only be set when `type` is 'LoadBalancer' and `externalTrafficPolicy` is 'Local'"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := svcs.Create(ctx, tc.svc())
			if !client.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want Invalid with %q", err, tc.want)
			}
		})
	}
	// Asked for by number.
	asked := lb("asked")
	asked.Spec.HealthCheckNodePort = 31333
	if got, err := svcs.Create(ctx, asked); err != nil || got.Spec.HealthCheckNodePort != 31333 {
		t.Fatalf("health check node port 31333 asked for: %v, %+v", err, got)
	}

	// Applied again: kept. Changed: refused.
	again := lb("web")
	again.ResourceVersion = web.ResourceVersion
	got, err := svcs.Update(ctx, again)
	if err != nil || got.Spec.HealthCheckNodePort != hc {
		t.Fatalf("applied again: %v, health check node port %d, want %d", err, got.Spec.HealthCheckNodePort, hc)
	}
	got.Spec.HealthCheckNodePort = 31444
	if _, err := svcs.Update(ctx, got); !client.IsInvalid(err) || !strings.Contains(err.Error(), "cannot change healthCheckNodePort on loadBalancer service with externalTraffic=Local during update") {
		t.Fatalf("changed: %v, want Invalid", err)
	}
	// externalTrafficPolicy Cluster: no health check node port, and its port is free.
	got.Spec.HealthCheckNodePort = hc
	got.Spec.ExternalTrafficPolicy = corev1.ServiceExternalTrafficPolicyCluster
	if got, err = svcs.Update(ctx, got); err != nil || got.Spec.HealthCheckNodePort != 0 {
		t.Fatalf("to externalTrafficPolicy Cluster: %v, health check node port %d, want none", err, got.Spec.HealthCheckNodePort)
	}
	reuse := service("reuse", corev1.ServiceTypeNodePort, 80)
	reuse.Spec.Ports[0].NodePort = hc
	if _, err := svcs.Create(ctx, reuse); err != nil {
		t.Fatalf("node port %d after the health check gave it up: %v", hc, err)
	}
	// Deleting a Service frees its health check node port.
	if _, err := svcs.Delete(ctx, "default", "asked", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	again2 := lb("again")
	again2.Spec.HealthCheckNodePort = 31333
	if _, err := svcs.Create(ctx, again2); err != nil {
		t.Fatalf("health check node port 31333 after its Service went: %v", err)
	}
}

// TestServiceAllocationUnderFailover: 100 Services created at once, through every
// member, while the leader is killed, get cluster IPs and node ports that are all
// different and all in range.
func TestServiceAllocationUnderFailover(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	ctx := testCtx(t)
	svcs := client.NewClientset(c.Dial(t, "admin", client.Options{})).Services
	const n = 100
	var wg sync.WaitGroup
	errs := make(chan error, n)
	started := make(chan struct{}, n)
	for i := range n {
		wg.Go(func() {
			started <- struct{}{}
			svc := service(fmt.Sprintf("s%d", i), corev1.ServiceTypeNodePort, 80)
			for {
				_, err := svcs.Create(ctx, svc)
				var retried *client.RetriedCreateError
				switch {
				case err == nil, errors.As(err, &retried):
					return // created, by this attempt or an earlier one whose reply was lost
				case ctx.Err() != nil:
					errs <- fmt.Errorf("%s: %w", svc.Name, err)
					return
				case client.IsInvalid(err):
					errs <- fmt.Errorf("%s: %w", svc.Name, err)
					return
				}
			}
		})
	}
	for range n / 2 {
		<-started
	}
	c.Stop(c.Leader())
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	list, err := svcs.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ips, nodePorts := map[string]string{}, map[int32]string{}
	count := 0
	for _, s := range list.Items {
		if s.Name == "kubernetes" {
			continue
		}
		count++
		ip := netip.MustParseAddr(s.Spec.ClusterIP)
		if !serviceCIDR.Contains(ip) || ip == serviceCIDR.Addr() {
			t.Errorf("%s: cluster IP %s not a host of %s", s.Name, ip, serviceCIDR)
		}
		if other, dup := ips[ip.String()]; dup {
			t.Errorf("%s and %s both have cluster IP %s", s.Name, other, ip)
		}
		ips[ip.String()] = s.Name
		p := s.Spec.Ports[0].NodePort
		if p < apiserver.NodePortMin || p > apiserver.NodePortMax {
			t.Errorf("%s: node port %d out of range", s.Name, p)
		}
		if other, dup := nodePorts[p]; dup {
			t.Errorf("%s and %s both have node port %d", s.Name, other, p)
		}
		nodePorts[p] = s.Name
	}
	if count != n {
		t.Errorf("%d Services, want %d", count, n)
	}
}

// TestNetworkingSetOnce: the cluster's networking is recorded at bootstrap; a member
// started again with other ranges refuses to serve.
func TestNetworkingSetOnce(t *testing.T) {
	dir := t.TempDir()
	start := func(nw apiserver.Networking) (stop func() error, done <-chan error) {
		t.Helper()
		raftLn, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		cfg := apiserver.DefaultConfig()
		cfg.Name, cfg.DataDir, cfg.Insecure, cfg.Networking = "n1", dir, true, nw
		cfg.Listen, cfg.RaftListen, cfg.RaftListener = "127.0.0.1:0", raftLn.Addr().String(), raftLn
		cfg.InitialCluster = []store.Server{{ID: "n1", Address: raftLn.Addr().String()}}
		s, err := apiserver.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ch := make(chan error, 1)
		go func() { ch <- s.Run(ctx) }()
		t.Cleanup(cancel)
		select { // settled, or stopped (refused)
		case <-s.Settled():
		case err := <-ch:
			ch <- err
		case <-time.After(60 * time.Second):
			t.Fatal("the server neither settled nor stopped")
		}
		return func() error { cancel(); return <-ch }, ch
	}
	stop, _ := start(apiserver.Networking{ServiceCIDR: "10.96.0.0/16"})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// The same range, or none, is fine.
	stop, _ = start(apiserver.Networking{})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	_, done := start(apiserver.Networking{ServiceCIDR: "10.43.0.0/16"})
	err := <-done
	if !errors.Is(err, apiserver.ErrNetworkingChanged) || !strings.Contains(err.Error(), "--service-cidr 10.43.0.0/16 differs from the cluster's 10.96.0.0/16") {
		t.Fatalf("started with another --service-cidr: %v", err)
	}
}

// TestServiceLoadBalancerClass: a LoadBalancer's loadBalancerClass is stored (the
// default implementation leaves its Service alone), must be a qualified name, only on a
// LoadBalancer, may not change once set, and goes when the Service stops being one, as
// in Kubernetes ("should complete a service status lifecycle" makes one).
func TestServiceLoadBalancerClass(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx := testCtx(t)
	svcs := client.NewClientset(c.Dial(t, "admin", client.Options{})).Services
	lb := service("web", corev1.ServiceTypeLoadBalancer, 80)
	lb.Spec.LoadBalancerClass = new("example.com/internal-vip")
	web, err := svcs.Create(ctx, lb)
	if err != nil {
		t.Fatal(err)
	}
	if c := web.Spec.LoadBalancerClass; c == nil || *c != "example.com/internal-vip" {
		t.Fatalf("loadBalancerClass %v", c)
	}
	for _, tc := range []struct {
		name string
		svc  func() *corev1.Service
		want string
	}{
		{"not a LoadBalancer", func() *corev1.Service {
			s := service("a", corev1.ServiceTypeNodePort, 80)
			s.Spec.LoadBalancerClass = new("example.com/x")
			return s
		}, "spec.loadBalancerClass: Forbidden: may only be used when `type` is 'LoadBalancer'"},
		{"not a qualified name", func() *corev1.Service {
			s := service("b", corev1.ServiceTypeLoadBalancer, 80)
			s.Spec.LoadBalancerClass = new("Example.com/-x-")
			return s
		}, "spec.loadBalancerClass: Invalid value"},
	} {
		if _, err := svcs.Create(ctx, tc.svc()); !client.IsInvalid(err) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want Invalid with %q", tc.name, err, tc.want)
		}
	}
	web.Spec.LoadBalancerClass = new("example.com/other")
	if _, err := svcs.Update(ctx, web); !client.IsInvalid(err) || !strings.Contains(err.Error(), "spec.loadBalancerClass: Invalid value") {
		t.Errorf("changing the class: %v, want Invalid", err)
	}
	web, err = svcs.Get(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	web.Spec.Type, web.Spec.AllocateLoadBalancerNodePorts, web.Spec.ExternalTrafficPolicy = corev1.ServiceTypeClusterIP, nil, ""
	if web, err = svcs.Update(ctx, web); err != nil || web.Spec.LoadBalancerClass != nil {
		t.Fatalf("a LoadBalancer turned ClusterIP: class %v, %v; want none", web.Spec.LoadBalancerClass, err)
	}
}

// TestServiceAffinitySwitchAndConditions: a ClientIP Service switched to None drops its
// sessionAffinityConfig (Kubernetes' defaulting), and its status conditions are taken
// as written, without lastTransitionTime (Kubernetes validates none), as Kubernetes'
// "should be able to switch session affinity" and "should complete a service status
// lifecycle" write them.
func TestServiceAffinitySwitchAndConditions(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx := testCtx(t)
	svcs := client.NewClientset(c.Dial(t, "admin", client.Options{})).Services
	s := service("web", corev1.ServiceTypeNodePort, 80)
	s.Spec.SessionAffinity = corev1.ServiceAffinityClientIP
	web, err := svcs.Create(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if web.Spec.SessionAffinityConfig == nil {
		t.Fatal("ClientIP without its defaulted configuration")
	}
	web.Spec.SessionAffinity = corev1.ServiceAffinityNone // the configuration kept, as the test sends it
	if web, err = svcs.Update(ctx, web); err != nil || web.Spec.SessionAffinityConfig != nil {
		t.Fatalf("switched to None: %v, config %+v; want it dropped", err, web.Spec.SessionAffinityConfig)
	}
	web.Status.Conditions = append(web.Status.Conditions, metav1.Condition{Type: "StatusUpdate", Status: metav1.ConditionTrue, Reason: "E2E", Message: "Set from e2e test"})
	if web, err = svcs.UpdateStatus(ctx, web); err != nil || len(web.Status.Conditions) != 1 {
		t.Fatalf("a condition without lastTransitionTime: %v, %+v", err, web.Status.Conditions)
	}
}

// TestServiceExternalNameKeptOnTypeChange: an ExternalName Service changed to ClusterIP
// with its externalName left in place is taken and given a cluster IP, as Kubernetes
// takes it (it validates externalName for ExternalName Services only): DNS's "should
// provide DNS for ExternalName services" sends that update.
func TestServiceExternalNameKeptOnTypeChange(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx := testCtx(t)
	svcs := client.NewClientset(c.Dial(t, "admin", client.Options{})).Services
	s := service("ext", corev1.ServiceTypeExternalName)
	s.Spec.ExternalName = "foo.example.com"
	ext, err := svcs.Create(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	ext.Spec.Type = corev1.ServiceTypeClusterIP
	ext.Spec.Ports = []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP}}
	if ext, err = svcs.Update(ctx, ext); err != nil {
		t.Fatalf("ExternalName to ClusterIP with externalName kept: %v", err)
	}
	if ip, err := netip.ParseAddr(ext.Spec.ClusterIP); err != nil || !serviceCIDR.Contains(ip) {
		t.Fatalf("cluster IP %q; want one of %s", ext.Spec.ClusterIP, serviceCIDR)
	}
}
