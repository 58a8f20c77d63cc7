// Package deployment is the Deployment controller: for each Deployment it keeps one
// ReplicaSet per pod template, named <deployment>-<pod-template-hash>, and moves replicas
// from the old ReplicaSets to the new one by RollingUpdate (within maxSurge and
// maxUnavailable) or Recreate. It numbers revisions, keeps revisionHistoryLimit old
// ReplicaSets, honours paused, and writes the Deployment's status with the Available and
// Progressing conditions (ProgressDeadlineExceeded when a rollout stalls).
//
// Not (yet) done as Kubernetes does: proportional scaling of several active ReplicaSets
// when a Deployment is resized in the middle of a rollout (Skiff resizes the new one and
// lets the rollout step settle the rest).
package deployment

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/controllers/internal/controllerref"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
	"github.com/skiffhq/skiff/proto/labels"
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
	cfg   Config
	cs    *client.Clientset
	dInf  *cache.Informer[*corev1.Deployment]
	ds    *cache.Lister[*corev1.Deployment]
	rss   *cache.Lister[*corev1.ReplicaSet]
	queue *workqueue.Queue
	rec   *record.Recorder
	log   hclog.Logger
	// claimer adopts and releases ReplicaSets.
	claimer controllerref.Claimer[*corev1.ReplicaSet]
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dInf := cache.InformerFor[*corev1.Deployment](f, "", client.ListOptions{})
	rsInf := cache.InformerFor[*corev1.ReplicaSet](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, dInf: dInf, ds: dInf.Lister(), rss: rsInf.Lister(),
		queue: workqueue.New(workqueue.Config{}), rec: rec, log: cfg.Logger.Named("deployment"),
		claimer: controllerref.Claimer[*corev1.ReplicaSet]{Update: cs.ReplicaSets.Update}}
	enqueue := func(d *corev1.Deployment) { c.queue.Add(cache.Key(d)) }
	dInf.AddHandler(cache.Handler[*corev1.Deployment]{OnAdd: enqueue, OnUpdate: func(_, d *corev1.Deployment) { enqueue(d) }, OnDelete: enqueue})
	rsInf.AddHandler(cache.Handler[*corev1.ReplicaSet]{
		OnAdd:    c.rsChanged,
		OnUpdate: func(old, rs *corev1.ReplicaSet) { c.rsChanged(old); c.rsChanged(rs) },
		OnDelete: c.rsChanged,
	})
	return c, nil
}

func (c *Controller) rsChanged(rs *corev1.ReplicaSet) {
	ns := rs.GetMetadata().GetNamespace()
	if ref := kinds.ControllerOf(rs); ref != nil {
		if ref.GetKind() == kinds.Deployment {
			c.queue.Add(ns + "/" + ref.GetName())
		}
		return
	}
	for _, d := range c.ds.ListNamespace(ns, labels.Everything()) {
		sel, err := labels.FromLabelSelector(d.GetSpec().GetSelector(), "spec.selector")
		if err == nil && !sel.Empty() && sel.Matches(rs.GetMetadata().GetLabels()) {
			c.queue.Add(cache.Key(d))
		}
	}
}

