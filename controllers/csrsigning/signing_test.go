package csrsigning_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	authenticationv1 "k8s.io/api/authentication/v1"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/controllers/csrsigning"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// newRequest makes a key and a PEM certificate request for subject.
func newRequest(t *testing.T, subject pkix.Name, dns ...string) ([]byte, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: subject, DNSNames: dns}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key
}

// rest is a client of the Kubernetes REST API with one TLS identity.
type rest struct {
	t    *testing.T
	base string
	c    *http.Client
}

func newRest(t *testing.T, addr string, tc *tls.Config) *rest {
	tr := &http.Transport{TLSClientConfig: tc}
	t.Cleanup(tr.CloseIdleConnections)
	return &rest{t: t, base: "https://" + addr, c: &http.Client{Transport: tr, Timeout: time.Minute}}
}

// send sends body (JSON) and returns the answer's code and body.
func (r *rest) send(method, path string, body any) (int, string) {
	r.t.Helper()
	b, err := json.Marshal(body)
	if err != nil {
		r.t.Fatal(err)
	}
	req, err := http.NewRequest(method, r.base+path, bytes.NewReader(b))
	if err != nil {
		r.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.c.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(got)
}

// do is send wanting code; it decodes the answer into out (if not nil) and returns
// the body.
func (r *rest) do(method, path string, body any, code int, out any) string {
	r.t.Helper()
	got, b := r.send(method, path, body)
	if got != code {
		r.t.Fatalf("%s %s: %d %s, want %d", method, path, got, b, code)
	}
	if out != nil {
		if err := json.Unmarshal([]byte(b), out); err != nil {
			r.t.Fatalf("%s %s: %v", method, path, err)
		}
	}
	return b
}

const csrs = "/apis/certificates.k8s.io/v1/certificatesigningrequests"

func csrOf(name, signer string, req []byte, usages ...certificatesv1.KeyUsage) *certificatesv1.CertificateSigningRequest {
	return &certificatesv1.CertificateSigningRequest{TypeMeta: metav1.TypeMeta{APIVersion: "certificates.k8s.io/v1", Kind: "CertificateSigningRequest"},
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec:       certificatesv1.CertificateSigningRequestSpec{Request: req, SignerName: signer, Usages: usages, Username: "mallory", Groups: []string{"system:masters"}}}
}

func condition(t certificatesv1.RequestConditionType) certificatesv1.CertificateSigningRequestCondition {
	return certificatesv1.CertificateSigningRequestCondition{Type: t, Status: corev1.ConditionTrue, Reason: "Test", Message: "by the test"}
}

// TestSignedCertificateAuthenticates: a request made over REST records its requester
// (never its own claim); approving it takes verb approve on its signer; the controller
// signs it with the cluster CA for its expirationSeconds, and the certificate so signed
// authenticates with the API server as the request's subject. A denied request is never
// signed; a kubelet client request for another subject fails its signer's check.
func TestSignedCertificateAuthenticates(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	cs := client.NewClientset(c.Dial(t, "controller-manager", client.Options{}))
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	cfg := csrsigning.DefaultConfig()
	cfg.SigningCertFile, cfg.SigningKeyFile = filepath.Join(dir, pki.CACertFile), filepath.Join(dir, pki.CAKeyFile)
	ctrl, err := csrsigning.New(cs, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); f.Wait() })
	f.Start(ctx)
	wg.Go(func() { _ = ctrl.Run(ctx) })

	admin := newRest(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"))
	w1 := newRest(t, c.Addr(0), apicluster.ClientTLS(t, dir, "kubelet-w1"))
	reqPEM, key := newRequest(t, pkix.Name{CommonName: "jane", Organization: []string{"devs"}})
	jane := csrOf("jane", certificatesv1.KubeAPIServerClientSignerName, reqPEM, certificatesv1.UsageDigitalSignature, certificatesv1.UsageClientAuth)
	jane.Spec.ExpirationSeconds = new(int32(3600))
	var got certificatesv1.CertificateSigningRequest
	w1.do("POST", csrs, jane, 201, &got) // a node may request certificates (system:node)
	if got.Spec.Username != "system:node:w1" || !slices.Contains(got.Spec.Groups, pki.GroupNodes) || len(got.Status.Conditions) != 0 {
		t.Fatalf("requester = %q %q, want the node's (not the request's claim): %+v", got.Spec.Username, got.Spec.Groups, got.Status)
	}
	bad := csrOf("bad", certificatesv1.KubeAPIServerClientSignerName, reqPEM)
	bad.Spec.ExpirationSeconds = new(int32(599))
	if body := admin.do("POST", csrs, bad, 422, nil); !strings.Contains(body, "spec.usages: Required value") ||
		!strings.Contains(body, "may not specify a duration less than 600 seconds (10 minutes)") {
		t.Errorf("invalid request: %s", body)
	}

	// Approval: update on the approval subresource, then approve on the signer.
	approved := got.DeepCopy()
	approved.Status.Conditions = append(approved.Status.Conditions, condition(certificatesv1.CertificateApproved))
	w1.do("PUT", csrs+"/jane/approval", approved, 403, nil)
	admin.do("POST", "/apis/rbac.authorization.k8s.io/v1/clusterroles", map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": map[string]any{"name": "approver"},
		"rules": []map[string]any{{"apiGroups": []string{"certificates.k8s.io"}, "resources": []string{"certificatesigningrequests/approval"}, "verbs": []string{"update"}}},
	}, 201, nil)
	admin.do("POST", "/apis/rbac.authorization.k8s.io/v1/clusterrolebindings", map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding", "metadata": map[string]any{"name": "approver"},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "approver"},
		"subjects": []map[string]any{{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "system:node:w1"}},
	}, 201, nil)
	waitfor.Condition(t, time.Minute, "w1 refused approval for the signer", func() (bool, string) {
		body := sendBody(w1, "PUT", csrs+"/jane/approval", approved)
		return strings.Contains(body, `user not permitted to approve requests with signerName \"kubernetes.io/kube-apiserver-client\"`), body
	})
	// A status write may not approve, nor may an approval write the certificate.
	if body := admin.do("PUT", csrs+"/jane/status", approved, 422, nil); !strings.Contains(body, `updates may not add a condition of type \"Approved\"`) {
		t.Errorf("approval through the status: %s", body)
	}
	admin.do("PUT", "/apis/rbac.authorization.k8s.io/v1/clusterroles/approver", map[string]any{
		"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": map[string]any{"name": "approver"},
		"rules": []map[string]any{{"apiGroups": []string{"certificates.k8s.io"}, "resources": []string{"certificatesigningrequests/approval"}, "verbs": []string{"update"}},
			{"apiGroups": []string{"certificates.k8s.io"}, "resources": []string{"signers"}, "resourceNames": []string{"kubernetes.io/*"}, "verbs": []string{"approve"}}},
	}, 200, nil)
	waitfor.Condition(t, time.Minute, "w1 approves for kubernetes.io/*", func() (bool, string) {
		body := sendBody(w1, "PUT", csrs+"/jane/approval", approved)
		return strings.Contains(body, `"type":"Approved"`), body
	})

	// The denied request, made before the approved one is signed, is never signed.
	admin.do("POST", csrs, csrOf("denied", certificatesv1.KubeAPIServerClientSignerName, reqPEM, certificatesv1.UsageClientAuth), 201, &got)
	got.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{condition(certificatesv1.CertificateDenied)}
	admin.do("PUT", csrs+"/denied/approval", &got, 200, nil)
	// A kubelet's client certificate must be a node's.
	kubeletReq, _ := newRequest(t, pkix.Name{CommonName: "jane", Organization: []string{"system:nodes"}})
	admin.do("POST", csrs, csrOf("not-a-node", certificatesv1.KubeAPIServerClientKubeletSignerName, kubeletReq, certificatesv1.UsageClientAuth), 201, &got)
	got.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{condition(certificatesv1.CertificateApproved)}
	admin.do("PUT", csrs+"/not-a-node/approval", &got, 200, nil)

	var signed certificatesv1.CertificateSigningRequest
	waitfor.Condition(t, time.Minute, "jane's certificate", func() (bool, string) {
		admin.do("GET", csrs+"/jane", nil, 200, &signed)
		return len(signed.Status.Certificate) > 0, "no certificate"
	})
	block, _ := pem.Decode(signed.Status.Certificate)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if life := cert.NotAfter.Sub(cert.NotBefore); cert.Subject.CommonName != "jane" || life != time.Hour+5*time.Minute {
		t.Errorf("certificate of %q valid %v, want jane's for an hour (and five minutes backdated)", cert.Subject.CommonName, life)
	}
	var failed certificatesv1.CertificateSigningRequest
	waitfor.Condition(t, time.Minute, "not-a-node failed", func() (bool, string) {
		admin.do("GET", csrs+"/not-a-node", nil, 200, &failed)
		return csrsigning.HasCondition(&failed, certificatesv1.CertificateFailed), "not failed"
	})
	if c := failed.Status.Conditions[len(failed.Status.Conditions)-1]; c.Reason != csrsigning.ReasonSignerValidationFailure ||
		!strings.Contains(c.Message, "subject common name does not begin with system:node:") || len(failed.Status.Certificate) != 0 {
		t.Errorf("not-a-node: %+v", failed.Status)
	}
	if _, err := ctrl.Reconcile(ctx, "denied"); err != nil { // by now in the cache: answered, not signed
		t.Fatal(err)
	}
	var denied certificatesv1.CertificateSigningRequest
	if admin.do("GET", csrs+"/denied", nil, 200, &denied); len(denied.Status.Certificate) != 0 {
		t.Errorf("a denied request was signed")
	}

	// The certificate authenticates as jane, in group devs.
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	pair, err := tls.X509KeyPair(signed.Status.Certificate, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	tc := apicluster.ClientTLS(t, dir, "")
	tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }
	var review authenticationv1.SelfSubjectReview
	newRest(t, c.Addr(0), tc).do("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews",
		map[string]any{"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}, 201, &review)
	if u := review.Status.UserInfo; u.Username != "jane" || !slices.Contains(u.Groups, "devs") {
		t.Errorf("the signed certificate authenticates as %+v, want jane in devs", u)
	}
}

func sendBody(r *rest, method, path string, body any) string {
	_, b := r.send(method, path, body)
	return b
}
