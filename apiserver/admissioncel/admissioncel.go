// Package admissioncel compiles and evaluates the CEL expressions of Kubernetes'
// admission: a ValidatingAdmissionPolicy's variables, validations, messageExpressions,
// auditAnnotations and matchConditions, and an admission webhook's matchConditions. It
// is a thin layer over k8s.io/apiserver's CEL libraries (pkg/admission/plugin/cel, the
// same environments, variables, cost budgets and library functions as kube-apiserver),
// so that an expression means in Skiff what it means in Kubernetes; what it adds is
// Kubernetes' turning of evaluations into decisions (its policy/validating validator),
// without the generic admission plugin, its informers and its typed clients, which the
// API server's own chain replaces. Validation (apiserver/validation) compiles with the
// same compiler, so that a policy that does not compile is refused when written.
//
// Objects come as JSON-shaped *unstructured.Unstructured (Attributes), as CEL sees them.
package admissioncel

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	celgo "github.com/google/cel-go/cel"
	celtypes "github.com/google/cel-go/common/types"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
	plugincel "k8s.io/apiserver/pkg/admission/plugin/cel"
	"k8s.io/apiserver/pkg/admission/plugin/webhook/matchconditions"
	celconfig "k8s.io/apiserver/pkg/apis/cel"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	apiservercel "k8s.io/apiserver/pkg/cel"
	"k8s.io/apiserver/pkg/cel/environment"
)

var (
	envOnce sync.Once
	baseEnv *environment.EnvSet
)

// envSet is kube-apiserver's base CEL environment at this release's compatibility
// version, with its strict cost.
func envSet() *environment.EnvSet {
	envOnce.Do(func() { baseEnv = environment.MustBaseEnvSet(environment.DefaultCompatibilityVersion()) })
	return baseEnv
}

// Request is a write as admission names it, for NewAttributes.
type Request struct {
	// Kind and Resource are the request's; VersionedKind is the object's, when it is
	// presented in another version of the resource (matchPolicy Equivalent; empty: Kind).
	Kind          schema.GroupVersionKind
	VersionedKind schema.GroupVersionKind
	Resource      schema.GroupVersionResource
	Subresource   string
	Namespace     string
	Name          string
	Operation     admission.Operation
	// Object is the object written (nil for a delete), OldObject the stored one (nil for
	// a create); Options the request's CreateOptions, UpdateOptions or DeleteOptions.
	Object, OldObject runtime.Object
	Options           runtime.Object
	DryRun            bool
	User              user.Info
}

// NewAttributes is req as CEL's inputs read it (object, oldObject, request).
func NewAttributes(req Request) *admission.VersionedAttributes {
	a := admission.NewAttributesRecord(req.Object, req.OldObject, req.Kind, req.Namespace, req.Name, req.Resource,
		req.Subresource, req.Operation, req.Options, req.DryRun, req.User)
	va := &admission.VersionedAttributes{Attributes: a, VersionedKind: req.Kind}
	if !req.VersionedKind.Empty() {
		va.VersionedKind = req.VersionedKind
	}
	if req.Object != nil {
		va.VersionedObject.Set(req.Object)
	}
	if req.OldObject != nil {
		va.VersionedOldObject.Set(req.OldObject)
	}
	return va
}

// The expressions of a policy, as the CEL compiler reads them (Kubernetes'
// ValidationCondition, AuditAnnotationCondition, Variable and the messageExpression's).
type validationCondition struct {
	admissionregistrationv1.Validation
	index int
}

func (v *validationCondition) GetExpression() string      { return v.Expression }
func (v *validationCondition) ReturnTypes() []*celgo.Type { return []*celgo.Type{celgo.BoolType} }

type messageCondition struct{ expression string }

func (m *messageCondition) GetExpression() string      { return m.expression }
func (m *messageCondition) ReturnTypes() []*celgo.Type { return []*celgo.Type{celgo.StringType} }

type auditAnnotationCondition struct {
	admissionregistrationv1.AuditAnnotation
}

func (a *auditAnnotationCondition) GetExpression() string { return a.ValueExpression }
func (a *auditAnnotationCondition) ReturnTypes() []*celgo.Type {
	return []*celgo.Type{celgo.StringType, celgo.NullType}
}

type variable struct {
	admissionregistrationv1.Variable
}

func (v *variable) GetExpression() string      { return v.Expression }
func (v *variable) GetName() string            { return v.Name }
func (v *variable) ReturnTypes() []*celgo.Type { return []*celgo.Type{celgo.AnyType, celgo.DynType} }

// Policy is a ValidatingAdmissionPolicy's spec, compiled.
type Policy struct {
	name          string
	failurePolicy admissionregistrationv1.FailurePolicyType
	matcher       matchconditions.Matcher // nil without matchConditions
	validations   plugincel.ConditionEvaluator
	messages      plugincel.ConditionEvaluator
	audits        plugincel.ConditionEvaluator
	err           error // the composition compiler could not be made
}

