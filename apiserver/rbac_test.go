package apiserver_test

import (
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestRESTRBAC: a token user the built-in rules deny is allowed by a RoleBinding in its
// namespace alone, then everywhere by a ClusterRoleBinding; it may not write a role or
// a binding that grants what it does not hold (Kubernetes' escalation refusal), may
// write one that grants what it holds, and its SelfSubjectAccessReviews answer through
// RBAC. A request follows a binding at once: the index catches up before refusing.
func TestRESTRBAC(t *testing.T) {
	dir := apicluster.Certs(t)
	toks, err := auth.ParseTokens(auth.HashToken("alice-token") + ",alice\n" + auth.HashToken("root-token") + ",root,system:masters\n")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Tokens: toks})
	admin := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	alice := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "alice-token")
	root := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "root-token")
	post := func(rc *restClient, path string, obj any, code int, what string) reply {
		t.Helper()
		return rc.want(rc.do("POST", path, "application/json", "", obj), code, what)
	}
	for _, ns := range []string{"dev", "prod"} {
		post(admin, "/api/v1/namespaces", &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
			ObjectMeta: metav1.ObjectMeta{Name: ns}}, 201, "namespace "+ns)
	}
	forbidden := func(method, path, body, want string) {
		t.Helper()
		ct := ""
		if body != "" {
			ct = "application/json"
		}
		st := alice.want(alice.do(method, path, ct, "", body), 403, method+" "+path).status()
		if st.Reason != metav1.StatusReasonForbidden || !strings.Contains(st.Message, want) {
			t.Errorf("%s %s: %q, want %q", method, path, st.Message, want)
		}
	}
	forbidden("GET", "/api/v1/namespaces/dev/pods", "", `user "alice" cannot list pods in namespace "dev"`)

	rbacPath := "/apis/rbac.authorization.k8s.io/v1"
	tm := func(kind string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: kind}
	}
	podReader := []rbacv1.PolicyRule{{Verbs: []string{"get", "list", "watch"}, APIGroups: []string{""}, Resources: []string{"pods"}}}
	roleWriter := []rbacv1.PolicyRule{{Verbs: []string{"create"}, APIGroups: []string{rbacv1.GroupName}, Resources: []string{"roles", "rolebindings"}}}
	post(admin, rbacPath+"/namespaces/dev/roles", &rbacv1.Role{TypeMeta: tm("Role"), ObjectMeta: metav1.ObjectMeta{Name: "reader"},
		Rules: append(podReader, roleWriter...)}, 201, "role")
	rb := post(admin, rbacPath+"/namespaces/dev/rolebindings", &rbacv1.RoleBinding{TypeMeta: tm("RoleBinding"), ObjectMeta: metav1.ObjectMeta{Name: "alice"},
		RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "reader"}, Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}}, 201, "rolebinding")
	if got := decodeJSON[rbacv1.RoleBinding](t, rb.body); got.RoleRef.APIGroup != rbacv1.GroupName || got.Subjects[0].APIGroup != rbacv1.GroupName {
		t.Errorf("defaults: %+v", got)
	}
	alice.want(alice.do("GET", "/api/v1/namespaces/dev/pods", "", "", nil), 200, "pods in dev, by the RoleBinding")
	forbidden("GET", "/api/v1/namespaces/prod/pods", "", `user "alice" cannot list pods in namespace "prod"`)
	forbidden("DELETE", "/api/v1/namespaces/dev/pods/x", "", `user "alice" cannot delete pods "dev/x"`)

	// A rule names a group: events.k8s.io's Events are core/v1's objects, served in a
	// second group, and a rule for one group does not open the other.
	post(admin, rbacPath+"/namespaces/prod/roles", &rbacv1.Role{TypeMeta: tm("Role"), ObjectMeta: metav1.ObjectMeta{Name: "events-v1"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"list"}, APIGroups: []string{"events.k8s.io"}, Resources: []string{"events"}}}}, 201, "events role")
	post(admin, rbacPath+"/namespaces/prod/rolebindings", &rbacv1.RoleBinding{TypeMeta: tm("RoleBinding"), ObjectMeta: metav1.ObjectMeta{Name: "alice-events"},
		RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "events-v1"}, Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}}, 201, "events rolebinding")
	alice.want(alice.do("GET", "/apis/events.k8s.io/v1/namespaces/prod/events", "", "", nil), 200, "events.k8s.io events in prod, by the RoleBinding")
	forbidden("GET", "/api/v1/namespaces/prod/events", "", `user "alice" cannot list events in namespace "prod"`)

	// Escalation: alice may create roles in dev, but not one granting secrets.
	secrets := `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"Role","metadata":{"name":"secret-reader"},` +
		`"rules":[{"apiGroups":[""],"resources":["secrets"],"verbs":["get","list"]}]}`
	forbidden("POST", rbacPath+"/namespaces/dev/roles", secrets, `roles.rbac.authorization.k8s.io "secret-reader" is forbidden: user "alice" (groups=["system:authenticated"]) `+
		`is attempting to grant RBAC permissions not currently held:`+"\n"+`{APIGroups:[""], Resources:["secrets"], Verbs:["get" "list"]}`)
	post(alice, rbacPath+"/namespaces/dev/roles", &rbacv1.Role{TypeMeta: tm("Role"), ObjectMeta: metav1.ObjectMeta{Name: "pods-too"},
		Rules: podReader}, 201, "a role granting what alice holds")
	// A binding of a role alice does not hold, and of one she does.
	forbidden("POST", rbacPath+"/namespaces/dev/rolebindings", `{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"RoleBinding","metadata":{"name":"admins"},`+
		`"roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"cluster-admin"},"subjects":[{"kind":"User","name":"bob"}]}`,
		`rolebindings.rbac.authorization.k8s.io "admins" is forbidden: user "alice" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:`+
			"\n"+`{APIGroups:["*"], Resources:["*"], Verbs:["*"]}`)
	post(alice, rbacPath+"/namespaces/dev/rolebindings", &rbacv1.RoleBinding{TypeMeta: tm("RoleBinding"), ObjectMeta: metav1.ObjectMeta{Name: "bob"},
		RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "pods-too"}, Subjects: []rbacv1.Subject{{Kind: "User", Name: "bob"}}}, 201, "a binding of what alice holds")
	// system:masters is an administrator: no escalation check.
	post(root, rbacPath+"/namespaces/dev/roles", &rbacv1.Role{TypeMeta: tm("Role"), ObjectMeta: metav1.ObjectMeta{Name: "secret-reader"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}}}}, 201, "system:masters' role")

	// A ClusterRoleBinding of the default view role: pods everywhere.
	post(admin, rbacPath+"/clusterrolebindings", &rbacv1.ClusterRoleBinding{TypeMeta: tm("ClusterRoleBinding"), ObjectMeta: metav1.ObjectMeta{Name: "alice-views"},
		RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: "cluster-admin"}, Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}}, 201, "clusterrolebinding")
	alice.want(alice.do("GET", "/api/v1/namespaces/prod/pods", "", "", nil), 200, "pods in prod, by the ClusterRoleBinding")
	alice.want(alice.do("GET", "/api/v1/nodes", "", "", nil), 200, "nodes, by the ClusterRoleBinding")
	admin.want(admin.do("DELETE", rbacPath+"/clusterrolebindings/alice-views", "", "", nil), 200, "delete clusterrolebinding")

	// kubectl auth can-i: the union's answer, with RBAC's reason.
	for _, tc := range []struct {
		attrs   authorizationv1.ResourceAttributes
		allowed bool
		reason  string
	}{
		{authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "dev"}, true, `RBAC: allowed by RoleBinding "alice/dev" of Role "reader" to User "alice"`},
		{authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "prod"}, false, `user "alice" cannot list pods in namespace "prod"`},
		{authorizationv1.ResourceAttributes{Verb: "create", Group: "authorization.k8s.io", Resource: "selfsubjectaccessreviews"}, true, "system:basic-user"},
	} {
		review := &authorizationv1.SelfSubjectAccessReview{TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SelfSubjectAccessReview"},
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &tc.attrs}}
		got := decodeJSON[authorizationv1.SelfSubjectAccessReview](t, post(alice, "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", review, 201, "review").body)
		if got.Status.Allowed != tc.allowed || !strings.Contains(got.Status.Reason, tc.reason) {
			t.Errorf("can-i %+v: %+v, want %v %q", tc.attrs, got.Status, tc.allowed, tc.reason)
		}
	}
}

