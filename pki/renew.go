package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"
)

// RenewAt is when a certificate is due for renewal: two thirds into its life, as
// kubelets' certificate manager renews theirs (70-90%), early enough that a renewal that
// fails has a third of the life left to be retried and noticed.
func RenewAt(c *x509.Certificate) time.Time {
	return c.NotBefore.Add(c.NotAfter.Sub(c.NotBefore) * 2 / 3)
}

// NeedsRenewal says whether cur is due for renewal at now, and why: at RenewAt, or, in
// a CA rotation, as soon as the CA that signs (the first of bundle, a CA file's
// certificates) is another than cur's and cur's is still in bundle (trusted alongside).
// A certificate of a CA not in bundle at all is not renewed: the CA file is wrong, and a
// certificate of a CA its peers do not trust would be an outage.
func NeedsRenewal(cur *x509.Certificate, bundle []*x509.Certificate, now time.Time) (bool, string) {
	if len(bundle) > 0 && cur.CheckSignatureFrom(bundle[0]) != nil &&
		slices.ContainsFunc(bundle[1:], func(ca *x509.Certificate) bool { return cur.CheckSignatureFrom(ca) == nil }) {
		return true, fmt.Sprintf("the CA %q signs now", bundle[0].Subject.CommonName)
	}
	if !now.Before(RenewAt(cur)) {
		return true, "two thirds of its life passed"
	}
	return false, ""
}

// RenewFile re-issues the certificate in certFile, with a new key in keyFile, from ca,
// when it is due (NeedsRenewal of ca's bundle): the same subject, names and usages, and
// the same lifetime, from now. The key is written first and each file replaced
// atomically, so a Reloader that reads them keeps the old pair until both are new. It
// returns the certificate in certFile afterwards and whether it renewed it.
func RenewFile(ca *CA, certFile, keyFile string, now time.Time) (*x509.Certificate, bool, error) {
	certs, err := ReadCerts(certFile)
	if err != nil {
		return nil, false, err
	}
	cur := certs[0]
	if due, _ := NeedsRenewal(cur, ca.bundle(), now); !due {
		return cur, false, nil
	}
	if !slices.ContainsFunc(ca.bundle(), func(c *x509.Certificate) bool { return cur.CheckSignatureFrom(c) == nil }) {
		return cur, false, fmt.Errorf("renew %s: it is not signed by the CA %q", certFile, ca.Cert.Subject.CommonName)
	}
	p, err := ca.Issue(renewalRequest(cur, 0, now))
	if err != nil {
		return cur, false, fmt.Errorf("renew %s: %w", certFile, err)
	}
	if err := p.WriteFiles(certFile, keyFile); err != nil {
		return cur, false, fmt.Errorf("renew %s: %w", certFile, err)
	}
	return p.Cert, true, nil
}

// renewalRequest re-issues cur from now: the same identity, names and usages, for
// cur's lifetime (or validity, when shorter and positive), backdated.
func renewalRequest(cur *x509.Certificate, validity time.Duration, now time.Time) Request {
	life := cur.NotAfter.Sub(cur.NotBefore)
	if validity > 0 && validity < life {
		life = validity
	}
	req := RequestFor(cur)
	req.NotBefore, req.Validity = backdated(now, life), life
	return req
}

// backdated is when a certificate valid for validity (0: LeafValidity) issued at now
// starts: a minute before, for clock skew between hosts, or a tenth of its life if
// that is shorter (a certificate of seconds).
func backdated(now time.Time, validity time.Duration) time.Time {
	if validity <= 0 {
		validity = LeafValidity
	}
	return now.Add(-min(time.Minute, validity/10))
}

// ErrOtherIdentity refuses a certificate signing request for an identity other than
// the sender's.
var ErrOtherIdentity = errors.New("a certificate may be renewed only for its own identity")

