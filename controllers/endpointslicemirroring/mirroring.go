// Package endpointslicemirroring is Kubernetes' EndpointSlice mirroring controller: the
// Endpoints a user writes for a Service without a selector are mirrored into
// EndpointSlices, so that the service proxy and the cluster DNS, which read slices,
// send such a Service its traffic.
//
// The slices are labelled endpointslice.kubernetes.io/managed-by:
// endpointslicemirroring-controller.k8s.io and kubernetes.io/service-name, carry the
// Endpoints' other labels and annotations (but last-change-trigger-time and kubectl's
// last-applied-configuration) and are owned by the Endpoints. Each subset of the
// Endpoints (as Repack packs them) becomes the slices of its address type and ports, at
// most 1,000 of its addresses (Kubernetes' --mirroring-max-endpoints-per-subset); an
// address is ready as the subset lists it. Addresses that are not IPs are skipped.
//
// Endpoints are not mirrored (and their slices are deleted) when their Service is gone
// or has a selector (the EndpointSlice controller fills its slices), when labelled
// endpointslice.kubernetes.io/skip-mirror: "true", or when they hold a leader election
// record. The slices are kept as the EndpointSlice controller keeps its own
// (endpointslice.Slicing, endpointslice.Writer): as few changed as can be, and never
// written twice from a stale cache.
package endpointslicemirroring

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/controllers/endpoints"
	"github.com/skiffhq/skiff/controllers/endpointslice"
)

// ManagedBy is the value of discoveryv1.LabelManagedBy on the slices this controller
// owns: Kubernetes' controller's name.
const ManagedBy = "endpointslicemirroring-controller.k8s.io"

// MaxEndpointsPerSubset is how many addresses of one subset are mirrored, Kubernetes'
// default; a slice holds as many.
const MaxEndpointsPerSubset = 1000

// leaderAnnotation marks Endpoints used as a leader election lock (client-go's
// resourcelock.LeaderElectionRecordAnnotationKey).
const leaderAnnotation = "control-plane.alpha.kubernetes.io/leader"

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers sync different Endpoints concurrently. Default 5 (Kubernetes'
	// --mirroring-concurrent-service-endpoint-syncs).
	Workers int
	// Logger receives the controller's logs, named "endpointslicemirroring". Default:
	// discarded.
	Logger hclog.Logger
}

// DefaultConfig has Kubernetes' values.
func DefaultConfig() Config { return Config{Workers: 5, Logger: hclog.NewNullLogger()} }

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("endpointslice mirroring controller config: %w", err)
	}
	return nil
}

// Controller is the mirroring controller.
type Controller struct {
	cfg    Config
	svcs   *cache.Lister[*corev1.Service]
	eps    *cache.Lister[*corev1.Endpoints]
	slices *cache.Lister[*discoveryv1.EndpointSlice]
	synced []interface{ HasSynced() bool }
	queue  *workqueue.Queue
	log    hclog.Logger
	writer *endpointslice.Writer
}

// byEndpoints indexes the controller's slices by their Endpoints, "namespace/name".
const byEndpoints = "mirrored"

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	svcInf := cache.InformerFor[*corev1.Service](f, "", client.ListOptions{})
	epInf := cache.InformerFor[*corev1.Endpoints](f, "", client.ListOptions{})
	sliceInf := cache.InformerFor[*discoveryv1.EndpointSlice](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, svcs: svcInf.Lister(), eps: epInf.Lister(), slices: sliceInf.Lister(),
		synced: []interface{ HasSynced() bool }{svcInf, epInf, sliceInf},
		queue:  workqueue.New(workqueue.Config{}), log: cfg.Logger.Named("endpointslicemirroring"), writer: endpointslice.NewWriter(cs, ManagedBy)}
	svcChanged := func(s *corev1.Service) { c.queue.Add(cache.Key(s)) }
	svcInf.AddHandler(cache.Handler[*corev1.Service]{OnAdd: svcChanged,
		OnUpdate: func(_, s *corev1.Service) { svcChanged(s) }, OnDelete: svcChanged})
	epChanged := func(ep *corev1.Endpoints) { c.queue.Add(cache.Key(ep)) }
	epInf.AddHandler(cache.Handler[*corev1.Endpoints]{OnAdd: epChanged,
		OnUpdate: func(_, ep *corev1.Endpoints) { epChanged(ep) }, OnDelete: epChanged})
	c.writer.Track(sliceInf, byEndpoints, c.queue.Add)
	return c, nil
}

