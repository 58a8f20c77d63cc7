package validation

import (
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/api/validation/path"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/apiserver/admissioncel"
)

// ValidatingAdmissionPolicy and ValidatingAdmissionPolicyBinding: Kubernetes'
// admissionregistration defaults (SetDefaults_ValidatingAdmissionPolicySpec,
// SetDefaults_MatchResources, ...) and validation (ValidateValidatingAdmissionPolicy,
// ValidateValidatingAdmissionPolicyBinding), in their words; the CEL expressions are
// compiled by admissioncel, as the API server evaluates them (apiserver/policies.go).

// defaultMatchResources fills a policy's matchConstraints or a binding's matchResources:
// matchPolicy Equivalent, empty selectors, a rule's scope "*".
func defaultMatchResources(m *admissionregistrationv1.MatchResources) {
	if m == nil {
		return
	}
	if m.MatchPolicy == nil {
		m.MatchPolicy = new(admissionregistrationv1.Equivalent)
	}
	if m.NamespaceSelector == nil {
		m.NamespaceSelector = &metav1.LabelSelector{}
	}
	if m.ObjectSelector == nil {
		m.ObjectSelector = &metav1.LabelSelector{}
	}
	for _, rules := range [][]admissionregistrationv1.NamedRuleWithOperations{m.ResourceRules, m.ExcludeResourceRules} {
		for i := range rules {
			if rules[i].Scope == nil {
				rules[i].Scope = new(admissionregistrationv1.AllScopes)
			}
		}
	}
}

func defaultPolicy(p *admissionregistrationv1.ValidatingAdmissionPolicy) {
	if p.Spec.FailurePolicy == nil {
		p.Spec.FailurePolicy = new(admissionregistrationv1.Fail)
	}
	defaultMatchResources(p.Spec.MatchConstraints)
}

func defaultMutatingPolicy(p *admissionregistrationv1.MutatingAdmissionPolicy) {
	if p.Spec.FailurePolicy == nil {
		p.Spec.FailurePolicy = new(admissionregistrationv1.Fail)
	}
	defaultMatchResources(p.Spec.MatchConstraints)
}

var (
	validationReasons = []string{string(metav1.StatusReasonUnauthorized), string(metav1.StatusReasonForbidden),
		string(metav1.StatusReasonInvalid), string(metav1.StatusReasonRequestEntityTooLarge)}
	validationActions        = []string{string(admissionregistrationv1.Deny), string(admissionregistrationv1.Warn), string(admissionregistrationv1.Audit)}
	parameterNotFoundActions = []string{string(admissionregistrationv1.AllowAction), string(admissionregistrationv1.DenyAction)}
)

// maxMatchConditions is Kubernetes' limit of matchConditions on a webhook or a policy.
const maxMatchConditions = 64

// validatePolicyHead checks what both kinds of policy begin with: failurePolicy,
// paramKind, matchConstraints (which must name resourceRules) and matchConditions.
func validatePolicyHead(fp *admissionregistrationv1.FailurePolicyType, pk *admissionregistrationv1.ParamKind,
	mc *admissionregistrationv1.MatchResources, conds []admissionregistrationv1.MatchCondition, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if fp == nil {
		errs = append(errs, field.Required(p.Child("failurePolicy"), ""))
	} else if !slices.Contains(failurePolicies, string(*fp)) {
		errs = append(errs, field.NotSupported(p.Child("failurePolicy"), *fp, failurePolicies))
	}
	if pk != nil {
		errs = append(errs, validateParamKind(pk, p.Child("paramKind"))...)
	}
	if mc == nil {
		errs = append(errs, field.Required(p.Child("matchConstraints"), ""))
	} else {
		errs = append(errs, validateMatchResources(mc, true, p.Child("matchConstraints"))...)
	}
	return append(errs, validateMatchConditions(conds, p.Child("matchConditions"))...)
}

