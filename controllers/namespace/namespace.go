// Package namespace is the namespace controller, as Kubernetes' (its namespaced
// resources deleter): a namespace being deleted (Terminating) is emptied — its pods
// first, and once they are gone every object of every other namespaced kind Skiff serves
// (kinds.All, so a kind added later is covered), in the background, pods with their
// grace period and objects with finalizers when those are done — and then loses its
// "kubernetes" finalizer (spec.finalizers), which lets the API server remove it.
//
// Its status conditions say what holds it, in Kubernetes' words: NamespaceContentRemaining
// ("Some resources are remaining: configmaps. has 1 resource instances"),
// NamespaceFinalizersRemaining (which finalizers hold them), NamespaceDeletionContentFailure
// (what could not be deleted, and why); NamespaceDeletionDiscoveryFailure and
// NamespaceDeletionGVParsingFailure are always False, as the kinds are Skiff's own and known.
//
// While content remains the namespace is looked at again after half the longest grace
// period of its pods (or of a finalizer's 15 s) plus a second, as in Kubernetes, and at
// once when a pod, ReplicaSet, Deployment or PodDisruptionBudget of it goes (the kinds
// the controller-manager caches anyway).
package namespace

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/kinds"
)

// FinalizerKubernetes is the finalizer (spec.finalizers) this controller owns.
const FinalizerKubernetes = corev1.FinalizerKubernetes

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers empty different namespaces concurrently. Default 10 (Kubernetes'
	// --concurrent-namespace-syncs).
	Workers int
	// FinalizerEstimate is how long objects held by finalizers are expected to take
	// (Kubernetes' 15s); the namespace is looked at again after half of it.
	FinalizerEstimate time.Duration
	// Logger receives the controller's logs, named "namespace". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock (conditions' times). Default time.Now.
	Now func() time.Time
}

// DefaultConfig has Kubernetes' values.
func DefaultConfig() Config {
	return Config{Workers: 10, FinalizerEstimate: 15 * time.Second, Logger: hclog.NewNullLogger(), Now: time.Now}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.FinalizerEstimate < time.Second {
		errs = append(errs, fmt.Errorf("finalizerEstimate: %v must be at least 1s", c.FinalizerEstimate))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("now: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("namespace controller config: %w", err)
	}
	return nil
}

// Controller is the namespace controller.
type Controller struct {
	cfg        Config
	cs         *client.Clientset
	nsInf      *cache.Informer[*corev1.Namespace]
	namespaces *cache.Lister[*corev1.Namespace]
	queue      *workqueue.Queue
	log        hclog.Logger
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	nsInf := cache.InformerFor[*corev1.Namespace](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, nsInf: nsInf, namespaces: nsInf.Lister(), queue: workqueue.New(workqueue.Config{}),
		log: cfg.Logger.Named("namespace")}
	terminating := func(ns *corev1.Namespace) {
		if ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}
	nsInf.AddHandler(cache.Handler[*corev1.Namespace]{OnAdd: terminating, OnUpdate: func(_, ns *corev1.Namespace) { terminating(ns) }})
	contentGone(c, cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{}))
	contentGone(c, cache.InformerFor[*appsv1.ReplicaSet](f, "", client.ListOptions{}))
	contentGone(c, cache.InformerFor[*corev1.ReplicationController](f, "", client.ListOptions{}))
	contentGone(c, cache.InformerFor[*appsv1.Deployment](f, "", client.ListOptions{}))
	contentGone(c, cache.InformerFor[*policyv1.PodDisruptionBudget](f, "", client.ListOptions{}))
	contentGone(c, cache.InformerFor[*appsv1.DaemonSet](f, "", client.ListOptions{}))
	contentGone(c, cache.InformerFor[*appsv1.StatefulSet](f, "", client.ListOptions{}))
	contentGone(c, cache.InformerFor[*appsv1.ControllerRevision](f, "", client.ListOptions{}))
	contentGone(c, cache.InformerFor[*batchv1.Job](f, "", client.ListOptions{}))
	contentGone(c, cache.InformerFor[*batchv1.CronJob](f, "", client.ListOptions{}))
	contentGone(c, cache.InformerFor[*corev1.PersistentVolumeClaim](f, "", client.ListOptions{}))
	return c, nil
}

