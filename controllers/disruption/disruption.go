// Package disruption is the disruption controller: it keeps each PodDisruptionBudget's
// status as Kubernetes' does — the pods it expects (expectedPods), those healthy now
// (currentHealthy: Ready, not being deleted, not just evicted), those that must stay
// (desiredHealthy), and from these how many may be disrupted now (disruptionsAllowed),
// with the DisruptionAllowed condition. The eviction subresource of the API server reads
// that status and takes a disruption from it, listing the pod in disruptedPods until
// this controller sees it go (or, after DeletionTimeout, gives up on it).
//
// expectedPods is the number of pods selected for a minAvailable count; for a percentage
// or maxUnavailable it is the scale of the controllers owning them (a Deployment's
// replicas through its ReplicaSet, a ReplicaSet's or ReplicationController's own), as a
// percentage is of what should run, not of what runs. A pod without a controller counts as healthy but
// expected by no one, with a warning event, as in Kubernetes.
//
// Anything that fails leaves the budget allowing no disruption (condition reason
// SyncFailed), never more than it should.
package disruption

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/controllers/replicaset"
	"github.com/skiffhq/skiff/kinds"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers sync different budgets concurrently. Default 5.
	Workers int
	// DeletionTimeout is how long an evicted pod stays out of currentHealthy waiting to
	// be seen deleted; after it, it counts again (Kubernetes' 2 minutes).
	DeletionTimeout time.Duration
	// Logger receives the controller's logs, named "disruption". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig has Kubernetes' values.
func DefaultConfig() Config {
	return Config{Workers: 5, DeletionTimeout: 2 * time.Minute, Logger: hclog.NewNullLogger(), Now: time.Now}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.DeletionTimeout <= 0 {
		errs = append(errs, fmt.Errorf("deletionTimeout: %v must be positive", c.DeletionTimeout))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("now: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("disruption controller config: %w", err)
	}
	return nil
}

// Controller is the disruption controller.
type Controller struct {
	cfg    Config
	cs     *client.Clientset
	pdbInf *cache.Informer[*policyv1.PodDisruptionBudget]
	pdbs   *cache.Lister[*policyv1.PodDisruptionBudget]
	pods   *cache.Lister[*corev1.Pod]
	rss    *cache.Lister[*appsv1.ReplicaSet]
	rcs    *cache.Lister[*corev1.ReplicationController]
	deps   *cache.Lister[*appsv1.Deployment]
	synced []interface{ HasSynced() bool }
	queue  *workqueue.Queue
	rec    *record.Recorder
	log    hclog.Logger
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pdbInf := cache.InformerFor[*policyv1.PodDisruptionBudget](f, "", client.ListOptions{})
	podInf := cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{})
	rsInf := cache.InformerFor[*appsv1.ReplicaSet](f, "", client.ListOptions{})
	depInf := cache.InformerFor[*appsv1.Deployment](f, "", client.ListOptions{})
	rcInf := cache.InformerFor[*corev1.ReplicationController](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, pdbInf: pdbInf, pdbs: pdbInf.Lister(), pods: podInf.Lister(), rss: rsInf.Lister(), deps: depInf.Lister(),
		rcs: rcInf.Lister(), synced: []interface{ HasSynced() bool }{pdbInf, podInf, rsInf, depInf, rcInf},
		queue: workqueue.New(workqueue.Config{}), rec: rec, log: cfg.Logger.Named("disruption")}
	enqueue := func(b *policyv1.PodDisruptionBudget) { c.queue.Add(cache.Key(b)) }
	pdbInf.AddHandler(cache.Handler[*policyv1.PodDisruptionBudget]{OnAdd: enqueue,
		OnUpdate: func(_, b *policyv1.PodDisruptionBudget) { enqueue(b) }, OnDelete: enqueue})
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
	return c, nil
}

// podChanged queues the budgets that select pod.
func (c *Controller) podChanged(pod *corev1.Pod) {
	for _, b := range c.pdbs.ListNamespace(pod.Namespace, labels.Everything()) {
		if sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector); err == nil && sel.Matches(labels.Set(pod.Labels)) {
			c.queue.Add(cache.Key(b))
		}
	}
}

