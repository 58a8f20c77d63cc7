package validation

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"net/mail"
	"slices"
	"strings"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PodCertificateRequests and podCertificate projections: Kubernetes' certificates
// validation for certificates.k8s.io/v1 (pkg/apis/certificates/validation) and core's
// check of the projection, in its words. A request's spec is fixed once made; its
// status is written once, by the signer, to one of the terminal conditions Issued,
// Denied or Failed, and never again.

// The limits Kubernetes puts on PodCertificateRequests.
const (
	// MinMaxExpirationSeconds is the least maxExpirationSeconds (an hour), and the
	// shortest certificate a signer may issue.
	MinMaxExpirationSeconds = 60 * 60
	// KubernetesMaxMaxExpirationSeconds bounds it for kubernetes.io signers (a day).
	KubernetesMaxMaxExpirationSeconds = 24 * 60 * 60
	// MaxMaxExpirationSeconds bounds it for other signers (91 days).
	MaxMaxExpirationSeconds = 91 * 24 * 60 * 60
	// DefaultMaxExpirationSeconds is what the API server sets when it is omitted.
	DefaultMaxExpirationSeconds = KubernetesMaxMaxExpirationSeconds
	// maxStubPKCS10RequestSize bounds the stub request: Kubernetes' bound on the public
	// key it replaced (10 KiB), ample for an RSA 4096 request.
	maxStubPKCS10RequestSize = 10 * 1024
	// maxCertificateChainSize bounds status.certificateChain (ten RSA 4096 certificates).
	maxCertificateChainSize = 100 * 1024
	// maxUserAnnotationsSize bounds unverifiedUserAnnotations (userAnnotations), as
	// metadata.annotations are bounded.
	maxUserAnnotationsSize = apivalidation.TotalAnnotationSizeLimitB
)

// PodCertificateKeyTypes are the key types a podCertificate projection may ask for.
var PodCertificateKeyTypes = []string{"RSA3072", "RSA4096", "ECDSAP256", "ECDSAP384", "ECDSAP521", "ED25519"}

// isKubernetesSigner tells whether signerName is reserved for the Kubernetes project.
func isKubernetesSigner(signerName string) bool {
	domain, _, _ := strings.Cut(signerName, "/")
	return domain == "kubernetes.io" || strings.HasSuffix(domain, ".kubernetes.io")
}

// validateMaxExpirationSeconds is Kubernetes' range for maxExpirationSeconds: an hour
// to a day for kubernetes.io signers, to 91 days for others.
func validateMaxExpirationSeconds(p *field.Path, signerName string, v int32) field.ErrorList {
	hi := int32(MaxMaxExpirationSeconds)
	if isKubernetesSigner(signerName) {
		hi = KubernetesMaxMaxExpirationSeconds
	}
	if v < MinMaxExpirationSeconds || v > hi {
		return field.ErrorList{field.Invalid(p, v, fmt.Sprintf("must be in the range [%d, %d]", MinMaxExpirationSeconds, hi))}
	}
	return nil
}

// validateUserAnnotations is Kubernetes' ValidateUserAnnotations: keys as metadata
// annotations' keys, each with a domain prefix; values free; the whole bounded.
func validateUserAnnotations(annotations map[string]string, p *field.Path) field.ErrorList {
	errs := apivalidation.ValidateAnnotations(annotations, p)
	total := 0
	for _, k := range slices.Sorted(maps.Keys(annotations)) {
		total += len(k) + len(annotations[k])
		if !strings.Contains(k, "/") {
			errs = append(errs, field.Invalid(p.Key(k), k, "must be prefixed with a domain (example.com/key)"))
		}
	}
	if total > maxUserAnnotationsSize {
		errs = append(errs, field.TooLong(p, "", maxUserAnnotationsSize))
	}
	return errs
}

