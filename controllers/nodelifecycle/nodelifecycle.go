// Package nodelifecycle watches kubelets' heartbeats. A node heard from neither through
// its Lease (in namespace kube-node-lease) nor through its status's Ready condition for
// the grace period gets its Ready condition set to Unknown and, at a bounded rate, the
// node.kubernetes.io/unreachable:NoExecute taint; its pods are deleted once they have
// tolerated the taint for their tolerationSeconds (default 300 s), at a bounded rate,
// so that their ReplicaSets replace them elsewhere. A node that heartbeats again loses
// the taint.
//
// Taints are added as Kubernetes' node lifecycle controller adds them, one zone
// (topology.kubernetes.io/region and zone labels) at a time: at NodeEvictionRate nodes
// a second while few of a zone's nodes are down; when more than two and at least
// UnhealthyZoneThreshold of them are (a partial disruption), at
// SecondaryNodeEvictionRate in a zone of more than LargeClusterSizeThreshold nodes and
// not at all in a smaller one; when every node of every zone is down, the fault is more
// likely on this side of the network, so nothing is tainted and the taints there are
// removed (full disruption). Many nodes going Unknown at once is then a slowdown of
// writes, not thousands of pods deleted and made again on a cluster that is already
// short of time: on a saturated machine the replacements' writes delayed more Leases,
// which took more nodes down (issue 26).
package nodelifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/klog/v2"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
)

// Names Kubernetes uses.
const (
	LeaseNamespace   = corev1.NamespaceNodeLease
	UnreachableTaint = corev1.TaintNodeUnreachable
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// GracePeriod without a Lease renewal before a node is unreachable. Default 40s.
	GracePeriod time.Duration
	// StartupGracePeriod replaces GracePeriod for a node whose kubelet has not yet
	// posted a Ready condition (Kubernetes' --node-startup-grace-period): it is counted
	// from the node's creation or its Lease, whichever is later. Default 1m.
	StartupGracePeriod time.Duration
	// DefaultTolerationSeconds: how long a pod without its own toleration of the
	// unreachable taint stays on an unreachable node. Default 300s.
	DefaultTolerationSeconds int64
	// MonitorPeriod: how often nodes are checked. Default 5s.
	MonitorPeriod time.Duration
	// EvictionQPS and EvictionBurst bound pod deletions. Default 10/s, burst 10.
	EvictionQPS   float64
	EvictionBurst int
	// NodeEvictionRate is how many nodes a second of a healthy zone are tainted
	// unreachable (Kubernetes' --node-eviction-rate, 0.1); SecondaryNodeEvictionRate
	// the same in a zone in partial disruption (--secondary-node-eviction-rate, 0.01),
	// which a zone of LargeClusterSizeThreshold nodes or fewer replaces with 0
	// (--large-cluster-size-threshold, 50). A zone is in partial disruption when more
	// than two of its nodes and at least UnhealthyZoneThreshold of them are not Ready
	// (--unhealthy-zone-threshold, 0.55).
	NodeEvictionRate, SecondaryNodeEvictionRate float64
	UnhealthyZoneThreshold                      float64
	LargeClusterSizeThreshold                   int
	// Logger receives the controller's logs, named "nodelifecycle". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock (heartbeats' age, taints' times). Default time.Now.
	Now func() time.Time
}

