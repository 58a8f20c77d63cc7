package apiserver

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/pki"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// Certificates without outages.
//
// Every CertCheckInterval each member reads its own certificate files (Config.
// Certificates). With the cluster CA (SigningCertFile, SigningKeyFile) it renews each at
// two thirds of its life (pki.RenewFile): a new key and certificate with the same
// identity and names, which the server's and clients' pki.Reloaders take up for new
// connections, without a restart. Each certificate's expiry is a metric, and within
// CertExpiryWarning (30 days) of it, a Warning event CertificateExpiring is recorded once
// a day, naming the certificate, the member and why it was not renewed.

// CertFile is one of this member's certificates.
type CertFile struct {
	// Name says what it is for (serving, peer): the metrics' label and the events' word.
	Name              string
	CertFile, KeyFile string
	// CACertFile and CAKeyFile, when set, are the CA that renews it instead of the
	// cluster CA (SigningCertFile): the front-proxy CA for front-proxy-client.
	CACertFile, CAKeyFile string
}

// ReasonCertificateExpiring is the reason of the Warning event of a certificate close to
// its expiry.
const ReasonCertificateExpiring = "CertificateExpiring"

// CertStatus is what a member knows of one of its certificates.
type CertStatus struct {
	Name, File string
	Subject    string
	NotBefore  time.Time
	NotAfter   time.Time
	// RenewAt is when it is due for renewal (two thirds of its life).
	RenewAt time.Time
	// Renewals is how many times this member renewed it since it started.
	Renewals uint64
	// Error is why the last check could not read or renew it, "" if it could.
	Error string
}

type certState struct {
	mu     sync.Mutex
	status map[string]*CertStatus
	warned map[string]time.Time
}