// validatePodCertificateRequest is Kubernetes' ValidatePodCertificateRequestCreate for
// v1: a signer name, the pod, service account and node by name and uid, a
// maxExpirationSeconds in range, and a stub PKCS#10 request, signed by its key, whose
// key is one of the types a projection may ask for.
func validatePodCertificateRequest(pcr *certificatesv1.PodCertificateRequest) field.ErrorList {
	spec := field.NewPath("spec")
	s := &pcr.Spec
	errs := ValidateSignerName(spec.Child("signerName"), s.SignerName)
	if s.UnverifiedUserAnnotations != nil {
		errs = append(errs, validateUserAnnotations(s.UnverifiedUserAnnotations, spec.Child("unverifiedUserAnnotations"))...)
	}
	for _, msg := range apivalidation.NameIsDNSSubdomain(s.PodName, false) {
		errs = append(errs, field.Invalid(spec.Child("podName"), s.PodName, msg))
	}
	for _, msg := range apivalidation.NameIsDNSSubdomain(s.ServiceAccountName, false) {
		errs = append(errs, field.Invalid(spec.Child("serviceAccountName"), s.ServiceAccountName, msg))
	}
	for _, msg := range apivalidation.NameIsDNSSubdomain(string(s.NodeName), false) {
		errs = append(errs, field.Invalid(spec.Child("nodeName"), s.NodeName, msg))
	}
	for _, u := range []struct {
		name string
		uid  string
	}{{"podUID", string(s.PodUID)}, {"serviceAccountUID", string(s.ServiceAccountUID)}, {"nodeUID", string(s.NodeUID)}} {
		switch {
		case u.uid == "":
			errs = append(errs, field.Invalid(spec.Child(u.name), u.uid, "must not be empty"))
		case len(u.uid) > 128:
			errs = append(errs, field.TooLong(spec.Child(u.name), u.uid, 128))
		}
	}
	if s.MaxExpirationSeconds == nil {
		return append(errs, field.Required(spec.Child("maxExpirationSeconds"), "must be set"))
	}
	errs = append(errs, validateMaxExpirationSeconds(spec.Child("maxExpirationSeconds"), s.SignerName, *s.MaxExpirationSeconds)...)
	return append(errs, validateStubPKCS10Request(spec.Child("stubPKCS10Request"), s.StubPKCS10Request)...)
}

// validateStubPKCS10Request checks the request the kubelet made with the pod's key: a
// DER PKCS#10 request whose signature verifies (the proof that the requester holds
// the key) and whose key is RSA 3072 or 4096, ECDSA P-256, P-384 or P-521, or Ed25519.
func validateStubPKCS10Request(p *field.Path, der []byte) field.ErrorList {
	if len(der) == 0 {
		return field.ErrorList{field.Required(p, "")}
	}
	if len(der) > maxStubPKCS10RequestSize {
		return field.ErrorList{field.TooLong(p, "", maxStubPKCS10RequestSize)}
	}
	req, err := x509.ParseCertificateRequest(der)
	if err != nil {
		return field.ErrorList{field.Invalid(p, field.OmitValueType{}, "must be a valid DER-encoded PKCS#10 certificate request")}
	}
	if err := req.CheckSignature(); err != nil {
		return field.ErrorList{field.Invalid(p, field.OmitValueType{}, "could not verify the request's signature")}
	}
	switch pub := req.PublicKey.(type) {
	case ed25519.PublicKey:
	case *ecdsa.PublicKey:
		if c := pub.Curve; c != elliptic.P256() && c != elliptic.P384() && c != elliptic.P521() {
			return field.ErrorList{field.Invalid(p, "curve "+c.Params().Name, "elliptic public keys must use curve P256, P384 or P521")}
		}
	case *rsa.PublicKey:
		if bits := pub.Size() * 8; bits != 3072 && bits != 4096 {
			return field.ErrorList{field.Invalid(p, fmt.Sprintf("%d-bit modulus", bits), "RSA keys must have modulus size 3072 or 4096")}
		}
	default:
		return field.ErrorList{field.Invalid(p, field.OmitValueType{}, "unknown public key type; supported types are Ed25519, ECDSA, and RSA")}
	}
	return nil
}