// compiler is a compiler of a policy's expressions, its variables (which read what
// decls declares) stored in it, and the variables' compilation results.
func compiler(variables []admissionregistrationv1.Variable, decls plugincel.OptionalVariableDeclarations, mode environment.Type) (*plugincel.CompositedCompiler, []plugincel.CompilationResult, error) {
	c, err := plugincel.NewCompositedCompiler(envSet())
	if err != nil {
		return nil, nil, err
	}
	vars := make([]plugincel.CompilationResult, len(variables))
	for i := range variables {
		vars[i] = c.CompileAndStoreVariable(&variable{variables[i]}, decls, mode)
	}
	return c, vars, nil
}

// compileErrors are the errors of a policy's expressions that do not compile, at their
// field paths.
type compileErrors field.ErrorList

func (e *compileErrors) check(r plugincel.CompilationResult, fp *field.Path, value string) {
	if r.Error != nil {
		*e = append(*e, field.Invalid(fp, value, r.Error.Error()))
	}
}

// validationCompiler is a compiler of a policy's expressions as a write of it is
// validated (new expressions), with its variables compiled, and the variables' errors
// (at p's variables[i].expression).
func validationCompiler(variables []admissionregistrationv1.Variable, decls plugincel.OptionalVariableDeclarations, p *field.Path) (*plugincel.CompositedCompiler, *compileErrors) {
	c, vars, err := compiler(variables, decls, environment.NewExpressions)
	if err != nil {
		return nil, &compileErrors{field.InternalError(p, err)}
	}
	errs := &compileErrors{}
	for i, r := range vars {
		errs.check(r, p.Child("variables").Index(i).Child("expression"), variables[i].Expression)
	}
	return c, errs
}

// declarations are the variables a policy's expressions may read: params when it has a
// paramKind; authorizer, except in messageExpressions (Kubernetes' choice).
func declarations(spec *admissionregistrationv1.ValidatingAdmissionPolicySpec, authorizer bool) plugincel.OptionalVariableDeclarations {
	return plugincel.OptionalVariableDeclarations{HasParams: spec.ParamKind != nil, HasAuthorizer: authorizer}
}

// CompilePolicy compiles a ValidatingAdmissionPolicy named name, as Kubernetes'
// compilePolicy does (stored expressions: a policy once accepted keeps compiling).
func CompilePolicy(name string, spec *admissionregistrationv1.ValidatingAdmissionPolicySpec) *Policy {
	p := &Policy{name: name, failurePolicy: admissionregistrationv1.Fail}
	if spec.FailurePolicy != nil {
		p.failurePolicy = *spec.FailurePolicy
	}
	c, _, err := compiler(spec.Variables, declarations(spec, true), environment.StoredExpressions)
	if err != nil {
		p.err = err
		return p
	}
	all, noAuthz := declarations(spec, true), declarations(spec, false)
	if len(spec.MatchConditions) > 0 {
		p.matcher = matchconditions.NewMatcher(c.CompileCondition(matchConditions(spec.MatchConditions), all, environment.StoredExpressions),
			&p.failurePolicy, "policy", "validate", name)
	}
	validations := make([]plugincel.ExpressionAccessor, len(spec.Validations))
	messages := make([]plugincel.ExpressionAccessor, len(spec.Validations))
	for i := range spec.Validations {
		validations[i] = &validationCondition{Validation: spec.Validations[i], index: i}
		if spec.Validations[i].MessageExpression != "" { // a nil accessor is a placeholder, not compiled
			messages[i] = &messageCondition{expression: spec.Validations[i].MessageExpression}
		}
	}
	audits := make([]plugincel.ExpressionAccessor, len(spec.AuditAnnotations))
	for i := range spec.AuditAnnotations {
		audits[i] = &auditAnnotationCondition{spec.AuditAnnotations[i]}
	}
	p.validations = c.CompileCondition(validations, all, environment.StoredExpressions)
	p.messages = c.CompileCondition(messages, noAuthz, environment.StoredExpressions)
	p.audits = c.CompileCondition(audits, noAuthz, environment.StoredExpressions)
	return p
}

func matchConditions(conds []admissionregistrationv1.MatchCondition) []plugincel.ExpressionAccessor {
	out := make([]plugincel.ExpressionAccessor, len(conds))
	for i := range conds {
		out[i] = (*matchconditions.MatchCondition)(&conds[i])
	}
	return out
}

// Decision is a validation's outcome that is not an admission: a refusal (Error says
// the expression could not be evaluated and the failurePolicy is Fail).
type Decision struct {
	Message string
	Reason  metav1.StatusReason
	Error   bool
	// Index is the validation's, for Audit (-1 for a failure of the whole policy).
	Index int
}

