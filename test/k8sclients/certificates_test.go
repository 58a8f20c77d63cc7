package k8sclients

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

// csrManifest is a CertificateSigningRequest of name for a new key of user jane.
func csrManifest(t *testing.T, name string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "jane", Organization: []string{"devs"}}}, key)
	if err != nil {
		t.Fatal(err)
	}
	req := base64.StdEncoding.EncodeToString(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}))
	return fmt.Sprintf(`apiVersion: certificates.k8s.io/v1
kind: CertificateSigningRequest
metadata:
  name: %s
spec:
  request: %s
  signerName: kubernetes.io/kube-apiserver-client
  expirationSeconds: 86400
  usages: [client auth]
`, name, req)
}

// TestKubectlCertificate: kubectl creates CertificateSigningRequests, lists them with
// Kubernetes' columns, approves one (kubectl certificate approve: the approval
// subresource), which skiff up's controller-manager signs with the cluster CA, and
// denies another, which is never issued.
func TestKubectlCertificate(t *testing.T) {
	s := startSkiff(t)
	for _, name := range []string{"jane", "bob"} {
		if out, err := s.runEnv(nil, csrManifest(t, name), "create", "-f", "-"); err != nil ||
			out != "certificatesigningrequest.certificates.k8s.io/"+name+" created\n" {
			t.Fatalf("create csr %s: %v %s", name, err, out)
		}
	}
	s.wantOut(`(?m)^NAME\s+AGE\s+SIGNERNAME\s+REQUESTOR\s+REQUESTEDDURATION\s+CONDITION\njane\s+\S+\s+kubernetes.io/kube-apiserver-client\s+\S+\s+24h\s+Pending$`, "get", "csr", "jane")
	s.wantOut(`^certificatesigningrequest.certificates.k8s.io/jane approved\n$`, "certificate", "approve", "jane")
	s.wantOut(`^certificatesigningrequest.certificates.k8s.io/bob denied\n$`, "certificate", "deny", "bob")
	waitfor.Condition(t, time.Minute, "jane's certificate issued", func() (bool, string) {
		out, _ := s.run("get", "csr", "jane", "--no-headers")
		return strings.Contains(out, "Approved,Issued"), out
	})
	cert := s.must("get", "csr", "jane", "-o", "jsonpath={.status.certificate}")
	b, err := base64.StdEncoding.DecodeString(cert)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatalf("jane's certificate: %q", b)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil || c.Subject.CommonName != "jane" || c.NotAfter.Sub(c.NotBefore) != 24*time.Hour {
		t.Errorf("jane's certificate: %v %+v, valid %v", err, c.Subject, c.NotAfter.Sub(c.NotBefore))
	}
	s.wantOut(`(?m)^bob\s+\S+\s+kubernetes.io/kube-apiserver-client\s+\S+\s+24h\s+Denied$`, "get", "csr", "bob", "--no-headers")
}
