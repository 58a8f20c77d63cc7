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
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

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
	cfg     Config
	cs      *client.Clientset
	svcs    *cache.Lister[*corev1.Service]
	pods    *cache.Lister[*corev1.Pod]
	slices  *cache.Lister[*discoveryv1.EndpointSlice]
	nodes   *cache.Lister[*corev1.Node]
	synced  []interface{ HasSynced() bool }
	queue   *workqueue.Queue
	log     hclog.Logger
	tracker tracker
}

// byService indexes the controller's slices by their Service, "namespace/name".
const byService = "service"

// bySelector indexes Services with a selector under one of its labels, the first key's
// (cache.LabelValue), or "namespace/" for an empty selector (every pod of the namespace):
// a pod's change is matched only against the Services its labels could select, not
// against every Service of its namespace (1,000 Services × 10,000 pods at the start).
const bySelector = "selector"

func selectorIndex(s *corev1.Service) []string {
	if s.Spec.Selector == nil {
		return nil
	}
	if len(s.Spec.Selector) == 0 {
		return []string{s.Namespace + "/"}
	}
	k := slices.Min(slices.Collect(maps.Keys(s.Spec.Selector)))
	return []string{cache.LabelValue(s.Namespace, k, s.Spec.Selector[k])}
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	svcInf := cache.InformerFor[*corev1.Service](f, "", client.ListOptions{})
	podInf := cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{})
	sliceInf := cache.InformerFor[*discoveryv1.EndpointSlice](f, "", client.ListOptions{})
	nodeInf := cache.InformerFor[*corev1.Node](f, "", client.ListOptions{})
	svcInf.AddIndexer(bySelector, selectorIndex)
	// A Service's pods are found through the labels index (Reconcile).
	podInf.AddIndexer(cache.IndexLabels, cache.ByLabels[*corev1.Pod])
	sliceInf.AddIndexer(byService, func(es *discoveryv1.EndpointSlice) []string {
		if svc, ok := serviceOf(es); ok {
			return []string{es.Namespace + "/" + svc}
		}
		return nil
	})
	c := &Controller{cfg: cfg, cs: cs, svcs: svcInf.Lister(), pods: podInf.Lister(), slices: sliceInf.Lister(), nodes: nodeInf.Lister(),
		synced: []interface{ HasSynced() bool }{svcInf, podInf, sliceInf, nodeInf},
		queue:  workqueue.New(workqueue.Config{}), log: cfg.Logger.Named("endpointslice"), tracker: tracker{written: map[string]map[string]int64{}}}
	svcChanged := func(s *corev1.Service) { c.queue.Add(cache.Key(s)) }
	svcInf.AddHandler(cache.Handler[*corev1.Service]{OnAdd: svcChanged,
		OnUpdate: func(_, s *corev1.Service) { svcChanged(s) }, OnDelete: svcChanged})
	podInf.AddHandler(cache.Handler[*corev1.Pod]{
		OnAdd: c.podChanged,
		OnUpdate: func(old, p *corev1.Pod) {
			if !equality.Semantic.DeepEqual(old.Labels, p.Labels) {
				c.podChanged(old)
			}
			c.podChanged(p)
		},
		OnDelete: c.podChanged,
	})
	// A slice as the controller's own write left it brings its Service nothing new.
	sliceChanged := func(es *discoveryv1.EndpointSlice, deleted bool) {
		if svc, ok := serviceOf(es); ok && !c.tracker.own(es.Namespace+"/"+svc, es, deleted) {
			c.queue.Add(es.Namespace + "/" + svc)
		}
	}
	sliceInf.AddHandler(cache.Handler[*discoveryv1.EndpointSlice]{
		OnAdd:    func(es *discoveryv1.EndpointSlice) { sliceChanged(es, false) },
		OnUpdate: func(_, es *discoveryv1.EndpointSlice) { sliceChanged(es, false) },
		OnDelete: func(es *discoveryv1.EndpointSlice) { sliceChanged(es, true) }})
	return c, nil
}

// serviceOf is the Service a slice of this controller's belongs to.
func serviceOf(es *discoveryv1.EndpointSlice) (string, bool) {
	if es.Labels[discoveryv1.LabelManagedBy] != ManagedBy {
		return "", false
	}
	svc, ok := es.Labels[discoveryv1.LabelServiceName]
	return svc, ok && svc != ""
}