// AuditAnnotation is an auditAnnotation's value, published as POLICY/KEY.
type AuditAnnotation struct{ Key, Value string }

// Result is a policy's evaluation for one binding and param: what it refuses, and its
// audit annotations.
type Result struct {
	Denied      []Decision
	Annotations []AuditAnnotation
}

// Input is what a policy is evaluated on.
type Input struct {
	Attributes *admission.VersionedAttributes
	// Resource is the resource the policy matched (request.resource).
	Resource schema.GroupVersionResource
	// Params is the binding's param (nil without one); Namespace the object's namespace
	// (nil for a cluster-scoped object), as namespaceObject reads it.
	Params    runtime.Object
	Namespace *corev1.Namespace
	// Authorizer answers the authorizer variable's checks (nil: they fail to evaluate).
	Authorizer authorizer.UnconditionalAuthorizer
}

// Validate evaluates p on in, as Kubernetes' validator does: its matchConditions, then
// each validation (a false one refuses with its messageExpression's message, its
// message, or the expression), then the audit annotations. An expression that fails
// (compilation, evaluation, cost) refuses under failurePolicy Fail, is ignored under
// Ignore.
func (p *Policy) Validate(ctx context.Context, in Input) Result {
	fail := func(msg string) Result {
		if p.failurePolicy == admissionregistrationv1.Ignore {
			return Result{}
		}
		return Result{Denied: []Decision{{Message: msg, Error: true, Index: -1}}}
	}
	if p.err != nil {
		return fail(p.err.Error())
	}
	if p.matcher != nil {
		m := p.matcher.Match(ctx, in.Attributes, in.Params, in.Authorizer)
		if m.Error != nil {
			return fail(m.Error.Error())
		}
		if !m.Matches {
			return Result{}
		}
	}
	vars := plugincel.OptionalVariableBindings{VersionedParams: in.Params, Authorizer: in.Authorizer}
	req := plugincel.CreateAdmissionRequest(in.Attributes.Attributes, metav1.GroupVersionResource(in.Resource), metav1.GroupVersionKind(in.Attributes.VersionedKind))
	ns := plugincel.CreateNamespaceObject(in.Namespace)
	results, remaining, err := p.validations.ForInput(ctx, in.Attributes, req, vars, ns, celconfig.RuntimeCELCostBudget)
	if err != nil {
		return fail(err.Error())
	}
	messages, _, msgErr := p.messages.ForInput(ctx, in.Attributes, req, plugincel.OptionalVariableBindings{VersionedParams: in.Params}, ns, remaining)
	var out Result
	for i, r := range results {
		v, ok := r.ExpressionAccessor.(*validationCondition)
		if !ok {
			continue
		}
		switch {
		case r.Error != nil:
			if p.failurePolicy != admissionregistrationv1.Ignore {
				out.Denied = append(out.Denied, Decision{Message: r.Error.Error(), Error: true, Index: v.index})
			}
		case errors.Is(msgErr, apiservercel.ErrInternal) || errors.Is(msgErr, apiservercel.ErrOutOfBudget):
			if p.failurePolicy != admissionregistrationv1.Ignore {
				out.Denied = append(out.Denied, Decision{Message: fmt.Sprintf("failed messageExpression: %s", msgErr), Error: true, Index: v.index})
			}
		case r.EvalResult != celtypes.True:
			d := Decision{Reason: metav1.StatusReasonInvalid, Index: v.index}
			if v.Reason != nil {
				d.Reason = *v.Reason
			}
			if i < len(messages) && messages[i].Error == nil && messages[i].EvalResult != nil {
				if s, ok := messages[i].EvalResult.Value().(string); ok {
					s = strings.TrimSpace(s)
					if len(s) <= celconfig.MaxEvaluatedMessageExpressionSizeBytes && !strings.Contains(s, "\n") {
						d.Message = s
					}
				}
			}
			if d.Message == "" {
				d.Message = strings.TrimSpace(v.Message)
			}
			if d.Message == "" {
				d.Message = "failed expression: " + strings.TrimSpace(v.Expression)
			}
			out.Denied = append(out.Denied, d)
		}
	}
	audits, _, err := p.audits.ForInput(ctx, in.Attributes, req, plugincel.OptionalVariableBindings{VersionedParams: in.Params}, ns, celconfig.RuntimeCELCostBudget)
	if err != nil {
		return fail(err.Error())
	}
	for _, r := range audits {
		a, ok := r.ExpressionAccessor.(*auditAnnotationCondition)
		if !ok {
			continue
		}
		if r.Error != nil {
			if p.failurePolicy != admissionregistrationv1.Ignore {
				out.Denied = append(out.Denied, Decision{Message: r.Error.Error(), Error: true, Index: -1})
			}
			continue
		}
		switch r.EvalResult.Type() {
		case celtypes.StringType:
			if v := strings.TrimSpace(r.EvalResult.Value().(string)); v != "" {
				out.Annotations = append(out.Annotations, AuditAnnotation{Key: a.Key, Value: v})
			}
		case celtypes.NullType:
		default:
			if p.failurePolicy != admissionregistrationv1.Ignore {
				out.Denied = append(out.Denied, Decision{Error: true, Index: -1, Message: fmt.Sprintf("valueExpression '%v' resulted in unsupported return type: %v. "+
					"Return type must be either string or null.", a.ValueExpression, r.EvalResult.Type())})
			}
		}
	}
	return out
}

