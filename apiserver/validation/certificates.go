package validation

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"slices"
	"strings"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/pki"
)

// CertificateSigningRequests and ClusterTrustBundles: Kubernetes' certificates
// validation (pkg/apis/certificates/validation, and core's ValidateSignerName), in its
// words. A request's approval (Approved, Denied) is written through the approval
// subresource alone, its certificate through the status subresource alone: Update
// refuses both, UpdateStatus the approval, Approve the certificate (CSRWrite says which).

// CSRWrite is the path a CertificateSigningRequest is written by.
type CSRWrite int

const (
	CSRUpdate   CSRWrite = iota // the object itself: neither approval nor certificate
	CSRStatus                   // the status subresource: the certificate, the Failed condition
	CSRApproval                 // the approval subresource: the Approved and Denied conditions
)

// legacyUnknownSignerName is v1beta1's default signer, which v1 refuses.
const legacyUnknownSignerName = "kubernetes.io/legacy-unknown"

// validUsages are Kubernetes' key usages.
var validUsages = []string{
	"any", "cert sign", "client auth", "code signing", "content commitment", "crl sign", "data encipherment",
	"decipher only", "digital signature", "email protection", "encipher only", "ipsec end system", "ipsec tunnel",
	"ipsec user", "key agreement", "key encipherment", "microsoft sgc", "netscape sgc", "ocsp signing", "s/mime",
	"signing", "server auth", "timestamping",
}

// validateCertificateChain is Kubernetes' check of status.certificate: CERTIFICATE PEM
// blocks without headers, each parsing, at least one (empty is no certificate yet).
func validateCertificateChain(data []byte) error {
	if len(data) == 0 {
		return nil
	}
	blocks := 0
	for {
		block, rest := pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			return fmt.Errorf("only CERTIFICATE PEM blocks are allowed, found %q", block.Type)
		}
		if len(block.Headers) != 0 {
			return fmt.Errorf("no PEM block headers are permitted")
		}
		blocks++
		certs, err := x509.ParseCertificates(block.Bytes)
		if err != nil {
			return err
		}
		if len(certs) == 0 {
			return fmt.Errorf("found CERTIFICATE PEM block containing 0 certificates")
		}
		data = rest
	}
	if blocks == 0 {
		return fmt.Errorf("must contain at least one CERTIFICATE PEM block")
	}
	return nil
}

// validateCSR is Kubernetes' validateCertificateSigningRequest for the v1 API: a
// signed PEM request, usages, a signer name, expirationSeconds of ten minutes or more,
// conditions, a certificate that parses. old (nil on create) tolerates what it
// already had (unknown or duplicate usages, duplicate condition types, both Approved
// and Denied, an unparsable certificate left unchanged), as Kubernetes does.
func validateCSR(csr, old *certificatesv1.CertificateSigningRequest) field.ErrorList {
	var errs field.ErrorList
	spec := field.NewPath("spec")
	if _, err := pki.ParseCSR(csr.Spec.Request); err != nil {
		errs = append(errs, field.Invalid(spec.Child("request"), csr.Spec.Request, err.Error()))
	}
	if len(csr.Spec.Usages) == 0 {
		errs = append(errs, field.Required(spec.Child("usages"), ""))
	}
	unknownOK := old != nil && slices.ContainsFunc(old.Spec.Usages, func(u certificatesv1.KeyUsage) bool { return !slices.Contains(validUsages, string(u)) })
	dupOK := old != nil && hasDuplicate(old.Spec.Usages)
	seen := map[certificatesv1.KeyUsage]bool{}
	for i, u := range csr.Spec.Usages {
		if !unknownOK && !slices.Contains(validUsages, string(u)) {
			errs = append(errs, field.NotSupported(spec.Child("usages").Index(i), u, validUsages))
		}
		if !dupOK && seen[u] {
			errs = append(errs, field.Duplicate(spec.Child("usages").Index(i), u))
		}
		seen[u] = true
	}
	if csr.Spec.SignerName == legacyUnknownSignerName && (old == nil || old.Spec.SignerName != csr.Spec.SignerName) {
		errs = append(errs, field.Invalid(spec.Child("signerName"), csr.Spec.SignerName, "the legacy signerName is not allowed via this API version"))
	} else {
		errs = append(errs, ValidateSignerName(spec.Child("signerName"), csr.Spec.SignerName)...)
	}
	if csr.Spec.ExpirationSeconds != nil && *csr.Spec.ExpirationSeconds < 600 {
		errs = append(errs, field.Invalid(spec.Child("expirationSeconds"), *csr.Spec.ExpirationSeconds, "may not specify a duration less than 600 seconds (10 minutes)"))
	}
	errs = append(errs, validateCSRConditions(csr, old)...)
	arbitraryOK := old != nil && (bytes.Equal(csr.Status.Certificate, old.Status.Certificate) || validateCertificateChain(old.Status.Certificate) != nil)
	if !arbitraryOK {
		if err := validateCertificateChain(csr.Status.Certificate); err != nil {
			errs = append(errs, field.Invalid(field.NewPath("status", "certificate"), "<certificate data>", err.Error()))
		}
	}
	return errs
}

