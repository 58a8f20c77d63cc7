// Package deployment is the Deployment controller: for each Deployment it keeps one
// ReplicaSet per pod template, named <deployment>-<pod-template-hash>, and moves replicas
// from the old ReplicaSets to the new one by RollingUpdate (within maxSurge and
// maxUnavailable) or Recreate. It numbers revisions, keeps revisionHistoryLimit old
// ReplicaSets, honours paused, and writes the Deployment's status with the Available and
// Progressing conditions (ProgressDeadlineExceeded when a rollout stalls).
//
// Like Kubernetes' controller it keeps the desired-replicas and max-replicas annotations
// on the ReplicaSets it writes; a Deployment resized in the middle of a rollout (or while
// paused) has the difference shared out over its active ReplicaSets in proportion to
// their sizes (ScaleStep), not all given to the new one.
package deployment

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/controllers/internal/controllerref"
	"github.com/skiffhq/skiff/kinds"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers reconcile different Deployments concurrently. Default 5.
	Workers int
	// Logger receives the controller's logs, named "deployment". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock (conditions, progress deadlines). Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Workers: 5, Logger: hclog.NewNullLogger(), Now: time.Now}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("now: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("deployment controller config: %w", err)
	}
	return nil
}

// Controller is the Deployment controller.
type Controller struct {
	cfg Config
	cs  *client.Clientset
	// synced are the informers it reads: it acts only once all have listed.
	synced []interface{ HasSynced() bool }
	ds     *cache.Lister[*appsv1.Deployment]
	rss    *cache.Lister[*appsv1.ReplicaSet]
	queue  *workqueue.Queue
	rec    *record.Recorder
	log    hclog.Logger
	// claimer adopts and releases ReplicaSets.
	claimer controllerref.Claimer[*appsv1.ReplicaSet]
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dInf := cache.InformerFor[*appsv1.Deployment](f, "", client.ListOptions{})
	rsInf := cache.InformerFor[*appsv1.ReplicaSet](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, synced: []interface{ HasSynced() bool }{dInf, rsInf}, ds: dInf.Lister(), rss: rsInf.Lister(),
		queue: workqueue.New(workqueue.Config{}), rec: rec, log: cfg.Logger.Named("deployment"),
		claimer: controllerref.Claimer[*appsv1.ReplicaSet]{Update: cs.ReplicaSets.Update}}
	enqueue := func(d *appsv1.Deployment) { c.queue.Add(cache.Key(d)) }
	dInf.AddHandler(cache.Handler[*appsv1.Deployment]{OnAdd: enqueue, OnUpdate: func(_, d *appsv1.Deployment) { enqueue(d) }, OnDelete: enqueue})
	rsInf.AddHandler(cache.Handler[*appsv1.ReplicaSet]{
		OnAdd:    c.rsChanged,
		OnUpdate: func(old, rs *appsv1.ReplicaSet) { c.rsChanged(old); c.rsChanged(rs) },
		OnDelete: c.rsChanged,
	})
	return c, nil
}

func (c *Controller) rsChanged(rs *appsv1.ReplicaSet) {
	ns := rs.Namespace
	if ref := metav1.GetControllerOfNoCopy(rs); ref != nil {
		if ref.Kind == kinds.Deployment {
			c.queue.Add(ns + "/" + ref.Name)
		}
		return
	}
	for _, d := range c.ds.ListNamespace(ns, labels.Everything()) {
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err == nil && !sel.Empty() && sel.Matches(labels.Set(rs.Labels)) {
			c.queue.Add(cache.Key(d))
		}
	}
}

