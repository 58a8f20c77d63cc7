package auth

import (
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki"
)

func testPolicy() *RBAC {
	r := NewRBAC()
	meta := func(ns, name string) metav1.ObjectMeta { return metav1.ObjectMeta{Namespace: ns, Name: name} }
	user := func(name string) rbacv1.Subject { return rbacv1.Subject{Kind: rbacv1.UserKind, Name: name} }
	group := func(name string) rbacv1.Subject { return rbacv1.Subject{Kind: rbacv1.GroupKind, Name: name} }
	for _, o := range []kinds.Object{
		&rbacv1.Role{ObjectMeta: meta("dev", "pod-reader"), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"pods", "pods/log"}}}},
		&rbacv1.Role{ObjectMeta: meta("dev", "one-config"), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get", "update"}, APIGroups: []string{""}, Resources: []string{"configmaps"}, ResourceNames: []string{"app"}}}},
		&rbacv1.ClusterRole{ObjectMeta: meta("", "deployer"), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"*"}, APIGroups: []string{"apps"}, Resources: []string{"deployments", "*/scale"}}}},
		&rbacv1.ClusterRole{ObjectMeta: meta("", "node-reader"), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"nodes"}},
			{Verbs: []string{"get"}, NonResourceURLs: []string{"/healthz", "/apis/*"}}}},
		&rbacv1.ClusterRole{ObjectMeta: meta("", "patcher"), Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"patch"}, APIGroups: []string{"*"}, Resources: []string{"*"}}}},
		&rbacv1.RoleBinding{ObjectMeta: meta("dev", "alice-reads"), RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "pod-reader"},
			Subjects: []rbacv1.Subject{user("alice")}},
		&rbacv1.RoleBinding{ObjectMeta: meta("dev", "alice-config"), RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "one-config"},
			Subjects: []rbacv1.Subject{user("alice")}},
		// A ClusterRole bound in one namespace grants it there alone.
		&rbacv1.RoleBinding{ObjectMeta: meta("dev", "ci-deploys"), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "deployer"},
			Subjects: []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: "ci"}}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: meta("", "ops-nodes"), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "node-reader"},
			Subjects: []rbacv1.Subject{group("ops")}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: meta("", "everyone-patches"), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "patcher"},
			Subjects: []rbacv1.Subject{user("patch-only")}},
		&rbacv1.ClusterRoleBinding{ObjectMeta: meta("", "dangling"), RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "gone"},
			Subjects: []rbacv1.Subject{user("bob")}},
	} {
		r.Put(o)
	}
	return r
}

