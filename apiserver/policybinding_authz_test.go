package apiserver_test

import (
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestPolicyBindingParamAuthorization: as Kubernetes' registry strategies check it, the
// writer of a policy binding with a paramRef must be allowed to read the params: get
// the named one, list them for a selector, of the policy's paramKind's resource (every
// resource when the policy cannot be found); a refusal is 422 at spec.paramRef; an
// update that keeps the paramRef is not checked again; an administrator is never
// refused; a binding without a paramRef needs nothing.
func TestPolicyBindingParamAuthorization(t *testing.T) {
	dir := apicluster.Certs(t)
	toks, err := auth.ParseTokens(auth.HashToken("alice-token") + ",alice\n")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Tokens: toks})
	admin := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	alice := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "alice-token")
	post := func(rc *restClient, path string, obj any, code int, what string) reply {
		t.Helper()
		return rc.want(rc.do("POST", path, "application/json", "", obj), code, what)
	}
	rbacPath := "/apis/rbac.authorization.k8s.io/v1"
	tm := func(kind string) metav1.TypeMeta {
		return metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: kind}
	}
	grant := func(name string, rules ...rbacv1.PolicyRule) {
		t.Helper()
		post(admin, rbacPath+"/clusterroles", &rbacv1.ClusterRole{TypeMeta: tm("ClusterRole"), ObjectMeta: metav1.ObjectMeta{Name: name}, Rules: rules}, 201, "role "+name)
		post(admin, rbacPath+"/clusterrolebindings", &rbacv1.ClusterRoleBinding{TypeMeta: tm("ClusterRoleBinding"), ObjectMeta: metav1.ObjectMeta{Name: name},
			RoleRef: rbacv1.RoleRef{Kind: "ClusterRole", Name: name}, Subjects: []rbacv1.Subject{{Kind: "User", Name: "alice"}}}, 201, "binding "+name)
	}
	grant("policy-binder", rbacv1.PolicyRule{Verbs: []string{"get", "create", "update"}, APIGroups: []string{admissionregistrationv1.GroupName},
		Resources: []string{"mutatingadmissionpolicybindings", "validatingadmissionpolicybindings"}})

	team := mutatingPolicy("team", admissionregistrationv1.NeverReinvocationPolicy,
		jsonPatchMutation(`[JSONPatch{op: "add", path: "/metadata/annotations", value: {"team": params.data.team}}]`))
	team.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}
	post(admin, mutatingPoliciesBase, team, 201, "the param policy")
	paramBinding := func(name, policy string, ref *admissionregistrationv1.ParamRef) *admissionregistrationv1.MutatingAdmissionPolicyBinding {
		b := mutatingBinding(name, policy, "basic")
		b.Spec.ParamRef = ref
		return b
	}
	named := &admissionregistrationv1.ParamRef{Name: "teams", Namespace: "default", ParameterNotFoundAction: new(admissionregistrationv1.DenyAction)}
	selected := &admissionregistrationv1.ParamRef{Selector: &metav1.LabelSelector{}, Namespace: "default", ParameterNotFoundAction: new(admissionregistrationv1.DenyAction)}
	refused := func(rc *restClient, method, path string, obj any, want string) {
		t.Helper()
		st := rc.want(rc.do(method, path, "application/json", "", obj), 422, method+" "+path).status()
		if st.Reason != metav1.StatusReasonInvalid || st.Details == nil || len(st.Details.Causes) != 1 ||
			st.Details.Causes[0].Field != "spec.paramRef" || st.Details.Causes[0].Type != metav1.CauseTypeForbidden || !strings.Contains(st.Message, want) {
			t.Errorf("%s %s: %+v, want spec.paramRef forbidden: %q", method, path, st, want)
		}
	}

	refused(alice, "POST", mutatingBindingsBase, paramBinding("team", "team", named),
		`spec.paramRef: Forbidden: user &{alice  [system:authenticated] map[]} does not have "get" permission on the object referenced by paramRef`)
	refused(alice, "POST", mutatingBindingsBase, paramBinding("team", "nope", named),
		`unable to get policy nope to determine minimum required permissions and user &{alice  [system:authenticated] map[]} does not have "get" permission for all groups, versions and resources`)
	post(alice, mutatingBindingsBase, mutatingBinding("plain", "team", "basic"), 201, "a binding without paramRef")
	post(admin, mutatingBindingsBase, paramBinding("by-admin", "team", named), 201, "an administrator's binding")

	// Allowed to get ConfigMaps, not to list them.
	grant("configmap-getter", rbacv1.PolicyRule{Verbs: []string{"get"}, APIGroups: []string{""}, Resources: []string{"configmaps"}})
	b := decodeJSON[admissionregistrationv1.MutatingAdmissionPolicyBinding](t, post(alice, mutatingBindingsBase, paramBinding("team", "team", named), 201, "a binding alice may read the param of").body)
	refused(alice, "POST", mutatingBindingsBase, paramBinding("team-selected", "team", selected), `does not have "list" permission on the object referenced by paramRef`)
	// An update keeping the paramRef is not checked; one changing it to a selector is.
	b.Labels = map[string]string{"touched": "yes"}
	b = decodeJSON[admissionregistrationv1.MutatingAdmissionPolicyBinding](t, alice.want(alice.do("PUT", mutatingBindingsBase+"/team", "application/json", "", b), 200, "an update keeping the paramRef").body)
	b.Spec.ParamRef = selected
	refused(alice, "PUT", mutatingBindingsBase+"/team", b, `does not have "list" permission on the object referenced by paramRef`)

	// The validating policies' bindings likewise.
	limit := policy("limit", admissionregistrationv1.ValidatingAdmissionPolicySpec{MatchConstraints: deploymentRules(),
		ParamKind:   &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "Secret"},
		Validations: []admissionregistrationv1.Validation{{Expression: "true"}}})
	post(admin, policiesBase, limit, 201, "a validating policy of Secret params")
	vb := binding("limit", "limit", admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{ParamRef: named,
		ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}})
	refused(alice, "POST", bindingsBase, vb, `does not have "get" permission on the object referenced by paramRef`)
}