// contentGone looks at a terminating namespace again when an object of it goes: it may
// have been the last.
func contentGone[T kinds.Object](c *Controller, inf *cache.Informer[T]) {
	inf.AddHandler(cache.Handler[T]{OnDelete: func(o T) {
		if ns, ok := c.namespaces.Get("", o.GetNamespace()); ok && ns.DeletionTimestamp != nil {
			c.queue.Add(ns.Name)
		}
	}})
}

// Run empties namespaces until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.nsInf) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Reconcile looks at one namespace by name: if it is being deleted it deletes its
// content and, once there is none, finalizes it. It reads the namespace from the API
// servers, not the cache, as several writers change a terminating namespace.
func (c *Controller) Reconcile(ctx context.Context, name string) (time.Duration, error) {
	ns, err := c.cs.Namespaces.Get(ctx, "", name)
	if client.IsNotFound(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("get namespace %s: %w", name, err)
	}
	if ns.DeletionTimestamp == nil || !slices.Contains(ns.Spec.Finalizers, FinalizerKubernetes) {
		return 0, nil
	}
	if ns.Status.Phase != corev1.NamespaceTerminating {
		ns.Status.Phase = corev1.NamespaceTerminating
		if ns, err = c.cs.Namespaces.UpdateStatus(ctx, ns); err != nil {
			return 0, fmt.Errorf("mark namespace %s terminating: %w", name, err)
		}
	}
	estimate, err := c.deleteContent(ctx, ns)
	if err != nil {
		return 0, err
	}
	if estimate > 0 {
		return estimate/2 + time.Second, nil
	}
	return 0, c.finalize(ctx, ns)
}

// remaining is what is left of one kind in a namespace after a round of deletion.
type remaining struct {
	estimate   time.Duration  // how long it may take to go
	count      int            // objects left
	finalizers map[string]int // objects left per finalizer
}

// deleteContent deletes every namespaced object of ns, kind by kind, records in ns's
// conditions what remains, and returns how long the rest may take to go. Pods go first:
// the other kinds are deleted only once no pod of ns is left, so that a pod still
// running never loses the ConfigMaps, Secrets, ServiceAccounts and PersistentVolumeClaims
// it uses (Kubernetes 1.37's OrderedNamespaceDeletion, on by default there).
func (c *Controller) deleteContent(ctx context.Context, ns *corev1.Namespace) (time.Duration, error) {
	var estimate time.Duration
	var failures []error
	left := map[*kinds.Info]int{}
	finalizers := map[string]int{}
	deleteKind := func(info *kinds.Info) {
		r, err := c.deleteKind(ctx, info, ns.Name)
		if err != nil {
			failures = append(failures, err)
		}
		estimate = max(estimate, r.estimate)
		if r.count > 0 {
			left[info] += r.count
			for f, n := range r.finalizers {
				finalizers[f] += n
			}
		}
	}
	pods := kinds.MustLookup(kinds.Pod)
	deleteKind(pods)
	if left[pods] == 0 {
		for _, info := range append(kinds.All(), kinds.CustomStored()...) {
			if info.Namespaced && info != pods {
				deleteKind(info)
			}
		}
	}
	next := ns.DeepCopy()
	if setConditions(next, conditions(failures, left, finalizers), c.cfg.Now()) {
		if _, err := c.cs.Namespaces.UpdateStatus(ctx, next); err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
			c.log.Warn("cannot update the namespace's conditions", "namespace", ns.Name, "error", err)
		}
	}
	return estimate, errors.Join(failures...)
}