func hasDuplicate[T comparable](xs []T) bool {
	seen := map[T]bool{}
	for _, x := range xs {
		if seen[x] {
			return true
		}
		seen[x] = true
	}
	return false
}

func conditionTypes(csr *certificatesv1.CertificateSigningRequest) []certificatesv1.RequestConditionType {
	var out []certificatesv1.RequestConditionType
	for _, c := range csr.Status.Conditions {
		out = append(out, c.Type)
	}
	return out
}

// validateCSRConditions is Kubernetes' validateConditions.
func validateCSRConditions(csr, old *certificatesv1.CertificateSigningRequest) field.ErrorList {
	var errs field.ErrorList
	p := field.NewPath("status", "conditions")
	emptyOK := old != nil && slices.Contains(conditionTypes(old), "")
	dupOK := old != nil && hasDuplicate(conditionTypes(old))
	bothOK := old != nil && slices.Contains(conditionTypes(old), certificatesv1.CertificateApproved) &&
		slices.Contains(conditionTypes(old), certificatesv1.CertificateDenied)
	seen := map[certificatesv1.RequestConditionType]bool{}
	approved, denied := false, false
	for i, c := range csr.Status.Conditions {
		if !emptyOK && c.Type == "" {
			errs = append(errs, field.Required(p.Index(i).Child("type"), ""))
		}
		allowed := []string{string(corev1.ConditionFalse), string(corev1.ConditionTrue), string(corev1.ConditionUnknown)}
		switch c.Type {
		case certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed:
			allowed = []string{string(corev1.ConditionTrue)}
		}
		switch {
		case c.Status == "":
			errs = append(errs, field.Required(p.Index(i).Child("status"), ""))
		case !slices.Contains(allowed, string(c.Status)):
			errs = append(errs, field.NotSupported(p.Index(i).Child("status"), c.Status, allowed))
		}
		if !bothOK {
			switch c.Type {
			case certificatesv1.CertificateApproved:
				approved = true
				if denied {
					errs = append(errs, field.Invalid(p, c.Type, "Approved and Denied conditions are mutually exclusive"))
				}
			case certificatesv1.CertificateDenied:
				denied = true
				if approved {
					errs = append(errs, field.Invalid(p, c.Type, "Approved and Denied conditions are mutually exclusive"))
				}
			}
		}
		if !dupOK && seen[c.Type] {
			errs = append(errs, field.Duplicate(p.Index(i).Child("type"), c.Type))
		}
		seen[c.Type] = true
	}
	return errs
}

func findCSRConditions(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) []certificatesv1.CertificateSigningRequestCondition {
	var out []certificatesv1.CertificateSigningRequestCondition
	for _, c := range csr.Status.Conditions {
		if c.Type == t {
			out = append(out, c)
		}
	}
	return out
}

// ValidateCSRWrite is Kubernetes' validateCertificateSigningRequestUpdate for a write by
// path how: no Approved, Denied or Failed condition removed; the approval conditions
// changed only by the approval subresource; the certificate set only by the status
// subresource, and never changed once set.
func ValidateCSRWrite(old, csr *certificatesv1.CertificateSigningRequest, how CSRWrite) error {
	errs := append(validateCSR(csr, old), validateCSRUpdate(old, csr, how)...)
	return asError(append(errs, checkSupported(csr, true)...))
}

