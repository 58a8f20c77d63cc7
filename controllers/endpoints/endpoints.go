// Package endpoints is Kubernetes' endpoints controller: for every Service with a
// selector it keeps one core/v1 Endpoints object, named as the Service, listing the pods
// the selector picks that have an address — ready ones under addresses, the others under
// notReadyAddresses (all ready with publishNotReadyAddresses, which also keeps
// terminating pods), each with its pod as targetRef, its node and, for a pod whose
// subdomain is the Service, its hostname — with the Service's ports as each pod serves
// them, packed into subsets as Kubernetes packs them (Repack). It finds the pods as the
// EndpointSlice controller does (endpointslice.ServicePods), by the same rules.
//
// The Endpoints carry the Service's labels, service.kubernetes.io/headless for a
// headless Service, endpoints.kubernetes.io/managed-by: endpoint-controller, the
// endpoints.kubernetes.io/last-change-trigger-time annotation (the earliest pod or
// Service change the write reflects) and, past 1,000 addresses, only 1,000 of them
// (ready ones first) with endpoints.kubernetes.io/over-capacity: truncated.
//
// A Service without a selector (or of type ExternalName) is not the controller's: the
// user writes its Endpoints, which the mirroring controller
// (controllers/endpointslicemirroring) turns into EndpointSlices. A Service deleted takes
// its Endpoints with it. Endpoints of the controller's own left by a Service deleted while
// it was not running are deleted when it starts (Kubernetes' checkLeftoverEndpoints,
// here only those labelled as the controller's: a user's Endpoints may wait for their
// Service).
package endpoints

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/controllers/endpointslice"
	"github.com/skiffhq/skiff/controllers/replicaset"
)

const (
	// LabelManagedBy and ManagedBy mark the Endpoints this controller writes, as
	// Kubernetes' controller marks its own.
	LabelManagedBy = "endpoints.kubernetes.io/managed-by"
	ManagedBy      = "endpoint-controller"
	// MaxCapacity is how many addresses an Endpoints object holds at most.
	MaxCapacity = 1000
	// Truncated is the endpoints.kubernetes.io/over-capacity value of an Endpoints
	// object cut to MaxCapacity addresses.
	Truncated = "truncated"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers sync different Services concurrently. Default 5 (Kubernetes'
	// --concurrent-endpoint-syncs).
	Workers int
	// Logger receives the controller's logs, named "endpoints". Default: discarded.
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
		return fmt.Errorf("endpoints controller config: %w", err)
	}
	return nil
}

// Controller is the endpoints controller.
type Controller struct {
	cfg      Config
	cs       *client.Clientset
	sp       *endpointslice.ServicePods
	eps      *cache.Lister[*corev1.Endpoints]
	synced   []interface{ HasSynced() bool }
	queue    *workqueue.Queue
	log      hclog.Logger
	triggers *TriggerTimes

	mu sync.Mutex
	// written is the resourceVersion of the controller's last update of each Endpoints:
	// a cache older than it is stale, and the Service waits for it (Kubernetes'
	// staleEndpointsTracker).
	written map[string]int64
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	sp := endpointslice.NewServicePods(f)
	epInf := cache.InformerFor[*corev1.Endpoints](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, sp: sp, eps: epInf.Lister(), synced: []interface{ HasSynced() bool }{sp, epInf},
		queue: workqueue.New(workqueue.Config{}), log: cfg.Logger.Named("endpoints"), triggers: NewTriggerTimes(),
		written: map[string]int64{}}
	sp.Watch(c.queue.Add)
	// Endpoints deleted under a Service with a selector are written again.
	epInf.AddHandler(cache.Handler[*corev1.Endpoints]{OnDelete: func(ep *corev1.Endpoints) {
		c.forget(cache.Key(ep))
		c.queue.Add(cache.Key(ep))
	}})
	return c, nil
}

