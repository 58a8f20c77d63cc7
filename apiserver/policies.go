package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"sync"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/skiffhq/skiff/apiserver/admissioncel"
	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// ValidatingAdmissionPolicies, as kube-apiserver's ValidatingAdmissionPolicy admission
// plugin evaluates them (MutatingAdmissionPolicies, which share their matching, binding
// and params, are mutatingpolicies.go's): after the mutating webhooks and the built-in validation, before
// the validating webhooks, every policy whose matchConstraints match a write is
// evaluated once for each of its bindings whose matchResources match too, with each
// param the binding's paramRef selects; a failed validation refuses the write (Deny),
// becomes a Warning header (Warn) or is logged (Audit, Skiff having no audit log). The
// expressions are Kubernetes' own CEL (admissioncel). Policies and bindings are read
// from this node's state only when one of them has changed (as the webhooks'
// configurations are), and compiled then. The admissionregistration kinds themselves
// are exempt (webhookExempt), so that a policy cannot lock itself in.

// policies holds the policies of both kinds and their bindings, compiled.
type policies struct {
	log        hclog.Logger
	validating *policyCache[*boundPolicy]
	mutating   *policyCache[*boundMutatingPolicy]
}

// policyHead is what a policy of either kind is matched and bound by.
type policyHead struct {
	name          string
	paramKind     *admissionregistrationv1.ParamKind
	failurePolicy admissionregistrationv1.FailurePolicyType
	match         *resourceMatch
	bindings      []*policyBinding // in name order
}

func newPolicyHead(name string, pk *admissionregistrationv1.ParamKind, fp *admissionregistrationv1.FailurePolicyType,
	mc *admissionregistrationv1.MatchResources, bindings []*policyBinding) policyHead {
	h := policyHead{name: name, paramKind: pk, failurePolicy: admissionregistrationv1.Fail, match: newResourceMatch(mc), bindings: bindings}
	if fp != nil {
		h.failurePolicy = *fp
	}
	if h.match == nil {
		h.match = &resourceMatch{err: errors.New("spec.matchConstraints is required")}
	}
	return h
}

// boundPolicy is a ValidatingAdmissionPolicy, compiled, and its bindings.
type boundPolicy struct {
	policyHead
	eval *admissioncel.Policy
}

// policyBinding is a binding of either kind.
type policyBinding struct {
	name     string
	paramRef *admissionregistrationv1.ParamRef
	match    *resourceMatch // nil: what the policy matches
	// actions are a ValidatingAdmissionPolicyBinding's validationActions.
	actions []admissionregistrationv1.ValidationAction
}

// bindingOf is a binding object as the policies use it, and the policy it binds.
func bindingOf(obj kinds.Object) (policy string, b *policyBinding) {
	switch o := obj.(type) {
	case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
		return o.Spec.PolicyName, &policyBinding{name: o.Name, paramRef: o.Spec.ParamRef, match: newResourceMatch(o.Spec.MatchResources),
			actions: o.Spec.ValidationActions}
	case *admissionregistrationv1.MutatingAdmissionPolicyBinding:
		return o.Spec.PolicyName, &policyBinding{name: o.Name, paramRef: o.Spec.ParamRef, match: newResourceMatch(o.Spec.MatchResources)}
	}
	panic(fmt.Sprintf("bindingOf: %T is not a policy binding", obj))
}

// resourceMatch is a MatchResources, its selectors parsed.
type resourceMatch struct {
	admissionregistrationv1.MatchResources
	nsSel, objSel labels.Selector
	err           error // a selector that does not parse: a configuration error
}

func newResourceMatch(m *admissionregistrationv1.MatchResources) *resourceMatch {
	if m == nil {
		return nil
	}
	rm := &resourceMatch{MatchResources: *m}
	if rm.nsSel, rm.err = selectorOf(m.NamespaceSelector); rm.err == nil {
		rm.objSel, rm.err = selectorOf(m.ObjectSelector)
	}
	return rm
}

