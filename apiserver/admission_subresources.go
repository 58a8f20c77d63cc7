package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"

	admissionv1 "k8s.io/api/admission/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"

	"github.com/skiffhq/skiff/kinds"
)

// The admission of the subresources whose objects are not their parent's kind: scale
// (autoscaling/v1 Scale), binding (v1 Binding) and eviction (policy/v1 Eviction). As in
// Kubernetes, the mutating policies and webhooks, then the validating policies and
// webhooks, whose rules name the subresource (deployments/scale, pods/binding,
// pods/eviction, */scale, */*), see the subresource's object, not the parent: a
// webhookOp with subKind set. A mutation changes that object, which the write then
// carries out.

// admitSubresource admits obj, an object of kind written through info's subresource sub
// (old: the current one; nil on a create), and returns it as the mutating admission made
// it. Nothing is read or called while no webhook and no policy is configured.
func (r *resources) admitSubresource(ctx context.Context, info *kinds.Info, sub string, kind schema.GroupVersionKind,
	operation admissionv1.Operation, obj, old kinds.Object, dryRun bool, options runtime.Object) (kinds.Object, error) {
	if !r.admitsSubresources(ctx, info) {
		return obj, nil
	}
	op := &webhookOp{operation: operation, info: info, subresource: sub, subKind: kind, obj: obj, old: old, dryRun: dryRun, options: options}
	if _, err := r.admitWebhooksMutating(ctx, op); err != nil {
		return nil, err
	}
	if err := r.admitPolicies(ctx, op); err != nil {
		return nil, err
	}
	if err := r.webhooks.validate(ctx, op); err != nil {
		return nil, err
	}
	return op.obj, nil
}

// admitsSubresources says whether a webhook or a policy is configured that could see
// a subresource of info's kind: without, its writes need no admission object made.
func (r *resources) admitsSubresources(ctx context.Context, info *kinds.Info) bool {
	return !webhookExempt[info.Kind] && (r.webhooks != nil && !r.webhooks.none(ctx) || r.policies != nil && !r.policies.none(ctx))
}

// kind is the kind of op's objects: its subresource's, else its resource's.
func (op *webhookOp) kind() schema.GroupVersionKind {
	if !op.subKind.Empty() {
		return op.subKind
	}
	return op.info.GroupVersionKind()
}

// objectJSON is obj, one of op's objects, as JSON with its apiVersion and kind.
func (op *webhookOp) objectJSON(obj kinds.Object) ([]byte, error) {
	if op.subKind.Empty() {
		return kinds.ObjectJSON(obj)
	}
	c := obj.DeepCopyObject()
	c.GetObjectKind().SetGroupVersionKind(op.subKind)
	js, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s %q: %w", op.subKind.Kind, obj.GetName(), err)
	}
	return js, nil
}