// deleteKind deletes the objects of one kind in namespace ns and says what is left.
// Objects already being deleted are left to finish. It is Kubernetes'
// deleteAllContentForGroupVersionResource.
func (c *Controller) deleteKind(ctx context.Context, info *kinds.Info, ns string) (remaining, error) {
	cl := client.ForKind(c.cs.Conn, info)
	l, err := cl.List(ctx, ns, client.ListOptions{})
	if err != nil {
		return remaining{}, fmt.Errorf("list %s in namespace %s: %w", info.Plural, ns, err)
	}
	var r remaining
	if info.Kind == kinds.Pod {
		r.estimate = gracefulTermination(l.Items)
	}
	for _, o := range l.Items {
		if o.GetDeletionTimestamp() != nil {
			continue
		}
		_, err := cl.Delete(ctx, ns, o.GetName(), client.DeleteOptions{UID: string(o.GetUID()), PropagationPolicy: "Background"})
		if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
			return r, fmt.Errorf("delete %s %s/%s: %w", info.Singular, ns, o.GetName(), err)
		}
	}
	if l, err = cl.List(ctx, ns, client.ListOptions{}); err != nil {
		return r, fmt.Errorf("list %s in namespace %s: %w", info.Plural, ns, err)
	}
	r.count = len(l.Items)
	r.finalizers = map[string]int{}
	for _, o := range l.Items {
		for _, f := range o.GetFinalizers() {
			r.finalizers[f]++
		}
	}
	switch {
	case r.count == 0 || r.estimate > 0:
	case len(r.finalizers) > 0:
		// Held by finalizers: their owners have a while to finish, as in Kubernetes.
		r.estimate = c.cfg.FinalizerEstimate
	default:
		return r, fmt.Errorf("unexpected items still remain in namespace: %s for gvr: %s", ns, info.GroupVersionResource())
	}
	return r, nil
}

// gracefulTermination is how long pods may take to stop: the longest grace period of
// those not finished (Kubernetes' estimateGracefulTerminationForPods).
func gracefulTermination(pods []kinds.Object) time.Duration {
	var longest int64
	for _, o := range pods {
		p := o.(*corev1.Pod)
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue
		}
		if g := p.Spec.TerminationGracePeriodSeconds; g != nil && *g > longest {
			longest = *g
		}
	}
	return time.Duration(longest) * time.Second
}

// finalize removes this controller's finalizer from ns; the API server then removes the
// namespace unless other finalizers remain. The propagation policies' finalizers go too
// (a namespace deleted with --cascade=foreground or orphan): with its content gone, there
// is nothing left for them to wait for or keep.
func (c *Controller) finalize(ctx context.Context, ns *corev1.Namespace) error {
	for {
		next := ns.DeepCopy()
		next.Spec.Finalizers = slices.DeleteFunc(next.Spec.Finalizers, func(f corev1.FinalizerName) bool { return f == FinalizerKubernetes })
		next.Finalizers = slices.DeleteFunc(next.Finalizers, func(f string) bool {
			return f == metav1.FinalizerDeleteDependents || f == metav1.FinalizerOrphanDependents
		})
		_, err := c.cs.Namespaces.Update(ctx, next)
		switch {
		case err == nil || client.IsNotFound(err):
			c.log.Debug("namespace finalized", "namespace", ns.Name)
			return nil
		case !client.IsConflict(err):
			return fmt.Errorf("finalize namespace %s: %w", ns.Name, err)
		}
		if ns, err = c.cs.Namespaces.Get(ctx, "", ns.Name); err != nil {
			if client.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("get namespace %s: %w", ns.Name, err)
		}
		if !slices.Contains(ns.Spec.Finalizers, FinalizerKubernetes) {
			return nil
		}
	}
}

// The conditions this controller keeps, in Kubernetes' order, with the reason and
// message each has when nothing is wrong (Kubernetes' okReasons and okMessages).
var conditionTypes = []corev1.NamespaceConditionType{
	corev1.NamespaceDeletionDiscoveryFailure,
	corev1.NamespaceDeletionGVParsingFailure,
	corev1.NamespaceDeletionContentFailure,
	corev1.NamespaceContentRemaining,
	corev1.NamespaceFinalizersRemaining,
}