func newPolicies(s *store.Store, log hclog.Logger) *policies {
	return &policies{log: log,
		validating: newPolicyCache(s, kinds.ValidatingAdmissionPolicy, kinds.ValidatingAdmissionPolicyBinding,
			func(obj kinds.Object, bs []*policyBinding) *boundPolicy {
				pol := obj.(*admissionregistrationv1.ValidatingAdmissionPolicy)
				return &boundPolicy{policyHead: newPolicyHead(pol.Name, pol.Spec.ParamKind, pol.Spec.FailurePolicy, pol.Spec.MatchConstraints, bs),
					eval: admissioncel.CompilePolicy(pol.Name, &pol.Spec)}
			}),
		mutating: newPolicyCache(s, kinds.MutatingAdmissionPolicy, kinds.MutatingAdmissionPolicyBinding, compileMutatingPolicy),
	}
}

// policyCache is one kind of policies with their bindings, compiled. They are read from
// this node's state, and compiled, only when one of them has changed (as the webhooks'
// configurations are).
type policyCache[T any] struct {
	store                     *store.Store
	policyKind, bindingKind   string
	policyLists, bindingLists *nsLists
	// compile makes a policy with bindings, in name order, what admission uses.
	compile func(policy kinds.Object, bindings []*policyBinding) T

	mu       sync.Mutex
	from     [2][]store.Object // the cached lists compiled is made from
	compiled []T
}

func newPolicyCache[T any](s *store.Store, policyKind, bindingKind string, compile func(kinds.Object, []*policyBinding) T) *policyCache[T] {
	return &policyCache[T]{store: s, policyKind: policyKind, bindingKind: bindingKind, policyLists: newNSLists(policyKind),
		bindingLists: newNSLists(bindingKind), compile: compile}
}

// load returns the policies that have bindings, compiled, in name order.
func (c *policyCache[T]) load(ctx context.Context) ([]T, error) {
	polInfo, bindInfo := kinds.MustLookup(c.policyKind), kinds.MustLookup(c.bindingKind)
	pols, err := c.policyLists.list(ctx, c.store, "", false)
	if err != nil {
		return nil, storeError(polInfo, "", err)
	}
	binds, err := c.bindingLists.list(ctx, c.store, "", false)
	if err != nil {
		return nil, storeError(bindInfo, "", err)
	}
	if len(pols) == 0 || len(binds) == 0 {
		return nil, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	same := func(a, b []store.Object) bool { return len(a) == len(b) && &a[0] == &b[0] }
	if c.from[0] != nil && same(c.from[0], pols) && same(c.from[1], binds) {
		return c.compiled, nil
	}
	byPolicy := map[string][]*policyBinding{}
	for i := range binds {
		obj, err := decode(bindInfo, &binds[i])
		if err != nil {
			return nil, storeError(bindInfo, binds[i].Key.Name, err)
		}
		name, b := bindingOf(obj)
		byPolicy[name] = append(byPolicy[name], b)
	}
	sorted := slices.Clone(pols)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key.Name < sorted[j].Key.Name })
	var out []T
	for i := range sorted {
		bs := byPolicy[sorted[i].Key.Name]
		if len(bs) == 0 {
			continue // a policy without a binding does nothing
		}
		obj, err := decode(polInfo, &sorted[i])
		if err != nil {
			return nil, storeError(polInfo, sorted[i].Key.Name, err)
		}
		sort.Slice(bs, func(i, j int) bool { return bs[i].name < bs[j].name })
		out = append(out, c.compile(obj, bs))
	}
	c.from, c.compiled = [2][]store.Object{pols, binds}, out
	return out, nil
}

// none reports whether no policy of either kind is bound (or they cannot be read: the
// admission that reads them says so).
func (p *policies) none(ctx context.Context) bool {
	if p == nil {
		return true
	}
	v, err := p.validating.load(ctx)
	if err != nil || len(v) > 0 {
		return false
	}
	m, err := p.mutating.load(ctx)
	return err == nil && len(m) == 0
}

// matchesRules reports whether one of rules matches op, its resourceNames included
// (Kubernetes' matchesResourceRules with matchPolicy Exact: Skiff serves each resource in
// one version, so Equivalent finds no other).
func matchesRules(rules []admissionregistrationv1.NamedRuleWithOperations, op *webhookOp) bool {
	for i := range rules {
		if matchRule(&rules[i].RuleWithOperations, op) && (len(rules[i].ResourceNames) == 0 || slices.Contains(rules[i].ResourceNames, op.name())) {
			return true
		}
	}
	return false
}

