package apiserver_test

import (
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
)

const (
	mutatingPoliciesBase = "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicies"
	mutatingBindingsBase = "/apis/admissionregistration.k8s.io/v1/mutatingadmissionpolicybindings"
	configMaps           = "/api/v1/namespaces/default/configmaps"
)

func configMapRules() *admissionregistrationv1.MatchResources {
	return &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
		RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create, admissionregistrationv1.Update},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}}}}
}

func mutatingPolicy(name string, reinvoke admissionregistrationv1.ReinvocationPolicyType, mutations ...admissionregistrationv1.Mutation) *admissionregistrationv1.MutatingAdmissionPolicy {
	p := &admissionregistrationv1.MutatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{MatchConstraints: configMapRules(), Mutations: mutations, ReinvocationPolicy: reinvoke}}
	kinds.SetTypeMeta(p)
	return p
}

// mutatingBinding binds policy for the ConfigMaps labelled scenario=scenario.
func mutatingBinding(name, policy, scenario string) *admissionregistrationv1.MutatingAdmissionPolicyBinding {
	b := &admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: policy, MatchResources: &admissionregistrationv1.MatchResources{
			ObjectSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"scenario": scenario}}}}}
	kinds.SetTypeMeta(b)
	return b
}

func applyConfiguration(expr string) admissionregistrationv1.Mutation {
	return admissionregistrationv1.Mutation{PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
		ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{Expression: expr}}
}

func jsonPatchMutation(expr string) admissionregistrationv1.Mutation {
	return admissionregistrationv1.Mutation{PatchType: admissionregistrationv1.PatchTypeJSONPatch, JSONPatch: &admissionregistrationv1.JSONPatch{Expression: expr}}
}

func scenarioConfigMap(name, scenario string) *corev1.ConfigMap {
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"scenario": scenario}}}
	kinds.SetTypeMeta(cm)
	return cm
}

