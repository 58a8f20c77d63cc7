package proxy_test

import (
	"context"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/clusterdns"
	"github.com/skiffhq/skiff/proxy"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// kubeDNS is the kube-dns Service's address, which the API servers give it (the
// tenth address of the default service CIDR) and pods' resolv.conf names.
const kubeDNS = "10.43.0.10:53"

// TestProxyLocalDNS: a pod's query to the kube-dns Service's cluster IP, over UDP and
// TCP, is answered by the cluster DNS its node runs (on the node's address), through
// the proxy's translation; without LocalDNS the Service has no endpoints and the query
// is refused.
func TestProxyLocalDNS(t *testing.T) {
	tp := newTopology(t)
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	web := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.20",
		Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}}}}
	if _, err := cs.Services.Create(ctx, web); err != nil {
		t.Fatal(err)
	}

	// The node's cluster DNS, on the node's address in the node's namespace.
	f := cache.NewFactory(cs, nil)
	dcfg := clusterdns.DefaultConfig()
	dcfg.Upstreams = nil // names outside the domain are refused: nothing is forwarded
	srv, err := clusterdns.New(f, dcfg)
	if err != nil {
		t.Fatal(err)
	}
	dnsAddr := nodeLAN + ":53"
	var pc net.PacketConn
	var ln net.Listener
	if err := tp.node.do(func() (err error) {
		if pc, err = net.ListenPacket("udp", dnsAddr); err != nil {
			return err
		}
		ln, err = net.Listen("tcp", dnsAddr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 2)
	go func() { done <- srv.Serve(sctx, pc, ln) }()
	defer func() {
		stop()
		<-done
		<-done
		pc.Close()
		ln.Close()
		cancel()
		f.Wait()
	}()

	query := func(network string) (*dns.Msg, error) {
		m := new(dns.Msg)
		m.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
		var in *dns.Msg
		err := tp.pod1.do(func() (err error) {
			in, _, err = (&dns.Client{Net: network, Timeout: 2 * time.Second}).Exchange(m, kubeDNS)
			return err
		})
		return in, err
	}

	// Without LocalDNS: the kube-dns Service has no endpoints, so the proxy refuses.
	svcs, err := cs.Services.List(ctx, "", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	plain := newProxier(t, tp)
	sync(t, plain, svcs.Items)
	for _, network := range []string{"udp", "tcp"} {
		if in, err := query(network); err == nil {
			t.Fatalf("%s query to %s without the node-local DNS answered: %v", network, kubeDNS, in)
		}
	}
	if err := plain.Cleanup(); err != nil {
		t.Fatal(err)
	}

	// With LocalDNS, as the agent runs it: the pod is answered by the node's DNS.
	p, err := proxy.New(proxy.Config{ClusterCIDR: "10.42.0.0/16", NetNS: tp.node.fd(t), LocalDNS: netip.MustParseAddrPort(dnsAddr)})
	if err != nil {
		t.Fatal(err)
	}
	go func() { done <- p.Run(sctx, f) }()
	defer p.Cleanup()
	for _, network := range []string{"udp", "tcp"} {
		waitfor.Condition(t, 30*time.Second, network+" answer from "+kubeDNS, func() (bool, string) {
			in, err := query(network) // the proxy's first sync may not be there yet
			if err != nil {
				return false, err.Error()
			}
			if len(in.Answer) != 1 {
				t.Fatalf("%s answer: %v, want one A record", network, in)
			}
			if a, ok := in.Answer[0].(*dns.A); !ok || a.A.String() != "10.43.0.20" {
				t.Fatalf("%s answer: %v, want web's cluster IP 10.43.0.20", network, in.Answer[0])
			}
			return true, ""
		})
	}
}

// A local DNS address pods cannot reach (loopback, unspecified, no port) is refused.
func TestProxyLocalDNSConfig(t *testing.T) {
	for _, a := range []string{"127.0.0.1:53", "0.0.0.0:53", "10.0.0.1:0", "[::1]:53"} {
		if _, err := proxy.New(proxy.Config{LocalDNS: netip.MustParseAddrPort(a)}); err == nil {
			t.Errorf("local DNS %s accepted", a)
		}
	}
}
