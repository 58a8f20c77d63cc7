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

func mutatingPolicy(mut func(*admissionregistrationv1.MutatingAdmissionPolicySpec)) *admissionregistrationv1.MutatingAdmissionPolicy {
	p := &admissionregistrationv1.MutatingAdmissionPolicy{ObjectMeta: metav1.ObjectMeta{Name: "sidecar"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicySpec{
			MatchConstraints: &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{Operations: []admissionregistrationv1.OperationType{"CREATE"},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}}}},
			Mutations: []admissionregistrationv1.Mutation{{PatchType: admissionregistrationv1.PatchTypeApplyConfiguration,
				ApplyConfiguration: &admissionregistrationv1.ApplyConfiguration{Expression: `Object{metadata: Object.metadata{labels: {"a": "b"}}}`}}},
			ReinvocationPolicy: admissionregistrationv1.NeverReinvocationPolicy}}
	if mut != nil {
		mut(&p.Spec)
	}
	Default(p)
	return p
}

func mutatingBinding(mut func(*admissionregistrationv1.MutatingAdmissionPolicyBindingSpec)) *admissionregistrationv1.MutatingAdmissionPolicyBinding {
	b := &admissionregistrationv1.MutatingAdmissionPolicyBinding{ObjectMeta: metav1.ObjectMeta{Name: "sidecar"},
		Spec: admissionregistrationv1.MutatingAdmissionPolicyBindingSpec{PolicyName: "sidecar"}}
	if mut != nil {
		mut(&b.Spec)
	}
	Default(b)
	return b
}

