package apiserver_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestSubresourceAdmission: the scale, binding and eviction subresources go through the
// admission webhooks and the ValidatingAdmissionPolicies whose rules name them
// (deployments/scale, */scale, pods/binding, pods/eviction), with the subresource's own
// object: an AdmissionReview of kind autoscaling/v1 Scale, v1 Binding or policy/v1
// Eviction, of resource deployments or pods and its subResource; a mutating webhook's
// patch of a Scale is what is written; a validating webhook's or a policy's refusal
// refuses the scale, the binding or the eviction in Kubernetes' words; a
// MutatingAdmissionPolicy's change of a Binding binds the pod where it says. A rule on
// deployments alone does not see its scale.
func TestSubresourceAdmission(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	ca := newWebhookCA(t, "127.0.0.1")
	patchType := admissionv1.PatchTypeJSONPatch
	deny := func(msg string) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{Result: &metav1.Status{Code: 403, Reason: metav1.StatusReasonForbidden, Message: msg}}
	}
	allow := &admissionv1.AdmissionResponse{Allowed: true}
	ws := serveWebhooks(t, listenLocal(t), ca, map[string]func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse{
		// At most 5 replicas, whatever is asked.
		"/cap": func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			var s autoscalingv1.Scale
			if err := json.Unmarshal(r.Object.Raw, &s); err != nil || s.Spec.Replicas <= 5 {
				return allow
			}
			return &admissionv1.AdmissionResponse{Allowed: true, PatchType: &patchType, Patch: []byte(`[{"op":"replace","path":"/spec/replicas","value":5}]`)}
		},
		"/deny": func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			switch r.SubResource {
			case "scale":
				var s autoscalingv1.Scale
				if json.Unmarshal(r.Object.Raw, &s) == nil && s.Spec.Replicas == 0 {
					return deny("scaling to zero is not allowed")
				}
			case "binding":
				var b corev1.Binding
				if json.Unmarshal(r.Object.Raw, &b) == nil && b.Target.Name == "bad-node" {
					return deny("bad-node takes no pods")
				}
			case "eviction":
				var e policyv1.Eviction
				if json.Unmarshal(r.Object.Raw, &e) == nil && e.Name == "keep" {
					return deny("keep stays")
				}
			}
			return allow
		},
		"/deployments": func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse { return allow },
	})
	rule := func(group string, op admissionregistrationv1.OperationType, resources ...string) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{op},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"*"}, Resources: resources}}}
	}
	const (
		mutatingBase   = "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations"
		validatingBase = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
		pods           = "/api/v1/namespaces/default/pods"
	)
	capURL := ws.url + "/cap"
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "cap"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "cap.skiff.test", Rules: rule("apps", admissionregistrationv1.Update, "deployments/scale"),
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &capURL, CABundle: ca.bundle},
			SideEffects:  new(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"}}}}
	kinds.SetTypeMeta(mutating)
	rc.want(rc.do("POST", mutatingBase, "application/json", "", mutating), 201, "the mutating configuration")
	denyRules := append(append(rule("*", admissionregistrationv1.Update, "*/scale"), rule("", admissionregistrationv1.Create, "pods/binding")...),
		rule("policy", admissionregistrationv1.Create, "pods/eviction")...)
	denyRules[2].APIGroups = []string{""} // pods/eviction is the core group's resource, its object policy's
	rc.want(rc.do("POST", validatingBase, "application/json", "", validatingHook("deny", ws.url+"/deny", ca.bundle, admissionregistrationv1.Fail, 10, denyRules)), 201, "the validating configuration")
	rc.want(rc.do("POST", validatingBase, "application/json", "", validatingHook("deployments", ws.url+"/deployments", ca.bundle, admissionregistrationv1.Fail, 10,
		rule("apps", admissionregistrationv1.OperationAll, "deployments"))), 201, "a configuration of deployments alone")
	// A policy on the scale of deployments: never 3.
	rc.want(rc.do("POST", policiesBase, "application/json", "", policy("not-three", admissionregistrationv1.ValidatingAdmissionPolicySpec{
		MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
			RuleWithOperations: rule("apps", admissionregistrationv1.Update, "deployments/scale")[0]}}},
		Validations: []admissionregistrationv1.Validation{{Expression: "(!has(object.spec.replicas) || object.spec.replicas != 3) && object.kind == 'Scale' && request.subResource == 'scale'",
			Message: "three is a bad number"}}})), 201, "the policy")
	rc.want(rc.do("POST", bindingsBase, "application/json", "", binding("not-three-binding", "not-three", admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
		ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}})), 201, "the policy's binding")

	// A mutating policy on pods/binding: a binding to "redirect" goes to w2.
	mp := mutatingPolicy("redirect", admissionregistrationv1.NeverReinvocationPolicy,
		jsonPatchMutation(`object.target.name == "redirect" ? [JSONPatch{op: "replace", path: "/target/name", value: "w2"}] : []`)) // target is atomic: no ApplyConfiguration
	mp.Spec.MatchConstraints = &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
		RuleWithOperations: rule("", admissionregistrationv1.Create, "pods/binding")[0]}}}
	rc.want(rc.do("POST", mutatingPoliciesBase, "application/json", "", mp), 201, "the mutating policy")
	mb := &admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "redirect"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: "redirect"}}
	kinds.SetTypeMeta(mb)
	rc.want(rc.do("POST", mutatingBindingsBase, "application/json", "", mb), 201, "the mutating policy's binding")

	rc.want(rc.do("POST", deployments, "application/json", "", restDeployment("web", 1)), 201, "a deployment")
	scale := deployments + "/web/scale"
	// The mutating webhook caps 8 at 5: that is what is written.
	s := decodeJSON[autoscalingv1.Scale](t, rc.want(rc.do("PATCH", scale, "application/merge-patch+json", "", `{"spec":{"replicas":8}}`), 200, "scale to 8").body)
	if s.Spec.Replicas != 5 {
		t.Fatalf("scaled to 8 through the capping webhook: %d replicas", s.Spec.Replicas)
	}
	reqs := ws.requests("/cap")
	if len(reqs) == 0 {
		t.Fatal("the scale was not sent to the deployments/scale webhook")
	}
	rq := reqs[len(reqs)-1]
	wantGVK := metav1.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "Scale"}
	wantGVR := metav1.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	if rq.Kind != wantGVK || rq.Resource != wantGVR || rq.SubResource != "scale" || rq.RequestKind == nil || *rq.RequestKind != wantGVK ||
		rq.RequestResource == nil || *rq.RequestResource != wantGVR || rq.RequestSubResource != "scale" || rq.Operation != admissionv1.Update ||
		rq.Name != "web" || rq.Namespace != "default" || !strings.Contains(string(rq.Object.Raw), `"replicas":8`) ||
		!strings.Contains(string(rq.Object.Raw), `"kind":"Scale"`) || !strings.Contains(string(rq.OldObject.Raw), `"replicas":1`) {
		t.Errorf("the scale's AdmissionReview: kind %v resource %v sub %q request %v %v %q op %s %s/%s\n%s\n%s", rq.Kind, rq.Resource, rq.SubResource,
			rq.RequestKind, rq.RequestResource, rq.RequestSubResource, rq.Operation, rq.Namespace, rq.Name, rq.Object.Raw, rq.OldObject.Raw)
	}
	if n := len(ws.requests("/deployments")); n != 1 {
		t.Errorf("the deployments-only webhook saw %d requests, want the create alone", n)
	}
	before := len(ws.requests("/deny"))
	st := rc.want(rc.do("PATCH", scale, "application/merge-patch+json", "", `{"spec":{"replicas":0}}`), 403, "scale to 0").status()
	if want := `admission webhook "deny.skiff.test" denied the request: scaling to zero is not allowed`; st.Message != want {
		t.Errorf("scale to 0: %q, want %q", st.Message, want)
	}
	if n := len(ws.requests("/deny")) - before; n != 1 { // the second, linearizable read of the same revision is not sent again
		t.Errorf("one refused scale, %d reviews", n)
	}
	s.Spec.Replicas = 3
	st = rc.want(rc.do("PUT", scale, "application/json", "", s), 422, "scale to 3").status()
	if want := `deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'not-three' with binding 'not-three-binding' denied request: three is a bad number`; st.Message != want {
		t.Errorf("scale to 3: %q, want %q", st.Message, want)
	}
	if r := objectReplicas(t, rc, deployments+"/web"); r != 5 {
		t.Errorf("after the refused scales: %d replicas, want 5", r)
	}

	// Bindings and evictions.
	for _, name := range []string{"a", "keep", "other"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		kinds.SetTypeMeta(p)
		rc.want(rc.do("POST", pods, "application/json", "", p), 201, "create pod "+name)
	}
	bindTo := func(node string) string {
		return fmt.Sprintf(`{"apiVersion":"v1","kind":"Binding","metadata":{"name":"a"},"target":{"kind":"Node","name":%q}}`, node)
	}
	st = rc.want(rc.do("POST", pods+"/a/binding", "application/json", "", bindTo("bad-node")), 403, "bind to bad-node").status()
	if want := `admission webhook "deny.skiff.test" denied the request: bad-node takes no pods`; st.Message != want {
		t.Errorf("bind to bad-node: %q, want %q", st.Message, want)
	}
	rc.want(rc.do("POST", pods+"/a/binding", "application/json", "", bindTo("w1")), 201, "bind to w1")
	if p := decodeJSON[corev1.Pod](t, rc.want(rc.do("GET", pods+"/a", "", "", nil), 200, "get a").body); p.Spec.NodeName != "w1" {
		t.Errorf("pod a is on %q", p.Spec.NodeName)
	}
	rc.want(rc.do("POST", pods+"/keep/binding", "application/json", "", strings.Replace(bindTo("redirect"), `"name":"a"`, `"name":"keep"`, 1)), 201, "bind to redirect")
	if p := decodeJSON[corev1.Pod](t, rc.want(rc.do("GET", pods+"/keep", "", "", nil), 200, "get keep").body); p.Spec.NodeName != "w2" {
		t.Errorf("pod keep, bound to redirect, is on %q, want w2 (the mutating policy's)", p.Spec.NodeName)
	}
	eviction := func(name string) string {
		return `{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"` + name + `","namespace":"default"}}`
	}
	st = rc.want(rc.do("POST", pods+"/keep/eviction", "application/json", "", eviction("keep")), 403, "evict keep").status()
	if want := `admission webhook "deny.skiff.test" denied the request: keep stays`; st.Message != want {
		t.Errorf("evict keep: %q, want %q", st.Message, want)
	}
	rc.want(rc.do("GET", pods+"/keep", "", "", nil), 200, "keep is kept")
	rc.want(rc.do("POST", pods+"/other/eviction", "application/json", "", eviction("other")), 201, "evict other")
	want := map[string]struct {
		kind metav1.GroupVersionKind
		name string
	}{"binding": {metav1.GroupVersionKind{Version: "v1", Kind: "Binding"}, "a"},
		"eviction": {metav1.GroupVersionKind{Group: "policy", Version: "v1", Kind: "Eviction"}, "other"}}
	for _, rq := range ws.requests("/deny") {
		w, ok := want[rq.SubResource]
		if !ok || rq.Name != w.name {
			continue
		}
		delete(want, rq.SubResource)
		if rq.Kind != w.kind || rq.Resource != (metav1.GroupVersionResource{Version: "v1", Resource: "pods"}) || rq.Operation != admissionv1.Create ||
			*rq.RequestKind != w.kind || !strings.Contains(string(rq.Object.Raw), `"kind":"`+w.kind.Kind+`"`) || len(rq.OldObject.Raw) != 0 {
			t.Errorf("the %s's AdmissionReview: kind %v resource %v op %s\n%s", rq.SubResource, rq.Kind, rq.Resource, rq.Operation, rq.Object.Raw)
		}
	}
	if len(want) > 0 {
		t.Errorf("no AdmissionReview of %v", want)
	}
}
