package apiserver

import (
	"bytes"
	"context"
	"fmt"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
)

// CertificateSigningRequests, as Kubernetes' registry and admission treat them: the API
// server records who asked (spec.username, groups, uid, extra: the requester, never
// what the request says); an update writes metadata only (spec is fixed, the status
// has its subresources); the approval subresource alone writes the Approved and
// Denied conditions, and only for a user who may approve for the request's signer
// (verb approve on certificates.k8s.io's signers, named by the signer or its domain's
// wildcard: Kubernetes' CertificateApproval admission); the status subresource alone
// writes the certificate, and only for a user who may sign for the signer
// (CertificateSigning).

// SubresourceApproval is the CertificateSigningRequest's approval subresource.
const SubresourceApproval = "approval"

// prepareCSRCreate fills in who requests: the request's user, never its own claim.
func prepareCSRCreate(ctx context.Context, csr *certificatesv1.CertificateSigningRequest) {
	u := requestUser(ctx)
	csr.Spec.Username = u.Name
	csr.Spec.Groups = append([]string(nil), u.Groups...)
	csr.Spec.UID = ""
	csr.Spec.Extra = nil
	csr.Status = certificatesv1.CertificateSigningRequestStatus{}
}

// signerVerb is the verb on signers that writing next's status by subresource sub needs
// ("" none): approve for the approval, sign for a certificate set through the status.
func signerVerb(sub string, cur, next kinds.Object) string {
	old, ok := cur.(*certificatesv1.CertificateSigningRequest)
	if !ok {
		return ""
	}
	switch {
	case sub == SubresourceApproval:
		return auth.Approve
	case !bytes.Equal(old.Status.Certificate, next.(*certificatesv1.CertificateSigningRequest).Status.Certificate):
		return auth.Sign
	}
	return ""
}

// authorizeSigner is Kubernetes' CertificateApproval and CertificateSigning admission:
// the user may verb (approve, sign) the request's signer (maySigner).
func (r *resources) authorizeSigner(ctx context.Context, verb string, csr *certificatesv1.CertificateSigningRequest) error {
	if r.maySigner(ctx, verb, csr.Spec.SignerName) {
		return nil
	}
	return forbidden(kinds.Of(csr), csr.Name, fmt.Sprintf("user not permitted to %s requests with signerName %q", verb, csr.Spec.SignerName))
}

// maySigner tells whether the request's user may verb (approve, sign) the signers named
// signer, or its domain's wildcard ("example.com/*"), as Kubernetes'
// IsAuthorizedForSignerName asks.
func (r *resources) maySigner(ctx context.Context, verb, signer string) bool {
	az := r.authz
	u := requestUser(ctx)
	if az == nil || auth.IsAdmin(u) {
		return true
	}
	names := []string{signer}
	if domain, _, ok := strings.Cut(signer, "/"); ok {
		names = append(names, domain+"/*")
	}
	for _, name := range names {
		if _, err := az.Authorize(auth.Attributes{User: u, Verb: verb, APIGroup: certificatesv1.GroupName, Resource: auth.ResourceSigners, Name: name}); err == nil {
			return true
		}
	}
	return false
}

// admitCSRStatus validates a write of a request's status through sub (status or
// approval), stamping its new conditions' times as Kubernetes' status strategies do.
func admitCSRStatus(old, csr *certificatesv1.CertificateSigningRequest, sub string, now metav1.Time) error {
	how := validation.CSRStatus
	if sub == SubresourceApproval {
		how = validation.CSRApproval
		csr.Status.Certificate = old.Status.Certificate // the approval writes the conditions alone
	}
	for i := range csr.Status.Conditions {
		c := &csr.Status.Conditions[i]
		if c.LastUpdateTime.IsZero() {
			c.LastUpdateTime = now
		}
		if c.LastTransitionTime.IsZero() {
			c.LastTransitionTime = now
			for _, o := range old.Status.Conditions {
				if o.Type == c.Type && o.Status == c.Status {
					c.LastTransitionTime = o.LastTransitionTime
				}
			}
		}
	}
	return validation.ValidateCSRWrite(old, csr, how)
}