// Run reconciles until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Reconcile syncs one Deployment by key.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	d, ok := c.ds.Get(ns, name)
	if !ok || d.DeletionTimestamp != nil {
		return 0, nil
	}
	d = d.DeepCopy()
	sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || sel.Empty() || d.Spec.Selector == nil {
		return 0, nil
	}
	rss, err := c.claimer.Claim(ctx, d, sel, c.rss.ListNamespace(ns, labels.Everything()))
	if err != nil {
		return 0, err
	}
	// The new ReplicaSet is the oldest one with the Deployment's template, should
	// there be several (Kubernetes' FindNewReplicaSet).
	sortByCreation(rss)
	var newRS *appsv1.ReplicaSet
	var old []*appsv1.ReplicaSet
	maxRev := int64(0)
	for _, rs := range rss {
		if newRS == nil && templateEqual(&rs.Spec.Template, &d.Spec.Template) {
			newRS = rs
			continue
		}
		old = append(old, rs)
		maxRev = max(maxRev, revisionOf(rs))
	}
	sortOldestFirst(old)
	created := false
	// A paused Deployment, or one resized since its ReplicaSets were last written, is
	// scaled, not rolled forward (Kubernetes' sync): a resize in the middle of a
	// rollout is shared out over the active ReplicaSets in proportion.
	var steps []Scale
	if d.Spec.Paused || IsScalingEvent(d, newRS, old) {
		steps = ScaleStep(d, newRS, old)
	}
	if !d.Spec.Paused && len(steps) == 0 {
		if newRS == nil {
			if newRS, err = c.createNewRS(ctx, d, old, maxRev); err != nil {
				return 0, err
			}
			created = true
		} else if revisionOf(newRS) <= maxRev {
			// A rollback to an old template: it becomes the newest revision.
			if newRS, err = c.setRevision(ctx, d, newRS, maxRev+1); err != nil {
				return 0, err
			}
		}
		if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
			steps = RecreateStep(d, newRS, old)
		} else if steps, err = RollingStep(d, newRS, old); err != nil {
			return 0, err
		}
	}
	for _, s := range steps {
		out, err := c.scale(ctx, d, s.RS, s.Replicas)
		if err != nil {
			return 0, err
		}
		if s.RS == newRS {
			newRS = out
		}
		for i := range old {
			if old[i] == s.RS {
				old[i] = out
			}
		}
	}
	if !d.Spec.Paused {
		if err := c.cleanup(ctx, d, old); err != nil {
			return 0, err
		}
	}
	if newRS != nil && d.Annotations[RevisionAnnotation] != newRS.Annotations[RevisionAnnotation] {
		if d, err = c.setDeploymentRevision(ctx, d, newRS.Annotations[RevisionAnnotation]); err != nil {
			return 0, err
		}
	}
	st, requeue := Status(d, newRS, old, created, c.cfg.Now())
	if !equality.Semantic.DeepEqual(st, d.Status) { // conditions keep their times when nothing changed
		next := d.DeepCopy()
		next.Status = st
		if _, err := c.cs.Deployments.UpdateStatus(ctx, next); err != nil && !client.IsNotFound(err) {
			return 0, fmt.Errorf("update status of deployment %s: %w", key, err)
		}
	}
	return requeue, nil
}

func (c *Controller) createNewRS(ctx context.Context, d *appsv1.Deployment, old []*appsv1.ReplicaSet, maxRev int64) (*appsv1.ReplicaSet, error) {
	collisions := ptr.Deref(d.Status.CollisionCount, 0)
	hash := TemplateHash(&d.Spec.Template, collisions)
	tmpl := d.Spec.Template.DeepCopy()
	if tmpl.Labels == nil {
		tmpl.Labels = map[string]string{}
	}
	tmpl.Labels[PodTemplateHashLabel] = hash
	sel := d.Spec.Selector.DeepCopy()
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[PodTemplateHashLabel] = hash
	rs := &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{
			Name: d.Name + "-" + hash, Namespace: d.Namespace, Labels: maps.Clone(tmpl.Labels),
			Annotations:     map[string]string{RevisionAnnotation: strconv.FormatInt(maxRev+1, 10)},
			OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(d)},
		},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0), MinReadySeconds: d.Spec.MinReadySeconds, Selector: sel, Template: *tmpl},
	}
	setReplicaAnnotations(d, rs)
	// Its first size is the first step of the rollout.
	var steps []Scale
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		steps = RecreateStep(d, rs, old)
	} else {
		var err error
		if steps, err = RollingStep(d, rs, old); err != nil {
			return nil, err
		}
	}
	for _, s := range steps {
		if s.RS == rs {
			rs.Spec.Replicas = ptr.To(s.Replicas)
		}
	}
	out, err := c.cs.ReplicaSets.Create(ctx, rs)
	if client.IsAlreadyExists(err) {
		existing, gerr := c.cs.ReplicaSets.Get(ctx, rs.Namespace, rs.Name)
		if gerr == nil && templateEqual(&existing.Spec.Template, &d.Spec.Template) {
			return nil, fmt.Errorf("replicaset %s exists but is not yet in the cache", rs.Name)
		}
		// A hash collision: try the next hash.
		next := d.DeepCopy()
		next.Status.CollisionCount = ptr.To(collisions + 1)
		if _, err := c.cs.Deployments.UpdateStatus(ctx, next); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("replicaset name %s collides; retrying with collision count %d", rs.Name, collisions+1)
	}
	if err != nil {
		return nil, fmt.Errorf("create replicaset for deployment %s: %w", cache.Key(d), err)
	}
	if n := replicasOf(out); n > 0 {
		c.rec.Eventf(d, record.Normal, "ScalingReplicaSet", "Scaled up replica set %s to %d", out.Name, n)
	}
	return out, nil
}