// Run syncs budgets until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Reconcile syncs one budget, "namespace/name". When it cannot compute the status it
// leaves the budget allowing nothing and returns the error, to be retried.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	pdb, ok := c.pdbs.Get(ns, name)
	if !ok {
		return 0, nil
	}
	now := c.cfg.Now()
	pods := c.podsFor(pdb)
	if len(pods) == 0 {
		c.rec.Event(pdb, record.Normal, "NoPods", "No matching pods found")
	}
	st, recheck, unmanaged, err := Status(pdb, pods, c.scaleOf, now, c.cfg.DeletionTimeout)
	if len(unmanaged) > 0 {
		c.rec.Eventf(pdb, record.Warning, "UnmanagedPods", "Pods selected by this PodDisruptionBudget (selector: %v) were found "+
			"to be unmanaged. As a result, the status of the PDB cannot be calculated correctly, which may result in undefined behavior. "+
			"To account for these pods please set \".spec.minAvailable\" field of the PDB to an integer value.", pdb.Spec.Selector)
	}
	if err != nil {
		c.rec.Eventf(pdb, record.Warning, "CalculateExpectedPodCountFailed", "Failed to calculate the number of expected pods: %v", err)
		return 0, errors.Join(err, c.failSafe(ctx, pdb, err, now))
	}
	for _, p := range pods {
		if at, ok := pdb.Status.DisruptedPods[p.Name]; ok && p.DeletionTimestamp == nil && !at.Add(c.cfg.DeletionTimeout).After(now) {
			c.rec.Eventf(p, record.Warning, "NotDeleted", "Pod was expected by PDB %s/%s to be deleted but it wasn't", pdb.Namespace, pdb.Name)
		}
	}
	if err := c.write(ctx, pdb, st, now); err != nil {
		return 0, err
	}
	if recheck.IsZero() {
		return 0, nil
	}
	return max(recheck.Sub(now), time.Millisecond), nil
}

// podsFor is every pod pdb selects: none without a selector, every pod of its namespace
// with an empty one (policy/v1).
func (c *Controller) podsFor(pdb *policyv1.PodDisruptionBudget) []*corev1.Pod {
	sel, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil {
		return nil
	}
	return c.pods.ListNamespace(pdb.Namespace, sel)
}

// write stores st as pdb's status unless it is there already.
func (c *Controller) write(ctx context.Context, pdb *policyv1.PodDisruptionBudget, st policyv1.PodDisruptionBudgetStatus, now time.Time) error {
	next := pdb.DeepCopy()
	st.Conditions = next.Status.Conditions
	next.Status = st
	setDisruptionAllowed(next, "", now)
	if equality.Semantic.DeepEqual(next.Status, pdb.Status) {
		return nil
	}
	_, err := c.cs.PDBs.UpdateStatus(ctx, next)
	if err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("update status of poddisruptionbudget %s: %w", cache.Key(pdb), err)
	}
	return nil
}

// failSafe leaves pdb allowing no disruption, saying why.
func (c *Controller) failSafe(ctx context.Context, pdb *policyv1.PodDisruptionBudget, cause error, now time.Time) error {
	next := pdb.DeepCopy()
	next.Status.DisruptionsAllowed = 0
	setDisruptionAllowed(next, cause.Error(), now)
	if equality.Semantic.DeepEqual(next.Status, pdb.Status) {
		return nil
	}
	if _, err := c.cs.PDBs.UpdateStatus(ctx, next); err != nil && !client.IsNotFound(err) {
		return fmt.Errorf("update status of poddisruptionbudget %s: %w", cache.Key(pdb), err)
	}
	return nil
}

// setDisruptionAllowed sets the DisruptionAllowed condition as Kubernetes' pdb helper
// does: True (SufficientPods) when a disruption is allowed, else False
// (InsufficientPods), or False with reason SyncFailed and failure as its message when the
// status could not be computed.
func setDisruptionAllowed(pdb *policyv1.PodDisruptionBudget, failure string, now time.Time) {
	c := metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionFalse, Reason: policyv1.InsufficientPodsReason,
		ObservedGeneration: pdb.Status.ObservedGeneration, LastTransitionTime: metav1.NewTime(now)}
	switch {
	case failure != "":
		c.Reason, c.Message = policyv1.SyncFailedReason, failure
	case pdb.Status.DisruptionsAllowed > 0:
		c.Status, c.Reason = metav1.ConditionTrue, policyv1.SufficientPodsReason
	}
	apimeta.SetStatusCondition(&pdb.Status.Conditions, c)
}

// ScaleFunc finds the controller of a pod (by its controller reference) and its scale:
// the uid that identifies it among the pod's siblings, and its desired replicas. found
// is false when ref names no controller Skiff knows the scale of.
type ScaleFunc func(namespace string, ref *metav1.OwnerReference) (uid types.UID, scale int32, found bool)

