package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/apiserver/pkg/admission"
	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/skiffhq/skiff/apiserver/admissioncel"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// Admission webhooks, as kube-apiserver's MutatingAdmissionWebhook and
// ValidatingAdmissionWebhook call them. A write's admission, once Skiff's built-in
// admission has mutated the object, calls the mutating webhooks whose rules match it,
// one after the other, each seeing the previous one's patch (those with
// reinvocationPolicy IfNeeded once more when a later one changed the object); the
// built-in defaulting and validation then run again on the result; last, the
// validating webhooks are called in parallel, and any refusal refuses the write. The
// configurations are read from this node's state only when one of them has changed
// (store.LastChange): a request costs no read while none changes, and a change counts
// from the next request. Webhooks never see writes of the configurations themselves, so
// that a broken webhook can always be removed.

// webhookOp is a write as admission names it.
type webhookOp struct {
	operation   admissionv1.Operation
	info        *kinds.Info
	subresource string
	// subKind is the kind of obj and old when they are a subresource's object, not the
	// resource's (admission_subresources.go): autoscaling/v1 Scale, v1 Binding, policy/v1
	// Eviction.
	subKind schema.GroupVersionKind
	// requested is the version of info the request named, when not info
	// (admission_subresources.go's matchPolicy Equivalent).
	requested *kinds.Info
	// obj is the object written (nil for a delete); old is the stored one (nil for a
	// create).
	obj, old kinds.Object
	dryRun   bool
	// options are the request's CreateOptions, UpdateOptions or DeleteOptions.
	options runtime.Object
}

func (op *webhookOp) namespace() string {
	if op.obj != nil {
		return op.obj.GetNamespace()
	}
	return op.old.GetNamespace()
}

func (op *webhookOp) name() string {
	if op.obj != nil {
		return op.obj.GetName()
	}
	return op.old.GetName()
}

// webhooks holds the configurations, compiled, and the HTTP clients that call them.
type webhooks struct {
	store *store.Store
	log   hclog.Logger
	// namespaceLabels reads a namespace's labels, for namespaceSelector.
	namespaceLabels func(ctx context.Context, ns string) (labels.Set, error)
	// resolve finds the address of a Service's ready endpoint serving port.
	resolve func(ctx context.Context, ns, name string, port int32) (string, error)
	// attributes is a write as matchConditions' CEL reads it.
	attributes func(ctx context.Context, op *webhookOp) (*admission.VersionedAttributes, error)
	// authorizer answers matchConditions' authorizer checks.
	authorizer authorizer.UnconditionalAuthorizer

	mutatingLists, validatingLists *nsLists

	mu       sync.Mutex
	compiled map[string]compiledHooks // by configuration kind
	// transports call the webhooks (servicecalls.go).
	transports serviceTransports
}

// compiledHooks are the webhooks of one kind's configurations, in Kubernetes' order
// (configurations by name, then each one's list), and the cached list they were made
// from (nsLists hands out the same slice until a configuration changes).
type compiledHooks struct {
	from  []store.Object
	hooks []*webhook
}

// webhook is one webhook of a configuration, its selectors parsed.
type webhook struct {
	admissionregistrationv1.MutatingWebhook
	mutating       bool
	nsSel, objSel  labels.Selector
	configuration  string
	reinvokeIfNeed bool
	// conditions are its matchConditions, compiled (nil: none).
	conditions *admissioncel.Matcher
}

func newWebhooks(s *store.Store, log hclog.Logger) *webhooks {
	return &webhooks{store: s, log: log, mutatingLists: newNSLists(kinds.MutatingWebhookConfiguration),
		validatingLists: newNSLists(kinds.ValidatingWebhookConfiguration), compiled: map[string]compiledHooks{}}
}

// webhookExempt are the kinds no webhook and no policy sees: the configurations and the
// policies (Kubernetes excludes admissionregistration's kinds, so that neither can lock
// itself in).
var webhookExempt = map[string]bool{kinds.MutatingWebhookConfiguration: true, kinds.ValidatingWebhookConfiguration: true,
	kinds.ValidatingAdmissionPolicy: true, kinds.ValidatingAdmissionPolicyBinding: true,
	kinds.MutatingAdmissionPolicy: true, kinds.MutatingAdmissionPolicyBinding: true}

