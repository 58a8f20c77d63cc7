package apiserver_test

import (
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
)

const (
	policiesBase = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicies"
	bindingsBase = "/apis/admissionregistration.k8s.io/v1/validatingadmissionpolicybindings"
	deployments  = "/apis/apps/v1/namespaces/default/deployments"
)

func deploymentRules() *admissionregistrationv1.MatchResources {
	return &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
		RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}}}}}}
}

func policy(name string, spec admissionregistrationv1.ValidatingAdmissionPolicySpec) *admissionregistrationv1.ValidatingAdmissionPolicy {
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	kinds.SetTypeMeta(p)
	return p
}

func binding(name, policy string, spec admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec) *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	spec.PolicyName = policy
	b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: spec}
	kinds.SetTypeMeta(b)
	return b
}

func labelled(d *appsv1.Deployment, k, v string) *appsv1.Deployment {
	d.Labels[k] = v
	return d
}

// TestValidatingAdmissionPolicies: ValidatingAdmissionPolicies over the REST and gRPC
// APIs: a policy bound with Deny refuses a Deployment of more than 5 replicas, created or
// updated, in Kubernetes' words (422 Invalid, the policy and the binding named), and
// admits one of 5; a policy bound with Warn admits with a Warning header; a policy with
// a ConfigMap param reads its limit from it (and, the param gone, parameterNotFoundAction
// Deny refuses); policies are defaulted, and one whose CEL does not compile is refused
// at its field path.
func TestValidatingAdmissionPolicies(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)

	// Refused at its field path: an expression that does not compile.
	bad := policy("bad", admissionregistrationv1.ValidatingAdmissionPolicySpec{MatchConstraints: deploymentRules(),
		Validations: []admissionregistrationv1.Validation{{Expression: "object.spec.replicas"}}})
	st := rc.want(rc.do("POST", policiesBase, "application/json", "", bad), 422, "a policy that does not compile").status()
	if !strings.Contains(st.Message, `spec.validations[0].expression: Invalid value: "object.spec.replicas": must evaluate to bool`) {
		t.Errorf("compilation error: %s", st.Message)
	}
	noActions := binding("none", "bad", admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{})
	st = rc.want(rc.do("POST", bindingsBase, "application/json", "", noActions), 422, "a binding without actions").status()
	if !strings.Contains(st.Message, "spec.validationActions: Required value") {
		t.Errorf("binding validation: %s", st.Message)
	}

	// Deny: at most 5 replicas, only for Deployments labelled tier=web.
	maxReplicas := policy("max-replicas", admissionregistrationv1.ValidatingAdmissionPolicySpec{MatchConstraints: deploymentRules(),
		Validations: []admissionregistrationv1.Validation{{Expression: "object.spec.replicas <= 5",
			MessageExpression: "'replicas must be no greater than 5, got ' + string(object.spec.replicas)"}}})
	got := decodeJSON[admissionregistrationv1.ValidatingAdmissionPolicy](t, rc.want(rc.do("POST", policiesBase, "application/json", "", maxReplicas), 201, "policy").body)
	if got.Spec.FailurePolicy == nil || *got.Spec.FailurePolicy != admissionregistrationv1.Fail || got.Spec.MatchConstraints.MatchPolicy == nil ||
		*got.Spec.MatchConstraints.MatchPolicy != admissionregistrationv1.Equivalent || got.Spec.MatchConstraints.NamespaceSelector == nil ||
		*got.Spec.MatchConstraints.ResourceRules[0].Scope != admissionregistrationv1.AllScopes || got.Generation != 1 {
		t.Errorf("policy defaults: %+v", got.Spec)
	}
	webTier := &admissionregistrationv1.MatchResources{ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "web"}}}
	rc.want(rc.do("POST", bindingsBase, "application/json", "", binding("max-replicas-binding", "max-replicas",
		admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			MatchResources: webTier})), 201, "binding")

	st = rc.want(rc.do("POST", deployments, "application/json", "", labelled(restDeployment("big", 6), "tier", "web")), 422, "6 replicas").status()
	want := `deployments.apps "big" is forbidden: ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: replicas must be no greater than 5, got 6`
	if st.Message != want || st.Reason != metav1.StatusReasonInvalid || st.Details == nil || st.Details.Kind != "deployments" ||
		len(st.Details.Causes) != 1 {
		t.Errorf("denial: %q %s %+v\nwant %q", st.Message, st.Reason, st.Details, want)
	}
	rc.want(rc.do("GET", deployments+"/big", "", "", nil), 404, "a refused Deployment")
	rc.want(rc.do("POST", deployments, "application/json", "", restDeployment("other", 6)), 201, "a Deployment the binding does not select")
	web := decodeJSON[appsv1.Deployment](t, rc.want(rc.do("POST", deployments, "application/json", "", labelled(restDeployment("web", 5), "tier", "web")), 201, "5 replicas").body)
	web.Spec.Replicas = new(int32(7))
	st = rc.want(rc.do("PUT", deployments+"/web", "application/json", "", &web), 422, "an update to 7").status()
	if !strings.Contains(st.Message, "denied request: replicas must be no greater than 5, got 7") {
		t.Errorf("update denial: %s", st.Message)
	}
	st = rc.want(rc.do("PATCH", deployments+"/web", "application/merge-patch+json", "", `{"spec":{"replicas":8}}`), 422, "a patch to 8").status()
	if !strings.Contains(st.Message, "got 8") {
		t.Errorf("patch denial: %s", st.Message)
	}

	// The gRPC API goes through the same policies.
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx := testCtx(t)
	deploys := client.For[*appsv1.Deployment](conn)
	d := labelled(restDeployment("grpc-big", 9), "tier", "web")
	d.Namespace = "default"
	if _, err := deploys.Create(ctx, d); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "ValidatingAdmissionPolicy 'max-replicas' with binding 'max-replicas-binding' denied request: replicas must be no greater than 5, got 9") {
		t.Errorf("gRPC denial: %v", err)
	}

	// Warn: a ConfigMap without an owner label is admitted with a warning.
	owner := policy("owner", admissionregistrationv1.ValidatingAdmissionPolicySpec{
		MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
			RuleWithOperations: admissionregistrationv1.RuleWithOperations{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}}}},
		Validations: []admissionregistrationv1.Validation{{Expression: "has(object.metadata.labels) && 'owner' in object.metadata.labels", Message: "an owner label is expected"}}})
	rc.want(rc.do("POST", policiesBase, "application/json", "", owner), 201, "warn policy")
	rc.want(rc.do("POST", bindingsBase, "application/json", "", binding("owner-warn", "owner",
		admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Warn}})), 201, "warn binding")
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "limits"}, Data: map[string]string{"max": "2"}}
	kinds.SetTypeMeta(cm)
	r := rc.want(rc.do("POST", "/api/v1/namespaces/default/configmaps", "application/json", "", cm), 201, "a ConfigMap, warned")
	if w := r.header.Values("Warning"); len(w) != 1 ||
		!strings.Contains(w[0], "Validation failed for ValidatingAdmissionPolicy 'owner' with binding 'owner-warn': an owner label is expected") {
		t.Errorf("Warning headers: %q", w)
	}

	// A param: Deployments labelled tier=batch have at most the ConfigMap's max replicas.
	limit := policy("param-limit", admissionregistrationv1.ValidatingAdmissionPolicySpec{MatchConstraints: deploymentRules(),
		ParamKind:   &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
		Validations: []admissionregistrationv1.Validation{{Expression: "object.spec.replicas <= int(params.data.max)", MessageExpression: "'at most ' + params.data.max + ' replicas'"}}})
	rc.want(rc.do("POST", policiesBase, "application/json", "", limit), 201, "param policy")
	rc.want(rc.do("POST", bindingsBase, "application/json", "", binding("param-limit", "param-limit",
		admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			ParamRef:       &admissionregistrationv1.ParamRef{Name: "limits", ParameterNotFoundAction: new(admissionregistrationv1.DenyAction)},
			MatchResources: &admissionregistrationv1.MatchResources{ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"tier": "batch"}}}})), 201, "param binding")
	st = rc.want(rc.do("POST", deployments, "application/json", "", labelled(restDeployment("batch", 3), "tier", "batch")), 422, "3 replicas, max 2").status()
	if !strings.Contains(st.Message, "ValidatingAdmissionPolicy 'param-limit' with binding 'param-limit' denied request: at most 2 replicas") {
		t.Errorf("param denial: %s", st.Message)
	}
	rc.want(rc.do("POST", deployments, "application/json", "", labelled(restDeployment("batch", 2), "tier", "batch")), 201, "2 replicas, max 2")
	rc.want(rc.do("DELETE", "/api/v1/namespaces/default/configmaps/limits", "", "", nil), 200, "the param's deletion")
	st = rc.want(rc.do("POST", deployments, "application/json", "", labelled(restDeployment("batch2", 1), "tier", "batch")), 422, "no param").status()
	if !strings.Contains(st.Message, "failed to configure binding: no params found for policy binding with `Deny` parameterNotFoundAction") {
		t.Errorf("no param: %s", st.Message)
	}

	// The binding's deletion counts from the next request.
	rc.want(rc.do("DELETE", bindingsBase+"/max-replicas-binding", "", "", nil), 200, "binding deletion")
	rc.want(rc.do("POST", deployments, "application/json", "", labelled(restDeployment("big", 6), "tier", "web")), 201, "6 replicas, unbound")
}

