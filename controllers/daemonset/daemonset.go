// Package daemonset is the DaemonSet controller: one pod of each DaemonSet on every node
// its node selector, node affinity and tolerations accept (with the tolerations
// Kubernetes adds to every daemon pod), placed by the scheduler through a required node
// affinity to that node, as Kubernetes does since 1.12. Nodes that join, leave, or change
// labels or taints gain or lose the pod. Template changes roll out by RollingUpdate
// (maxUnavailable, or maxSurge: a new pod beside the old until it is available) or, with
// OnDelete, as pods are deleted; revisions are kept in ControllerRevisions, up to
// revisionHistoryLimit old ones. Failed pods are replaced with a back-off per node. The
// controller writes the DaemonSet's status counts.
package daemonset

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/controllers/internal/controllerref"
	"github.com/skiffhq/skiff/controllers/internal/expectations"
	"github.com/skiffhq/skiff/controllers/internal/history"
	"github.com/skiffhq/skiff/controllers/internal/slowstart"
	"github.com/skiffhq/skiff/kinds"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers reconcile different DaemonSets concurrently. Default 2 (Kubernetes' default).
	Workers int
	// BurstReplicas caps the pods one sync creates or deletes. Default 5,000 (see the
	// ReplicaSet controller's).
	BurstReplicas int
	// ExpectationsTimeout: after this long, unseen creations and deletions are given up on.
	// Default 5 minutes.
	ExpectationsTimeout time.Duration
	// FailedPodBackoff and MaxFailedPodBackoff bound the wait before a failed pod is
	// replaced on a node, doubling from the first to the second (Kubernetes' 1s, 15m).
	FailedPodBackoff, MaxFailedPodBackoff time.Duration
	// Logger receives the controller's logs, named "daemonset". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Workers: 2, BurstReplicas: 5000, ExpectationsTimeout: 5 * time.Minute, FailedPodBackoff: time.Second,
		MaxFailedPodBackoff: 15 * time.Minute, Logger: hclog.NewNullLogger(), Now: time.Now}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.BurstReplicas < 1 {
		errs = append(errs, fmt.Errorf("burstReplicas: %d must be at least 1", c.BurstReplicas))
	}
	if c.ExpectationsTimeout <= 0 {
		errs = append(errs, fmt.Errorf("expectationsTimeout: %v must be positive", c.ExpectationsTimeout))
	}
	if c.FailedPodBackoff <= 0 || c.MaxFailedPodBackoff < c.FailedPodBackoff {
		errs = append(errs, fmt.Errorf("failedPodBackoff: %v must be positive and at most maxFailedPodBackoff %v", c.FailedPodBackoff, c.MaxFailedPodBackoff))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("now: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("daemonset controller config: %w", err)
	}
	return nil
}

// Controller is the DaemonSet controller.
type Controller struct {
	cfg Config
	cs  *client.Clientset
	// synced are the informers it reads: it acts only once all have listed.
	synced  []interface{ HasSynced() bool }
	dss     *cache.Lister[*appsv1.DaemonSet]
	pods    *cache.Lister[*corev1.Pod]
	nodes   *cache.Lister[*corev1.Node]
	revs    *cache.Lister[*appsv1.ControllerRevision]
	queue   *workqueue.Queue
	exp     *expectations.Expectations
	rec     *record.Recorder
	log     hclog.Logger
	history history.History
	// podClaimer and revClaimer adopt and release pods and revisions.
	podClaimer controllerref.Claimer[*corev1.Pod]
	revClaimer controllerref.Claimer[*appsv1.ControllerRevision]

	// batches: per DaemonSet, the slow-start batch its creations begin with (a rolling
	// update's replacements, wave after wave).
	batches slowstart.Memory

	mu      sync.Mutex
	backoff map[string]failedBackoff // by DaemonSet key and node
	// written: per DaemonSet, what its last status write returned, until the cache
	// shows it (see statusBase).
	written map[string]*appsv1.DaemonSet
}

