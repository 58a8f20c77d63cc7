// Package controllerref is how a controller claims the objects it controls (Kubernetes'
// ControllerRefManager): among the objects of the owner's namespace, it keeps those whose
// controller reference names the owner and that match the owner's selector, adopts the
// matching orphans and releases the ones it controls that no longer match. The Deployment
// controller claims ReplicaSets with it, the ReplicaSet, DaemonSet and StatefulSet
// controllers pods and ControllerRevisions, the Job controller pods.
//
// Adoption and release are compare-and-swap updates of the child's ownerReferences on the
// version the caller's cache holds: a child changed or deleted meanwhile is not
// overwritten, and the change that beat the update queues the owner again, so the next
// sync sees it. Claiming is level-triggered and idempotent: run it on every sync.
package controllerref

import (
	"context"
	"errors"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/kinds"
)

// Claimer claims an owner's children of kind T.
type Claimer[T kinds.Object] struct {
	// Update writes a child's new ownerReferences, as a compare-and-swap on the
	// child's resourceVersion (the typed client's Update). Required.
	Update func(ctx context.Context, child T) (T, error)
	// Adoptable, when set, further limits the orphans adopted: besides matching the
	// selector and not being deleted, an orphan must satisfy it (the ReplicaSet
	// controller adopts only active pods).
	Adoptable func(child T) bool
	// FailOnLostRelease makes a release that lost a race (the child changed or went
	// meanwhile) fail the claim, so that the owner syncs again before it acts on its
	// children; otherwise such a release, as such an adoption, is left to the next sync.
	// The ReplicaSet controller sets it: it must not replace a pod whose release did
	// not happen.
	FailOnLostRelease bool
	// Finalizers are added to a child in the update that adopts it and removed in the
	// one that releases it, as Kubernetes' ControllerRefManager does with its finalizers:
	// the Job controller's batch.kubernetes.io/job-tracking, so that an adopted pod is
	// counted when it finishes and a released one is no longer held for the count.
	Finalizers []string
}

// Claim returns the children owner controls among candidates (the objects of its
// namespace), after adopting the orphans that match sel and releasing the children
// that no longer do. An owner being deleted adopts nothing. Adopted children are
// returned as updated (with their new resourceVersion); the others as given. The
// error joins every update that failed, each naming its child.
func (c Claimer[T]) Claim(ctx context.Context, owner kinds.Object, sel labels.Selector, candidates []T) ([]T, error) {
	uid := owner.GetUID()
	var owned []T
	var errs []error
	for _, child := range candidates {
		ref := metav1.GetControllerOfNoCopy(child)
		matches := sel.Matches(labels.Set(child.GetLabels()))
		switch {
		case ref != nil && ref.UID == uid && matches:
			owned = append(owned, child)
		case ref != nil && ref.UID == uid:
			_, err := c.setOwners(ctx, child, uid, nil, c.release)
			if err != nil && (c.FailOnLostRelease || !lostRace(err)) {
				errs = append(errs, err)
			}
		case ref == nil && matches && c.adoptable(owner, child):
			ref := kinds.NewControllerRef(owner)
			out, err := c.setOwners(ctx, child, uid, &ref, c.adopt)
			switch {
			case err == nil:
				owned = append(owned, out)
			case !lostRace(err):
				errs = append(errs, err)
			}
		}
	}
	return owned, errors.Join(errs...)
}

func (c Claimer[T]) adoptable(owner kinds.Object, child T) bool {
	if owner.GetDeletionTimestamp() != nil || child.GetDeletionTimestamp() != nil {
		return false
	}
	return c.Adoptable == nil || c.Adoptable(child)
}

// adopt adds the claimer's finalizers a child lacks; release removes them.
func (c Claimer[T]) adopt(finalizers []string) []string {
	for _, f := range c.Finalizers {
		if !slices.Contains(finalizers, f) {
			finalizers = append(finalizers, f)
		}
	}
	return finalizers
}

func (c Claimer[T]) release(finalizers []string) []string {
	return slices.DeleteFunc(finalizers, func(f string) bool { return slices.Contains(c.Finalizers, f) })
}

// setOwners writes child's ownerReferences without those naming uid, plus add when
// given, and its finalizers as finalize makes them: a release (add nil) or an
// adoption (which replaces any reference the owner already had there, as Kubernetes'
// patch by uid does).
func (c Claimer[T]) setOwners(ctx context.Context, child T, uid types.UID, add *metav1.OwnerReference, finalize func([]string) []string) (T, error) {
	next := child.DeepCopyObject().(T)
	var refs []metav1.OwnerReference
	for _, r := range next.GetOwnerReferences() {
		if r.UID != uid {
			refs = append(refs, r)
		}
	}
	if add != nil {
		refs = append(refs, *add)
	}
	next.SetOwnerReferences(refs)
	if len(c.Finalizers) > 0 {
		next.SetFinalizers(finalize(next.GetFinalizers()))
	}
	out, err := c.Update(ctx, next)
	if err != nil {
		return out, fmt.Errorf("update owners of %s %s: %w", kinds.Of(child).Singular, cache.Key(child), err)
	}
	return out, nil
}

// lostRace says whether an update lost to a change of its child (or its deletion),
// which the next sync sees.
func lostRace(err error) bool { return client.IsConflict(err) || client.IsNotFound(err) }
