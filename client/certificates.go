package client

import (
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
	"google.golang.org/grpc"

	"github.com/skiffhq/skiff/pki"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// CreateCertificateSigningRequest asks an API server to sign csrPEM (a PKCS#10
// request for this connection's own identity) with the cluster CA, renewing the
// connection's certificate, or renewsPEM when given (a kubelet's serving certificate,
// of the same identity); expiration 0 asks for the lifetime of the certificate it
// renews. It returns the certificate, PEM.
func (c *Conn) CreateCertificateSigningRequest(ctx context.Context, csrPEM, renewsPEM []byte, expiration time.Duration) ([]byte, error) {
	var out *apiv1.CertificateSigningRequest
	err := c.invoke(ctx, idempotent, c.opts.AttemptTimeout, func(ctx context.Context, cc *grpc.ClientConn) (err error) {
		out, err = apiv1.NewClusterClient(cc).CreateCertificateSigningRequest(ctx, &apiv1.CertificateSigningRequest{
			Request: csrPEM, Renews: renewsPEM, ExpirationSeconds: int64(expiration / time.Second)})
		return err
	})
	return out.GetCertificate(), err
}

// CertificateManager keeps a component's client certificate valid, as client-go's
// certificate manager keeps a kubelet's: when the certificate in CertFile is due
// (pki.NeedsRenewal: two thirds into its life, or its CA no longer the one that signs,
// the first of CAFile's), it makes a new key, asks the API servers to sign it for the
// same identity (CreateCertificateSigningRequest, authenticated by the current
// certificate), and replaces KeyFile then CertFile. The Conn's TLS reads the files
// anew and moves its calls to connections that present the new certificate
// (Options.Certificate): no restart. A certificate that does not chain to CAFile is not
// written: the component would lock itself out.
//
// With Serving, CertFile is a kubelet's serving certificate, not the Conn's: the request
// names it (it must be of the Conn's identity) and the new one must serve.
type CertificateManager struct {
	Conn                      *Conn
	CertFile, KeyFile, CAFile string
	Serving                   bool
	// CheckInterval is how often the files are read (default 1 min): a renewal due
	// sooner is made on time, and one that failed is retried after at most this long.
	CheckInterval time.Duration
	Logger        hclog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Run renews the certificate whenever it is due, until ctx ends.
func (m *CertificateManager) Run(ctx context.Context) {
	if m.CheckInterval <= 0 {
		m.CheckInterval = time.Minute
	}
	if m.Logger == nil {
		m.Logger = hclog.NewNullLogger()
	}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		next, err := m.RenewIfDue(ctx)
		if err != nil && ctx.Err() == nil {
			m.Logger.Warn("certificate renewal failed; retrying", "file", m.CertFile, "error", err, "at", next)
		}
		t.Reset(time.Until(next))
	}
}

// RenewIfDue renews the certificate if it is due, and says when to look again.
func (m *CertificateManager) RenewIfDue(ctx context.Context) (time.Time, error) {
	now := time.Now()
	if m.Now != nil {
		now = m.Now()
	}
	interval := m.CheckInterval
	if interval <= 0 {
		interval = time.Minute
	}
	certs, err := pki.ReadCerts(m.CertFile)
	if err != nil {
		return now.Add(interval), err
	}
	cur := certs[0]
	// A failed attempt is retried sooner as the expiry nears: ten tries in what is left.
	retry := now.Add(min(interval, max(time.Second, cur.NotAfter.Sub(now)/10)))
	bundle, err := pki.ReadCerts(m.CAFile)
	if err != nil {
		return retry, err
	}
	due, why := pki.NeedsRenewal(cur, bundle, now)
	if !due {
		return minTime(pki.RenewAt(cur), now.Add(interval)), nil
	}
	csr, key, err := pki.NewRequest(cur)
	if err != nil {
		return retry, err
	}
	var renews []byte
	if m.Serving {
		renews = pki.EncodeCert(cur)
	}
	certPEM, err := m.Conn.CreateCertificateSigningRequest(ctx, csr, renews, 0)
	if err != nil {
		return retry, fmt.Errorf("renew %s: %w", m.CertFile, err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return retry, fmt.Errorf("renew %s: the API server's answer holds no certificate", m.CertFile)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return retry, fmt.Errorf("renew %s: %w", m.CertFile, err)
	}
	if err := m.check(cert, key, bundle, now); err != nil {
		return retry, fmt.Errorf("renew %s: the signed certificate: %w; not written", m.CertFile, err)
	}
	p, err := pki.NewPair(cert, key)
	if err != nil {
		return retry, err
	}
	if err := p.WriteFiles(m.CertFile, m.KeyFile); err != nil {
		return retry, fmt.Errorf("renew %s: %w", m.CertFile, err)
	}
	m.Logger.Info("certificate renewed", "file", m.CertFile, "user", cert.Subject.CommonName, "why", why, "not_after", cert.NotAfter)
	return minTime(pki.RenewAt(cert), now.Add(interval)), nil
}

// Writable says whether this process may replace CertFile and KeyFile as its own: each
// file of this process's user and writable, and its directory (where the new file is
// made and renamed over it) writable, so not on a read-only mount. A CLI checks it
// before it renews a certificate the user may keep on a shared or read-only path, or
// that is another user's (replaced, it would be this user's).
func (m *CertificateManager) Writable() error {
	for _, f := range []string{m.KeyFile, m.CertFile} {
		st, err := os.Stat(f)
		if err != nil {
			return err
		}
		if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
			return fmt.Errorf("%s is user %d's, not this process's (%d)", f, sys.Uid, os.Geteuid())
		}
		for _, p := range []string{f, filepath.Dir(f)} {
			if err := unix.Access(p, unix.W_OK); err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
		}
	}
	return nil
}

// check refuses a certificate this component could not use: not for its key, or not
// chaining to its CA bundle.
func (m *CertificateManager) check(cert *x509.Certificate, key *ecdsa.PrivateKey, bundle []*x509.Certificate, now time.Time) error {
	if pub, ok := cert.PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return errors.New("it is not for the key of the request")
	}
	pool := x509.NewCertPool()
	for _, ca := range bundle {
		pool.AddCert(ca)
	}
	usage := x509.ExtKeyUsageClientAuth
	if m.Serving {
		usage = x509.ExtKeyUsageServerAuth
	}
	if err := pki.Verify(cert, pool, usage, now); err != nil {
		return fmt.Errorf("it does not chain to %s: %w", m.CAFile, err)
	}
	return nil
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
