package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
)

// TestWebhookRuleMatching: Kubernetes' rule matching, a table: operations, groups,
// versions, resources with subresources and wildcards, scope.
func TestWebhookRuleMatching(t *testing.T) {
	rule := func(ops []admissionregistrationv1.OperationType, groups, versions, resources []string, scope admissionregistrationv1.ScopeType) admissionregistrationv1.RuleWithOperations {
		return admissionregistrationv1.RuleWithOperations{Operations: ops, Rule: admissionregistrationv1.Rule{
			APIGroups: groups, APIVersions: versions, Resources: resources, Scope: &scope}}
	}
	create := []admissionregistrationv1.OperationType{admissionregistrationv1.Create}
	all := []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p"}}
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "team", Namespace: "team"}}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "d"}}
	op := func(operation admissionv1.Operation, obj kinds.Object, sub string) *webhookOp {
		return &webhookOp{operation: operation, info: kinds.Of(obj), obj: obj, subresource: sub}
	}
	for _, tc := range []struct {
		name string
		rule admissionregistrationv1.RuleWithOperations
		op   *webhookOp
		want bool
	}{
		{"pods create", rule(create, []string{""}, []string{"v1"}, []string{"pods"}, "*"), op(admissionv1.Create, pod, ""), true},
		{"pods create, an update", rule(create, []string{""}, []string{"v1"}, []string{"pods"}, "*"), op(admissionv1.Update, pod, ""), false},
		{"every operation", rule(all, []string{""}, []string{"v1"}, []string{"pods"}, "*"), op(admissionv1.Delete, pod, ""), true},
		{"another group", rule(create, []string{"apps"}, []string{"v1"}, []string{"pods"}, "*"), op(admissionv1.Create, pod, ""), false},
		{"apps deployments", rule(create, []string{"apps"}, []string{"v1"}, []string{"deployments"}, "*"), op(admissionv1.Create, deploy, ""), true},
		{"another version", rule(create, []string{"apps"}, []string{"v1beta1"}, []string{"deployments"}, "*"), op(admissionv1.Create, deploy, ""), false},
		{"every group and version", rule(create, []string{"*"}, []string{"*"}, []string{"deployments"}, "*"), op(admissionv1.Create, deploy, ""), true},
		{"* is not a subresource", rule(all, []string{"*"}, []string{"*"}, []string{"*"}, "*"), op(admissionv1.Update, pod, "status"), false},
		{"* is every resource", rule(all, []string{"*"}, []string{"*"}, []string{"*"}, "*"), op(admissionv1.Update, pod, ""), true},
		{"*/* is everything", rule(all, []string{"*"}, []string{"*"}, []string{"*/*"}, "*"), op(admissionv1.Update, pod, "status"), true},
		{"pods/status", rule(all, []string{""}, []string{"v1"}, []string{"pods/status"}, "*"), op(admissionv1.Update, pod, "status"), true},
		{"pods/status, the pod", rule(all, []string{""}, []string{"v1"}, []string{"pods/status"}, "*"), op(admissionv1.Update, pod, ""), false},
		{"pods, the status", rule(all, []string{""}, []string{"v1"}, []string{"pods"}, "*"), op(admissionv1.Update, pod, "status"), false},
		{"pods/*", rule(all, []string{""}, []string{"v1"}, []string{"pods/*"}, "*"), op(admissionv1.Update, pod, "status"), true},
		{"*/status", rule(all, []string{""}, []string{"v1"}, []string{"*/status"}, "*"), op(admissionv1.Update, pod, "status"), true},
		{"Namespaced, a pod", rule(all, []string{"*"}, []string{"*"}, []string{"*"}, "Namespaced"), op(admissionv1.Create, pod, ""), true},
		{"Namespaced, a node", rule(all, []string{"*"}, []string{"*"}, []string{"*"}, "Namespaced"), op(admissionv1.Create, node, ""), false},
		{"Cluster, a node", rule(all, []string{"*"}, []string{"*"}, []string{"*"}, "Cluster"), op(admissionv1.Create, node, ""), true},
		{"Cluster, a namespace", rule(all, []string{"*"}, []string{"*"}, []string{"*"}, "Cluster"), op(admissionv1.Create, ns, ""), true},
		{"Namespaced, a namespace", rule(all, []string{"*"}, []string{"*"}, []string{"*"}, "Namespaced"), op(admissionv1.Create, ns, ""), false},
		{"a delete has no object", rule(all, []string{""}, []string{"v1"}, []string{"pods"}, "Namespaced"),
			&webhookOp{operation: admissionv1.Delete, info: kinds.Of(pod), old: pod}, true},
	} {
		if got := matchRule(&tc.rule, tc.op); got != tc.want {
			t.Errorf("%s: matched %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestWebhookSelectors: objectSelector matches the new or the old object's labels;
// namespaceSelector the namespace's labels (a Namespace's own), and every cluster-scoped
// object.
func TestWebhookSelectors(t *testing.T) {
	sel := func(s string) labels.Selector {
		out, err := labels.Parse(s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	wh := &webhooks{namespaceLabels: func(_ context.Context, ns string) (labels.Set, error) {
		if ns == "prod" {
			return labels.Set{"env": "prod"}, nil
		}
		return labels.Set{}, nil
	}}
	rules := []admissionregistrationv1.RuleWithOperations{{Operations: []admissionregistrationv1.OperationType{"*"},
		Rule: admissionregistrationv1.Rule{APIGroups: []string{"*"}, APIVersions: []string{"*"}, Resources: []string{"*"}}}}
	hook := func(nsSel, objSel string) *webhook {
		return &webhook{MutatingWebhook: admissionregistrationv1.MutatingWebhook{Rules: rules}, nsSel: sel(nsSel), objSel: sel(objSel)}
	}
	cm := func(ns string, l map[string]string) *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "c", Labels: l}}
	}
	info := kinds.MustLookup(kinds.ConfigMap)
	for _, tc := range []struct {
		name     string
		h        *webhook
		op       *webhookOp
		want     bool
		ctxLabel string
	}{
		{"no selectors", hook("", ""), &webhookOp{info: info, obj: cm("dev", nil)}, true, ""},
		{"object labels", hook("", "app=web"), &webhookOp{info: info, obj: cm("dev", map[string]string{"app": "web"})}, true, ""},
		{"object labels differ", hook("", "app=web"), &webhookOp{info: info, obj: cm("dev", map[string]string{"app": "db"})}, false, ""},
		{"the old object's labels", hook("", "app=web"), &webhookOp{info: info, obj: cm("dev", nil), old: cm("dev", map[string]string{"app": "web"})}, true, ""},
		{"namespace labels", hook("env=prod", ""), &webhookOp{info: info, obj: cm("prod", nil)}, true, ""},
		{"namespace labels differ", hook("env=prod", ""), &webhookOp{info: info, obj: cm("dev", nil)}, false, ""},
		{"a cluster-scoped object", hook("env=prod", ""), &webhookOp{info: kinds.MustLookup(kinds.Node), obj: &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "n"}}}, true, ""},
		{"a namespace's own labels", hook("env=prod", ""), &webhookOp{info: kinds.MustLookup(kinds.Namespace),
			obj: &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "x", Labels: map[string]string{"env": "prod"}}}}, true, ""},
	} {
		tc.op.operation = admissionv1.Create
		_, got, err := wh.matches(context.Background(), tc.h, tc.op)
		if err != nil || got != tc.want {
			t.Errorf("%s: matched %v (%v), want %v", tc.name, got, err, tc.want)
		}
	}
}

