package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"sync/atomic"

	"google.golang.org/grpc/codes"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
)

// Networking is the cluster's address plan: set once, when the cluster is bootstrapped,
// and refused if a member is later started with different values (changing it would
// strand every pod and Service address already handed out). An empty field means "what
// the cluster has", or the default when the cluster has nothing yet.
type Networking struct {
	// ClusterCIDR holds the pods' addresses; each node gets a slice of it (its podCIDR).
	ClusterCIDR string `json:"clusterCIDR"`
	// ServiceCIDR holds the Services' cluster IPs.
	ServiceCIDR string `json:"serviceCIDR"`
	// ClusterDomain is the DNS domain Services and pods are named under.
	ClusterDomain string `json:"clusterDomain"`
}

// The defaults are k3s': pods in 10.42.0.0/16, Services in 10.43.0.0/16.
const (
	DefaultClusterCIDR   = "10.42.0.0/16"
	DefaultServiceCIDR   = "10.43.0.0/16"
	DefaultClusterDomain = "cluster.local"
)

// networkingKind is where the cluster's Networking is recorded in the store. It is not
// an API kind: clients read it through the Cluster service's Status.
const networkingKind = "skiff.networking"

var networkingKey = store.Key{Kind: networkingKind, Name: "cluster"}

// withDefaults fills what n leaves empty with the defaults.
func (n Networking) withDefaults() Networking {
	if n.ClusterCIDR == "" {
		n.ClusterCIDR = DefaultClusterCIDR
	}
	if n.ServiceCIDR == "" {
		n.ServiceCIDR = DefaultServiceCIDR
	}
	if n.ClusterDomain == "" {
		n.ClusterDomain = DefaultClusterDomain
	}
	return n
}

// Validate checks the fields that are set: IPv4 prefixes written as their network
// address, a service range of /12 to /28 (Kubernetes' largest; 16 addresses at least),
// ranges that do not overlap, and a domain that is a DNS subdomain.
func (n Networking) Validate() error {
	var errs []error
	var cluster, service netip.Prefix
	var err error
	if n.ClusterCIDR != "" {
		if cluster, err = parseCIDR(n.ClusterCIDR); err != nil {
			errs = append(errs, fmt.Errorf("--cluster-cidr: %w", err))
		} else if cluster.Bits() > 30 {
			errs = append(errs, fmt.Errorf("--cluster-cidr %s: too small for pods: the prefix must be /30 or shorter", n.ClusterCIDR))
		}
	}
	if n.ServiceCIDR != "" {
		if service, err = parseCIDR(n.ServiceCIDR); err != nil {
			errs = append(errs, fmt.Errorf("--service-cidr: %w", err))
		} else if b := service.Bits(); b < 12 || b > 28 {
			errs = append(errs, fmt.Errorf("--service-cidr %s: the prefix must be between /12 and /28", n.ServiceCIDR))
		}
	}
	if cluster.IsValid() && service.IsValid() && cluster.Overlaps(service) {
		errs = append(errs, fmt.Errorf("--cluster-cidr %s and --service-cidr %s overlap", cluster, service))
	}
	if d := n.ClusterDomain; d != "" {
		for _, msg := range utilvalidation.IsDNS1123Subdomain(d) {
			errs = append(errs, fmt.Errorf("--cluster-domain %q: %s", d, msg))
		}
	}
	return errors.Join(errs...)
}

func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	switch {
	case err != nil:
		return p, fmt.Errorf("%q is not a CIDR (like 10.42.0.0/16)", s)
	case !p.Addr().Is4():
		return p, fmt.Errorf("%s: only IPv4 ranges are supported", s)
	case p.Masked() != p:
		return p, fmt.Errorf("%s is not a network address: did you mean %s?", s, p.Masked())
	}
	return p, nil
}

// networkPlan is a cluster's recorded Networking, parsed.
type networkPlan struct {
	Networking
	cluster, service netip.Prefix
	// dns is the kube-dns Service's cluster IP, kubernetes the kubernetes Service's.
	dns, kubernetes netip.Addr
}

func newNetworkPlan(n Networking) (*networkPlan, error) {
	n = n.withDefaults()
	if err := n.Validate(); err != nil {
		return nil, err
	}
	p := &networkPlan{Networking: n}
	p.cluster, _ = parseCIDR(n.ClusterCIDR)
	p.service, _ = parseCIDR(n.ServiceCIDR)
	p.kubernetes = nthAddr(p.service, 1)
	p.dns = nthAddr(p.service, 10)
	return p, nil
}

