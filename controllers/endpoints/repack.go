package endpoints

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
)

// Repack is Kubernetes' RepackSubsets: subsets in their canonical form, so that two
// lists of the same endpoints compare equal. Each address (by IP and target UID) is
// mapped to the ports it serves, not ready on a port if any subset says so; addresses
// serving the same ports, with the same readiness, share one subset. Addresses, ports
// and subsets are sorted (Kubernetes sorts by hash, an order of its own; this one is
// by value, as deterministic).
func Repack(subsets []corev1.EndpointSubset) []corev1.EndpointSubset {
	type address struct {
		a     corev1.EndpointAddress
		key   string
		ready bool
	}
	type port struct {
		p     corev1.EndpointPort // Port -1: the sentinel of a subset without ports
		addrs map[string]*address // by address key
	}
	first := map[string]corev1.EndpointAddress{} // the first occurrence of each address
	ports := map[string]*port{}
	var portOrder []string
	mapAddress := func(a corev1.EndpointAddress, p corev1.EndpointPort, ready bool) {
		ak := addressKey(a)
		if _, ok := first[ak]; !ok {
			first[ak] = a
		}
		pk := portKey(p)
		pe := ports[pk]
		if pe == nil {
			pe = &port{p: p, addrs: map[string]*address{}}
			ports[pk] = pe
			portOrder = append(portOrder, pk)
		}
		// Not ready on a port once is not ready on it.
		if was, ok := pe.addrs[ak]; !ok {
			pe.addrs[ak] = &address{a: first[ak], key: ak, ready: ready}
		} else if was.ready {
			was.ready = ready
		}
	}
	for _, ss := range subsets {
		ps := ss.Ports
		if len(ps) == 0 {
			ps = []corev1.EndpointPort{{Port: -1}}
		}
		for _, p := range ps {
			for _, a := range ss.Addresses {
				mapAddress(a, p, true)
			}
			for _, a := range ss.NotReadyAddresses {
				mapAddress(a, p, false)
			}
		}
	}
	// The ports that the same addresses, as ready, serve share a subset.
	type group struct {
		key   string
		addrs []*address
		ports []corev1.EndpointPort
	}
	groups := map[string]*group{}
	for _, pk := range portOrder {
		pe := ports[pk]
		var keys []string
		var addrs []*address
		for _, a := range pe.addrs {
			addrs = append(addrs, a)
		}
		slices.SortFunc(addrs, func(x, y *address) int { return strings.Compare(x.key, y.key) })
		for _, a := range addrs {
			keys = append(keys, fmt.Sprintf("%s/%v", a.key, a.ready))
		}
		gk := strings.Join(keys, ",")
		g := groups[gk]
		if g == nil {
			g = &group{key: gk, addrs: addrs}
			groups[gk] = g
		}
		if pe.p.Port > 0 {
			g.ports = append(g.ports, pe.p)
		}
	}
	var out []corev1.EndpointSubset
	for _, g := range groups {
		ss := corev1.EndpointSubset{}
		for _, a := range g.addrs {
			if a.ready {
				ss.Addresses = append(ss.Addresses, a.a)
			} else {
				ss.NotReadyAddresses = append(ss.NotReadyAddresses, a.a)
			}
		}
		slices.SortFunc(g.ports, func(x, y corev1.EndpointPort) int { return strings.Compare(portKey(x), portKey(y)) })
		ss.Ports = g.ports
		out = append(out, ss)
	}
	slices.SortFunc(out, func(x, y corev1.EndpointSubset) int {
		return cmp.Or(strings.Compare(portsKey(x.Ports), portsKey(y.Ports)), strings.Compare(subsetAddressKey(x), subsetAddressKey(y)))
	})
	return out
}

// addressKey identifies an address: its IP and its target's UID (the same IP may be
// two pods', one going and one coming).
func addressKey(a corev1.EndpointAddress) string {
	if a.TargetRef != nil {
		return a.IP + "/" + string(a.TargetRef.UID)
	}
	return a.IP + "/"
}

func portKey(p corev1.EndpointPort) string {
	app := "-"
	if p.AppProtocol != nil {
		app = *p.AppProtocol
	}
	return fmt.Sprintf("%s/%05d/%s/%s", p.Name, p.Port, p.Protocol, app)
}

func portsKey(ps []corev1.EndpointPort) string {
	keys := make([]string, len(ps))
	for i, p := range ps {
		keys[i] = portKey(p)
	}
	return strings.Join(keys, ",")
}

func subsetAddressKey(ss corev1.EndpointSubset) string {
	var keys []string
	for _, a := range ss.Addresses {
		keys = append(keys, addressKey(a))
	}
	keys = append(keys, "|")
	for _, a := range ss.NotReadyAddresses {
		keys = append(keys, addressKey(a))
	}
	return strings.Join(keys, ",")
}