// TestRBACAuthorize: RBAC's rules unioned with the built-in ones, as Kubernetes'
// Node,RBAC authorizers decide.
func TestRBACAuthorize(t *testing.T) {
	az := Authorizer{RBAC: testPolicy()}
	alice := User{Name: "alice", Groups: []string{GroupAuthenticated}}
	ops := User{Name: "carol", Groups: []string{"ops", GroupAuthenticated}}
	ci := User{Name: "system:serviceaccount:dev:ci", Groups: []string{"system:serviceaccounts", "system:serviceaccounts:dev", GroupAuthenticated}}
	for _, tc := range []struct {
		what   string
		a      Attributes
		allow  bool
		reason string
	}{
		{"a role's verb in its namespace", Attributes{User: alice, Verb: List, Resource: "pods", Namespace: "dev"}, true, ""},
		{"a subresource named", Attributes{User: alice, Verb: Get, Resource: "pods", Subresource: "log", Namespace: "dev", Name: "p"}, true, ""},
		{"another namespace", Attributes{User: alice, Verb: List, Resource: "pods", Namespace: "prod"}, false, ""},
		{"all namespaces", Attributes{User: alice, Verb: List, Resource: "pods"}, false, ""},
		{"a verb not granted", Attributes{User: alice, Verb: Delete, Resource: "pods", Namespace: "dev", Name: "p"}, false, ""},
		{"a subresource not granted", Attributes{User: alice, Verb: Update, Resource: "pods", Subresource: "status", Namespace: "dev", Name: "p"}, false, ""},
		{"a resource name granted", Attributes{User: alice, Verb: Update, Resource: "configmaps", Namespace: "dev", Name: "app"}, true, ""},
		{"another name", Attributes{User: alice, Verb: Update, Resource: "configmaps", Namespace: "dev", Name: "db"}, false, ""},
		{"a list is no name", Attributes{User: alice, Verb: List, Resource: "configmaps", Namespace: "dev"}, false, ""},
		{"the group through the plural", Attributes{User: ci, Verb: Delete, Resource: "deployments", Namespace: "dev", Name: "web"}, true, ""},
		{"*/scale", Attributes{User: ci, Verb: Update, Resource: "deployments", Subresource: "scale", Namespace: "dev", Name: "web"}, true, ""},
		{"a service account's binding elsewhere", Attributes{User: ci, Verb: Get, Resource: "deployments", Namespace: "prod", Name: "web"}, false, ""},
		{"another group's resource", Attributes{User: ci, Verb: Get, Resource: "pods", Namespace: "dev", Name: "p"}, false, ""},
		{"a group's ClusterRoleBinding", Attributes{User: ops, Verb: List, Resource: "nodes"}, true, ""},
		{"a non-resource URL", Attributes{User: ops, Verb: Get, Path: "/healthz"}, true, ""},
		{"a non-resource prefix", Attributes{User: ops, Verb: Get, Path: "/apis/apps/v1"}, true, ""},
		{"a non-resource URL not granted", Attributes{User: ops, Verb: Get, Path: "/metrics"}, false, ""},
		{"patch is Kubernetes' verb", Attributes{User: User{Name: "patch-only"}, Verb: Update, RequestVerb: "patch", Resource: "pods", Namespace: "x", Name: "p"}, true, ""},
		{"update is not patch", Attributes{User: User{Name: "patch-only"}, Verb: Update, Resource: "pods", Namespace: "x", Name: "p"}, false, ""},
		{"a missing role", Attributes{User: User{Name: "bob"}, Verb: Get, Resource: "pods", Namespace: "x", Name: "p"}, false,
			`user "bob" cannot get pods "x/p": RBAC: clusterrole.rbac.authorization.k8s.io "gone" not found`},
		{"system:masters is an administrator", Attributes{User: User{Name: "root", Groups: []string{GroupMasters}}, Verb: Create, Resource: "pods", Subresource: SubresourceExec, Namespace: "x", Name: "p"}, true, ""},
		{"the built-in rules still hold", Attributes{User: User{Name: "cm", Groups: []string{pki.GroupControllerManager}}, Verb: Create, Resource: "pods", Namespace: "x"}, true, ""},
		{"nobody", Attributes{User: User{Name: "eve", Groups: []string{GroupAuthenticated}}, Verb: Get, Resource: "pods", Namespace: "dev", Name: "p"}, false,
			`user "eve" cannot get pods "dev/p"`},
	} {
		_, err := az.Authorize(tc.a)
		if (err == nil) != tc.allow {
			t.Errorf("%s: allowed %v (%v), want %v", tc.what, err == nil, err, tc.allow)
		}
		if tc.reason != "" && (err == nil || err.Error() != tc.reason) {
			t.Errorf("%s: %v, want %q", tc.what, err, tc.reason)
		}
	}
	// Taken out, a binding grants nothing.
	az.RBAC.Remove(kinds.RoleBinding, "dev", "alice-reads")
	if _, err := az.Authorize(Attributes{User: alice, Verb: List, Resource: "pods", Namespace: "dev"}); err == nil {
		t.Error("a removed binding still grants")
	}
	az.RBAC.RemoveUnless(kinds.ClusterRoleBinding, func(_, name string) bool { return name != "ops-nodes" })
	if _, err := az.Authorize(Attributes{User: ops, Verb: List, Resource: "nodes"}); err == nil {
		t.Error("a binding gone from a fresh list still grants")
	}
}

func TestRBACAllowReason(t *testing.T) {
	r := testPolicy()
	ok, reason := r.Allows(Attributes{User: User{Name: "alice"}, Verb: Get, Resource: "pods", Namespace: "dev", Name: "p"})
	if want := `RBAC: allowed by RoleBinding "alice-reads/dev" of Role "pod-reader" to User "alice"`; !ok || reason != want {
		t.Errorf("got %v %q, want %q", ok, reason, want)
	}
	rules, missing := r.RulesFor(User{Name: "bob"}, "")
	if len(rules) != 0 || len(missing) != 1 || !strings.Contains(missing[0], `"gone" not found`) {
		t.Errorf("bob's rules %v, missing %v", rules, missing)
	}
}

// BenchmarkRBACAuthorize is the hot path of a request the built-in rules deny: a user
// in a few groups, among 1000 bindings.
func BenchmarkRBACAuthorize(b *testing.B) {
	r := testPolicy()
	for i := range 1000 {
		ns := "ns" + string(rune('a'+i%26))
		r.Put(&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "b" + strings.Repeat("x", i%7) + string(rune(i))},
			RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "deployer"}, Subjects: []rbacv1.Subject{{Kind: rbacv1.UserKind, Name: "u" + string(rune(i))}}})
	}
	az := Authorizer{RBAC: r}
	a := Attributes{User: User{Name: "alice", Groups: []string{"dev", "qa", GroupAuthenticated}}, Verb: Get, Resource: "pods", Subresource: "log", Namespace: "dev", Name: "p"}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := az.Authorize(a); err != nil {
			b.Fatal(err)
		}
	}
}
