package csrcleaner

import (
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/pki"
)

// TestExpiresIn: Kubernetes' expirations — issued an hour after approval or at the
// certificate's expiry, denied and failed an hour after, pending a day after creation;
// an approved request not yet issued is the signer's, never deleted for it.
func TestExpiresIn(t *testing.T) {
	now := time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)
	ca, err := pki.NewCA("test", now.Add(-48*time.Hour), 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca.Issue(pki.Request{CommonName: "jane", Client: true, NotBefore: now.Add(-2 * time.Hour), Validity: 90 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	cond := func(ty certificatesv1.RequestConditionType, ago time.Duration) certificatesv1.CertificateSigningRequestCondition {
		return certificatesv1.CertificateSigningRequestCondition{Type: ty, Status: corev1.ConditionTrue, LastUpdateTime: metav1.NewTime(now.Add(-ago))}
	}
	for _, tc := range []struct {
		name  string
		made  time.Duration // ago
		conds []certificatesv1.CertificateSigningRequestCondition
		cert  []byte
		in    time.Duration
		why   string
	}{
		{"pending", 23 * time.Hour, nil, nil, time.Hour, "pending for a day"},
		{"pending too long", 25 * time.Hour, nil, nil, -time.Hour, "pending for a day"},
		{"approved, not issued", 30 * time.Hour, []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved, 2*time.Hour)}, nil, 0, ""},
		{"issued, certificate expired first", 3 * time.Hour, []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved, 10*time.Minute)}, leaf.CertPEM, -30 * time.Minute, "its certificate expired"},
		{"denied", time.Hour, []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateDenied, 20*time.Minute)}, nil, 40 * time.Minute, "denied an hour ago"},
		{"failed", time.Hour, []certificatesv1.CertificateSigningRequestCondition{cond(certificatesv1.CertificateApproved, 2*time.Hour), cond(certificatesv1.CertificateFailed, 61*time.Minute)}, nil, -time.Minute, "failed an hour ago"},
	} {
		csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(now.Add(-tc.made))},
			Status: certificatesv1.CertificateSigningRequestStatus{Conditions: tc.conds, Certificate: tc.cert}}
		in, why := ExpiresIn(csr, now)
		if why != tc.why || (why != "" && in != tc.in) {
			t.Errorf("%s: in %v (%q), want %v (%q)", tc.name, in, why, tc.in, tc.why)
		}
	}
}
