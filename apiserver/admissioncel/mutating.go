package admissioncel

import (
	"context"
	"errors"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	"k8s.io/apimachinery/pkg/util/managedfields"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/policy/mutating/patch"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/cel/environment"
)

// MutatingAdmissionPolicy: its mutations are compiled by the CEL compiler with the patch
// types (Object{...}, JSONPatch{...}) and applied by k8s.io/apiserver's own patchers
// (admission/plugin/policy/mutating/patch): an ApplyConfiguration is merged into the
// object by structured-merge-diff, as server-side apply merges, refusing a change to an
// atomic list, map or struct; a JSONPatch is applied as RFC 6902 says, a failed "test"
// leaving the object as it was. The policy plugin around them (its informers, typed
// clients and dispatcher) is not imported: the API server's chain (apiserver/
// mutatingpolicies.go) matches, binds and orders the policies.

// MutatingPolicy is a MutatingAdmissionPolicy's spec, compiled.
type MutatingPolicy struct {
	// compiler holds the variables: each invocation evaluates them afresh, in a
	// context it makes (the mutations' evaluators read them from it).
	compiler *plugincel.CompositedCompiler
	matcher  matchconditions.Matcher // nil without matchConditions
	patchers []patch.Patcher
	err      error // the composition compiler could not be made
}

// mutatingDeclarations are the variables a mutating policy's expressions may read:
// params when it has a paramKind, the authorizer, and (for the mutations) the patch
// types.
func mutatingDeclarations(spec *admissionregistrationv1.MutatingAdmissionPolicySpec, patchTypes bool) plugincel.OptionalVariableDeclarations {
	return plugincel.OptionalVariableDeclarations{HasParams: spec.ParamKind != nil, HasAuthorizer: true, HasPatchTypes: patchTypes}
}

// mutationAccessor is a mutation's expression as the compiler reads it (nil: a
// mutation without the patch its patchType names, which validation refuses).
func mutationAccessor(m *admissionregistrationv1.Mutation) plugincel.ExpressionAccessor {
	switch {
	case m.PatchType == admissionregistrationv1.PatchTypeApplyConfiguration && m.ApplyConfiguration != nil:
		return &patch.ApplyConfigurationCondition{Expression: m.ApplyConfiguration.Expression}
	case m.PatchType == admissionregistrationv1.PatchTypeJSONPatch && m.JSONPatch != nil:
		return &patch.JSONPatchCondition{Expression: m.JSONPatch.Expression}
	}
	return nil
}

// CompileMutatingPolicy compiles a MutatingAdmissionPolicy named name, as Kubernetes'
// compilePolicy does (stored expressions: a policy once accepted keeps compiling).
func CompileMutatingPolicy(name string, spec *admissionregistrationv1.MutatingAdmissionPolicySpec) *MutatingPolicy {
	p := &MutatingPolicy{}
	c, _, err := compiler(spec.Variables, mutatingDeclarations(spec, false), environment.StoredExpressions)
	if err != nil {
		p.err = err
		return p
	}
	p.compiler = c
	if len(spec.MatchConditions) > 0 {
		p.matcher = matchconditions.NewMatcher(c.CompileCondition(matchConditions(spec.MatchConditions), mutatingDeclarations(spec, false),
			environment.StoredExpressions), spec.FailurePolicy, "policy", "validate", name)
	}
	for i := range spec.Mutations {
		acc := mutationAccessor(&spec.Mutations[i])
		if acc == nil {
			continue
		}
		eval := c.CompileMutatingEvaluator(acc, mutatingDeclarations(spec, true), environment.StoredExpressions)
		if _, ok := acc.(*patch.JSONPatchCondition); ok {
			p.patchers = append(p.patchers, patch.NewJSONPatcher(eval))
		} else {
			p.patchers = append(p.patchers, patch.NewApplyConfigurationPatcher(eval))
		}
	}
	return p
}

// MutationInput is what a mutating policy is applied to: an Input, whose Attributes'
// versioned object (JSON-shaped) each mutation replaces, and what the patchers need to
// read and write that object.
type MutationInput struct {
	Input
	// TypeConverter types the object for an ApplyConfiguration's merge.
	TypeConverter managedfields.TypeConverter
	// Objects encode and decode the object for a JSONPatch.
	Objects admission.ObjectInterfaces
}

// Mutate applies p's mutations, in order, to in's object, as Kubernetes' dispatcher
// does: when its matchConditions hold, each mutation's patch replaces the object in
// in.Attributes (a mutation sees the previous one's result). It reports whether the
// conditions matched; an error is the policy's failure (a condition or an expression
// that could not be evaluated, a patch that could not be applied), which the caller
// turns into a refusal or ignores as the policy's failurePolicy says.
func (p *MutatingPolicy) Mutate(ctx context.Context, in MutationInput) (bool, error) {
	if p.err != nil {
		return false, p.err
	}
	ctx = p.compiler.CreateContext(ctx)
	if p.matcher != nil {
		m := p.matcher.Match(ctx, in.Attributes, in.Params, in.Authorizer)
		if m.Error != nil {
			return false, m.Error
		}
		if !m.Matches {
			return false, nil
		}
	}
	req := patch.Request{MatchedResource: in.Resource, VersionedAttributes: in.Attributes, ObjectInterfaces: in.Objects,
		OptionalVariables: plugincel.OptionalVariableBindings{VersionedParams: in.Params, Authorizer: in.Authorizer},
		Namespace:         in.Namespace, TypeConverter: in.TypeConverter}
	var errs []error
	for _, pt := range p.patchers {
		if in.Attributes.VersionedObject.Object() == nil {
			break // a delete: nothing to mutate
		}
		next, err := pt.Patch(ctx, req, celconfig.RuntimeCELCostBudget)
		if err != nil {
			errs = append(errs, err)
			continue // Kubernetes goes on with the next mutation
		}
		in.Attributes.UpdateObject(next)
	}
	return true, errors.Join(errs...)
}

// ValidateMutatingPolicySpec compiles spec's expressions as a write of it is validated
// (the CEL part of Kubernetes' validateMutatingAdmissionPolicySpec): each one that does
// not compile, or whose type is not the one its field needs, is an error at its field
// path (spec.variables[i].expression, spec.matchConditions[i].expression,
// spec.mutations[i].applyConfiguration.expression or .jsonPatch.expression).
func ValidateMutatingPolicySpec(spec *admissionregistrationv1.MutatingAdmissionPolicySpec, p *field.Path) field.ErrorList {
	c, errs := validationCompiler(spec.Variables, mutatingDeclarations(spec, false), p)
	if c == nil {
		return field.ErrorList(*errs)
	}
	for i := range spec.MatchConditions {
		mc := (*matchconditions.MatchCondition)(&spec.MatchConditions[i])
		errs.check(c.CompileCELExpression(mc, mutatingDeclarations(spec, false), environment.NewExpressions),
			p.Child("matchConditions").Index(i).Child("expression"), mc.Expression)
	}
	for i := range spec.Mutations {
		acc := mutationAccessor(&spec.Mutations[i])
		if acc == nil {
			continue
		}
		fp := p.Child("mutations").Index(i).Child("applyConfiguration", "expression")
		if _, ok := acc.(*patch.JSONPatchCondition); ok {
			fp = p.Child("mutations").Index(i).Child("jsonPatch", "expression")
		}
		errs.check(c.CompileCELExpression(acc, mutatingDeclarations(spec, true), environment.NewExpressions), fp, acc.GetExpression())
	}
	return field.ErrorList(*errs)
}
