// Package endpointslice is the EndpointSlice controller: for every Service with a
// selector it keeps discovery.k8s.io/v1 EndpointSlices listing the pods the selector
// picks that have an address — each endpoint ready, serving and terminating as its pod
// is (Ready condition, deletion), with its node, zone and, for a pod whose subdomain is
// the Service, its hostname — at most MaxEndpointsPerSlice endpoints a slice, one slice
// per set of resolved ports (a named targetPort may resolve to different container
// ports in different pods).
//
// As Kubernetes' controller, it changes as few slices as it can: an endpoint stays in
// the slice it is in while its pod lasts (updated in place when its conditions change);
// a slice that loses endpoints is rewritten without them; new endpoints fill the slices
// being rewritten anyway before any other, and only then get new slices. A Service
// whose pods have no endpoint keeps one empty slice (Kubernetes' placeholder).
//
// Slices are the controller's when labelled endpointslice.kubernetes.io/managed-by:
// endpointslice-controller.k8s.io; it never touches others. The informer cache may not
// yet show a slice the controller just wrote: it remembers the resourceVersion of each
// of its writes and waits for the cache to catch up before it syncs that Service again
// (Kubernetes' endpointSliceTracker), so that a stale cache never makes it write twice.
package endpointslice

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/controllers/replicaset"
)

// ManagedBy is the value of discoveryv1.LabelManagedBy on the slices this controller
// owns: Kubernetes' controller's name, so that tools reading it find what they expect.
const ManagedBy = "endpointslice-controller.k8s.io"

// DefaultMaxEndpointsPerSlice is Kubernetes' --max-endpoints-per-slice default.
const DefaultMaxEndpointsPerSlice = 100

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers sync different Services concurrently. Default 20.
	Workers int
	// MaxEndpointsPerSlice is how many endpoints a slice holds at most. Default 100.
	MaxEndpointsPerSlice int
	// Logger receives the controller's logs, named "endpointslice". Default: discarded.
	Logger hclog.Logger
}

// DefaultConfig has Kubernetes' values.
func DefaultConfig() Config {
	return Config{Workers: 20, MaxEndpointsPerSlice: DefaultMaxEndpointsPerSlice, Logger: hclog.NewNullLogger()}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.MaxEndpointsPerSlice < 1 || c.MaxEndpointsPerSlice > 1000 {
		errs = append(errs, fmt.Errorf("maxEndpointsPerSlice: %d must be between 1 and 1000", c.MaxEndpointsPerSlice))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("endpointslice controller config: %w", err)
	}
	return nil
}

// Controller is the EndpointSlice controller.
type Controller struct {
	cfg    Config
	sp     *ServicePods
	slices *cache.Lister[*discoveryv1.EndpointSlice]
	nodes  *cache.Lister[*corev1.Node]
	synced []interface{ HasSynced() bool }
	queue  *workqueue.Queue
	log    hclog.Logger
	writer *Writer
}

// byService indexes the controller's slices by their Service, "namespace/name".
const byService = "service"

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sp := NewServicePods(f)
	sliceInf := cache.InformerFor[*discoveryv1.EndpointSlice](f, "", client.ListOptions{})
	nodeInf := cache.InformerFor[*corev1.Node](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, sp: sp, slices: sliceInf.Lister(), nodes: nodeInf.Lister(),
		synced: []interface{ HasSynced() bool }{sp, sliceInf, nodeInf},
		queue:  workqueue.New(workqueue.Config{}), log: cfg.Logger.Named("endpointslice"), writer: NewWriter(cs, ManagedBy)}
	sp.Watch(c.queue.Add)
	// A slice as the controller's own write left it brings its Service nothing new.
	c.writer.Track(sliceInf, byService, c.queue.Add)
	return c, nil
}

// Run syncs Services until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// StaleRetry is when a Service whose slices the cache does not show as last written is
// looked at again (the informer's event usually comes first).
const StaleRetry = 100 * time.Millisecond

// Reconcile syncs the slices of one Service, "namespace/name".
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	current := c.slices.ByIndex(byService, key)
	if c.writer.Stale(key, current) {
		return StaleRetry, nil
	}
	svc, ok := c.sp.Services.Get(ns, name)
	var ch Changes
	if !ok || svc.DeletionTimestamp != nil || svc.Spec.Selector == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		// Not (or no longer) the controller's to fill: a Service gone (its slices would
		// go with it, as its dependents; deleting them now frees their endpoints at once),
		// one without a selector (its slices are the user's), an ExternalName one.
		ch.Delete = current
	} else {
		ch = Plan(svc, c.sp.Of(svc), current, c.zoneOf, c.cfg.MaxEndpointsPerSlice)
	}
	return 0, c.writer.Apply(ctx, key, ch)
}

