// Package clusterdns is the cluster DNS: a DNS server (github.com/miekg/dns) that
// answers for the cluster domain from informer caches of Services and EndpointSlices,
// as CoreDNS' kubernetes plugin does, and forwards every other name to upstream
// resolvers:
//
//   - svc.ns.svc.DOMAIN: A → the Service's cluster IP; for a headless Service, the
//     addresses of its ready endpoints; an ExternalName Service is a CNAME to its name.
//     AAAA (Skiff's Services are IPv4) has no data.
//   - _port._proto.svc.ns.svc.DOMAIN: SRV for a named port, the target the Service's
//     name (or, headless, each ready endpoint's name), with its address as additional.
//   - hostname.svc.ns.svc.DOMAIN: A → the ready endpoint of a headless Service whose
//     pod has that hostname (a StatefulSet's pods, spec.hostname and spec.subdomain).
//   - a-b-c-d.ns.pod.DOMAIN: A → a.b.c.d, unchecked (CoreDNS' "pods insecure", what
//     Kubernetes clusters configure).
//   - d.c.b.a.in-addr.arpa: PTR → the Service whose cluster IP a.b.c.d is, or the names
//     of the ready endpoints with that address (hostname.svc.ns.svc.DOMAIN, or the
//     address dashed), as CoreDNS answers for the reverse zones Kubernetes' Corefile
//     gives it; the addresses of neither, and other reverse queries, go upstream (its
//     "fallthrough in-addr.arpa ip6.arpa").
//
// Names of the domain that name nothing are NXDOMAIN, with the domain's SOA.
package clusterdns

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
)

// TTL is the time to live of the cluster's records, CoreDNS' default.
const TTL = 5

// Config configures a server. Start from DefaultConfig.
type Config struct {
	// Domain is the cluster domain (the cluster's --cluster-domain).
	Domain string
	// Upstreams are the resolvers (host:port) names outside the domain go to, tried in
	// turn; none: such names are refused.
	Upstreams []string
	// UpstreamTimeout bounds one upstream exchange. Default 2s.
	UpstreamTimeout time.Duration
	// Logger receives the server's logs, named "clusterdns". Default: discarded.
	Logger hclog.Logger
}

// DefaultConfig is cluster.local, forwarding to the resolvers of /etc/resolv.conf.
func DefaultConfig() Config {
	cfg := Config{Domain: "cluster.local", UpstreamTimeout: 2 * time.Second, Logger: hclog.NewNullLogger()}
	if rc, err := dns.ClientConfigFromFile("/etc/resolv.conf"); err == nil {
		for _, s := range rc.Servers {
			cfg.Upstreams = append(cfg.Upstreams, net.JoinHostPort(s, rc.Port))
		}
	}
	return cfg
}

// Server answers DNS queries. It is a dns.Handler.
type Server struct {
	cfg    Config
	zone   string // the domain, fully qualified, lowercase
	svcs   *cache.Lister[*corev1.Service]
	slices *cache.Lister[*discoveryv1.EndpointSlice]
	synced []interface{ HasSynced() bool }
	log    hclog.Logger
}

// byService indexes EndpointSlices by their Service, "namespace/name".
const byService = "clusterdns.service"

// byAddress indexes Services by their cluster IPs and EndpointSlices by their endpoints'
// IPv4 addresses: the reverse lookups.
const byAddress = "clusterdns.address"

// reverseZone is the zone of IPv4 reverse lookups.
const reverseZone = "in-addr.arpa."

