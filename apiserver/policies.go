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
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/skiffhq/skiff/apiserver/admissioncel"
	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/apiserver/validation"
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
// (Kubernetes' matchesResourceRules of one version; matchResources tries the others).
func matchesRules(rules []admissionregistrationv1.NamedRuleWithOperations, op *webhookOp) bool {
	for i := range rules {
		if matchRule(&rules[i].RuleWithOperations, op) && (len(rules[i].ResourceNames) == 0 || slices.Contains(rules[i].ResourceNames, op.name())) {
			return true
		}
	}
	return false
}

// matchResources reports whether m matches op (Kubernetes' policy matching.Matcher), and
// the version of op's resource it matched in (matchView, by m's matchPolicy): its
// selectors, no excludeResourceRules, one of its resourceRules (none: everything, in the
// request's version).
func matchResources(ctx context.Context, m *resourceMatch, op *webhookOp,
	namespaceLabels func(ctx context.Context, ns string) (labels.Set, error)) (*kinds.Info, bool, error) {
	if m.err != nil {
		return nil, false, m.err
	}
	if ok, err := selectorsMatch(ctx, m.nsSel, m.objSel, op, namespaceLabels); !ok || err != nil {
		return nil, false, err
	}
	if matchView(m.MatchPolicy, op, func(as *webhookOp) bool { return matchesRules(m.ExcludeResourceRules, as) }) != nil {
		return nil, false, nil
	}
	if len(m.ResourceRules) == 0 {
		return op.requestedInfo(), true, nil
	}
	view := matchView(m.MatchPolicy, op, func(as *webhookOp) bool { return matchesRules(m.ResourceRules, as) })
	return view, view != nil, nil
}