// DefaultConfig has Kubernetes' timings.
func DefaultConfig() Config {
	return Config{GracePeriod: 40 * time.Second, StartupGracePeriod: time.Minute, DefaultTolerationSeconds: 300, MonitorPeriod: 5 * time.Second,
		EvictionQPS: 10, EvictionBurst: 10, NodeEvictionRate: 0.1, SecondaryNodeEvictionRate: 0.01, UnhealthyZoneThreshold: 0.55,
		LargeClusterSizeThreshold: 50, Logger: hclog.NewNullLogger(), Now: time.Now}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.GracePeriod <= 0 {
		errs = append(errs, fmt.Errorf("gracePeriod: %v must be positive", c.GracePeriod))
	}
	if c.StartupGracePeriod <= 0 {
		errs = append(errs, fmt.Errorf("startupGracePeriod: %v must be positive", c.StartupGracePeriod))
	}
	if c.DefaultTolerationSeconds < 1 {
		errs = append(errs, fmt.Errorf("defaultTolerationSeconds: %d must be at least 1", c.DefaultTolerationSeconds))
	}
	if c.MonitorPeriod <= 0 {
		errs = append(errs, fmt.Errorf("monitorPeriod: %v must be positive", c.MonitorPeriod))
	}
	if c.EvictionQPS <= 0 || c.EvictionBurst < 1 {
		errs = append(errs, fmt.Errorf("evictionQPS %v, evictionBurst %d: both must be positive", c.EvictionQPS, c.EvictionBurst))
	}
	if c.NodeEvictionRate <= 0 || c.SecondaryNodeEvictionRate < 0 {
		errs = append(errs, fmt.Errorf("nodeEvictionRate %v, secondaryNodeEvictionRate %v: the first must be positive, the second not negative",
			c.NodeEvictionRate, c.SecondaryNodeEvictionRate))
	}
	if c.UnhealthyZoneThreshold <= 0 || c.UnhealthyZoneThreshold > 1 {
		errs = append(errs, fmt.Errorf("unhealthyZoneThreshold: %v must be in (0, 1]", c.UnhealthyZoneThreshold))
	}
	if c.LargeClusterSizeThreshold < 0 {
		errs = append(errs, fmt.Errorf("largeClusterSizeThreshold: %d must not be negative", c.LargeClusterSizeThreshold))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("now: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("node lifecycle controller config: %w", err)
	}
	return nil
}

// Controller is the node lifecycle controller.
type Controller struct {
	cfg     Config
	cs      *client.Clientset
	nodeInf *cache.Informer[*corev1.Node]
	nodes   *cache.Lister[*corev1.Node]
	leases  *cache.Lister[*coordinationv1.Lease]
	pods    *cache.Lister[*corev1.Pod]
	synced  []interface{ HasSynced() bool }
	limiter *rate.Limiter
	// tainters pace the taints of each zone (by zoneKey), at the rate of its state.
	// Monitor alone uses them.
	tainters map[string]*rate.Limiter
	rec      *record.Recorder
	log      hclog.Logger
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nodeInf := cache.InformerFor[*corev1.Node](f, "", client.ListOptions{})
	leaseInf := cache.InformerFor[*coordinationv1.Lease](f, LeaseNamespace, client.ListOptions{})
	podInf := cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{})
	podInf.AddIndexer(cache.IndexNodeName, func(p *corev1.Pod) []string { return []string{p.Spec.NodeName} })
	return &Controller{cfg: cfg, cs: cs, nodeInf: nodeInf, nodes: nodeInf.Lister(), leases: leaseInf.Lister(), pods: podInf.Lister(),
		synced:  []interface{ HasSynced() bool }{nodeInf, leaseInf, podInf},
		limiter: rate.NewLimiter(rate.Limit(cfg.EvictionQPS), cfg.EvictionBurst), tainters: map[string]*rate.Limiter{}, rec: rec, log: cfg.Logger.Named("nodelifecycle")}, nil
}