// podChanged queues the Services whose selector picks pod.
func (c *Controller) podChanged(pod *corev1.Pod) {
	set := labels.Set(pod.Labels)
	candidates := c.svcs.ByIndex(bySelector, pod.Namespace+"/")
	for k, v := range pod.Labels {
		candidates = append(candidates, c.svcs.ByIndex(bySelector, cache.LabelValue(pod.Namespace, k, v))...)
	}
	for _, s := range candidates {
		if labels.SelectorFromValidatedSet(s.Spec.Selector).Matches(set) {
			c.queue.Add(cache.Key(s))
		}
	}
}

// Run syncs Services until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// staleRetry is when a Service whose slices the cache does not show as last written is
// looked at again (the informer's event usually comes first).
const staleRetry = 100 * time.Millisecond

// Reconcile syncs the slices of one Service, "namespace/name".
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	current := c.slices.ByIndex(byService, key)
	if c.tracker.stale(key, current) {
		return staleRetry, nil
	}
	svc, ok := c.svcs.Get(ns, name)
	var ch Changes
	if !ok || svc.DeletionTimestamp != nil || svc.Spec.Selector == nil || svc.Spec.Type == corev1.ServiceTypeExternalName {
		// Not (or no longer) the controller's to fill: a Service gone (its slices would
		// go with it, as its dependents; deleting them now frees their endpoints at once),
		// one without a selector (its slices are the user's), an ExternalName one.
		ch.Delete = current
	} else {
		ch = Plan(svc, c.pods.ListSelected(ns, svc.Spec.Selector), current, c.zoneOf, c.cfg.MaxEndpointsPerSlice)
	}
	return 0, c.apply(ctx, key, ch)
}

func (c *Controller) zoneOf(node string) string {
	if n, ok := c.nodes.Get("", node); ok {
		return n.Labels[corev1.LabelTopologyZone]
	}
	return ""
}

// apply writes the changes, remembering each write's resourceVersion.
func (c *Controller) apply(ctx context.Context, key string, ch Changes) error {
	var errs []error
	for _, es := range ch.Delete {
		if _, err := c.cs.EndpointSlices.Delete(ctx, es.Namespace, es.Name, client.DeleteOptions{}); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("delete endpointslice %s: %w", cache.Key(es), err))
			continue
		}
		c.tracker.deleted(key, es.Name)
	}
	for _, es := range ch.Update {
		out, err := c.cs.EndpointSlices.Update(ctx, es)
		if err != nil {
			errs = append(errs, fmt.Errorf("update endpointslice %s: %w", cache.Key(es), err))
			continue
		}
		c.tracker.wrote(key, out)
	}
	for _, es := range ch.Create {
		out, err := c.cs.EndpointSlices.Create(ctx, es)
		if err != nil {
			errs = append(errs, fmt.Errorf("create endpointslice for service %s: %w", key, err))
			continue
		}
		c.tracker.wrote(key, out)
	}
	return errors.Join(errs...)
}

// tracker remembers the controller's own writes per Service: slice name to the
// resourceVersion written, 0 for a deletion.
type tracker struct {
	mu      sync.Mutex
	written map[string]map[string]int64
	// waiting are the Services last found stale: any event of their slices syncs them.
	waiting map[string]bool
}

func rv(es *discoveryv1.EndpointSlice) int64 {
	n, _ := strconv.ParseInt(es.ResourceVersion, 10, 64)
	return n
}

func (t *tracker) wrote(svc string, es *discoveryv1.EndpointSlice) { t.set(svc, es.Name, rv(es)) }
func (t *tracker) deleted(svc, name string)                        { t.set(svc, name, 0) }

func (t *tracker) set(svc, name string, v int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.written[svc] == nil {
		t.written[svc] = map[string]int64{}
	}
	t.written[svc][name] = v
}

// own says whether es is as the controller's last write of it left it (deleted: whether
// the controller deleted it), so that its event needs no sync of the Service: the sync
// that wrote it knew all it says (Kubernetes' endpointSliceTracker.ShouldSync). An event
// that comes before the write's reply is recorded is not known as own, and syncs; so
// does any event of a Service whose sync found the cache stale and waits for it.
func (t *tracker) own(svc string, es *discoveryv1.EndpointSlice, deleted bool) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	want, ok := t.written[svc][es.Name]
	if !ok || t.waiting[svc] {
		return false
	}
	if deleted {
		return want == 0
	}
	return want > 0 && want == rv(es)
}

