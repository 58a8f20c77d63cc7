package proxy

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"net/netip"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
)

// servicePort is one port of a Service as the proxy programs it.
type servicePort struct {
	key       string // namespace/name:port-name
	clusterIP netip.Addr
	proto     byte // IPPROTO_TCP, _UDP, _SCTP
	port      uint16
	nodePort  uint16 // 0: none
	affinity  uint32 // ClientIP affinity timeout in seconds; 0: none
	// endpoints are the Service port's endpoints on every node (the Cluster
	// traffic policy's); local are those on the proxy's node.
	endpoints, local []endpoint
	// internalLocal and externalLocal: internalTrafficPolicy (cluster IP) and
	// externalTrafficPolicy (node port) are Local.
	internalLocal, externalLocal bool
	// healthCheckNodePort is the Service's health check node port (0: none), and
	// localReady the number of its ready endpoints on the proxy's node.
	healthCheckNodePort uint16
	localReady          int
	// serving are, for a UDP port, the endpoints whose flows go on (ready or
	// serving, terminating or not, on any node), sorted: a flow's conntrack entry
	// to another is deleted (conntrack.go).
	serving []endpoint
}

// internal are the endpoints of connections to the cluster IP.
func (sp *servicePort) internal() []endpoint {
	if sp.internalLocal {
		return sp.local
	}
	return sp.endpoints
}

// external are the endpoints of connections to the node port.
func (sp *servicePort) external() []endpoint {
	if sp.externalLocal {
		return sp.local
	}
	return sp.endpoints
}

// plain is true when both traffic policies are Cluster: the node port then goes to
// the service chain, with no chain of its own.
func (sp *servicePort) plain() bool { return !sp.internalLocal && !sp.externalLocal }

// endpoint is an address a servicePort's new connections may go to.
type endpoint struct {
	ip   netip.Addr
	port uint16
}

func (e endpoint) String() string { return netip.AddrPortFrom(e.ip, e.port).String() }

// protoNumber is the IP protocol number of a Service port's protocol.
func protoNumber(p corev1.Protocol) (byte, bool) {
	switch p {
	case corev1.ProtocolTCP, "":
		return 6, true
	case corev1.ProtocolUDP:
		return 17, true
	case corev1.ProtocolSCTP:
		return 132, true
	}
	return 0, false
}

// servicePorts is what the proxy on node programs for svcs and their EndpointSlices:
// a servicePort for each port of each Service with a cluster IP (not headless, not
// ExternalName). Its endpoints are the ready ones of the slices; when none is ready,
// the serving terminating ones (Kubernetes' fallback, so that a rolling update that
// terminates every pod at once still serves); never a terminating one otherwise, so
// that terminating endpoints drain: their open connections go on (conntrack keeps a
// connection's translation) but no new connection goes to them. Its local endpoints
// are chosen the same way among the endpoints whose nodeName is node.
//
// A Service whose object and slices are the ones of the last call (the informers'
// objects are replaced, never changed) keeps its servicePorts, the very pointers, from
// cache, which it updates: a sync then looks again only at what changed.
func servicePorts(node string, svcs []*corev1.Service, eps []*discoveryv1.EndpointSlice, cache modelCache) (map[string]*servicePort, modelCache) {
	byService := make(map[serviceName][]*discoveryv1.EndpointSlice, len(svcs))
	for _, es := range eps {
		name := es.Labels[discoveryv1.LabelServiceName]
		if name == "" || es.AddressType != discoveryv1.AddressTypeIPv4 {
			continue
		}
		k := serviceName{es.Namespace, name}
		byService[k] = append(byService[k], es)
	}
	out := make(map[string]*servicePort, len(svcs))
	next := make(modelCache, len(svcs))
	for _, svc := range svcs {
		k := serviceName{svc.Namespace, svc.Name}
		slicesOf := byService[k]
		m := cache[k]
		if m == nil || m.svc != svc || !samePointers(m.slices, slicesOf) {
			m = &serviceModel{svc: svc, slices: slicesOf, ports: portsOf(node, svc, slicesOf)}
		}
		next[k] = m
		for _, sp := range m.ports {
			out[sp.key] = sp
		}
	}
	return out, next
}

// modelCache holds each Service's servicePorts.
type modelCache map[serviceName]*serviceModel

// serviceName is a Service's namespace and name.
type serviceName struct{ namespace, name string }

// serviceModel is a Service's servicePorts and the objects they were made of.
type serviceModel struct {
	svc    *corev1.Service
	slices []*discoveryv1.EndpointSlice
	ports  []*servicePort
}