// Run syncs Endpoints until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Reconcile syncs the slices mirroring one Endpoints, "namespace/name".
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	current := c.slices.ByIndex(byEndpoints, key)
	if c.writer.Stale(key, current) {
		return endpointslice.StaleRetry, nil
	}
	ep, _ := c.eps.Get(ns, name)
	svc, _ := c.svcs.Get(ns, name)
	var ch endpointslice.Changes
	if ShouldMirror(ep, svc) {
		ch = Plan(ep, current)
	} else {
		ch.Delete = current
	}
	return 0, c.writer.Apply(ctx, key, ch)
}

// ShouldMirror says whether ep (nil: none) of Service svc (nil: none) is mirrored.
func ShouldMirror(ep *corev1.Endpoints, svc *corev1.Service) bool {
	if ep == nil || svc == nil || svc.Spec.Selector != nil || ep.Labels[discoveryv1.LabelSkipMirror] == "true" {
		return false
	}
	_, leader := ep.Annotations[leaderAnnotation]
	return !leader
}

// Plan computes the changes that bring current (the slices mirroring ep) to ep.
func Plan(ep *corev1.Endpoints, current []*discoveryv1.EndpointSlice) endpointslice.Changes {
	groups := endpointslice.Groups{}
	for _, ss := range endpoints.Repack(ep.Subsets) {
		ports := slicePorts(ss.Ports)
		added := 0
		for i, a := range append(append([]corev1.EndpointAddress{}, ss.Addresses...), ss.NotReadyAddresses...) {
			if added == MaxEndpointsPerSubset {
				break
			}
			e, t, ok := endpoint(a, i < len(ss.Addresses))
			if !ok {
				continue
			}
			groups.Add(t, ports, e)
			added++
		}
	}
	return endpointslice.Slicing{
		New: func(t discoveryv1.AddressType, ports []discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
			es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{GenerateName: endpointslice.SlicePrefix(ep.Name), Namespace: ep.Namespace},
				AddressType: t, Ports: ports}
			setMeta(es, ep)
			return es
		},
		SetMeta: func(es *discoveryv1.EndpointSlice) { setMeta(es, ep) },
		Max:     MaxEndpointsPerSubset,
	}.Plan(groups, current)
}

// endpoint is an Endpoints address as a slice's endpoint, with its address type; false
// when the address is not an IP.
func endpoint(a corev1.EndpointAddress, ready bool) (discoveryv1.Endpoint, discoveryv1.AddressType, bool) {
	ip, err := netip.ParseAddr(a.IP)
	if err != nil {
		return discoveryv1.Endpoint{}, "", false
	}
	t := discoveryv1.AddressTypeIPv4
	if ip.Is6() && !ip.Is4In6() {
		t = discoveryv1.AddressTypeIPv6
	}
	e := discoveryv1.Endpoint{Addresses: []string{ip.Unmap().String()}, Conditions: discoveryv1.EndpointConditions{Ready: new(ready)},
		TargetRef: a.TargetRef.DeepCopy(), NodeName: a.NodeName}
	if a.Hostname != "" {
		e.Hostname = new(a.Hostname)
	}
	return e, t, true
}

func slicePorts(ports []corev1.EndpointPort) []discoveryv1.EndpointPort {
	out := make([]discoveryv1.EndpointPort, 0, len(ports))
	for _, p := range ports {
		out = append(out, discoveryv1.EndpointPort{Name: new(p.Name), Port: new(p.Port), Protocol: new(p.Protocol), AppProtocol: p.AppProtocol})
	}
	return out
}

// setMeta gives a slice the Endpoints' labels and annotations (but the trigger time and
// kubectl's last applied configuration), the Service's name, the controller's label and
// the Endpoints as controller owner.
func setMeta(es *discoveryv1.EndpointSlice, ep *corev1.Endpoints) {
	l := map[string]string{}
	for k, v := range ep.Labels {
		l[k] = v
	}
	l[discoveryv1.LabelServiceName] = ep.Name
	l[discoveryv1.LabelManagedBy] = ManagedBy
	es.Labels = l
	var a map[string]string
	for k, v := range ep.Annotations {
		if k == corev1.EndpointsLastChangeTriggerTime || k == corev1.LastAppliedConfigAnnotation {
			continue
		}
		if a == nil {
			a = map[string]string{}
		}
		a[k] = v
	}
	es.Annotations = a
	es.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Endpoints", Name: ep.Name, UID: ep.UID,
		Controller: new(true), BlockOwnerDeletion: new(true)}}
}