// matchResources reports whether m matches op (Kubernetes' policy matching.Matcher):
// its selectors, no excludeResourceRules, one of its resourceRules (none: everything).
func matchResources(ctx context.Context, m *resourceMatch, op *webhookOp,
	namespaceLabels func(ctx context.Context, ns string) (labels.Set, error)) (bool, error) {
	if m.err != nil {
		return false, m.err
	}
	if ok, err := selectorsMatch(ctx, m.nsSel, m.objSel, op, namespaceLabels); !ok || err != nil {
		return false, err
	}
	if matchesRules(m.ExcludeResourceRules, op) {
		return false, nil
	}
	return len(m.ResourceRules) == 0 || matchesRules(m.ResourceRules, op), nil
}

// policyInvocations calls call for each binding of h whose matchResources match op
// (when h's matchConstraints do) and each param the binding selects, in order, as
// Kubernetes' policy dispatcher does. A configuration error (a selector that does not
// parse, a param that cannot be read) goes to configError with its binding (nil: the
// policy's own); an error of call ends the invocations.
func (r *resources) policyInvocations(ctx context.Context, h *policyHead, op *webhookOp, configError func(b *policyBinding, err error),
	call func(b *policyBinding, param runtime.Object) error) error {
	ok, err := matchResources(ctx, h.match, op, r.namespaceLabels)
	if err != nil {
		configError(nil, err)
		return nil
	}
	if !ok {
		return nil
	}
	for _, pb := range h.bindings {
		if pb.match != nil {
			if ok, err := matchResources(ctx, pb.match, op, r.namespaceLabels); err != nil {
				configError(pb, err)
				continue
			} else if !ok {
				continue
			}
		}
		params, err := r.policyParams(ctx, h.paramKind, pb.paramRef, op)
		if err != nil {
			configError(pb, err)
			continue
		}
		for _, param := range params {
			if err := call(pb, param); err != nil {
				return err
			}
		}
	}
	return nil
}

// configurationError is the message of a policy's configuration error (b nil: the
// policy's own), as Kubernetes words it.
func configurationError(b *policyBinding, err error) string {
	if b != nil {
		return "failed to configure binding: " + err.Error()
	}
	return "failed to configure policy: " + err.Error()
}

// policyDenial is a refusal of a policy, through one of its bindings ("": the policy's
// own configuration failed).
type policyDenial struct {
	policy, binding string
	admissioncel.Decision
}

