package admissioncel

import (
	"context"
	"strings"
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
)

func deployment(replicas int64, labels map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{"apiVersion": "apps/v1", "kind": "Deployment",
		"metadata": map[string]any{"name": "web", "namespace": "default", "labels": labels},
		"spec":     map[string]any{"replicas": replicas}}}
}

func input(obj *unstructured.Unstructured, params *unstructured.Unstructured) Input {
	gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "deployments"}
	in := Input{Resource: gvr, Attributes: NewAttributes(Request{Kind: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"},
		Resource: gvr, Namespace: "default", Name: "web", Operation: admission.Create, Object: obj, User: &user.DefaultInfo{Name: "alice"}})}
	if params != nil {
		in.Params = params
	}
	return in
}

// TestPolicyValidate: a policy's evaluation as Kubernetes' validator makes it, a table:
// a validation that holds admits; one that fails refuses with its messageExpression's
// message, its message or the expression, and its reason (Invalid by default);
// variables and params are read; a false matchCondition skips the policy; an
// expression that fails to evaluate refuses under Fail and not under Ignore; audit
// annotations are published.
func TestPolicyValidate(t *testing.T) {
	ignore := admissionregistrationv1.Ignore
	forbidden := metav1.StatusReasonForbidden
	maxFive := admissionregistrationv1.Validation{Expression: "object.spec.replicas <= 5"}
	params := &unstructured.Unstructured{Object: map[string]any{"apiVersion": "v1", "kind": "ConfigMap",
		"metadata": map[string]any{"name": "limits"}, "data": map[string]any{"max": "3"}}}
	for _, tc := range []struct {
		name      string
		spec      admissionregistrationv1.ValidatingAdmissionPolicySpec
		obj       *unstructured.Unstructured
		params    *unstructured.Unstructured
		want      []Decision
		annotated []AuditAnnotation
	}{
		{name: "holds", spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{Validations: []admissionregistrationv1.Validation{maxFive}},
			obj: deployment(3, nil)},
		{name: "fails, the expression", spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{Validations: []admissionregistrationv1.Validation{maxFive}},
			obj: deployment(6, nil), want: []Decision{{Message: "failed expression: object.spec.replicas <= 5", Reason: metav1.StatusReasonInvalid}}},
		{name: "message and reason", spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{Validations: []admissionregistrationv1.Validation{
			{Expression: "object.spec.replicas <= 5", Message: "too many", Reason: &forbidden}}},
			obj: deployment(6, nil), want: []Decision{{Message: "too many", Reason: metav1.StatusReasonForbidden}}},
		{name: "messageExpression", spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{Validations: []admissionregistrationv1.Validation{
			{Expression: "object.spec.replicas <= 5", Message: "too many", MessageExpression: "'replicas ' + string(object.spec.replicas) + ' > 5 for ' + request.userInfo.username"}}},
			obj: deployment(6, nil), want: []Decision{{Message: "replicas 6 > 5 for alice", Reason: metav1.StatusReasonInvalid}}},
		{name: "variables", spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			Variables:   []admissionregistrationv1.Variable{{Name: "r", Expression: "object.spec.replicas"}},
			Validations: []admissionregistrationv1.Validation{{Expression: "variables.r < 2", Message: "r"}}},
			obj: deployment(2, nil), want: []Decision{{Message: "r", Reason: metav1.StatusReasonInvalid}}},
		{name: "params", spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			ParamKind:   &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"},
			Validations: []admissionregistrationv1.Validation{{Expression: "object.spec.replicas <= int(params.data.max)", MessageExpression: "'at most ' + params.data.max"}}},
			obj: deployment(4, nil), params: params, want: []Decision{{Message: "at most 3", Reason: metav1.StatusReasonInvalid}}},
		{name: "a false matchCondition", spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "labelled", Expression: "'big' in object.metadata.labels"}},
			Validations:     []admissionregistrationv1.Validation{maxFive}},
			obj: deployment(6, map[string]any{"small": "yes"})},
		{name: "a true matchCondition", spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "labelled", Expression: "'big' in object.metadata.labels"}},
			Validations:     []admissionregistrationv1.Validation{maxFive}},
			obj: deployment(6, map[string]any{"big": "yes"}), want: []Decision{{Message: "failed expression: object.spec.replicas <= 5", Reason: metav1.StatusReasonInvalid}}},
		{name: "an evaluation error, Fail", spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			Validations: []admissionregistrationv1.Validation{{Expression: "object.spec.missing == 1"}}},
			obj: deployment(1, nil), want: []Decision{{Message: "no such key: missing", Error: true}}},
		{name: "an evaluation error, Ignore", spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{FailurePolicy: &ignore,
			Validations: []admissionregistrationv1.Validation{{Expression: "object.spec.missing == 1"}}},
			obj: deployment(1, nil)},
		{name: "audit annotations", spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			AuditAnnotations: []admissionregistrationv1.AuditAnnotation{{Key: "replicas", ValueExpression: "string(object.spec.replicas)"},
				{Key: "none", ValueExpression: "null"}}},
			obj: deployment(2, nil), annotated: []AuditAnnotation{{Key: "replicas", Value: "2"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if errs := ValidatePolicySpec(&tc.spec, field.NewPath("spec")); len(errs) > 0 {
				t.Fatalf("does not compile: %v", errs)
			}
			res := CompilePolicy("p", &tc.spec).Validate(context.Background(), input(tc.obj, tc.params))
			if len(res.Denied) != len(tc.want) {
				t.Fatalf("decisions %+v, want %+v", res.Denied, tc.want)
			}
			for i, d := range res.Denied {
				w := tc.want[i]
				if d.Error != w.Error || d.Reason != w.Reason || !strings.Contains(d.Message, w.Message) {
					t.Errorf("decision %d: %+v, want %+v", i, d, w)
				}
			}
			if len(res.Annotations) != len(tc.annotated) || len(tc.annotated) > 0 && res.Annotations[0] != tc.annotated[0] {
				t.Errorf("annotations %+v, want %+v", res.Annotations, tc.annotated)
			}
		})
	}
}

