package pki

import (
	"crypto/x509"
	"fmt"
	"time"
)

// RenewAt is when a certificate is due for renewal: two thirds into its life, as
// kubelets' certificate manager renews theirs (70-90%), early enough that a renewal that
// fails has a third of the life left to be retried and noticed.
func RenewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

// RenewFile re-issues the certificate in certFile, with a new key in keyFile, from ca,
// when it is due (now at or past RenewAt): the same subject, names and usages, and the
// same lifetime, from now. The key is written first and each file replaced atomically,
// so a Reloader that reads them keeps the old pair until both are new. It returns the
// certificate in certFile afterwards and whether it renewed it.
func RenewFile(ca *CA, certFile, keyFile string, now time.Time) (*x509.Certificate, bool, error) {
	certs, err := ReadCerts(certFile)
	if err != nil {
		return nil, false, err
	}
	cur := certs[0]
	if now.Before(RenewAt(cur)) {
		return cur, false, nil
	}
	if err := cur.CheckSignatureFrom(ca.Cert); err != nil {
		return cur, false, fmt.Errorf("renew %s: it is not signed by the CA %q: %w", certFile, ca.Cert.Subject.CommonName, err)
	}
	life := cur.NotAfter.Sub(cur.NotBefore)
	req := RequestFor(cur)
	// Backdated for clock skew between hosts, as Issue does, by at most a tenth of the life.
	req.NotBefore, req.Validity = now.Add(-min(time.Minute, life/10)), life
	p, err := ca.Issue(req)
	if err != nil {
		return cur, false, fmt.Errorf("renew %s: %w", certFile, err)
	}
	if err := WriteFile(keyFile, p.KeyPEM, 0o600); err != nil {
		return cur, false, fmt.Errorf("renew %s: %w", certFile, err)
	}
	if err := WriteFile(certFile, p.CertPEM, 0o644); err != nil {
		return cur, false, fmt.Errorf("renew %s: %w", certFile, err)
	}
	return p.Cert, true, nil
}