// validateCSRUpdate is what ValidateCSRWrite checks beyond a created request's rules.
func validateCSRUpdate(old, csr *certificatesv1.CertificateSigningRequest, how CSRWrite) field.ErrorList {
	var errs field.ErrorList
	conds := field.NewPath("status", "conditions")
	for _, t := range []certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateDenied, certificatesv1.CertificateFailed} {
		if len(findCSRConditions(csr, t)) < len(findCSRConditions(old, t)) {
			errs = append(errs, field.Forbidden(conds, fmt.Sprintf("updates may not remove a condition of type %q", t)))
		}
	}
	if how != CSRApproval {
		for _, t := range []certificatesv1.RequestConditionType{certificatesv1.CertificateApproved, certificatesv1.CertificateDenied} {
			oldc, newc := findCSRConditions(old, t), findCSRConditions(csr, t)
			switch {
			case len(newc) < len(oldc):
			case len(newc) > len(oldc):
				errs = append(errs, field.Forbidden(conds, fmt.Sprintf("updates may not add a condition of type %q", t)))
			case !equality.Semantic.DeepEqual(oldc, newc):
				errs = append(errs, field.Forbidden(conds, fmt.Sprintf("updates may not modify a condition of type %q", t)))
			}
		}
	}
	if !bytes.Equal(csr.Status.Certificate, old.Status.Certificate) {
		cert := field.NewPath("status", "certificate")
		switch {
		case how != CSRStatus:
			errs = append(errs, field.Forbidden(cert, "updates may not set certificate content"))
		case len(old.Status.Certificate) > 0:
			errs = append(errs, field.Forbidden(cert, "updates may not modify existing certificate content"))
		}
	}
	return errs
}

// ValidateSignerName is Kubernetes' ValidateSignerName: a signer name is a domain of at
// least two DNS labels, a slash and a path of DNS subdomains ("example.com/signer-name").
func ValidateSignerName(p *field.Path, signerName string) field.ErrorList {
	if signerName == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	segments := strings.Split(signerName, "/")
	if len(segments) != 2 {
		return field.ErrorList{field.Invalid(p, signerName, "must be a fully qualified domain and path of the form 'example.com/signer-name'")}
	}
	var errs field.ErrorList
	maxDomain := validation.DNS1123SubdomainMaxLength
	if len(segments[0]) > maxDomain {
		errs = append(errs, field.TooLong(p, "", maxDomain))
	}
	domainLabels := strings.Split(segments[0], ".")
	for _, lbl := range domainLabels {
		if msgs := validation.IsDNS1123Label(lbl); len(msgs) > 0 {
			for _, m := range msgs {
				errs = append(errs, field.Invalid(p, segments[0], fmt.Sprintf("validating label %q: %s", lbl, m)))
			}
			break
		}
	}
	if len(domainLabels) < 2 {
		errs = append(errs, field.Invalid(p, segments[0], "should be a domain with at least two segments separated by dots"))
	}
	for _, lbl := range strings.Split(segments[1], ".") {
		if msgs := validation.IsDNS1123Subdomain(lbl); len(msgs) > 0 {
			for _, m := range msgs {
				errs = append(errs, field.Invalid(p, segments[1], fmt.Sprintf("validating label %q: %s", lbl, m)))
			}
			break
		}
	}
	maxSigner := maxDomain + validation.DNS1123SubdomainMaxLength + validation.DNS1123LabelMaxLength + 1 + 1
	if len(signerName) > maxSigner {
		errs = append(errs, field.TooLong(p, "", maxSigner))
	}
	return errs
}

// MaxTrustBundleSize is Kubernetes' limit on a ClusterTrustBundle's trustBundle.
const MaxTrustBundleSize = 1 * 1024 * 1024

// validateClusterTrustBundle is Kubernetes' ValidateClusterTrustBundle: a bundle of a
// signer is named with the signer's prefix (example.com:signer:), its signer name is
// valid, its bundle is CA certificates. (The signer name is immutable: validateUpdate.)
func validateClusterTrustBundle(ctb *certificatesv1.ClusterTrustBundle) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range clusterTrustBundleName(ctb.Spec.SignerName)(ctb.Name, false) {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), ctb.Name, msg))
	}
	if ctb.Spec.SignerName != "" {
		errs = append(errs, ValidateSignerName(field.NewPath("spec", "signerName"), ctb.Spec.SignerName)...)
	}
	return append(errs, validateTrustBundle(field.NewPath("spec", "trustBundle"), ctb.Spec.TrustBundle)...)
}

