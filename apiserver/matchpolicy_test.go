package apiserver_test

import (
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestWebhookMatchPolicyEquivalent: Events are served as core/v1 and events.k8s.io/v1.
// A webhook whose rule names events.k8s.io/v1 events, with matchPolicy Equivalent (the
// default), is called for a core/v1 Event's write with the Event converted to
// events.k8s.io/v1: kind and resource that version's, requestKind and requestResource
// core/v1's; its patch, of that form, is what is stored. With matchPolicy Exact it is
// not called. A rule naming core/v1 events sees an events.k8s.io/v1 request as a core/v1
// Event, requestKind events.k8s.io's; a request of the rule's own version is sent as it
// was made.
func TestWebhookMatchPolicyEquivalent(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	ca := newWebhookCA(t, "127.0.0.1")
	patchType := admissionv1.PatchTypeJSONPatch
	allow := func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
		return &admissionv1.AdmissionResponse{Allowed: true}
	}
	ws := serveWebhooks(t, listenLocal(t), ca, map[string]func(*admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse{
		// Sets the events.k8s.io/v1 form's note.
		"/note": func(r *admissionv1.AdmissionRequest) *admissionv1.AdmissionResponse {
			if !strings.Contains(string(r.Object.Raw), `"apiVersion":"events.k8s.io/v1"`) {
				return &admissionv1.AdmissionResponse{Result: &metav1.Status{Message: "not an events.k8s.io/v1 Event: " + string(r.Object.Raw)}}
			}
			return &admissionv1.AdmissionResponse{Allowed: true, PatchType: &patchType, Patch: []byte(`[{"op":"replace","path":"/note","value":"noted"}]`)}
		},
		"/exact": allow,
		"/core":  allow,
	})
	rule := func(group string) []admissionregistrationv1.RuleWithOperations {
		return []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
			Rule: admissionregistrationv1.Rule{APIGroups: []string{group}, APIVersions: []string{"v1"}, Resources: []string{"events"}}}}
	}
	noteURL := ws.url + "/note"
	mutating := &admissionregistrationv1.MutatingWebhookConfiguration{ObjectMeta: metav1.ObjectMeta{Name: "note"},
		Webhooks: []admissionregistrationv1.MutatingWebhook{{Name: "note.skiff.test", Rules: rule("events.k8s.io"),
			ClientConfig: admissionregistrationv1.WebhookClientConfig{URL: &noteURL, CABundle: ca.bundle},
			SideEffects:  new(admissionregistrationv1.SideEffectClassNone), AdmissionReviewVersions: []string{"v1"}}}}
	kinds.SetTypeMeta(mutating)
	rc.want(rc.do("POST", "/apis/admissionregistration.k8s.io/v1/mutatingwebhookconfigurations", "application/json", "", mutating), 201, "the Equivalent webhook")
	const validatingBase = "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations"
	exact := validatingHook("exact", ws.url+"/exact", ca.bundle, admissionregistrationv1.Fail, 10, rule("events.k8s.io"))
	exact.Webhooks[0].MatchPolicy = new(admissionregistrationv1.Exact)
	rc.want(rc.do("POST", validatingBase, "application/json", "", exact), 201, "the Exact webhook")
	rc.want(rc.do("POST", validatingBase, "application/json", "", validatingHook("core", ws.url+"/core", ca.bundle, admissionregistrationv1.Fail, 10, rule(""))), 201, "the core/v1 webhook")

	// A core/v1 Event.
	ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "b"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-2"},
		Reason: "Pulled", Message: "pulled", Type: "Normal", Source: corev1.EventSource{Component: "kubelet", Host: "w1"}, Count: 1,
		FirstTimestamp: metav1.NewTime(time.Unix(1700000000, 0)), LastTimestamp: metav1.NewTime(time.Unix(1700000100, 0))}
	kinds.SetTypeMeta(ev)
	got := decodeJSON[corev1.Event](t, rc.want(rc.do("POST", "/api/v1/namespaces/default/events", "application/json", "", ev), 201, "a core/v1 event").body)
	if got.Message != "noted" {
		t.Errorf("the Equivalent webhook's note is not the stored message: %q", got.Message)
	}
	gvk := func(g, k string) metav1.GroupVersionKind {
		return metav1.GroupVersionKind{Group: g, Version: "v1", Kind: k}
	}
	gvr := func(g string) metav1.GroupVersionResource {
		return metav1.GroupVersionResource{Group: g, Version: "v1", Resource: "events"}
	}
	check := func(path string, n int, kind metav1.GroupVersionKind, res metav1.GroupVersionResource, reqKind metav1.GroupVersionKind, reqRes metav1.GroupVersionResource) {
		t.Helper()
		reqs := ws.requests(path)
		if len(reqs) != n {
			t.Fatalf("%s got %d requests, want %d", path, len(reqs), n)
		}
		r := reqs[n-1]
		if r.Kind != kind || r.Resource != res || r.RequestKind == nil || *r.RequestKind != reqKind || r.RequestResource == nil || *r.RequestResource != reqRes {
			t.Errorf("%s: kind %v resource %v, request kind %v resource %v; want %v %v, %v %v", path, r.Kind, r.Resource, r.RequestKind, r.RequestResource, kind, res, reqKind, reqRes)
		}
	}
	check("/note", 1, gvk("events.k8s.io", "Event"), gvr("events.k8s.io"), gvk("", "Event"), gvr(""))
	check("/core", 1, gvk("", "Event"), gvr(""), gvk("", "Event"), gvr(""))
	if n := len(ws.requests("/exact")); n != 0 {
		t.Errorf("the Exact webhook was called %d times for a core/v1 event", n)
	}

	// An events.k8s.io/v1 Event: the Exact webhook is called, the core/v1 one sees it as
	// core/v1's.
	rc.want(rc.do("POST", "/apis/events.k8s.io/v1/namespaces/default/events", "application/json", "", eventV1("a", "web-1")), 201, "an events.k8s.io/v1 event")
	check("/note", 2, gvk("events.k8s.io", "Event"), gvr("events.k8s.io"), gvk("events.k8s.io", "Event"), gvr("events.k8s.io"))
	check("/exact", 1, gvk("events.k8s.io", "Event"), gvr("events.k8s.io"), gvk("events.k8s.io", "Event"), gvr("events.k8s.io"))
	check("/core", 2, gvk("", "Event"), gvr(""), gvk("events.k8s.io", "Event"), gvr("events.k8s.io"))
	if r := ws.requests("/core")[1]; !strings.Contains(string(r.Object.Raw), `"apiVersion":"v1"`) || !strings.Contains(string(r.Object.Raw), `"message":"noted"`) {
		t.Errorf("the core/v1 webhook's object: %s", r.Object.Raw)
	}
}