// TestValidatePolicySpec: what does not compile, or has the wrong type, is refused at
// its field path.
func TestValidatePolicySpec(t *testing.T) {
	spec := admissionregistrationv1.ValidatingAdmissionPolicySpec{
		Variables:        []admissionregistrationv1.Variable{{Name: "v", Expression: "object.("}},
		Validations:      []admissionregistrationv1.Validation{{Expression: "'not a bool'"}, {Expression: "true", MessageExpression: "1"}},
		AuditAnnotations: []admissionregistrationv1.AuditAnnotation{{Key: "k", ValueExpression: "params.x"}}, // no paramKind
		MatchConditions:  []admissionregistrationv1.MatchCondition{{Name: "m", Expression: "1"}},
	}
	errs := ValidatePolicySpec(&spec, field.NewPath("spec"))
	var paths []string
	for _, e := range errs {
		paths = append(paths, e.Field)
	}
	want := []string{"spec.variables[0].expression", "spec.validations[0].expression", "spec.validations[1].messageExpression",
		"spec.auditAnnotations[0].valueExpression", "spec.matchConditions[0].expression"}
	if strings.Join(paths, " ") != strings.Join(want, " ") {
		t.Errorf("errors at %v, want %v: %v", paths, want, errs)
	}
	if !strings.Contains(errs[1].Detail, "must evaluate to bool") {
		t.Errorf("a string validation: %s", errs[1].Detail)
	}
	if errs := ValidateMatchConditions([]admissionregistrationv1.MatchCondition{{Name: "ok", Expression: "request.operation == 'CREATE'"},
		{Name: "bad", Expression: "object.metadata.name"}}, field.NewPath("webhooks").Index(0).Child("matchConditions")); len(errs) != 1 ||
		errs[0].Field != "webhooks[0].matchConditions[1].expression" {
		t.Errorf("webhook matchConditions: %v", errs)
	}
}

