package validation

import (
	"testing"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
)

func admissionPolicy(mut func(*admissionregistrationv1.ValidatingAdmissionPolicySpec)) *admissionregistrationv1.ValidatingAdmissionPolicy {
	p := &admissionregistrationv1.ValidatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "max-replicas"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{Operations: []admissionregistrationv1.OperationType{"CREATE"},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{"apps"}, APIVersions: []string{"v1"}, Resources: []string{"deployments"}}}}}},
			Validations: []admissionregistrationv1.Validation{{Expression: "object.spec.replicas <= 5"}}}}
	if mut != nil {
		mut(&p.Spec)
	}
	Default(p)
	return p
}

func policyBinding(mut func(*admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec)) *admissionregistrationv1.ValidatingAdmissionPolicyBinding {
	b := &admissionregistrationv1.ValidatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "max-replicas"},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: "max-replicas",
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny}}}
	if mut != nil {
		mut(&b.Spec)
	}
	Default(b)
	return b
}

// TestValidateAdmissionPolicy: Kubernetes' rules for policies and bindings, in its
// words, each at its field path.
func TestValidateAdmissionPolicy(t *testing.T) {
	type spec = admissionregistrationv1.ValidatingAdmissionPolicySpec
	type bspec = admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want []string
	}{
		{"a policy", admissionPolicy(nil), nil},
		{"no matchConstraints", admissionPolicy(func(s *spec) { s.MatchConstraints = nil }), []string{"spec.matchConstraints: Required value"}},
		{"no resourceRules", admissionPolicy(func(s *spec) { s.MatchConstraints.ResourceRules = nil }), []string{"spec.matchConstraints.resourceRules: Required value"}},
		{"nothing to validate", admissionPolicy(func(s *spec) { s.Validations = nil }),
			[]string{"spec.validations: Required value: validations or auditAnnotations must contain at least one item"}},
		{"a message on two lines", admissionPolicy(func(s *spec) { s.Validations[0].Message = "a\nb" }),
			[]string{"spec.validations[0].message: Invalid value: \"a\\nb\": message must not contain line breaks"}},
		{"a reason", admissionPolicy(func(s *spec) { s.Validations[0].Reason = new(metav1.StatusReasonConflict) }),
			[]string{`spec.validations[0].reason: Unsupported value: "Conflict"`}},
		{"a failurePolicy", admissionPolicy(func(s *spec) { s.FailurePolicy = new(admissionregistrationv1.FailurePolicyType("Maybe")) }),
			[]string{`spec.failurePolicy: Unsupported value: "Maybe"`}},
		{"a variable's name", admissionPolicy(func(s *spec) { s.Variables = []admissionregistrationv1.Variable{{Name: "1x", Expression: "1"}} }),
			[]string{`spec.variables[0].name: Invalid value: "1x": name is not a valid CEL identifier`}},
		{"a paramKind without kind", admissionPolicy(func(s *spec) { s.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "v1"} }),
			[]string{"spec.paramKind.kind: Required value"}},
		{"params without paramKind", admissionPolicy(func(s *spec) { s.Validations[0].Expression = "params.x == 1" }),
			[]string{"spec.validations[0].expression: Invalid value: \"params.x == 1\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'params'"}},
		{"duplicate matchConditions", admissionPolicy(func(s *spec) {
			s.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "a", Expression: "true"}, {Name: "a", Expression: "true"}}
		}), []string{`spec.matchConditions[1].name: Duplicate value: "a"`}},
		{"a binding", policyBinding(nil), nil},
		{"no policyName", policyBinding(func(s *bspec) { s.PolicyName = "" }), []string{"spec.policyName: Required value"}},
		{"Deny and Warn", policyBinding(func(s *bspec) {
			s.ValidationActions = []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny, admissionregistrationv1.Warn}
		}), []string{"spec.validationActions: Invalid value: [\"Deny\",\"Warn\"]: must not contain both Deny and Warn"}},
		{"an action", policyBinding(func(s *bspec) { s.ValidationActions = []admissionregistrationv1.ValidationAction{"Block"} }),
			[]string{`spec.validationActions[0]: Unsupported value: "Block"`}},
		{"paramRef's name and selector", policyBinding(func(s *bspec) {
			s.ParamRef = &admissionregistrationv1.ParamRef{Name: "a", Selector: &metav1.LabelSelector{}, ParameterNotFoundAction: new(admissionregistrationv1.DenyAction)}
		}), []string{"spec.paramRef.name: Forbidden: name and selector are mutually exclusive"}},
		{"paramRef's parameterNotFoundAction", policyBinding(func(s *bspec) { s.ParamRef = &admissionregistrationv1.ParamRef{Name: "a"} }),
			[]string{"spec.paramRef.parameterNotFoundAction: Required value"}},
		{"a binding's matchResources defaulted", policyBinding(func(s *bspec) { s.MatchResources = &admissionregistrationv1.MatchResources{} }), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, Validate(tc.obj), tc.want)
		})
	}
}