type failedBackoff struct {
	wait time.Duration
	at   time.Time // of the last replacement
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dsInf := cache.InformerFor[*appsv1.DaemonSet](f, "", client.ListOptions{})
	podInf := cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{})
	nodeInf := cache.InformerFor[*corev1.Node](f, "", client.ListOptions{})
	revInf := cache.InformerFor[*appsv1.ControllerRevision](f, "", client.ListOptions{})
	c := &Controller{
		cfg: cfg, cs: cs, synced: []interface{ HasSynced() bool }{dsInf, podInf, nodeInf, revInf}, dss: dsInf.Lister(), pods: podInf.Lister(), nodes: nodeInf.Lister(), revs: revInf.Lister(),
		queue: workqueue.New(workqueue.Config{}), exp: expectations.New(cfg.ExpectationsTimeout, cfg.Now), rec: rec,
		log: cfg.Logger.Named("daemonset"), history: history.History{Revisions: cs.ControllerRevisions},
		podClaimer: controllerref.Claimer[*corev1.Pod]{Update: cs.Pods.Update, FailOnLostRelease: true},
		revClaimer: controllerref.Claimer[*appsv1.ControllerRevision]{Update: cs.ControllerRevisions.Update},
		backoff:    map[string]failedBackoff{}, written: map[string]*appsv1.DaemonSet{},
	}
	enqueue := func(ds *appsv1.DaemonSet) { c.queue.Add(cache.Key(ds)) }
	dsInf.AddHandler(cache.Handler[*appsv1.DaemonSet]{OnAdd: enqueue, OnUpdate: func(_, ds *appsv1.DaemonSet) { enqueue(ds) },
		OnDelete: func(ds *appsv1.DaemonSet) { c.exp.Forget(cache.Key(ds)); enqueue(ds) }})
	podInf.AddHandler(expectations.PodEvents[*appsv1.DaemonSet]{Kind: kinds.DaemonSet, Exp: c.exp, Add: c.queue.Add,
		Owners:   func(ns string) []*appsv1.DaemonSet { return c.dss.ListNamespace(ns, labels.Everything()) },
		Selector: func(o *appsv1.DaemonSet) *metav1.LabelSelector { return o.Spec.Selector },
	}.Handler())
	nodeInf.AddHandler(cache.Handler[*corev1.Node]{
		OnAdd:    func(*corev1.Node) { c.enqueueAll() },
		OnUpdate: c.nodeUpdated,
		OnDelete: func(*corev1.Node) { c.enqueueAll() },
	})
	revChanged := func(r *appsv1.ControllerRevision) {
		if ref := metav1.GetControllerOfNoCopy(r); ref != nil && ref.Kind == kinds.DaemonSet {
			c.queue.Add(r.Namespace + "/" + ref.Name)
		}
	}
	revInf.AddHandler(cache.Handler[*appsv1.ControllerRevision]{OnAdd: revChanged, OnUpdate: func(_, r *appsv1.ControllerRevision) { revChanged(r) },
		OnDelete: revChanged})
	return c, nil
}

func (c *Controller) enqueueAll() {
	for _, ds := range c.dss.List(labels.Everything()) {
		c.queue.Add(cache.Key(ds))
	}
}

// nodeUpdated queues every DaemonSet when what decides where daemon pods run changed:
// labels, taints, the node's name in its spec fields (Kubernetes' nodeInSameCondition
// looks at the same).
func (c *Controller) nodeUpdated(old, node *corev1.Node) {
	if equality.Semantic.DeepEqual(old.Labels, node.Labels) && equality.Semantic.DeepEqual(old.Spec.Taints, node.Spec.Taints) &&
		old.Spec.Unschedulable == node.Spec.Unschedulable {
		return
	}
	c.enqueueAll()
}