func (c *Controller) zoneOf(node string) string {
	if n, ok := c.nodes.Get("", node); ok {
		return n.Labels[corev1.LabelTopologyZone]
	}
	return ""
}

// Plan computes the changes to a Service's slices (current: those the controller
// manages) from the pods its selector picks. zoneOf names a node's zone ("" unknown).
// A Service whose pods have no endpoint keeps one empty slice.
func Plan(svc *corev1.Service, pods []*corev1.Pod, current []*discoveryv1.EndpointSlice, zoneOf func(node string) string, maxPerSlice int) Changes {
	groups := Groups{}
	for _, pod := range pods {
		if ep, ok := endpointFor(svc, pod, zoneOf); ok {
			groups.Add(discoveryv1.AddressTypeIPv4, portsFor(svc, pod), ep)
		}
	}
	return Slicing{New: func(_ discoveryv1.AddressType, ports []discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
		return newSlice(svc, ports)
	}, SetMeta: func(es *discoveryv1.EndpointSlice) { setMeta(es, svc) }, Max: maxPerSlice, Placeholder: true}.Plan(groups, current)
}

// endpointFor is pod's endpoint, if it has one: a pod with an address that has not
// finished, terminating pods included.
func endpointFor(svc *corev1.Service, pod *corev1.Pod, zoneOf func(string) string) (discoveryv1.Endpoint, bool) {
	if !HasEndpoint(pod, true) {
		return discoveryv1.Endpoint{}, false
	}
	ready := replicaset.IsReady(pod)
	terminating := pod.DeletionTimestamp != nil
	serving := ready || svc.Spec.PublishNotReadyAddresses
	ep := discoveryv1.Endpoint{
		Addresses: []string{pod.Status.PodIP},
		Conditions: discoveryv1.EndpointConditions{Ready: new(serving && !terminating || svc.Spec.PublishNotReadyAddresses),
			Serving: new(serving), Terminating: new(terminating)},
		TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID},
	}
	if n := pod.Spec.NodeName; n != "" {
		ep.NodeName = new(n)
		if z := zoneOf(n); z != "" {
			ep.Zone = new(z)
		}
	}
	if h := Hostname(svc, pod); h != "" {
		ep.Hostname = new(h)
	}
	return ep, true
}

// portsFor is the Service's ports as pod serves them (FindPort); a port whose name no
// container has is left out for that pod, as in Kubernetes.
func portsFor(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		num, ok := FindPort(pod, &sp)
		if !ok {
			continue
		}
		out = append(out, discoveryv1.EndpointPort{Name: new(sp.Name), Protocol: new(sp.Protocol), Port: new(num), AppProtocol: sp.AppProtocol})
	}
	return out
}

// SlicePrefix is the generateName of a Service's slices: its name and a dash, cut so
// that generateName leaves room for 5 random characters.
func SlicePrefix(svc string) string {
	prefix := svc + "-"
	if len(prefix) > 58 {
		prefix = prefix[:58]
	}
	return prefix
}

// newSlice is an empty slice of svc with ports.
func newSlice(svc *corev1.Service, ports []discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{GenerateName: SlicePrefix(svc.Name), Namespace: svc.Namespace},
		AddressType: discoveryv1.AddressTypeIPv4, Ports: ports}
	setMeta(es, svc)
	return es
}

// setMeta gives a slice its Service's labels (but for the headless one, set only on a
// headless Service's slices), the controller's own and the Service as controller owner,
// as Kubernetes does.
func setMeta(es *discoveryv1.EndpointSlice, svc *corev1.Service) {
	l := map[string]string{}
	for k, v := range svc.Labels {
		l[k] = v
	}
	delete(l, corev1.IsHeadlessService)
	if svc.Spec.ClusterIP == corev1.ClusterIPNone {
		l[corev1.IsHeadlessService] = ""
	}
	l[discoveryv1.LabelServiceName] = svc.Name
	l[discoveryv1.LabelManagedBy] = ManagedBy
	es.Labels = l
	es.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
		Controller: new(true), BlockOwnerDeletion: new(true)}}
}
