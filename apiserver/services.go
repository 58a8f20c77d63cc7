package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"slices"
	"strconv"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
)

// Services' cluster IPs and node ports are allocated by the API server, as Kubernetes'
// are, and never twice: each address or port in use is a record in the store (an
// allocation map with one entry per value, like Kubernetes' IPAddress objects), created
// in the same transaction as the Service that takes it and deleted in the same
// transaction as the Service that gives it up. The store's create-if-absent makes two
// Services taking one value at once impossible — whichever commits second fails and
// picks again — and a Service never exists without its records, or records without
// their Service, whatever fails when (a leader lost mid-write included).

const (
	// serviceIPKind records a cluster IP in use: name the address, value the Service
	// ("namespace/name"), uid the Service's.
	serviceIPKind = "skiff.serviceip"
	// nodePortKind records a node port in use: name the port number.
	nodePortKind = "skiff.nodeport"
)

// The node port range, Kubernetes' default (--service-node-port-range).
const (
	NodePortMin = 30000
	NodePortMax = 32767
)

// probes is how many random values an allocation tries, each checked against this
// node's state, before it scans every record for a free one.
const probes = 8

// valueRange is a range of values to allocate from: [base, base+size).
type valueRange struct {
	kind string
	base uint32
	size uint32
	// text names the range in messages.
	text string
	name func(v uint32) string
}

// serviceIPRange is the usable addresses of the service CIDR: all but the network and
// broadcast addresses.
func serviceIPRange(plan *networkPlan) valueRange {
	first := addrValue(plan.service.Addr()) + 1
	size := uint32(1)<<(32-plan.service.Bits()) - 2
	return valueRange{kind: serviceIPKind, base: first, size: size, text: plan.ServiceCIDR,
		name: func(v uint32) string { return valueAddr(v).String() }}
}

var nodePortRange = valueRange{kind: nodePortKind, base: NodePortMin, size: NodePortMax - NodePortMin + 1,
	text: fmt.Sprintf("%d-%d", NodePortMin, NodePortMax), name: func(v uint32) string { return strconv.FormatUint(uint64(v), 10) }}

