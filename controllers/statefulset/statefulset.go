// Package statefulset is the StatefulSet controller: pods with stable names (web-0,
// web-1...), each with its own PersistentVolumeClaims made from the set's
// volumeClaimTemplates and kept across the pod's restarts and rescheduling. With
// podManagementPolicy OrderedReady pods are made in order, each Running and Ready before
// the next, and removed in reverse; with Parallel all at once. Template changes roll out
// by RollingUpdate (from the highest ordinal down to the partition, maxUnavailable at a
// time) or, with OnDelete, as pods are deleted; revisions are kept in
// ControllerRevisions. The claims' owners follow the
// persistentVolumeClaimRetentionPolicy, so that the garbage collector deletes them with
// the set or with a pod scaled away when the policy says Delete.
package statefulset

import (
	"context"
	"errors"
	"fmt"
	"slices"
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
	"github.com/skiffhq/skiff/controllers/internal/history"
	"github.com/skiffhq/skiff/kinds"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers reconcile different StatefulSets concurrently. Default 5 (Kubernetes'
	// concurrent-statefulset-syncs).
	Workers int
	// Logger receives the controller's logs, named "statefulset". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock. Default time.Now.
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
		return fmt.Errorf("statefulset controller config: %w", err)
	}
	return nil
}

// Controller is the StatefulSet controller.
type Controller struct {
	cfg Config
	cs  *client.Clientset
	// synced are the informers it reads: it acts only once all have listed.
	synced     []interface{ HasSynced() bool }
	sets       *cache.Lister[*appsv1.StatefulSet]
	pods       *cache.Lister[*corev1.Pod]
	claims     *cache.Lister[*corev1.PersistentVolumeClaim]
	revs       *cache.Lister[*appsv1.ControllerRevision]
	queue      *workqueue.Queue
	rec        *record.Recorder
	log        hclog.Logger
	history    history.History
	podClaimer controllerref.Claimer[*corev1.Pod]
	revClaimer controllerref.Claimer[*appsv1.ControllerRevision]
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	setInf := cache.InformerFor[*appsv1.StatefulSet](f, "", client.ListOptions{})
	podInf := cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{})
	claimInf := cache.InformerFor[*corev1.PersistentVolumeClaim](f, "", client.ListOptions{})
	revInf := cache.InformerFor[*appsv1.ControllerRevision](f, "", client.ListOptions{})
	c := &Controller{
		cfg: cfg, cs: cs, synced: []interface{ HasSynced() bool }{setInf, podInf, claimInf, revInf}, sets: setInf.Lister(), pods: podInf.Lister(), claims: claimInf.Lister(), revs: revInf.Lister(),
		queue: workqueue.New(workqueue.Config{}), rec: rec, log: cfg.Logger.Named("statefulset"),
		history: history.History{Revisions: cs.ControllerRevisions},
		// A pod is adopted only if its name makes it a member (Kubernetes' isMemberOf).
		podClaimer: controllerref.Claimer[*corev1.Pod]{Update: cs.Pods.Update},
		revClaimer: controllerref.Claimer[*appsv1.ControllerRevision]{Update: cs.ControllerRevisions.Update},
	}
	enqueue := func(s *appsv1.StatefulSet) { c.queue.Add(cache.Key(s)) }
	setInf.AddHandler(cache.Handler[*appsv1.StatefulSet]{OnAdd: enqueue, OnUpdate: func(_, s *appsv1.StatefulSet) { enqueue(s) }, OnDelete: enqueue})
	podChanged := func(p *corev1.Pod) {
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
			if ref.Kind == kinds.StatefulSet {
				c.queue.Add(p.Namespace + "/" + ref.Name)
			}
			return
		}
		for _, s := range c.sets.ListNamespace(p.Namespace, labels.Everything()) {
			if sel, err := metav1.LabelSelectorAsSelector(s.Spec.Selector); err == nil && !sel.Empty() && sel.Matches(labels.Set(p.Labels)) {
				enqueue(s)
			}
		}
	}
	podInf.AddHandler(cache.Handler[*corev1.Pod]{OnAdd: podChanged, OnUpdate: func(old, p *corev1.Pod) {
		if ref := metav1.GetControllerOfNoCopy(old); ref != nil && ref.Kind == kinds.StatefulSet {
			c.queue.Add(old.Namespace + "/" + ref.Name)
		}
		podChanged(p)
	}, OnDelete: podChanged})
	revChanged := func(r *appsv1.ControllerRevision) {
		if ref := metav1.GetControllerOfNoCopy(r); ref != nil && ref.Kind == kinds.StatefulSet {
			c.queue.Add(r.Namespace + "/" + ref.Name)
		}
	}
	revInf.AddHandler(cache.Handler[*appsv1.ControllerRevision]{OnAdd: revChanged, OnUpdate: func(_, r *appsv1.ControllerRevision) { revChanged(r) },
		OnDelete: revChanged})
	return c, nil
}

