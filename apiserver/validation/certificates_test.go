package validation

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/pki"
)

func csrRequest(t *testing.T) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "jane"}}, key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der})
}

func newCSR(req []byte, mut func(*certificatesv1.CertificateSigningRequest)) *certificatesv1.CertificateSigningRequest {
	csr := &certificatesv1.CertificateSigningRequest{ObjectMeta: metav1.ObjectMeta{Name: "jane:client"},
		Spec: certificatesv1.CertificateSigningRequestSpec{Request: req, SignerName: certificatesv1.KubeAPIServerClientSignerName,
			Usages: []certificatesv1.KeyUsage{certificatesv1.UsageClientAuth}}}
	if mut != nil {
		mut(csr)
	}
	return csr
}

func approvedCond(t certificatesv1.RequestConditionType) certificatesv1.CertificateSigningRequestCondition {
	return certificatesv1.CertificateSigningRequestCondition{Type: t, Status: corev1.ConditionTrue}
}

// TestValidateCSR: Kubernetes' rules for a request, in its words.
func TestValidateCSR(t *testing.T) {
	req := csrRequest(t)
	for _, tc := range []struct {
		name string
		mut  func(*certificatesv1.CertificateSigningRequest)
		want []string
	}{
		{"valid, any name", nil, nil},
		{"not PEM", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Request = []byte("hello") },
			[]string{"spec.request: Invalid value:"}},
		{"no usages", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.Usages = nil }, []string{"spec.usages: Required value"}},
		{"unknown and duplicate usages", func(c *certificatesv1.CertificateSigningRequest) {
			c.Spec.Usages = []certificatesv1.KeyUsage{"client auth", "flying", "client auth"}
		}, []string{`spec.usages[1]: Unsupported value: "flying"`, `spec.usages[2]: Duplicate value: "client auth"`}},
		{"no signer", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "" }, []string{"spec.signerName: Required value"}},
		{"signer without path", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example.com" },
			[]string{`spec.signerName: Invalid value: "example.com": must be a fully qualified domain and path of the form 'example.com/signer-name'`}},
		{"signer of one label", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "example/signer" },
			[]string{`spec.signerName: Invalid value: "example": should be a domain with at least two segments separated by dots`}},
		{"legacy signer", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.SignerName = "kubernetes.io/legacy-unknown" },
			[]string{`spec.signerName: Invalid value: "kubernetes.io/legacy-unknown": the legacy signerName is not allowed via this API version`}},
		{"short expiration", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.ExpirationSeconds = new(int32(599)) },
			[]string{"spec.expirationSeconds: Invalid value: 599: may not specify a duration less than 600 seconds (10 minutes)"}},
		{"ten minutes", func(c *certificatesv1.CertificateSigningRequest) { c.Spec.ExpirationSeconds = new(int32(600)) }, nil},
		{"approved and denied", func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approvedCond("Approved"), approvedCond("Denied")}
		}, []string{`status.conditions: Invalid value: "Denied": Approved and Denied conditions are mutually exclusive`}},
		{"approved false", func(c *certificatesv1.CertificateSigningRequest) {
			c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{{Type: "Approved", Status: corev1.ConditionFalse}}
		}, []string{`status.conditions[0].status: Unsupported value: "False": supported values: "True"`}},
		{"certificate not PEM", func(c *certificatesv1.CertificateSigningRequest) { c.Status.Certificate = []byte("junk") },
			[]string{"status.certificate: Invalid value: \"<certificate data>\": must contain at least one CERTIFICATE PEM block"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, Validate(newCSR(req, tc.mut)), tc.want) })
	}
}

