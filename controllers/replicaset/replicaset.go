// Package replicaset is the ReplicaSet controller: it keeps the number of active pods
// that a ReplicaSet owns equal to spec.replicas. It creates pods named after the
// ReplicaSet with a random suffix and a controller owner reference, in slow-start batches
// (each in CreateBatch calls of up to a hundred pods) that stop at the first failure; it
// adopts matching orphans and releases pods whose labels stop matching; it remembers
// what it asked for (expectations) so that a stale cache never makes it create twice;
// and it deletes the least useful pods first. It writes the ReplicaSet's status counts.
//
// The same controller serves ReplicationControllers, as Kubernetes' does: each is seen
// as the ReplicaSet it is but for its selector's form (kinds.ReplicaSetOf), while the
// pods it makes and adopts name the ReplicationController as their controller, and its
// status is written back in its own type. A kind adapts the one to the other.
package replicaset

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/controllers/internal/controllerref"
	"github.com/skiffhq/skiff/controllers/internal/expectations"
	"github.com/skiffhq/skiff/controllers/internal/slowstart"
	"github.com/skiffhq/skiff/kinds"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers reconcile different ReplicaSets concurrently. Default 5.
	Workers int
	// BurstReplicas caps the pods one sync creates or deletes. Default 5,000, ten times
	// Kubernetes' 500: each sync waits for the cache to show its creates, and slow start
	// already stops a failing burst after a few calls, so a small cap only adds round trips
	// (10,000 replicas took 10.7 s at 500, under the store's own rate).
	BurstReplicas int
	// ExpectationsTimeout: after this long, unseen creations and deletions are given up
	// on and the ReplicaSet syncs again. Default 5 minutes.
	ExpectationsTimeout time.Duration
	// Logger receives the controller's logs, named "replicaset". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock (availability, expectations). Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Workers: 5, BurstReplicas: 5000, ExpectationsTimeout: 5 * time.Minute, Logger: hclog.NewNullLogger(), Now: time.Now}
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
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("now: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("replicaset controller config: %w", err)
	}
	return nil
}

// Controller is the ReplicaSet controller, of the owners of type T: *appsv1.ReplicaSet
// (New) or *corev1.ReplicationController (NewReplicationController).
type Controller[T kinds.Object] struct {
	cfg  Config
	cs   *client.Clientset
	kind kind[T]
	// synced are the informers it reads: it acts only once all have listed.
	synced []interface{ HasSynced() bool }
	pods   *cache.Lister[*corev1.Pod]
	rss    *cache.Lister[T]
	queue  *workqueue.Queue
	exp    *expectations.Expectations
	rec    *record.Recorder
	log    hclog.Logger
	// claimer adopts active orphans and releases pods; a release that lost a race
	// fails the sync, so that no pod is replaced before its release happened.
	claimer controllerref.Claimer[*corev1.Pod]
}

// kind adapts the owners of type T to the controller: how one looks as a ReplicaSet
// (its metadata, selector, replicas, template and status), and how a ReplicaSet's
// status is written as its own.
type kind[T kinds.Object] struct {
	asReplicaSet func(T) *appsv1.ReplicaSet
	updateStatus func(ctx context.Context, obj T, st appsv1.ReplicaSetStatus) error
}

// New makes the ReplicaSet controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config) (*Controller[*appsv1.ReplicaSet], error) {
	return newController(cs, f, rec, cfg, kind[*appsv1.ReplicaSet]{
		asReplicaSet: func(rs *appsv1.ReplicaSet) *appsv1.ReplicaSet { return rs },
		updateStatus: func(ctx context.Context, rs *appsv1.ReplicaSet, st appsv1.ReplicaSetStatus) error {
			next := rs.DeepCopy()
			next.Status = st
			_, err := cs.ReplicaSets.UpdateStatus(ctx, next)
			return err
		},
	})
}

// NewReplicationController makes the controller of ReplicationControllers (Kubernetes'
// replication controller) on the factory's informers; Run starts it.
func NewReplicationController(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config) (*Controller[*corev1.ReplicationController], error) {
	return newController(cs, f, rec, cfg, kind[*corev1.ReplicationController]{
		asReplicaSet: kinds.ReplicaSetOf,
		updateStatus: func(ctx context.Context, rc *corev1.ReplicationController, st appsv1.ReplicaSetStatus) error {
			next := rc.DeepCopy()
			next.Status = kinds.ReplicationControllerStatusOf(st)
			_, err := cs.ReplicationControllers.UpdateStatus(ctx, next)
			return err
		},
	})
}