// TestMutatingAdmissionPolicies: MutatingAdmissionPolicies over the REST and gRPC APIs
// (one object and batches): a policy that does not compile is refused at its field
// path; an ApplyConfiguration and a JSONPatch with a param mutate what is created and
// updated, before the validating policies see it; a policy with reinvocationPolicy
// IfNeeded is applied again once a later one changed the object; a failing policy
// refuses the write under failurePolicy Fail, in Kubernetes' words, and is skipped
// under Ignore; the binding's deletion ends the mutations.
func TestMutatingAdmissionPolicies(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)

	bad := mutatingPolicy("bad", admissionregistrationv1.NeverReinvocationPolicy, applyConfiguration("object.metadata"))
	st := rc.want(rc.do("POST", mutatingPoliciesBase, "application/json", "", bad), 422, "a policy that does not compile").status()
	if !strings.Contains(st.Message, `spec.mutations[0].applyConfiguration.expression: Invalid value: "object.metadata": must evaluate to Object`) {
		t.Errorf("compilation error: %s", st.Message)
	}

	// A label by an ApplyConfiguration, an annotation from a param by a JSONPatch; a
	// validating policy requiring the label admits what the mutation made.
	owner := mutatingPolicy("owner", admissionregistrationv1.NeverReinvocationPolicy,
		applyConfiguration(`Object{metadata: Object.metadata{labels: {"owner": "platform"}}}`))
	got := decodeJSON[admissionregistrationv1.MutatingAdmissionPolicy](t, rc.want(rc.do("POST", mutatingPoliciesBase, "application/json", "", owner), 201, "policy").body)
	if got.Spec.FailurePolicy == nil || *got.Spec.FailurePolicy != admissionregistrationv1.Fail || got.Generation != 1 {
		t.Errorf("policy defaults: %+v", got.Spec)
	}
	rc.want(rc.do("POST", mutatingBindingsBase, "application/json", "", mutatingBinding("owner", "owner", "basic")), 201, "binding")
	team := mutatingPolicy("team", admissionregistrationv1.NeverReinvocationPolicy,
		jsonPatchMutation(`[JSONPatch{op: "add", path: "/metadata/annotations", value: {"team": params.data.team}}]`))
	team.Spec.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}
	rc.want(rc.do("POST", mutatingPoliciesBase, "application/json", "", team), 201, "param policy")
	teamBinding := mutatingBinding("team", "team", "basic")
	teamBinding.Spec.ParamRef = &admissionregistrationv1.ParamRef{Name: "teams", Namespace: "default", ParameterNotFoundAction: new(admissionregistrationv1.DenyAction)}
	rc.want(rc.do("POST", mutatingBindingsBase, "application/json", "", teamBinding), 201, "param binding")
	teams := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "teams"}, Data: map[string]string{"team": "blue"}}
	kinds.SetTypeMeta(teams)
	rc.want(rc.do("POST", configMaps, "application/json", "", teams), 201, "the param")
	needsOwner := policy("needs-owner", admissionregistrationv1.ValidatingAdmissionPolicySpec{MatchConstraints: configMapRules(),
		Validations: []admissionregistrationv1.Validation{{Expression: "object.metadata.labels.scenario != 'basic' || 'owner' in object.metadata.labels"}}})
	rc.want(rc.do("POST", policiesBase, "application/json", "", needsOwner), 201, "validating policy")
	rc.want(rc.do("POST", bindingsBase, "application/json", "", binding("needs-owner", "needs-owner",
		admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}})), 201, "validating binding")

	mutated := func(cm *corev1.ConfigMap, how string) {
		t.Helper()
		if cm.Labels["owner"] != "platform" || cm.Annotations["team"] != "blue" || cm.Labels["scenario"] != "basic" {
			t.Errorf("%s: labels %v, annotations %v", how, cm.Labels, cm.Annotations)
		}
	}
	cm := decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("POST", configMaps, "application/json", "", scenarioConfigMap("rest", "basic")), 201, "a ConfigMap").body)
	mutated(&cm, "REST create")
	mutated(new(decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("GET", configMaps+"/rest", "", "", nil), 200, "the ConfigMap").body)), "stored")
	cm.Labels = map[string]string{"scenario": "basic"}
	cm.Annotations = nil
	mutated(new(decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("PUT", configMaps+"/rest", "application/json", "", &cm), 200, "an update").body)), "REST update")
	if other := decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("POST", configMaps, "application/json", "", scenarioConfigMap("other", "none")), 201, "unbound").body); other.Labels["owner"] != "" {
		t.Errorf("a ConfigMap no binding selects was mutated: %v", other.Labels)
	}

	// The gRPC API goes through the same policies, one object and batches.
	conn := c.Dial(t, "", client.Options{})
	ctx := testCtx(t)
	cms := client.For[*corev1.ConfigMap](conn)
	one, err := cms.Create(ctx, scenarioConfigMap("grpc", "basic"))
	if err != nil {
		t.Fatal(err)
	}
	mutated(one, "gRPC create")
	out, errs, err := cms.CreateBatch(ctx, []*corev1.ConfigMap{scenarioConfigMap("batch-0", "basic"), scenarioConfigMap("batch-1", "basic")})
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if errs[i] != nil {
			t.Fatalf("batch %d: %v", i, errs[i])
		}
		mutated(out[i], "gRPC batch create")
	}
	for _, o := range out {
		o.Labels, o.Annotations = map[string]string{"scenario": "basic"}, nil
	}
	out, errs, err = cms.UpdateBatch(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	for i := range out {
		if errs[i] != nil {
			t.Fatalf("batch update %d: %v", i, errs[i])
		}
		mutated(out[i], "gRPC batch update")
	}

	// Reinvocation: "count" (IfNeeded) counts the labels before "more" adds one, and
	// again after; "count-once" (Never) is not applied again.
	count := `Object{metadata: Object.metadata{annotations: {"labels": string(size(object.metadata.labels))}}}`
	rc.want(rc.do("POST", mutatingPoliciesBase, "application/json", "", mutatingPolicy("a-count", admissionregistrationv1.IfNeededReinvocationPolicy, applyConfiguration(count))), 201, "IfNeeded")
	rc.want(rc.do("POST", mutatingBindingsBase, "application/json", "", mutatingBinding("a-count", "a-count", "reinvoke")), 201, "IfNeeded binding")
	rc.want(rc.do("POST", mutatingPoliciesBase, "application/json", "", mutatingPolicy("a-count-once", admissionregistrationv1.NeverReinvocationPolicy,
		applyConfiguration(strings.Replace(count, `"labels"`, `"labels-once"`, 1)))), 201, "Never")
	rc.want(rc.do("POST", mutatingBindingsBase, "application/json", "", mutatingBinding("a-count-once", "a-count-once", "reinvoke")), 201, "Never binding")
	rc.want(rc.do("POST", mutatingPoliciesBase, "application/json", "", mutatingPolicy("b-more", admissionregistrationv1.NeverReinvocationPolicy,
		applyConfiguration(`Object{metadata: Object.metadata{labels: {"more": "yes"}}}`))), 201, "the later policy")
	rc.want(rc.do("POST", mutatingBindingsBase, "application/json", "", mutatingBinding("b-more", "b-more", "reinvoke")), 201, "its binding")
	re := decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("POST", configMaps, "application/json", "", scenarioConfigMap("reinvoked", "reinvoke")), 201, "reinvoked").body)
	if re.Annotations["labels"] != "2" || re.Annotations["labels-once"] != "1" || re.Labels["more"] != "yes" {
		t.Errorf("reinvocation: labels %v, annotations %v", re.Labels, re.Annotations)
	}

	// failurePolicy: a patch that cannot be applied refuses under Fail, in Kubernetes'
	// words (403, reason Invalid), and is skipped under Ignore.
	broken := mutatingPolicy("broken", admissionregistrationv1.NeverReinvocationPolicy, jsonPatchMutation(`[JSONPatch{op: "remove", path: "/data/missing"}]`))
	rc.want(rc.do("POST", mutatingPoliciesBase, "application/json", "", broken), 201, "broken policy")
	rc.want(rc.do("POST", mutatingBindingsBase, "application/json", "", mutatingBinding("broken", "broken", "fail")), 201, "broken binding")
	st = rc.want(rc.do("POST", configMaps, "application/json", "", scenarioConfigMap("failed", "fail")), 403, "a failing policy").status()
	if !strings.HasPrefix(st.Message, "policy 'broken' with binding 'broken' denied request: JSON Patch: ") || st.Reason != metav1.StatusReasonInvalid ||
		st.Details == nil || st.Details.Kind != "configmaps" || len(st.Details.Causes) != 1 {
		t.Errorf("failure: %q %s %+v", st.Message, st.Reason, st.Details)
	}
	if _, err := cms.Create(ctx, scenarioConfigMap("failed", "fail")); status.Code(err) != codes.PermissionDenied ||
		!strings.Contains(err.Error(), "policy 'broken' with binding 'broken' denied request") {
		t.Errorf("gRPC failure: %v", err)
	}
	broken = new(decodeJSON[admissionregistrationv1.MutatingAdmissionPolicy](t, rc.want(rc.do("GET", mutatingPoliciesBase+"/broken", "", "", nil), 200, "broken policy").body))
	broken.Spec.FailurePolicy = new(admissionregistrationv1.Ignore)
	rc.want(rc.do("PUT", mutatingPoliciesBase+"/broken", "application/json", "", broken), 200, "Ignore")
	rc.want(rc.do("POST", configMaps, "application/json", "", scenarioConfigMap("ignored", "fail")), 201, "an ignored failure")

	// The binding's deletion counts from the next request: unmutated, the ConfigMap is
	// refused by the validating policy.
	rc.want(rc.do("DELETE", mutatingBindingsBase+"/owner", "", "", nil), 200, "binding deletion")
	st = rc.want(rc.do("POST", configMaps, "application/json", "", scenarioConfigMap("plain", "basic")), 422, "after the binding's deletion").status()
	if !strings.Contains(st.Message, "ValidatingAdmissionPolicy 'needs-owner' with binding 'needs-owner' denied request") {
		t.Errorf("after the binding's deletion: %s", st.Message)
	}
}

