package k8sclients

import (
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/up"
)

// TestKubectlRBAC: kubectl create role, rolebinding, clusterrole and clusterrolebinding
// against skiff up, kubectl's columns for them, and kubectl auth can-i (and a request)
// of a user with a bearer token, allowed in one namespace by its RoleBinding, not in
// another, and cluster-wide by its ClusterRoleBinding.
func TestKubectlRBAC(t *testing.T) {
	toks, err := auth.ParseTokens(auth.HashToken("alice-token") + ",alice\n")
	if err != nil {
		t.Fatal(err)
	}
	s := startSkiffWith(t, func(c *up.Config) { c.Tokens = toks })

	asAlice := s.tokenUser("alice", "alice-token")
	canI := func(want string, args ...string) {
		t.Helper()
		out, _ := asAlice(append([]string{"auth", "can-i"}, args...)...) // exits 1 on no, with the reason
		if strings.TrimSpace(out) != want && !strings.HasPrefix(out, want+` - user "alice" cannot `) {
			t.Errorf("alice: auth can-i %s = %q, want %q", strings.Join(args, " "), out, want)
		}
	}
	canI("no", "list", "pods", "-n", "dev")
	if out, err := asAlice("get", "pods", "-n", "dev"); err == nil || !strings.Contains(out, `Error from server (Forbidden): user "alice" cannot list pods in namespace "dev"`) {
		t.Errorf("alice lists pods before any binding: %v %s", err, out)
	}

	s.wantOut(`^namespace/dev created\n$`, "create", "namespace", "dev")
	s.wantOut(`^role.rbac.authorization.k8s.io/pod-reader created\n$`, "create", "role", "pod-reader", "--verb=get,list,watch", "--resource=pods", "-n", "dev")
	s.wantOut(`^rolebinding.rbac.authorization.k8s.io/alice-reads created\n$`, "create", "rolebinding", "alice-reads", "--role=pod-reader", "--user=alice", "-n", "dev")
	s.wantOut(`(?m)^NAME\s+ROLE\s+AGE\s+USERS\s+GROUPS\s+SERVICEACCOUNTS\nalice-reads\s+Role/pod-reader\s+\S+\s+alice\s*$`, "get", "rolebindings", "-n", "dev", "-o", "wide")
	s.wantOut(`(?m)^NAME\s+CREATED AT\npod-reader\s+\d{4}-`, "get", "roles", "-n", "dev")
	canI("yes", "list", "pods", "-n", "dev")
	canI("no", "list", "pods", "-n", "default")
	canI("no", "delete", "pods", "-n", "dev")
	if out, err := asAlice("get", "pods", "-n", "dev"); err != nil || out != "" { // "No resources found" is on stderr
		t.Errorf("alice lists pods in dev: %v %s", err, out)
	}

	s.wantOut(`^clusterrole.rbac.authorization.k8s.io/node-reader created\n$`, "create", "clusterrole", "node-reader", "--verb=get,list", "--resource=nodes")
	s.wantOut(`^clusterrolebinding.rbac.authorization.k8s.io/alice-nodes created\n$`, "create", "clusterrolebinding", "alice-nodes", "--clusterrole=node-reader", "--user=alice")
	canI("yes", "list", "nodes")
	if out, err := asAlice("get", "nodes", "--no-headers"); err != nil || !strings.Contains(out, "k8sclients-w1") {
		t.Errorf("alice lists nodes: %v %s", err, out)
	}
	// The defaults every cluster has, and the aggregated view role.
	s.wantOut(`(?m)^cluster-admin\s+ClusterRole/cluster-admin\s`, "get", "clusterrolebindings")
	s.wantOut(`(?s)pods/log.*get`, "describe", "clusterrole", "view")
}

// tokenUser is kubectl as user, authenticated by token alone: a kubeconfig of its own
// with the cluster's server and CA, without the administrator's certificate.
func (s *skiff) tokenUser(user, token string) func(args ...string) (string, error) {
	s.t.Helper()
	dir := s.t.TempDir()
	server := s.must("config", "view", "--raw", "--minify", "-o", "jsonpath={.clusters[0].cluster.server}")
	caData := s.must("config", "view", "--raw", "--minify", "--flatten", "-o", "jsonpath={.clusters[0].cluster.certificate-authority-data}")
	ca, err := base64.StdEncoding.DecodeString(caData)
	if err != nil || len(ca) == 0 {
		s.t.Fatalf("the kubeconfig's CA: %q %v", caData, err)
	}
	caFile := filepath.Join(dir, "ca.crt")
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		s.t.Fatal(err)
	}
	env := []string{"KUBECONFIG=" + filepath.Join(dir, user)}
	as := func(args ...string) (string, error) { return s.runEnv(env, "", args...) }
	for _, args := range [][]string{
		{"config", "set-cluster", "skiff", "--server", server, "--certificate-authority", caFile, "--embed-certs"},
		{"config", "set-credentials", user, "--token", token},
		{"config", "set-context", user, "--cluster", "skiff", "--user", user},
		{"config", "use-context", user},
	} {
		if out, err := as(args...); err != nil {
			s.t.Fatalf("%v: %s", err, out)
		}
	}
	return as
}
