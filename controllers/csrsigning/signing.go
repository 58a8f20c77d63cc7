// Package csrsigning is Kubernetes' CSR signing controller (kube-controller-manager's
// csrsigning): it signs, with the cluster CA (Config.SigningCertFile, SigningKeyFile,
// as --cluster-signing-cert-file and --cluster-signing-key-file), the approved
// CertificateSigningRequests of Kubernetes' three signers Skiff's API servers verify:
//
//   - kubernetes.io/kube-apiserver-client: any identity, usages digital signature,
//     key encipherment and client auth (which it must have);
//   - kubernetes.io/kube-apiserver-client-kubelet: a node's client certificate,
//     common name system:node:NAME in organization system:nodes (or Skiff's
//     skiff:nodes), no names, usages
//     digital signature, key encipherment and client auth (which it must have);
//   - kubernetes.io/kubelet-serving: a node's serving certificate, the same subject,
//     DNS names or IP addresses (at least one) and no e-mail or URI, usages digital
//     signature, key encipherment and server auth (which it must have).
//
// A request its signer refuses gets the condition Failed (reason
// SignerValidationFailure) and no certificate. A certificate is valid from five
// minutes before it is signed (clock skew) for the request's expirationSeconds, at
// most Config.MaxDuration (--cluster-signing-duration, a year), and never past the
// CA's own expiry. Requests of other signers, pending, denied or failed ones and those
// already issued are left alone. The CA files are read for each signature, so a CA
// rotation is taken up without a restart.
package csrsigning

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/pki"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// SigningCertFile and SigningKeyFile are the CA that signs (PEM). Required.
	SigningCertFile, SigningKeyFile string
	// MaxDuration is the longest a certificate it signs is valid. Default a year.
	MaxDuration time.Duration
	// Workers sign different requests concurrently. Default 2.
	Workers int
	// Logger receives the controller's logs, named "csrsigning". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{MaxDuration: 365 * 24 * time.Hour, Workers: 2, Logger: hclog.NewNullLogger(), Now: time.Now}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.SigningCertFile == "" || c.SigningKeyFile == "" {
		errs = append(errs, errors.New("signingCertFile, signingKeyFile: must be set"))
	}
	if c.MaxDuration < 10*time.Minute {
		errs = append(errs, fmt.Errorf("maxDuration: %v must be at least 10m", c.MaxDuration))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("now: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("csr signing controller config: %w", err)
	}
	return nil
}

// Controller is the signer.
type Controller struct {
	cfg   Config
	cs    *client.Clientset
	inf   *cache.Informer[*certificatesv1.CertificateSigningRequest]
	csrs  *cache.Lister[*certificatesv1.CertificateSigningRequest]
	queue *workqueue.Queue
	log   hclog.Logger
}

// New makes the controller on the factory's informers; it fails if the CA does not
// load. Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, err := pki.LoadCAFiles(cfg.SigningCertFile, cfg.SigningKeyFile); err != nil {
		return nil, fmt.Errorf("csr signing controller: %w", err)
	}
	inf := cache.InformerFor[*certificatesv1.CertificateSigningRequest](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, inf: inf, csrs: inf.Lister(), queue: workqueue.New(workqueue.Config{}),
		log: cfg.Logger.Named("csrsigning")}
	add := func(csr *certificatesv1.CertificateSigningRequest) {
		if toSign(csr) {
			c.queue.Add(cache.Key(csr))
		}
	}
	inf.AddHandler(cache.Handler[*certificatesv1.CertificateSigningRequest]{OnAdd: add,
		OnUpdate: func(_, csr *certificatesv1.CertificateSigningRequest) { add(csr) }})
	return c, nil
}

// Run signs until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.inf) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// Signers are the signer names this controller signs for.
var Signers = []string{certificatesv1.KubeAPIServerClientSignerName, certificatesv1.KubeAPIServerClientKubeletSignerName,
	certificatesv1.KubeletServingSignerName}

// HasCondition reports whether csr has condition t True (Approved, Denied, Failed).
func HasCondition(csr *certificatesv1.CertificateSigningRequest, t certificatesv1.RequestConditionType) bool {
	for _, c := range csr.Status.Conditions {
		if c.Type == t && c.Status == corev1.ConditionTrue {
			return true
		}
	}
	return false
}

// toSign reports a request this controller has to answer: of its signers, approved,
// neither denied nor failed, not issued.
func toSign(csr *certificatesv1.CertificateSigningRequest) bool {
	return slices.Contains(Signers, csr.Spec.SignerName) && HasCondition(csr, certificatesv1.CertificateApproved) &&
		!HasCondition(csr, certificatesv1.CertificateDenied) && !HasCondition(csr, certificatesv1.CertificateFailed) &&
		len(csr.Status.Certificate) == 0
}

// ReasonSignerValidationFailure is the reason of the Failed condition of a request its
// signer refuses.
const ReasonSignerValidationFailure = "SignerValidationFailure"