// TestMutatingPoliciesAndWebhooks: the policies run before the mutating webhooks, and the
// second pass is Kubernetes': a policy with reinvocationPolicy IfNeeded runs again after
// the webhooks (and a later policy) changed the object, then a webhook with IfNeeded runs
// again because that reinvocation changed it.
func TestMutatingPoliciesAndWebhooks(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	ca := newWebhookCA(t, "127.0.0.1")
	patchType := admissionv1.PatchTypeJSONPatch
	respond := func(patch string) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{Allowed: true, PatchType: &patchType, Patch: []byte(patch)}
	}
	ws := serveWebhooks(t, listenLocal(t), ca, map[string]func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse{
		"/label": func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			return respond(`[{"op":"add","path":"/metadata/labels/webhook","value":"yes"}]`)
		},
		// /saw records the policy's count it saw.
		"/saw": func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			var cm corev1.ConfigMap
			json.Unmarshal(r.Object.Raw, &cm)
			return respond(`[{"op":"add","path":"/metadata/annotations/webhook-saw","value":"` + cm.Annotations["policy-labels"] + `"}]`)
		},
	})
	label, saw := ws.url+"/label", ws.url+"/saw"
	hooks := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "hooks"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{
			{Name: "label.skiff.test", Rules: configMapRule(admissionregistrationv1.Create), ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &label, CABundle: ca.bundle},
				SideEffects: new(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"}},
			{Name: "saw.skiff.test", Rules: configMapRule(admissionregistrationv1.Create), ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &saw, CABundle: ca.bundle},
				SideEffects: new(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"},
				ReinvocationPolicy: new(admissionregistrationv1.IfNeededReinvocationPolicy)}}}
	kinds.SetTypeMeta(hooks)
	rc.want(rc.do("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", "application/json", "", hooks), 201, "webhooks")
	rc.want(rc.do("POST", mutatingPoliciesBase, "application/json", "", mutatingPolicy("a-count", admissionregistrationv1.IfNeededReinvocationPolicy,
		applyConfiguration(`Object{metadata: Object.metadata{annotations: {"policy-labels": string(size(object.metadata.labels))}}}`))), 201, "IfNeeded")
	rc.want(rc.do("POST", mutatingBindingsBase, "application/json", "", mutatingBinding("a-count", "a-count", "mix")), 201, "IfNeeded binding")
	rc.want(rc.do("POST", mutatingPoliciesBase, "application/json", "", mutatingPolicy("b-label", admissionregistrationv1.NeverReinvocationPolicy,
		applyConfiguration(`Object{metadata: Object.metadata{labels: {"policy": "yes"}}}`))), 201, "the later policy")
	rc.want(rc.do("POST", mutatingBindingsBase, "application/json", "", mutatingBinding("b-label", "b-label", "mix")), 201, "its binding")

	got := decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("POST", configMaps, "application/json", "", scenarioConfigMap("mixed", "mix")), 201, "a ConfigMap").body)
	// First pass: a-count 1, b-label, label (the webhooks see the policies' work), saw 1;
	// second: a-count 3 (scenario, policy, webhook), saw 3.
	if got.Annotations["policy-labels"] != "3" || got.Annotations["webhook-saw"] != "3" || got.Labels["policy"] != "yes" || got.Labels["webhook"] != "yes" {
		t.Errorf("labels %v, annotations %v", got.Labels, got.Annotations)
	}
	if n := len(ws.requests("/saw")); n != 2 {
		t.Errorf("the IfNeeded webhook was called %d times, want 2", n)
	}
	if n := len(ws.requests("/label")); n != 1 {
		t.Errorf("the Never webhook was called %d times, want 1", n)
	}
}