// validatePodCertificateRequestUpdate is Kubernetes' ValidatePodCertificateRequestUpdate:
// every spec field is immutable.
func validatePodCertificateRequestUpdate(old, pcr *certificatesv1.PodCertificateRequest) field.ErrorList {
	if equality.Semantic.DeepEqual(old.Spec, pcr.Spec) {
		return nil
	}
	return field.ErrorList{field.Invalid(field.NewPath("spec"), field.OmitValueType{}, "field is immutable")}
}

// The terminal conditions of a PodCertificateRequest.
var pcrTerminal = []string{
	certificatesv1.PodCertificateRequestConditionTypeIssued,
	certificatesv1.PodCertificateRequestConditionTypeDenied,
	certificatesv1.PodCertificateRequestConditionTypeFailed,
}

// PodCertificateRequestHas tells whether pcr has condition typ with status True.
func PodCertificateRequestHas(pcr *certificatesv1.PodCertificateRequest, typ string) bool {
	return slices.ContainsFunc(pcr.Status.Conditions, func(c metav1.Condition) bool {
		return c.Type == typ && c.Status == metav1.ConditionTrue
	})
}

func pcrDone(pcr *certificatesv1.PodCertificateRequest) bool {
	return slices.ContainsFunc(pcrTerminal, func(t string) bool { return PodCertificateRequestHas(pcr, t) })
}

// ValidatePodCertificateRequestStatus is Kubernetes'
// ValidatePodCertificateRequestStatusUpdate: at most one of the conditions Issued,
// Denied and Failed, True, and no other; a request so ended keeps its status for good;
// a Denied or Failed one has conditions alone; an Issued one a chain of certificates
// whose leaf was issued to the request's key, for at least an hour and at most
// maxExpirationSeconds, with notBefore (within five minutes of now) and notAfter the
// leaf's, and beginRefreshAt at least ten minutes inside both. Short of those, the
// status may not change.
func ValidatePodCertificateRequestStatus(old, pcr *certificatesv1.PodCertificateRequest, now time.Time) error {
	return asError(validatePodCertificateRequestStatus(old, pcr, now))
}

func validatePodCertificateRequestStatus(old, pcr *certificatesv1.PodCertificateRequest, now time.Time) field.ErrorList {
	st := field.NewPath("status")
	conds := st.Child("conditions")
	var errs field.ErrorList
	terminal := 0
	for i, c := range pcr.Status.Conditions {
		if !slices.Contains(pcrTerminal, c.Type) {
			errs = append(errs, field.NotSupported(conds.Index(i).Child("type"), c.Type, pcrTerminal))
			continue
		}
		if terminal++; terminal > 1 {
			errs = append(errs, field.Invalid(conds.Index(i).Child("type"), c.Type, `There may be at most one condition with type "Issued", "Denied", or "Failed"`))
		}
		if c.Status != metav1.ConditionTrue {
			errs = append(errs, field.NotSupported(conds.Index(i).Child("status"), c.Status, []metav1.ConditionStatus{metav1.ConditionTrue}))
		}
	}
	errs = append(errs, metav1validation.ValidateConditions(pcr.Status.Conditions, conds)...)
	if len(errs) > 0 {
		return errs
	}
	same := func(want certificatesv1.PodCertificateRequestStatus, detail string) field.ErrorList {
		if equality.Semantic.DeepEqual(pcr.Status, want) {
			return nil
		}
		return field.ErrorList{field.Invalid(st, field.OmitValueType{}, detail)}
	}
	switch {
	case pcrDone(old):
		return same(old.Status, "immutable after PodCertificateRequest is issued, denied, or failed")
	case PodCertificateRequestHas(pcr, certificatesv1.PodCertificateRequestConditionTypeDenied),
		PodCertificateRequestHas(pcr, certificatesv1.PodCertificateRequestConditionTypeFailed):
		return same(certificatesv1.PodCertificateRequestStatus{Conditions: pcr.Status.Conditions},
			"non-condition status fields must be empty when denying or failing the PodCertificateRequest")
	case PodCertificateRequestHas(pcr, certificatesv1.PodCertificateRequestConditionTypeIssued):
		return validateIssued(old, pcr, now)
	}
	return same(old.Status, `status is immutable unless transitioning to "Issued", "Denied", or "Failed"`)
}