// validateVariables checks a policy's variables: each named by a CEL identifier, once,
// with an expression.
func validateVariables(vars []admissionregistrationv1.Variable, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	names := map[string]bool{}
	for i, v := range vars {
		vp := p.Index(i)
		switch {
		case v.Name == "":
			errs = append(errs, field.Required(vp.Child("name"), "name is not specified"))
		case !isCELIdentifier(v.Name):
			errs = append(errs, field.Invalid(vp.Child("name"), v.Name, "name is not a valid CEL identifier"))
		case names[v.Name]:
			errs = append(errs, field.Duplicate(vp.Child("name"), v.Name))
		}
		names[v.Name] = true
		if strings.TrimSpace(v.Expression) == "" {
			errs = append(errs, field.Required(vp.Child("expression"), "expression is not specified"))
		}
	}
	return errs
}

// validatePolicy is Kubernetes' ValidateValidatingAdmissionPolicy.
func validatePolicy(pol *admissionregistrationv1.ValidatingAdmissionPolicy) field.ErrorList {
	spec := &pol.Spec
	p := field.NewPath("spec")
	errs := validatePolicyHead(spec.FailurePolicy, spec.ParamKind, spec.MatchConstraints, spec.MatchConditions, p)
	if len(spec.Validations) == 0 && len(spec.AuditAnnotations) == 0 {
		errs = append(errs, field.Required(p.Child("validations"), "validations or auditAnnotations must contain at least one item"))
	}
	for i, v := range spec.Validations {
		vp := p.Child("validations").Index(i)
		trimmed := strings.TrimSpace(v.Expression)
		if trimmed == "" {
			errs = append(errs, field.Required(vp.Child("expression"), "expression is not specified"))
		}
		if strings.Contains(v.Message, "\n") {
			errs = append(errs, field.Invalid(vp.Child("message"), v.Message, "message must not contain line breaks"))
		} else if v.Message != "" && strings.TrimSpace(v.Message) == "" {
			errs = append(errs, field.Invalid(vp.Child("message"), v.Message, "message must be non-empty if specified"))
		}
		if v.Reason != nil && !slices.Contains(validationReasons, string(*v.Reason)) {
			errs = append(errs, field.NotSupported(vp.Child("reason"), *v.Reason, validationReasons))
		}
	}
	keys := map[string]bool{}
	for i, a := range spec.AuditAnnotations {
		ap := p.Child("auditAnnotations").Index(i)
		switch {
		case a.Key == "":
			errs = append(errs, field.Required(ap.Child("key"), ""))
		case keys[a.Key]:
			errs = append(errs, field.Duplicate(ap.Child("key"), a.Key))
		default:
			for _, msg := range validation.IsQualifiedName(pol.Name + "/" + a.Key) {
				errs = append(errs, field.Invalid(ap.Child("key"), a.Key, msg))
			}
		}
		keys[a.Key] = true
		if strings.TrimSpace(a.ValueExpression) == "" {
			errs = append(errs, field.Required(ap.Child("valueExpression"), "valueExpression is not specified"))
		}
	}
	errs = append(errs, validateVariables(spec.Variables, p.Child("variables"))...)
	if len(errs) == 0 { // compile only what is well formed
		errs = append(errs, admissioncel.ValidatePolicySpec(spec, p)...)
	}
	return errs
}

var (
	// mutatingOperations are the operations a mutating policy may match: a delete has no
	// object to mutate.
	mutatingOperations = []string{"*", "CONNECT", "CREATE", "UPDATE"}
	patchTypes         = []string{string(admissionregistrationv1.PatchTypeApplyConfiguration), string(admissionregistrationv1.PatchTypeJSONPatch)}
)