// scale sets a ReplicaSet's replicas and the Deployment's replica annotations on it,
// writing only what changes.
func (c *Controller) scale(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, n int32) (*appsv1.ReplicaSet, error) {
	from := replicasOf(rs)
	next := rs.DeepCopy()
	next.Spec.Replicas = ptr.To(n)
	next.Spec.MinReadySeconds = d.Spec.MinReadySeconds
	if !setReplicaAnnotations(d, next) && n == from && rs.Spec.MinReadySeconds == d.Spec.MinReadySeconds {
		return rs, nil
	}
	out, err := c.cs.ReplicaSets.Update(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("scale replicaset %s to %d: %w", cache.Key(rs), n, err)
	}
	if n == from {
		return out, nil
	}
	dir := "up"
	if n < from {
		dir = "down"
	}
	c.rec.Eventf(d, record.Normal, "ScalingReplicaSet", "Scaled %s replica set %s to %d from %d", dir, rs.Name, n, from)
	return out, nil
}

// setRevision makes rs revision rev, and brings its replica annotations up to date as
// the new ReplicaSet's are.
func (c *Controller) setRevision(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, rev int64) (*appsv1.ReplicaSet, error) {
	next := rs.DeepCopy()
	setReplicaAnnotations(d, next)
	next.Annotations[RevisionAnnotation] = strconv.FormatInt(rev, 10)
	out, err := c.cs.ReplicaSets.Update(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("set revision of replicaset %s: %w", cache.Key(rs), err)
	}
	return out, nil
}

func (c *Controller) setDeploymentRevision(ctx context.Context, d *appsv1.Deployment, rev string) (*appsv1.Deployment, error) {
	next := d.DeepCopy()
	if next.Annotations == nil {
		next.Annotations = map[string]string{}
	}
	next.Annotations[RevisionAnnotation] = rev
	out, err := c.cs.Deployments.Update(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("set revision of deployment %s: %w", cache.Key(d), err)
	}
	return out, nil
}

// cleanup deletes the oldest fully scaled-down ReplicaSets beyond revisionHistoryLimit
// (old is sorted oldest first).
func (c *Controller) cleanup(ctx context.Context, d *appsv1.Deployment, old []*appsv1.ReplicaSet) error {
	limit := int(ptr.Deref(d.Spec.RevisionHistoryLimit, 10))
	var idle []*appsv1.ReplicaSet
	for _, rs := range old {
		if replicasOf(rs) == 0 && rs.Status.Replicas == 0 && rs.DeletionTimestamp == nil {
			idle = append(idle, rs)
		}
	}
	for i := 0; i < len(idle)-limit; i++ {
		rs := idle[i]
		_, err := c.cs.ReplicaSets.Delete(ctx, rs.Namespace, rs.Name, client.DeleteOptions{UID: string(rs.UID)})
		if err != nil && !client.IsNotFound(err) {
			return fmt.Errorf("delete old replicaset %s: %w", cache.Key(rs), err)
		}
	}
	return nil
}