// Matcher is a webhook's matchConditions, compiled.
type Matcher struct{ m matchconditions.Matcher }

// CompileMatchConditions compiles the matchConditions of webhook name (mutating says
// which kind of webhook), as Kubernetes' webhook accessor does.
func CompileMatchConditions(name string, mutating bool, conds []admissionregistrationv1.MatchCondition, failurePolicy *admissionregistrationv1.FailurePolicyType) *Matcher {
	if len(conds) == 0 {
		return nil
	}
	c := plugincel.NewConditionCompiler(envSet())
	typ := "validating"
	if mutating {
		typ = "admit"
	}
	eval := c.CompileCondition(matchConditions(conds), plugincel.OptionalVariableDeclarations{HasAuthorizer: true}, environment.StoredExpressions)
	return &Matcher{matchconditions.NewMatcher(eval, failurePolicy, "webhook", typ, name)}
}

// Match evaluates the conditions on attrs (authz answers the authorizer variable's
// checks): whether they all hold, and the error of one that could not be evaluated
// under failurePolicy Fail (Ignore: no match).
func (m *Matcher) Match(ctx context.Context, attrs *admission.VersionedAttributes, authz authorizer.UnconditionalAuthorizer) (bool, error) {
	r := m.m.Match(ctx, attrs, nil, authz)
	return r.Matches && r.Error == nil, r.Error
}

// ValidatePolicySpec compiles spec's expressions as a write of it is validated
// (Kubernetes' validateValidatingAdmissionPolicySpec's CEL part): each one that does not
// compile, or whose type is not the one its field needs, is an error at its field path
// (spec.variables[i].expression, spec.validations[i].expression and
// .messageExpression, spec.auditAnnotations[i].valueExpression,
// spec.matchConditions[i].expression).
func ValidatePolicySpec(spec *admissionregistrationv1.ValidatingAdmissionPolicySpec, p *field.Path) field.ErrorList {
	all, noAuthz := declarations(spec, true), declarations(spec, false)
	c, errs := validationCompiler(spec.Variables, all, p)
	if c == nil {
		return field.ErrorList(*errs)
	}
	for i, v := range spec.Validations {
		vp := p.Child("validations").Index(i)
		errs.check(c.CompileCELExpression(&validationCondition{Validation: v}, all, environment.NewExpressions), vp.Child("expression"), v.Expression)
		if v.MessageExpression != "" {
			errs.check(c.CompileCELExpression(&messageCondition{v.MessageExpression}, noAuthz, environment.NewExpressions), vp.Child("messageExpression"), v.MessageExpression)
		}
	}
	for i, a := range spec.AuditAnnotations {
		errs.check(c.CompileCELExpression(&auditAnnotationCondition{a}, noAuthz, environment.NewExpressions),
			p.Child("auditAnnotations").Index(i).Child("valueExpression"), a.ValueExpression)
	}
	for i := range spec.MatchConditions {
		mc := (*matchconditions.MatchCondition)(&spec.MatchConditions[i])
		errs.check(c.CompileCELExpression(mc, all, environment.NewExpressions), p.Child("matchConditions").Index(i).Child("expression"), mc.Expression)
	}
	return field.ErrorList(*errs)
}

// ValidateMatchConditions compiles a webhook's matchConditions as a write of its
// configuration is validated; p is the webhook's matchConditions path.
func ValidateMatchConditions(conds []admissionregistrationv1.MatchCondition, p *field.Path) field.ErrorList {
	c := plugincel.NewCompiler(envSet())
	var errs field.ErrorList
	for i := range conds {
		mc := (*matchconditions.MatchCondition)(&conds[i])
		if r := c.CompileCELExpression(mc, plugincel.OptionalVariableDeclarations{HasAuthorizer: true}, environment.NewExpressions); r.Error != nil {
			errs = append(errs, field.Invalid(p.Index(i).Child("expression"), mc.Expression, r.Error.Error()))
		}
	}
	return errs
}