// validateIssued checks an Issued request's chain and times against its spec.
func validateIssued(old, pcr *certificatesv1.PodCertificateRequest, now time.Time) field.ErrorList {
	st := &pcr.Status
	chainPath := field.NewPath("status", "certificateChain")
	notBeforePath, notAfterPath := field.NewPath("status", "notBefore"), field.NewPath("status", "notAfter")
	refreshPath := field.NewPath("status", "beginRefreshAt")
	invalid := func(p *field.Path, v any, msg string) field.ErrorList {
		return field.ErrorList{field.Invalid(p, v, msg)}
	}
	if len(st.CertificateChain) > maxCertificateChainSize {
		return field.ErrorList{field.TooLong(chainPath, "", maxCertificateChainSize)}
	}
	leafBlock, rest := pem.Decode([]byte(st.CertificateChain))
	switch {
	case leafBlock == nil:
		return invalid(chainPath, field.OmitValueType{}, "issued certificate chain must contain at least one certificate")
	case leafBlock.Type != "CERTIFICATE":
		return invalid(chainPath, field.OmitValueType{}, "issued certificate chain must consist entirely of CERTIFICATE PEM blocks")
	}
	leaf, err := x509.ParseCertificate(leafBlock.Bytes)
	if err != nil {
		return invalid(chainPath, field.OmitValueType{}, "leaf certificate does not parse as valid X.509")
	}
	var errs field.ErrorList
	for _, name := range leaf.DNSNames {
		switch {
		case name == "":
			errs = append(errs, field.Invalid(chainPath, name, "leaf certificate should not contain empty DNSName"))
		case strings.Contains(name, ".."):
			errs = append(errs, field.Invalid(chainPath, name, "leaf certificate's DNSName should not contain '..'"))
		case strings.HasPrefix(name, ".") || strings.HasSuffix(name, "."):
			errs = append(errs, field.Invalid(chainPath, name, "leaf certificate's DNSName should not start or end with '.'"))
		}
	}
	for _, addr := range leaf.EmailAddresses {
		if _, err := mail.ParseAddress(addr); err != nil {
			errs = append(errs, field.Invalid(chainPath, addr, "leaf certificate should not contain invalid EmailAddress"))
		}
	}
	if len(errs) > 0 {
		return errs
	}
	req, err := x509.ParseCertificateRequest(old.Spec.StubPKCS10Request)
	if err != nil {
		return invalid(field.NewPath("spec", "stubPKCS10Request"), field.OmitValueType{}, "must be a valid DER-encoded PKCS#10 certificate request")
	}
	if k, ok := req.PublicKey.(interface{ Equal(crypto.PublicKey) bool }); !ok || !k.Equal(leaf.PublicKey) {
		return invalid(chainPath, field.OmitValueType{}, "leaf certificate was not issued to the requested public key")
	}
	if st.NotBefore == nil {
		errs = append(errs, field.Required(notBeforePath, "must be present and consistent with the issued certificate"))
	}
	if st.NotAfter == nil {
		errs = append(errs, field.Required(notAfterPath, "must be present and consistent with the issued certificate"))
	}
	if st.BeginRefreshAt == nil {
		errs = append(errs, field.Required(refreshPath, "must be present and in the range [notbefore+10min, notafter-10min]"))
	}
	if len(errs) > 0 {
		return errs
	}
	switch life := leaf.NotAfter.Sub(leaf.NotBefore); {
	case !st.NotBefore.Time.Equal(leaf.NotBefore):
		return invalid(notBeforePath, st.NotBefore.Time, "must be set to the NotBefore time encoded in the leaf certificate")
	case st.NotBefore.Time.Before(now.Add(-5*time.Minute)) || st.NotBefore.Time.After(now.Add(5*time.Minute)):
		return invalid(notBeforePath, st.NotBefore.Time, "must be set to within 5 minutes of kube-apiserver's current time")
	case !st.NotAfter.Time.Equal(leaf.NotAfter):
		return invalid(notAfterPath, st.NotAfter.Time, "must be set to the NotAfter time encoded in the leaf certificate")
	case life < time.Hour:
		return invalid(chainPath, life.String(), "leaf certificate lifetime must be >= 1 hour")
	case old.Spec.MaxExpirationSeconds != nil && life > time.Duration(*old.Spec.MaxExpirationSeconds)*time.Second:
		return invalid(chainPath, life.String(), fmt.Sprintf("leaf certificate lifetime must be <= spec.maxExpirationSeconds (%v)", *old.Spec.MaxExpirationSeconds))
	case st.BeginRefreshAt.Time.Before(st.NotBefore.Time.Add(10 * time.Minute)):
		return invalid(refreshPath, st.BeginRefreshAt.Time, "must be at least 10 minutes after status.notBefore")
	case st.BeginRefreshAt.Time.After(st.NotAfter.Time.Add(-10 * time.Minute)):
		return invalid(refreshPath, st.BeginRefreshAt.Time, "must be at least 10 minutes before status.notAfter")
	}
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			return nil
		}
		if b.Type != "CERTIFICATE" {
			return invalid(chainPath, field.OmitValueType{}, "issued certificate chain must consist entirely of CERTIFICATE PEM blocks")
		}
		if _, err := x509.ParseCertificate(b.Bytes); err != nil {
			return invalid(chainPath, field.OmitValueType{}, "intermediate certificate does not parse as valid X.509")
		}
	}
}