// Run reconciles until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Reconcile syncs one DaemonSet by key.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	ds, ok := c.dss.Get(ns, name)
	if !ok {
		c.exp.Forget(key)
		c.forgetBackoff(key)
		c.batches.Forget(key)
		c.forgetWritten(key)
		return 0, nil
	}
	if ds.DeletionTimestamp != nil {
		return 0, nil // the garbage collector deletes its pods
	}
	sel, err := metav1.LabelSelectorAsSelector(ds.Spec.Selector)
	if err != nil || sel.Empty() || ds.Spec.Selector == nil {
		return 0, nil
	}
	// Expectations are read before the pods (see the ReplicaSet controller): read after,
	// a creation seen between the two would let a node's pod be made twice.
	needsSync := c.exp.Satisfied(key)
	pods, err := c.podClaimer.Claim(ctx, ds, sel, c.pods.ListNamespace(ns, labels.Everything()))
	if err != nil {
		return 0, err
	}
	revs, err := c.revClaimer.Claim(ctx, ds, sel, c.revs.ListNamespace(ns, labels.Everything()))
	if err != nil {
		return 0, err
	}
	history.Sort(revs)
	data, err := history.TemplatePatch(&ds.Spec.Template)
	if err != nil {
		return 0, fmt.Errorf("daemonset %s: %w", key, err)
	}
	collisions := int32(0)
	if ds.Status.CollisionCount != nil {
		collisions = *ds.Status.CollisionCount
	}
	before := collisions
	cur, err := c.history.Current(ctx, ds, ds.Spec.Template.Labels, data, revs, &collisions)
	if collisions != before {
		next := ds.DeepCopy()
		next.Status.CollisionCount = &collisions
		if _, uerr := c.cs.DaemonSets.UpdateStatus(ctx, next); uerr != nil {
			return 0, errors.Join(err, uerr)
		}
	}
	if err != nil {
		return 0, err
	}
	hash := cur.Labels[history.HashLabel]
	nodes := c.nodes.List(labels.Everything())
	byNode := ByNode(pods)
	now := c.cfg.Now()
	var requeue time.Duration
	var manageErr error
	if needsSync {
		surge, _ := Fenceposts(ds, desiredNodes(ds, nodes))
		plan := Manage(ds, nodes, byNode, hash, surge > 0, func(node string) time.Duration { return c.failedBackoff(key, node, now) }, now)
		if ds.Spec.UpdateStrategy.Type == appsv1.RollingUpdateDaemonSetStrategyType && len(plan.Create) == 0 && len(plan.Delete) == 0 {
			plan = RollingUpdate(ds, nodes, byNode, hash, now)
		}
		requeue = plan.RetryFailed
		for _, p := range plan.Failed {
			c.rec.Eventf(ds, record.Warning, "FailedDaemonPod", "Found failed daemon pod %s/%s on node %s, will try to kill it",
				p.Namespace, p.Name, TargetNode(p))
		}
		manageErr = c.syncNodes(ctx, key, ds, plan, hash)
	}
	if err := c.cleanupHistory(ctx, ds, cur, revs, pods); err != nil {
		manageErr = errors.Join(manageErr, err)
	}
	st := Status(ds, nodes, byNode, hash, now)
	st.CollisionCount = ptrIfSet(collisions, ds.Status.CollisionCount)
	if base := c.statusBase(key, ds); !equality.Semantic.DeepEqual(st, base.Status) {
		out, err := storeStatus(ctx, c.cs.DaemonSets, base, st)
		if err != nil && !client.IsNotFound(err) {
			c.forgetWritten(key)
			return 0, errors.Join(manageErr, fmt.Errorf("update status of daemonset %s: %w", key, err))
		}
		c.remember(key, out)
	}
	if requeue == 0 && st.NumberAvailable < st.NumberReady && ds.Spec.MinReadySeconds > 0 {
		requeue = time.Duration(ds.Spec.MinReadySeconds) * time.Second
	}
	return requeue, manageErr
}