// stale says whether the cache's slices of svc are older than what the controller
// wrote; writes the cache has caught up with are forgotten.
func (t *tracker) stale(svc string, current []*discoveryv1.EndpointSlice) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.written[svc]
	if len(w) == 0 {
		delete(t.waiting, svc)
		return false
	}
	seen := map[string]int64{}
	for _, es := range current {
		seen[es.Name] = rv(es)
	}
	stale := false
	for name, want := range w {
		got, present := seen[name]
		switch {
		case want == 0 && present, want > 0 && (!present || got < want):
			stale = true
		default:
			delete(w, name)
		}
	}
	if len(w) == 0 {
		delete(t.written, svc)
	}
	if stale {
		if t.waiting == nil {
			t.waiting = map[string]bool{}
		}
		t.waiting[svc] = true
	} else {
		delete(t.waiting, svc)
	}
	return stale
}

// Changes are the writes that bring a Service's slices to what its pods say.
type Changes struct {
	Create, Update, Delete []*discoveryv1.EndpointSlice
}

// Plan computes the changes to a Service's slices (current: those the controller
// manages) from the pods its selector picks. zoneOf names a node's zone ("" unknown).
func Plan(svc *corev1.Service, pods []*corev1.Pod, current []*discoveryv1.EndpointSlice, zoneOf func(node string) string, maxPerSlice int) Changes {
	// Desired endpoints, grouped by their resolved ports.
	type group struct {
		ports     []discoveryv1.EndpointPort
		endpoints map[string]discoveryv1.Endpoint // by address
	}
	groups := map[string]*group{}
	for _, pod := range pods {
		ep, ok := endpointFor(svc, pod, zoneOf)
		if !ok {
			continue
		}
		ports := portsFor(svc, pod)
		k := portsKey(ports)
		g := groups[k]
		if g == nil {
			g = &group{ports: ports, endpoints: map[string]discoveryv1.Endpoint{}}
			groups[k] = g
		}
		g.endpoints[ep.Addresses[0]] = ep
	}

	var ch Changes
	kept := 0 // slices left after the changes
	existing := map[string][]*discoveryv1.EndpointSlice{}
	for _, es := range sortedByName(current) {
		k := portsKey(es.Ports)
		if groups[k] == nil || es.AddressType != discoveryv1.AddressTypeIPv4 {
			ch.Delete = append(ch.Delete, es)
			continue
		}
		existing[k] = append(existing[k], es)
	}
	for _, k := range sortedKeys(groups) {
		g := groups[k]
		var changed, unchanged []*discoveryv1.EndpointSlice
		// Endpoints stay where they are, updated in place; those gone are dropped.
		for _, es := range existing[k] {
			next := es.DeepCopy()
			next.Endpoints = next.Endpoints[:0]
			for _, e := range es.Endpoints {
				if len(e.Addresses) == 0 {
					continue
				}
				want, ok := g.endpoints[e.Addresses[0]]
				if !ok {
					continue
				}
				delete(g.endpoints, e.Addresses[0])
				next.Endpoints = append(next.Endpoints, want)
			}
			setMeta(next, svc)
			if equality.Semantic.DeepEqual(next, es) {
				unchanged = append(unchanged, es)
			} else {
				changed = append(changed, next)
			}
		}
		// New endpoints fill the slices being rewritten, then those that are not, then
		// new ones.
		add := make([]discoveryv1.Endpoint, 0, len(g.endpoints))
		for _, a := range sortedKeys(g.endpoints) {
			add = append(add, g.endpoints[a])
		}
		fill := func(es *discoveryv1.EndpointSlice) {
			n := min(maxPerSlice-len(es.Endpoints), len(add))
			if n > 0 {
				es.Endpoints = append(es.Endpoints, add[:n]...)
				add = add[n:]
			}
		}
		for _, es := range changed {
			fill(es)
		}
		for i, es := range unchanged {
			if len(add) == 0 {
				break
			}
			if len(es.Endpoints) < maxPerSlice {
				next := es.DeepCopy()
				fill(next)
				changed = append(changed, next)
				unchanged[i] = nil
			}
		}
		for _, es := range changed {
			if len(es.Endpoints) == 0 {
				ch.Delete = append(ch.Delete, es)
			} else {
				ch.Update = append(ch.Update, es)
				kept++
			}
		}
		for _, es := range unchanged {
			if es != nil {
				kept++
			}
		}
		for len(add) > 0 {
			es := newSlice(svc, g.ports)
			fill(es)
			ch.Create = append(ch.Create, es)
			kept++
		}
	}
	if kept > 0 {
		return ch
	}
	// No endpoint at all: one empty slice stays, Kubernetes' placeholder.
	for i, es := range ch.Delete {
		if len(es.Ports) == 0 && len(es.Endpoints) == 0 && es.AddressType == discoveryv1.AddressTypeIPv4 {
			next := es.DeepCopy()
			setMeta(next, svc)
			if !equality.Semantic.DeepEqual(next, es) {
				ch.Update = append(ch.Update, next)
			}
			ch.Delete = slices.Delete(ch.Delete, i, i+1)
			return ch
		}
	}
	ch.Create = append(ch.Create, newSlice(svc, nil))
	return ch
}