func addrValue(a netip.Addr) uint32 {
	b := a.As4()
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

func valueAddr(v uint32) netip.Addr {
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// contains says v is in the range.
func (r valueRange) contains(v uint32) bool { return v >= r.base && v-r.base < r.size }

// dynamicOffset is where random allocation starts, as Kubernetes': the lower band of
// the range (a sixteenth, at least 16 and at most 256 values) is left to the values
// users ask for by number, and used only once the rest is full.
func (r valueRange) dynamicOffset() uint32 {
	return min(max(16, r.size/16), 256, r.size)
}

// errRangeFull: no value of the range is free.
var errRangeFull = errors.New("range is full")

// allocator picks free values, reading the allocation records of this node's store.
type allocator struct {
	store *store.Store
}

func (a allocator) taken(r valueRange, v uint32) bool {
	_, _, err := a.store.GetLocal(store.Key{Kind: r.kind, Name: r.name(v)})
	return !errors.Is(err, store.ErrNotFound)
}

// pick returns a free value, random in the upper band first, avoiding also those in
// avoid (values this request already took).
func (a allocator) pick(ctx context.Context, r valueRange, avoid map[uint32]bool) (uint32, error) {
	off := r.dynamicOffset()
	upper := r.size - off
	if upper > 0 {
		for range probes {
			v := r.base + off + rand.Uint32N(upper)
			if !avoid[v] && !a.taken(r, v) {
				return v, nil
			}
		}
	}
	recs, _, err := a.store.List(ctx, r.kind, store.ListOptions{Stale: true})
	if err != nil {
		return 0, err
	}
	used := make(map[string]bool, len(recs))
	for _, rec := range recs {
		used[rec.Name] = true
	}
	// Free values, upper band first, from a random start, as Kubernetes' allocator scans.
	scan := func(from, n uint32) (uint32, bool) {
		if n == 0 {
			return 0, false
		}
		start := rand.Uint32N(n)
		for i := range n {
			v := r.base + from + (start+i)%n
			if !avoid[v] && !used[r.name(v)] {
				return v, true
			}
		}
		return 0, false
	}
	if v, ok := scan(off, upper); ok {
		return v, nil
	}
	if v, ok := scan(0, off); ok {
		return v, nil
	}
	return 0, errRangeFull
}

// allocation is what a write of a Service takes and gives up: store operations
// to commit with it, and whether a clash on them is worth another try (the values were
// picked, not asked for).
type allocation struct {
	ops    []store.Op
	picked bool
}

// isAllocationClash says err is a create of an allocation record that found the value
// taken: another Service got it first.
func isAllocationClash(err error) bool {
	var pe *store.PreconditionError
	return errors.As(err, &pe) && errors.Is(err, store.ErrAlreadyExists) &&
		(pe.Key.Kind == serviceIPKind || pe.Key.Kind == nodePortKind || pe.Key.Kind == podCIDRKind)
}

// allocateService makes the allocation of next, a Service written over cur (nil: a
// create; deleting: the write deletes it): it fills next's cluster IP and node ports
// where they are to be allocated, and returns the records to create and delete.
func (r *resources) allocateService(ctx context.Context, cur, next *corev1.Service, deleting bool) (*allocation, error) {
	plan, err := r.networking.get(ctx, r.store)
	if err != nil {
		return nil, err
	}
	al := allocator{store: r.store}
	out := &allocation{}
	owner := next.Namespace + "/" + next.Name
	var errs field.ErrorList

	// Cluster IP.
	ipRange := serviceIPRange(plan)
	curIP, nextIP := "", ""
	if cur != nil && validation.ServiceNeedsClusterIP(cur) && !validation.IsHeadless(cur) {
		curIP = cur.Spec.ClusterIP
	}
	if !deleting && validation.ServiceNeedsClusterIP(next) && !validation.IsHeadless(next) {
		if next.Spec.ClusterIP == "" {
			v, err := al.pick(ctx, ipRange, nil)
			if err != nil {
				return nil, allocationFailed("serviceIP", err)
			}
			next.Spec.ClusterIP = valueAddr(v).String()
			next.Spec.ClusterIPs = []string{next.Spec.ClusterIP}
			out.picked = true
		} else if next.Spec.ClusterIP != curIP {
			ip, _ := netip.ParseAddr(next.Spec.ClusterIP) // validated
			p := field.NewPath("spec", "clusterIPs")
			switch v := addrValue(ip); {
			case !ipRange.contains(v):
				errs = append(errs, field.Invalid(p, next.Spec.ClusterIPs, fmt.Sprintf("failed to allocate IP %s: the provided IP (%s) is not in the valid range. The range of valid IPs is %s",
					ip, ip, ipRange.text)))
			case al.taken(ipRange, v):
				errs = append(errs, field.Invalid(p, next.Spec.ClusterIPs, fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", ip)))
			}
		}
		nextIP = next.Spec.ClusterIP
	}
	if nextIP != curIP {
		if nextIP != "" {
			out.ops = append(out.ops, store.Op{Type: store.Create, Key: store.Key{Kind: serviceIPKind, Name: nextIP}, Value: []byte(owner), UID: string(next.UID)})
		}
		if curIP != "" {
			if op, ok, err := r.release(ctx, serviceIPKind, curIP, cur); err != nil {
				return nil, err
			} else if ok {
				out.ops = append(out.ops, op)
			}
		}
	}

	// Node ports: one record per port number (a TCP and a UDP port of one Service may
	// share a number).
	curPorts, nextPorts := map[int32]bool{}, map[int32]bool{}
	if cur != nil && validation.ServiceNeedsNodePorts(cur) {
		for _, p := range cur.Spec.Ports {
			if p.NodePort != 0 {
				curPorts[p.NodePort] = true
			}
		}
	}
	avoid := map[uint32]bool{}
	if !deleting && validation.ServiceNeedsNodePorts(next) {
		for i := range next.Spec.Ports {
			if n := next.Spec.Ports[i].NodePort; n != 0 {
				avoid[uint32(n)] = true
			}
		}
		for i := range next.Spec.Ports {
			sp := &next.Spec.Ports[i]
			if sp.NodePort == 0 {
				v, err := al.pick(ctx, nodePortRange, avoid)
				if err != nil {
					return nil, allocationFailed("nodePort", err)
				}
				avoid[v] = true
				sp.NodePort = int32(v)
				out.picked = true
			} else if !curPorts[sp.NodePort] && !nextPorts[sp.NodePort] {
				p := field.NewPath("spec", "ports").Index(i).Child("nodePort")
				switch v := uint32(sp.NodePort); {
				case !nodePortRange.contains(v):
					errs = append(errs, field.Invalid(p, sp.NodePort, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", nodePortRange.text)))
				case al.taken(nodePortRange, v):
					errs = append(errs, field.Invalid(p, sp.NodePort, "provided port is already allocated"))
				}
			}
			nextPorts[sp.NodePort] = true
		}
	} else if !deleting {
		for i := range next.Spec.Ports {
			next.Spec.Ports[i].NodePort = 0
		}
	}
	// The health check node port (a LoadBalancer with externalTrafficPolicy Local):
	// from the node ports' range and records, as Kubernetes' allocator.
	if cur != nil && validation.ServiceNeedsHealthCheck(cur) && cur.Spec.HealthCheckNodePort != 0 {
		curPorts[cur.Spec.HealthCheckNodePort] = true
	}
	if !deleting && validation.ServiceNeedsHealthCheck(next) {
		p := field.NewPath("spec", "healthCheckNodePort")
		switch h := next.Spec.HealthCheckNodePort; {
		case h == 0:
			v, err := al.pick(ctx, nodePortRange, avoid)
			if err != nil {
				return nil, allocationFailed("healthCheckNodePort", err)
			}
			next.Spec.HealthCheckNodePort = int32(v)
			out.picked = true
		case nextPorts[h]:
			errs = append(errs, field.Invalid(p, h, "provided port is already allocated"))
		case !curPorts[h] && !nodePortRange.contains(uint32(h)):
			errs = append(errs, field.Invalid(p, h, fmt.Sprintf("provided port is not in the valid range. The range of valid ports is %s", nodePortRange.text)))
		case !curPorts[h] && al.taken(nodePortRange, uint32(h)):
			errs = append(errs, field.Invalid(p, h, "provided port is already allocated"))
		}
		nextPorts[next.Spec.HealthCheckNodePort] = true
	} else if !deleting {
		next.Spec.HealthCheckNodePort = 0
	}
	if len(errs) > 0 {
		return nil, invalid(kinds.MustLookup(kinds.Service), next.Name, validation.ErrorList(errs))
	}
	for _, n := range sortedPorts(nextPorts) {
		if !curPorts[n] {
			out.ops = append(out.ops, store.Op{Type: store.Create, Key: store.Key{Kind: nodePortKind, Name: strconv.Itoa(int(n))}, Value: []byte(owner), UID: string(next.UID)})
		}
	}
	for _, n := range sortedPorts(curPorts) {
		if !nextPorts[n] {
			if op, ok, err := r.release(ctx, nodePortKind, strconv.Itoa(int(n)), cur); err != nil {
				return nil, err
			} else if ok {
				out.ops = append(out.ops, op)
			}
		}
	}
	return out, nil
}

func sortedPorts(m map[int32]bool) []int32 {
	out := make([]int32, 0, len(m))
	for n := range m {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// release is the deletion of a value's record, if it is owner's; ok is false when there
// is no such record (nothing to release).
func (r *resources) release(ctx context.Context, kind, name string, owner kinds.Object) (store.Op, bool, error) {
	k := store.Key{Kind: kind, Name: name}
	rec, err := r.store.Get(ctx, k, store.ReadOptions{})
	if errors.Is(err, store.ErrNotFound) {
		return store.Op{}, false, nil
	}
	if err != nil {
		return store.Op{}, false, storeError(kinds.Of(owner), owner.GetName(), err)
	}
	if rec.UID != string(owner.GetUID()) {
		return store.Op{}, false, nil
	}
	return store.Op{Type: store.Delete, Key: k, IfRevision: rec.ModRevision, IfUID: rec.UID}, true, nil
}

// allocationFailed is Kubernetes' error for a dynamic allocation that failed.
func allocationFailed(what string, err error) error {
	return statusError(codes.Internal, "InternalError", nil, "Internal error occurred: failed to allocate a %s: %v", what, err)
}

// prepareServiceUpdate keeps what the API server allocated when an update leaves it out
// (as a manifest applied again does), and drops what the new type no longer has when
// the update did not change it: Kubernetes' patchAllocatedValues and
// dropTypeDependentFields.
func prepareServiceUpdate(cur, next *corev1.Service) {
	if validation.ServiceNeedsClusterIP(cur) && validation.ServiceNeedsClusterIP(next) {
		if next.Spec.ClusterIP == "" {
			next.Spec.ClusterIP = cur.Spec.ClusterIP
		}
		if len(next.Spec.ClusterIPs) == 0 {
			next.Spec.ClusterIPs = cur.Spec.ClusterIPs
		}
	}
	if validation.ServiceNeedsNodePorts(cur) && validation.ServiceNeedsNodePorts(next) {
		used := map[int32]bool{}
		for _, p := range next.Spec.Ports {
			if p.NodePort != 0 {
				used[p.NodePort] = true
			}
		}
		byName := map[string]int32{}
		for _, p := range cur.Spec.Ports {
			byName[p.Name] = p.NodePort
		}
		for i := range next.Spec.Ports {
			p := &next.Spec.Ports[i]
			if old := byName[p.Name]; p.NodePort == 0 && old != 0 && !used[old] {
				p.NodePort = old
				used[old] = true
			}
		}
	}
	switch needed, needs := validation.ServiceNeedsHealthCheck(cur), validation.ServiceNeedsHealthCheck(next); {
	case needed && needs && next.Spec.HealthCheckNodePort == 0:
		next.Spec.HealthCheckNodePort = cur.Spec.HealthCheckNodePort
	case needed && !needs && next.Spec.HealthCheckNodePort == cur.Spec.HealthCheckNodePort:
		next.Spec.HealthCheckNodePort = 0
	}
	if cur.Spec.Type == next.Spec.Type {
		return
	}
	if !validation.ServiceNeedsClusterIP(next) && next.Spec.ClusterIP == cur.Spec.ClusterIP && slices.Equal(next.Spec.ClusterIPs, cur.Spec.ClusterIPs) {
		next.Spec.ClusterIP, next.Spec.ClusterIPs = "", nil
		next.Spec.IPFamilies, next.Spec.IPFamilyPolicy = nil, nil
		next.Spec.InternalTrafficPolicy = nil
	}
	if !validation.ServiceNeedsNodePorts(next) && sameNodePorts(cur, next) {
		for i := range next.Spec.Ports {
			next.Spec.Ports[i].NodePort = 0
		}
	}
	external := next.Spec.Type == corev1.ServiceTypeNodePort || next.Spec.Type == corev1.ServiceTypeLoadBalancer
	if !external && next.Spec.ExternalTrafficPolicy == cur.Spec.ExternalTrafficPolicy {
		next.Spec.ExternalTrafficPolicy = ""
	}
	if next.Spec.Type != corev1.ServiceTypeLoadBalancer && ptrEqual(next.Spec.AllocateLoadBalancerNodePorts, cur.Spec.AllocateLoadBalancerNodePorts) {
		next.Spec.AllocateLoadBalancerNodePorts = nil
	}
	if next.Spec.Type != corev1.ServiceTypeLoadBalancer && ptrEqual(next.Spec.LoadBalancerClass, cur.Spec.LoadBalancerClass) {
		next.Spec.LoadBalancerClass = nil
	}
}

func sameNodePorts(a, b *corev1.Service) bool {
	if len(a.Spec.Ports) != len(b.Spec.Ports) {
		return false
	}
	for i := range a.Spec.Ports {
		if a.Spec.Ports[i].NodePort != b.Spec.Ports[i].NodePort {
			return false
		}
	}
	return true
}

func ptrEqual[T comparable](a, b *T) bool {
	return a == nil && b == nil || a != nil && b != nil && *a == *b
}

// sideOps are the store operations a write of next over cur carries besides its own:
// a Service's allocations, a Node's podCIDR.
func (r *resources) sideOps(ctx context.Context, cur, next kinds.Object) (*allocation, error) {
	deleting := next.GetDeletionTimestamp() != nil && !held(next)
	switch o := next.(type) {
	case *corev1.Service:
		return r.allocateService(ctx, cur.(*corev1.Service), o, deleting)
	case *corev1.Node:
		return r.allocateNodeCIDR(ctx, cur.(*corev1.Node), o, deleting)
	}
	return &allocation{}, nil
}

// writeError is storeError for a write that may have carried allocations: a value
// asked for by number that another Service took meanwhile is the asker's mistake.
func writeError(info *kinds.Info, name string, err error) error {
	var pe *store.PreconditionError
	if isAllocationClash(err) && errors.As(err, &pe) {
		fe := field.Invalid(field.NewPath("spec", "clusterIPs"), pe.Key.Name,
			fmt.Sprintf("failed to allocate IP %s: provided IP is already allocated", pe.Key.Name))
		switch pe.Key.Kind {
		case nodePortKind:
			fe = field.Invalid(field.NewPath("spec", "ports").Child("nodePort"), pe.Key.Name, "provided port is already allocated")
		case podCIDRKind:
			fe = field.Invalid(field.NewPath("spec", "podCIDRs").Index(0), pe.Key.Name, "provided CIDR is already allocated to another node")
		}
		return invalid(info, name, validation.ErrorList{fe})
	}
	return storeError(info, name, err)
}

// The Services the API server keeps, as Kubernetes': default/kubernetes (the API
// servers themselves) and kube-system/kube-dns (the cluster DNS, which every node
// answers on its address: it has no selector and no endpoints).
const (
	KubernetesService = "kubernetes"
	DNSService        = "kube-dns"
)

// ensureSystemServices creates the kubernetes and kube-dns Services unless they exist,
// and keeps the kubernetes Service's EndpointSlice listing the API servers.
func (r *resources) ensureSystemServices(ctx context.Context, apiAddr string, members map[string]string) error {
	plan, err := r.networking.get(ctx, r.store)
	if err != nil {
		return err
	}
	_, portText, err := net.SplitHostPort(apiAddr)
	if err != nil {
		return fmt.Errorf("API address %q: %w", apiAddr, err)
	}
	port, err := strconv.Atoi(portText)
	if err != nil {
		return fmt.Errorf("API address %q: port: %w", apiAddr, err)
	}
	services := []*corev1.Service{
		{ObjectMeta: metav1.ObjectMeta{Name: KubernetesService, Namespace: metav1.NamespaceDefault,
			Labels: map[string]string{"component": "apiserver", "provider": "kubernetes"}},
			Spec: corev1.ServiceSpec{ClusterIP: plan.kubernetes.String(), Ports: []corev1.ServicePort{
				{Name: "https", Port: 443, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt(port)}}}},
		{ObjectMeta: metav1.ObjectMeta{Name: DNSService, Namespace: metav1.NamespaceSystem,
			Labels: map[string]string{"k8s-app": "kube-dns", "kubernetes.io/cluster-service": "true", "kubernetes.io/name": "SkiffDNS"}},
			Spec: corev1.ServiceSpec{ClusterIP: plan.dns.String(), Ports: []corev1.ServicePort{
				{Name: "dns", Port: 53, Protocol: corev1.ProtocolUDP},
				{Name: "dns-tcp", Port: 53, Protocol: corev1.ProtocolTCP}}}},
	}
	for _, svc := range services {
		if err := r.ensure(ctx, svc); err != nil {
			return err
		}
	}
	return r.syncKubernetesEndpoints(ctx, port, members)
}

// ensure creates obj unless an object of its name exists.
func (r *resources) ensure(ctx context.Context, obj kinds.Object) error {
	o, err := kinds.Wrap(obj)
	if err != nil {
		return err
	}
	_, err = r.Create(ctx, &apiv1.CreateRequest{Object: o})
	if err == nil || status.Code(err) == codes.AlreadyExists {
		return nil
	}
	// Another member may have made it first: its allocation (a Service's cluster IP) is
	// then refused before its name is.
	info := kinds.MustLookup(o.GetKind())
	if _, _, gerr := r.get(ctx, info, keyOf(info, obj), store.ReadOptions{}); gerr == nil {
		return nil
	}
	return err
}

// syncKubernetesEndpoints makes the EndpointSlice default/kubernetes list the API
// servers that serve on port (apiServerAddrs), and the Endpoints default/kubernetes
// too, as Kubernetes' endpoint reconciler writes them (labelled skip-mirror: the slice
// is written here).
func (r *resources) syncKubernetesEndpoints(ctx context.Context, port int, members map[string]string) error {
	addrs := apiServerAddrs(port, members, utilnet.ResolveBindAddress)
	meta := func(l map[string]string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: KubernetesService, Namespace: metav1.NamespaceDefault, Labels: l}
	}
	es := &discoveryv1.EndpointSlice{
		ObjectMeta:  meta(map[string]string{discoveryv1.LabelServiceName: KubernetesService}),
		AddressType: discoveryv1.AddressTypeIPv4,
		Ports:       []discoveryv1.EndpointPort{{Name: new("https"), Protocol: new(corev1.ProtocolTCP), Port: new(int32(port))}},
	}
	ep := &corev1.Endpoints{ObjectMeta: meta(map[string]string{discoveryv1.LabelSkipMirror: "true"})}
	for _, a := range addrs {
		es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{a},
			Conditions: discoveryv1.EndpointConditions{Ready: new(true)}})
		if len(ep.Subsets) == 0 {
			ep.Subsets = []corev1.EndpointSubset{{Ports: []corev1.EndpointPort{{Name: "https", Port: int32(port), Protocol: corev1.ProtocolTCP}}}}
		}
		ep.Subsets[0].Addresses = append(ep.Subsets[0].Addresses, corev1.EndpointAddress{IP: a})
	}
	err := r.put(ctx, es, func(cur kinds.Object) {
		next := cur.(*discoveryv1.EndpointSlice)
		next.Labels, next.AddressType, next.Endpoints, next.Ports = es.Labels, es.AddressType, es.Endpoints, es.Ports
	})
	if err != nil {
		return err
	}
	return r.put(ctx, ep, func(cur kinds.Object) {
		next := cur.(*corev1.Endpoints)
		next.Labels, next.Subsets = ep.Labels, ep.Subsets
	})
}

// apiServerAddrs are the IPv4 addresses of the members (name: API address) that serve
// on port, sorted, as endpoints of the kubernetes Service. A member on a loopback or
// unspecified address is listed at the host's address (resolve: apimachinery's
// ResolveBindAddress, the default route's interface), as kube-apiserver advertises
// itself when bound there: an endpoint is never a loopback address. A member whose
// host's address cannot be found is left out.
func apiServerAddrs(port int, members map[string]string, resolve func(net.IP) (net.IP, error)) []string {
	var addrs []string
	for _, a := range members {
		host, p, err := net.SplitHostPort(a)
		if err != nil || p != strconv.Itoa(port) {
			continue
		}
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is4() {
			continue
		}
		if ip.IsLoopback() || ip.IsUnspecified() {
			hostIP, err := resolve(net.IP(ip.AsSlice()))
			if err != nil {
				continue
			}
			if ip, err = netip.ParseAddr(hostIP.String()); err != nil || !ip.Is4() || ip.IsLoopback() || ip.IsUnspecified() {
				continue
			}
		}
		addrs = append(addrs, ip.String())
	}
	slices.Sort(addrs)
	return slices.Compact(addrs)
}

// put creates obj, or gives the stored object of its name obj's content (set copies it
// onto a copy of the stored object).
func (r *resources) put(ctx context.Context, obj kinds.Object, set func(next kinds.Object)) error {
	info := kinds.Of(obj)
	_, err := r.update(ctx, info, keyOf(info, obj), 0, writeOptions{}, func(cur kinds.Object, _ *store.Object) (kinds.Object, error) {
		next := cur.DeepCopyObject().(kinds.Object)
		set(next)
		return next, nil
	})
	if status.Code(err) == codes.NotFound {
		return r.ensure(ctx, obj)
	}
	return err
}
