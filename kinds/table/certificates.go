package table

import (
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/skiffhq/skiff/kinds"
)

// The columns of CertificateSigningRequests and ClusterTrustBundles: Kubernetes'
// printer's (NAME AGE SIGNERNAME REQUESTOR REQUESTEDDURATION CONDITION; NAME SIGNERNAME).
func init() {
	spec, status := certificatesv1.CertificateSigningRequestSpec{}.SwaggerDoc(), certificatesv1.CertificateSigningRequestStatus{}.SwaggerDoc()
	csr := typed[*certificatesv1.CertificateSigningRequest]
	columns[kinds.CertificateSigningRequest] = []Column{nameCol, ageCol,
		col("SignerName", "string", 0, spec["signerName"], csr(func(c *certificatesv1.CertificateSigningRequest) any { return orNone(c.Spec.SignerName) })),
		col("Requestor", "string", 0, spec["request"], csr(func(c *certificatesv1.CertificateSigningRequest) any { return c.Spec.Username })),
		col("RequestedDuration", "string", 0, spec["expirationSeconds"], csr(func(c *certificatesv1.CertificateSigningRequest) any {
			if c.Spec.ExpirationSeconds == nil {
				return "<none>"
			}
			return duration.HumanDuration(time.Duration(*c.Spec.ExpirationSeconds) * time.Second)
		})),
		col("Condition", "string", 0, status["conditions"], csr(func(c *certificatesv1.CertificateSigningRequest) any { return CSRCondition(c) })),
	}
	ctb := certificatesv1.ClusterTrustBundleSpec{}.SwaggerDoc()
	columns[kinds.ClusterTrustBundle] = []Column{nameCol,
		col("SignerName", "string", 0, ctb["signerName"], func(o kinds.Object, _ time.Time) any {
			return orNone(o.(*certificatesv1.ClusterTrustBundle).Spec.SignerName)
		}),
	}
}

// CSRCondition is kubectl's CONDITION of a request: Denied, Approved or Pending, then
// ",Failed" and ",Issued" when they are so.
func CSRCondition(c *certificatesv1.CertificateSigningRequest) string {
	var approved, denied, failed bool
	for _, cond := range c.Status.Conditions {
		switch cond.Type {
		case certificatesv1.CertificateApproved:
			approved = true
		case certificatesv1.CertificateDenied:
			denied = true
		case certificatesv1.CertificateFailed:
			failed = true
		}
	}
	s := "Pending"
	switch {
	case denied:
		s = "Denied"
	case approved:
		s = "Approved"
	}
	if failed {
		s += ",Failed"
	}
	if len(c.Status.Certificate) > 0 {
		s += ",Issued"
	}
	return s
}