// Run reconciles until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.dInf) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Reconcile syncs one Deployment by key.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	d, ok := c.ds.Get(ns, name)
	if !ok || d.GetMetadata().GetDeletionTimestamp() != nil {
		return 0, nil
	}
	d = proto.Clone(d).(*corev1.Deployment)
	sel, err := labels.FromLabelSelector(d.GetSpec().GetSelector(), "spec.selector")
	if err != nil || sel.Empty() {
		return 0, nil
	}
	rss, err := c.claimer.Claim(ctx, d, sel, c.rss.ListNamespace(ns, labels.Everything()))
	if err != nil {
		return 0, err
	}
	var newRS *corev1.ReplicaSet
	var old []*corev1.ReplicaSet
	maxRev := int64(0)
	for _, rs := range rss {
		if newRS == nil && templateEqual(rs.GetSpec().GetTemplate(), d.GetSpec().GetTemplate()) {
			newRS = rs
			continue
		}
		old = append(old, rs)
		maxRev = max(maxRev, revisionOf(rs))
	}
	sortOldestFirst(old)
	created := false
	if d.GetSpec().GetPaused() {
		if newRS != nil && sum(old, replicasOf) == 0 && replicasOf(newRS) != d.GetSpec().GetReplicas() {
			if newRS, err = c.scale(ctx, d, newRS, d.GetSpec().GetReplicas()); err != nil {
				return 0, err
			}
		}
	} else {
		if newRS == nil {
			if newRS, err = c.createNewRS(ctx, d, old, maxRev); err != nil {
				return 0, err
			}
			created = true
		} else if revisionOf(newRS) <= maxRev {
			// A rollback to an old template: it becomes the newest revision.
			if newRS, err = c.setRevision(ctx, newRS, maxRev+1); err != nil {
				return 0, err
			}
		}
		var steps []Scale
		if d.GetSpec().GetStrategy().GetType() == "Recreate" {
			steps = RecreateStep(d, newRS, old)
		} else if steps, err = RollingStep(d, newRS, old); err != nil {
			return 0, err
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
		if err := c.cleanup(ctx, d, old); err != nil {
			return 0, err
		}
	}
	if newRS != nil && d.GetMetadata().GetAnnotations()[RevisionAnnotation] != newRS.GetMetadata().GetAnnotations()[RevisionAnnotation] {
		if d, err = c.setDeploymentRevision(ctx, d, newRS.GetMetadata().GetAnnotations()[RevisionAnnotation]); err != nil {
			return 0, err
		}
	}
	st, requeue := Status(d, newRS, old, created, c.cfg.Now())
	if !proto.Equal(st, d.GetStatus()) { // conditions keep their times when nothing changed
		next := proto.Clone(d).(*corev1.Deployment)
		next.Status = st
		if _, err := c.cs.Deployments.UpdateStatus(ctx, next); err != nil && !client.IsNotFound(err) {
			return 0, fmt.Errorf("update status of deployment %s: %w", key, err)
		}
	}
	return requeue, nil
}

func (c *Controller) createNewRS(ctx context.Context, d *corev1.Deployment, old []*corev1.ReplicaSet, maxRev int64) (*corev1.ReplicaSet, error) {
	collisions := d.GetStatus().GetCollisionCount()
	hash := TemplateHash(d.GetSpec().GetTemplate(), collisions)
	tmpl := proto.Clone(d.GetSpec().GetTemplate()).(*corev1.PodTemplateSpec)
	if tmpl.Metadata == nil {
		tmpl.Metadata = &corev1.ObjectMeta{}
	}
	if tmpl.Metadata.Labels == nil {
		tmpl.Metadata.Labels = map[string]string{}
	}
	tmpl.Metadata.Labels[PodTemplateHashLabel] = hash
	sel := proto.Clone(d.GetSpec().GetSelector()).(*corev1.LabelSelector)
	if sel.MatchLabels == nil {
		sel.MatchLabels = map[string]string{}
	}
	sel.MatchLabels[PodTemplateHashLabel] = hash
	rsLabels := map[string]string{}
	for k, v := range tmpl.Metadata.Labels {
		rsLabels[k] = v
	}
	rs := &corev1.ReplicaSet{
		Metadata: &corev1.ObjectMeta{
			Name: d.GetMetadata().GetName() + "-" + hash, Namespace: d.GetMetadata().GetNamespace(), Labels: rsLabels,
			Annotations:     map[string]string{RevisionAnnotation: strconv.FormatInt(maxRev+1, 10)},
			OwnerReferences: []*corev1.OwnerReference{kinds.NewControllerRef(d)},
		},
		Spec: &corev1.ReplicaSetSpec{Replicas: proto.Int32(0), MinReadySeconds: d.GetSpec().GetMinReadySeconds(), Selector: sel, Template: tmpl},
	}
	// Its first size is the first step of the rollout.
	var steps []Scale
	if d.GetSpec().GetStrategy().GetType() == "Recreate" {
		steps = RecreateStep(d, rs, old)
	} else {
		var err error
		if steps, err = RollingStep(d, rs, old); err != nil {
			return nil, err
		}
	}
	for _, s := range steps {
		if s.RS == rs {
			rs.Spec.Replicas = proto.Int32(s.Replicas)
		}
	}
	out, err := c.cs.ReplicaSets.Create(ctx, rs)
	if client.IsAlreadyExists(err) {
		existing, gerr := c.cs.ReplicaSets.Get(ctx, rs.GetMetadata().GetNamespace(), rs.GetMetadata().GetName())
		if gerr == nil && templateEqual(existing.GetSpec().GetTemplate(), d.GetSpec().GetTemplate()) {
			return nil, fmt.Errorf("replicaset %s exists but is not yet in the cache", rs.GetMetadata().GetName())
		}
		// A hash collision: try the next hash.
		next := proto.Clone(d).(*corev1.Deployment)
		if next.Status == nil {
			next.Status = &corev1.DeploymentStatus{}
		}
		next.Status.CollisionCount = proto.Int32(collisions + 1)
		if _, err := c.cs.Deployments.UpdateStatus(ctx, next); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("replicaset name %s collides; retrying with collision count %d", rs.GetMetadata().GetName(), collisions+1)
	}
	if err != nil {
		return nil, fmt.Errorf("create replicaset for deployment %s: %w", cache.Key(d), err)
	}
	if n := replicasOf(out); n > 0 {
		c.rec.Eventf(d, record.Normal, "ScalingReplicaSet", "Scaled up replica set %s to %d", out.GetMetadata().GetName(), n)
	}
	return out, nil
}