// unstructured is obj, one of op's objects, as CEL reads it: its whole numbers int64,
// as Kubernetes' unstructured objects have them (encoding/json's float64 would be CEL's
// double, which has no %: "should allow expressions to refer variables").
func (op *webhookOp) unstructured(obj kinds.Object) (*unstructured.Unstructured, error) {
	js, err := op.objectJSON(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{}
	if err := utiljson.Unmarshal(js, &u.Object); err != nil {
		return nil, err
	}
	return u, nil
}

// decode reads js, the JSON of an object of op's kind (a mutation's result), strictly
// (kinds.DecodeManifest, which knows the stored kinds; a subresource's object or a
// version served over another's storage as op.obj's type):
// a field the kind does not have is an error; so are another kind, name or namespace.
func (op *webhookOp) decode(js []byte) (kinds.Object, error) {
	var next kinds.Object
	if c, ok := op.obj.(*connectObject); ok {
		var tm runtime.TypeMeta
		if err := json.Unmarshal(js, &tm); err != nil {
			return nil, err
		}
		if kind := op.kind(); tm.GroupVersionKind() != kind {
			return nil, fmt.Errorf("a mutation may not change the object's apiVersion and kind (%s %s)", kind.GroupVersion(), kind.Kind)
		}
		return c.decoded(js)
	}
	if op.subKind.Empty() && op.info.Conversion == nil {
		var err error
		if next, err = kinds.DecodeManifest(js); err != nil {
			return nil, err
		}
		if in := kinds.Of(next); in.Kind != op.info.Kind || in.APIVersion != op.info.APIVersion {
			return nil, fmt.Errorf("a mutation may not change the object's apiVersion and kind (%s %s)", op.info.APIVersion, op.info.Kind)
		}
	} else {
		var tm runtime.TypeMeta
		if err := json.Unmarshal(js, &tm); err != nil {
			return nil, err
		}
		// A subresource's object, or a version served over another's storage.
		kind := op.kind()
		if tm.GroupVersionKind() != kind {
			return nil, fmt.Errorf("a mutation may not change the object's apiVersion and kind (%s %s)", kind.GroupVersion(), kind.Kind)
		}
		next = reflect.New(reflect.TypeOf(op.obj).Elem()).Interface().(kinds.Object)
		d := json.NewDecoder(bytes.NewReader(js))
		d.DisallowUnknownFields()
		if err := d.Decode(next); err != nil {
			return nil, fmt.Errorf("decode %s: %w", kind.Kind, err)
		}
		next.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
	}
	if next.GetName() != op.obj.GetName() || next.GetNamespace() != op.obj.GetNamespace() {
		return nil, fmt.Errorf("a mutation may not change the object's name or namespace (%s/%s)", op.obj.GetNamespace(), op.obj.GetName())
	}
	return next, nil
}

// patched is op.obj with a webhook's JSON patch applied, and whether it changed.
func (op *webhookOp) patched(patch []byte) (kinds.Object, bool, error) {
	if op.subKind.Empty() {
		next, err := kinds.Patch(op.obj, kinds.JSONPatch, patch)
		if err != nil {
			return nil, false, err
		}
		return next, !bytes.Equal(kinds.MustEncode(next), kinds.MustEncode(op.obj)), nil
	}
	cur, err := op.objectJSON(op.obj)
	if err != nil {
		return nil, false, err
	}
	out, err := kinds.PatchJSON(cur, patch, kinds.JSONPatch, nil)
	if err != nil {
		return nil, false, err
	}
	next, err := op.decode(out)
	if err != nil {
		return nil, false, err
	}
	js, err := op.objectJSON(next)
	if err != nil {
		return nil, false, err
	}
	return next, !bytes.Equal(js, cur), nil
}

// A resource Skiff serves in more than one group or version (events: core/v1 and
// events.k8s.io/v1; a custom resource's versions) is one stored kind, which the
// registry and admission see. As Kubernetes' matchPolicy says, a webhook whose rules
// name the request's own group and version sees the request as it was made; one with
// matchPolicy Equivalent (the default) whose rules name another version of the same
// resource sees the object converted to that version, its kind and resource that
// version's, and requestKind and requestResource the request's.

type requestedKey struct{}

// withRequested records in ctx the kind a REST request named (a served version, which
// the REST API converts to its stored kind).
func withRequested(ctx context.Context, view *kinds.Info) context.Context {
	return context.WithValue(ctx, requestedKey{}, view)
}

// requestedOf is the kind of info's the request named: info itself, unless the request
// named another version of it.
func requestedOf(ctx context.Context, info *kinds.Info) *kinds.Info {
	if view, ok := ctx.Value(requestedKey{}).(*kinds.Info); ok && view != nil && view != info && view.Stored() == info && info.Conversion == nil {
		return view
	}
	return info
}

// equivalents are the served versions of op's resource but the one the request named,
// in a fixed order: what a rule with matchPolicy Equivalent also matches.
func (op *webhookOp) equivalents() []*kinds.Info {
	if !op.subKind.Empty() || op.info.Conversion != nil {
		return nil
	}
	var out []*kinds.Info
	for _, in := range kinds.Served() {
		if in.Stored() == op.info && in != op.requestedInfo() {
			out = append(out, in)
		}
	}
	return out
}

// requestedInfo is the kind the request named (op.info when not recorded).
func (op *webhookOp) requestedInfo() *kinds.Info {
	if op.requested != nil {
		return op.requested
	}
	return op.info
}

// presented is op as a webhook matched it in view, a served version of op.info (the
// stored kind): its objects converted to view's type. op itself when view is its kind.
// A conversion that fails (a custom kind's webhook) is an API error.
func (op *webhookOp) presented(view *kinds.Info) (*webhookOp, error) {
	if view == nil || view == op.info {
		return op, nil
	}
	v := *op
	v.info = view
	var err error
	if op.obj != nil {
		if v.obj, err = fromStorage(view, op.obj); err != nil {
			return nil, err
		}
	}
	if op.old != nil {
		if v.old, err = fromStorage(view, op.old); err != nil {
			return nil, err
		}
	}
	return &v, nil
}
