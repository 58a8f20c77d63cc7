package up

import (
	"crypto/x509"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/skiffhq/skiff/pki"
)

// TestLeafCertificates: skiff up's first member renews every certificate of its
// directory but the CAs', the front-proxy client's with the front-proxy CA.
func TestLeafCertificates(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.InitDir(dir, pki.InitOptions{Nodes: []string{"w1"}}); err != nil {
		t.Fatal(err)
	}
	certs, err := leafCertificates(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, c := range certs {
		names = append(names, c.Name)
		if wantCA := c.Name == pki.FrontProxyClient; wantCA != (c.CACertFile == filepath.Join(dir, pki.FrontProxyCACertFile)) {
			t.Errorf("%s: renewed by CA %q", c.Name, c.CACertFile)
		}
		if c.CertFile != dir+"/"+c.Name+".crt" || c.KeyFile != dir+"/"+c.Name+".key" {
			t.Errorf("%s: files %s, %s", c.Name, c.CertFile, c.KeyFile)
		}
	}
	if want := []string{"admin", "apiserver", "controller-manager", "front-proxy-client", "kubelet-w1-serving", "kubelet-w1", "scheduler"}; !slices.Equal(names, want) {
		t.Fatalf("renewed certificates %v, want %v", names, want)
	}
}

// TestMakeCertsNamesTheKubernetesService: the API servers' certificate names --listen's
// host and what pods reach it by through the kubernetes Service (its cluster IP, which
// in-cluster clients dial, and kubernetes.default.svc.cluster.local, the
// service-account issuer that OIDC discovery fetches); a directory whose certificate
// lacks them (made for another --listen, or before they were added) gets it issued
// again with them, keeping its CA and the names it had.
func TestMakeCertsNamesTheKubernetesService(t *testing.T) {
	want := []string{"198.51.100.43", "kubernetes", "kubernetes.default", "kubernetes.default.svc",
		"kubernetes.default.svc.cluster.local", "10.43.0.1", "localhost", "127.0.0.1"}
	covers := func(t *testing.T, dir string, hosts []string) *x509.Certificate {
		t.Helper()
		certs, err := pki.ReadCerts(filepath.Join(dir, "apiserver.crt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hosts {
			if err := certs[0].VerifyHostname(h); err != nil {
				t.Errorf("apiserver.crt: %v", err)
			}
		}
		return certs[0]
	}

	t.Run("new directory", func(t *testing.T) {
		dir := t.TempDir()
		if err := makeCerts(dir, "n1", "198.51.100.43"); err != nil {
			t.Fatal(err)
		}
		c := covers(t, dir, want)
		// A second start keeps the certificate.
		if err := makeCerts(dir, "n1", "198.51.100.43"); err != nil {
			t.Fatal(err)
		}
		if again := covers(t, dir, want); !again.Equal(c) {
			t.Fatal("a start with the same --listen issued the certificate again")
		}
	})

	t.Run("directory of an earlier start", func(t *testing.T) {
		dir := t.TempDir()
		if _, err := pki.InitDir(dir, pki.InitOptions{Nodes: []string{"n1"}, Hosts: []string{"127.0.0.1", "skiff.example"}}); err != nil {
			t.Fatal(err)
		}
		// Made before the aggregation layer: no front proxy.
		for _, f := range []string{pki.FrontProxyCACertFile, pki.FrontProxyCAKeyFile, pki.FrontProxyClient + ".crt", pki.FrontProxyClient + ".key"} {
			if err := os.Remove(filepath.Join(dir, f)); err != nil {
				t.Fatal(err)
			}
		}
		ca, err := pki.ReadCerts(filepath.Join(dir, pki.CACertFile))
		if err != nil {
			t.Fatal(err)
		}
		if err := makeCerts(dir, "n1", "198.51.100.43"); err != nil {
			t.Fatal(err)
		}
		c := covers(t, dir, append(want, "skiff.example"))
		if err := c.CheckSignatureFrom(ca[0]); err != nil {
			t.Fatalf("the certificate issued again is not of the directory's CA: %v", err)
		}
		if _, err := pki.LoadPair(filepath.Join(dir, pki.FrontProxyClient+".crt"), filepath.Join(dir, pki.FrontProxyClient+".key")); err != nil {
			t.Fatalf("no front-proxy certificate for the earlier directory: %v", err)
		}
	})
}