// TestWebhookMatchConditions: a webhook's conditions, all true or one false; an error
// under Fail is the error, under Ignore no match.
func TestWebhookMatchConditions(t *testing.T) {
	ignore := admissionregistrationv1.Ignore
	conds := []admissionregistrationv1.MatchCondition{{Name: "create", Expression: "request.operation == 'CREATE'"},
		{Name: "big", Expression: "object.spec.replicas > 5"}}
	in := input(deployment(6, nil), nil)
	if ok, err := CompileMatchConditions("h", false, conds, nil).Match(context.Background(), in.Attributes, nil); !ok || err != nil {
		t.Errorf("all true: %v %v", ok, err)
	}
	small := input(deployment(2, nil), nil)
	if ok, err := CompileMatchConditions("h", true, conds, nil).Match(context.Background(), small.Attributes, nil); ok || err != nil {
		t.Errorf("one false: %v %v", ok, err)
	}
	broken := []admissionregistrationv1.MatchCondition{{Name: "x", Expression: "object.spec.missing > 1"}}
	if ok, err := CompileMatchConditions("h", false, broken, nil).Match(context.Background(), in.Attributes, nil); ok || err == nil {
		t.Errorf("an error, Fail: %v %v", ok, err)
	}
	if ok, err := CompileMatchConditions("h", false, broken, &ignore).Match(context.Background(), in.Attributes, nil); ok || err != nil {
		t.Errorf("an error, Ignore: %v %v", ok, err)
	}
	if CompileMatchConditions("h", false, nil, nil) != nil {
		t.Error("no conditions, a matcher")
	}
}

// allowUser is an authorizer that allows one user everything.
type allowUser string

func (u allowUser) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	if a.GetUser().GetName() == string(u) && a.GetVerb() == "delete" && a.GetResource() == "deployments" {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

// TestPolicyAuthorizer: the authorizer variable asks the authorizer given, for the
// request's user.
func TestPolicyAuthorizer(t *testing.T) {
	spec := admissionregistrationv1.ValidatingAdmissionPolicySpec{Validations: []admissionregistrationv1.Validation{{
		Expression: "object.spec.replicas <= 5 || authorizer.group('apps').resource('deployments').namespace('default').check('delete').allowed()",
		Message:    "only who may delete deployments may make big ones"}}}
	if errs := ValidatePolicySpec(&spec, field.NewPath("spec")); len(errs) > 0 {
		t.Fatal(errs)
	}
	p := CompilePolicy("p", &spec)
	in := input(deployment(9, nil), nil) // alice's
	in.Authorizer = allowUser("alice")
	if res := p.Validate(context.Background(), in); len(res.Denied) != 0 {
		t.Errorf("alice may: %+v", res.Denied)
	}
	in.Authorizer = allowUser("bob")
	if res := p.Validate(context.Background(), in); len(res.Denied) != 1 || res.Denied[0].Message != "only who may delete deployments may make big ones" {
		t.Errorf("alice may not: %+v", res.Denied)
	}
}

// BenchmarkPolicyValidate: one evaluation of a policy of a variable, two validations
// (one failing, with a messageExpression) and a matchCondition on a Deployment: the CEL
// cost a write pays for each bound policy that matches it (the JSON conversion of the
// object, done once a write, excluded).
func BenchmarkPolicyValidate(b *testing.B) {
	spec := admissionregistrationv1.ValidatingAdmissionPolicySpec{
		MatchConditions: []admissionregistrationv1.MatchCondition{{Name: "create", Expression: "request.operation == 'CREATE'"}},
		Variables:       []admissionregistrationv1.Variable{{Name: "r", Expression: "object.spec.replicas"}},
		Validations: []admissionregistrationv1.Validation{{Expression: "variables.r <= 5", MessageExpression: "'got ' + string(variables.r)"},
			{Expression: "object.metadata.name.startsWith('w')"}}}
	p := CompilePolicy("p", &spec)
	ctx := context.Background()
	for b.Loop() {
		if res := p.Validate(ctx, input(deployment(6, nil), nil)); len(res.Denied) != 1 {
			b.Fatal(res.Denied)
		}
	}
}
