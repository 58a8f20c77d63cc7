package apiserver

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"
	"strconv"

	"google.golang.org/grpc/codes"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// PATCH applies a JSON patch, a JSON merge patch or a strategic merge patch
// (kinds.PatchJSON) to the current object's JSON, decodes the result as a body is
// decoded (fieldValidation applies to it) and writes it as an update would, retrying on
// a newer object when the patch does not name a resourceVersion. A server-side apply
// (application/apply-patch+yaml) goes through the field manager (apply.go), and creates
// the object when there is none.

// patchOptions are a patch's query options.
type patchOptions struct {
	writeOptions
	fieldValidation string
	// fieldManager and force are an apply's.
	fieldManager string
	force        bool
}

// patchRequest reads a patch: its options, type and body.
func (a *restAPI) patchRequest(_ http.ResponseWriter, r *http.Request) (patchOptions, types.PatchType, []byte, error) {
	q := r.URL.Query()
	wo, err := writeOptionsOf(q)
	if err != nil {
		return patchOptions{}, "", nil, err
	}
	opts := patchOptions{writeOptions: wo, fieldValidation: q.Get("fieldValidation")}
	switch opts.fieldValidation {
	case "", "Warn", "Strict", "Ignore":
	default:
		return opts, "", nil, badRequest("fieldValidation: Unsupported value: %q: supported values: \"Ignore\", \"Warn\", \"Strict\"", opts.fieldValidation)
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	pt := types.PatchType(mt)
	opts.fieldManager = q.Get("fieldManager")
	force, err := strconv.ParseBool(orFalse(q.Get("force")))
	if err != nil {
		return opts, "", nil, badRequest("force: Invalid value: %q: must be true or false", q.Get("force"))
	}
	opts.force = force
	switch pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
		if opts.force {
			return opts, "", nil, statusError(codes.InvalidArgument, ReasonInvalid, nil, "force: Invalid value: true: may not be specified for non-apply patch")
		}
	case types.ApplyYAMLPatchType:
		if opts.fieldManager == "" {
			return opts, "", nil, badRequest("PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch")
		}
	default:
		return opts, "", nil, unsupportedMedia("the body of the request was in an unknown format - accepted media types include: %s, %s, %s, %s",
			types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType, types.ApplyYAMLPatchType)
	}
	body, err := a.readBody(r)
	if err != nil {
		return opts, "", nil, err
	}
	return opts, pt, body, nil
}

func unsupportedMedia(format string, args ...any) error {
	e := statusError(codes.InvalidArgument, "", nil, format, args...)
	e.status.Reason, e.status.Code = metav1.StatusReasonUnsupportedMediaType, http.StatusUnsupportedMediaType
	return e
}

// patchError is a patch that cannot be applied.
func patchError(info *kinds.Info, name string, err error) error {
	return statusError(codes.InvalidArgument, ReasonInvalid, nil, "%v", err).about(info, name)
}