// Certificates is what this member knows of its certificates, by name, as of the last
// check.
func (s *Server) Certificates() []CertStatus {
	s.certs.mu.Lock()
	defer s.certs.mu.Unlock()
	var out []CertStatus
	for _, st := range s.certs.status {
		out = append(out, *st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// watchCertificates checks the certificates every CertCheckInterval while ctx lasts.
func (s *Server) watchCertificates(ctx context.Context) {
	if len(s.cfg.Certificates) == 0 {
		return
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		s.checkCertificates()
		t.Reset(s.nextCertificateCheck())
	}
}

// nextCertificateCheck is how long to wait for the next check: CertCheckInterval, or
// less when a renewal falls due sooner (certificates shorter-lived than the interval);
// at least a second.
func (s *Server) nextCertificateCheck() time.Duration {
	wait := s.cfg.CertCheckInterval
	if s.cfg.SigningCertFile == "" {
		return wait
	}
	now := s.cfg.Now()
	for _, st := range s.Certificates() {
		if !st.RenewAt.IsZero() {
			wait = min(wait, st.RenewAt.Sub(now))
		}
	}
	return max(wait, time.Second)
}

// checkCertificates renews what is due (given the CA), and records each certificate's
// state and a warning for each close to expiry.
func (s *Server) checkCertificates() {
	now := s.cfg.Now()
	var ca *pki.CA
	var caErr error
	if s.cfg.SigningCertFile != "" {
		// Read at each check: the CA's files may be replaced (a CA rotation).
		ca, caErr = pki.LoadCAFiles(s.cfg.SigningCertFile, s.cfg.SigningKeyFile)
		if caErr != nil {
			s.log.Warn("cannot load the cluster CA to renew certificates", "error", caErr)
		}
	}
	for _, cf := range s.cfg.Certificates {
		var cert *x509.Certificate
		var renewed bool
		var err error
		ca, caErr := ca, caErr
		if cf.CACertFile != "" {
			if ca, caErr = pki.LoadCAFiles(cf.CACertFile, cf.CAKeyFile); caErr != nil {
				ca = nil
				s.log.Warn("cannot load the CA to renew a certificate with", "certificate", cf.Name, "ca", cf.CACertFile, "error", caErr)
			}
		}
		if ca != nil {
			cert, renewed, err = pki.RenewFile(ca, cf.CertFile, cf.KeyFile, now)
		} else {
			var certs []*x509.Certificate
			if certs, err = pki.ReadCerts(cf.CertFile); err == nil {
				cert = certs[0]
			}
		}
		if renewed {
			s.log.Info("certificate renewed", "certificate", cf.Name, "file", cf.CertFile, "not_after", cert.NotAfter)
		} else if err != nil {
			s.log.Warn("certificate check failed", "certificate", cf.Name, "file", cf.CertFile, "error", err)
		}
		why := "renew it (skiff certs rotate), or give the API server the cluster CA (--cluster-signing-cert-file, --cluster-signing-key-file) to renew it itself"
		switch {
		case err != nil:
			why = "renewing it failed: " + err.Error()
		case caErr != nil:
			why = "the cluster CA to renew it with does not load: " + caErr.Error()
		}
		warn := s.noteCertificate(cf, cert, renewed, err, now)
		if warn && cert != nil {
			err := s.systemEvent(corev1.EventTypeWarning, ReasonCertificateExpiring, fmt.Sprintf("Certificate %s (%s, %s) of member %s expires at %s, in %s: %s",
				cf.Name, cert.Subject.CommonName, cf.CertFile, s.cfg.Name, cert.NotAfter.UTC().Format(time.RFC3339), cert.NotAfter.Sub(now).Round(time.Second), why))
			if err != nil { // not recorded (no leader yet): again at the next check
				s.certs.mu.Lock()
				delete(s.certs.warned, cf.Name)
				s.certs.mu.Unlock()
			}
		}
	}
}

// noteCertificate records a check's outcome and says whether to warn of its expiry now
// (within CertExpiryWarning of it, and not warned of in the last day).
func (s *Server) noteCertificate(cf CertFile, cert *x509.Certificate, renewed bool, err error, now time.Time) bool {
	s.certs.mu.Lock()
	defer s.certs.mu.Unlock()
	if s.certs.status == nil {
		s.certs.status, s.certs.warned = map[string]*CertStatus{}, map[string]time.Time{}
	}
	st := s.certs.status[cf.Name]
	if st == nil {
		st = &CertStatus{Name: cf.Name, File: cf.CertFile}
		s.certs.status[cf.Name] = st
	}
	st.Error = ""
	if err != nil {
		st.Error = err.Error()
	}
	if renewed {
		st.Renewals++
	}
	if cert == nil {
		return false
	}
	st.Subject, st.NotBefore, st.NotAfter, st.RenewAt = cert.Subject.CommonName, cert.NotBefore, cert.NotAfter, pki.RenewAt(cert)
	if cert.NotAfter.Sub(now) > s.cfg.CertExpiryWarning {
		return false
	}
	if last, ok := s.certs.warned[cf.Name]; ok && now.Sub(last) < 24*time.Hour {
		return false
	}
	s.certs.warned[cf.Name] = now
	return true
}

// certCollector exports the certificates' expiry and renewals.
type certCollector struct{ s *Server }

var (
	descCertExpiry   = prometheus.NewDesc("skiff_certificate_expiration_timestamp_seconds", "When this member's certificate expires (Unix time), by certificate (serving, peer).", []string{"certificate"}, nil)
	descCertRenewals = prometheus.NewDesc("skiff_certificate_renewals_total", "Times this member renewed the certificate since it started.", []string{"certificate"}, nil)
)

func (c *certCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descCertExpiry
	ch <- descCertRenewals
}

func (c *certCollector) Collect(ch chan<- prometheus.Metric) {
	for _, st := range c.s.Certificates() {
		if !st.NotAfter.IsZero() {
			ch <- prometheus.MustNewConstMetric(descCertExpiry, prometheus.GaugeValue, float64(st.NotAfter.Unix()), st.Name)
		}
		ch <- prometheus.MustNewConstMetric(descCertRenewals, prometheus.CounterValue, float64(st.Renewals), st.Name)
	}
}

// signCertificateRequest is CreateCertificateSigningRequest: it signs the request's key
// with the cluster CA for the identity, names and usages of the client certificate the
// call came with, or of the certificate of that identity it renews (a kubelet's serving
// certificate; pki.RenewalOf, pki.SignRenewal), so that components renew their
// certificates as kubelets renew theirs in Kubernetes, with no one to approve: a holder
// of a certificate gets only the same certificate again, with a new key and life.
func (s *Server) signCertificateRequest(ctx context.Context, req *apiv1.CertificateSigningRequest) (*apiv1.CertificateSigningRequest, error) {
	user := requestUser(ctx)
	var chain []*x509.Certificate
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			chain = ti.State.PeerCertificates
		}
	}
	if len(chain) == 0 || chain[0].Subject.CommonName != user.Name {
		return nil, statusError(codes.PermissionDenied, ReasonForbidden, nil,
			"user %q cannot create certificatesigningrequests: a request must be authenticated by the client certificate it renews", user.Name)
	}
	if s.cfg.SigningCertFile == "" {
		return nil, statusError(codes.FailedPrecondition, ReasonBadRequest, nil,
			"member %s has no cluster CA to sign with: give it --cluster-signing-cert-file and --cluster-signing-key-file", s.cfg.Name)
	}
	// Read at each request: the CA's files may be replaced (a CA rotation).
	ca, err := pki.LoadCAFiles(s.cfg.SigningCertFile, s.cfg.SigningKeyFile)
	if err != nil {
		return nil, statusError(codes.Unavailable, ReasonUnavailable, nil, "member %s cannot load the cluster CA: %v", s.cfg.Name, err)
	}
	cert, err := ca.RenewalOf(chain[0], req.GetRenews(), s.cfg.Now())
	if err == nil {
		cert, err = ca.SignRenewal(cert, req.GetRequest(), time.Duration(req.GetExpirationSeconds())*time.Second, s.cfg.Now())
	}
	switch {
	case errors.Is(err, pki.ErrOtherIdentity):
		return nil, statusError(codes.PermissionDenied, ReasonForbidden, nil, "user %q cannot create certificatesigningrequests: %v", user.Name, err)
	case err != nil:
		return nil, badRequest("certificatesigningrequest: %v", err)
	}
	s.log.Info("certificate signed", "user", user.Name, "not_after", cert.NotAfter, "ca", ca.Cert.Subject.CommonName)
	return &apiv1.CertificateSigningRequest{Certificate: pki.EncodeCert(cert)}, nil
}