// Run reconciles until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Reconcile syncs one StatefulSet by key.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	set, ok := c.sets.Get(ns, name)
	if !ok || set.DeletionTimestamp != nil {
		return 0, nil // the garbage collector deletes its pods (and claims, by policy)
	}
	sel, err := metav1.LabelSelectorAsSelector(set.Spec.Selector)
	if err != nil || sel.Empty() {
		return 0, nil
	}
	var candidates []*corev1.Pod
	for _, p := range c.pods.ListNamespace(ns, labels.Everything()) {
		if IsMember(set, p) || metav1.IsControlledBy(p, set) {
			candidates = append(candidates, p)
		}
	}
	pods, err := c.podClaimer.Claim(ctx, set, sel, candidates)
	if err != nil {
		return 0, err
	}
	revs, err := c.revClaimer.Claim(ctx, set, sel, c.revs.ListNamespace(ns, labels.Everything()))
	if err != nil {
		return 0, err
	}
	history.Sort(revs)
	r, collisions, err := c.revisions(ctx, set, revs)
	if err != nil {
		return 0, err
	}
	now := c.cfg.Now()
	var errs []error
	if err := c.updateClaimOwners(ctx, set, pods); err != nil {
		errs = append(errs, err)
	}
	step := Plan(set, pods, r, now)
	errs = append(errs, c.apply(ctx, set, step)...)
	if err := c.cleanupHistory(ctx, set, revs, pods, r); err != nil {
		errs = append(errs, err)
	}
	st := Status(set, pods, r, collisions, now)
	if !equality.Semantic.DeepEqual(st, set.Status) {
		next := set.DeepCopy()
		next.Status = st
		if _, err := c.cs.StatefulSets.UpdateStatus(ctx, next); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("update status of statefulset %s: %w", key, err))
		}
	}
	var requeue time.Duration
	if set.Spec.MinReadySeconds > 0 && st.AvailableReplicas < st.ReadyReplicas {
		requeue = time.Duration(set.Spec.MinReadySeconds) * time.Second
	}
	return requeue, errors.Join(errs...)
}

// revisions finds (or makes) the update revision, the current template now, and the
// current one: status.currentRevision when it is still there, else the update one.
func (c *Controller) revisions(ctx context.Context, set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision) (Revisions, *int32, error) {
	data, err := history.TemplatePatch(&set.Spec.Template)
	if err != nil {
		return Revisions{}, nil, fmt.Errorf("statefulset %s: %w", cache.Key(set), err)
	}
	collisions := int32(0)
	if set.Status.CollisionCount != nil {
		collisions = *set.Status.CollisionCount
	}
	before := collisions
	upd, err := c.history.Current(ctx, set, set.Spec.Template.Labels, data, revs, &collisions)
	var cp *int32
	if collisions != 0 || set.Status.CollisionCount != nil {
		cp = &collisions
	}
	if collisions != before {
		next := set.DeepCopy()
		next.Status.CollisionCount = cp
		if _, uerr := c.cs.StatefulSets.UpdateStatus(ctx, next); uerr != nil {
			return Revisions{}, nil, errors.Join(err, uerr)
		}
	}
	if err != nil {
		return Revisions{}, nil, err
	}
	r := Revisions{Update: upd.Name, UpdateTmpl: &set.Spec.Template, Current: upd.Name, CurrentTmpl: &set.Spec.Template}
	for _, rev := range revs {
		if rev.Name == set.Status.CurrentRevision && rev.Name != upd.Name {
			tmpl, err := history.Template(rev)
			if err != nil {
				return Revisions{}, nil, err
			}
			r.Current, r.CurrentTmpl = rev.Name, tmpl
		}
	}
	return r, cp, nil
}