// patch serves PATCH on an object or its status: prepare makes the next stored state of
// the current object and the patched one.
func (a *restAPI) patch(w http.ResponseWriter, r *http.Request, req *restRequest, prepare func(cur, patched kinds.Object) (kinds.Object, error)) {
	opts, pt, body, err := a.patchRequest(w, r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if req.info.Custom != nil && pt == types.StrategicMergePatchType {
		// Kubernetes has no strategic merge patch for custom resources (no Go type to
		// read merge keys from): its words.
		a.fail(w, r, unsupportedMedia("the body of the request was in an unknown format - accepted media types include: %s, %s, %s",
			types.JSONPatchType, types.MergePatchType, types.ApplyYAMLPatchType))
		return
	}
	opts.subresource = req.subresource
	if pt == types.ApplyYAMLPatchType {
		a.applyPatch(w, r, req, opts, body)
		return
	}
	var warnings []string
	view := req.info // the patch applies to the object as served, converted to its stored kind (rest_versions.go)
	res, err := a.res.patch(r.Context(), view.Stored(), req.namespace, req.name, opts.writeOptions, func(cur kinds.Object) (kinds.Object, error) {
		cur, err := fromStorage(view, cur)
		if err != nil {
			return nil, err
		}
		kinds.SetTypeMeta(cur)
		js, err := json.Marshal(cur)
		if err != nil {
			return nil, err
		}
		out, err := kinds.PatchJSON(js, body, pt, req.info.New())
		if err != nil {
			return nil, patchError(req.info, req.name, err)
		}
		obj, ws, err := decodeObject("application/json", out, req.info, opts.fieldValidation)
		if err != nil {
			return nil, err
		}
		warnings = ws
		if err := checkNames(obj, req, req.name); err != nil {
			return nil, err
		}
		return convertToStorage(view, obj)
	}, prepare)
	for _, msg := range warnings {
		addWarning(w, msg)
	}
	res, err = asVersion(view)(res, err)
	a.respond(w, r, http.StatusOK, res, err)
}

// patch writes the object apply makes of the current one, prepared for the store by
// prepare (an update's or a status update's rules). A resourceVersion in the patched
// object is a precondition; without one, a write that loses a race is patched again.
func (r *resources) patch(ctx context.Context, info *kinds.Info, ns, name string, opts writeOptions,
	apply func(cur kinds.Object) (kinds.Object, error), prepare func(cur, patched kinds.Object) (kinds.Object, error)) (result, error) {
	if name == "" {
		return result{}, badRequest("name is required")
	}
	k := store.Key{Kind: info.Kind, Namespace: namespaceFor(info, ns), Name: name}
	if !opts.dryRun {
		// A patch of an Event is an update for the event rate limit.
		if err := r.admitEventWrite(ctx, info, k.Namespace); err != nil {
			return result{}, err
		}
	}
	return r.update(ctx, info, k, 0, opts, func(cur kinds.Object, _ *store.Object) (kinds.Object, error) {
		patched, err := apply(clone(cur))
		if err != nil {
			return nil, err
		}
		if rv := patched.GetResourceVersion(); rv != "" && rv != cur.GetResourceVersion() {
			return nil, conflict(info, name, 0, "the object has been modified; please apply your changes to the latest version and try again")
		}
		if _, err := parseRV(info, name, patched.GetResourceVersion()); err != nil {
			return nil, err
		}
		return prepare(cur, patched)
	})
}

func orFalse(s string) string {
	if s == "" {
		return "false"
	}
	return s
}

// applyPatch serves a server-side apply: body is the applied configuration, merged into
// the object by the field manager, or the object created from it. An apply to the status
// subresource merges into the status alone (and the labels and annotations, as a status
// patch writes them), its fields owned by the manager with subresource "status"; the
// object must exist.
func (a *restAPI) applyPatch(w http.ResponseWriter, r *http.Request, req *restRequest, opts patchOptions, body []byte) {
	if req.subresource != "" && req.subresource != "status" {
		a.fail(w, r, unsupportedMedia("server-side apply to the %s subresource is not supported by Skiff", req.subresource))
		return
	}
	applied, err := appliedConfiguration(req, req.info.GroupVersionKind(), body)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	// A key given twice (the configuration reads the last) is refused under
	// fieldValidation Strict and a warning under Warn, the default, as Kubernetes' apply
	// patcher decodes the body strictly a second time.
	if opts.fieldValidation != "Ignore" {
		if err := yaml.UnmarshalStrict(body, &map[string]any{}); err != nil {
			if opts.fieldValidation == "Strict" {
				a.fail(w, r, badRequest("error strict decoding YAML: %v", err))
				return
			}
			addWarning(w, err.Error())
		}
	}
	ctx, view := r.Context(), req.info // as patch's, converted (rest_versions.go)
	prepare := func(cur, patched kinds.Object) (kinds.Object, error) {
		next, err := a.res.nextState(ctx, view.Stored(), cur, patched, true)
		if err == nil {
			err = checkVersionUpdate(view, cur, next)
		}
		return next, err
	}
	if req.subresource == "status" {
		prepare = func(cur, patched kinds.Object) (kinds.Object, error) {
			next, err := a.res.prepareStatusPatch(ctx, view.Stored(), cur, patched, req.subresource)
			if err != nil {
				return nil, err
			}
			next.SetManagedFields(patched.GetManagedFields())
			return next, nil
		}
	}
	res, err := a.res.patch(ctx, view.Stored(), req.namespace, req.name, opts.writeOptions, func(cur kinds.Object) (kinds.Object, error) {
		cur, err := fromStorage(view, cur)
		if err != nil {
			return nil, err
		}
		obj, err := apply(view, req.subresource, cur, applied, opts.fieldManager, opts.force)
		if err != nil {
			return nil, err
		}
		return convertToStorage(view, obj)
	}, prepare)
	if !isNotFound(err) || req.subresource != "" {
		res, err = asVersion(view)(res, err)
		a.respond(w, r, http.StatusOK, res, err)
		return
	}
	// None yet: the applied configuration creates it, if the user may create it.
	if _, err := a.gate.authorizeAttrs(ctx, auth.Attributes{User: requestUser(ctx), Verb: auth.Create, Resource: req.info.Plural,
		Namespace: req.namespace, Name: req.name}); err != nil {
		a.fail(w, r, err)
		return
	}
	empty := req.info.New()
	empty.SetName(req.name)
	if req.info.Namespaced {
		empty.SetNamespace(req.namespace)
	}
	obj, err := apply(req.info, "", empty, applied, opts.fieldManager, opts.force)
	if err == nil {
		obj, err = toStorage(view, obj)
	}
	if err == nil {
		res, err = asVersion(view)(a.res.create(ctx, obj, opts.writeOptions))
	}
	a.respond(w, r, http.StatusCreated, res, err)
}

// appliedConfiguration decodes an apply's body (YAML or JSON): an object of kind want
// (the URL's, or its subresource's), and of the URL's name and namespace.
func appliedConfiguration(req *restRequest, want schema.GroupVersionKind, body []byte) (*unstructured.Unstructured, error) {
	js, err := yaml.YAMLToJSON(body)
	if err != nil {
		return nil, badRequest("error decoding YAML: %v", err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(js); err != nil {
		return nil, badRequest("the applied configuration is not an object: %v", err)
	}
	if u.GroupVersionKind() != want {
		return nil, badRequest("the applied configuration is a %s %s, not a %s %s", u.GetAPIVersion(), u.GetKind(), want.GroupVersion(), want.Kind)
	}
	if u.GetName() == "" {
		u.SetName(req.name)
	}
	if req.info.Namespaced && u.GetNamespace() == "" {
		u.SetNamespace(req.namespace)
	}
	if u.GetName() != req.name {
		return nil, badRequest("the name of the object (%s) does not match the name on the URL (%s)", u.GetName(), req.name)
	}
	if req.info.Namespaced && u.GetNamespace() != req.namespace {
		return nil, badRequest("the namespace of the object (%s) does not match the namespace on the URL (%s)", u.GetNamespace(), req.namespace)
	}
	return u, nil
}