// Status computes a Deployment's status from its ReplicaSets, and when to look again
// for the progress deadline.
func Status(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet, created bool, now time.Time) (appsv1.DeploymentStatus, time.Duration) {
	all := append([]*appsv1.ReplicaSet{}, old...)
	if newRS != nil {
		all = append(all, newRS)
	}
	want := wantReplicas(d)
	st := appsv1.DeploymentStatus{
		ObservedGeneration: d.Generation,
		Replicas:           sum(all, func(rs *appsv1.ReplicaSet) int32 { return rs.Status.Replicas }),
		ReadyReplicas:      sum(all, func(rs *appsv1.ReplicaSet) int32 { return rs.Status.ReadyReplicas }),
		AvailableReplicas:  sum(all, func(rs *appsv1.ReplicaSet) int32 { return rs.Status.AvailableReplicas }),
		CollisionCount:     d.Status.CollisionCount,
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.Status.Replicas
	}
	st.UnavailableReplicas = max(want-st.AvailableReplicas, 0)
	_, unavailable, _ := resolveFenceposts(d)
	prev := map[appsv1.DeploymentConditionType]*appsv1.DeploymentCondition{}
	for i := range d.Status.Conditions {
		prev[d.Status.Conditions[i].Type] = &d.Status.Conditions[i]
	}
	cond := func(typ appsv1.DeploymentConditionType, status corev1.ConditionStatus, reason, msg string, progressed bool) appsv1.DeploymentCondition {
		c := appsv1.DeploymentCondition{Type: typ, Status: status, Reason: reason, Message: msg,
			LastUpdateTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now)}
		if p := prev[typ]; p != nil && p.Status == status {
			c.LastTransitionTime = p.LastTransitionTime
			if p.Reason == reason && p.Message == msg && !progressed {
				c.LastUpdateTime = p.LastUpdateTime
			}
		}
		return c
	}
	if st.AvailableReplicas >= want-unavailable {
		st.Conditions = append(st.Conditions, cond(appsv1.DeploymentAvailable, corev1.ConditionTrue, "MinimumReplicasAvailable", "Deployment has minimum availability.", false))
	} else {
		st.Conditions = append(st.Conditions, cond(appsv1.DeploymentAvailable, corev1.ConditionFalse, "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", false))
	}
	var requeue time.Duration
	rsName := ""
	if newRS != nil {
		rsName = newRS.Name
	}
	complete := newRS != nil && st.UpdatedReplicas == want && replicasOf(newRS) == want && st.Replicas == want && st.AvailableReplicas >= want
	old0 := d.Status
	progressed := st.UpdatedReplicas > old0.UpdatedReplicas || st.AvailableReplicas > old0.AvailableReplicas ||
		st.ReadyReplicas > old0.ReadyReplicas || st.Replicas < old0.Replicas && st.UpdatedReplicas == want
	deadline := time.Duration(ptr.Deref(d.Spec.ProgressDeadlineSeconds, 600)) * time.Second
	progressing := prev[appsv1.DeploymentProgressing]
	switch {
	case d.Spec.Paused:
		st.Conditions = append(st.Conditions, cond(appsv1.DeploymentProgressing, corev1.ConditionUnknown, "DeploymentPaused", "Deployment is paused", false))
	case complete:
		st.Conditions = append(st.Conditions, cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, "NewReplicaSetAvailable", fmt.Sprintf("ReplicaSet %q has successfully progressed.", rsName), false))
	case created:
		st.Conditions = append(st.Conditions, cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, "NewReplicaSetCreated", fmt.Sprintf("Created new replica set %q", rsName), true))
		requeue = deadline
	case progressed || progressing == nil || progressing.Reason == "NewReplicaSetAvailable" || progressing.Reason == "DeploymentPaused":
		st.Conditions = append(st.Conditions, cond(appsv1.DeploymentProgressing, corev1.ConditionTrue, "ReplicaSetUpdated", fmt.Sprintf("ReplicaSet %q is progressing.", rsName), true))
		requeue = deadline
	default:
		// lastUpdateTime is whole seconds (metav1.Time), so the deadline may pass up to a
		// second early, as it does in Kubernetes.
		since := now.Sub(progressing.LastUpdateTime.Time)
		if progressing.Reason == "ProgressDeadlineExceeded" || since >= deadline {
			st.Conditions = append(st.Conditions, cond(appsv1.DeploymentProgressing, corev1.ConditionFalse, "ProgressDeadlineExceeded", fmt.Sprintf("ReplicaSet %q has timed out progressing.", rsName), false))
		} else {
			st.Conditions = append(st.Conditions, *progressing.DeepCopy())
			requeue = deadline - since
		}
	}
	return st, requeue
}