// statusBase is the DaemonSet a sync's status is written on: the cache's, or the one
// this controller's last status write returned when the cache does not show that
// write yet (same object, same spec and collision count, an older resourceVersion).
// During a rollout nearly every sync follows the previous one's status write before
// its watch event, and a status written on the cache's copy conflicted: a read and a
// second write each time (on 100 nodes, 45 of 50 writes of a rollout). The write's
// precondition is unchanged: a write by anyone else since still conflicts.
func (c *Controller) statusBase(key string, ds *appsv1.DaemonSet) *appsv1.DaemonSet {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.written[key]
	if w == nil {
		return ds
	}
	cached, err1 := strconv.ParseUint(ds.ResourceVersion, 10, 64)
	mine, err2 := strconv.ParseUint(w.ResourceVersion, 10, 64)
	switch {
	case err1 != nil || err2 != nil || cached >= mine || w.UID != ds.UID:
		delete(c.written, key) // the cache has caught up (or the object is another)
		return ds
	case w.Generation != ds.Generation || !equality.Semantic.DeepEqual(w.Status.CollisionCount, ds.Status.CollisionCount):
		return ds
	}
	return w
}

func (c *Controller) remember(key string, written *appsv1.DaemonSet) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if written == nil {
		delete(c.written, key)
		return
	}
	c.written[key] = written
}

func (c *Controller) forgetWritten(key string) { c.remember(key, nil) }

// statusClient is what storeStatus needs of the DaemonSets' client.
type statusClient interface {
	Get(ctx context.Context, namespace, name string, opts ...client.GetOptions) (*appsv1.DaemonSet, error)
	UpdateStatus(ctx context.Context, ds *appsv1.DaemonSet) (*appsv1.DaemonSet, error)
}

// storeStatus writes st as ds's status. A conflict (the cache's DaemonSet is older than
// the stored one: most often this controller's own last status write, not yet seen) is
// retried once on the stored DaemonSet, as Kubernetes' storeDaemonSetStatus does, when
// its spec is the one st was computed from (same generation); else the newer spec's
// event syncs again. During a rollout nearly every sync follows the previous one's
// status write, and a conflict cost the sync its status and a retry with back-off.
//
// It returns the DaemonSet as written (nil when nothing was).
func storeStatus(ctx context.Context, dss statusClient, ds *appsv1.DaemonSet, st appsv1.DaemonSetStatus) (*appsv1.DaemonSet, error) {
	next := ds.DeepCopy()
	next.Status = st
	out, err := dss.UpdateStatus(ctx, next)
	if !client.IsConflict(err) {
		return out, err
	}
	cur, gerr := dss.Get(ctx, ds.Namespace, ds.Name)
	switch {
	case gerr != nil:
		return nil, gerr
	case cur.UID != ds.UID || cur.Generation != ds.Generation:
		return nil, nil // replaced or changed: its own event brings it back
	case equality.Semantic.DeepEqual(cur.Status, st):
		return nil, nil
	}
	cur = cur.DeepCopy()
	st.CollisionCount = cur.Status.CollisionCount // the stored one: Reconcile writes it on its own
	cur.Status = st
	return dss.UpdateStatus(ctx, cur)
}

func ptrIfSet(n int32, was *int32) *int32 {
	if n == 0 && was == nil {
		return nil
	}
	return &n
}

// syncNodes creates and deletes what plan says, within BurstReplicas each.
func (c *Controller) syncNodes(ctx context.Context, key string, ds *appsv1.DaemonSet, plan Plan, hash string) error {
	create := plan.Create[:min(len(plan.Create), c.cfg.BurstReplicas)]
	del := plan.Delete[:min(len(plan.Delete), c.cfg.BurstReplicas)]
	keys := make([]string, len(del))
	for i, p := range del {
		keys[i] = cache.Key(p)
	}
	c.exp.Expect(key, len(create), keys)
	// The batches begin with the largest that last succeeded for this DaemonSet: a
	// rolling update's waves each replace up to maxUnavailable pods, and from 1 each
	// wave paid the doubling's rounds again (seven for a hundred pods).
	created, err := c.batches.RunBatches(key, len(create), func(start, size int) []error {
		began := time.Now()
		errs := c.createPods(ctx, key, ds, create[start:start+size], hash)
		c.log.Debug("created a slow-start batch", "daemonset", key, "pods", size, "took", time.Since(began))
		return errs
	})
	for j := created; j < len(create); j++ {
		c.exp.CreationObserved(key) // never coming
	}
	return errors.Join(err, c.exp.DeletePods(ctx, key, ds, del, expectations.DeleteWith(c.cs.Pods), c.rec))
}