// none reports whether no webhook is configured (or the configurations cannot be read:
// the calls that read them say so).
func (wh *webhooks) none(ctx context.Context) bool {
	m, err := wh.hooks(ctx, kinds.MutatingWebhookConfiguration)
	if err != nil || len(m) > 0 {
		return false
	}
	v, err := wh.hooks(ctx, kinds.ValidatingWebhookConfiguration)
	return err == nil && len(v) == 0
}

// hooks returns the webhooks of the configurations of kind.
func (wh *webhooks) hooks(ctx context.Context, kind string) ([]*webhook, error) {
	lists := wh.mutatingLists
	if kind == kinds.ValidatingWebhookConfiguration {
		lists = wh.validatingLists
	}
	objs, err := lists.list(ctx, wh.store, "", false)
	if err != nil {
		return nil, storeError(kinds.MustLookup(kind), "", err)
	}
	if len(objs) == 0 {
		return nil, nil
	}
	wh.mu.Lock()
	defer wh.mu.Unlock()
	if c, ok := wh.compiled[kind]; ok && len(c.from) == len(objs) && &c.from[0] == &objs[0] {
		return c.hooks, nil
	}
	info := kinds.MustLookup(kind)
	sorted := slices.Clone(objs)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Key.Name < sorted[j].Key.Name })
	var out []*webhook
	for i := range sorted {
		obj, err := decode(info, &sorted[i])
		if err != nil {
			return nil, storeError(info, sorted[i].Key.Name, err)
		}
		list, mutating := kinds.Webhooks(obj)
		for _, h := range list {
			w := &webhook{MutatingWebhook: h, mutating: mutating, configuration: obj.GetName(),
				reinvokeIfNeed: h.ReinvocationPolicy != nil && *h.ReinvocationPolicy == admissionregistrationv1.IfNeededReinvocationPolicy}
			w.conditions = admissioncel.CompileMatchConditions(h.Name, mutating, h.MatchConditions, h.FailurePolicy)
			if w.nsSel, err = selectorOf(h.NamespaceSelector); err == nil {
				w.objSel, err = selectorOf(h.ObjectSelector)
			}
			if err != nil { // validated when stored: only a configuration of a later release
				wh.log.Warn("webhook with an invalid selector ignored", "webhook", h.Name, "error", err)
				continue
			}
			out = append(out, w)
		}
	}
	wh.compiled[kind] = compiledHooks{from: objs, hooks: out}
	return out, nil
}

func selectorOf(s *metav1.LabelSelector) (labels.Selector, error) {
	if s == nil {
		return labels.Everything(), nil
	}
	return metav1.LabelSelectorAsSelector(s)
}

// admitWebhooksMutating is the mutating admission of op: the mutating admission
// policies (mutatingpolicies.go), then the mutating webhooks, then the policies and
// webhooks with reinvocationPolicy IfNeeded that something after them changed the
// object for (each at most once more, as in Kubernetes). op.obj is
// what they made of the object, and changed says whether it differs.
func (r *resources) admitWebhooksMutating(ctx context.Context, op *webhookOp) (changed bool, err error) {
	var st mutationState
	byPolicies, err := r.mutatePolicies(ctx, op, &st, false)
	if err != nil {
		return false, err
	}
	var byWebhooks bool
	var pending []*webhook
	if op.obj, byWebhooks, pending, err = r.webhooks.mutate(ctx, op); err != nil {
		return false, err
	}
	if byWebhooks {
		st.changed()
	}
	// Kubernetes' second pass: the policies, then the webhooks, asked to run again
	// because the object changed after them.
	var again, webhooksAgain bool
	if len(st.reinvoke) > 0 {
		if again, err = r.mutatePolicies(ctx, op, &st, true); err != nil {
			return false, err
		}
	}
	if again && len(pending) > 0 {
		if webhooksAgain, err = r.webhooks.reinvoke(ctx, op, pending); err != nil {
			return false, err
		}
	}
	return byPolicies || byWebhooks || again || webhooksAgain, nil
}