// admitPolicies evaluates the bound ValidatingAdmissionPolicies matching op; the first
// refusal, in the policies' and bindings' order, is the error.
func (r *resources) admitPolicies(ctx context.Context, op *webhookOp) error {
	if r.policies == nil || webhookExempt[op.info.Kind] {
		return nil
	}
	bound, err := r.policies.validating.load(ctx)
	if err != nil || len(bound) == 0 {
		return err
	}
	var denied []policyDenial
	var in *admissioncel.Input // made once a policy matches
	for _, bp := range bound {
		configError := func(b *policyBinding, err error) {
			if bp.failurePolicy == admissionregistrationv1.Ignore {
				r.policies.log.Warn("policy configuration error ignored", "policy", bp.name, "kind", op.info.Kind, "name", op.name(), "error", err)
				return
			}
			d := policyDenial{policy: bp.name, Decision: admissioncel.Decision{Message: configurationError(b, err), Error: true, Index: -1}}
			if b != nil {
				d.binding = b.name
			}
			denied = append(denied, d)
		}
		err := r.policyInvocations(ctx, &bp.policyHead, op, configError, func(pb *policyBinding, param runtime.Object) error {
			if in == nil {
				var err error
				if in, err = r.policyInput(ctx, op); err != nil {
					return err
				}
			}
			in.Params = param
			res := bp.eval.Validate(ctx, *in)
			for _, d := range res.Denied {
				for _, action := range pb.actions {
					switch action {
					case admissionregistrationv1.Deny:
						denied = append(denied, policyDenial{policy: bp.name, binding: pb.name, Decision: d})
					case admissionregistrationv1.Warn:
						addRequestWarning(ctx, fmt.Sprintf("Validation failed for ValidatingAdmissionPolicy '%s' with binding '%s': %s", bp.name, pb.name, d.Message))
					case admissionregistrationv1.Audit:
						r.policies.log.Info("validation failure", "policy", bp.name, "binding", pb.name,
							"expressionIndex", d.Index, "kind", op.info.Kind, "namespace", op.namespace(), "name", op.name(), "message", d.Message)
					}
				}
			}
			for _, a := range res.Annotations {
				r.policies.log.Info("audit annotation", "key", bp.name+"/"+a.Key, "value", a.Value, "kind", op.info.Kind,
					"namespace", op.namespace(), "name", op.name())
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	if len(denied) == 0 {
		return nil
	}
	return policyDeniedError(op, denied[0])
}

// policyDeniedError is Kubernetes' refusal of a policy: Forbidden's message ("... is
// forbidden: ValidatingAdmissionPolicy 'p' with binding 'b' denied request: ..."), with
// the validation's reason (Invalid by default, 422) and the message as its cause.
func policyDeniedError(op *webhookOp, d policyDenial) error {
	msg := fmt.Sprintf("ValidatingAdmissionPolicy '%s' denied request: %s", d.policy, d.Message)
	if d.binding != "" {
		msg = fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s", d.policy, d.binding, d.Message)
	}
	reason := d.Reason
	if reason == "" {
		reason = metav1.StatusReasonInvalid
	}
	code, status := codes.InvalidArgument, int32(http.StatusUnprocessableEntity)
	switch reason {
	case metav1.StatusReasonForbidden:
		code, status = codes.PermissionDenied, http.StatusForbidden
	case metav1.StatusReasonUnauthorized:
		code, status = codes.Unauthenticated, http.StatusUnauthorized
	case metav1.StatusReasonRequestEntityTooLarge:
		code, status = codes.ResourceExhausted, http.StatusRequestEntityTooLarge
	}
	e := statusError(code, ReasonForbidden, nil, "%s %q is forbidden: %s", resourceName(op.info), op.name(), msg).about(op.info, op.name())
	e.status.Reason, e.status.Code = reason, status
	e.status.Details.Causes = []metav1.StatusCause{{Message: msg}}
	return e
}

// policyParams are the params a binding's paramRef selects (Kubernetes' CollectParams):
// [nil] when the policy has no paramKind or the binding no paramRef; none when none is
// found and parameterNotFoundAction is Allow.
func (r *resources) policyParams(ctx context.Context, pk *admissionregistrationv1.ParamKind, ref *admissionregistrationv1.ParamRef, op *webhookOp) ([]runtime.Object, error) {
	if pk == nil || ref == nil {
		return []runtime.Object{nil}, nil
	}
	info, ok := kinds.ForGroupVersionKind(pk.APIVersion, pk.Kind)
	if !ok {
		return nil, fmt.Errorf("paramKind kind `%v` not known", pk.String())
	}
	ns := ""
	switch {
	case info.Namespaced && ref.Namespace != "":
		ns = ref.Namespace
	case info.Namespaced && op.namespace() != "" && op.info.Kind != kinds.Namespace:
		ns = op.namespace()
	case info.Namespaced:
		return nil, errors.New("cannot use namespaced paramRef in policy binding that matches cluster-scoped resources")
	case ref.Namespace != "":
		return nil, errors.New("paramRef.namespace must not be provided for a cluster-scoped `paramKind`")
	}
	var params []runtime.Object
	switch {
	case ref.Name != "":
		obj, _, err := r.get(ctx, info, store.Key{Kind: info.Kind, Namespace: ns, Name: ref.Name}, store.ReadOptions{Stale: true})
		switch {
		case err == nil:
			u, err := unstructuredOf(obj)
			if err != nil {
				return nil, err
			}
			params = append(params, u)
		case !isNotFound(err):
			return nil, err
		}
	case ref.Selector != nil:
		sel, err := metav1.LabelSelectorAsSelector(ref.Selector)
		if err != nil {
			return nil, err
		}
		objs, _, err := r.store.List(ctx, info.Kind, store.ListOptions{Namespace: ns, Stale: true})
		if err != nil {
			return nil, storeError(info, "", err)
		}
		for i := range objs {
			if !sel.Matches(labels.Set(objs[i].Labels)) {
				continue
			}
			obj, err := r.decodeStored(info, objs[i])
			if err != nil {
				return nil, err
			}
			u, err := unstructuredOf(obj)
			if err != nil {
				return nil, err
			}
			params = append(params, u)
		}
	default:
		return nil, errors.New("one of name or selector must be provided")
	}
	if len(params) == 0 && ref.ParameterNotFoundAction != nil && *ref.ParameterNotFoundAction == admissionregistrationv1.DenyAction {
		return nil, errors.New("no params found for policy binding with `Deny` parameterNotFoundAction")
	}
	return params, nil
}

// policyInput is op as the policies' CEL reads it: its attributes and the namespace
// object.
func (r *resources) policyInput(ctx context.Context, op *webhookOp) (*admissioncel.Input, error) {
	attrs, err := r.celAttributes(ctx, op)
	if err != nil {
		return nil, err
	}
	in := &admissioncel.Input{Attributes: attrs, Resource: op.info.GroupVersionResource(), Authorizer: celAuthorizer{r}}
	if ns := op.namespace(); ns != "" && op.info.Kind != kinds.Namespace {
		obj, _, err := r.get(ctx, kinds.MustLookup(kinds.Namespace), store.Key{Kind: kinds.Namespace, Name: ns}, store.ReadOptions{Stale: true})
		if err != nil && !isNotFound(err) {
			return nil, err
		}
		if err == nil {
			in.Namespace = obj.(*corev1.Namespace)
		}
	}
	return in, nil
}

// celAttributes is op as CEL reads it (object, oldObject, request): its objects as JSON.
func (r *resources) celAttributes(ctx context.Context, op *webhookOp) (*admission.VersionedAttributes, error) {
	u := requestUser(ctx)
	req := admissioncel.Request{Kind: op.info.GroupVersionKind(), Resource: op.info.GroupVersionResource(), Subresource: op.subresource,
		Namespace: op.namespace(), Name: op.name(), Operation: admission.Operation(op.operation), Options: op.options, DryRun: op.dryRun,
		User: &user.DefaultInfo{Name: u.Name, UID: u.UID, Groups: u.Groups, Extra: u.Extra}}
	if op.info.Kind == kinds.Namespace {
		req.Namespace = op.name() // Kubernetes' attributes name a namespace as its own
	}
	var err error
	if op.obj != nil {
		if req.Object, err = unstructuredOf(op.obj); err != nil {
			return nil, err
		}
	}
	if op.old != nil {
		if req.OldObject, err = unstructuredOf(op.old); err != nil {
			return nil, err
		}
	}
	return admissioncel.NewAttributes(req), nil
}

// unstructuredOf is obj as JSON, with its apiVersion and kind: what CEL reads. Its
// whole numbers are int64, as Kubernetes' unstructured objects have them (CEL's int:
// encoding/json's float64 would be a double, which has no %).
func unstructuredOf(obj kinds.Object) (*unstructured.Unstructured, error) {
	js, err := kinds.ObjectJSON(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := utiljson.Unmarshal(js, &u.Object); err != nil {
		return nil, err
	}
	return u, nil
}

// celAuthorizer answers CEL's authorizer checks (authorizer.group('apps').resource(
// 'deployments').check('create').allowed()) with the API server's authorizer, as a
// SubjectAccessReview is answered: a check a node restriction allows for some objects is
// allowed; without authentication everyone is allowed everything.
type celAuthorizer struct{ r *resources }

func (c celAuthorizer) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	az := c.r.authz
	if az == nil {
		return authorizer.DecisionAllow, "", nil
	}
	u := a.GetUser()
	attrs := auth.Attributes{Verb: a.GetVerb()}
	if u != nil {
		attrs.User = auth.User{Name: u.GetName(), UID: u.GetUID(), Groups: u.GetGroups(), Extra: u.GetExtra()}
	}
	if a.IsResourceRequest() {
		attrs.Resource, attrs.Subresource, attrs.Namespace, attrs.Name, attrs.APIGroup = a.GetResource(), a.GetSubresource(), a.GetNamespace(), a.GetName(), a.GetAPIGroup()
		if av, ok := authVerbs[attrs.Verb]; ok && av != attrs.Verb {
			attrs.Verb, attrs.RequestVerb = av, a.GetVerb() // patch, deletecollection
		}
	} else {
		attrs.Path = a.GetPath()
	}
	_, why, err := az.Decide(attrs)
	if err != nil {
		return authorizer.DecisionNoOpinion, err.Error(), nil
	}
	return authorizer.DecisionAllow, why, nil
}