// apply makes the claims and pods of step and deletes its pods.
func (c *Controller) apply(ctx context.Context, set *appsv1.StatefulSet, step Step) []error {
	var errs []error
	for _, p := range step.Create {
		if err := c.createClaims(ctx, set, Ordinal(p)); err != nil {
			errs = append(errs, err)
			continue
		}
		if _, err := c.cs.Pods.Create(ctx, p); err != nil {
			if client.IsAlreadyExists(err) {
				continue // not in the cache yet
			}
			c.rec.Eventf(set, record.Warning, "FailedCreate", "create Pod %s in StatefulSet %s failed error: %v", p.Name, set.Name, err)
			errs = append(errs, fmt.Errorf("create pod %s: %w", p.Name, err))
			continue
		}
		c.rec.Eventf(set, record.Normal, "SuccessfulCreate", "create Pod %s in StatefulSet %s successful", p.Name, set.Name)
	}
	for _, p := range step.Delete {
		_, err := c.cs.Pods.Delete(ctx, p.Namespace, p.Name, client.DeleteOptions{UID: string(p.UID)})
		if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
			c.rec.Eventf(set, record.Warning, "FailedDelete", "delete Pod %s in StatefulSet %s failed error: %v", p.Name, set.Name, err)
			errs = append(errs, fmt.Errorf("delete pod %s: %w", p.Name, err))
			continue
		}
		if err == nil {
			c.rec.Eventf(set, record.Normal, "SuccessfulDelete", "delete Pod %s in StatefulSet %s successful", p.Name, set.Name)
		}
	}
	return errs
}

// createClaims makes the claims of ordinal that do not exist yet. A claim being deleted
// holds the pod back: it would start on a claim about to go.
func (c *Controller) createClaims(ctx context.Context, set *appsv1.StatefulSet, ordinal int) error {
	for _, claim := range Claims(set, ordinal) {
		if have, ok := c.claims.Get(claim.Namespace, claim.Name); ok {
			if have.DeletionTimestamp != nil {
				return fmt.Errorf("claim %s of pod %s is being deleted", claim.Name, PodName(set, ordinal))
			}
			continue
		}
		claim.OwnerReferences = ClaimOwners(set, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: PodName(set, ordinal)}}, claim)
		_, err := c.cs.PersistentVolumeClaims.Create(ctx, claim)
		switch {
		case err == nil:
			c.rec.Eventf(set, record.Normal, "SuccessfulCreate", "create Claim %s Pod %s in StatefulSet %s success", claim.Name,
				PodName(set, ordinal), set.Name)
		case client.IsAlreadyExists(err):
		default:
			c.rec.Eventf(set, record.Warning, "FailedCreate", "create Claim %s for Pod %s in StatefulSet %s failed error: %v",
				claim.Name, PodName(set, ordinal), set.Name, err)
			return fmt.Errorf("create claim %s: %w", claim.Name, err)
		}
	}
	return nil
}

// updateClaimOwners sets the owners of each pod's claims as the retention policy says.
func (c *Controller) updateClaimOwners(ctx context.Context, set *appsv1.StatefulSet, pods []*corev1.Pod) error {
	var errs []error
	for _, p := range pods {
		o := Ordinal(p)
		if o < 0 || p.DeletionTimestamp != nil {
			continue
		}
		for _, want := range Claims(set, o) {
			have, ok := c.claims.Get(want.Namespace, want.Name)
			if !ok || have.DeletionTimestamp != nil {
				continue
			}
			owners := ClaimOwners(set, p, have)
			if equality.Semantic.DeepEqual(owners, have.OwnerReferences) || (len(owners) == 0 && len(have.OwnerReferences) == 0) {
				continue
			}
			next := have.DeepCopy()
			next.OwnerReferences = owners
			if _, err := c.cs.PersistentVolumeClaims.Update(ctx, next); err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
				errs = append(errs, fmt.Errorf("update owners of claim %s: %w", have.Name, err))
			}
		}
	}
	return errors.Join(errs...)
}

// cleanupHistory deletes the oldest revisions beyond revisionHistoryLimit that are
// neither current, the update one, nor any live pod's.
func (c *Controller) cleanupHistory(ctx context.Context, set *appsv1.StatefulSet, revs []*appsv1.ControllerRevision, pods []*corev1.Pod, r Revisions) error {
	limit := 10
	if set.Spec.RevisionHistoryLimit != nil {
		limit = int(*set.Spec.RevisionHistoryLimit)
	}
	live := []string{r.Current, r.Update}
	for _, p := range pods {
		live = append(live, p.Labels[RevisionLabel])
	}
	var old []*appsv1.ControllerRevision
	for _, rev := range revs {
		if !slices.Contains(live, rev.Name) && rev.DeletionTimestamp == nil {
			old = append(old, rev)
		}
	}
	for i := 0; i < len(old)-limit; i++ {
		if _, err := c.cs.ControllerRevisions.Delete(ctx, old[i].Namespace, old[i].Name, client.DeleteOptions{UID: string(old[i].UID)}); err != nil &&
			!client.IsNotFound(err) {
			return fmt.Errorf("delete revision %s: %w", cache.Key(old[i]), err)
		}
	}
	return nil
}
