package validation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/test/podsigner"
)

// stubRequest is a kubelet's stub PKCS#10 request for key.
func stubRequest(t *testing.T, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	return der
}

func newPCR(stub []byte, mut func(*certificatesv1.PodCertificateRequest)) *certificatesv1.PodCertificateRequest {
	pcr := &certificatesv1.PodCertificateRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-abcde"},
		Spec: certificatesv1.PodCertificateRequestSpec{SignerName: "example.com/pods", PodName: "web", PodUID: "pod-uid",
			ServiceAccountName: "default", ServiceAccountUID: "sa-uid", NodeName: "w1", NodeUID: "node-uid",
			MaxExpirationSeconds: new(int32(86400)), StubPKCS10Request: stub}}
	if mut != nil {
		mut(pcr)
	}
	return pcr
}

// TestValidatePodCertificateRequest: Kubernetes' rules for a request made: a signer
// name; the pod, account and node by name and uid; maxExpirationSeconds from an hour
// to a day (kubernetes.io signers) or 91 days; a stub request its key signed, of a
// supported key; user annotation keys with a domain. Its spec is fixed after.
func TestValidatePodCertificateRequest(t *testing.T) {
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	p224, _ := ecdsa.GenerateKey(elliptic.P224(), rand.Reader)
	rsa2048, _ := rsa.GenerateKey(rand.Reader, 2048)
	stub := stubRequest(t, edKey)
	forged := stubRequest(t, edKey)
	forged[len(forged)-1] ^= 0xff // the signature no longer verifies
	for _, tc := range []struct {
		name string
		mut  func(*certificatesv1.PodCertificateRequest)
		want []string
	}{
		{"valid", nil, nil},
		{"ECDSA P-256", func(p *certificatesv1.PodCertificateRequest) {
			k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
			p.Spec.StubPKCS10Request = stubRequest(t, k)
		}, nil},
		{"no signer", func(p *certificatesv1.PodCertificateRequest) { p.Spec.SignerName = "" }, []string{"spec.signerName: Required value"}},
		{"no uids", func(p *certificatesv1.PodCertificateRequest) {
			p.Spec.PodUID, p.Spec.ServiceAccountUID, p.Spec.NodeUID = "", "", ""
		},
			[]string{`spec.podUID: Invalid value: "": must not be empty`, `spec.serviceAccountUID: Invalid value: "": must not be empty`, `spec.nodeUID: Invalid value: "": must not be empty`}},
		{"bad pod name", func(p *certificatesv1.PodCertificateRequest) { p.Spec.PodName = "Web" }, []string{`spec.podName: Invalid value: "Web"`}},
		{"no node", func(p *certificatesv1.PodCertificateRequest) { p.Spec.NodeName = "" }, []string{`spec.nodeName: Invalid value: ""`}},
		{"no maxExpirationSeconds", func(p *certificatesv1.PodCertificateRequest) { p.Spec.MaxExpirationSeconds = nil },
			[]string{"spec.maxExpirationSeconds: Required value: must be set"}},
		{"under an hour", func(p *certificatesv1.PodCertificateRequest) { p.Spec.MaxExpirationSeconds = new(int32(3599)) },
			[]string{"spec.maxExpirationSeconds: Invalid value: 3599: must be in the range [3600, 7862400]"}},
		{"91 days", func(p *certificatesv1.PodCertificateRequest) { p.Spec.MaxExpirationSeconds = new(int32(7862400)) }, nil},
		{"kubernetes.io signer over a day", func(p *certificatesv1.PodCertificateRequest) {
			p.Spec.SignerName, p.Spec.MaxExpirationSeconds = "kubernetes.io/kube-apiserver-client-pod", new(int32(86401))
		}, []string{"spec.maxExpirationSeconds: Invalid value: 86401: must be in the range [3600, 86400]"}},
		{"no stub", func(p *certificatesv1.PodCertificateRequest) { p.Spec.StubPKCS10Request = nil }, []string{"spec.stubPKCS10Request: Required value"}},
		{"stub not a request", func(p *certificatesv1.PodCertificateRequest) { p.Spec.StubPKCS10Request = []byte("junk") },
			[]string{"spec.stubPKCS10Request: Invalid value: must be a valid DER-encoded PKCS#10 certificate request"}},
		{"stub signature forged", func(p *certificatesv1.PodCertificateRequest) { p.Spec.StubPKCS10Request = forged },
			[]string{"spec.stubPKCS10Request: Invalid value: could not verify the request's signature"}},
		{"RSA 2048", func(p *certificatesv1.PodCertificateRequest) { p.Spec.StubPKCS10Request = stubRequest(t, rsa2048) },
			[]string{`spec.stubPKCS10Request: Invalid value: "2048-bit modulus": RSA keys must have modulus size 3072 or 4096`}},
		{"P-224", func(p *certificatesv1.PodCertificateRequest) { p.Spec.StubPKCS10Request = stubRequest(t, p224) },
			[]string{`spec.stubPKCS10Request: Invalid value: "curve P-224": elliptic public keys must use curve P256, P384 or P521`}},
		{"user annotation without domain", func(p *certificatesv1.PodCertificateRequest) {
			p.Spec.UnverifiedUserAnnotations = map[string]string{"example.com/ok": "1", "team": "a"}
		}, []string{`spec.unverifiedUserAnnotations[team]: Invalid value: "team": must be prefixed with a domain (example.com/key)`}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, Validate(newPCR(stub, tc.mut)), tc.want) })
	}

	old := newPCR(stub, nil)
	next := newPCR(stub, func(p *certificatesv1.PodCertificateRequest) {
		p.Spec.PodName = "other"
		p.Labels = map[string]string{"a": "b"}
	})
	checkErrors(t, ValidateUpdate(old, next), []string{"spec: Invalid value: field is immutable"})
	next.Spec.PodName = "web"
	checkErrors(t, ValidateUpdate(old, next), nil)
}

