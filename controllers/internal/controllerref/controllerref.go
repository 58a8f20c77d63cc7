// Package controllerref is how a controller claims the objects it controls (Kubernetes'
// ControllerRefManager): among the objects of the owner's namespace, it keeps those whose
// controller reference names the owner and that match the owner's selector, adopts the
// matching orphans and releases the ones it controls that no longer match. The Deployment
// controller claims ReplicaSets with it, the ReplicaSet controller pods.
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

	"google.golang.org/protobuf/proto"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
	"github.com/skiffhq/skiff/proto/labels"
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
}

// Claim returns the children owner controls among candidates (the objects of its
// namespace), after adopting the orphans that match sel and releasing the children
// that no longer do. An owner being deleted adopts nothing. Adopted children are
// returned as updated (with their new resourceVersion); the others as given. The
// error joins every update that failed, each naming its child.
func (c Claimer[T]) Claim(ctx context.Context, owner kinds.Object, sel labels.Selector, candidates []T) ([]T, error) {
	uid := owner.GetMetadata().GetUid()
	var owned []T
	var errs []error
	for _, child := range candidates {
		ref := kinds.ControllerOf(child)
		matches := sel.Matches(child.GetMetadata().GetLabels())
		switch {
		case ref != nil && ref.GetUid() == uid && matches:
			owned = append(owned, child)
		case ref != nil && ref.GetUid() == uid:
			_, err := c.setOwners(ctx, child, uid, nil)
			if err != nil && (c.FailOnLostRelease || !lostRace(err)) {
				errs = append(errs, err)
			}
		case ref == nil && matches && c.adoptable(owner, child):
			out, err := c.setOwners(ctx, child, uid, kinds.NewControllerRef(owner))
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
	if owner.GetMetadata().GetDeletionTimestamp() != nil || child.GetMetadata().GetDeletionTimestamp() != nil {
		return false
	}
	return c.Adoptable == nil || c.Adoptable(child)
}

// setOwners writes child's ownerReferences without those naming uid, plus add when
// given: a release (add nil) or an adoption (which replaces any reference the owner
// already had there, as Kubernetes' patch by uid does).
func (c Claimer[T]) setOwners(ctx context.Context, child T, uid string, add *corev1.OwnerReference) (T, error) {
	next := proto.Clone(child).(T)
	md := next.GetMetadata()
	var refs []*corev1.OwnerReference
	for _, r := range md.GetOwnerReferences() {
		if r.GetUid() != uid {
			refs = append(refs, r)
		}
	}
	if add != nil {
		refs = append(refs, add)
	}
	md.OwnerReferences = refs
	out, err := c.Update(ctx, next)
	if err != nil {
		return out, fmt.Errorf("update owners of %s %s: %w", kinds.Of(child).Singular, cache.Key(child), err)
	}
	return out, nil
}

// lostRace says whether an update lost to a change of its child (or its deletion),
// which the next sync sees.
func lostRace(err error) bool { return client.IsConflict(err) || client.IsNotFound(err) }
