package client

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// TestKubeconfig: one cluster and context per API server, the first current, one user
// with the client config's credentials; https with a CA, http without.
func TestKubeconfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "kc", "kubeconfig")
	cf := ConfigFile{Servers: []string{"10.0.0.1:7443", "10.0.0.2:7443"}, CAFile: "/pki/ca.crt", CertFile: "/pki/admin.crt", KeyFile: "/pki/admin.key"}
	if err := WriteKubeconfig(path, "skiff", cf); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(path)
	var k kubeconfig
	if err := yaml.UnmarshalStrict(b, &k); err != nil {
		t.Fatalf("%v\n%s", err, b)
	}
	if k.Kind != "Config" || k.CurrentContext != "skiff" || len(k.Clusters) != 2 || len(k.Contexts) != 2 || len(k.Users) != 1 {
		t.Fatalf("kubeconfig:\n%s", b)
	}
	if c := k.Clusters[1]; c.Name != "skiff-2" || c.Cluster.Server != "https://10.0.0.2:7443" || c.Cluster.CertificateAuthority != "/pki/ca.crt" {
		t.Errorf("second cluster = %+v", c)
	}
	if c := k.Contexts[1].Context; c.Cluster != "skiff-2" || c.User != "skiff-admin" || c.Namespace != "default" {
		t.Errorf("second context = %+v", c)
	}
	if u := k.Users[0].User; u.ClientCertificate != "/pki/admin.crt" || u.ClientKey != "/pki/admin.key" {
		t.Errorf("user = %+v", u)
	}
	if st, _ := os.Stat(path); st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v", st.Mode())
	}
	plain, err := Kubeconfig("dev", ConfigFile{Servers: []string{"127.0.0.1:7443"}})
	if err != nil || !strings.Contains(string(plain), "server: http://127.0.0.1:7443") {
		t.Errorf("insecure kubeconfig: %v\n%s", err, plain)
	}
	if _, err := Kubeconfig("x", ConfigFile{}); err == nil {
		t.Errorf("a kubeconfig without servers")
	}
}