// admitWebhooksUpdate wraps mutate, which makes the next state of an update or a delete
// of the object or its status, with the admission webhooks: the mutating ones change
// that next state (which is then defaulted and validated again), the validating ones
// may refuse it. The scale, binding and eviction subresources, whose objects are not the
// stored kind's, are admitted by admitSubresource.
func (r *resources) admitWebhooksUpdate(ctx context.Context, info *kinds.Info, opts writeOptions,
	mutate func(cur kinds.Object, rec *store.Object) (kinds.Object, error)) func(cur kinds.Object, rec *store.Object) (kinds.Object, error) {
	if r.webhooks == nil || webhookExempt[info.Kind] || opts.subresource != "" && opts.subresource != "status" {
		return mutate
	}
	// The webhooks' answer for the revision last read: update reads again (linearizably,
	// or after losing a race), and a state read at the same revision is not sent again.
	memoRev := int64(-1)
	var memoNext kinds.Object
	var memoErr error
	return func(cur kinds.Object, rec *store.Object) (kinds.Object, error) {
		next, err := mutate(cur, rec)
		if err != nil {
			return nil, err
		}
		if r.webhooks.none(ctx) && r.policies.none(ctx) {
			return next, nil
		}
		if rec.ModRevision == memoRev {
			if memoErr != nil {
				return nil, memoErr
			}
			return clone(memoNext), nil
		}
		next, err = r.webhooksOnUpdate(ctx, info, opts, cur, next)
		memoRev, memoNext, memoErr = rec.ModRevision, next, err
		return next, err
	}
}

// webhooksOnUpdate admits next, the next state of cur, through the webhooks.
func (r *resources) webhooksOnUpdate(ctx context.Context, info *kinds.Info, opts writeOptions, cur, next kinds.Object) (kinds.Object, error) {
	op := &webhookOp{operation: admissionv1.Update, info: info, subresource: opts.subresource, obj: next, old: cur,
		dryRun: opts.dryRun, options: &metav1.UpdateOptions{}, requested: requestedOf(ctx, info)}
	if opts.deleting {
		op.operation, op.obj, op.options = admissionv1.Delete, nil, &metav1.DeleteOptions{}
	}
	changed, err := r.admitWebhooksMutating(ctx, op)
	if err != nil {
		return nil, err
	}
	if changed {
		if opts.subresource == "status" || opts.subresource == SubresourceApproval {
			next, err = r.prepareStatusUpdate(ctx, info, cur, op.obj, opts.subresource)
		} else {
			next, err = prepareUpdate(info, cur, op.obj)
		}
		if err != nil {
			return nil, err
		}
		op.obj = next
	}
	if opts.deleting {
		op.obj = nil
	}
	if err := r.admitPolicies(ctx, op); err != nil {
		return nil, err
	}
	if err := r.webhooks.validate(ctx, op); err != nil {
		return nil, err
	}
	return next, nil
}

// matchRules reports whether one of rules matches op: Kubernetes' rules.Matcher
// (operations, apiGroups, apiVersions, resources with subresources and wildcards, scope).
func matchRules(rules []admissionregistrationv1.RuleWithOperations, op *webhookOp) bool {
	for i := range rules {
		if matchRule(&rules[i], op) {
			return true
		}
	}
	return false
}

// matchView is the version of op's resource in which match (rules) matches op: the one
// the request named, else, with matchPolicy Equivalent (the default), another version
// of the same resource (nil: none).
func matchView(policy *admissionregistrationv1.MatchPolicyType, op *webhookOp, match func(as *webhookOp) bool) *kinds.Info {
	as := *op // the rules read the resource, the namespace and the name: no object converted
	as.info = op.requestedInfo()
	if match(&as) {
		return as.info
	}
	if policy != nil && *policy == admissionregistrationv1.Exact {
		return nil
	}
	for _, in := range op.equivalents() {
		if as.info = in; match(&as) {
			return in
		}
	}
	return nil
}

func matchRule(r *admissionregistrationv1.RuleWithOperations, op *webhookOp) bool {
	if !slices.ContainsFunc(r.Operations, func(o admissionregistrationv1.OperationType) bool {
		return o == admissionregistrationv1.OperationAll || string(o) == string(op.operation)
	}) {
		return false
	}
	any := func(list []string, v string) bool { return slices.Contains(list, "*") || slices.Contains(list, v) }
	if !any(r.APIGroups, op.info.Group) || !any(r.APIVersions, op.info.Version) {
		return false
	}
	if !slices.ContainsFunc(r.Resources, func(rs string) bool {
		res, sub, _ := strings.Cut(rs, "/")
		switch {
		case rs == "*/*":
			return true
		case rs == "*":
			return op.subresource == ""
		}
		return (res == "*" || res == op.info.Plural) && (sub == "*" || sub == op.subresource)
	}) {
		return false
	}
	scope := admissionregistrationv1.AllScopes
	if r.Scope != nil {
		scope = *r.Scope
	}
	// A Namespace is cluster-scoped, though it names itself as its namespace.
	clusterScoped := op.info.Kind == kinds.Namespace || op.namespace() == ""
	switch scope {
	case admissionregistrationv1.ClusterScope:
		return clusterScoped
	case admissionregistrationv1.NamespacedScope:
		return !clusterScoped
	}
	return true
}