// clusterTrustBundleName is Kubernetes' ValidateClusterTrustBundleName.
func clusterTrustBundleName(signerName string) apivalidation.ValidateNameFunc {
	return func(name string, prefix bool) []string {
		if signerName == "" {
			if strings.Contains(name, ":") {
				return []string{"ClusterTrustBundle without signer name must not have \":\" in its name"}
			}
			return apivalidation.NameIsDNSSubdomain(name, prefix)
		}
		required := strings.ReplaceAll(signerName, "/", ":") + ":"
		if !strings.HasPrefix(name, required) {
			return []string{fmt.Sprintf("ClusterTrustBundle for signerName %s must be named with prefix %s", signerName, required)}
		}
		return apivalidation.NameIsDNSSubdomain(strings.TrimPrefix(name, required), prefix)
	}
}

// validateTrustBundle is Kubernetes' validateTrustBundle: CERTIFICATE blocks without
// headers, each an X.509 CA certificate, no duplicates, at least one.
func validateTrustBundle(p *field.Path, in string) field.ErrorList {
	if len(in) > MaxTrustBundleSize {
		return field.ErrorList{field.TooLong(p, "", MaxTrustBundleSize)}
	}
	var errs field.ErrorList
	dedupe := map[string][]int{}
	var order []string
	rest := []byte(in)
	for i := 0; ; i++ {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			errs = append(errs, field.Invalid(p, "<value omitted>", fmt.Sprintf("entry %d has bad block type: %v", i, b.Type)))
			continue
		}
		if len(b.Headers) != 0 {
			errs = append(errs, field.Invalid(p, "<value omitted>", fmt.Sprintf("entry %d has PEM block headers", i)))
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		switch {
		case err != nil:
			errs = append(errs, field.Invalid(p, "<value omitted>", fmt.Sprintf("entry %d does not parse as X.509", i)))
			continue
		case !cert.IsCA:
			errs = append(errs, field.Invalid(p, "<value omitted>", fmt.Sprintf("entry %d does not have the CA bit set", i)))
			continue
		case !cert.BasicConstraintsValid:
			errs = append(errs, field.Invalid(p, "<value omitted>", fmt.Sprintf("entry %d has invalid basic constraints", i)))
			continue
		}
		if _, ok := dedupe[string(b.Bytes)]; !ok {
			order = append(order, string(b.Bytes))
		}
		dedupe[string(b.Bytes)] = append(dedupe[string(b.Bytes)], i)
	}
	if len(errs) != 0 {
		return errs
	}
	if len(dedupe) == 0 {
		errs = append(errs, field.Invalid(p, "<value omitted>", "at least one trust anchor must be provided"))
	}
	for _, k := range order {
		if idx := dedupe[k]; len(idx) > 1 {
			errs = append(errs, field.Invalid(p, "<value omitted>", fmt.Sprintf("duplicate trust anchor (indices %v)", idx)))
		}
	}
	return errs
}

// validateClusterTrustBundleProjection is Kubernetes' check of a projected volume's
// clusterTrustBundle source: a bundle by name, or by signerName and labelSelector, and
// a path.
func validateClusterTrustBundleProjection(b *corev1.ClusterTrustBundleProjection, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	switch {
	case b.Name != nil && b.SignerName != nil:
		errs = append(errs, field.Invalid(p, b, "only one of name and signerName may be used"))
	case b.Name != nil:
		name := *b.Name
		if name == "" {
			errs = append(errs, field.Required(p.Child("name"), "must be a valid object name"))
		}
		signer := ""
		if i := strings.LastIndex(name, ":"); i != -1 {
			signer = strings.ReplaceAll(name[:i], ":", "/")
		}
		for _, msg := range clusterTrustBundleName(signer)(name, false) {
			errs = append(errs, field.Invalid(p.Child("name"), name, fmt.Sprintf("not a valid clustertrustbundlename: %v", msg)))
		}
		if b.LabelSelector != nil {
			errs = append(errs, field.Invalid(p.Child("labelSelector"), b.LabelSelector, "labelSelector must be unset if name is specified"))
		}
	case b.SignerName != nil:
		if *b.SignerName == "" {
			errs = append(errs, field.Required(p.Child("signerName"), "must be a valid signer name"))
		}
		errs = append(errs, ValidateSignerName(p.Child("signerName"), *b.SignerName)...)
		errs = append(errs, metav1validation.ValidateLabelSelector(b.LabelSelector, metav1validation.LabelSelectorValidationOptions{}, p.Child("labelSelector"))...)
	default:
		errs = append(errs, field.Required(p, "either name or signerName must be specified"))
	}
	if b.Path == "" {
		errs = append(errs, field.Required(p.Child("path"), ""))
	}
	return append(errs, validateLocalNonReservedPath(b.Path, p.Child("path"))...)
}