// TestValidateMutatingAdmissionPolicy: Kubernetes' rules for mutating policies and their
// bindings, in its words, each at its field path; each mutation's CEL is compiled with
// the patch types, and must return the patch its patchType names.
func TestValidateMutatingAdmissionPolicy(t *testing.T) {
	type spec = admissionregistrationv1.MutatingAdmissionPolicySpec
	type bspec = admissionregistrationv1.MutatingAdmissionPolicyBindingSpec
	jsonPatch := func(expr string) []admissionregistrationv1.Mutation {
		return []admissionregistrationv1.Mutation{{PatchType: admissionregistrationv1.PatchTypeJSONPatch, JSONPatch: &admissionregistrationv1.JSONPatch{Expression: expr}}}
	}
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want []string
	}{
		{"an ApplyConfiguration", mutatingPolicy(nil), nil},
		{"a JSONPatch", mutatingPolicy(func(s *spec) {
			s.Mutations = jsonPatch(`[JSONPatch{op: "add", path: "/metadata/labels", value: {"a": "b"}}]`)
		}), nil},
		{"variables and params", mutatingPolicy(func(s *spec) {
			s.ParamKind = &admissionregistrationv1.ParamKind{APIVersion: "v1", Kind: "ConfigMap"}
			s.Variables = []admissionregistrationv1.Variable{{Name: "team", Expression: "params.data.team"}}
			s.Mutations = jsonPatch(`[JSONPatch{op: "add", path: "/metadata/annotations", value: {"team": variables.team}}]`)
		}), nil},
		{"no mutations", mutatingPolicy(func(s *spec) { s.Mutations = nil }),
			[]string{"spec.mutations: Required value: mutations must contain at least one item"}},
		{"no reinvocationPolicy", mutatingPolicy(func(s *spec) { s.ReinvocationPolicy = "" }), []string{"spec.reinvocationPolicy: Required value"}},
		{"a reinvocationPolicy", mutatingPolicy(func(s *spec) { s.ReinvocationPolicy = "Always" }),
			[]string{`spec.reinvocationPolicy: Unsupported value: "Always": supported values: "IfNeeded", "Never"`}},
		{"no matchConstraints", mutatingPolicy(func(s *spec) { s.MatchConstraints = nil }), []string{"spec.matchConstraints: Required value"}},
		{"deletes", mutatingPolicy(func(s *spec) {
			s.MatchConstraints.ResourceRules[0].Operations = []admissionregistrationv1.OperationType{"DELETE"}
		}), []string{`spec.matchConstraints.resourceRules.operations: Unsupported value: "DELETE": supported values: "*", "CONNECT", "CREATE", "UPDATE"`}},
		{"no patchType", mutatingPolicy(func(s *spec) { s.Mutations[0].PatchType = "" }), []string{"spec.mutations[0].patchType: Required value"}},
		{"a patchType", mutatingPolicy(func(s *spec) { s.Mutations[0].PatchType = "MergePatch" }),
			[]string{`spec.mutations[0].patchType: Unsupported value: "MergePatch": supported values: "ApplyConfiguration", "JSONPatch"`}},
		{"the other patch", mutatingPolicy(func(s *spec) { s.Mutations[0].JSONPatch = &admissionregistrationv1.JSONPatch{Expression: "[]"} }),
			[]string{`spec.mutations[0].jsonPatch: Invalid value: "{...}": must not be specified when patchType is ApplyConfiguration`}},
		{"no jsonPatch", mutatingPolicy(func(s *spec) { s.Mutations[0].PatchType = admissionregistrationv1.PatchTypeJSONPatch }),
			[]string{"spec.mutations[0].jsonPatch: Required value: must be specified when patchType is JSONPatch",
				`spec.mutations[0].applyConfiguration: Invalid value: "{...}": must not be specified when patchType is JSONPatch`}},
		{"an empty expression", mutatingPolicy(func(s *spec) { s.Mutations[0].ApplyConfiguration.Expression = " " }),
			[]string{"spec.mutations[0].applyConfiguration.expression: Required value"}},
		{"an ApplyConfiguration that is not an Object", mutatingPolicy(func(s *spec) { s.Mutations[0].ApplyConfiguration.Expression = "object.metadata" }),
			[]string{`spec.mutations[0].applyConfiguration.expression: Invalid value: "object.metadata": must evaluate to Object`}},
		{"a JSONPatch that does not compile", mutatingPolicy(func(s *spec) { s.Mutations = jsonPatch("[JSONPatch{op: ") }),
			[]string{`spec.mutations[0].jsonPatch.expression: Invalid value: "[JSONPatch{op: ": compilation failed`}},
		{"params without paramKind", mutatingPolicy(func(s *spec) { s.Mutations = jsonPatch("params.x") }),
			[]string{"spec.mutations[0].jsonPatch.expression: Invalid value: \"params.x\": compilation failed: ERROR: <input>:1:1: undeclared reference to 'params'"}},
		{"a matchCondition that does not compile", mutatingPolicy(func(s *spec) {
			s.MatchConditions = []admissionregistrationv1.MatchCondition{{Name: "named", Expression: "object.metadata.name"}}
		}), []string{`spec.matchConditions[0].expression: Invalid value: "object.metadata.name": must evaluate to bool`}},
		{"a variable's name", mutatingPolicy(func(s *spec) { s.Variables = []admissionregistrationv1.Variable{{Name: "1x", Expression: "1"}} }),
			[]string{`spec.variables[0].name: Invalid value: "1x": name is not a valid CEL identifier`}},
		{"a binding", mutatingBinding(nil), nil},
		{"no policyName", mutatingBinding(func(s *bspec) { s.PolicyName = "" }), []string{"spec.policyName: Required value"}},
		{"a binding matching deletes", mutatingBinding(func(s *bspec) {
			s.MatchResources = &admissionregistrationv1.MatchResources{ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
				RuleWithOperations: admissionregistrationv1.RuleWithOperations{Operations: []admissionregistrationv1.OperationType{"DELETE"},
					Rule: admissionregistrationv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"configmaps"}}}}}}
		}), []string{`spec.matchResources.resourceRules.operations: Unsupported value: "DELETE"`}},
		{"a binding's paramRef", mutatingBinding(func(s *bspec) { s.ParamRef = &admissionregistrationv1.ParamRef{Name: "a"} }),
			[]string{"spec.paramRef.parameterNotFoundAction: Required value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, Validate(tc.obj), tc.want)
		})
	}
	if p := mutatingPolicy(nil); p.Spec.FailurePolicy == nil || *p.Spec.FailurePolicy != admissionregistrationv1.Fail ||
		p.Spec.MatchConstraints.MatchPolicy == nil || *p.Spec.MatchConstraints.ResourceRules[0].Scope != admissionregistrationv1.AllScopes {
		t.Errorf("defaults: %+v", p.Spec)
	}
}