// TestWebhookReview: the AdmissionReview a webhook gets names the request as
// Kubernetes' does.
func TestWebhookReview(t *testing.T) {
	old := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "c", ResourceVersion: "5"}}
	obj := old.DeepCopy()
	obj.Data = map[string]string{"a": "b"}
	ctx := context.WithValue(context.Background(), userKey{}, auth.User{Name: "alice", Groups: []string{"devs"}})
	rev, err := (&webhooks{}).review(ctx, &webhookOp{operation: admissionv1.Update, info: kinds.Of(obj), subresource: "", obj: obj, old: old,
		dryRun: true, options: &metav1.UpdateOptions{TypeMeta: metav1.TypeMeta{Kind: "UpdateOptions", APIVersion: "meta.k8s.io/v1"}}})
	if err != nil {
		t.Fatal(err)
	}
	js, _ := json.Marshal(rev)
	var got map[string]any
	json.Unmarshal(js, &got)
	req := got["request"].(map[string]any)
	for k, want := range map[string]string{
		"kind": `{"group":"","kind":"ConfigMap","version":"v1"}`, "resource": `{"group":"","resource":"configmaps","version":"v1"}`,
		"requestKind": `{"group":"","kind":"ConfigMap","version":"v1"}`, "name": `"c"`, "namespace": `"default"`, "operation": `"UPDATE"`,
		"userInfo": `{"groups":["devs"],"username":"alice"}`, "dryRun": "true", "options": `{"apiVersion":"meta.k8s.io/v1","kind":"UpdateOptions"}`,
	} {
		if b, _ := json.Marshal(req[k]); string(b) != want {
			t.Errorf("request.%s: %s, want %s", k, b, want)
		}
	}
	if got["apiVersion"] != "admission.k8s.io/v1" || got["kind"] != "AdmissionReview" || req["uid"] == "" {
		t.Errorf("review: %s", js)
	}
	if o := req["object"].(map[string]any); o["kind"] != "ConfigMap" || o["apiVersion"] != "v1" || o["data"] == nil {
		t.Errorf("object: %v", o)
	}
	if o := req["oldObject"].(map[string]any); o["data"] != nil {
		t.Errorf("oldObject: %v", o)
	}
}