func newController[T kinds.Object](cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config, k kind[T]) (*Controller[T], error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	info := kinds.OfType[T]()
	rsInf := cache.InformerFor[T](f, "", client.ListOptions{})
	podInf := cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{})
	podInf.AddIndexer(cache.IndexOwner, cache.ByOwner[*corev1.Pod])
	podInf.AddIndexer(cache.IndexOrphan, cache.ByOrphan[*corev1.Pod])
	c := &Controller[T]{
		cfg: cfg, cs: cs, kind: k, synced: []interface{ HasSynced() bool }{rsInf, podInf}, pods: podInf.Lister(), rss: rsInf.Lister(),
		queue: workqueue.New(workqueue.Config{}), exp: expectations.New(cfg.ExpectationsTimeout, cfg.Now),
		rec: rec, log: cfg.Logger.Named(info.Singular),
		claimer: controllerref.Claimer[*corev1.Pod]{Update: cs.Pods.Update, Adoptable: IsActive, FailOnLostRelease: true},
	}
	rsInf.AddHandler(cache.Handler[T]{
		OnAdd:    func(rs T) { c.queue.Add(cache.Key(rs)) },
		OnUpdate: func(_, rs T) { c.queue.Add(cache.Key(rs)) },
		OnDelete: func(rs T) { c.exp.Forget(cache.Key(rs)); c.queue.Add(cache.Key(rs)) },
	})
	podInf.AddHandler(expectations.PodEvents[T]{Kind: info.Kind, Exp: c.exp, Add: c.queue.Add,
		Owners:   func(ns string) []T { return c.rss.ListNamespace(ns, labels.Everything()) },
		Selector: func(o T) *metav1.LabelSelector { return k.asReplicaSet(o).Spec.Selector },
	}.Handler())
	return c, nil
}

// Run reconciles until ctx ends. The factory must be started.
func (c *Controller[T]) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Reconcile syncs one ReplicaSet (or ReplicationController) by key.
func (c *Controller[T]) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	obj, ok := c.rss.Get(ns, name)
	if !ok {
		c.exp.Forget(key)
		return 0, nil
	}
	rs := c.kind.asReplicaSet(obj)
	sel, err := metav1.LabelSelectorAsSelector(rs.Spec.Selector)
	if err != nil || sel.Empty() || rs.Spec.Selector == nil {
		return 0, nil // validation refuses these; nothing sane to do
	}
	// Expectations are read before the pods, as Kubernetes' controller does: read after,
	// a creation seen between the two would satisfy them while the snapshot lacks its pod,
	// and the pod would be made twice.
	needsSync := c.exp.Satisfied(key)
	pods, err := c.claimer.Claim(ctx, obj, sel, c.candidates(obj))
	if err != nil {
		return 0, err
	}
	var active []*corev1.Pod
	for _, p := range pods {
		if IsActive(p) {
			active = append(active, p)
		}
	}
	var manageErr error
	if needsSync && rs.DeletionTimestamp == nil {
		manageErr = c.manage(ctx, key, obj, rs, active)
	}
	st, requeue := Status(rs, active, manageErr, c.cfg.Now())
	if !equality.Semantic.DeepEqual(st, rs.Status) {
		if err := c.kind.updateStatus(ctx, obj, st); err != nil && !client.IsNotFound(err) {
			return 0, errors.Join(manageErr, fmt.Errorf("update status of %s %s: %w", kinds.Of(obj).Singular, key, err))
		}
	}
	return requeue, manageErr
}

// candidates are the pods a sync of rs claims from: those that name it as an owner and
// the orphans of its namespace, from the pod cache's indexes (recent Kubernetes
// controllers read them from a pod index by controller UID). A pod another controller
// controls is neither adopted nor released, so the rest of the namespace need not be
// read: a sync costs rs's own pods, not the namespace's (fifty ReplicaSets of a
// thousand pods in one namespace read fifty thousand pods a sync each).
// They come in no particular order: what is done with them is ordered where it matters
// (rankForDeletion).
func (c *Controller[T]) candidates(rs T) []*corev1.Pod {
	out := c.pods.ByIndexAnyOrder(cache.IndexOwner, string(rs.GetUID()))
	orphans := c.pods.ByIndexAnyOrder(cache.IndexOrphan, rs.GetNamespace())
	if len(orphans) == 0 {
		return out // the common case: no set of the owned to make
	}
	named := make(map[types.UID]bool, len(out))
	for _, p := range out {
		named[p.UID] = true
	}
	for _, p := range orphans {
		if !named[p.UID] { // an orphan naming rs as a plain owner is listed once
			out = append(out, p)
		}
	}
	return out
}