// TestPolicyMatchPolicyEquivalent: a ValidatingAdmissionPolicy and a
// MutatingAdmissionPolicy whose matchConstraints name events.k8s.io/v1 events, with
// matchPolicy Equivalent (the default), see a core/v1 Event's write converted to
// events.k8s.io/v1 (object, request.kind; request.requestKind core/v1's), and the
// mutation, of that form, is what is stored; a policy with matchPolicy Exact does not
// see it.
func TestPolicyMatchPolicyEquivalent(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	eventsV1 := func(policy admissionregistrationv1.MatchPolicyType) *admissionregistrationv1.MatchResources {
		return &admissionregistrationv1.MatchResources{MatchPolicy: &policy, ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
			RuleWithOperations: admissionregistrationv1.RuleWithOperations{Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{APIGroups: []string{"events.k8s.io"}, APIVersions: []string{"v1"}, Resources: []string{"events"}}}}}}
	}
	deny := []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}
	rc.want(rc.do("POST", policiesBase, "application/json", "", policy("note", admissionregistrationv1.ValidatingAdmissionPolicySpec{
		MatchConstraints: eventsV1(admissionregistrationv1.Equivalent),
		Validations: []admissionregistrationv1.Validation{
			{Expression: "object.apiVersion == 'events.k8s.io/v1' && request.kind.group == 'events.k8s.io' && request.requestKind.group == ''", Message: "not converted"},
			{Expression: "object.note != 'deny-me'", Message: "denied note"}}})), 201, "the Equivalent policy")
	rc.want(rc.do("POST", bindingsBase, "application/json", "", binding("note", "note", admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{ValidationActions: deny})), 201, "its binding")
	rc.want(rc.do("POST", policiesBase, "application/json", "", policy("exact", admissionregistrationv1.ValidatingAdmissionPolicySpec{
		MatchConstraints: eventsV1(admissionregistrationv1.Exact), Validations: []admissionregistrationv1.Validation{{Expression: "false", Message: "exact matched"}}})), 201, "the Exact policy")
	rc.want(rc.do("POST", bindingsBase, "application/json", "", binding("exact", "exact", admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{ValidationActions: deny})), 201, "its binding")
	mp := mutatingPolicy("mutate-note", admissionregistrationv1.NeverReinvocationPolicy,
		jsonPatchMutation(`object.note == "mutate-me" ? [JSONPatch{op: "replace", path: "/note", value: "mutated by policy"}] : []`))
	mp.Spec.MatchConstraints = eventsV1(admissionregistrationv1.Equivalent)
	rc.want(rc.do("POST", mutatingPoliciesBase, "application/json", "", mp), 201, "the mutating policy")
	mb := &admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "mutate-note"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: "mutate-note"}}
	kinds.SetTypeMeta(mb)
	rc.want(rc.do("POST", mutatingBindingsBase, "application/json", "", mb), 201, "the mutating policy's binding")

	event := func(name, message string) *corev1.Event {
		ev := &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web-2"},
			Reason: "Pulled", Message: message, Type: "Normal", Source: corev1.EventSource{Component: "kubelet", Host: "w1"}, Count: 1,
			FirstTimestamp: metav1.NewTime(time.Unix(1700000000, 0)), LastTimestamp: metav1.NewTime(time.Unix(1700000100, 0))}
		kinds.SetTypeMeta(ev)
		return ev
	}
	const core = "/api/v1/namespaces/default/events"
	got := decodeJSON[corev1.Event](t, rc.want(rc.do("POST", core, "application/json", "", event("a", "mutate-me")), 201, "a core/v1 event").body)
	if got.Message != "mutated by policy" {
		t.Errorf("the Equivalent mutating policy's note is not the stored message: %q", got.Message)
	}
	st := rc.want(rc.do("POST", core, "application/json", "", event("b", "deny-me")), 422, "a core/v1 event the policy denies").status()
	if want := `events "b" is forbidden: ValidatingAdmissionPolicy 'note' with binding 'note' denied request: denied note`; st.Message != want {
		t.Errorf("denial: %q, want %q", st.Message, want)
	}
	// Through events.k8s.io/v1 itself, the Exact policy sees it.
	st = rc.want(rc.do("POST", "/apis/events.k8s.io/v1/namespaces/default/events", "application/json", "", eventV1("c", "web-1")), 422, "an events.k8s.io/v1 event").status()
	if !strings.Contains(st.Message, "ValidatingAdmissionPolicy 'exact' with binding 'exact' denied request: exact matched") {
		t.Errorf("events.k8s.io/v1's denial: %q", st.Message)
	}
}