// NewRequest makes a new key and a PEM PKCS#10 request for cur's identity (common name
// and organizations) with it: what a holder of cur sends to renew it.
func NewRequest(cur *x509.Certificate) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate request for %q: %w", cur.Subject.CommonName, err)
	}
	der, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: cur.Subject}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("certificate request for %q: %w", cur.Subject.CommonName, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: der}), key, nil
}

// ParseCSR reads a PEM PKCS#10 certificate request and checks its signature, in
// Kubernetes' words (a CertificateSigningRequest's spec.request).
func ParseCSR(pemBytes []byte) (*x509.CertificateRequest, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "CERTIFICATE REQUEST" {
		return nil, errors.New("PEM block type must be CERTIFICATE REQUEST")
	}
	csr, err := x509.ParseCertificateRequest(block.Bytes)
	if err != nil {
		return nil, err
	}
	return csr, csr.CheckSignature()
}

// SignRenewal answers a certificate signing request (csrPEM) from the holder of cur,
// the certificate the request was authenticated with, as Kubernetes' approver of a
// node's own client certificate does: the request's subject must be cur's (its common
// name the user, its organizations the groups; else ErrOtherIdentity), and the new
// certificate takes cur's identity, names and usages, whatever else the request says,
// for cur's lifetime (or validity, when shorter and positive).
func (ca *CA) SignRenewal(cur *x509.Certificate, csrPEM []byte, validity time.Duration, now time.Time) (*x509.Certificate, error) {
	csr, err := ParseCSR(csrPEM)
	if err != nil {
		return nil, fmt.Errorf("request: %w", err)
	}
	if csr.Subject.CommonName != cur.Subject.CommonName || !slices.Equal(csr.Subject.Organization, cur.Subject.Organization) {
		return nil, fmt.Errorf("%w: the request is for user %q in groups %q, and the caller is %q in %q", ErrOtherIdentity,
			csr.Subject.CommonName, csr.Subject.Organization, cur.Subject.CommonName, cur.Subject.Organization)
	}
	return ca.Sign(renewalRequest(cur, validity, now), csr.PublicKey)
}

// RenewalOf is the certificate a signing request from the holder of caller (the
// certificate the request was authenticated with) renews: caller itself, or, when
// renewsPEM is given, that certificate, which must be of caller's identity (else
// ErrOtherIdentity), signed by a CA of ca's bundle and still valid at now: a kubelet's
// serving certificate, renewed through its client certificate as Kubernetes' kubelets
// renew theirs (signer kubernetes.io/kubelet-serving), for the names the CA gave it.
func (ca *CA) RenewalOf(caller *x509.Certificate, renewsPEM []byte, now time.Time) (*x509.Certificate, error) {
	if len(renewsPEM) == 0 {
		return caller, nil
	}
	block, _ := pem.Decode(renewsPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return nil, errors.New("renews: no PEM CERTIFICATE block")
	}
	cur, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("renews: %w", err)
	}
	if cur.Subject.CommonName != caller.Subject.CommonName || !slices.Equal(cur.Subject.Organization, caller.Subject.Organization) {
		return nil, fmt.Errorf("%w: the certificate renewed is user %q's in groups %q, and the caller is %q in %q", ErrOtherIdentity,
			cur.Subject.CommonName, cur.Subject.Organization, caller.Subject.CommonName, caller.Subject.Organization)
	}
	if !slices.ContainsFunc(ca.bundle(), func(c *x509.Certificate) bool { return cur.CheckSignatureFrom(c) == nil }) {
		return nil, fmt.Errorf("renews: the certificate of %q is not the cluster CA's", cur.Subject.CommonName)
	}
	if now.Before(cur.NotBefore) || now.After(cur.NotAfter) {
		return nil, fmt.Errorf("renews: the certificate of %q is not valid now (%s to %s)", cur.Subject.CommonName, cur.NotBefore.UTC().Format(time.RFC3339), cur.NotAfter.UTC().Format(time.RFC3339))
	}
	return cur, nil
}