// endpointFor is pod's endpoint, if it has one: a pod with an address that has not
// finished (Kubernetes' ShouldPodBeInEndpoints, terminating pods included).
func endpointFor(svc *corev1.Service, pod *corev1.Pod, zoneOf func(string) string) (discoveryv1.Endpoint, bool) {
	if pod.Status.PodIP == "" || pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed {
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
	if pod.Spec.Hostname != "" && pod.Spec.Subdomain == svc.Name {
		ep.Hostname = new(pod.Spec.Hostname)
	}
	return ep, true
}

// portsFor is the Service's ports as pod serves them: a targetPort by number as is, by
// name the number of the pod's container port of that name and protocol; a port whose
// name no container has is left out for that pod, as in Kubernetes.
func portsFor(svc *corev1.Service, pod *corev1.Pod) []discoveryv1.EndpointPort {
	var out []discoveryv1.EndpointPort
	for _, sp := range svc.Spec.Ports {
		num, ok := findPort(pod, &sp)
		if !ok {
			continue
		}
		out = append(out, discoveryv1.EndpointPort{Name: new(sp.Name), Protocol: new(sp.Protocol), Port: new(num), AppProtocol: sp.AppProtocol})
	}
	return out
}

// findPort is Kubernetes' podutil.FindPort.
func findPort(pod *corev1.Pod, sp *corev1.ServicePort) (int32, bool) {
	if sp.TargetPort.Type == intstr.Int {
		return sp.TargetPort.IntVal, true
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			proto := p.Protocol
			if proto == "" {
				proto = corev1.ProtocolTCP
			}
			if p.Name == sp.TargetPort.StrVal && proto == sp.Protocol {
				return p.ContainerPort, true
			}
		}
	}
	return 0, false
}

// portsKey identifies a set of ports whatever their order.
func portsKey(ports []discoveryv1.EndpointPort) string {
	keys := make([]string, len(ports))
	for i, p := range ports {
		keys[i] = fmt.Sprintf("%s/%s/%d/%s", deref(p.Name), deref(p.Protocol), deref(p.Port), deref(p.AppProtocol))
	}
	slices.Sort(keys)
	return strings.Join(keys, ",")
}

func deref[T any](p *T) T {
	if p == nil {
		var zero T
		return zero
	}
	return *p
}

// newSlice is an empty slice of svc with ports.
func newSlice(svc *corev1.Service, ports []discoveryv1.EndpointPort) *discoveryv1.EndpointSlice {
	prefix := svc.Name + "-"
	if len(prefix) > 58 { // generateName leaves room for 5 random characters
		prefix = prefix[:58]
	}
	es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix, Namespace: svc.Namespace},
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

func sortedByName(in []*discoveryv1.EndpointSlice) []*discoveryv1.EndpointSlice {
	out := slices.Clone(in)
	slices.SortFunc(out, func(a, b *discoveryv1.EndpointSlice) int { return strings.Compare(a.Name, b.Name) })
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}
