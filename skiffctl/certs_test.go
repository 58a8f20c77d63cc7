package skiffctl_test

import (
	"bytes"
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/skiffctl"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestClusterCerts: skiffctl cluster certs asks every member of its certificates: the
// subject, the expiry, and when the member renews it ("never" without the cluster CA).
func TestClusterCerts(t *testing.T) {
	dir := apicluster.Certs(t)
	crt, key := filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key")
	c := apicluster.Start(t, 2, apicluster.Options{Certs: dir, Configure: func(cfg *apiserver.Config) {
		cfg.Certificates = []apiserver.CertFile{{Name: "serving", CertFile: crt, KeyFile: key}}
		cfg.CertCheckInterval = 100 * time.Millisecond
		if cfg.Name == "n1" { // the year-long certificate is not due: n1 shows when it will be
			cfg.SigningCertFile, cfg.SigningKeyFile = filepath.Join(dir, pki.CACertFile), filepath.Join(dir, pki.CAKeyFile)
		}
	}})
	cfg := filepath.Join(t.TempDir(), "config")
	if err := client.WriteConfigFile(cfg, client.ConfigFile{Servers: []string{c.Addr(0)}, CAFile: filepath.Join(dir, "ca.crt"),
		CertFile: filepath.Join(dir, "admin.crt"), KeyFile: filepath.Join(dir, "admin.key")}); err != nil {
		t.Fatal(err)
	}
	cert, err := pki.ReadCerts(crt)
	if err != nil {
		t.Fatal(err)
	}
	expires := cert[0].NotAfter.UTC().Format(time.RFC3339)
	renewAt := pki.RenewAt(cert[0]).UTC().Format(time.RFC3339)
	var out, errb string
	waitfor.Condition(t, 30*time.Second, "both members list their certificate", func() (bool, string) {
		var o, e bytes.Buffer
		code := skiffctl.Execute(context.Background(), skiffctl.Streams{In: strings.NewReader(""), Out: &o, Err: &e}, []string{"--config", cfg, "cluster", "certs"})
		out, errb = o.String(), e.String()
		return code == 0 && errb == "" && strings.Count(out, "system:apiserver") == 2, out + errb
	})
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "MEMBER") || !strings.Contains(lines[0], "RENEWS") {
		t.Fatalf("cluster certs:\n%s", out)
	}
	for _, l := range lines[1:] {
		for _, want := range []string{"serving", "system:apiserver", expires, "(in 364d)", crt} {
			if !strings.Contains(l, want) {
				t.Errorf("line %q does not show %s", l, want)
			}
		}
		switch f := strings.Fields(l); f[0] {
		case "n1":
			if !strings.Contains(l, renewAt) {
				t.Errorf("n1, which has the CA, does not say it renews at %s: %q", renewAt, l)
			}
		case "n2":
			if !strings.Contains(l, "never") {
				t.Errorf("n2, without the CA, does not say it never renews: %q", l)
			}
		default:
			t.Errorf("unexpected line %q", l)
		}
	}
}

// TestRenewsItsOwnCertificate: skiffctl renews the user's certificate when it is due
// (two thirds of its life), as components renew theirs, through the API servers: the
// files it read hold a new key and certificate for the same identity, for the same
// lifetime. Files of another user are left alone.
func TestRenewsItsOwnCertificate(t *testing.T) {
	dir := apicluster.Certs(t)
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Configure: func(cfg *apiserver.Config) {
		cfg.SigningCertFile, cfg.SigningKeyFile = filepath.Join(dir, pki.CACertFile), filepath.Join(dir, pki.CAKeyFile)
	}})
	ca, err := pki.LoadCA(dir)
	if err != nil {
		t.Fatal(err)
	}
	user := t.TempDir()
	crt, key := filepath.Join(user, "admin.crt"), filepath.Join(user, "admin.key")
	// dueCert writes an admin certificate of an hour, 50 minutes into its life.
	dueCert := func() *x509.Certificate {
		t.Helper()
		p, err := ca.Issue(pki.Request{CommonName: pki.UserAdmin, Organization: []string{pki.GroupAdmin}, Client: true,
			NotBefore: time.Now().Add(-50 * time.Minute), Validity: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.WriteFiles(crt, key); err != nil {
			t.Fatal(err)
		}
		return p.Cert
	}
	old := dueCert()
	cfg := filepath.Join(user, "config")
	if err := client.WriteConfigFile(cfg, client.ConfigFile{Servers: []string{c.Addr(0)}, CAFile: filepath.Join(dir, pki.CACertFile),
		CertFile: crt, KeyFile: key}); err != nil {
		t.Fatal(err)
	}
	run := func() {
		t.Helper()
		var o, e bytes.Buffer
		if code := skiffctl.Execute(context.Background(), skiffctl.Streams{In: strings.NewReader(""), Out: &o, Err: &e},
			[]string{"--config", cfg, "get", "namespaces"}); code != 0 || e.Len() > 0 || !strings.Contains(o.String(), "kube-system") {
			t.Fatalf("get namespaces: exit %d\n%s%s", code, o.String(), e.String())
		}
	}
	run()
	p, err := pki.LoadPair(crt, key)
	if err != nil {
		t.Fatalf("the renewed files: %v", err)
	}
	if p.Cert.SerialNumber.Cmp(old.SerialNumber) == 0 {
		t.Fatal("the certificate was not renewed")
	}
	if p.Cert.Subject.CommonName != pki.UserAdmin || !slices.Equal(p.Cert.Subject.Organization, []string{pki.GroupAdmin}) ||
		p.Cert.NotAfter.Sub(p.Cert.NotBefore) != time.Hour || !p.Cert.NotAfter.After(old.NotAfter) {
		t.Fatalf("renewed certificate: %v in %v, %v to %v", p.Cert.Subject.CommonName, p.Cert.Subject.Organization, p.Cert.NotBefore, p.Cert.NotAfter)
	}
	run() // and the renewed one is the user's credential

	if os.Geteuid() != 0 {
		t.Skip("giving the files to another user needs root")
	}
	old = dueCert()
	for _, f := range []string{crt, key} {
		if err := os.Chown(f, 65534, 65534); err != nil {
			t.Fatal(err)
		}
	}
	run()
	if now, err := pki.ReadCerts(crt); err != nil || now[0].SerialNumber.Cmp(old.SerialNumber) != 0 {
		t.Fatalf("another user's certificate was replaced (%v)", err)
	}
}
