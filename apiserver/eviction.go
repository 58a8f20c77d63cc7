package apiserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/protobuf/proto"
	admissionv1 "k8s.io/api/admission/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
)

// Eviction is Kubernetes' pods/eviction subresource (pkg/registry/core/pod/storage/
// eviction.go): a delete that respects the pod's PodDisruptionBudget. Where Kubernetes
// writes the budget's status and then deletes the pod, two writes a crash can separate,
// Skiff commits both in one transaction, compare-and-swapped on what it read: either the
// budget gave up a disruption and the pod is going, or neither happened.

// Evict implements apiv1.PodsServer.
func (p *pods) Evict(ctx context.Context, req *apiv1.EvictRequest) (*apiv1.Object, error) {
	return p.resources.evict(ctx, req)
}

const (
	// evictionRetries bounds the attempts of an eviction that lost a race on the pod or
	// its budget (Kubernetes' EvictionsRetry has 20 steps).
	evictionRetries = 20
	// maxDisruptedPods is Kubernetes' MaxDisruptedPodSize: a budget listing more
	// evictions its controller has not yet seen takes no more.
	maxDisruptedPods = 2000
	// causeDisruptionBudget keys the ErrorInfo metadata saying which budget refused an
	// eviction, and why (Kubernetes' StatusCause of type DisruptionBudget).
	causeDisruptionBudget = string(policyv1.DisruptionBudgetCause)
)

// errEvictionRace is an eviction's write that lost a compare-and-swap: read again.
var errEvictionRace = errors.New("eviction raced a change")

func (r *resources) evict(ctx context.Context, req *apiv1.EvictRequest) (*apiv1.Object, error) {
	info := kinds.MustLookup(kinds.Pod)
	if req.GetName() == "" {
		return nil, badRequest("name is required")
	}
	if req.GracePeriodSeconds != nil && req.GetGracePeriodSeconds() < 0 {
		return nil, badRequest("gracePeriodSeconds: Invalid value: %d: must be >= 0", req.GetGracePeriodSeconds())
	}
	k := store.Key{Kind: kinds.Pod, Namespace: namespaceFor(info, req.GetNamespace()), Name: req.GetName()}
	req, err := r.admitEviction(ctx, info, k, req)
	if err != nil {
		return nil, err
	}
	wantRV, err := parseRV(info, k.Name, req.GetPreconditions().GetResourceVersion())
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		out, err := r.evictOnce(ctx, info, k, wantRV, req)
		if errors.Is(err, errEvictionRace) {
			if wantRV == 0 && attempt < evictionRetries {
				continue // without a caller's precondition, a lost race is retried on the new state
			}
			return nil, conflict(info, k.Name, 0, "the object has been modified; please apply your changes to the latest version and try again")
		}
		if err != nil {
			return nil, err
		}
		return wrap(info, out)
	}
}

// admitEviction runs the admission of the Eviction req asks for, and returns req with
// the delete options the mutating admission set.
func (r *resources) admitEviction(ctx context.Context, info *kinds.Info, k store.Key, req *apiv1.EvictRequest) (*apiv1.EvictRequest, error) {
	if !r.admitsSubresources(ctx, info) {
		return req, nil
	}
	do := &metav1.DeleteOptions{GracePeriodSeconds: req.GracePeriodSeconds}
	if p := req.GetPreconditions(); p != nil {
		do.Preconditions = &metav1.Preconditions{}
		if p.GetResourceVersion() != "" {
			do.Preconditions.ResourceVersion = &p.ResourceVersion
		}
		if p.GetUid() != "" {
			uid := types.UID(p.GetUid())
			do.Preconditions.UID = &uid
		}
	}
	if req.GetDryRun() {
		do.DryRun = []string{metav1.DryRunAll}
	}
	ev := &policyv1.Eviction{ObjectMeta: metav1.ObjectMeta{Name: k.Name, Namespace: k.Namespace}, DeleteOptions: do}
	admitted, err := r.admitSubresource(ctx, info, "eviction", policyv1.SchemeGroupVersion.WithKind("Eviction"), admissionv1.Create,
		ev, nil, req.GetDryRun(), &metav1.CreateOptions{})
	if err != nil || admitted == kinds.Object(ev) {
		return req, err
	}
	// Mutated: the delete options it says.
	out := proto.Clone(req).(*apiv1.EvictRequest)
	out.GracePeriodSeconds, out.Preconditions = nil, nil
	if do := admitted.(*policyv1.Eviction).DeleteOptions; do != nil {
		out.GracePeriodSeconds = do.GracePeriodSeconds
		if p := do.Preconditions; p != nil {
			out.Preconditions = &apiv1.Preconditions{}
			if p.ResourceVersion != nil {
				out.Preconditions.ResourceVersion = *p.ResourceVersion
			}
			if p.UID != nil {
				out.Preconditions.Uid = string(*p.UID)
			}
		}
	}
	return out, nil
}

