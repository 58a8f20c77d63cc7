package apiserver

import (
	"context"
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/skiffhq/skiff/apiserver/admissioncel"
	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki"
)

// TestPolicyMatchResources: Kubernetes' policy matching, a table: resourceRules with
// resourceNames, excludeResourceRules, no rules (a binding's: everything), the
// selectors, and a selector that does not parse (a configuration error).
func TestPolicyMatchResources(t *testing.T) {
	named := func(names ...string) admissionregistrationv1.NamedRuleWithOperations {
		return admissionregistrationv1.NamedRuleWithOperations{ResourceNames: names, RuleWithOperations: admissionregistrationv1.RuleWithOperations{
			Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.OperationAll},
			Rule:       admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}}}}
	}
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web", Labels: map[string]string{"tier": "web"}}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web"}}
	op := func(obj kinds.Object) *webhookOp {
		return &webhookOp{operation: admissionv1.Create, info: kinds.Of(obj), obj: obj}
	}
	nsLabels := map[string]labels.Set{"team": {"env": "prod"}}
	sel := func(k, v string) *metav1.LabelSelector {
		return &metav1.LabelSelector{MatchLabels: map[string]string{k: v}}
	}
	for _, tc := range []struct {
		name    string
		m       admissionregistrationv1.MatchResources
		op      *webhookOp
		want    bool
		wantErr bool
	}{
		{"a rule", admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{named()}}, op(deploy), true, false},
		{"another resource", admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{named()}}, op(pod), false, false},
		{"its name", admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{named("db", "web")}}, op(deploy), true, false},
		{"another name", admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{named("db")}}, op(deploy), false, false},
		{"excluded", admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{named()},
			ExcludeResourceRules: []admissionregistrationv1.NamedRuleWithOperations{named("web")}}, op(deploy), false, false},
		{"excluded, another name", admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{named()},
			ExcludeResourceRules: []admissionregistrationv1.NamedRuleWithOperations{named("db")}}, op(deploy), true, false},
		{"no rules", admissionregistrationv1.MatchResources{}, op(pod), true, false},
		{"objectSelector", admissionregistrationv1.MatchResources{ObjectSelector: sel("tier", "web")}, op(deploy), true, false},
		{"objectSelector, no label", admissionregistrationv1.MatchResources{ObjectSelector: sel("tier", "web")}, op(pod), false, false},
		{"namespaceSelector", admissionregistrationv1.MatchResources{NamespaceSelector: sel("env", "prod")}, op(deploy), true, false},
		{"namespaceSelector, another", admissionregistrationv1.MatchResources{NamespaceSelector: sel("env", "dev")}, op(deploy), false, false},
		{"a selector that does not parse", admissionregistrationv1.MatchResources{ObjectSelector: &metav1.LabelSelector{
			MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "a", Operator: "Bad"}}}}, op(deploy), false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newResourceMatch(&tc.m)
			_, got, err := matchResources(context.Background(), m, tc.op, func(_ context.Context, ns string) (labels.Set, error) {
				if s, ok := nsLabels[ns]; ok {
					return s, nil
				}
				return nil, errors.New("no such namespace")
			})
			if got != tc.want || (err != nil) != tc.wantErr {
				t.Errorf("matches %v, %v; want %v (error %v)", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// TestPolicyDenied: a policy's refusal in Kubernetes' words: Forbidden's message with
// the policy and the binding, the validation's reason (Invalid by default) and its code,
// for REST and gRPC.
func TestPolicyDenied(t *testing.T) {
	op := &webhookOp{operation: admissionv1.Create, info: kinds.MustLookup(kinds.Deployment), obj: &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web"}}}
	pol, b := "p", "b"
	for _, tc := range []struct {
		name     string
		d        policyDenial
		message  string
		reason   metav1.StatusReason
		httpCode int32
		code     codes.Code
	}{
		{"default reason", policyDenial{policy: pol, binding: b, Decision: admissioncel.Decision{Message: "too many"}},
			`deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: too many`,
			metav1.StatusReasonInvalid, 422, codes.InvalidArgument},
		{"Forbidden", policyDenial{policy: pol, binding: b, Decision: admissioncel.Decision{Message: "no", Reason: metav1.StatusReasonForbidden}},
			`deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: no`,
			metav1.StatusReasonForbidden, 403, codes.PermissionDenied},
		{"the policy's configuration", policyDenial{policy: pol, Decision: admissioncel.Decision{Message: "failed to configure policy: x", Error: true}},
			`deployments.apps "web" is forbidden: ValidatingAdmissionPolicy 'p' denied request: failed to configure policy: x`,
			metav1.StatusReasonInvalid, 422, codes.InvalidArgument},
	} {
		err := policyDeniedError(op, tc.d)
		st := asStatus(err)
		if st.Message != tc.message || st.Reason != tc.reason || st.Code != tc.httpCode || status.Code(err) != tc.code ||
			st.Details == nil || st.Details.Name != "web" || st.Details.Kind != "deployments" || len(st.Details.Causes) != 1 {
			t.Errorf("%s: %+v (gRPC %s)", tc.name, st, status.Code(err))
		}
	}
}

// TestCELAuthorizer: CEL's authorizer checks are the API server's authorizer's answers:
// everyone is allowed without authentication; an administrator is, a user without
// rules is not.
func TestCELAuthorizer(t *testing.T) {
	attrs := func(name string, groups ...string) authorizer.Attributes {
		return authorizer.AttributesRecord{User: &user.DefaultInfo{Name: name, Groups: groups}, Verb: "patch", APIGroup: "apps",
			Resource: "deployments", Namespace: "default", ResourceRequest: true}
	}
	for _, tc := range []struct {
		name  string
		authz *auth.Authorizer
		attrs authorizer.Attributes
		want  authorizer.Decision
	}{
		{"no authentication", nil, attrs("alice"), authorizer.DecisionAllow},
		{"an administrator", &auth.Authorizer{}, attrs("root", pki.GroupAdmin), authorizer.DecisionAllow},
		{"a user without rules", &auth.Authorizer{}, attrs("alice"), authorizer.DecisionNoOpinion},
	} {
		got, _, err := celAuthorizer{&resources{authz: tc.authz}}.Authorize(context.Background(), tc.attrs)
		if got != tc.want || err != nil {
			t.Errorf("%s: %v %v, want %v", tc.name, got, err, tc.want)
		}
	}
}

// TestUnstructuredOfIntegers: the object CEL reads has its whole numbers as int64, as
// Kubernetes' unstructured objects have them, so that `object.spec.replicas % 2` is an
// int's % (ValidatingAdmissionPolicy's "should allow expressions to refer variables").
func TestUnstructuredOfIntegers(t *testing.T) {
	u, err := unstructuredOf(&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: new(int32(3))}})
	if err != nil {
		t.Fatal(err)
	}
	if r, ok, err := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas"); !ok || err != nil || r != int64(3) {
		t.Errorf("spec.replicas = %#v (%v, %v), want int64(3)", r, ok, err)
	}
	if u.GetKind() != "Deployment" || u.GetAPIVersion() != "apps/v1" {
		t.Errorf("kind %q, apiVersion %q", u.GetKind(), u.GetAPIVersion())
	}
	// The object of an admitted write, as the policies' and webhooks' CEL reads it: the
	// resource's own and a subresource's (autoscaling/v1 Scale).
	deployments, _ := kinds.Lookup("deployments")
	deploy := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web"},
		Spec: appsv1.DeploymentSpec{Replicas: new(int32(3))}}
	scale := &autoscalingv1.Scale{ObjectMeta: metav1.ObjectMeta{Namespace: "team", Name: "web"}, Spec: autoscalingv1.ScaleSpec{Replicas: 3}}
	for _, tc := range []struct {
		name string
		op   *webhookOp
		obj  kinds.Object
	}{
		{"deployment", &webhookOp{info: deployments}, deploy},
		{"scale", &webhookOp{info: deployments, subKind: autoscalingv1.SchemeGroupVersion.WithKind("Scale")}, scale},
	} {
		u, err := tc.op.unstructured(tc.obj)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if r, ok, err := unstructured.NestedFieldNoCopy(u.Object, "spec", "replicas"); !ok || err != nil || r != int64(3) {
			t.Errorf("%s: spec.replicas = %#v (%v, %v), want int64(3)", tc.name, r, ok, err)
		}
	}
}
