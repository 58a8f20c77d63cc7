package k8sclients

import (
	"encoding/base64"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/test/waitfor"
	"github.com/skiffhq/skiff/up"
)

// TestKubectlAuthExtras: kubectl auth can-i --list (SelfSubjectRulesReview), --as
// (impersonation: allowed to the administrator, refused to another user in Kubernetes'
// words), kubectl create token used as a bearer token, and a legacy
// service-account token Secret, filled by the controller-manager, used as one.
func TestKubectlAuthExtras(t *testing.T) {
	toks, err := auth.ParseTokens(auth.HashToken("alice-token") + ",alice\n" + auth.HashToken("ops-token") + ",ops\n")
	if err != nil {
		t.Fatal(err)
	}
	s := startSkiffWith(t, func(c *up.Config) { c.Tokens = toks })
	s.must("create", "namespace", "dev")
	s.must("create", "role", "pod-reader", "--verb=get,list", "--resource=pods", "-n", "dev")
	s.must("create", "rolebinding", "alice-reads", "--role=pod-reader", "--user=alice", "-n", "dev")

	asAlice := s.tokenUser("alice", "alice-token")
	waitfor.ConditionErr(t, 30*time.Second, "alice's rules in dev", func() (bool, error) {
		out, err := asAlice("auth", "can-i", "--list", "-n", "dev")
		if err != nil {
			return false, err
		}
		for _, re := range []string{`(?m)^pods\s+\[\]\s+\[\]\s+\[get list\]$`, `(?m)^selfsubjectaccessreviews.authorization.k8s.io\s+\[\]\s+\[\]\s+\[create\]$`,
			`(?m)^\s+\[/healthz\]\s+\[\]\s+\[get\]$`} {
			if !regexp.MustCompile(re).MatchString(out) {
				t.Logf("can-i --list:\n%s\nwant %s", out, re)
				return false, nil
			}
		}
		return true, nil
	})

	// --as: the administrator acts as alice, and is held to alice's rights.
	s.wantOut(`^yes\n$`, "auth", "can-i", "list", "pods", "-n", "dev", "--as", "alice")
	if out, _ := s.run("auth", "can-i", "list", "pods", "-n", "default", "--as", "alice"); !strings.HasPrefix(out, "no") {
		t.Errorf("can-i as alice in default: %q", out)
	}
	if out, err := s.run("get", "secrets", "-n", "dev", "--as", "alice", "--as-group", "devs"); err == nil ||
		!strings.Contains(out, `Error from server (Forbidden): user "alice" cannot list secrets in namespace "dev"`) {
		t.Errorf("get secrets as alice: %v %s", err, out)
	}
	// ops may impersonate nobody.
	asOps := s.tokenUser("ops", "ops-token")
	if out, err := asOps("get", "pods", "-n", "dev", "--as", "alice"); err == nil ||
		!strings.Contains(out, `Error from server (Forbidden): users "alice" is forbidden: User "ops" cannot impersonate resource "users" in API group "" at the cluster scope`) {
		t.Errorf("ops impersonating alice: %v %s", err, out)
	}

	// kubectl create token: a TokenRequest's token is the account.
	s.must("create", "serviceaccount", "robot", "-n", "dev")
	token := strings.TrimSpace(s.must("create", "token", "robot", "-n", "dev", "--duration", "1h"))
	wantWhoami := func(who func(...string) (string, error), what string) {
		t.Helper()
		out, err := who("auth", "whoami")
		if err != nil || !regexp.MustCompile(`(?m)^Username\s+system:serviceaccount:dev:robot$`).MatchString(out) {
			t.Errorf("whoami with %s: %v %s", what, err, out)
		}
	}
	wantWhoami(s.tokenUser("robot", token), "kubectl create token's token")

	// A legacy token Secret: the controller-manager fills it; its token is the account.
	if out, err := s.runEnv(nil, `apiVersion: v1
kind: Secret
metadata:
  name: robot-token
  namespace: dev
  annotations:
    kubernetes.io/service-account.name: robot
type: kubernetes.io/service-account-token
`, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply the token secret: %v %s", err, out)
	}
	var legacy string
	waitfor.Condition(t, 30*time.Second, "the token secret filled", func() (bool, string) {
		out, err := s.run("get", "secret", "robot-token", "-n", "dev", "-o", "jsonpath={.data.token}")
		if err != nil || out == "" {
			return false, out
		}
		b, err := base64.StdEncoding.DecodeString(out)
		legacy = string(b)
		return err == nil, out
	})
	wantWhoami(s.tokenUser("legacy", legacy), "the legacy Secret's token")
}