// evictOnce decides on the pod as it is now and commits the decision, or returns
// errEvictionRace when the pod or its budget changed since they were read.
func (r *resources) evictOnce(ctx context.Context, info *kinds.Info, k store.Key, wantRV int64, req *apiv1.EvictRequest) (kinds.Object, error) {
	cur, rec, err := r.get(ctx, info, k, store.ReadOptions{})
	if err != nil {
		return nil, err
	}
	if err := guard(ctx, cur); err != nil {
		return nil, err
	}
	if uid := req.GetPreconditions().GetUid(); uid != "" && uid != rec.UID {
		return nil, conflict(info, k.Name, 0, fmt.Sprintf("Precondition failed: UID in precondition: %s, UID in object meta: %s", uid, rec.UID))
	}
	if wantRV != 0 && wantRV != rec.ModRevision {
		return nil, conflict(info, k.Name, rec.ModRevision, "the object has been modified; please apply your changes to the latest version and try again")
	}
	pod := cur.(*corev1.Pod)
	next := r.markDeleted(pod, "", req.GracePeriodSeconds).(*corev1.Pod)
	setPodCondition(&next.Status, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
		Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting", LastTransitionTime: metav1.NewTime(r.now())})
	podOp, changed, err := r.writeOp(info, k, rec, next)
	if err != nil {
		return nil, err
	}
	var ops []store.Op
	if changed {
		ops = append(ops, podOp)
	}
	if !evictionIgnoresBudgets(pod) {
		budgetOp, err := r.takeDisruption(ctx, pod)
		if err != nil {
			return nil, err
		}
		if budgetOp != nil {
			ops = append(ops, *budgetOp)
		}
	}
	if req.GetDryRun() || len(ops) == 0 {
		return next, nil
	}
	res, err := r.store.Txn(ctx, ops...)
	if errors.Is(err, store.ErrConflict) || errors.Is(err, store.ErrNotFound) {
		return nil, errEvictionRace
	}
	if err != nil {
		return nil, storeError(info, k.Name, err)
	}
	next.SetResourceVersion(strconv.FormatInt(res.Revision, 10))
	return next, nil
}

// evictionIgnoresBudgets is Kubernetes' canIgnorePDB: a pod that is finished, pending
// or already being deleted disrupts nothing more by going.
func evictionIgnoresBudgets(pod *corev1.Pod) bool {
	switch pod.Status.Phase {
	case corev1.PodSucceeded, corev1.PodFailed, corev1.PodPending:
		return true
	}
	return pod.DeletionTimestamp != nil
}

// takeDisruption finds the budget that selects pod and, if it allows a disruption,
// returns the write that takes one (nil when no budget selects the pod, or when the pod
// is unready and the budget does not count it). It refuses as Kubernetes does.
func (r *resources) takeDisruption(ctx context.Context, pod *corev1.Pod) (*store.Op, error) {
	info := kinds.MustLookup(kinds.PodDisruptionBudget)
	stored, _, err := r.store.List(ctx, info.Kind, store.ListOptions{Namespace: pod.Namespace})
	if err != nil {
		return nil, storeError(info, "", err)
	}
	var pdb *policyv1.PodDisruptionBudget
	var rec *store.Object
	for i := range stored {
		obj, err := decode(info, &stored[i])
		if err != nil {
			return nil, storeError(info, stored[i].Name, err)
		}
		b := obj.(*policyv1.PodDisruptionBudget)
		sel, err := metav1.LabelSelectorAsSelector(b.Spec.Selector)
		// A budget without a selector, or an empty one, guards nothing here (Kubernetes'
		// eviction: "it should match nothing, not everything").
		if err != nil || sel.Empty() || !sel.Matches(labels.Set(pod.Labels)) {
			continue
		}
		if pdb != nil {
			return nil, statusError(codes.Internal, "InternalError", nil, "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support.")
		}
		pdb, rec = b, &stored[i]
	}
	if pdb == nil {
		return nil, nil
	}
	if !podReady(pod) {
		// An unready pod counts toward neither currentHealthy nor desiredHealthy: it may
		// go without taking a disruption when the budget says so, or is met anyway.
		always := pdb.Spec.UnhealthyPodEvictionPolicy != nil && *pdb.Spec.UnhealthyPodEvictionPolicy == policyv1.AlwaysAllow
		if always || pdb.Status.CurrentHealthy >= pdb.Status.DesiredHealthy && pdb.Status.DesiredHealthy > 0 {
			// The pod's own compare-and-swap makes sure it did not turn ready since.
			return nil, nil
		}
	}
	st := &pdb.Status
	switch {
	case st.ObservedGeneration < pdb.Generation:
		return nil, tooManyRequests(pdb, fmt.Sprintf("The disruption budget %s is still being processed by the server.", pdb.Name))
	case st.DisruptionsAllowed < 0:
		return nil, forbidden(info, pdb.Name, "pdb disruptions allowed is negative")
	case len(st.DisruptedPods) > maxDisruptedPods:
		return nil, forbidden(info, pdb.Name, "DisruptedPods map too big - too many evictions not confirmed by PDB controller")
	case st.DisruptionsAllowed == 0:
		return nil, tooManyRequests(pdb, fmt.Sprintf("The disruption budget %s needs %d healthy pods and has %d currently", pdb.Name, st.DesiredHealthy, st.CurrentHealthy))
	}
	// Take one, and tell the disruption controller that pod is going, so that it stops
	// counting it before it is gone.
	st.DisruptionsAllowed--
	if st.DisruptionsAllowed == 0 {
		setDisruptionAllowedCondition(pdb, r.now())
	}
	if st.DisruptedPods == nil {
		st.DisruptedPods = map[string]metav1.Time{}
	}
	st.DisruptedPods[pod.Name] = metav1.NewTime(r.now())
	op, _, err := r.writeOp(info, store.Key{Kind: info.Kind, Namespace: pdb.Namespace, Name: pdb.Name}, rec, pdb)
	if err != nil {
		return nil, err
	}
	return &op, nil
}

// tooManyRequests is Kubernetes' refusal of an eviction its budget does not allow now:
// 429, a gRPC ResourceExhausted, whose ErrorInfo says which budget and why.
func tooManyRequests(pdb *policyv1.PodDisruptionBudget, cause string) error {
	e := statusError(codes.ResourceExhausted, ReasonTooManyRequests, map[string]string{causeDisruptionBudget: cause, "name": pdb.Name},
		"Cannot evict pod as it would violate the pod's disruption budget.")
	e.status.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: policyv1.DisruptionBudgetCause, Message: cause}}}
	return e
}

// setDisruptionAllowedCondition sets a budget's DisruptionAllowed condition from its
// status.disruptionsAllowed, as Kubernetes' UpdateDisruptionAllowedCondition (the
// disruption controller keeps it too).
func setDisruptionAllowedCondition(pdb *policyv1.PodDisruptionBudget, now time.Time) {
	c := metav1.Condition{Type: policyv1.DisruptionAllowedCondition, Status: metav1.ConditionFalse,
		Reason: policyv1.InsufficientPodsReason, ObservedGeneration: pdb.Status.ObservedGeneration, LastTransitionTime: metav1.NewTime(now)}
	if pdb.Status.DisruptionsAllowed > 0 {
		c.Status, c.Reason = metav1.ConditionTrue, policyv1.SufficientPodsReason
	}
	apimeta.SetStatusCondition(&pdb.Status.Conditions, c)
}

// podReady is whether the pod's Ready condition is True (Kubernetes' IsPodReady).
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
