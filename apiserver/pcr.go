package apiserver

import (
	"context"
	"fmt"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// PodCertificateRequests, as Kubernetes' registry and NodeRestriction treat them: made
// with an empty status and a maxExpirationSeconds (a day if omitted); the spec fixed;
// the status written through its subresource once, to Issued, Denied or Failed, and a
// certificate chain only by a user who may sign for the request's signer (verb sign on
// certificates.k8s.io's signers, by name or its domain's wildcard). A kubelet may ask
// only for a pod bound to its node, naming the pod, its service account and the node
// as they are (uids included), and for a signer one of the pod's podCertificate
// projections names.

// admitPodCertificateRequestStatus is Kubernetes' status strategy for a request: the
// terminal conditions already there are kept as they were, new conditions get their
// transition time (now, or the old one of the same type and status), then the status
// is validated.
func admitPodCertificateRequestStatus(old, pcr *certificatesv1.PodCertificateRequest, now metav1.Time) error {
	for _, t := range []string{certificatesv1.PodCertificateRequestConditionTypeIssued, certificatesv1.PodCertificateRequestConditionTypeDenied, certificatesv1.PodCertificateRequestConditionTypeFailed} {
		was, is := conditionIndices(old.Status.Conditions, t), conditionIndices(pcr.Status.Conditions, t)
		if len(was) == len(is) {
			for i := range was {
				pcr.Status.Conditions[is[i]] = old.Status.Conditions[was[i]]
			}
		}
	}
	for i := range pcr.Status.Conditions {
		c := &pcr.Status.Conditions[i]
		if !c.LastTransitionTime.IsZero() {
			continue
		}
		c.LastTransitionTime = now
		for _, o := range old.Status.Conditions {
			if o.Type == c.Type && o.Status == c.Status && !o.LastTransitionTime.IsZero() {
				c.LastTransitionTime = o.LastTransitionTime
				break
			}
		}
	}
	return validation.ValidatePodCertificateRequestStatus(old, pcr, now.Time)
}

func conditionIndices(conds []metav1.Condition, typ string) []int {
	var out []int
	for i, c := range conds {
		if c.Type == typ {
			out = append(out, i)
		}
	}
	return out
}

// authorizePodCertificateSigner refuses a chain written into a request by a user who
// may not sign for its signer, in Kubernetes' words (a 422 on spec.signerName).
func (r *resources) authorizePodCertificateSigner(ctx context.Context, cur, next *certificatesv1.PodCertificateRequest) error {
	if cur.Status.CertificateChain == next.Status.CertificateChain {
		return nil
	}
	signer := cur.Spec.SignerName
	if r.maySigner(ctx, auth.Sign, signer) {
		return nil
	}
	err := field.Forbidden(field.NewPath("spec", "signerName"), fmt.Sprintf("User %q is not permitted to \"sign\" for signer %q", requestUser(ctx).Name, signer))
	return invalid(kinds.Of(cur), cur.Name, validation.ErrorList{err})
}

// admitNodePodCertificateRequest is Kubernetes' NodeRestriction for a request a
// kubelet makes: it reads the node, the pod and its service account the request
// names, and auth.AdmitNodePodCertificateRequest checks it against them.
func (r *resources) admitNodePodCertificateRequest(ctx context.Context, pcr *certificatesv1.PodCertificateRequest) error {
	node := auth.NodeOf(requestUser(ctx))
	if node == "" {
		return nil
	}
	info := kinds.Of(pcr)
	refuse := func(format string, args ...any) error {
		return forbidden(info, pcr.Name, fmt.Sprintf(format, args...))
	}
	if string(pcr.Spec.NodeName) != node {
		return refuse("PodCertificateRequest.Spec.NodeName=%q, which is not the requesting node %q", pcr.Spec.NodeName, node)
	}
	read := func(kind, namespace, name string) (kinds.Object, error) {
		obj, _, err := r.get(ctx, kinds.MustLookup(kind), store.Key{Kind: kind, Namespace: namespace, Name: name}, store.ReadOptions{})
		if err != nil {
			return nil, fmt.Errorf("while retrieving %s %q named in the PodCertificateRequest: %w", kinds.MustLookup(kind).Singular, name, err)
		}
		return obj, nil
	}
	nodeObj, err := read(kinds.Node, "", node)
	if err != nil {
		return refuse("%v", err)
	}
	pod, err := read(kinds.Pod, pcr.Namespace, pcr.Spec.PodName)
	if err != nil {
		return refuse("%v", err)
	}
	sa, err := read(kinds.ServiceAccount, pcr.Namespace, pcr.Spec.ServiceAccountName)
	if err != nil {
		return refuse("%v", err)
	}
	if err := auth.AdmitNodePodCertificateRequest(node, pcr, nodeObj.(*corev1.Node), pod.(*corev1.Pod), sa.(*corev1.ServiceAccount)); err != nil {
		return refuse("%v", err)
	}
	return nil
}
