package apiserver

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// Admission: defaulting and validation of what is written. The rules live in
// apiserver/validation; this file is the seam the handlers call.

func admitCreate(obj kinds.Object) error {
	validation.Default(obj)
	return validation.Validate(obj)
}

func admitUpdate(old, obj kinds.Object) error {
	validation.Default(obj)
	return validation.ValidateUpdate(old, obj)
}

func admitStatusUpdate(old, obj kinds.Object) error { return validation.ValidateStatus(obj) }

// admitNodeWrite applies Kubernetes' NodeRestriction to what a kubelet writes (old is
// nil on create): see auth.AdmitNodeWrite. A refusal is PermissionDenied, as
// Kubernetes' admission answers 403.
func (r *resources) admitNodeWrite(ctx context.Context, info *kinds.Info, old, obj kinds.Object) error {
	u := requestUser(ctx)
	if auth.NodeOf(u) == "" {
		return nil
	}
	err := auth.AdmitNodeWrite(u, old, obj, func(namespace, name string) (string, bool, error) {
		// A local read: a pod's node never changes once it is bound.
		rec, err := r.store.Get(ctx, store.Key{Kind: kinds.Pod, Namespace: namespace, Name: name}, store.ReadOptions{Stale: true})
		if errors.Is(err, store.ErrNotFound) {
			return "", false, nil
		}
		if err != nil {
			return "", false, storeError(kinds.MustLookup(kinds.Pod), name, err)
		}
		obj, err := decode(kinds.MustLookup(kinds.Pod), &rec)
		if err != nil {
			return "", false, err
		}
		return obj.(*corev1.Pod).Spec.NodeName, true, nil
	})
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return err
		}
		return statusError(codes.PermissionDenied, ReasonForbidden, nil, "%s %q is forbidden: %v", resourceName(info), obj.GetName(), err)
	}
	return nil
}