var okConditions = map[corev1.NamespaceConditionType]corev1.NamespaceCondition{
	corev1.NamespaceDeletionDiscoveryFailure: {Reason: "ResourcesDiscovered", Message: "All resources successfully discovered"},
	corev1.NamespaceDeletionGVParsingFailure: {Reason: "ParsedGroupVersions", Message: "All legacy kube types successfully parsed"},
	corev1.NamespaceDeletionContentFailure:   {Reason: "ContentDeleted", Message: "All content successfully deleted, may be waiting on finalization"},
	corev1.NamespaceContentRemaining:         {Reason: "ContentRemoved", Message: "All content successfully removed"},
	corev1.NamespaceFinalizersRemaining:      {Reason: "ContentHasNoFinalizers", Message: "All content-preserving finalizers finished"},
}

// conditions are the failing conditions of a round of deletion (the others are ok).
func conditions(failures []error, left map[*kinds.Info]int, finalizers map[string]int) []corev1.NamespaceCondition {
	var out []corev1.NamespaceCondition
	if len(failures) > 0 {
		out = append(out, corev1.NamespaceCondition{Type: corev1.NamespaceDeletionContentFailure, Status: corev1.ConditionTrue,
			Reason: "ContentDeletionFailed", Message: fmt.Sprintf("Failed to delete all resource types, %d remaining: %v", len(failures), utilerrors.NewAggregate(failures))})
	}
	if len(left) > 0 {
		var parts []string
		for info, n := range left {
			parts = append(parts, fmt.Sprintf("%s.%s has %d resource instances", info.Plural, info.Group, n))
		}
		sort.Strings(parts)
		out = append(out, corev1.NamespaceCondition{Type: corev1.NamespaceContentRemaining, Status: corev1.ConditionTrue,
			Reason: "SomeResourcesRemain", Message: "Some resources are remaining: " + strings.Join(parts, ", ")})
	}
	if len(finalizers) > 0 {
		var parts []string
		for f, n := range finalizers {
			parts = append(parts, fmt.Sprintf("%s in %d resource instances", f, n))
		}
		sort.Strings(parts)
		out = append(out, corev1.NamespaceCondition{Type: corev1.NamespaceFinalizersRemaining, Status: corev1.ConditionTrue,
			Reason: "SomeFinalizersRemain", Message: "Some content in the namespace has finalizers remaining: " + strings.Join(parts, ", ")})
	}
	return out
}

// setConditions puts every condition this controller keeps on ns: failing as given,
// else ok. It returns whether anything changed; a condition's time moves only when its
// status does (Kubernetes' updateConditions).
func setConditions(ns *corev1.Namespace, failing []corev1.NamespaceCondition, now time.Time) bool {
	changed := false
	for _, t := range conditionTypes {
		want := okConditions[t]
		want.Type, want.Status = t, corev1.ConditionFalse
		for _, f := range failing {
			if f.Type == t {
				want = f
			}
		}
		i := slices.IndexFunc(ns.Status.Conditions, func(c corev1.NamespaceCondition) bool { return c.Type == t })
		switch {
		case i < 0:
			want.LastTransitionTime = metav1.NewTime(now)
			ns.Status.Conditions = append(ns.Status.Conditions, want)
			changed = true
		case ns.Status.Conditions[i].Status != want.Status || ns.Status.Conditions[i].Reason != want.Reason || ns.Status.Conditions[i].Message != want.Message:
			old := &ns.Status.Conditions[i]
			if old.Status != want.Status {
				old.LastTransitionTime = metav1.NewTime(now)
			}
			old.Status, old.Reason, old.Message = want.Status, want.Reason, want.Message
			changed = true
		}
	}
	return changed
}
