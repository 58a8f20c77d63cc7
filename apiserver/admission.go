package apiserver

import (
	"context"
	"errors"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	storagemigrationv1 "k8s.io/api/storagemigration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// Admission: defaulting and validation of what is written. The rules live in
// apiserver/validation; this file is the seam the handlers call.

// admitCreate defaults and validates a new object. A pod comes defaulted: the built-in
// admission (newCreation's) defaults it before its LimitRanger and defaults what the
// admission added (validation.DefaultAdmitted), so it is not defaulted a second time.
func admitCreate(obj kinds.Object) error {
	if _, ok := obj.(*corev1.Pod); !ok {
		validation.Default(obj)
	}
	return validation.Validate(obj)
}

func admitUpdate(old, obj kinds.Object, sameSpec bool) error {
	if pod, ok := obj.(*corev1.Pod); ok {
		keepPriority(old.(*corev1.Pod), pod)
	}
	validation.Default(obj)
	if sameSpec {
		return validation.ValidateUpdateSameSpec(old, obj)
	}
	return validation.ValidateUpdate(old, obj)
}

// admitStatusUpdate validates obj's status as written over old's through subresource
// sub at now.
func admitStatusUpdate(old, obj kinds.Object, sub string, now metav1.Time) error {
	if csr, ok := obj.(*certificatesv1.CertificateSigningRequest); ok {
		return admitCSRStatus(old.(*certificatesv1.CertificateSigningRequest), csr, sub, now)
	}
	if pcr, ok := obj.(*certificatesv1.PodCertificateRequest); ok {
		return admitPodCertificateRequestStatus(old.(*certificatesv1.PodCertificateRequest), pcr, now)
	}
	if c, ok := obj.(*kinds.Custom); ok {
		if oldC, ok := old.(*kinds.Custom); ok {
			return validation.ValidateCustomStatus(oldC, c)
		}
	}
	if m, ok := obj.(*storagemigrationv1.StorageVersionMigration); ok {
		return validation.ValidateMigrationStatus(old.(*storagemigrationv1.StorageVersionMigration), m)
	}
	return validation.ValidateStatus(obj)
}

// The admission webhooks' calls are webhooks.go's admitWebhooksMutating,
// admitWebhooksUpdate and webhooks.validate.

// podGetter reads a stored object (a *store.Store).
type podGetter interface {
	Get(ctx context.Context, k store.Key, opts store.ReadOptions) (store.Object, error)
}

// boundNode is the node the stored pod at key is bound to ("" when it is not), and
// whether there is such a pod, for NodeRestriction's checks. A local read first: a pod's
// node never changes once it is bound, and the stored record's indexed field says it
// without decoding the pod. A pod this member does not have, or has unbound, may be this
// member trailing the cluster (the kubelet saw the binding through another member: a
// burst's Pulling and Pulled events were refused so), so that answer stands only from a
// current read.
func boundNode(ctx context.Context, s podGetter, key store.Key) (string, bool, error) {
	rec, err := s.Get(ctx, key, store.ReadOptions{Stale: true})
	if errors.Is(err, store.ErrNotFound) || err == nil && rec.Fields["spec.nodeName"] == "" {
		rec, err = s.Get(ctx, key, store.ReadOptions{})
	}
	if errors.Is(err, store.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, storeError(kinds.MustLookup(kinds.Pod), key.Name, err)
	}
	return rec.Fields["spec.nodeName"], true, nil
}

// admitNodeWrite applies Kubernetes' NodeRestriction to what a kubelet writes (old is
// nil on create): see auth.AdmitNodeWrite. A refusal is PermissionDenied, as
// Kubernetes' admission answers 403.
func (r *resources) admitNodeWrite(ctx context.Context, info *kinds.Info, old, obj kinds.Object) error {
	u := requestUser(ctx)
	if auth.NodeOf(u) == "" {
		return nil
	}
	var uid string
	if ev, ok := obj.(*corev1.Event); ok {
		uid = string(ev.InvolvedObject.UID)
	}
	err := auth.AdmitNodeWrite(u, old, obj, func(namespace, name string) (string, bool, error) {
		key := store.Key{Kind: kinds.Pod, Namespace: namespace, Name: name}
		// The event names the pod's uid (the kubelet's recorder does): the node graph
		// answers for a pod it has bound, with no read; a pod's node never changes once
		// it is bound. Each pod's start and stop are several events: a read and a
		// decode of the pod for each was a twentieth of a rollout's CPU.
		if node, ok := r.graph.nodeOf(key, uid); ok {
			return node, true, nil
		}
		return boundNode(ctx, r.store, key)
	})
	if err != nil {
		if _, ok := status.FromError(err); ok {
			return err
		}
		return statusError(codes.PermissionDenied, ReasonForbidden, nil, "%s %q is forbidden: %v", resourceName(info), obj.GetName(), err)
	}
	return nil
}
