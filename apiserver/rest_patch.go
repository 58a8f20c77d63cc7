package apiserver

import (
	"context"
	"encoding/json"
	"mime"
	"net/http"

	"google.golang.org/grpc/codes"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// PATCH applies a JSON patch, a JSON merge patch or a strategic merge patch
// (kinds.PatchJSON) to the current object's JSON, decodes the result as a body is
// decoded (fieldValidation applies to it) and writes it as an update would, retrying on
// a newer object when the patch does not name a resourceVersion. Server-side apply
// (application/apply-patch+yaml) is refused as an unsupported media type.

// patchOptions are a patch's query options.
type patchOptions struct {
	writeOptions
	fieldValidation string
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
	switch pt {
	case types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType:
	case types.ApplyYAMLPatchType, types.ApplyCBORPatchType:
		return opts, "", nil, unsupportedMedia("server-side apply (%s) is not supported by Skiff: apply on the client (kubectl apply without --server-side)", mt)
	default:
		return opts, "", nil, unsupportedMedia("the body of the request was in an unknown format - accepted media types include: %s, %s, %s",
			types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType)
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
	var warnings []string
	res, err := a.res.patch(r.Context(), req.info, req.namespace, req.name, opts.writeOptions, func(cur kinds.Object) (kinds.Object, error) {
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
		return obj, nil
	}, prepare)
	for _, msg := range warnings {
		addWarning(w, msg)
	}
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
