package apiserver_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/metadata"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki/serviceaccount"
	"github.com/skiffhq/skiff/test/apicluster"
)

// headerTransport adds headers to every request (kubectl --as).
type headerTransport struct {
	h    http.Header
	next http.RoundTripper
}

func (t headerTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	for k, vs := range t.h {
		r.Header[k] = vs
	}
	return t.next.RoundTrip(r)
}

// as is rc acting as another identity through impersonation headers.
func (rc *restClient) as(h http.Header) *restClient {
	return &restClient{t: rc.t, base: rc.base, c: &http.Client{Transport: headerTransport{h: h, next: rc.c.Transport}}}
}

func rbacObj[T any](t *testing.T, rc *restClient, path string, obj T) {
	t.Helper()
	rc.want(rc.do("POST", "/apis/rbac.authorization.k8s.io/v1"+path, "application/json", "", obj), 201, "create "+path)
}

// TestRESTImpersonation: a user may act as another user, group or service account only
// where RBAC grants it the impersonate verb on them (Kubernetes' Forbidden otherwise,
// in Kubernetes' words); the identity acted as is what authorization and whoami see;
// groups without a user are a Bad Request; gRPC's metadata impersonates as the headers.
func TestRESTImpersonation(t *testing.T) {
	dir := apicluster.Certs(t)
	toks, err := auth.ParseTokens(auth.HashToken("ops-token") + ",ops\n")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Tokens: toks})
	admin := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	ops := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "ops-token")
	admin.want(admin.do("POST", "/api/v1/namespaces", "application/json", "", &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "dev"}}), 201, "namespace")

	whoami := func(rc *restClient) authenticationv1.UserInfo {
		t.Helper()
		return decodeJSON[authenticationv1.SelfSubjectReview](t, rc.want(rc.do("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", "application/json", "",
			`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`), 201, "whoami").body).Status.UserInfo
	}
	refused := func(rc *restClient, code int, want string) {
		t.Helper()
		st := rc.want(rc.do("GET", "/api/v1/namespaces/dev/pods", "", "", nil), code, "impersonated list").status()
		if st.Message != want {
			t.Errorf("refusal %q, want %q", st.Message, want)
		}
	}
	asAlice := ops.as(http.Header{"Impersonate-User": {"alice"}})
	refused(asAlice, 403, `users "alice" is forbidden: User "ops" cannot impersonate resource "users" in API group "" at the cluster scope`)

	// ops may impersonate alice (by name) and the group readers; alice may list pods in dev.
	rbacObj(t, admin, "/clusterroles", &rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: "impersonator"}, Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"impersonate"}, APIGroups: []string{""}, Resources: []string{"users"}, ResourceNames: []string{"alice"}},
			{Verbs: []string{"impersonate"}, APIGroups: []string{""}, Resources: []string{"groups"}, ResourceNames: []string{"readers"}},
			{Verbs: []string{"impersonate"}, APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"userextras/scopes"}},
		}})
	rbacObj(t, admin, "/clusterrolebindings", &rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "ops-impersonates"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "impersonator"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "ops"}}})
	rbacObj(t, admin, "/namespaces/dev/roles", &rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"}, Rules: []rbacv1.PolicyRule{{Verbs: []string{"list"}, APIGroups: []string{""}, Resources: []string{"pods"}}}})
	rbacObj(t, admin, "/namespaces/dev/rolebindings", &rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "readers"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects: []rbacv1.Subject{{Kind: "Group", APIGroup: rbacv1.GroupName, Name: "readers"}}})

	// alice alone is not a reader; alice in readers is; ops itself is neither.
	refused(asAlice, 403, `user "alice" cannot list pods in namespace "dev"`)
	asReader := ops.as(http.Header{"Impersonate-User": {"alice"}, "Impersonate-Group": {"readers"}, "Impersonate-Extra-Scopes": {"view"}})
	asReader.want(asReader.do("GET", "/api/v1/namespaces/dev/pods", "", "", nil), 200, "alice in readers")
	ops.want(ops.do("GET", "/api/v1/namespaces/dev/pods", "", "", nil), 403, "ops itself")
	if ui := whoami(asReader); ui.Username != "alice" || strings.Join(ui.Groups, ",") != "readers,system:authenticated" ||
		strings.Join(ui.Extra["scopes"], ",") != "view" {
		t.Errorf("whoami as alice in readers: %+v", ui)
	}
	refused(ops.as(http.Header{"Impersonate-User": {"bob"}}), 403,
		`users "bob" is forbidden: User "ops" cannot impersonate resource "users" in API group "" at the cluster scope`)
	refused(ops.as(http.Header{"Impersonate-User": {"alice"}, "Impersonate-Group": {"system:masters"}}), 403,
		`groups "system:masters" is forbidden: User "ops" cannot impersonate resource "groups" in API group "" at the cluster scope`)
	refused(ops.as(http.Header{"Impersonate-User": {"alice"}, "Impersonate-Uid": {"1234"}}), 403,
		`uids.authentication.k8s.io "1234" is forbidden: User "ops" cannot impersonate resource "uids" in API group "authentication.k8s.io" at the cluster scope`)
	refused(ops.as(http.Header{"Impersonate-User": {"system:serviceaccount:dev:ci"}}), 403,
		`serviceaccounts "ci" is forbidden: User "ops" cannot impersonate resource "serviceaccounts" in API group "" in the namespace "dev"`)
	st := ops.want(ops.as(http.Header{"Impersonate-Group": {"readers"}}).do("GET", "/api/v1/namespaces/dev/pods", "", "", nil), 400, "group without user").status()
	if !strings.Contains(st.Message, "without impersonating a user") {
		t.Errorf("group without user: %s", st.Message)
	}

	// An administrator may impersonate anyone: a service account gets its groups, and a
	// node is held to the node rule.
	if ui := whoami(admin.as(http.Header{"Impersonate-User": {"system:serviceaccount:dev:ci"}})); ui.Username != "system:serviceaccount:dev:ci" ||
		strings.Join(ui.Groups, ",") != "system:serviceaccounts,system:serviceaccounts:dev,system:authenticated" {
		t.Errorf("whoami as a service account: %+v", ui)
	}
	asNode := admin.as(http.Header{"Impersonate-User": {"system:node:w9"}, "Impersonate-Group": {"skiff:nodes"}})
	asNode.want(asNode.do("GET", "/api/v1/nodes", "", "", nil), 200, "a node reads nodes")
	st = asNode.want(asNode.do("GET", "/api/v1/namespaces/dev/pods", "", "", nil), 403, "a node lists pods not its own").status()
	if !strings.Contains(st.Message, "a node may only list pods with fieldSelector spec.nodeName=w9") {
		t.Errorf("node rule: %s", st.Message)
	}

	// gRPC: the same, as metadata.
	cs := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	ctx := metadata.AppendToOutgoingContext(testCtx(t), "impersonate-user", "alice")
	if _, err := cs.Pods.List(ctx, "dev", client.ListOptions{}); !client.IsForbidden(err) || !strings.Contains(err.Error(), `user "alice" cannot list pods`) {
		t.Errorf("gRPC list as alice: %v", err)
	}
	ctx = metadata.AppendToOutgoingContext(ctx, "impersonate-group", "readers")
	if _, err := cs.Pods.List(ctx, "dev", client.ListOptions{}); err != nil {
		t.Errorf("gRPC list as alice in readers: %v", err)
	}
}

