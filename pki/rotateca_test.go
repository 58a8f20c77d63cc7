package pki_test

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/pki"
)

// TestRotateCA: add trusts a new CA beside the old one, which still signs; switch makes
// the new one sign and re-issues every leaf by it; drop leaves the new CA alone, and
// only after switch. At every step every leaf verifies against ca.crt.
func TestRotateCA(t *testing.T) {
	dir := t.TempDir()
	now := time.Now()
	if _, err := pki.InitDir(dir, pki.InitOptions{Nodes: []string{"w1"}, Now: now}); err != nil {
		t.Fatal(err)
	}
	old, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	leavesVerify := func(step string, signer *x509.Certificate) {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, pki.CACertFile))
		if err != nil {
			t.Fatal(err)
		}
		pool, err := pki.Pool(b)
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range []string{"apiserver", "admin", "kubelet-w1"} {
			certs, err := pki.ReadCerts(filepath.Join(dir, name+".crt"))
			if err != nil {
				t.Fatal(err)
			}
			if err := pki.Verify(certs[0], pool, x509.ExtKeyUsageClientAuth, now); err != nil {
				t.Errorf("after %s: %s does not verify: %v", step, name, err)
			}
			if err := certs[0].CheckSignatureFrom(signer); err != nil {
				t.Errorf("after %s: %s is not signed by %s", step, name, signer.Subject.CommonName)
			}
			if _, err := pki.LoadPair(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")); err != nil {
				t.Errorf("after %s: %v", step, err)
			}
		}
	}
	step := func(s string) {
		t.Helper()
		if _, err := pki.RotateCA(dir, s, now); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	refused := func(s, want string) {
		t.Helper()
		if _, err := pki.RotateCA(dir, s, now); err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want an error saying %q", s, err, want)
		}
	}

	refused(pki.RotateCASwitch, "run add first")
	refused(pki.RotateCADrop, "nothing to drop")
	step(pki.RotateCAAdd)
	refused(pki.RotateCAAdd, "already holds a new CA")
	refused(pki.RotateCADrop, "run switch first")
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(ca.Bundle) != 2 || !ca.Cert.Equal(old.Cert) {
		t.Fatalf("after add: ca.crt holds %d CAs, the first the old one: %v", len(ca.Bundle), ca.Cert.Equal(old.Cert))
	}
	leavesVerify("add", old.Cert)
	next := ca.Bundle[1]

	step(pki.RotateCASwitch)
	if ca, err = pki.LoadCA(dir); err != nil {
		t.Fatal(err)
	}
	if !ca.Cert.Equal(next) || len(ca.Bundle) != 2 {
		t.Fatal("after switch: the new CA is not the one that signs, beside the old one")
	}
	leavesVerify("switch", next)

	step(pki.RotateCADrop)
	if ca, err = pki.LoadCA(dir); err != nil {
		t.Fatal(err)
	}
	if len(ca.Bundle) != 1 || !ca.Cert.Equal(next) {
		t.Fatal("after drop: ca.crt is not the new CA alone")
	}
	leavesVerify("drop", next)
}

// TestNeedsRenewal: due at two thirds of the life, or when the CA that signs is another
// trusted one; a certificate of a CA not trusted at all is left alone.
func TestNeedsRenewal(t *testing.T) {
	now := time.Now()
	a, _ := pki.NewCA("a", now, 0)
	b, _ := pki.NewCA("b", now, 0)
	p, err := a.Issue(pki.Request{CommonName: "x", Client: true, NotBefore: now, Validity: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name   string
		bundle []*x509.Certificate
		at     time.Duration
		want   bool
	}{
		{"fresh", []*x509.Certificate{a.Cert}, 0, false},
		{"two thirds", []*x509.Certificate{a.Cert}, 20 * time.Second, true},
		{"its CA trusted, another signs", []*x509.Certificate{b.Cert, a.Cert}, 0, true},
		{"its CA signs, another trusted", []*x509.Certificate{a.Cert, b.Cert}, 0, false},
		{"its CA not trusted", []*x509.Certificate{b.Cert}, 0, false},
	} {
		if got, why := pki.NeedsRenewal(p.Cert, tt.bundle, now.Add(tt.at)); got != tt.want {
			t.Errorf("%s: %v (%s), want %v", tt.name, got, why, tt.want)
		}
	}
}