// validateMutatingPolicy is Kubernetes' ValidateMutatingAdmissionPolicy.
func validateMutatingPolicy(pol *admissionregistrationv1.MutatingAdmissionPolicy) field.ErrorList {
	spec := &pol.Spec
	p := field.NewPath("spec")
	errs := validatePolicyHead(spec.FailurePolicy, spec.ParamKind, spec.MatchConstraints, spec.MatchConditions, p)
	if spec.MatchConstraints != nil {
		errs = append(errs, validateMutatingOperations(spec.MatchConstraints, p.Child("matchConstraints"))...)
	}
	errs = append(errs, validateVariables(spec.Variables, p.Child("variables"))...)
	if len(spec.Mutations) == 0 {
		errs = append(errs, field.Required(p.Child("mutations"), "mutations must contain at least one item"))
	}
	for i, m := range spec.Mutations {
		errs = append(errs, validateMutation(&m, p.Child("mutations").Index(i))...)
	}
	if spec.ReinvocationPolicy == "" {
		errs = append(errs, field.Required(p.Child("reinvocationPolicy"), ""))
	} else if !slices.Contains(reinvocationPolicies, string(spec.ReinvocationPolicy)) {
		errs = append(errs, field.NotSupported(p.Child("reinvocationPolicy"), spec.ReinvocationPolicy, reinvocationPolicies))
	}
	if len(errs) == 0 { // compile only what is well formed
		errs = append(errs, admissioncel.ValidateMutatingPolicySpec(spec, p)...)
	}
	return errs
}

// validateMutatingOperations refuses a rule of m matching deletes: only creates and
// updates (and connects) can be mutated.
func validateMutatingOperations(m *admissionregistrationv1.MatchResources, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, r := range m.ResourceRules {
		for _, op := range r.Operations {
			if !slices.Contains(mutatingOperations, string(op)) {
				errs = append(errs, field.NotSupported(p.Child("resourceRules", "operations"), op, mutatingOperations))
			}
		}
	}
	return errs
}

// validateMutation is Kubernetes' validateMutation: the patch of the patchType given,
// with an expression, and not the other.
func validateMutation(m *admissionregistrationv1.Mutation, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	expression := func(e string, fp *field.Path) {
		if strings.TrimSpace(e) == "" {
			errs = append(errs, field.Required(fp.Child("expression"), ""))
		}
	}
	switch m.PatchType {
	case "":
		errs = append(errs, field.Required(p.Child("patchType"), ""))
	case admissionregistrationv1.PatchTypeApplyConfiguration:
		if m.ApplyConfiguration == nil {
			errs = append(errs, field.Required(p.Child("applyConfiguration"), "must be specified when patchType is ApplyConfiguration"))
		} else {
			expression(m.ApplyConfiguration.Expression, p.Child("applyConfiguration"))
		}
		if m.JSONPatch != nil {
			errs = append(errs, field.Invalid(p.Child("jsonPatch"), "{...}", "must not be specified when patchType is ApplyConfiguration"))
		}
	case admissionregistrationv1.PatchTypeJSONPatch:
		if m.JSONPatch == nil {
			errs = append(errs, field.Required(p.Child("jsonPatch"), "must be specified when patchType is JSONPatch"))
		} else {
			expression(m.JSONPatch.Expression, p.Child("jsonPatch"))
		}
		if m.ApplyConfiguration != nil {
			errs = append(errs, field.Invalid(p.Child("applyConfiguration"), "{...}", "must not be specified when patchType is JSONPatch"))
		}
	default:
		errs = append(errs, field.NotSupported(p.Child("patchType"), m.PatchType, patchTypes))
	}
	return errs
}

// isCELIdentifier: a letter or underscore, then letters, digits and underscores.
func isCELIdentifier(s string) bool {
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return s != ""
}

// validateParamKind is Kubernetes' validateParamKind.
func validateParamKind(pk *admissionregistrationv1.ParamKind, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if pk.APIVersion == "" {
		errs = append(errs, field.Required(p.Child("apiVersion"), ""))
	} else if gv, err := schema.ParseGroupVersion(pk.APIVersion); err != nil {
		errs = append(errs, field.Invalid(p.Child("apiVersion"), pk.APIVersion, err.Error()))
	} else {
		if gv.Group != "" {
			for _, msg := range validation.IsDNS1123Subdomain(gv.Group) {
				errs = append(errs, field.Invalid(p.Child("apiVersion"), gv.Group, msg))
			}
		}
		for _, msg := range validation.IsDNS1035Label(gv.Version) {
			errs = append(errs, field.Invalid(p.Child("apiVersion"), gv.Version, msg))
		}
	}
	if pk.Kind == "" {
		errs = append(errs, field.Required(p.Child("kind"), ""))
	} else if msgs := validation.IsDNS1035Label(strings.ToLower(pk.Kind)); len(msgs) > 0 {
		errs = append(errs, field.Invalid(p.Child("kind"), pk.Kind, "may have mixed case, but should otherwise match: "+strings.Join(msgs, ",")))
	}
	return errs
}