// matches reports whether h is called for op, and the version of op's resource it is
// called with (matchView): its rules, its selectors, then its matchConditions. A
// matchCondition that cannot be evaluated under failurePolicy Fail refuses op, as
// Kubernetes' Forbidden.
func (wh *webhooks) matches(ctx context.Context, h *webhook, op *webhookOp) (*kinds.Info, bool, error) {
	view := matchView(h.MatchPolicy, op, func(as *webhookOp) bool { return matchRules(h.Rules, as) })
	if view == nil {
		return nil, false, nil
	}
	vop, err := op.presented(view)
	if err != nil {
		return nil, false, err
	}
	if ok, err := selectorsMatch(ctx, h.nsSel, h.objSel, vop, wh.namespaceLabels); !ok || err != nil {
		return nil, false, err
	}
	if h.conditions == nil {
		return view, true, nil
	}
	attrs, err := wh.attributes(ctx, vop)
	if err != nil {
		return nil, false, err
	}
	ok, err := h.conditions.Match(ctx, attrs, wh.authorizer)
	if err != nil {
		wh.log.Warn("failed evaluating match conditions, failing closed", "webhook", h.Name, "error", err)
		return nil, false, forbidden(op.info, op.name(), err.Error())
	}
	return view, ok, nil
}

// selectorsMatch reports whether op's object (or the stored one) has labels objSel
// selects and its namespace labels nsSel selects (a Namespace its own; a cluster-scoped
// object is in every namespace's).
func selectorsMatch(ctx context.Context, nsSel, objSel labels.Selector, op *webhookOp,
	namespaceLabels func(ctx context.Context, ns string) (labels.Set, error)) (bool, error) {
	if !objSel.Empty() {
		if op.operation == admissionv1.Connect {
			return false, nil // the options have no labels to select, as in Kubernetes
		}
		match := func(o kinds.Object) bool { return o != nil && objSel.Matches(labels.Set(o.GetLabels())) }
		if !match(op.obj) && !match(op.old) {
			return false, nil
		}
	}
	if nsSel.Empty() {
		return true, nil
	}
	var set labels.Set
	switch {
	case op.info.Kind == kinds.Namespace:
		o := op.obj
		if o == nil {
			o = op.old
		}
		set = o.GetLabels()
	case op.namespace() == "":
		return true, nil // a cluster-scoped object is in no namespace to select
	default:
		var err error
		if set, err = namespaceLabels(ctx, op.namespace()); err != nil {
			return false, err
		}
	}
	return nsSel.Matches(set), nil
}

// mutate calls the mutating webhooks matching op on op.obj, which it changes to the
// result of their patches; it reports whether anything changed, and the webhooks with
// reinvocationPolicy IfNeeded it called and did not call again (pending: a later change
// of the object, by a mutating policy's reinvocation, calls them once more).
func (wh *webhooks) mutate(ctx context.Context, op *webhookOp) (obj kinds.Object, changed bool, pending []*webhook, err error) {
	if wh == nil || webhookExempt[op.info.Kind] {
		return op.obj, false, nil, nil
	}
	hooks, err := wh.hooks(ctx, kinds.MutatingWebhookConfiguration)
	if err != nil || len(hooks) == 0 {
		return op.obj, false, nil, err
	}
	var called []*webhook
	var views []*kinds.Info // called's
	lastChange := -1
	for _, h := range hooks {
		view, ok, err := wh.matches(ctx, h, op)
		if err != nil {
			return nil, false, nil, err
		}
		if !ok {
			continue
		}
		changed, err := wh.callMutating(ctx, h, op, view)
		if err != nil {
			return nil, false, nil, err
		}
		called, views = append(called, h), append(views, view)
		if changed {
			lastChange = len(called) - 1
		}
	}
	// Reinvocation: a webhook that asked for it and ran before the last change sees the
	// object once more (Kubernetes' reinvocationPolicy IfNeeded).
	for i, h := range called {
		switch {
		case !h.reinvokeIfNeed:
		case i >= lastChange:
			pending = append(pending, h)
		default:
			if _, err := wh.callMutating(ctx, h, op, views[i]); err != nil {
				return nil, false, nil, err
			}
		}
	}
	return op.obj, lastChange >= 0, pending, nil
}

