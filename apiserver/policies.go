package apiserver

import (
	"context"
	"encoding/json"
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
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/skiffhq/skiff/apiserver/admissioncel"
	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// ValidatingAdmissionPolicies, as kube-apiserver's ValidatingAdmissionPolicy admission
// plugin evaluates them: after the mutating webhooks and the built-in validation, before
// the validating webhooks, every policy whose matchConstraints match a write is
// evaluated once for each of its bindings whose matchResources match too, with each
// param the binding's paramRef selects; a failed validation refuses the write (Deny),
// becomes a Warning header (Warn) or is logged (Audit, Skiff having no audit log). The
// expressions are Kubernetes' own CEL (admissioncel). Policies and bindings are read
// from this node's state only when one of them has changed (as the webhooks'
// configurations are), and compiled then. The admissionregistration kinds themselves
// are exempt (webhookExempt), so that a policy cannot lock itself in.

// policies holds the policies and their bindings, compiled.
type policies struct {
	store *store.Store
	log   hclog.Logger

	policyLists, bindingLists *nsLists

	mu       sync.Mutex
	from     [2][]store.Object // the cached lists compiled is made from
	compiled []*boundPolicy
}

// boundPolicy is a policy, compiled, and its bindings, in name order.
type boundPolicy struct {
	policy   *admissionregistrationv1.ValidatingAdmissionPolicy
	eval     *admissioncel.Policy
	match    *resourceMatch
	bindings []*policyBinding
}

type policyBinding struct {
	binding *admissionregistrationv1.ValidatingAdmissionPolicyBinding
	match   *resourceMatch // nil: what the policy matches
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
	return &policies{store: s, log: log, policyLists: newNSLists(kinds.ValidatingAdmissionPolicy),
		bindingLists: newNSLists(kinds.ValidatingAdmissionPolicyBinding)}
}

// load returns the policies that have bindings, compiled.
func (p *policies) load(ctx context.Context) ([]*boundPolicy, error) {
	pols, err := p.policyLists.list(ctx, p.store, "", false)
	if err != nil {
		return nil, storeError(kinds.MustLookup(kinds.ValidatingAdmissionPolicy), "", err)
	}
	binds, err := p.bindingLists.list(ctx, p.store, "", false)
	if err != nil {
		return nil, storeError(kinds.MustLookup(kinds.ValidatingAdmissionPolicyBinding), "", err)
	}
	if len(pols) == 0 || len(binds) == 0 {
		return nil, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	same := func(a, b []store.Object) bool { return len(a) == len(b) && &a[0] == &b[0] }
	if p.from[0] != nil && same(p.from[0], pols) && same(p.from[1], binds) {
		return p.compiled, nil
	}
	polInfo, bindInfo := kinds.MustLookup(kinds.ValidatingAdmissionPolicy), kinds.MustLookup(kinds.ValidatingAdmissionPolicyBinding)
	byPolicy := map[string][]*policyBinding{}
	for i := range binds {
		obj, err := decode(bindInfo, &binds[i])
		if err != nil {
			return nil, storeError(bindInfo, binds[i].Key.Name, err)
		}
		b := obj.(*admissionregistrationv1.ValidatingAdmissionPolicyBinding)
		byPolicy[b.Spec.PolicyName] = append(byPolicy[b.Spec.PolicyName], &policyBinding{binding: b, match: newResourceMatch(b.Spec.MatchResources)})
	}
	var out []*boundPolicy
	for i := range pols {
		bs := byPolicy[pols[i].Key.Name]
		if len(bs) == 0 {
			continue // a policy without a binding does nothing
		}
		obj, err := decode(polInfo, &pols[i])
		if err != nil {
			return nil, storeError(polInfo, pols[i].Key.Name, err)
		}
		pol := obj.(*admissionregistrationv1.ValidatingAdmissionPolicy)
		sort.Slice(bs, func(i, j int) bool { return bs[i].binding.Name < bs[j].binding.Name })
		bp := &boundPolicy{policy: pol, eval: admissioncel.CompilePolicy(pol.Name, &pol.Spec), bindings: bs,
			match: newResourceMatch(pol.Spec.MatchConstraints)}
		if bp.match == nil {
			bp.match = &resourceMatch{err: errors.New("spec.matchConstraints is required")}
		}
		out = append(out, bp)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].policy.Name < out[j].policy.Name })
	p.from, p.compiled = [2][]store.Object{pols, binds}, out
	return out, nil
}