// samePointers is true when a and b hold the same objects, in any order.
func samePointers[T any](a, b []*T) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// portsOf are the servicePorts of svc, whose EndpointSlices are slicesOf.
func portsOf(node string, svc *corev1.Service, slicesOf []*discoveryv1.EndpointSlice) []*servicePort {
	if svc.Spec.Type == corev1.ServiceTypeExternalName {
		return nil
	}
	ip, err := netip.ParseAddr(svc.Spec.ClusterIP)
	if err != nil || !ip.Is4() {
		return nil // headless ("None"), not allocated yet, or not IPv4
	}
	var affinity uint32
	if svc.Spec.SessionAffinity == corev1.ServiceAffinityClientIP {
		affinity = uint32(corev1.DefaultClientIPServiceAffinitySeconds)
		if c := svc.Spec.SessionAffinityConfig; c != nil && c.ClientIP != nil && c.ClientIP.TimeoutSeconds != nil {
			affinity = uint32(*c.ClientIP.TimeoutSeconds)
		}
	}
	var out []*servicePort
	for _, p := range svc.Spec.Ports {
		proto, ok := protoNumber(p.Protocol)
		if !ok || p.Port <= 0 || p.Port > 65535 {
			continue
		}
		sp := &servicePort{
			key:       svc.Namespace + "/" + svc.Name + ":" + p.Name,
			clusterIP: ip, proto: proto, port: uint16(p.Port), affinity: affinity,
		}
		if p.NodePort > 0 && p.NodePort <= 65535 && svc.Spec.Type != corev1.ServiceTypeClusterIP {
			sp.nodePort = uint16(p.NodePort)
		}
		sp.internalLocal = svc.Spec.InternalTrafficPolicy != nil && *svc.Spec.InternalTrafficPolicy == corev1.ServiceInternalTrafficPolicyLocal
		// externalTrafficPolicy concerns only what comes from outside: the node
		// ports here (Skiff's LoadBalancers are served on them).
		sp.externalLocal = sp.nodePort != 0 && svc.Spec.ExternalTrafficPolicy == corev1.ServiceExternalTrafficPolicyLocal
		if h := svc.Spec.HealthCheckNodePort; h > 0 && h <= 65535 && sp.externalLocal && svc.Spec.Type == corev1.ServiceTypeLoadBalancer {
			sp.healthCheckNodePort = uint16(h)
		}
		sp.endpoints, sp.local, sp.localReady, sp.serving = endpointsOf(slicesOf, p, node)
		if proto != 17 {
			sp.serving = nil
		}
		out = append(out, sp)
	}
	return out
}

// endpointsOf are the endpoints of the slices for the Service port p, sorted: on
// every node, and on node; how many of node's are ready; and the serving ones
// (ready, or serving whether terminating or not) on every node.
func endpointsOf(eps []*discoveryv1.EndpointSlice, p corev1.ServicePort, node string) (all, local []endpoint, nLocalReady int, serving []endpoint) {
	var ready, terminating, localReady, localTerminating, servingAll []endpoint
	proto := p.Protocol
	if proto == "" {
		proto = corev1.ProtocolTCP
	}
	for _, es := range eps {
		var port int32 = -1
		for _, ep := range es.Ports {
			epProto := corev1.ProtocolTCP
			if ep.Protocol != nil {
				epProto = *ep.Protocol
			}
			name := ""
			if ep.Name != nil {
				name = *ep.Name
			}
			if name == p.Name && epProto == proto && ep.Port != nil {
				port = *ep.Port
			}
		}
		if port <= 0 || port > 65535 {
			continue
		}
		for _, e := range es.Endpoints {
			c := e.Conditions
			isReady := c.Ready == nil || *c.Ready
			serving := isReady
			if c.Serving != nil {
				serving = *c.Serving
			}
			isTerminating := c.Terminating != nil && *c.Terminating
			isLocal := node != "" && e.NodeName != nil && *e.NodeName == node
			for _, a := range e.Addresses {
				ip, err := netip.ParseAddr(a)
				if err != nil || !ip.Is4() {
					continue
				}
				ep := endpoint{ip, uint16(port)}
				if isReady || serving {
					servingAll = append(servingAll, ep)
				}
				switch {
				case isReady:
					ready = append(ready, ep)
					if isLocal {
						localReady = append(localReady, ep)
					}
				case serving && isTerminating:
					terminating = append(terminating, ep)
					if isLocal {
						localTerminating = append(localTerminating, ep)
					}
				}
			}
		}
	}
	all, local = usable(ready, terminating), usable(localReady, localTerminating)
	if len(localReady) > 0 {
		nLocalReady = len(local)
	}
	return all, local, nLocalReady, usable(servingAll, nil)
}

// usable are the ready endpoints, sorted; when none is, the serving terminating ones.
func usable(ready, terminating []endpoint) []endpoint {
	out := ready
	if len(out) == 0 {
		out = terminating
	}
	slices.SortFunc(out, func(a, b endpoint) int {
		if c := a.ip.Compare(b.ip); c != 0 {
			return c
		}
		return int(a.port) - int(b.port)
	})
	return slices.Compact(out)
}

// chainName is a chain's (or set's) name: prefix and a hash of the parts, short
// enough for nftables' 256-byte names and stable across restarts.
func chainName(prefix string, parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return prefix + "-" + strings.ToLower(base32.StdEncoding.EncodeToString(h[:10]))
}

// fingerprint is what the service chain's rules depend on.
func (sp *servicePort) fingerprint() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d %d %d %d %t %t|", sp.clusterIP, sp.proto, sp.port, sp.nodePort, sp.affinity, sp.internalLocal, sp.externalLocal)
	for _, e := range sp.endpoints {
		b.WriteString(e.String())
		b.WriteByte(',')
	}
	b.WriteByte('|')
	if !sp.plain() {
		for _, e := range sp.local {
			b.WriteString(e.String())
			b.WriteByte(',')
		}
	}
	return b.String()
}