// reinvoke calls once more the webhooks of hooks (mutate's pending) that still match
// op: the object changed after they ran.
func (wh *webhooks) reinvoke(ctx context.Context, op *webhookOp, hooks []*webhook) (bool, error) {
	changed := false
	for _, h := range hooks {
		view, ok, err := wh.matches(ctx, h, op)
		if err != nil {
			return false, err
		}
		if !ok {
			continue
		}
		c, err := wh.callMutating(ctx, h, op, view)
		if err != nil {
			return false, err
		}
		changed = changed || c
	}
	return changed, nil
}

// callMutating calls h on op, presented in view, and applies its patch to op.obj (to
// view's form of it).
func (wh *webhooks) callMutating(ctx context.Context, h *webhook, op *webhookOp, view *kinds.Info) (bool, error) {
	vop, err := op.presented(view)
	if err != nil {
		return false, err
	}
	resp, err := wh.call(ctx, h, vop)
	if err != nil || resp == nil {
		return false, err
	}
	changed, err := wh.applyPatch(h, vop, resp)
	if changed && vop != op && err == nil {
		op.obj, err = convertToStorage(view, vop.obj)
	}
	return changed, err
}

// applyPatch applies the JSON patch of h's answer to op.obj; a patch that cannot be
// applied is h's failure.
func (wh *webhooks) applyPatch(h *webhook, op *webhookOp, resp *admissionv1.AdmissionResponse) (bool, error) {
	if len(resp.Patch) == 0 || op.obj == nil {
		return false, nil
	}
	if resp.PatchType == nil || *resp.PatchType != admissionv1.PatchTypeJSONPatch {
		return false, wh.failure(h, op, fmt.Errorf("unsupported patch type %q", ptrString(resp.PatchType)))
	}
	next, changed, err := op.patched(resp.Patch)
	if err != nil {
		return false, wh.failure(h, op, fmt.Errorf("JSON patch: %w", err))
	}
	op.obj = next
	return changed, nil
}

func ptrString[T ~string](p *T) string {
	if p == nil {
		return ""
	}
	return string(*p)
}