// Run syncs Services until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	// The controller's Endpoints whose Service went while it was not running.
	for _, ep := range c.eps.List(labels.Everything()) {
		if ep.Labels[LabelManagedBy] == ManagedBy {
			c.queue.Add(cache.Key(ep))
		}
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// staleRetry is when a Service whose Endpoints the cache shows older than last written
// is looked at again.
const staleRetry = endpointslice.StaleRetry

// Reconcile syncs the Endpoints of one Service, "namespace/name".
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	svc, ok := c.sp.Services.Get(ns, name)
	if !ok {
		c.triggers.Forget(key)
		c.forget(key)
		if _, err := c.cs.Endpoints.Delete(ctx, ns, name, client.DeleteOptions{}); err != nil && !client.IsNotFound(err) {
			return 0, fmt.Errorf("delete endpoints %s: %w", key, err)
		}
		return 0, nil
	}
	if svc.Spec.Type == corev1.ServiceTypeExternalName || svc.Spec.Selector == nil {
		return 0, nil // the user's to write
	}
	pods := c.sp.Of(svc)
	// Computed on every sync, so that a sync that writes nothing still moves the
	// tracker on.
	trigger := c.triggers.Compute(key, svc, pods)
	current, exists := c.eps.Get(ns, name)
	if exists && c.stale(key, current) {
		return staleRetry, nil
	}
	next, changed := Desired(svc, pods, current, trigger)
	if !changed {
		return 0, nil
	}
	if !exists {
		if _, err := c.cs.Endpoints.Create(ctx, next); err != nil {
			return 0, fmt.Errorf("create endpoints %s: %w", key, err)
		}
		return 0, nil
	}
	out, err := c.cs.Endpoints.Update(ctx, next)
	if err != nil {
		return 0, fmt.Errorf("update endpoints %s: %w", key, err)
	}
	c.mu.Lock()
	c.written[key] = rv(out)
	c.mu.Unlock()
	return 0, nil
}

func rv(o metav1.Object) int64 {
	n, _ := strconv.ParseInt(o.GetResourceVersion(), 10, 64)
	return n
}

// stale says whether the cache shows key's Endpoints older than the controller's last
// update of them; an update the cache has caught up with is forgotten.
func (c *Controller) stale(key string, current *corev1.Endpoints) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	w, ok := c.written[key]
	if ok && rv(current) < w {
		return true
	}
	delete(c.written, key)
	return false
}

func (c *Controller) forget(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.written, key)
}

// Desired is the Endpoints svc should have for its pods, written over current (nil:
// none yet), and whether that differs from current. trigger is the change the write
// reflects (zero: none new). Subsets, labels and the capacity annotation decide whether
// current is right; the trigger time alone never makes a write. Unlike Kubernetes',
// which compares the subsets before truncating them, truncated Endpoints already right
// are not written again.
func Desired(svc *corev1.Service, pods []*corev1.Pod, current *corev1.Endpoints, trigger time.Time) (*corev1.Endpoints, bool) {
	next := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: svc.Name, Namespace: svc.Namespace}}
	if current != nil {
		next = current.DeepCopy()
	}
	next.Subsets = Repack(Subsets(svc, pods))
	next.Labels = map[string]string{}
	for k, v := range svc.Labels {
		next.Labels[k] = v
	}
	delete(next.Labels, corev1.IsHeadlessService)
	if svc.Spec.ClusterIP == corev1.ClusterIPNone || svc.Spec.ClusterIP == "" {
		next.Labels[corev1.IsHeadlessService] = ""
	}
	next.Labels[LabelManagedBy] = ManagedBy
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	if truncate(next) {
		next.Annotations[corev1.EndpointsOverCapacity] = Truncated
	} else {
		delete(next.Annotations, corev1.EndpointsOverCapacity)
	}
	if current != nil && equality.Semantic.DeepEqual(current.Subsets, next.Subsets) && equality.Semantic.DeepEqual(current.Labels, next.Labels) &&
		current.Annotations[corev1.EndpointsOverCapacity] == next.Annotations[corev1.EndpointsOverCapacity] {
		return current, false
	}
	if !trigger.IsZero() {
		next.Annotations[corev1.EndpointsLastChangeTriggerTime] = trigger.UTC().Format(time.RFC3339Nano)
	} else {
		delete(next.Annotations, corev1.EndpointsLastChangeTriggerTime)
	}
	return next, true
}