// TestRESTReviews: SubjectAccessReview and LocalSubjectAccessReview answer for another
// user (and need create on them), SelfSubjectRulesReview lists the requester's RBAC
// rules, and TokenReview says whom a token is, with a bound token's extra fields; a
// TokenRequest's life is capped by the maximum expiration.
func TestRESTReviews(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	toks, err := auth.ParseTokens(auth.HashToken("alice-token") + ",alice\n" + auth.HashToken("proxy-token") + ",proxy\n")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Tokens: toks,
		Configure: func(cfg *apiserver.Config) { cfg.ServiceAccounts.MaxExpiration = 2 * time.Hour }})
	admin := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	alice := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "alice-token")
	proxy := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "proxy-token")
	admin.want(admin.do("POST", "/api/v1/namespaces", "application/json", "", &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"},
		ObjectMeta: metav1.ObjectMeta{Name: "dev"}}), 201, "namespace")
	rbacObj(t, admin, "/namespaces/dev/roles", &rbacv1.Role{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "Role"},
		ObjectMeta: metav1.ObjectMeta{Name: "pod-reader"}, Rules: []rbacv1.PolicyRule{{Verbs: []string{"get", "list"}, APIGroups: []string{""}, Resources: []string{"pods"}}}})
	rbacObj(t, admin, "/namespaces/dev/rolebindings", &rbacv1.RoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "alice"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "pod-reader"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "alice"}}})

	sar := func(rc *restClient, path string, spec authorizationv1.SubjectAccessReviewSpec, code int) reply {
		t.Helper()
		kind := "SubjectAccessReview"
		if strings.Contains(path, "local") {
			kind = "LocalSubjectAccessReview"
		}
		return rc.want(rc.do("POST", path, "application/json", "", &authorizationv1.SubjectAccessReview{
			TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: kind}, Spec: spec}), code, kind)
	}
	const sarPath, lsarPath = "/apis/authorization.k8s.io/v1/subjectaccessreviews", "/apis/authorization.k8s.io/v1/namespaces/dev/localsubjectaccessreviews"
	listDev := authorizationv1.SubjectAccessReviewSpec{User: "alice", ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "dev"}}
	// proxy may not ask about others until it is bound system:auth-delegator's rights.
	if st := sar(proxy, sarPath, listDev, 403).status(); !strings.Contains(st.Message, `user "proxy" cannot create subjectaccessreviews`) {
		t.Errorf("SAR without rights: %s", st.Message)
	}
	rbacObj(t, admin, "/clusterroles", &rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
		ObjectMeta: metav1.ObjectMeta{Name: "delegator"}, Rules: []rbacv1.PolicyRule{
			{Verbs: []string{"create"}, APIGroups: []string{"authorization.k8s.io"}, Resources: []string{"subjectaccessreviews", "localsubjectaccessreviews"}},
			{Verbs: []string{"create"}, APIGroups: []string{"authentication.k8s.io"}, Resources: []string{"tokenreviews"}}}})
	rbacObj(t, admin, "/clusterrolebindings", &rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "proxy"}, RoleRef: rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "delegator"},
		Subjects: []rbacv1.Subject{{Kind: "User", APIGroup: rbacv1.GroupName, Name: "proxy"}}})
	for _, tc := range []struct {
		path    string
		spec    authorizationv1.SubjectAccessReviewSpec
		allowed bool
		reason  string
	}{
		{sarPath, listDev, true, `RBAC: allowed by RoleBinding "alice/dev" of Role "pod-reader" to User "alice"`},
		{sarPath, authorizationv1.SubjectAccessReviewSpec{User: "alice", ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "delete", Resource: "pods", Namespace: "dev"}}, false, `user "alice" cannot delete pods in namespace "dev"`},
		{sarPath, authorizationv1.SubjectAccessReviewSpec{User: "bob", ResourceAttributes: &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "dev"}}, false, `user "bob" cannot list pods`},
		{sarPath, authorizationv1.SubjectAccessReviewSpec{User: "x", Groups: []string{"system:masters"}, NonResourceAttributes: &authorizationv1.NonResourceAttributes{Verb: "get", Path: "/metrics"}}, true, ""},
		{lsarPath, listDev, true, `RBAC: allowed by RoleBinding "alice/dev"`},
	} {
		got := decodeJSON[authorizationv1.SubjectAccessReview](t, sar(proxy, tc.path, tc.spec, 201).body)
		if got.Status.Allowed != tc.allowed || !strings.Contains(got.Status.Reason, tc.reason) {
			t.Errorf("%s %+v: %+v, want %v %q", tc.path, tc.spec.ResourceAttributes, got.Status, tc.allowed, tc.reason)
		}
	}
	other := listDev
	other.ResourceAttributes = &authorizationv1.ResourceAttributes{Verb: "list", Resource: "pods", Namespace: "prod"}
	if st := sar(proxy, lsarPath, other, 422).status(); !strings.Contains(st.Message, "spec.resourceAttributes.namespace") {
		t.Errorf("LSAR of another namespace: %s", st.Message)
	}
	if st := sar(proxy, sarPath, authorizationv1.SubjectAccessReviewSpec{ResourceAttributes: listDev.ResourceAttributes}, 422).status(); !strings.Contains(st.Message, "at least one of user or group") {
		t.Errorf("SAR of nobody: %s", st.Message)
	}
	proxy.want(proxy.do("GET", sarPath, "", "", nil), 405, "GET a review")

	// kubectl auth can-i --list: alice's rules in dev are her Role's and every user's.
	rules := decodeJSON[authorizationv1.SelfSubjectRulesReview](t, alice.want(alice.do("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", "application/json", "",
		`{"apiVersion":"authorization.k8s.io/v1","kind":"SelfSubjectRulesReview","spec":{"namespace":"dev"}}`), 201, "rules review").body)
	hasRule := func(rs []authorizationv1.ResourceRule, resource, verb string) bool {
		return slices.ContainsFunc(rs, func(r authorizationv1.ResourceRule) bool {
			return slices.Contains(r.Resources, resource) && slices.Contains(r.Verbs, verb)
		})
	}
	if !hasRule(rules.Status.ResourceRules, "pods", "list") || !hasRule(rules.Status.ResourceRules, "selfsubjectaccessreviews", "create") ||
		hasRule(rules.Status.ResourceRules, "pods", "delete") || len(rules.Status.NonResourceRules) == 0 || rules.Status.Incomplete {
		t.Errorf("alice's rules in dev: %+v", rules.Status)
	}
	rules = decodeJSON[authorizationv1.SelfSubjectRulesReview](t, alice.want(alice.do("POST", "/apis/authorization.k8s.io/v1/selfsubjectrulesreviews", "application/json", "",
		`{"spec":{"namespace":"prod"}}`), 201, "rules review in prod").body)
	if hasRule(rules.Status.ResourceRules, "pods", "list") {
		t.Errorf("alice's rules in prod: %+v", rules.Status)
	}

	// TokenReview of a token-file token, a bad token, and a bound service-account token
	// (its life capped at 2 h; whoami and the review show its pod, node and credential).
	review := func(token string, auds ...string) authenticationv1.TokenReviewStatus {
		t.Helper()
		return decodeJSON[authenticationv1.TokenReview](t, proxy.want(proxy.do("POST", "/apis/authentication.k8s.io/v1/tokenreviews", "application/json", "",
			&authenticationv1.TokenReview{TypeMeta: metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenReview"},
				Spec: authenticationv1.TokenReviewSpec{Token: token, Audiences: auds}}), 201, "token review").body).Status
	}
	if st := review("alice-token"); !st.Authenticated || st.User.Username != "alice" {
		t.Errorf("review of alice's token: %+v", st)
	}
	if st := review("nobody's"); st.Authenticated || st.Error == "" {
		t.Errorf("review of a bad token: %+v", st)
	}
	alice.want(alice.do("POST", "/apis/authentication.k8s.io/v1/tokenreviews", "application/json", "", `{"spec":{"token":"x"}}`), 403, "alice's token review")

	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "robot", Namespace: "dev"}}
	kinds.SetTypeMeta(sa)
	sa = ptrTo(decodeJSON[corev1.ServiceAccount](t, admin.want(admin.do("POST", "/api/v1/namespaces/dev/serviceaccounts", "application/json", "", sa), 201, "account").body))
	pod := boundPod("p", "w1")
	pod.Namespace, pod.Spec.ServiceAccountName = "dev", "robot"
	kinds.SetTypeMeta(pod)
	pod = decodeJSONPod(t, admin.want(admin.do("POST", "/api/v1/namespaces/dev/pods", "application/json", "", pod), 201, "pod").body)
	day := int64(24 * 3600)
	tr := decodeJSON[authenticationv1.TokenRequest](t, admin.want(admin.do("POST", "/api/v1/namespaces/dev/serviceaccounts/robot/token", "application/json", "",
		&authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &day,
			BoundObjectRef: &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: "p"}}}), 201, "token").body)
	if *tr.Spec.ExpirationSeconds != 7200 || tr.Status.ExpirationTimestamp.Time.After(time.Now().Add(2*time.Hour+time.Minute)) {
		t.Errorf("a day's token under a 2 h cap: %d s, expires %v", *tr.Spec.ExpirationSeconds, tr.Status.ExpirationTimestamp)
	}
	claims := decodeClaims(t, tr.Status.Token)
	st := review(tr.Status.Token)
	want := map[string]string{serviceaccount.ExtraPodName: "p", serviceaccount.ExtraPodUID: string(pod.UID), serviceaccount.ExtraNodeName: "w1",
		serviceaccount.ExtraCredentialID: "JTI=" + claims.ID}
	if !st.Authenticated || st.User.Username != "system:serviceaccount:dev:robot" || st.User.UID != string(sa.UID) ||
		len(st.Audiences) != 1 || st.Audiences[0] != serviceaccount.DefaultIssuer {
		t.Errorf("review of the account's token: %+v", st)
	}
	robot := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), tr.Status.Token)
	ui := decodeJSON[authenticationv1.SelfSubjectReview](t, robot.want(robot.do("POST", "/apis/authentication.k8s.io/v1/selfsubjectreviews", "application/json", "",
		`{}`), 201, "whoami").body).Status.UserInfo
	for k, v := range want {
		if got := strings.Join(st.User.Extra[k], ","); got != v {
			t.Errorf("token review extra %s = %q, want %q", k, got, v)
		}
		if got := strings.Join(ui.Extra[k], ","); got != v {
			t.Errorf("whoami extra %s = %q, want %q", k, got, v)
		}
	}
	if st := review(tr.Status.Token, "other-audience"); st.Authenticated {
		t.Errorf("review for another audience: %+v", st)
	}
}