// manage creates or deletes pods to reach spec.replicas. owner is the object, rs its
// ReplicaSet view.
func (c *Controller[T]) manage(ctx context.Context, key string, owner T, rs *appsv1.ReplicaSet, active []*corev1.Pod) error {
	diff := len(active) - int(replicas(rs))
	switch {
	case diff < 0:
		n := min(-diff, c.cfg.BurstReplicas)
		c.exp.ExpectCreations(key, n)
		created, _, err := slowstart.RunBatches(n, 1, func(_, size int) []error { return c.createPods(ctx, owner, rs, size) })
		for i := created; i < n; i++ {
			c.exp.CreationObserved(key) // never coming
		}
		return err
	case diff > 0:
		n := min(diff, c.cfg.BurstReplicas)
		victims := append([]*corev1.Pod(nil), active...)
		rankForDeletion(victims)
		victims = victims[:n]
		keys := make([]string, len(victims))
		for i, p := range victims {
			keys[i] = cache.Key(p)
		}
		c.exp.ExpectDeletions(key, keys)
		return c.exp.DeletePods(ctx, key, owner, victims, expectations.DeleteWith(c.cs.Pods), c.rec)
	}
	return nil
}

// createPods creates n pods of rs and returns each one's error: a slow-start batch of
// more than one pod in one CreateBatch call per hundred, which the server commits in one
// store transaction, instead of a call and a Raft entry per pod (as the DaemonSet and
// Job controllers make theirs); one at a time from a server without the call. Each pod
// is admitted, and succeeds or fails, alone.
func (c *Controller[T]) createPods(ctx context.Context, owner T, rs *appsv1.ReplicaSet, n int) []error {
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		tmpl := rs.Spec.Template.DeepCopy()
		pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
		pod.Name = ""
		pod.GenerateName = rs.Name + "-"
		pod.Namespace = rs.Namespace
		pod.OwnerReferences = []metav1.OwnerReference{kinds.NewControllerRef(owner)}
		pods[i] = pod
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for start := 0; start < n; start += client.MaxCreateBatch {
		chunk := pods[start:min(start+client.MaxCreateBatch, n)]
		wg.Go(func() {
			out, cerrs := c.cs.Pods.CreateEach(ctx, chunk)
			for i, err := range cerrs {
				if err != nil {
					c.rec.Eventf(owner, record.Warning, "FailedCreate", "Error creating: %v", err)
					errs[start+i] = fmt.Errorf("create pod for %s %s: %w", kinds.Of(owner).Singular, cache.Key(rs), err)
					continue
				}
				c.rec.Eventf(owner, record.Normal, "SuccessfulCreate", "Created pod: %s", out[i].Name)
			}
		})
	}
	wg.Wait()
	return errs
}

// Status computes a ReplicaSet's status from its active pods, and when to look again
// for a ready pod to become available.
func Status(rs *appsv1.ReplicaSet, active []*corev1.Pod, manageErr error, now time.Time) (appsv1.ReplicaSetStatus, time.Duration) {
	st := appsv1.ReplicaSetStatus{Replicas: int32(len(active)), ObservedGeneration: rs.Generation}
	tmplLabels := labels.SelectorFromSet(rs.Spec.Template.Labels)
	minReady := time.Duration(rs.Spec.MinReadySeconds) * time.Second
	var requeue time.Duration
	for _, p := range active {
		if tmplLabels.Matches(labels.Set(p.Labels)) {
			st.FullyLabeledReplicas++
		}
		if IsReady(p) {
			st.ReadyReplicas++
		}
		ok, in := AvailableIn(p, minReady, now)
		if ok {
			st.AvailableReplicas++
		} else if in > 0 && (requeue == 0 || in < requeue) {
			requeue = in
		}
	}
	var prev *appsv1.ReplicaSetCondition
	for i := range rs.Status.Conditions {
		if rs.Status.Conditions[i].Type == appsv1.ReplicaSetReplicaFailure {
			prev = &rs.Status.Conditions[i]
		}
	}
	switch {
	case manageErr != nil && prev != nil:
		// Kept as first written, as Kubernetes does: each failure's message differs (it
		// names the pod), and a status written on every failed sync would wake the
		// ReplicaSet at once, defeating the back-off of its retries.
		st.Conditions = []appsv1.ReplicaSetCondition{*prev}
	case manageErr != nil:
		reason := "FailedCreate"
		if len(active) > int(replicas(rs)) {
			reason = "FailedDelete"
		}
		st.Conditions = []appsv1.ReplicaSetCondition{{Type: appsv1.ReplicaSetReplicaFailure, Status: corev1.ConditionTrue, Reason: reason,
			Message: manageErr.Error(), LastTransitionTime: metav1.NewTime(now)}}
	}
	return st, requeue
}

// replicas is spec.replicas (which the API server defaults; unset counts as none).
func replicas(rs *appsv1.ReplicaSet) int32 { return ptr.Deref(rs.Spec.Replicas, 0) }