// KubernetesServiceHosts are the names and the address pods reach the API servers by,
// through the kubernetes Service in namespace default: its DNS names (kubernetes,
// kubernetes.default, kubernetes.default.svc and kubernetes.default.svc.DOMAIN) and its
// cluster IP, the service range's first address. An API server's serving certificate
// names them all, as kube-apiserver's does: in-cluster clients dial the cluster IP
// (KUBERNETES_SERVICE_HOST), and service-account issuer discovery the issuer's name,
// https://kubernetes.default.svc.cluster.local. Empty fields of n are the defaults.
func KubernetesServiceHosts(n Networking) ([]string, error) {
	plan, err := newNetworkPlan(n)
	if err != nil {
		return nil, err
	}
	svc := KubernetesService + "." + metav1.NamespaceDefault + ".svc"
	return []string{KubernetesService, KubernetesService + "." + metav1.NamespaceDefault, svc,
		svc + "." + plan.ClusterDomain, plan.kubernetes.String()}, nil
}

// nthAddr is the n-th address of p (the network address is the 0th).
func nthAddr(p netip.Prefix, n uint32) netip.Addr {
	a := p.Addr().As4()
	v := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	v += n
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// proto is the plan as the Cluster service reports it.
func (p *networkPlan) proto() *apiv1.Networking {
	return &apiv1.Networking{ClusterCidr: p.ClusterCIDR, ServiceCidr: p.ServiceCIDR, ClusterDomain: p.ClusterDomain,
		ClusterDns: p.dns.String()}
}

// ErrNetworkingChanged: a member was started with networking flags that differ from
// what the cluster recorded at bootstrap.
var ErrNetworkingChanged = errors.New("the cluster's networking is set once, at bootstrap")

// networking holds the cluster's plan once known (recorded or read by settle, or read
// on first use).
type networking struct {
	flags Networking // what this member was started with
	plan  atomic.Pointer[networkPlan]
}

// settle records the plan when the cluster has none (bootstrap), or checks that the
// flags this member was given agree with the recorded one.
func (nw *networking) settle(ctx context.Context, s *store.Store) error {
	rec, err := s.Get(ctx, networkingKey, store.ReadOptions{})
	if errors.Is(err, store.ErrNotFound) {
		plan, err := newNetworkPlan(nw.flags)
		if err != nil {
			return err
		}
		value, err := json.Marshal(plan.Networking)
		if err != nil {
			return err
		}
		_, err = s.Txn(ctx, store.Op{Type: store.Create, Key: networkingKey, Value: value})
		if err != nil && !errors.Is(err, store.ErrAlreadyExists) {
			return fmt.Errorf("record the cluster's networking: %w", err)
		}
		if rec, err = s.Get(ctx, networkingKey, store.ReadOptions{}); err != nil {
			return fmt.Errorf("read the cluster's networking: %w", err)
		}
	} else if err != nil {
		return fmt.Errorf("read the cluster's networking: %w", err)
	}
	plan, err := decodePlan(rec.Value)
	if err != nil {
		return err
	}
	f := nw.flags
	for _, d := range []struct{ flag, given, recorded string }{
		{"--cluster-cidr", f.ClusterCIDR, plan.ClusterCIDR},
		{"--service-cidr", f.ServiceCIDR, plan.ServiceCIDR},
		{"--cluster-domain", f.ClusterDomain, plan.ClusterDomain},
	} {
		if d.given != "" && d.given != d.recorded {
			return &fatalError{fmt.Errorf("%s %s differs from the cluster's %s: %w; start this member with %s %s or without the flag",
				d.flag, d.given, d.recorded, ErrNetworkingChanged, d.flag, d.recorded)}
		}
	}
	nw.plan.Store(plan)
	return nil
}

func decodePlan(value []byte) (*networkPlan, error) {
	var n Networking
	if err := json.Unmarshal(value, &n); err != nil {
		return nil, fmt.Errorf("decode the cluster's networking: %w", err)
	}
	return newNetworkPlan(n)
}

// get returns the plan, reading it from the store if settle has not yet.
func (nw *networking) get(ctx context.Context, s *store.Store) (*networkPlan, error) {
	if p := nw.plan.Load(); p != nil {
		return p, nil
	}
	rec, err := s.Get(ctx, networkingKey, store.ReadOptions{})
	if errors.Is(err, store.ErrNotFound) {
		return nil, statusError(codes.Unavailable, ReasonUnavailable, nil, "the cluster's networking is not recorded yet: the API server is starting")
	}
	if err != nil {
		return nil, err
	}
	p, err := decodePlan(rec.Value)
	if err != nil {
		return nil, err
	}
	nw.plan.Store(p)
	return p, nil
}

// fatalError is a settle failure that retrying cannot fix: the server stops.
type fatalError struct{ err error }

func (e *fatalError) Error() string { return e.err.Error() }
func (e *fatalError) Unwrap() error { return e.err }