func (c *Controller) scale(ctx context.Context, d *corev1.Deployment, rs *corev1.ReplicaSet, n int32) (*corev1.ReplicaSet, error) {
	from := replicasOf(rs)
	next := proto.Clone(rs).(*corev1.ReplicaSet)
	next.Spec.Replicas = proto.Int32(n)
	next.Spec.MinReadySeconds = d.GetSpec().GetMinReadySeconds()
	out, err := c.cs.ReplicaSets.Update(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("scale replicaset %s to %d: %w", cache.Key(rs), n, err)
	}
	dir := "up"
	if n < from {
		dir = "down"
	}
	c.rec.Eventf(d, record.Normal, "ScalingReplicaSet", "Scaled %s replica set %s to %d from %d", dir, rs.GetMetadata().GetName(), n, from)
	return out, nil
}

func (c *Controller) setRevision(ctx context.Context, rs *corev1.ReplicaSet, rev int64) (*corev1.ReplicaSet, error) {
	next := proto.Clone(rs).(*corev1.ReplicaSet)
	if next.Metadata.Annotations == nil {
		next.Metadata.Annotations = map[string]string{}
	}
	next.Metadata.Annotations[RevisionAnnotation] = strconv.FormatInt(rev, 10)
	out, err := c.cs.ReplicaSets.Update(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("set revision of replicaset %s: %w", cache.Key(rs), err)
	}
	return out, nil
}

func (c *Controller) setDeploymentRevision(ctx context.Context, d *corev1.Deployment, rev string) (*corev1.Deployment, error) {
	next := proto.Clone(d).(*corev1.Deployment)
	if next.Metadata.Annotations == nil {
		next.Metadata.Annotations = map[string]string{}
	}
	next.Metadata.Annotations[RevisionAnnotation] = rev
	out, err := c.cs.Deployments.Update(ctx, next)
	if err != nil {
		return nil, fmt.Errorf("set revision of deployment %s: %w", cache.Key(d), err)
	}
	return out, nil
}

// cleanup deletes the oldest fully scaled-down ReplicaSets beyond revisionHistoryLimit.
func (c *Controller) cleanup(ctx context.Context, d *corev1.Deployment, old []*corev1.ReplicaSet) error {
	limit := 10
	if d.GetSpec().RevisionHistoryLimit != nil {
		limit = int(d.GetSpec().GetRevisionHistoryLimit())
	}
	var idle []*corev1.ReplicaSet
	for _, rs := range old {
		if replicasOf(rs) == 0 && rs.GetStatus().GetReplicas() == 0 && rs.GetMetadata().GetDeletionTimestamp() == nil {
			idle = append(idle, rs)
		}
	}
	for i := 0; i < len(idle)-limit; i++ {
		rs := idle[i]
		_, err := c.cs.ReplicaSets.Delete(ctx, rs.GetMetadata().GetNamespace(), rs.GetMetadata().GetName(), client.DeleteOptions{UID: rs.GetMetadata().GetUid()})
		if err != nil && !client.IsNotFound(err) {
			return fmt.Errorf("delete old replicaset %s: %w", cache.Key(rs), err)
		}
	}
	return nil
}