// TestValidatePodCertificateRequestStatus: the status goes once to Issued, Denied or
// Failed and stays; an issued chain's leaf is for the request's key, at least an hour
// and at most maxExpirationSeconds long, its times in the status as in the leaf
// (notBefore near now), beginRefreshAt ten minutes inside them.
func TestValidatePodCertificateRequestStatus(t *testing.T) {
	ca := podsigner.New(t)
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Now()
	pending := newPCR(stubRequest(t, key), nil)
	issue := func(pcr *certificatesv1.PodCertificateRequest, life, refresh time.Duration) *certificatesv1.PodCertificateRequest {
		out := pcr.DeepCopy()
		if err := ca.Issue(out, now, life, refresh); err != nil {
			t.Fatal(err)
		}
		return out
	}
	issued := issue(pending, 2*time.Hour, time.Hour)
	denied := pending.DeepCopy()
	podsigner.Deny(denied, now, "UnsupportedKeyType", "use RSA")
	cond := func(typ string, st metav1.ConditionStatus) metav1.Condition {
		return metav1.Condition{Type: typ, Status: st, Reason: "Test", LastTransitionTime: metav1.NewTime(now)}
	}
	for _, tc := range []struct {
		name      string
		old, next *certificatesv1.PodCertificateRequest
		want      []string
	}{
		{"issued", pending, issued, nil},
		{"denied", pending, denied, nil},
		{"pending unchanged", pending, pending, nil},
		{"a chain without a condition", pending, func() *certificatesv1.PodCertificateRequest {
			p := issued.DeepCopy()
			p.Status.Conditions = nil
			return p
		}(), []string{`status: Invalid value: status is immutable unless transitioning to "Issued", "Denied", or "Failed"`}},
		{"unknown condition", pending, newPCR(nil, func(p *certificatesv1.PodCertificateRequest) {
			p.Status.Conditions = []metav1.Condition{cond("Approved", metav1.ConditionTrue)}
		}), []string{`status.conditions[0].type: Unsupported value: "Approved": supported values: "Issued", "Denied", "Failed"`}},
		{"issued and denied", pending, newPCR(nil, func(p *certificatesv1.PodCertificateRequest) {
			p.Status.Conditions = []metav1.Condition{cond("Issued", metav1.ConditionTrue), cond("Denied", metav1.ConditionTrue)}
		}), []string{`status.conditions[1].type: Invalid value: "Denied": There may be at most one condition with type "Issued", "Denied", or "Failed"`}},
		{"failed false", pending, newPCR(nil, func(p *certificatesv1.PodCertificateRequest) {
			p.Status.Conditions = []metav1.Condition{cond("Failed", metav1.ConditionFalse)}
		}), []string{`status.conditions[0].status: Unsupported value: "False": supported values: "True"`}},
		{"denied with a chain", pending, func() *certificatesv1.PodCertificateRequest {
			p := denied.DeepCopy()
			p.Status.CertificateChain = issued.Status.CertificateChain
			return p
		}(), []string{"status: Invalid value: non-condition status fields must be empty when denying or failing the PodCertificateRequest"}},
		{"issued again", issued, issue(pending, 3*time.Hour, time.Hour),
			[]string{"status: Invalid value: immutable after PodCertificateRequest is issued, denied, or failed"}},
		{"denied after issue", issued, denied, []string{"status: Invalid value: immutable after PodCertificateRequest is issued, denied, or failed"}},
		{"another key", pending, issue(newPCR(stubRequest(t, other), nil), 2*time.Hour, time.Hour),
			[]string{"status.certificateChain: Invalid value: leaf certificate was not issued to the requested public key"}},
		{"under an hour", pending, issue(pending, 59*time.Minute, 20*time.Minute),
			[]string{`status.certificateChain: Invalid value: "59m0s": leaf certificate lifetime must be >= 1 hour`}},
		{"over maxExpirationSeconds", pending, issue(pending, 25*time.Hour, time.Hour),
			[]string{`status.certificateChain: Invalid value: "25h0m0s": leaf certificate lifetime must be <= spec.maxExpirationSeconds (86400)`}},
		{"refresh too soon", pending, issue(pending, 2*time.Hour, 5*time.Minute),
			[]string{"status.beginRefreshAt: Invalid value:"}},
		{"refresh too late", pending, issue(pending, 2*time.Hour, 115*time.Minute),
			[]string{"status.beginRefreshAt: Invalid value:"}},
		{"notAfter not the leaf's", pending, func() *certificatesv1.PodCertificateRequest {
			p := issued.DeepCopy()
			p.Status.NotAfter = new(metav1.NewTime(p.Status.NotAfter.Add(time.Minute)))
			return p
		}(), []string{"status.notAfter: Invalid value:"}},
		{"no times", pending, func() *certificatesv1.PodCertificateRequest {
			p := issued.DeepCopy()
			p.Status.NotBefore, p.Status.NotAfter, p.Status.BeginRefreshAt = nil, nil, nil
			return p
		}(), []string{"status.notBefore: Required value", "status.notAfter: Required value", "status.beginRefreshAt: Required value"}},
		{"chain not PEM", pending, func() *certificatesv1.PodCertificateRequest {
			p := issued.DeepCopy()
			p.Status.CertificateChain = "junk"
			return p
		}(), []string{"status.certificateChain: Invalid value: issued certificate chain must contain at least one certificate"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, ValidatePodCertificateRequestStatus(tc.old, tc.next, now), tc.want) })
	}
	if err := ValidatePodCertificateRequestStatus(pending, issued, now.Add(10*time.Minute)); err == nil {
		t.Error("a notBefore ten minutes before the server's clock was accepted")
	}
}