// createPods creates the daemon pods for nodes and returns each one's error: a slow-start
// batch of more than one pod in one CreateBatch call per hundred, which the server commits
// in one store transaction, instead of a call and a Raft entry per pod; one at a time
// from a server without the call.
func (c *Controller) createPods(ctx context.Context, key string, ds *appsv1.DaemonSet, nodes []string, hash string) []error {
	errs := make([]error, len(nodes))
	pods := make([]*corev1.Pod, len(nodes))
	for i, node := range nodes {
		pods[i] = NewPod(ds, node, hash)
	}
	var wg sync.WaitGroup
	for start := 0; start < len(pods); start += client.MaxCreateBatch {
		chunk := pods[start:min(start+client.MaxCreateBatch, len(pods))]
		wg.Go(func() {
			out, cerrs := c.cs.Pods.CreateEach(ctx, chunk)
			for i, err := range cerrs {
				node := nodes[start+i]
				if err != nil {
					c.rec.Eventf(ds, record.Warning, "FailedCreate", "Error creating: %v", err)
					errs[start+i] = fmt.Errorf("create pod of daemonset %s for node %s: %w", key, node, err)
					continue
				}
				c.rec.Eventf(ds, record.Normal, "SuccessfulCreate", "Created pod: %s", out[i].Name)
			}
		})
	}
	wg.Wait()
	return errs
}

// failedBackoff says how long a failed pod of key on node must wait before it is
// replaced: 0 when now (the wait then doubles for the next one).
func (c *Controller) failedBackoff(key, node string, now time.Time) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := key + "|" + node
	b, ok := c.backoff[k]
	if ok {
		if until := b.at.Add(b.wait); now.Before(until) {
			return until.Sub(now)
		}
		if now.Sub(b.at) > 2*c.cfg.MaxFailedPodBackoff {
			b = failedBackoff{} // calm long enough: start over
		}
	}
	switch {
	case b.wait == 0:
		b.wait = c.cfg.FailedPodBackoff
	default:
		b.wait = min(2*b.wait, c.cfg.MaxFailedPodBackoff)
	}
	b.at = now
	c.backoff[k] = b
	return 0
}

func (c *Controller) forgetBackoff(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.backoff {
		if len(k) > len(key) && k[:len(key)+1] == key+"|" {
			delete(c.backoff, k)
		}
	}
}

// cleanupHistory deletes the oldest revisions beyond revisionHistoryLimit that no live
// pod was made from (Kubernetes' cleanupHistory).
func (c *Controller) cleanupHistory(ctx context.Context, ds *appsv1.DaemonSet, cur *appsv1.ControllerRevision, revs []*appsv1.ControllerRevision, pods []*corev1.Pod) error {
	limit := 10
	if ds.Spec.RevisionHistoryLimit != nil {
		limit = int(*ds.Spec.RevisionHistoryLimit)
	}
	live := map[string]bool{}
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			live[p.Labels[HashLabel]] = true
		}
	}
	var old []*appsv1.ControllerRevision
	for _, r := range revs {
		if r.Name != cur.Name && !live[r.Labels[history.HashLabel]] && r.DeletionTimestamp == nil {
			old = append(old, r)
		}
	}
	for i := 0; i < len(old)-limit; i++ {
		r := old[i]
		if _, err := c.cs.ControllerRevisions.Delete(ctx, r.Namespace, r.Name, client.DeleteOptions{UID: string(r.UID)}); err != nil && !client.IsNotFound(err) {
			return fmt.Errorf("delete revision %s: %w", cache.Key(r), err)
		}
	}
	return nil
}
