package skiffctl_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestCreateSecret: kubectl's create secret generic, tls and docker-registry, and create
// serviceaccount, with kubectl's flags, output and errors; get and describe show a
// Secret's type and sizes, never its values.
func TestCreateSecret(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := strings.Join(c.Addrs(), ",")
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	id := write("creds/id_rsa", "-----BEGIN OPENSSH PRIVATE KEY-----")
	write("creds/known_hosts", "github.com ssh-ed25519 AAAA")
	env := write("app.env", "\xEF\xBB\xBF# settings\nDB_HOST=db.internal\n\n  DB_PORT=5432\nFROM_ENV\n")
	t.Setenv("FROM_ENV", "inherited")

	// generic, from literals, a renamed file and a directory.
	contains(t, "create generic", must(t, s, "create", "secret", "generic", "db-user-pass",
		"--from-literal=username=admin", "--from-literal=password=S!B\\*d$zDsb=", "--from-file=ssh-privatekey="+id), "secret/db-user-pass created")
	contains(t, "create generic dir", must(t, s, "create", "secret", "generic", "ssh-dir", "--from-file="+filepath.Join(dir, "creds"),
		"--type=kubernetes.io/ssh-auth", "--from-literal=ssh-privatekey=k"), "secret/ssh-dir created")
	contains(t, "get secret", must(t, s, "get", "secrets"), "NAME", "TYPE", "DATA", "AGE", "db-user-pass   Opaque", "ssh-dir        kubernetes.io/ssh-auth   3")
	yaml := must(t, s, "get", "secret", "db-user-pass", "-o", "yaml")
	contains(t, "get yaml", yaml, "password: "+base64.StdEncoding.EncodeToString([]byte(`S!B\*d$zDsb=`)),
		"username: YWRtaW4=", "type: Opaque", "kind: Secret")
	desc := must(t, s, "describe", "secret", "db-user-pass")
	contains(t, "describe", desc, "Type:  Opaque", "Data\n====", "password:        12 bytes", "username:        5 bytes")
	if strings.Contains(desc, "admin") || strings.Contains(desc, "zDsb") {
		t.Errorf("describe shows values:\n%s", desc)
	}

	// From an env file; printed, not created, with --dry-run=client.
	out := must(t, s, "create", "secret", "generic", "app-env", "--from-env-file="+env, "--dry-run=client", "-o", "yaml")
	contains(t, "dry run", out, "kind: Secret", "name: app-env", "DB_HOST: "+base64.StdEncoding.EncodeToString([]byte("db.internal")),
		"DB_PORT: "+base64.StdEncoding.EncodeToString([]byte("5432")), "FROM_ENV: "+base64.StdEncoding.EncodeToString([]byte("inherited")))
	fails(t, s, "", `secret "app-env" not found`, "get", "secret", "app-env")
	contains(t, "dry run text", must(t, s, "create", "secret", "generic", "x", "--from-literal=a=b", "--dry-run"), "secret/x created (dry run)")
	hashed := must(t, s, "create", "secret", "generic", "hashed", "--from-literal=a=b", "--append-hash", "-o", "name")
	if !regexp.MustCompile(`^secret/hashed-[a-z0-9]{10}\n$`).MatchString(hashed) {
		t.Errorf("--append-hash: %q", hashed)
	}

	// kubectl's refusals.
	fails(t, s, "", "exactly one NAME is required, got 0", "create", "secret", "generic", "--from-literal=a=b")
	fails(t, s, "", `--from-literal: invalid literal source "novalue", expected key=value`, "create", "secret", "generic", "y", "--from-literal=novalue")
	fails(t, s, "", `cannot add key "a", another key by that name already exists`, "create", "secret", "generic", "y",
		"--from-literal=a=1", "--from-literal=a=2")
	fails(t, s, "", `"bad key" is not a valid key name for a Secret`, "create", "secret", "generic", "y", "--from-literal=bad key=1")
	fails(t, s, "", "from-env-file cannot be combined with from-file or from-literal", "create", "secret", "generic", "y",
		"--from-env-file="+env, "--from-literal=a=1")
	contains(t, "server dry run", must(t, s, "create", "secret", "generic", "y", "--from-literal=a=1", "--dry-run=server"), "secret/y created (server dry run)")
	fails(t, s, "", `secret "y" not found`, "get", "secret", "y")
	fails(t, s, "", `secrets "db-user-pass" already exists`, "create", "secret", "generic", "db-user-pass", "--from-literal=a=1")
	// The server's validation of a typed Secret.
	fails(t, s, "", "data[tls.key]: Required value", "create", "secret", "generic", "half-tls", "--type=kubernetes.io/tls", "--from-literal=tls.crt=x")

	// tls: a certificate and its key, which must match.
	ca, err := pki.NewCA("test", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := ca.Issue(pki.Request{CommonName: "web.example.com", Server: true})
	other, _ := ca.Issue(pki.Request{CommonName: "other", Server: true})
	crt, key, otherKey := write("web.crt", string(leaf.CertPEM)), write("web.key", string(leaf.KeyPEM)), write("other.key", string(other.KeyPEM))
	contains(t, "create tls", must(t, s, "create", "secret", "tls", "web-tls", "--cert="+crt, "--key="+key), "secret/web-tls created")
	contains(t, "get tls", must(t, s, "get", "secret", "web-tls"), "kubernetes.io/tls", "2")
	fails(t, s, "", "failed to load key pair", "create", "secret", "tls", "bad-tls", "--cert="+crt, "--key="+otherKey)
	fails(t, s, "", "key and cert must be specified", "create", "secret", "tls", "bad-tls", "--cert="+crt)

	// docker-registry: a .dockerconfigjson with the credentials and their auth.
	contains(t, "create docker-registry", must(t, s, "create", "secret", "docker-registry", "regcred", "--docker-server=registry.example.com:5000",
		"--docker-username=alice", "--docker-password=s3cret", "--docker-email=alice@example.com"), "secret/regcred created")
	var got struct {
		Type string
		Data map[string][]byte
	}
	if err := json.Unmarshal([]byte(must(t, s, "get", "secret", "regcred", "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Auths map[string]struct{ Username, Password, Email, Auth string }
	}
	if err := json.Unmarshal(got.Data[".dockerconfigjson"], &cfg); err != nil || got.Type != "kubernetes.io/dockerconfigjson" {
		t.Fatalf("regcred: %s %q %v", got.Type, got.Data, err)
	}
	if e := cfg.Auths["registry.example.com:5000"]; e.Username != "alice" || e.Password != "s3cret" || e.Email != "alice@example.com" ||
		e.Auth != base64.StdEncoding.EncodeToString([]byte("alice:s3cret")) {
		t.Errorf("auths: %+v", cfg.Auths)
	}
	fails(t, s, "", "either --from-file or the combination of --docker-username, --docker-password and --docker-server is required",
		"create", "secret", "docker-registry", "r2", "--docker-username=alice")
	dockerCfg := write("config.json", `{"auths":{"r.example":{"auth":"eDp5"}}}`)
	contains(t, "docker-registry from a file", must(t, s, "create", "secret", "docker-registry", "r3", "--from-file=.dockerconfigjson="+dockerCfg),
		"secret/r3 created")
	fails(t, s, "", "data[.dockerconfigjson]: Required value", "create", "secret", "docker-registry", "r4", "--from-file="+dockerCfg)

	// A manifest's stringData is written into data, so applying it again changes nothing;
	// data that is not base64 names its key.
	sd := "apiVersion: v1\nkind: Secret\nmetadata: {name: creds}\nstringData: {password: hunter2}\n"
	if code, out, errs := run(t, s, sd, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "secret/creds created") {
		t.Fatalf("apply stringData: %s %s", out, errs)
	}
	if code, out, errs := run(t, s, sd, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "secret/creds unchanged") {
		t.Errorf("apply stringData again: %s %s", out, errs)
	}
	contains(t, "stringData stored as data", must(t, s, "get", "secret", "creds", "-o", "yaml"), "password: aHVudGVyMg==")
	fails(t, s, "apiVersion: v1\nkind: Secret\nmetadata: {name: x}\ndata: {password: 'not base64!'}\n",
		"data[password]: Invalid value: not base64", "apply", "-f", "-")

	// serviceaccount, in a namespace.
	must(t, s, "create", "-f", write("ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: ci}\n"))
	contains(t, "create sa", must(t, s, "create", "serviceaccount", "build-robot", "-n", "ci"), "serviceaccount/build-robot created")
	contains(t, "get sa", must(t, s, "get", "sa", "-n", "ci"), "NAME", "SECRETS", "build-robot")
	contains(t, "describe sa", must(t, s, "describe", "serviceaccount", "build-robot", "-n", "ci"), "Image pull secrets:", "Tokens:")
}