// New makes a server on the factory's informers (the factory is started by the caller).
func New(f *cache.Factory, cfg Config) (*Server, error) {
	if cfg.Logger == nil {
		return nil, errors.New("clusterdns config: logger: must be set")
	}
	if _, ok := dns.IsDomainName(cfg.Domain); !ok || cfg.Domain == "" {
		return nil, fmt.Errorf("clusterdns config: domain %q is not a domain name", cfg.Domain)
	}
	if cfg.UpstreamTimeout <= 0 {
		cfg.UpstreamTimeout = 2 * time.Second
	}
	svcInf := cache.InformerFor[*corev1.Service](f, "", client.ListOptions{})
	sliceInf := cache.InformerFor[*discoveryv1.EndpointSlice](f, "", client.ListOptions{})
	sliceInf.AddIndexer(byService, func(es *discoveryv1.EndpointSlice) []string {
		if svc := es.Labels[discoveryv1.LabelServiceName]; svc != "" {
			return []string{es.Namespace + "/" + svc}
		}
		return nil
	})
	svcInf.AddIndexer(byAddress, func(svc *corev1.Service) []string {
		ips := make([]string, 0, 1)
		for _, ip := range append([]string{svc.Spec.ClusterIP}, svc.Spec.ClusterIPs...) {
			if ip != "" && ip != corev1.ClusterIPNone && !slices.Contains(ips, ip) {
				ips = append(ips, ip)
			}
		}
		return ips
	})
	sliceInf.AddIndexer(byAddress, func(es *discoveryv1.EndpointSlice) []string {
		if es.AddressType != discoveryv1.AddressTypeIPv4 {
			return nil
		}
		var ips []string
		for _, ep := range es.Endpoints {
			ips = append(ips, ep.Addresses...)
		}
		return ips
	})
	return &Server{cfg: cfg, zone: dns.Fqdn(strings.ToLower(cfg.Domain)), svcs: svcInf.Lister(), slices: sliceInf.Lister(),
		synced: []interface{ HasSynced() bool }{svcInf, sliceInf}, log: cfg.Logger.Named("clusterdns")}, nil
}

// Serve answers on pc (UDP) and ln (TCP) until ctx ends, once the caches have synced.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn, ln net.Listener) error {
	if !cache.WaitForSync(ctx, s.synced...) {
		return ctx.Err()
	}
	udp := &dns.Server{PacketConn: pc, Handler: s}
	tcp := &dns.Server{Listener: ln, Handler: s}
	errc := make(chan error, 2)
	go func() { errc <- udp.ActivateAndServe() }()
	go func() { errc <- tcp.ActivateAndServe() }()
	s.log.Info("serving", "udp", pc.LocalAddr(), "tcp", ln.Addr(), "domain", s.cfg.Domain)
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	udp.Shutdown()
	tcp.Shutdown()
	return err
}

// ServeDNS answers one query.
func (s *Server) ServeDNS(w dns.ResponseWriter, r *dns.Msg) {
	if len(r.Question) != 1 {
		m := new(dns.Msg)
		m.SetRcode(r, dns.RcodeFormatError)
		w.WriteMsg(m)
		return
	}
	q := r.Question[0]
	name := strings.ToLower(q.Name)
	if q.Qtype == dns.TypePTR && dns.IsSubDomain(reverseZone, name) {
		if answer := s.reverse(name); len(answer) > 0 {
			m := new(dns.Msg)
			m.SetReply(r)
			m.Authoritative = true
			m.Answer = answer
			w.WriteMsg(m)
			return
		}
	}
	if !dns.IsSubDomain(s.zone, name) {
		w.WriteMsg(s.forward(r))
		return
	}
	m := new(dns.Msg)
	m.SetReply(r)
	m.Authoritative = true
	answer, extra, found := s.resolve(name, q.Qtype)
	if !found {
		m.Rcode = dns.RcodeNameError
	}
	m.Answer, m.Extra = answer, extra
	if len(answer) == 0 {
		m.Ns = []dns.RR{s.soa()}
	}
	w.WriteMsg(m)
}

func (s *Server) soa() dns.RR {
	return &dns.SOA{Hdr: dns.RR_Header{Name: s.zone, Rrtype: dns.TypeSOA, Class: dns.ClassINET, Ttl: TTL},
		Ns: "ns.dns." + s.zone, Mbox: "hostmaster." + s.zone, Serial: 1, Refresh: 7200, Retry: 1800, Expire: 86400, Minttl: TTL}
}