// validate calls the validating webhooks matching op, in parallel; the first refusal,
// in the webhooks' order, is the error.
func (wh *webhooks) validate(ctx context.Context, op *webhookOp) error {
	if wh == nil || webhookExempt[op.info.Kind] {
		return nil
	}
	hooks, err := wh.hooks(ctx, kinds.ValidatingWebhookConfiguration)
	if err != nil || len(hooks) == 0 {
		return err
	}
	errs := make([]error, len(hooks))
	var wg sync.WaitGroup
	for i, h := range hooks {
		view, ok, err := wh.matches(ctx, h, op)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		vop, err := op.presented(view)
		if err != nil {
			errs[i] = err // the calls already started are waited for
			continue
		}
		wg.Go(func() { _, errs[i] = wh.call(ctx, h, vop) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// call sends op's AdmissionReview to h and returns its answer when it allows op; a
// refusal, or a failure under failurePolicy Fail, is the error. A failure under
// failurePolicy Ignore is logged and answers nil.
func (wh *webhooks) call(ctx context.Context, h *webhook, op *webhookOp) (*admissionv1.AdmissionResponse, error) {
	if op.dryRun && (h.SideEffects == nil || (*h.SideEffects != admissionregistrationv1.SideEffectClassNone && *h.SideEffects != admissionregistrationv1.SideEffectClassNoneOnDryRun)) {
		return nil, badRequest("admission webhook %q does not support dry run", h.Name)
	}
	resp, err := wh.post(ctx, h, op)
	if err != nil {
		return nil, wh.failure(h, op, err)
	}
	for _, msg := range resp.Warnings {
		addRequestWarning(ctx, msg)
	}
	if !resp.Allowed {
		return nil, deniedError(h.Name, resp.Result)
	}
	return resp, nil
}

// failure is what a webhook that could not be called, or answered nonsense, makes of
// the request: nothing under failurePolicy Ignore, else Kubernetes' internal error.
func (wh *webhooks) failure(h *webhook, op *webhookOp, err error) error {
	if h.FailurePolicy != nil && *h.FailurePolicy == admissionregistrationv1.Ignore {
		wh.log.Warn("failed calling webhook, failing open", "webhook", h.Name, "kind", op.info.Kind, "name", op.name(), "error", err)
		return nil
	}
	return statusError(codes.Internal, ReasonInternal, nil, "Internal error occurred: failed calling webhook %q: %v", h.Name, err)
}

// deniedError is Kubernetes' webhook refusal (webhookerrors.ToStatusErr): the
// webhook's Status, its message prefixed with who denied the request.
func deniedError(name string, result *metav1.Status) error {
	deniedBy := fmt.Sprintf("admission webhook %q denied the request", name)
	st := metav1.Status{}
	if result != nil {
		st = *result
	}
	switch {
	case st.Message != "":
		st.Message = deniedBy + ": " + st.Message
	case st.Reason != "":
		st.Message = deniedBy + ": " + string(st.Reason)
	default:
		st.Message = deniedBy + " without explanation"
	}
	if st.Code < http.StatusBadRequest {
		st.Code = http.StatusBadRequest
	}
	st.Status = metav1.StatusFailure
	code := codes.InvalidArgument
	switch st.Code {
	case http.StatusForbidden:
		code = codes.PermissionDenied
	case http.StatusNotFound:
		code = codes.NotFound
	case http.StatusConflict:
		code = codes.Aborted
	case http.StatusTooManyRequests:
		code = codes.ResourceExhausted
	}
	if st.Code >= http.StatusInternalServerError {
		code = codes.Internal
	}
	return &apiError{status: st, code: code}
}

// review is op's AdmissionReview request for h.
func (wh *webhooks) review(ctx context.Context, op *webhookOp) (*admissionv1.AdmissionReview, error) {
	u := requestUser(ctx)
	req := &admissionv1.AdmissionRequest{
		UID:         types.UID(uuid.NewUUID()),
		Kind:        metav1.GroupVersionKind(op.kind()),
		Resource:    metav1.GroupVersionResource(op.info.GroupVersionResource()),
		SubResource: op.subresource,
		Name:        op.name(),
		Namespace:   op.namespace(),
		Operation:   op.operation,
		UserInfo:    authenticationv1.UserInfo{Username: u.Name, Groups: u.Groups},
		DryRun:      &op.dryRun,
	}
	req.RequestKind, req.RequestResource, req.RequestSubResource = &req.Kind, &req.Resource, req.SubResource
	if requested := op.requestedInfo(); requested != op.info && op.subKind.Empty() {
		rk, rr := metav1.GroupVersionKind(requested.GroupVersionKind()), metav1.GroupVersionResource(requested.GroupVersionResource())
		req.RequestKind, req.RequestResource = &rk, &rr
	}
	if op.info.Kind == kinds.Namespace {
		req.Namespace = op.name() // Kubernetes' attributes name a namespace as its own
	}
	var err error
	if op.obj != nil {
		if req.Object.Raw, err = op.objectJSON(op.obj); err != nil {
			return nil, err
		}
	}
	if op.old != nil {
		if req.OldObject.Raw, err = op.objectJSON(op.old); err != nil {
			return nil, err
		}
	}
	if op.options != nil {
		if req.Options.Raw, err = json.Marshal(op.options); err != nil {
			return nil, err
		}
	}
	return &admissionv1.AdmissionReview{TypeMeta: metav1.TypeMeta{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview"}, Request: req}, nil
}

// post sends op's review to h and reads its answer.
func (wh *webhooks) post(ctx context.Context, h *webhook, op *webhookOp) (*admissionv1.AdmissionResponse, error) {
	if !slices.Contains(h.AdmissionReviewVersions, "v1") {
		return nil, fmt.Errorf("webhook does not accept v1 AdmissionReview (admissionReviewVersions %v)", h.AdmissionReviewVersions)
	}
	rev, err := wh.review(ctx, op)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(rev)
	if err != nil {
		return nil, err
	}
	timeout := 10 * time.Second
	if h.TimeoutSeconds != nil {
		timeout = time.Duration(*h.TimeoutSeconds) * time.Second
	}
	data, err := wh.postJSON(ctx, &h.ClientConfig, timeout, body)
	if err != nil {
		return nil, err
	}
	var out admissionv1.AdmissionReview
	if err := json.Unmarshal(data, &out); err != nil {
		return nil, fmt.Errorf("received invalid webhook response: %w", err)
	}
	switch {
	case out.Response == nil:
		return nil, errors.New("webhook response was absent")
	case out.APIVersion != "admission.k8s.io/v1" || out.Kind != "AdmissionReview":
		return nil, fmt.Errorf("expected webhook response of admission.k8s.io/v1, Kind=AdmissionReview, got %s, Kind=%s", out.APIVersion, out.Kind)
	case out.Response.UID != rev.Request.UID:
		return nil, fmt.Errorf("expected response.uid=%q, got %q", rev.Request.UID, out.Response.UID)
	}
	return out.Response, nil
}

// postJSON posts body to the webhook cc configures, within timeout, and returns its
// answer: the one HTTP call of admission and conversion webhooks alike.
func (wh *webhooks) postJSON(ctx context.Context, cc *admissionregistrationv1.WebhookClientConfig, timeout time.Duration, body []byte) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	target, serverName, err := wh.target(ctx, cc)
	if err != nil {
		return nil, err
	}
	tr, err := wh.transports.get(cc.CABundle, serverName, false)
	if err != nil {
		return nil, fmt.Errorf("the webhook's caBundle: %w", err)
	}
	client := &http.Client{Transport: tr}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, target, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	// The timeout in the query too, as client-go's request carries it (?timeout=10s):
	// a webhook may read it, and Kubernetes' errors show it in the URL.
	q := hreq.URL.Query()
	q.Set("timeout", timeout.String())
	hreq.URL.RawQuery = q.Encode()
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/json")
	resp, err := client.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("failed to call webhook: %w", err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 3<<20))
	if err != nil {
		return nil, fmt.Errorf("failed to call webhook: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failed to call webhook: the server responded with the status code %d: %s", resp.StatusCode, strings.TrimSpace(string(data)))
	}
	return data, nil
}

// target is the URL a webhook is called at, and the name its certificate must have: the
// url as given, or a ready endpoint of the Service (the API server runs on a node, which
// reaches pod addresses), verified as SERVICE.NAMESPACE.svc as Kubernetes does.
func (wh *webhooks) target(ctx context.Context, cc *admissionregistrationv1.WebhookClientConfig) (string, string, error) {
	if cc.URL != nil {
		u, err := url.Parse(*cc.URL)
		if err != nil {
			return "", "", err
		}
		return *cc.URL, u.Hostname(), nil
	}
	svc := cc.Service
	if svc == nil {
		return "", "", errors.New("the webhook has neither url nor service")
	}
	port := int32(443)
	if svc.Port != nil {
		port = *svc.Port
	}
	addr, err := wh.resolve(ctx, svc.Namespace, svc.Name, port)
	if err != nil {
		return "", "", err
	}
	u := url.URL{Scheme: "https", Host: addr, Path: ptrString(svc.Path)}
	return u.String(), serviceServerName(svc.Namespace, svc.Name), nil
}

// close drops the idle connections kept to webhooks.
func (wh *webhooks) close() { wh.transports.close() }

// namespaceLabels are namespace ns's labels, as this node has them.
func (r *resources) namespaceLabels(ctx context.Context, ns string) (labels.Set, error) {
	obj, _, err := r.get(ctx, kinds.MustLookup(kinds.Namespace), store.Key{Kind: kinds.Namespace, Name: ns}, store.ReadOptions{Stale: true})
	if err != nil {
		return nil, err
	}
	return obj.GetLabels(), nil
}

// Warnings a request's handling adds (a webhook's), which the REST API sends in Warning
// headers.
type warningsKey struct{}

type requestWarnings struct {
	mu   sync.Mutex
	msgs []string
}

func withWarnings(ctx context.Context) context.Context {
	return context.WithValue(ctx, warningsKey{}, &requestWarnings{})
}

func addRequestWarning(ctx context.Context, msg string) {
	if w, ok := ctx.Value(warningsKey{}).(*requestWarnings); ok {
		w.mu.Lock()
		w.msgs = append(w.msgs, msg)
		w.mu.Unlock()
	}
}

// takeWarnings returns the request's warnings, once.
func takeWarnings(ctx context.Context) []string {
	w, ok := ctx.Value(warningsKey{}).(*requestWarnings)
	if !ok {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	msgs := w.msgs
	w.msgs = nil
	return msgs
}
