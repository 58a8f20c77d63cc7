package proxy

import (
	"net/netip"
	"strings"
)

// KubeDNS is the Service ("namespace/name") of the cluster DNS, whose cluster IP pods'
// resolv.conf names (the kubelet's --cluster-dns).
const KubeDNS = "kube-system/kube-dns"

// localDNS sends every port of the kube-dns Service to the node's own cluster DNS,
// addr (its port replacing the Service port's target), instead of to the Service's
// endpoints, as NodeLocal DNSCache answers a node's pods on the node: a pod's query to
// the kube-dns cluster IP never leaves its node, and needs no EndpointSlice of the
// nodes' DNS servers. An invalid addr changes nothing.
func localDNS(ports map[string]*servicePort, addr netip.AddrPort) {
	if !addr.IsValid() {
		return
	}
	for key, sp := range ports {
		if !strings.HasPrefix(key, KubeDNS+":") {
			continue
		}
		// The node's own DNS is a local endpoint too (internalTrafficPolicy Local).
		sp.endpoints = []endpoint{{ip: addr.Addr(), port: addr.Port()}}
		sp.local = sp.endpoints
		if sp.proto == 17 {
			sp.serving = sp.endpoints
		}
	}
}