// Status computes a Deployment's status from its ReplicaSets, and when to look again
// for the progress deadline.
func Status(d *corev1.Deployment, newRS *corev1.ReplicaSet, old []*corev1.ReplicaSet, created bool, now time.Time) (*corev1.DeploymentStatus, time.Duration) {
	all := append([]*corev1.ReplicaSet{}, old...)
	if newRS != nil {
		all = append(all, newRS)
	}
	want := d.GetSpec().GetReplicas()
	st := &corev1.DeploymentStatus{
		ObservedGeneration: d.GetMetadata().GetGeneration(),
		Replicas:           sum(all, func(rs *corev1.ReplicaSet) int32 { return rs.GetStatus().GetReplicas() }),
		ReadyReplicas:      sum(all, func(rs *corev1.ReplicaSet) int32 { return rs.GetStatus().GetReadyReplicas() }),
		AvailableReplicas:  sum(all, func(rs *corev1.ReplicaSet) int32 { return rs.GetStatus().GetAvailableReplicas() }),
	}
	if d.GetStatus() != nil {
		st.CollisionCount = d.GetStatus().CollisionCount
	}
	if newRS != nil {
		st.UpdatedReplicas = newRS.GetStatus().GetReplicas()
	}
	st.UnavailableReplicas = max(want-st.AvailableReplicas, 0)
	_, unavailable, _ := resolveFenceposts(d)
	prev := map[string]*corev1.DeploymentCondition{}
	for _, c := range d.GetStatus().GetConditions() {
		prev[c.GetType()] = c
	}
	cond := func(typ, status, reason, msg string, progressed bool) *corev1.DeploymentCondition {
		c := &corev1.DeploymentCondition{Type: typ, Status: status, Reason: reason, Message: msg,
			LastUpdateTime: timestamppb.New(now), LastTransitionTime: timestamppb.New(now)}
		if p := prev[typ]; p != nil && p.GetStatus() == status {
			c.LastTransitionTime = p.GetLastTransitionTime()
			if p.GetReason() == reason && p.GetMessage() == msg && !progressed {
				c.LastUpdateTime = p.GetLastUpdateTime()
			}
		}
		return c
	}
	if st.AvailableReplicas >= want-unavailable {
		st.Conditions = append(st.Conditions, cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.", false))
	} else {
		st.Conditions = append(st.Conditions, cond("Available", "False", "MinimumReplicasUnavailable", "Deployment does not have minimum availability.", false))
	}
	var requeue time.Duration
	rsName := ""
	if newRS != nil {
		rsName = newRS.GetMetadata().GetName()
	}
	complete := newRS != nil && st.UpdatedReplicas == want && replicasOf(newRS) == want && st.Replicas == want && st.AvailableReplicas >= want
	old0 := d.GetStatus()
	progressed := st.UpdatedReplicas > old0.GetUpdatedReplicas() || st.AvailableReplicas > old0.GetAvailableReplicas() ||
		st.ReadyReplicas > old0.GetReadyReplicas() || st.Replicas < old0.GetReplicas() && st.UpdatedReplicas == want
	deadline := time.Duration(600) * time.Second
	if d.GetSpec().ProgressDeadlineSeconds != nil {
		deadline = time.Duration(d.GetSpec().GetProgressDeadlineSeconds()) * time.Second
	}
	switch {
	case d.GetSpec().GetPaused():
		st.Conditions = append(st.Conditions, cond("Progressing", "Unknown", "DeploymentPaused", "Deployment is paused", false))
	case complete:
		st.Conditions = append(st.Conditions, cond("Progressing", "True", "NewReplicaSetAvailable", fmt.Sprintf("ReplicaSet %q has successfully progressed.", rsName), false))
	case created:
		st.Conditions = append(st.Conditions, cond("Progressing", "True", "NewReplicaSetCreated", fmt.Sprintf("Created new replica set %q", rsName), true))
		requeue = deadline
	case progressed || prev["Progressing"] == nil || prev["Progressing"].GetReason() == "NewReplicaSetAvailable" || prev["Progressing"].GetReason() == "DeploymentPaused":
		st.Conditions = append(st.Conditions, cond("Progressing", "True", "ReplicaSetUpdated", fmt.Sprintf("ReplicaSet %q is progressing.", rsName), true))
		requeue = deadline
	default:
		p := prev["Progressing"]
		since := now.Sub(p.GetLastUpdateTime().AsTime())
		if p.GetReason() == "ProgressDeadlineExceeded" || since >= deadline {
			st.Conditions = append(st.Conditions, cond("Progressing", "False", "ProgressDeadlineExceeded", fmt.Sprintf("ReplicaSet %q has timed out progressing.", rsName), false))
		} else {
			st.Conditions = append(st.Conditions, proto.Clone(p).(*corev1.DeploymentCondition))
			requeue = deadline - since
		}
	}
	return st, requeue
}