// TestWebhookDenial: a refusal's Status, Kubernetes' ToStatusErr: the message says who
// denied, the code is at least 400.
func TestWebhookDenial(t *testing.T) {
	for _, tc := range []struct {
		result   *metav1.Status
		message  string
		httpCode int32
	}{
		{nil, `admission webhook "w.test" denied the request without explanation`, 400},
		{&metav1.Status{Message: "no"}, `admission webhook "w.test" denied the request: no`, 400},
		{&metav1.Status{Reason: "Forbidden", Code: 403}, `admission webhook "w.test" denied the request: Forbidden`, 403},
		{&metav1.Status{Message: "later", Code: 200}, `admission webhook "w.test" denied the request: later`, 400},
	} {
		err := deniedError("w.test", tc.result)
		var ae *apiError
		if !errors.As(err, &ae) || ae.status.Message != tc.message || ae.status.Code != tc.httpCode || ae.status.Status != metav1.StatusFailure {
			t.Errorf("%+v: %+v", tc.result, err)
		}
	}
}

// TestWebhookPatch: a mutating webhook's JSON patch is applied to the object; a patch
// that renames the object or breaks it fails the call (under failurePolicy Fail).
func TestWebhookPatch(t *testing.T) {
	pt := admissionv1.PatchTypeJSONPatch
	fail := admissionregistrationv1.Fail
	h := &webhook{MutatingWebhook: admissionregistrationv1.MutatingWebhook{Name: "m.test", FailurePolicy: &fail}}
	for _, tc := range []struct {
		patch   string
		changed bool
		err     string
		label   string
	}{
		{`[{"op":"add","path":"/metadata/labels","value":{"a":"b"}}]`, true, "", "b"},
		{`[{"op":"test","path":"/metadata/name","value":"c"}]`, false, "", ""},
		{`[{"op":"replace","path":"/metadata/name","value":"d"}]`, false, "a patch may not rename the object", ""},
		{`[{"op":"remove","path":"/nope"}]`, false, `failed calling webhook "m.test"`, ""},
	} {
		op := &webhookOp{operation: admissionv1.Create, info: kinds.MustLookup(kinds.ConfigMap),
			obj: &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "c"}}}
		changed, err := (&webhooks{}).applyPatch(h, op, &admissionv1.AdmissionResponse{Allowed: true, PatchType: &pt, Patch: []byte(tc.patch)})
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want %q", tc.patch, err, tc.err)
			}
			continue
		}
		if err != nil || changed != tc.changed || op.obj.GetLabels()["a"] != tc.label {
			t.Errorf("%s: changed %v, %v, labels %v", tc.patch, changed, err, op.obj.GetLabels())
		}
	}
}