// Run monitors nodes until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	t := time.NewTicker(c.cfg.MonitorPeriod)
	defer t.Stop()
	for {
		if err := c.Monitor(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("node monitor pass failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// lastHeartbeat is when the node's kubelet was last heard from: the later of its
// Lease's renewTime (microseconds) and its Ready condition's heartbeat (whole seconds),
// else its creation. Either is a heartbeat, as in Kubernetes: a kubelet whose Lease
// writes lag but who writes its status back to Ready (it does as soon as it sees the
// Unknown this controller wrote) is alive; counting only the Lease marked such a node
// Unknown again on the next pass, and the kubelet wrote Ready again, two Node writes
// every ten seconds for each such node, while the Leases were late because the machine
// had too many writes already (issue 26). l is nil when the node has no Lease.
func lastHeartbeat(n *corev1.Node, l *coordinationv1.Lease) time.Time {
	var last time.Time
	if l != nil && l.Spec.RenewTime != nil {
		last = l.Spec.RenewTime.Time
	}
	if cnd := readyCondition(n); cnd != nil && cnd.LastHeartbeatTime.After(last) {
		last = cnd.LastHeartbeatTime.Time
	}
	if last.IsZero() {
		return n.CreationTimestamp.Time
	}
	return last
}

// gracePeriod is how long n may go without a heartbeat: StartupGracePeriod while its
// kubelet has never posted a Ready condition (it is still registering, pulling, starting),
// GracePeriod after, as Kubernetes' node lifecycle controller does.
func (c *Controller) gracePeriod(n *corev1.Node) time.Duration {
	if readyCondition(n) == nil {
		return c.cfg.StartupGracePeriod
	}
	return c.cfg.GracePeriod
}

// EvictAfter is how long pod may stay on a node after the unreachable taint was added:
// the seconds of its first toleration of the taint, the default when it has no
// toleration, or forever (ok false) when it tolerates the taint without a limit. A
// toleration matches as Kubernetes matches it (Toleration.ToleratesTaint), without the
// numeric operators Lt and Gt, which Skiff does not support.
func EvictAfter(pod *corev1.Pod, defaultSeconds int64) (time.Duration, bool) {
	taint := &corev1.Taint{Key: UnreachableTaint, Effect: corev1.TaintEffectNoExecute}
	for _, t := range pod.Spec.Tolerations {
		if t.ToleratesTaint(klog.Logger{}, taint, false) {
			if t.TolerationSeconds == nil {
				return 0, false
			}
			return time.Duration(max(*t.TolerationSeconds, 0)) * time.Second, true
		}
	}
	return time.Duration(defaultSeconds) * time.Second, true
}

func unreachableTaint(n *corev1.Node) *corev1.Taint {
	for i, t := range n.Spec.Taints {
		if t.Key == UnreachableTaint && t.Effect == corev1.TaintEffectNoExecute {
			return &n.Spec.Taints[i]
		}
	}
	return nil
}

// zoneKey is the zone a node is in for the taints' pacing: its region and zone labels,
// as Kubernetes' GetZoneKey joins them ("" for a node without either).
func zoneKey(n *corev1.Node) string {
	region, zone := n.Labels[corev1.LabelTopologyRegion], n.Labels[corev1.LabelTopologyZone]
	if region == "" && zone == "" {
		return ""
	}
	return region + ":\x00:" + zone
}

// zoneHealth counts a zone's nodes and those of them not Ready.
type zoneHealth struct{ nodes, notReady int }

func (z zoneHealth) fullyDisrupted() bool { return z.notReady > 0 && z.notReady == z.nodes }

// taintRate is how many of the zone's unreachable nodes a second are tainted, by the
// zone's state, as Kubernetes' node lifecycle controller sets its zone's limiter: a
// zone in partial disruption slows down (and a small one stops), while a zone fully
// disrupted — alone: Monitor handles all zones being so — goes on at the healthy
// rate.
func (c *Controller) taintRate(z zoneHealth) float64 {
	if !z.fullyDisrupted() && z.notReady > 2 && float64(z.notReady)/float64(z.nodes) >= c.cfg.UnhealthyZoneThreshold {
		if z.nodes <= c.cfg.LargeClusterSizeThreshold {
			return 0
		}
		return c.cfg.SecondaryNodeEvictionRate
	}
	return c.cfg.NodeEvictionRate
}

// mayTaint says whether one more node of zone may be tainted at now, its zone's
// limiter set to the zone's rate (burst 1, as Kubernetes' taint queue).
func (c *Controller) mayTaint(zone string, z zoneHealth, now time.Time) bool {
	r := c.taintRate(z)
	lim := c.tainters[zone]
	if lim == nil {
		lim = rate.NewLimiter(rate.Limit(r), 1)
		c.tainters[zone] = lim
	} else if lim.Limit() != rate.Limit(r) {
		lim.SetLimitAt(now, rate.Limit(r))
	}
	return r > 0 && lim.AllowN(now, 1)
}

// Monitor makes one pass over every node.
func (c *Controller) Monitor(ctx context.Context) error {
	now := c.cfg.Now()
	nodes := c.nodes.List(labels.Everything())
	zones := map[string]zoneHealth{}
	type downNode struct {
		n    *corev1.Node
		last time.Time
	}
	var down []downNode
	for _, n := range nodes {
		l, _ := c.leases.Get(LeaseNamespace, n.Name)
		z := zones[zoneKey(n)]
		z.nodes++
		if last := lastHeartbeat(n, l); now.Sub(last) > c.gracePeriod(n) {
			n, err := c.markUnknown(ctx, n, now)
			if err != nil {
				return err
			}
			down = append(down, downNode{n, last})
			z.notReady++
		} else {
			if readyStatus(n) != corev1.ConditionTrue {
				z.notReady++
			} else if unreachableTaint(n) != nil {
				if err := c.setTaint(ctx, n, nil); err != nil {
					return err
				}
				c.rec.Eventf(n, record.Normal, "NodeReachable", "Node %s is reachable again", n.Name)
			}
		}
		zones[zoneKey(n)] = z
	}
	if len(down) == 0 {
		return nil
	}
	full := true
	for _, z := range zones {
		full = full && z.fullyDisrupted()
	}
	if full {
		// Kubernetes' full disruption: every zone lost every node, which is more likely
		// this side's network than the nodes. No taints, and none left to evict by.
		c.log.Warn("every node is unreachable: not tainting or evicting (full disruption)", "nodes", len(nodes))
		for _, d := range down {
			if unreachableTaint(d.n) != nil {
				if err := c.setTaint(ctx, d.n, nil); err != nil {
					return err
				}
			}
		}
		return nil
	}
	// The longest silent first, as Kubernetes' taint queue takes them in the order they
	// went down.
	slices.SortFunc(down, func(a, b downNode) int { return a.last.Compare(b.last) })
	for _, d := range down {
		n := d.n
		taint := unreachableTaint(n)
		if taint == nil {
			if !c.mayTaint(zoneKey(n), zones[zoneKey(n)], now) {
				continue // a later pass, at the zone's rate
			}
			taint = &corev1.Taint{Key: UnreachableTaint, Effect: corev1.TaintEffectNoExecute, TimeAdded: ptr.To(metav1.NewTime(now))}
			if err := c.setTaint(ctx, n, taint); err != nil {
				return err
			}
			c.rec.Eventf(n, record.Normal, "NodeNotReady", "Node %s stopped renewing its lease: tainted %s:NoExecute", n.Name, UnreachableTaint)
		}
		// timeAdded is whole seconds once stored: an eviction may come up to a second
		// before its toleration ends, as in Kubernetes. A taint without it (added by
		// hand) has been there forever.
		if err := c.evict(ctx, n, ptr.Deref(taint.TimeAdded, metav1.Time{}).Time, now); err != nil {
			return err
		}
	}
	return nil
}

// readyCondition returns the node's Ready condition, or nil.
func readyCondition(n *corev1.Node) *corev1.NodeCondition {
	for i := range n.Status.Conditions {
		if n.Status.Conditions[i].Type == corev1.NodeReady {
			return &n.Status.Conditions[i]
		}
	}
	return nil
}

func readyStatus(n *corev1.Node) corev1.ConditionStatus {
	if cnd := readyCondition(n); cnd != nil {
		return cnd.Status
	}
	return ""
}

// markUnknown sets the node's Ready condition to Unknown and returns the node as
// stored then (n when it was Unknown already or the write lost a race), so that a
// taint written next does not conflict with this write.
func (c *Controller) markUnknown(ctx context.Context, n *corev1.Node, now time.Time) (*corev1.Node, error) {
	if readyStatus(n) == corev1.ConditionUnknown {
		return n, nil
	}
	next := n.DeepCopy()
	if cnd := readyCondition(next); cnd != nil {
		cnd.Status, cnd.Reason, cnd.Message, cnd.LastTransitionTime = corev1.ConditionUnknown, "NodeStatusUnknown", "Kubelet stopped posting node status.", metav1.NewTime(now)
	} else {
		next.Status.Conditions = append(next.Status.Conditions, corev1.NodeCondition{Type: corev1.NodeReady, Status: corev1.ConditionUnknown,
			Reason: "NodeStatusNeverUpdated", Message: "Kubelet never posted node status.", LastTransitionTime: metav1.NewTime(now)})
	}
	out, err := c.cs.Nodes.UpdateStatus(ctx, next)
	if err != nil {
		if !client.IsConflict(err) && !client.IsNotFound(err) {
			return nil, fmt.Errorf("mark node %s not ready: %w", n.Name, err)
		}
		return n, nil
	}
	return out, nil
}

// setTaint adds the unreachable taint (taint != nil) or removes it.
func (c *Controller) setTaint(ctx context.Context, n *corev1.Node, taint *corev1.Taint) error {
	next := n.DeepCopy()
	var keep []corev1.Taint
	for _, t := range next.Spec.Taints {
		if !(t.Key == UnreachableTaint && t.Effect == corev1.TaintEffectNoExecute) {
			keep = append(keep, t)
		}
	}
	if taint != nil {
		keep = append(keep, *taint)
	}
	next.Spec.Taints = keep
	if _, err := c.cs.Nodes.Update(ctx, next); err != nil && !client.IsConflict(err) && !client.IsNotFound(err) {
		return fmt.Errorf("update taints of node %s: %w", n.Name, err)
	}
	return nil
}

func (c *Controller) evict(ctx context.Context, n *corev1.Node, tainted, now time.Time) error {
	for _, p := range c.pods.ByIndex(cache.IndexNodeName, n.Name) {
		if p.DeletionTimestamp != nil {
			continue
		}
		after, ok := EvictAfter(p, c.cfg.DefaultTolerationSeconds)
		if !ok || now.Before(tainted.Add(after)) {
			continue
		}
		if !c.limiter.Allow() {
			return nil // the next pass continues
		}
		_, err := c.cs.Pods.Delete(ctx, p.Namespace, p.Name, client.DeleteOptions{UID: string(p.UID)})
		if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
			return fmt.Errorf("evict pod %s from node %s: %w", cache.Key(p), n.Name, err)
		}
		c.rec.Eventf(p, record.Normal, "TaintManagerEviction", "Marking for deletion Pod %s: node %s is unreachable", cache.Key(p), n.Name)
	}
	return nil
}