// policyInvocations calls call for each binding of h whose matchResources match op
// (when h's matchConstraints do) and each param the binding selects, in order, as
// Kubernetes' policy dispatcher does, with op presented in the version h's
// matchConstraints matched it in. A configuration error (a selector that does not
// parse, a param that cannot be read) goes to configError with its binding (nil: the
// policy's own); an error of call ends the invocations.
func (r *resources) policyInvocations(ctx context.Context, h *policyHead, op *webhookOp, configError func(b *policyBinding, err error),
	call func(b *policyBinding, param runtime.Object, vop *webhookOp) error) error {
	view, ok, err := matchResources(ctx, h.match, op, r.namespaceLabels)
	if err != nil {
		configError(nil, err)
		return nil
	}
	if !ok {
		return nil
	}
	var vop *webhookOp // presented once a binding matches
	for _, pb := range h.bindings {
		if pb.match != nil {
			if _, ok, err := matchResources(ctx, pb.match, op, r.namespaceLabels); err != nil {
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
			if vop == nil {
				if vop, err = op.presented(view); err != nil {
					return err
				}
			}
			if err := call(pb, param, vop); err != nil {
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
	var in *admissioncel.Input // made once a policy matches, for inView
	var inView *kinds.Info
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
		err := r.policyInvocations(ctx, &bp.policyHead, op, configError, func(pb *policyBinding, param runtime.Object, vop *webhookOp) error {
			if in == nil || inView != vop.info {
				var err error
				if in, err = r.policyInput(ctx, vop); err != nil {
					return err
				}
				inView = vop.info
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
	// The request's kind and resource; the object's version, when a policy or webhook
	// matched it in another (matchPolicy Equivalent), is VersionedKind.
	kind, resource := op.kind(), op.info.GroupVersionResource()
	if requested := op.requestedInfo(); op.subKind.Empty() && requested != op.info {
		kind, resource = requested.GroupVersionKind(), requested.GroupVersionResource()
	}
	req := admissioncel.Request{Kind: kind, VersionedKind: op.kind(), Resource: resource, Subresource: op.subresource,
		Namespace: op.namespace(), Name: op.name(), Operation: admission.Operation(op.operation), Options: op.options, DryRun: op.dryRun,
		User: &user.DefaultInfo{Name: u.Name, UID: u.UID, Groups: u.Groups, Extra: u.Extra}}
	if op.info.Kind == kinds.Namespace {
		req.Namespace = op.name() // Kubernetes' attributes name a namespace as its own
	}
	var err error
	if op.obj != nil {
		if req.Object, err = op.unstructured(op.obj); err != nil {
			return nil, err
		}
	}
	if op.old != nil {
		if req.OldObject, err = op.unstructured(op.old); err != nil {
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

// admitPolicyBinding is Kubernetes' check of a policy binding's paramRef (its registry
// strategies' authorize, of either kind's binding; old nil on create): its writer must be
// allowed to read what the paramRef names — get the named param, or list them for a
// selector — of the resource of the policy's paramKind (every group, version and resource
// when the policy or its paramKind cannot be found). An update that keeps the paramRef
// and the policy is not checked again; administrators (system:masters, skiff:admin) are
// not checked. A refusal is Invalid at spec.paramRef, Forbidden.
func (r *resources) admitPolicyBinding(ctx context.Context, info *kinds.Info, old, obj kinds.Object) error {
	var policyInfo *kinds.Info
	var policyName string
	var ref, oldRef *admissionregistrationv1.ParamRef
	oldPolicy := ""
	switch o := obj.(type) {
	case *admissionregistrationv1.ValidatingAdmissionPolicyBinding:
		policyInfo, policyName, ref = kinds.MustLookup(kinds.ValidatingAdmissionPolicy), o.Spec.PolicyName, o.Spec.ParamRef
		if b, ok := old.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding); ok {
			oldRef, oldPolicy = b.Spec.ParamRef, b.Spec.PolicyName
		}
	case *admissionregistrationv1.MutatingAdmissionPolicyBinding:
		policyInfo, policyName, ref = kinds.MustLookup(kinds.MutatingAdmissionPolicy), o.Spec.PolicyName, o.Spec.ParamRef
		if b, ok := old.(*admissionregistrationv1.MutatingAdmissionPolicyBinding); ok {
			oldRef, oldPolicy = b.Spec.ParamRef, b.Spec.PolicyName
		}
	default:
		return nil
	}
	u := requestUser(ctx)
	switch {
	case ref == nil || r.authz == nil || auth.IsAdmin(u):
		return nil
	case oldRef != nil && equality.Semantic.DeepEqual(oldRef, ref) && oldPolicy == policyName:
		return nil // identical paramRef and policy to the old object
	}
	// Every group and resource, unless the policy's paramKind says which (RBAC's rules
	// name no versions).
	group, resource := "*", "*"
	var why string
	pol, _, err := r.get(ctx, policyInfo, store.Key{Kind: policyInfo.Kind, Name: policyName}, store.ReadOptions{Stale: true})
	var pk *admissionregistrationv1.ParamKind
	if err == nil {
		pk = policyParamKind(pol)
	} else {
		why = fmt.Sprintf("unable to get policy %s to determine minimum required permissions", policyName)
	}
	if pk != nil {
		if gv, err := schema.ParseGroupVersion(pk.APIVersion); err != nil {
			why = fmt.Sprintf("unable to parse paramKind %v to determine minimum required permissions", pk)
		} else {
			group = gv.Group
			if in, ok := kinds.ForGroupVersionKind(pk.APIVersion, pk.Kind); ok {
				resource = in.Plural
			} else {
				why = fmt.Sprintf("unable to resolve paramKind %v to determine minimum required permissions", pk)
			}
		}
	}
	verb := auth.Get
	if ref.Name == "" {
		verb = auth.List
	}
	_, err = r.authz.Authorize(auth.Attributes{User: u, Verb: verb, APIGroup: group, Resource: resource, Namespace: ref.Namespace, Name: ref.Name})
	if err == nil {
		return nil
	}
	ui := &user.DefaultInfo{Name: u.Name, UID: u.UID, Groups: u.Groups, Extra: u.Extra}
	msg := fmt.Sprintf(`user %v does not have "%v" permission on the object referenced by paramRef`, ui, verb)
	if why != "" {
		msg = fmt.Sprintf(`%s and user %v does not have "%v" permission for all groups, versions and resources`, why, ui, verb)
	}
	return invalid(info, obj.GetName(), validation.ErrorList{field.Forbidden(field.NewPath("spec", "paramRef"), msg)})
}

// policyParamKind is a policy's paramKind, of either kind.
func policyParamKind(obj kinds.Object) *admissionregistrationv1.ParamKind {
	switch p := obj.(type) {
	case *admissionregistrationv1.ValidatingAdmissionPolicy:
		return p.Spec.ParamKind
	case *admissionregistrationv1.MutatingAdmissionPolicy:
		return p.Spec.ParamKind
	}
	return nil
}