// resolve answers a name of the zone: the records of type qtype (CNAME for any type of
// an ExternalName Service), extra records, and whether the name exists.
func (s *Server) resolve(name string, qtype uint16) (answer, extra []dns.RR, found bool) {
	labels := dns.SplitDomainName(strings.TrimSuffix(name, s.zone))
	n := len(labels)
	switch {
	case n == 3 && labels[2] == "pod":
		ip, err := netip.ParseAddr(strings.ReplaceAll(labels[0], "-", "."))
		if err != nil || !ip.Is4() {
			return nil, nil, false
		}
		if qtype == dns.TypeA {
			answer = append(answer, a(name, ip.String()))
		}
		return answer, nil, true
	case n < 3 || labels[n-1] != "svc":
		return nil, nil, false
	}
	ns, svcName := labels[n-2], labels[n-3]
	svc, ok := s.svcs.Get(ns, svcName)
	if !ok {
		return nil, nil, false
	}
	svcFQDN := svcName + "." + ns + ".svc." + s.zone
	switch n {
	case 3: // svc.ns.svc
		return s.serviceRecords(name, svc, qtype)
	case 4: // hostname.svc.ns.svc
		if qtype != dns.TypeA {
			return nil, nil, s.hasHostname(svc, labels[0])
		}
		for _, ep := range s.ready(svc) {
			if ep.Hostname != nil && *ep.Hostname == labels[0] {
				answer = append(answer, a(name, ep.Addresses[0]))
			}
		}
		return answer, nil, len(answer) > 0
	case 5: // _port._proto.svc.ns.svc
		port, proto := strings.TrimPrefix(labels[0], "_"), strings.TrimPrefix(labels[1], "_")
		if port == labels[0] || proto == labels[1] {
			return nil, nil, false
		}
		return s.srvRecords(name, svcFQDN, svc, port, proto, qtype)
	}
	return nil, nil, false
}

// reverse answers a PTR query of the reverse zone: the name of the Service whose cluster
// IP the address is, else those of the ready endpoints with the address; none for an
// address of neither.
func (s *Server) reverse(name string) []dns.RR {
	labels := dns.SplitDomainName(strings.TrimSuffix(name, reverseZone))
	if len(labels) != 4 {
		return nil
	}
	slices.Reverse(labels)
	ip, err := netip.ParseAddr(strings.Join(labels, "."))
	if err != nil || !ip.Is4() {
		return nil
	}
	addr := ip.String()
	ptr := func(target string) dns.RR {
		return &dns.PTR{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypePTR, Class: dns.ClassINET, Ttl: TTL}, Ptr: target}
	}
	if svcs := s.svcs.ByIndex(byAddress, addr); len(svcs) > 0 {
		return []dns.RR{ptr(svcs[0].Name + "." + svcs[0].Namespace + ".svc." + s.zone)}
	}
	var answer []dns.RR
	for _, es := range s.slices.ByIndex(byAddress, addr) {
		svc := es.Labels[discoveryv1.LabelServiceName]
		if svc == "" {
			continue
		}
		for _, ep := range es.Endpoints {
			if !isReady(ep) || !slices.Contains(ep.Addresses, addr) {
				continue
			}
			host := strings.ReplaceAll(addr, ".", "-")
			if ep.Hostname != nil {
				host = *ep.Hostname
			}
			answer = append(answer, ptr(host+"."+svc+"."+es.Namespace+".svc."+s.zone))
		}
	}
	return answer
}

func a(name, ip string) dns.RR {
	return &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: TTL}, A: net.ParseIP(ip).To4()}
}

func (s *Server) serviceRecords(name string, svc *corev1.Service, qtype uint16) (answer, extra []dns.RR, found bool) {
	switch {
	case svc.Spec.Type == corev1.ServiceTypeExternalName:
		return []dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: TTL},
			Target: dns.Fqdn(svc.Spec.ExternalName)}}, nil, true
	case qtype != dns.TypeA:
		return nil, nil, true
	case svc.Spec.ClusterIP == corev1.ClusterIPNone:
		seen := map[string]bool{}
		for _, ep := range s.ready(svc) {
			if !seen[ep.Addresses[0]] {
				seen[ep.Addresses[0]] = true
				answer = append(answer, a(name, ep.Addresses[0]))
			}
		}
		return answer, nil, true
	case svc.Spec.ClusterIP != "":
		return []dns.RR{a(name, svc.Spec.ClusterIP)}, nil, true
	}
	return nil, nil, true
}