// validatePodCertificateProjection is Kubernetes' check of a podCertificate projected
// source: a signer name, a key type, a maxExpirationSeconds in range, user annotations
// as a request's, and where to write: the credential bundle, or the key and the chain
// (both or neither), each a path inside the volume. addPath records each path, for the
// volume's check that no two sources write the same file.
func validatePodCertificateProjection(pc *corev1.PodCertificateProjection, p *field.Path, addPath func(string, *field.Path)) field.ErrorList {
	errs := ValidateSignerName(p.Child("signerName"), pc.SignerName)
	if !slices.Contains(PodCertificateKeyTypes, pc.KeyType) {
		errs = append(errs, field.NotSupported(p.Child("keyType"), pc.KeyType, PodCertificateKeyTypes))
	}
	if v := pc.MaxExpirationSeconds; v != nil {
		// The same range as a request's, in the words Kubernetes' pod validation has.
		hi := int32(MaxMaxExpirationSeconds)
		if isKubernetesSigner(pc.SignerName) {
			hi = KubernetesMaxMaxExpirationSeconds
		}
		if *v < MinMaxExpirationSeconds {
			errs = append(errs, field.Invalid(p.Child("maxExpirationSeconds"), *v, fmt.Sprintf("if provided, maxExpirationSeconds must be >= %d", MinMaxExpirationSeconds)))
		}
		if *v > hi {
			errs = append(errs, field.Invalid(p.Child("maxExpirationSeconds"), *v, fmt.Sprintf("if provided, maxExpirationSeconds must be <= %d", hi)))
		}
	}
	if pc.UserAnnotations != nil {
		errs = append(errs, validateUserAnnotations(pc.UserAnnotations, p.Child("userAnnotations"))...)
	}
	if pc.CredentialBundlePath == "" && pc.KeyPath == "" && pc.CertificateChainPath == "" {
		errs = append(errs, field.Required(p, "At least one of credentialBundlePath, keyPath, and certificateChainPath must be specified"))
	}
	if (pc.KeyPath == "") != (pc.CertificateChainPath == "") {
		errs = append(errs, field.Required(p, "keyPath and certificateChainPath must be specified together"))
	}
	for _, f := range []struct{ name, path string }{
		{"credentialBundlePath", pc.CredentialBundlePath}, {"keyPath", pc.KeyPath}, {"certificateChainPath", pc.CertificateChainPath},
	} {
		if f.path == "" {
			continue
		}
		fp := p.Child(f.name)
		errs = append(errs, validateLocalNonReservedPath(f.path, fp)...)
		addPath(f.path, fp)
	}
	return errs
}
