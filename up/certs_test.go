package up

import (
	"slices"
	"testing"

	"github.com/skiffhq/skiff/pki"
)

// TestLeafCertificates: skiff up's first member renews every certificate of its
// directory but the CA's.
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
		if c.CertFile != dir+"/"+c.Name+".crt" || c.KeyFile != dir+"/"+c.Name+".key" {
			t.Errorf("%s: files %s, %s", c.Name, c.CertFile, c.KeyFile)
		}
	}
	if want := []string{"admin", "apiserver", "controller-manager", "kubelet-w1-serving", "kubelet-w1", "scheduler"}; !slices.Equal(names, want) {
		t.Fatalf("renewed certificates %v, want %v", names, want)
	}
}