// none reports whether no policy is bound (or they cannot be read: admitPolicies says so).
func (p *policies) none(ctx context.Context) bool {
	if p == nil {
		return true
	}
	bound, err := p.load(ctx)
	return err == nil && len(bound) == 0
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

// policyDenial is a refusal of a policy, through one of its bindings (nil: the policy's
// own configuration failed).
type policyDenial struct {
	policy  *admissionregistrationv1.ValidatingAdmissionPolicy
	binding *admissionregistrationv1.ValidatingAdmissionPolicyBinding
	admissioncel.Decision
}

// admitPolicies evaluates the bound policies matching op; the first refusal, in the
// policies' and bindings' order, is the error.
func (r *resources) admitPolicies(ctx context.Context, op *webhookOp) error {
	if r.policies == nil || webhookExempt[op.info.Kind] {
		return nil
	}
	bound, err := r.policies.load(ctx)
	if err != nil || len(bound) == 0 {
		return err
	}
	var denied []policyDenial
	configError := func(pol *admissionregistrationv1.ValidatingAdmissionPolicy, b *admissionregistrationv1.ValidatingAdmissionPolicyBinding, err error) {
		if pol.Spec.FailurePolicy != nil && *pol.Spec.FailurePolicy == admissionregistrationv1.Ignore {
			r.policies.log.Warn("policy configuration error ignored", "policy", pol.Name, "kind", op.info.Kind, "name", op.name(), "error", err)
			return
		}
		msg := "failed to configure policy: " + err.Error()
		if b != nil {
			msg = "failed to configure binding: " + err.Error()
		}
		denied = append(denied, policyDenial{policy: pol, binding: b, Decision: admissioncel.Decision{Message: msg, Error: true, Index: -1}})
	}
	var in *admissioncel.Input // made once a policy matches
	for _, bp := range bound {
		ok, err := matchResources(ctx, bp.match, op, r.namespaceLabels)
		if err != nil {
			configError(bp.policy, nil, err)
			continue
		}
		if !ok {
			continue
		}
		for _, pb := range bp.bindings {
			if pb.match != nil {
				if ok, err := matchResources(ctx, pb.match, op, r.namespaceLabels); err != nil {
					configError(bp.policy, pb.binding, err)
					continue
				} else if !ok {
					continue
				}
			}
			params, err := r.policyParams(ctx, bp.policy.Spec.ParamKind, pb.binding.Spec.ParamRef, op)
			if err != nil {
				configError(bp.policy, pb.binding, err)
				continue
			}
			if in == nil && len(params) > 0 {
				if in, err = r.policyInput(ctx, op); err != nil {
					return err
				}
			}
			for _, param := range params {
				in.Params = param
				res := bp.eval.Validate(ctx, *in)
				for _, d := range res.Denied {
					for _, action := range pb.binding.Spec.ValidationActions {
						switch action {
						case admissionregistrationv1.Deny:
							denied = append(denied, policyDenial{policy: bp.policy, binding: pb.binding, Decision: d})
						case admissionregistrationv1.Warn:
							addRequestWarning(ctx, fmt.Sprintf("Validation failed for ValidatingAdmissionPolicy '%s' with binding '%s': %s", bp.policy.Name, pb.binding.Name, d.Message))
						case admissionregistrationv1.Audit:
							r.policies.log.Info("validation failure", "policy", bp.policy.Name, "binding", pb.binding.Name,
								"expressionIndex", d.Index, "kind", op.info.Kind, "namespace", op.namespace(), "name", op.name(), "message", d.Message)
						}
					}
				}
				for _, a := range res.Annotations {
					r.policies.log.Info("audit annotation", "key", bp.policy.Name+"/"+a.Key, "value", a.Value, "kind", op.info.Kind,
						"namespace", op.namespace(), "name", op.name())
				}
			}
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
	msg := fmt.Sprintf("ValidatingAdmissionPolicy '%s' denied request: %s", d.policy.Name, d.Message)
	if d.binding != nil {
		msg = fmt.Sprintf("ValidatingAdmissionPolicy '%s' with binding '%s' denied request: %s", d.policy.Name, d.binding.Name, d.Message)
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

// unstructuredOf is obj as JSON, with its apiVersion and kind: what CEL reads.
func unstructuredOf(obj kinds.Object) (*unstructured.Unstructured, error) {
	js, err := kinds.ObjectJSON(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := json.Unmarshal(js, &u.Object); err != nil {
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
