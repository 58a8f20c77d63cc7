// Package podsigner signs PodCertificateRequests in tests. Kubernetes ships no signer
// of pod certificates at Skiff's release (the one it names,
// kubernetes.io/kube-apiserver-client-pod, is documented as unimplemented), so Skiff has
// no built-in one either: a cluster's signers are its own controllers, and tests sign
// with a CA of their own, made here, as such a controller would.
package podsigner

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/url"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// CA is a throwaway certificate authority.
type CA struct {
	Cert    *x509.Certificate
	CertPEM []byte
	key     *ecdsa.PrivateKey
}

// New makes a CA valid for a day around now.
func New(t testing.TB) *CA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "podsigner test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return &CA{Cert: cert, CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), key: key}
}

// PodURI is the URI SAN Issue gives a pod's certificate.
func PodURI(namespace, pod string) string {
	return fmt.Sprintf("spiffe://cluster.local/ns/%s/pod/%s", namespace, pod)
}

// Issue writes into pcr's status a certificate for the key of its stub request, naming
// its pod (PodURI), valid from now (to the second, as the status keeps it) for life,
// with beginRefreshAt refresh into it, followed by the CA's certificate; and the Issued
// condition.
func (ca *CA) Issue(pcr *certificatesv1.PodCertificateRequest, now time.Time, life, refresh time.Duration) error {
	req, err := x509.ParseCertificateRequest(pcr.Spec.StubPKCS10Request)
	if err != nil {
		return fmt.Errorf("stub request of %s: %w", pcr.Name, err)
	}
	uri, err := url.Parse(PodURI(pcr.Namespace, pcr.Spec.PodName))
	if err != nil {
		return err
	}
	notBefore := now.Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(now.UnixNano()), Subject: pkix.Name{CommonName: pcr.Spec.PodName},
		NotBefore: notBefore, NotAfter: notBefore.Add(life), URIs: []*url.URL{uri},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, req.PublicKey, ca.key)
	if err != nil {
		return fmt.Errorf("sign %s: %w", pcr.Name, err)
	}
	st := &pcr.Status
	st.CertificateChain = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})) + string(ca.CertPEM)
	st.NotBefore, st.NotAfter = new(metav1.NewTime(notBefore)), new(metav1.NewTime(notBefore.Add(life)))
	st.BeginRefreshAt = new(metav1.NewTime(notBefore.Add(refresh)))
	st.Conditions = append(st.Conditions, metav1.Condition{Type: certificatesv1.PodCertificateRequestConditionTypeIssued,
		Status: metav1.ConditionTrue, Reason: "Issued", Message: "by the test signer", LastTransitionTime: metav1.NewTime(notBefore)})
	return nil
}

// Deny writes the Denied condition into pcr's status, with reason and message.
func Deny(pcr *certificatesv1.PodCertificateRequest, now time.Time, reason, message string) {
	pcr.Status.Conditions = append(pcr.Status.Conditions, metav1.Condition{Type: certificatesv1.PodCertificateRequestConditionTypeDenied,
		Status: metav1.ConditionTrue, Reason: reason, Message: message, LastTransitionTime: metav1.NewTime(now.Truncate(time.Second))})
}