// TestWebhookMatchConditions: a webhook whose matchConditions are false is not called;
// one whose conditions hold is.
func TestWebhookMatchConditionsREST(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	ca := newWebhookCA(t, "127.0.0.1")
	ws := serveWebhooks(t, listenLocal(t), ca, map[string]func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse{
		"/everything": func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: "nothing passes"}}
		},
	})
	hook := validatingHook("guarded", ws.url+"/everything", ca.bundle, admissionregistrationv1.Fail, 10, configMapRule(admissionregistrationv1.Create))
	hook.Webhooks[0].MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "guarded-only", Expression: "object.metadata.name.startsWith('guarded')"}}
	rc.want(rc.do("POST", "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations", "application/json", "", hook), 201, "configuration")
	cm := func(name string) *corev1.ConfigMap {
		o := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}
		kinds.SetTypeMeta(o)
		return o
	}
	const cms = "/api/v1/namespaces/default/configmaps"
	rc.want(rc.do("POST", cms, "application/json", "", cm("free")), 201, "a ConfigMap the condition excludes")
	if n := len(ws.requests("/everything")); n != 0 {
		t.Errorf("the webhook was called %d times for a false matchCondition", n)
	}
	st := rc.want(rc.do("POST", cms, "application/json", "", cm("guarded-1")), 400, "a ConfigMap the condition includes").status()
	if !strings.Contains(st.Message, `admission webhook "guarded.skiff.test" denied the request: nothing passes`) {
		t.Errorf("denial: %s", st.Message)
	}
	if n := len(ws.requests("/everything")); n != 1 {
		t.Errorf("the webhook was called %d times, want 1", n)
	}
}