// srvRecords answers _port._proto.svc.ns.svc: for a Service with a cluster IP, the
// Service's name and port; headless, each ready endpoint's name (its hostname, or its
// address dashed) and port.
func (s *Server) srvRecords(name, svcFQDN string, svc *corev1.Service, port, proto string, qtype uint16) (answer, extra []dns.RR, found bool) {
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		p := &svc.Spec.Ports[i]
		if p.Name == port && strings.EqualFold(string(p.Protocol), proto) {
			sp = p
		}
	}
	if sp == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil, nil, false
	}
	if qtype != dns.TypeSRV {
		return nil, nil, true
	}
	srv := func(target string, port int32) dns.RR {
		return &dns.SRV{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeSRV, Class: dns.ClassINET, Ttl: TTL},
			Priority: 0, Weight: 100, Port: uint16(port), Target: target}
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		answer = append(answer, srv(svcFQDN, sp.Port))
		if svc.Spec.ClusterIP != "" {
			extra = append(extra, a(svcFQDN, svc.Spec.ClusterIP))
		}
		return answer, extra, true
	}
	for _, es := range s.slicesOf(svc) {
		var num *int32
		for _, p := range es.Ports {
			if p.Name != nil && *p.Name == port && p.Protocol != nil && strings.EqualFold(string(*p.Protocol), proto) {
				num = p.Port
			}
		}
		if num == nil {
			continue
		}
		for _, ep := range es.Endpoints {
			if !isReady(ep) {
				continue
			}
			host := strings.ReplaceAll(ep.Addresses[0], ".", "-")
			if ep.Hostname != nil {
				host = *ep.Hostname
			}
			target := host + "." + svcFQDN
			answer = append(answer, srv(target, *num))
			extra = append(extra, a(target, ep.Addresses[0]))
		}
	}
	return answer, extra, true
}

func (s *Server) hasHostname(svc *corev1.Service, host string) bool {
	return slices.ContainsFunc(s.ready(svc), func(ep discoveryv1.Endpoint) bool { return ep.Hostname != nil && *ep.Hostname == host })
}

func (s *Server) slicesOf(svc *corev1.Service) []*discoveryv1.EndpointSlice {
	return s.slices.ByIndex(byService, svc.Namespace+"/"+svc.Name)
}

// ready is the Service's ready IPv4 endpoints, each with an address.
func (s *Server) ready(svc *corev1.Service) []discoveryv1.Endpoint {
	var out []discoveryv1.Endpoint
	for _, es := range s.slicesOf(svc) {
		if es.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		for _, ep := range es.Endpoints {
			if isReady(ep) {
				out = append(out, ep)
			}
		}
	}
	return out
}

// isReady: an endpoint whose ready condition is unset counts as ready (discovery/v1).
func isReady(ep discoveryv1.Endpoint) bool {
	return len(ep.Addresses) > 0 && (ep.Conditions.Ready == nil || *ep.Conditions.Ready)
}

// forward sends a query outside the domain to the upstreams in turn; it is refused
// without any, and a server failure when none answers.
func (s *Server) forward(r *dns.Msg) *dns.Msg {
	if len(s.cfg.Upstreams) == 0 {
		m := new(dns.Msg)
		return m.SetRcode(r, dns.RcodeRefused)
	}
	c := &dns.Client{Timeout: s.cfg.UpstreamTimeout}
	for _, up := range s.cfg.Upstreams {
		in, _, err := c.Exchange(r, up)
		if err == nil && in.Truncated {
			tc := *c
			tc.Net = "tcp"
			in, _, err = tc.Exchange(r, up)
		}
		if err == nil {
			return in
		}
		s.log.Debug("upstream failed", "upstream", up, "name", r.Question[0].Name, "error", err)
	}
	m := new(dns.Msg)
	return m.SetRcode(r, dns.RcodeServerFailure)
}