// Status computes pdb's status from the pods it selects, at now. recheck is when an
// evicted pod's grace in disruptedPods runs out (zero: none); unmanaged names the pods
// without a controller, which a percentage cannot count. It is Kubernetes' trySync.
func Status(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, scaleOf ScaleFunc, now time.Time, deletionTimeout time.Duration) (
	st policyv1.PodDisruptionBudgetStatus, recheck time.Time, unmanaged []string, err error) {
	expected, desired, unmanaged, err := expectedCount(pdb, pods, scaleOf)
	if err != nil {
		return st, recheck, unmanaged, err
	}
	// Pods the eviction took a disruption for, and that have not been seen going yet.
	disrupted := map[string]metav1.Time{}
	for _, p := range pods {
		at, ok := pdb.Status.DisruptedPods[p.Name]
		if !ok || p.DeletionTimestamp != nil {
			continue
		}
		if expires := at.Add(deletionTimeout); expires.After(now) {
			disrupted[p.Name] = at
			if recheck.IsZero() || expires.Before(recheck) {
				recheck = expires
			}
		}
	}
	healthy := int32(0)
	for _, p := range pods {
		if _, going := disrupted[p.Name]; p.DeletionTimestamp == nil && !going && replicaset.IsReady(p) {
			healthy++
		}
	}
	allowed := healthy - desired
	// A budget matching no pods yet allows nothing, so that pods appearing before its next
	// sync are safe.
	if expected <= 0 || allowed < 0 {
		allowed = 0
	}
	if len(disrupted) == 0 {
		disrupted = nil
	}
	return policyv1.PodDisruptionBudgetStatus{ObservedGeneration: pdb.Generation, DisruptedPods: disrupted, DisruptionsAllowed: allowed,
		CurrentHealthy: healthy, DesiredHealthy: desired, ExpectedPods: expected}, recheck, unmanaged, nil
}

// expectedCount is Kubernetes' getExpectedPodCount: the pods expected, and how many of
// them must stay healthy.
func expectedCount(pdb *policyv1.PodDisruptionBudget, pods []*corev1.Pod, scaleOf ScaleFunc) (expected, desired int32, unmanaged []string, err error) {
	switch {
	case pdb.Spec.MaxUnavailable != nil:
		if expected, unmanaged, err = expectedScale(pods, scaleOf); err != nil {
			return 0, 0, unmanaged, err
		}
		maxUnavailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MaxUnavailable, int(expected), true)
		if err != nil {
			return 0, 0, unmanaged, err
		}
		desired = max(expected-int32(maxUnavailable), 0)
	case pdb.Spec.MinAvailable != nil && pdb.Spec.MinAvailable.Type == intstr.Int:
		desired, expected = pdb.Spec.MinAvailable.IntVal, int32(len(pods))
	case pdb.Spec.MinAvailable != nil:
		if expected, unmanaged, err = expectedScale(pods, scaleOf); err != nil {
			return 0, 0, unmanaged, err
		}
		minAvailable, err := intstr.GetScaledValueFromIntOrPercent(pdb.Spec.MinAvailable, int(expected), true)
		if err != nil {
			return 0, 0, unmanaged, err
		}
		desired = int32(minAvailable)
	}
	return expected, desired, unmanaged, nil
}

// expectedScale adds up the scale of the controllers of pods, each counted once.
func expectedScale(pods []*corev1.Pod, scaleOf ScaleFunc) (int32, []string, error) {
	scales := map[types.UID]int32{}
	seen := map[types.UID]bool{} // controller references already resolved
	var unmanaged []string
	for _, p := range pods {
		ref := metav1.GetControllerOfNoCopy(p)
		if ref == nil {
			unmanaged = append(unmanaged, p.Name)
			continue
		}
		if seen[ref.UID] {
			continue
		}
		uid, scale, found := scaleOf(p.Namespace, ref)
		if !found {
			return 0, unmanaged, fmt.Errorf("found no controllers for pod %q", p.Name)
		}
		seen[ref.UID], scales[uid] = true, scale
	}
	total := int32(0)
	for _, n := range scales {
		total += n
	}
	return total, unmanaged, nil
}

// scaleOf finds a pod's controller in the caches: a ReplicaSet owned by a Deployment
// stands for the Deployment (its replicas are the Deployment's to set), any other
// ReplicaSet for itself, as a ReplicationController does.
func (c *Controller) scaleOf(ns string, ref *metav1.OwnerReference) (types.UID, int32, bool) {
	if isKind(ref, kinds.ReplicationController) {
		rc, ok := c.rcs.Get(ns, ref.Name)
		if !ok || rc.UID != ref.UID {
			return "", 0, false
		}
		return rc.UID, ptr.Deref(rc.Spec.Replicas, 1), true
	}
	if !isKind(ref, kinds.ReplicaSet) {
		return "", 0, false
	}
	rs, ok := c.rss.Get(ns, ref.Name)
	if !ok || rs.UID != ref.UID {
		return "", 0, false
	}
	if owner := metav1.GetControllerOfNoCopy(rs); owner != nil && isKind(owner, kinds.Deployment) {
		d, ok := c.deps.Get(ns, owner.Name)
		if !ok || d.UID != owner.UID {
			return "", 0, false
		}
		return d.UID, ptr.Deref(d.Spec.Replicas, 1), true
	}
	return rs.UID, ptr.Deref(rs.Spec.Replicas, 1), true
}

// isKind says whether ref names an object of the kind Skiff serves by that name.
func isKind(ref *metav1.OwnerReference, kind string) bool {
	gv, err := schema.ParseGroupVersion(ref.APIVersion)
	return err == nil && ref.Kind == kind && gv.Group == kinds.MustLookup(kind).Group
}