// TestValidateCSRWrite: the approval subresource alone approves or denies, the status
// subresource alone writes the certificate, once; no condition is removed.
func TestValidateCSRWrite(t *testing.T) {
	req := csrRequest(t)
	ca, err := pki.NewCA("test", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	pending := newCSR(req, nil)
	approved := newCSR(req, func(c *certificatesv1.CertificateSigningRequest) {
		c.Status.Conditions = []certificatesv1.CertificateSigningRequestCondition{approvedCond("Approved")}
	})
	issued := approved.DeepCopy()
	issued.Status.Certificate = ca.CertPEM()
	checkErrors(t, ValidateCSRWrite(pending, approved, CSRApproval), nil)
	checkErrors(t, ValidateCSRWrite(pending, approved, CSRStatus), []string{`status.conditions: Forbidden: updates may not add a condition of type "Approved"`})
	checkErrors(t, ValidateCSRWrite(approved, pending, CSRApproval), []string{`status.conditions: Forbidden: updates may not remove a condition of type "Approved"`})
	checkErrors(t, ValidateCSRWrite(approved, issued, CSRStatus), nil)
	checkErrors(t, ValidateCSRWrite(approved, issued, CSRApproval), []string{"status.certificate: Forbidden: updates may not set certificate content"})
	reissued := issued.DeepCopy()
	reissued.Status.Certificate = append(ca.CertPEM(), ca.CertPEM()...)
	checkErrors(t, ValidateCSRWrite(issued, reissued, CSRStatus), []string{"status.certificate: Forbidden: updates may not modify existing certificate content"})
}

// TestValidateClusterTrustBundle: a bundle of CA certificates without duplicates; a
// signer's bundle is named with its prefix; the signer name is fixed.
func TestValidateClusterTrustBundle(t *testing.T) {
	ca1, err := pki.NewCA("one", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	ca2, err := pki.NewCA("two", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := ca1.Issue(pki.Request{CommonName: "leaf", Client: true})
	if err != nil {
		t.Fatal(err)
	}
	ctb := func(name, signer string, pems ...[]byte) *certificatesv1.ClusterTrustBundle {
		var b strings.Builder
		for _, p := range pems {
			b.Write(p)
		}
		return &certificatesv1.ClusterTrustBundle{ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: certificatesv1.ClusterTrustBundleSpec{SignerName: signer, TrustBundle: b.String()}}
	}
	for _, tc := range []struct {
		name string
		obj  *certificatesv1.ClusterTrustBundle
		want []string
	}{
		{"two CAs", ctb("roots", "", ca1.CertPEM(), ca2.CertPEM()), nil},
		{"a signer's", ctb("example.com:signer:roots", "example.com/signer", ca1.CertPEM()), nil},
		{"a signer's without its prefix", ctb("roots", "example.com/signer", ca1.CertPEM()),
			[]string{`metadata.name: Invalid value: "roots": ClusterTrustBundle for signerName example.com/signer must be named with prefix example.com:signer:`}},
		{"colon without signer", ctb("a:b", "", ca1.CertPEM()),
			[]string{`metadata.name: Invalid value: "a:b": ClusterTrustBundle without signer name must not have ":" in its name`}},
		{"empty", ctb("roots", ""), []string{`spec.trustBundle: Invalid value: "<value omitted>": at least one trust anchor must be provided`}},
		{"a leaf", ctb("roots", "", leaf.CertPEM), []string{`spec.trustBundle: Invalid value: "<value omitted>": entry 0 does not have the CA bit set`}},
		{"duplicate", ctb("roots", "", ca1.CertPEM(), ca1.CertPEM()), []string{`spec.trustBundle: Invalid value: "<value omitted>": duplicate trust anchor (indices [0 1])`}},
		{"a key", ctb("roots", "", leaf.KeyPEM), []string{`spec.trustBundle: Invalid value: "<value omitted>": entry 0 has bad block type`}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, Validate(tc.obj), tc.want) })
	}
	old := ctb("example.com:signer:roots", "example.com/signer", ca1.CertPEM())
	checkErrors(t, ValidateUpdate(old, ctb("example.com:signer:roots", "example.com/other", ca1.CertPEM())),
		[]string{"spec.signerName: Invalid value: \"example.com/other\": field is immutable",
			`metadata.name: Invalid value: "example.com:signer:roots": ClusterTrustBundle for signerName example.com/other must be named with prefix example.com:other:`})
	checkErrors(t, ValidateUpdate(old, ctb("example.com:signer:roots", "example.com/signer", ca2.CertPEM())), nil)
}

// TestValidateClusterTrustBundleProjection: a bundle by name (a valid bundle name, no
// selector) or by signer name, and a path; the source is supported.
func TestValidateClusterTrustBundleProjection(t *testing.T) {
	withSource := func(b corev1.ClusterTrustBundleProjection) *corev1.Pod {
		return pod(func(p *corev1.Pod) {
			p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: "trust", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				Sources: []corev1.VolumeProjection{{ClusterTrustBundle: &b}}}}})
		})
	}
	signer := "example.com/signer"
	src := field0 + "clusterTrustBundle"
	for _, tc := range []struct {
		name string
		src  corev1.ClusterTrustBundleProjection
		want []string
	}{
		{"by name", corev1.ClusterTrustBundleProjection{Name: new("example.com:signer:roots"), Path: "ca.pem"}, nil},
		{"by signer", corev1.ClusterTrustBundleProjection{SignerName: &signer, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"a": "b"}}, Path: "ca.pem"}, nil},
		{"neither", corev1.ClusterTrustBundleProjection{Path: "ca.pem"}, []string{src + ": Required value: either name or signerName must be specified"}},
		{"both", corev1.ClusterTrustBundleProjection{Name: new("roots"), SignerName: &signer, Path: "ca.pem"}, []string{src + ": Invalid value"}},
		{"name and selector", corev1.ClusterTrustBundleProjection{Name: new("roots"), LabelSelector: &metav1.LabelSelector{}, Path: "ca.pem"},
			[]string{src + ".labelSelector: Invalid value"}},
		{"bad signer", corev1.ClusterTrustBundleProjection{SignerName: new("signer"), Path: "ca.pem"},
			[]string{src + `.signerName: Invalid value: "signer": must be a fully qualified domain and path of the form 'example.com/signer-name'`}},
		{"no path", corev1.ClusterTrustBundleProjection{Name: new("roots")}, []string{src + ".path: Required value"}},
	} {
		t.Run(tc.name, func(t *testing.T) { checkErrors(t, Validate(withSource(tc.src)), tc.want) })
	}
}

const field0 = "spec.volumes[0].projected.sources[0]."