// validateMatchResources is Kubernetes' validateMatchResources: a policy's must name
// resourceRules, a binding's may leave them to the policy.
func validateMatchResources(m *admissionregistrationv1.MatchResources, requireRules bool, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if m.MatchPolicy == nil {
		errs = append(errs, field.Required(p.Child("matchPolicy"), "must specify the policy"))
	} else if !slices.Contains(matchPolicies, string(*m.MatchPolicy)) {
		errs = append(errs, field.NotSupported(p.Child("matchPolicy"), *m.MatchPolicy, matchPolicies))
	}
	if m.NamespaceSelector == nil {
		errs = append(errs, field.Required(p.Child("namespaceSelector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(m.NamespaceSelector, metav1validation.LabelSelectorValidationOptions{}, p.Child("namespaceSelector"))...)
	}
	if m.ObjectSelector == nil {
		errs = append(errs, field.Required(p.Child("objectSelector"), ""))
	} else {
		errs = append(errs, metav1validation.ValidateLabelSelector(m.ObjectSelector, metav1validation.LabelSelectorValidationOptions{}, p.Child("objectSelector"))...)
	}
	if requireRules && len(m.ResourceRules) == 0 {
		errs = append(errs, field.Required(p.Child("resourceRules"), ""))
	}
	for i := range m.ResourceRules {
		errs = append(errs, validateNamedRule(&m.ResourceRules[i], p.Child("resourceRules").Index(i))...)
	}
	for i := range m.ExcludeResourceRules {
		errs = append(errs, validateNamedRule(&m.ExcludeResourceRules[i], p.Child("excludeResourceRules").Index(i))...)
	}
	return errs
}

// validateNamedRule is Kubernetes' validateNamedRuleWithOperations: a webhook's rule and
// resource names, each a valid path segment, none twice.
func validateNamedRule(r *admissionregistrationv1.NamedRuleWithOperations, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, name := range r.ResourceNames {
		for _, msg := range path.ValidatePathSegmentName(name, false) {
			errs = append(errs, field.Invalid(p.Child("resourceNames").Index(i), name, msg))
		}
		if seen[name] {
			errs = append(errs, field.Duplicate(p.Child("resourceNames").Index(i), name))
		}
		seen[name] = true
	}
	return append(errs, validateRuleWithOperations(&r.RuleWithOperations, p)...)
}

// validateMatchConditions is Kubernetes' validateMatchConditions (the CEL compilation
// is the caller's): at most 64, each named uniquely by a qualified name, with an
// expression.
func validateMatchConditions(conds []admissionregistrationv1.MatchCondition, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(conds) > maxMatchConditions {
		errs = append(errs, field.TooMany(p, len(conds), maxMatchConditions))
	}
	names := map[string]bool{}
	for i, c := range conds {
		cp := p.Index(i)
		switch {
		case c.Name == "":
			errs = append(errs, field.Required(cp.Child("name"), ""))
		case names[c.Name]:
			errs = append(errs, field.Duplicate(cp.Child("name"), c.Name))
		default:
			for _, msg := range validation.IsQualifiedName(c.Name) {
				errs = append(errs, field.Invalid(cp.Child("name"), c.Name, msg))
			}
		}
		names[c.Name] = true
		if c.Expression == "" {
			errs = append(errs, field.Required(cp.Child("expression"), ""))
		}
	}
	return errs
}

// validateBindingHead checks what both kinds of binding have: policyName, paramRef and
// matchResources.
func validateBindingHead(policyName string, r *admissionregistrationv1.ParamRef, m *admissionregistrationv1.MatchResources, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if policyName == "" {
		errs = append(errs, field.Required(p.Child("policyName"), ""))
	} else {
		for _, msg := range apimachineryvalidation.NameIsDNSSubdomain(policyName, false) {
			errs = append(errs, field.Invalid(p.Child("policyName"), policyName, msg))
		}
	}
	if r != nil {
		rp := p.Child("paramRef")
		switch {
		case r.Name != "" && r.Selector != nil:
			errs = append(errs, field.Forbidden(rp.Child("name"), "name and selector are mutually exclusive"))
		case r.Name == "" && r.Selector == nil:
			errs = append(errs, field.Required(rp, "one of name or selector must be specified"))
		case r.Name != "":
			for _, msg := range path.ValidatePathSegmentName(r.Name, false) {
				errs = append(errs, field.Invalid(rp.Child("name"), r.Name, msg))
			}
		default:
			errs = append(errs, metav1validation.ValidateLabelSelector(r.Selector, metav1validation.LabelSelectorValidationOptions{}, rp.Child("selector"))...)
		}
		if r.Namespace != "" {
			for _, msg := range validation.IsDNS1123Label(r.Namespace) {
				errs = append(errs, field.Invalid(rp.Child("namespace"), r.Namespace, msg))
			}
		}
		if r.ParameterNotFoundAction == nil {
			errs = append(errs, field.Required(rp.Child("parameterNotFoundAction"), ""))
		} else if !slices.Contains(parameterNotFoundActions, string(*r.ParameterNotFoundAction)) {
			errs = append(errs, field.NotSupported(rp.Child("parameterNotFoundAction"), *r.ParameterNotFoundAction, parameterNotFoundActions))
		}
	}
	if m != nil {
		errs = append(errs, validateMatchResources(m, false, p.Child("matchResources"))...)
	}
	return errs
}

// validatePolicyBinding is Kubernetes' ValidateValidatingAdmissionPolicyBinding.
func validatePolicyBinding(b *admissionregistrationv1.ValidatingAdmissionPolicyBinding) field.ErrorList {
	spec := &b.Spec
	p := field.NewPath("spec")
	errs := validateBindingHead(spec.PolicyName, spec.ParamRef, spec.MatchResources, p)
	ap := p.Child("validationActions")
	if len(spec.ValidationActions) == 0 {
		errs = append(errs, field.Required(ap, ""))
	}
	seen := map[admissionregistrationv1.ValidationAction]bool{}
	for i, a := range spec.ValidationActions {
		switch {
		case !slices.Contains(validationActions, string(a)):
			errs = append(errs, field.NotSupported(ap.Index(i), a, validationActions))
		case seen[a]:
			errs = append(errs, field.Duplicate(ap.Index(i), a))
		}
		seen[a] = true
	}
	if seen[admissionregistrationv1.Deny] && seen[admissionregistrationv1.Warn] {
		errs = append(errs, field.Invalid(ap, spec.ValidationActions,
			"must not contain both Deny and Warn (repeating the same validation failure information in the API response and headers serves no purpose)"))
	}
	return errs
}

// validateMutatingPolicyBinding is Kubernetes' ValidateMutatingAdmissionPolicyBinding.
func validateMutatingPolicyBinding(b *admissionregistrationv1.MutatingAdmissionPolicyBinding) field.ErrorList {
	p := field.NewPath("spec")
	errs := validateBindingHead(b.Spec.PolicyName, b.Spec.ParamRef, b.Spec.MatchResources, p)
	if b.Spec.MatchResources != nil {
		errs = append(errs, validateMutatingOperations(b.Spec.MatchResources, p.Child("matchResources"))...)
	}
	return errs
}

// validateWebhookMatchConditions checks a webhook's matchConditions and compiles them.
func validateWebhookMatchConditions(conds []admissionregistrationv1.MatchCondition, p *field.Path) field.ErrorList {
	errs := validateMatchConditions(conds, p)
	if len(errs) == 0 {
		errs = admissioncel.ValidateMatchConditions(conds, p)
	}
	return errs
}