// TestValidatePodCertificateProjection: a podCertificate source names a signer and a
// key type, a maxExpirationSeconds in range, and where to write (the bundle, or key
// and chain together), each a path inside the volume no other source writes.
func TestValidatePodCertificateProjection(t *testing.T) {
	withSources := func(srcs ...corev1.VolumeProjection) *corev1.Pod {
		return pod(func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "creds", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: srcs}}})
		})
	}
	pc := func(mut func(*corev1.PodCertificateProjection)) corev1.VolumeProjection {
		p := corev1.PodCertificateProjection{SignerName: "example.com/pods", KeyType: "ED25519", CredentialBundlePath: "bundle.pem"}
		mut(&p)
		return corev1.VolumeProjection{PodCertificate: &p}
	}
	src := field0 + "podCertificate"
	for _, tc := range []struct {
		name string
		srcs []corev1.VolumeProjection
		want []string
	}{
		{"bundle", []corev1.VolumeProjection{pc(func(*corev1.PodCertificateProjection) {})}, nil},
		{"key and chain", []corev1.VolumeProjection{pc(func(p *corev1.PodCertificateProjection) {
			p.CredentialBundlePath, p.KeyPath, p.CertificateChainPath, p.KeyType = "", "tls.key", "tls.crt", "RSA4096"
		})}, nil},
		{"nowhere", []corev1.VolumeProjection{pc(func(p *corev1.PodCertificateProjection) { p.CredentialBundlePath = "" })},
			[]string{src + ": Required value: At least one of credentialBundlePath, keyPath, and certificateChainPath must be specified"}},
		{"key alone", []corev1.VolumeProjection{pc(func(p *corev1.PodCertificateProjection) { p.KeyPath = "tls.key" })},
			[]string{src + ": Required value: keyPath and certificateChainPath must be specified together"}},
		{"no signer", []corev1.VolumeProjection{pc(func(p *corev1.PodCertificateProjection) { p.SignerName = "" })},
			[]string{src + ".signerName: Required value"}},
		{"unknown key type", []corev1.VolumeProjection{pc(func(p *corev1.PodCertificateProjection) { p.KeyType = "RSA2048" })},
			[]string{src + `.keyType: Unsupported value: "RSA2048": supported values: "RSA3072", "RSA4096", "ECDSAP256", "ECDSAP384", "ECDSAP521", "ED25519"`}},
		{"short expiration", []corev1.VolumeProjection{pc(func(p *corev1.PodCertificateProjection) { p.MaxExpirationSeconds = new(int32(60)) })},
			[]string{src + ".maxExpirationSeconds: Invalid value: 60: if provided, maxExpirationSeconds must be >= 3600"}},
		{"long expiration", []corev1.VolumeProjection{pc(func(p *corev1.PodCertificateProjection) { p.MaxExpirationSeconds = new(int32(7862401)) })},
			[]string{src + ".maxExpirationSeconds: Invalid value: 7862401: if provided, maxExpirationSeconds must be <= 7862400"}},
		{"long expiration, a kubernetes.io signer", []corev1.VolumeProjection{pc(func(p *corev1.PodCertificateProjection) {
			p.SignerName, p.MaxExpirationSeconds = "kubernetes.io/kube-apiserver-client-pod", new(int32(86401))
		})}, []string{src + ".maxExpirationSeconds: Invalid value: 86401: if provided, maxExpirationSeconds must be <= 86400"}},
		{"outside the volume", []corev1.VolumeProjection{pc(func(p *corev1.PodCertificateProjection) { p.CredentialBundlePath = "../x" })},
			[]string{src + `.credentialBundlePath: Invalid value: "../x"`}},
		{"two sources, one file", []corev1.VolumeProjection{pc(func(*corev1.PodCertificateProjection) {}), pc(func(*corev1.PodCertificateProjection) {})},
			[]string{"spec.volumes[0].projected.sources[1].podCertificate.credentialBundlePath: Invalid value"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, Validate(withSources(tc.srcs...)), tc.want) })
	}
}