// Subsets are the pods' addresses, one subset per address and port (Repack packs them):
// a pod with an address that has not finished and, unless the Service publishes
// not-ready addresses, is not terminating; ready when the pod is, or always with
// publishNotReadyAddresses. A Service port whose named targetPort a pod lacks is left
// out for that pod; a headless Service without ports lists the addresses alone.
func Subsets(svc *corev1.Service, pods []*corev1.Pod) []corev1.EndpointSubset {
	tolerate := svc.Spec.PublishNotReadyAddresses
	var out []corev1.EndpointSubset
	add := func(pod *corev1.Pod, a corev1.EndpointAddress, ports []corev1.EndpointPort) {
		ss := corev1.EndpointSubset{Ports: ports}
		if tolerate || replicaset.IsReady(pod) {
			ss.Addresses = []corev1.EndpointAddress{a}
		} else {
			ss.NotReadyAddresses = []corev1.EndpointAddress{a}
		}
		out = append(out, ss)
	}
	for _, pod := range pods {
		if !endpointslice.HasEndpoint(pod, tolerate) {
			continue
		}
		a := corev1.EndpointAddress{IP: pod.Status.PodIP, Hostname: endpointslice.Hostname(svc, pod),
			TargetRef: &corev1.ObjectReference{Kind: "Pod", Namespace: pod.Namespace, Name: pod.Name, UID: pod.UID}}
		if n := pod.Spec.NodeName; n != "" {
			a.NodeName = new(n)
		}
		if len(svc.Spec.Ports) == 0 {
			if svc.Spec.ClusterIP == corev1.ClusterIPNone {
				add(pod, a, nil)
			}
			continue
		}
		for i := range svc.Spec.Ports {
			sp := &svc.Spec.Ports[i]
			num, ok := endpointslice.FindPort(pod, sp)
			if !ok {
				continue
			}
			add(pod, a, []corev1.EndpointPort{{Name: sp.Name, Port: num, Protocol: sp.Protocol, AppProtocol: sp.AppProtocol}})
		}
	}
	return out
}

// truncate cuts ep to MaxCapacity addresses, as Kubernetes' truncateEndpoints: ready
// addresses first; what is cut is spread over the subsets in proportion to their
// sizes (rounded up, so the last subsets may get fewer). It says whether it cut.
func truncate(ep *corev1.Endpoints) bool {
	ready, notReady := 0, 0
	for _, ss := range ep.Subsets {
		ready += len(ss.Addresses)
		notReady += len(ss.NotReadyAddresses)
	}
	if ready+notReady <= MaxCapacity {
		return false
	}
	truncateReady := ready > MaxCapacity
	limit, total := MaxCapacity-ready, notReady
	if truncateReady {
		limit, total = MaxCapacity, ready
	}
	left := limit
	for i := range ep.Subsets {
		ss := &ep.Subsets[i]
		n := len(ss.NotReadyAddresses)
		if truncateReady {
			n = len(ss.Addresses)
		}
		keep := min(int(math.Ceil(float64(n)/float64(total)*float64(limit))), left)
		if truncateReady {
			ss.Addresses = ss.Addresses[:min(keep, len(ss.Addresses))]
			ss.NotReadyAddresses = nil
			left -= len(ss.Addresses)
		} else {
			ss.NotReadyAddresses = ss.NotReadyAddresses[:min(keep, len(ss.NotReadyAddresses))]
			left -= len(ss.NotReadyAddresses)
		}
	}
	return true
}