// TestRESTRBACGCOnlyUpdate: an update of a role that changes only its ownerReferences
// or finalizers (the garbage collector's fields) needs no escalation check, as in
// Kubernetes; any other change of it still does.
func TestRESTRBACGCOnlyUpdate(t *testing.T) {
	dir := apicluster.Certs(t)
	toks, err := auth.ParseTokens(auth.HashToken("alice-token") + ",alice\n")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Tokens: toks})
	admin := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	alice := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "alice-token")
	admin.want(admin.do("POST", "/api/v1/namespaces", "application/json", "", &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "dev"}}), 201, "namespace")
	rbacPath := "/apis/rbac.authorization.k8s.io/v1/namespaces/dev"
	tm := func(kind string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: kind}
	}
	admin.want(admin.do("POST", rbacPath+"/roles", "application/json", "", &rbacv1.Role{TypeMeta: tm("Role"), ObjectMeta: metav1.ObjectMeta{Name: "role-editor"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "patch"}, APIGroups: []string{rbacv1.GroupName}, Resources: []string{"roles"}}}}), 201, "role-editor")
	admin.want(admin.do("POST", rbacPath+"/rolebindings", "application/json", "", &rbacv1.RoleBinding{TypeMeta: tm("RoleBinding"), ObjectMeta: metav1.ObjectMeta{Name: "alice"},
		RoleRef: rbacv1.RoleRef{Kind: "Role", Name: "role-editor"}, Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}}), 201, "rolebinding")
	admin.want(admin.do("POST", rbacPath+"/roles", "application/json", "", &rbacv1.Role{TypeMeta: tm("Role"), ObjectMeta: metav1.ObjectMeta{Name: "secrets"},
		Rules: []rbacv1.PolicyRule{{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"secrets"}}}}), 201, "secrets role")
	patch := func(body string) reply {
		return alice.do("PATCH", rbacPath+"/roles/secrets", "application/merge-patch+json", "", body)
	}
	alice.want(patch(`{"metadata":{"finalizers":["example.com/hold"],"ownerReferences":[{"apiVersion":"v1","kind":"ConfigMap","name":"owner","uid":"1234"}]}}`),
		200, "a patch of the GC's fields alone")
	st := alice.want(patch(`{"metadata":{"labels":{"a":"b"}}}`), 403, "a patch of a label").status()
	if !strings.Contains(st.Message, "is attempting to grant RBAC permissions not currently held") {
		t.Errorf("a patch of a label: %s", st.Message)
	}
}