// Reconcile signs one request by key, or marks it Failed.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	_, name := cache.SplitKey(key)
	csr, ok := c.csrs.Get("", name)
	if !ok || !toSign(csr) {
		return 0, nil
	}
	next := csr.DeepCopy()
	req, err := pki.ParseCSR(csr.Spec.Request)
	if err == nil {
		err = Check(csr.Spec.SignerName, req, csr.Spec.Usages)
	}
	if err != nil {
		now := metav1.NewTime(c.cfg.Now())
		next.Status.Conditions = append(next.Status.Conditions, certificatesv1.CertificateSigningRequestCondition{
			Type: certificatesv1.CertificateFailed, Status: corev1.ConditionTrue, Reason: ReasonSignerValidationFailure,
			Message: err.Error(), LastUpdateTime: now, LastTransitionTime: now})
		c.log.Info("refused a certificate signing request", "csr", name, "signer", csr.Spec.SignerName, "reason", err)
	} else {
		ca, err := pki.LoadCAFiles(c.cfg.SigningCertFile, c.cfg.SigningKeyFile)
		if err != nil {
			return 0, fmt.Errorf("sign csr %s: %w", name, err)
		}
		cert, err := ca.Sign(Template(req, csr.Spec.Usages, Duration(csr, c.cfg.MaxDuration), c.cfg.Now()), req.PublicKey)
		if err != nil {
			return 0, fmt.Errorf("sign csr %s: %w", name, err)
		}
		next.Status.Certificate = pki.EncodeCert(cert)
		c.log.Debug("signed a certificate signing request", "csr", name, "signer", csr.Spec.SignerName, "notAfter", cert.NotAfter)
	}
	if _, err := c.cs.CertificateSigningRequests.UpdateStatus(ctx, next); err != nil && !client.IsNotFound(err) {
		return 0, fmt.Errorf("update csr %s status: %w", name, err)
	}
	return 0, nil
}

// Duration is how long csr's certificate is valid: its expirationSeconds, at most max.
func Duration(csr *certificatesv1.CertificateSigningRequest, max time.Duration) time.Duration {
	if s := csr.Spec.ExpirationSeconds; s != nil && time.Duration(*s)*time.Second < max {
		return time.Duration(*s) * time.Second
	}
	return max
}

// backdate is how long before it is signed a certificate is valid from (clock skew),
// as Kubernetes' signer's.
const backdate = 5 * time.Minute

// Template is the certificate Kubernetes' signer makes of req at now: its subject and
// names, usages' server and client auth, valid from five minutes before now; a short
// certificate (under eight hours) ends d after now, a longer one d after its start.
func Template(req *x509.CertificateRequest, usages []certificatesv1.KeyUsage, d time.Duration, now time.Time) pki.Request {
	r := pki.Request{CommonName: req.Subject.CommonName, Organization: req.Subject.Organization, NotBefore: now.Add(-backdate), Validity: d,
		Server: slices.Contains(usages, certificatesv1.UsageServerAuth), Client: slices.Contains(usages, certificatesv1.UsageClientAuth)}
	if d < 8*time.Hour {
		r.Validity = d + backdate
	}
	r.Hosts = append(r.Hosts, req.DNSNames...)
	for _, ip := range req.IPAddresses {
		r.Hosts = append(r.Hosts, ip.String())
	}
	return r
}

// Check is the signer's check of a request (Kubernetes' isRequestForSignerFn): what
// each of Signers signs, else an error that says why not.
func Check(signer string, req *x509.CertificateRequest, usages []certificatesv1.KeyUsage) error {
	switch signer {
	case certificatesv1.KubeAPIServerClientSignerName:
		return checkUsages(usages, certificatesv1.UsageClientAuth, "client")
	case certificatesv1.KubeAPIServerClientKubeletSignerName:
		if err := checkNodeSubject(req); err != nil {
			return err
		}
		if len(req.DNSNames) > 0 || len(req.EmailAddresses) > 0 || len(req.IPAddresses) > 0 || len(req.URIs) > 0 {
			return errors.New("DNS, email, and IP subjectAltNames are not allowed")
		}
		return checkUsages(usages, certificatesv1.UsageClientAuth, "client")
	case certificatesv1.KubeletServingSignerName:
		if err := checkNodeSubject(req); err != nil {
			return err
		}
		if len(req.EmailAddresses) > 0 || len(req.URIs) > 0 {
			return errors.New("email and URI subjectAltNames are not allowed")
		}
		if len(req.DNSNames) == 0 && len(req.IPAddresses) == 0 {
			return errors.New("DNS or IP subjectAltName is required")
		}
		return checkUsages(usages, certificatesv1.UsageServerAuth, "serving")
	}
	return fmt.Errorf("signer %q is not one of %s", signer, strings.Join(Signers, ", "))
}

// GroupKubernetesNodes is Kubernetes' group of nodes, which its kubelets' requests
// name.
const GroupKubernetesNodes = "system:nodes"

// checkNodeSubject is a node's certificate's subject: system:node:NAME, in
// organization system:nodes alone (Kubernetes') or skiff:nodes alone (Skiff's nodes).
func checkNodeSubject(req *x509.CertificateRequest) error {
	if !slices.Equal(req.Subject.Organization, []string{GroupKubernetesNodes}) && !slices.Equal(req.Subject.Organization, []string{pki.GroupNodes}) {
		return fmt.Errorf("subject organization is not %s", GroupKubernetesNodes)
	}
	if !strings.HasPrefix(req.Subject.CommonName, pki.NodeUserPrefix) {
		return fmt.Errorf("subject common name does not begin with %s", pki.NodeUserPrefix)
	}
	return nil
}

// checkUsages allows digital signature, key encipherment and required, which must be
// there.
func checkUsages(usages []certificatesv1.KeyUsage, required certificatesv1.KeyUsage, what string) error {
	for _, u := range usages {
		switch u {
		case certificatesv1.UsageDigitalSignature, certificatesv1.UsageKeyEncipherment, required:
		default:
			return fmt.Errorf("invalid usage for %s certificate: %s", what, u)
		}
	}
	if !slices.Contains(usages, required) {
		return fmt.Errorf("missing required usage for %s certificate: %s", what, required)
	}
	return nil
}
