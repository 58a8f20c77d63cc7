package pki

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestRenewFile(t *testing.T) {
	start := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	ca, err := NewCA("skiff-ca", start.Add(-time.Hour), 24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	req := Request{CommonName: UserAPIServer, Organization: []string{GroupAPIServers}, Hosts: []string{"localhost", "10.0.0.1"}, Server: true, Client: true,
		NotBefore: start, Validity: 3 * time.Hour}
	p, err := ca.Issue(req)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, err := p.Write(dir, "apiserver")
	if err != nil {
		t.Fatal(err)
	}
	if at := RenewAt(p.Cert); !at.Equal(start.Add(2 * time.Hour)) {
		t.Fatalf("a 3 h certificate is due at %v, want two thirds in", at)
	}

	// Not due: untouched.
	got, renewed, err := RenewFile(ca, certFile, keyFile, start.Add(2*time.Hour-time.Second))
	if err != nil || renewed || got.SerialNumber.Cmp(p.Cert.SerialNumber) != 0 {
		t.Fatalf("renew before two thirds: renewed %v, %v", renewed, err)
	}
	// Due: a new key and certificate, the same identity, names, usages and lifetime.
	now := start.Add(2 * time.Hour)
	got, renewed, err = RenewFile(ca, certFile, keyFile, now)
	if err != nil || !renewed {
		t.Fatalf("renew at two thirds: renewed %v, %v", renewed, err)
	}
	pair, err := LoadPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("the renewed files do not make a pair: %v", err)
	}
	c := pair.Cert
	if c.SerialNumber.Cmp(got.SerialNumber) != 0 || c.SerialNumber.Cmp(p.Cert.SerialNumber) == 0 {
		t.Fatal("the file does not hold the renewed certificate")
	}
	if c.Subject.CommonName != UserAPIServer || !slices.Equal(c.Subject.Organization, []string{GroupAPIServers}) ||
		!slices.Equal(c.DNSNames, []string{"localhost"}) || len(c.IPAddresses) != 1 || c.IPAddresses[0].String() != "10.0.0.1" ||
		len(c.ExtKeyUsage) != 2 {
		t.Fatalf("renewed certificate changed identity: %v %v %v %v %v", c.Subject, c.DNSNames, c.IPAddresses, c.ExtKeyUsage, c.Issuer)
	}
	if life := c.NotAfter.Sub(c.NotBefore); life != 3*time.Hour || c.NotBefore.After(now) || !c.NotAfter.After(p.Cert.NotAfter) {
		t.Fatalf("renewed certificate valid %v to %v (%v)", c.NotBefore, c.NotAfter, life)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	if err := Verify(c, pool, x509.ExtKeyUsageServerAuth, now); err != nil {
		t.Fatalf("renewed certificate does not verify: %v", err)
	}

	// Of another CA: refused, nothing written.
	other, _ := NewCA("other", start.Add(-time.Hour), 24*time.Hour)
	before, _ := os.ReadFile(certFile)
	if _, _, err := RenewFile(other, certFile, keyFile, start.Add(10*time.Hour)); err == nil || !strings.Contains(err.Error(), "not signed by the CA") {
		t.Fatalf("renew with another CA: %v", err)
	}
	if after, _ := os.ReadFile(filepath.Join(dir, "apiserver.crt")); string(after) != string(before) {
		t.Fatal("a refused renewal changed the file")
	}
}
