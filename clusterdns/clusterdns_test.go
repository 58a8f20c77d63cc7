package clusterdns

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// upstream is a resolver on loopback that knows one name.
func upstream(t *testing.T) string {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &dns.Server{PacketConn: pc, Handler: dns.HandlerFunc(func(w dns.ResponseWriter, r *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(r)
		if r.Question[0].Name == "example.com." && r.Question[0].Qtype == dns.TypeA {
			rr, _ := dns.NewRR("example.com. 60 IN A 192.0.2.1")
			m.Answer = []dns.RR{rr}
		} else {
			m.Rcode = dns.RcodeNameError
		}
		w.WriteMsg(m)
	})}
	go srv.ActivateAndServe()
	t.Cleanup(func() { srv.Shutdown() })
	return pc.LocalAddr().String()
}

func endpoint(ip string, ready bool, hostname string) discoveryv1.Endpoint {
	ep := discoveryv1.Endpoint{Addresses: []string{ip}, Conditions: discoveryv1.EndpointConditions{Ready: new(ready)}}
	if hostname != "" {
		ep.Hostname = new(hostname)
	}
	return ep
}

func TestServer(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	port := func(name string, p int32, proto corev1.Protocol) corev1.ServicePort {
		return corev1.ServicePort{Name: name, Port: p, Protocol: proto, TargetPort: intstr.FromInt32(p)}
	}
	svcs := []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: "10.43.0.20",
			Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{port("http", 80, corev1.ProtocolTCP)}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "db", Namespace: "default"}, Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone,
			Selector: map[string]string{"app": "db"}, Ports: []corev1.ServicePort{port("pg", 5432, corev1.ProtocolTCP)}}},
		{ObjectMeta: metav1.ObjectMeta{Name: "ext", Namespace: "default"}, Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeExternalName,
			ExternalName: "example.com"}},
	}
	for _, s := range svcs {
		if _, err := cs.Services.Create(ctx, s); err != nil {
			t.Fatal(err)
		}
	}
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "db-1", Namespace: "default",
		Labels: map[string]string{discoveryv1.LabelServiceName: "db"}}, AddressType: discoveryv1.AddressTypeIPv4,
		Ports:     []discoveryv1.EndpointPort{{Name: new("pg"), Protocol: new(corev1.ProtocolTCP), Port: new(int32(5432))}},
		Endpoints: []discoveryv1.Endpoint{endpoint("10.42.1.5", true, "db-0"), endpoint("10.42.2.6", true, "db-1"), endpoint("10.42.2.7", false, "db-2")}}
	if _, err := cs.EndpointSlices.Create(ctx, es); err != nil {
		t.Fatal(err)
	}
	web := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default",
		Labels: map[string]string{discoveryv1.LabelServiceName: "web"}}, AddressType: discoveryv1.AddressTypeIPv4,
		Ports:     []discoveryv1.EndpointPort{{Name: new("http"), Protocol: new(corev1.ProtocolTCP), Port: new(int32(80))}},
		Endpoints: []discoveryv1.Endpoint{endpoint("10.42.3.3", true, "")}}
	if _, err := cs.EndpointSlices.Create(ctx, web); err != nil {
		t.Fatal(err)
	}

	f := cache.NewFactory(cs, nil)
	cfg := DefaultConfig()
	cfg.Upstreams = []string{upstream(t)}
	s, err := New(f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- s.Serve(sctx, pc, ln) }()
	defer func() {
		stop()
		if err := <-done; err != nil {
			t.Error(err)
		}
		cancel()
		f.Wait()
	}()

	query := func(network, name string, qtype uint16) *dns.Msg {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(name, qtype)
		addr := pc.LocalAddr().String()
		if network == "tcp" {
			addr = ln.Addr().String()
		}
		var in *dns.Msg
		waitfor.ConditionErr(t, 10*time.Second, "an answer to "+name, func() (bool, error) {
			var err error
			in, _, err = (&dns.Client{Net: network, Timeout: time.Second}).Exchange(m, addr)
			return err == nil, err
		})
		return in
	}
	answers := func(in *dns.Msg) []string {
		var out []string
		for _, rr := range in.Answer {
			out = append(out, strings.ReplaceAll(strings.TrimPrefix(rr.String(), rr.Header().String()), "\t", " "))
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name  string
		qtype uint16
		rcode int
		want  []string
	}{
		{"web.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.43.0.20"}},
		{"WEB.Default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.43.0.20"}},
		{"web.default.svc.cluster.local.", dns.TypeAAAA, dns.RcodeSuccess, nil},
		{"db.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.42.1.5", "10.42.2.6"}},
		{"db-1.db.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.42.2.6"}},
		{"db-2.db.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"_http._tcp.web.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess, []string{"0 100 80 web.default.svc.cluster.local."}},
		{"_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeSuccess,
			[]string{"0 100 5432 db-0.db.default.svc.cluster.local.", "0 100 5432 db-1.db.default.svc.cluster.local."}},
		{"_pg._udp.db.default.svc.cluster.local.", dns.TypeSRV, dns.RcodeNameError, nil},
		{"ext.default.svc.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"example.com."}},
		{"10-42-3-9.default.pod.cluster.local.", dns.TypeA, dns.RcodeSuccess, []string{"10.42.3.9"}},
		{"nope.default.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"web.other.svc.cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"cluster.local.", dns.TypeA, dns.RcodeNameError, nil},
		{"example.com.", dns.TypeA, dns.RcodeSuccess, []string{"192.0.2.1"}},
		// Reverse lookups: a cluster IP, a headless Service's endpoint by its hostname,
		// another endpoint by its address; the rest (a not-ready endpoint) goes upstream.
		{"20.0.43.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"web.default.svc.cluster.local."}},
		{"5.1.42.10.in-addr.arpa.", dns.TypePTR, dns.RcodeSuccess, []string{"db-0.db.default.svc.cluster.local."}},
		{"3.3.42.10.IN-ADDR.ARPA.", dns.TypePTR, dns.RcodeSuccess, []string{"10-42-3-3.web.default.svc.cluster.local."}},
		{"7.2.42.10.in-addr.arpa.", dns.TypePTR, dns.RcodeNameError, nil},
		{"missing.example.org.", dns.TypeA, dns.RcodeNameError, nil},
	} {
		for _, network := range []string{"udp", "tcp"} {
			t.Run(fmt.Sprintf("%s %s %s", network, dns.TypeToString[tc.qtype], tc.name), func(t *testing.T) {
				in := query(network, tc.name, tc.qtype)
				if in.Rcode != tc.rcode || !slices.Equal(answers(in), tc.want) {
					t.Fatalf("rcode %s, answers %q; want %s, %q", dns.RcodeToString[in.Rcode], answers(in), dns.RcodeToString[tc.rcode], tc.want)
				}
				if dns.IsSubDomain("cluster.local.", strings.ToLower(tc.name)) {
					if !in.Authoritative || len(in.Answer) == 0 && (len(in.Ns) != 1 || in.Ns[0].Header().Rrtype != dns.TypeSOA) {
						t.Fatalf("authoritative %v, authority %v", in.Authoritative, in.Ns)
					}
				}
			})
		}
	}
	// The SRV answer of a headless Service carries each target's address.
	if in := query("udp", "_pg._tcp.db.default.svc.cluster.local.", dns.TypeSRV); len(in.Extra) != 2 {
		t.Fatalf("additional records %v", in.Extra)
	}

	// Answers follow the caches: a new endpoint is answered for.
	es, err = cs.EndpointSlices.Get(ctx, "default", "db-1")
	if err != nil {
		t.Fatal(err)
	}
	es.Endpoints[2].Conditions.Ready = new(true)
	if _, err := cs.EndpointSlices.Update(ctx, es); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 10*time.Second, "db-2 answered for", func() (bool, string) {
		in := query("udp", "db-2.db.default.svc.cluster.local.", dns.TypeA)
		return slices.Equal(answers(in), []string{"10.42.2.7"}), fmt.Sprint(answers(in))
	})
}
