package kinds

import (
	"bytes"
	"encoding/json"
	"fmt"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/jsonmergepatch"
	"k8s.io/apimachinery/pkg/util/mergepatch"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// LastAppliedAnnotation holds the configuration kubectl apply (and skiffctl apply) last
// applied to an object: the third side of apply's three-way merge.
const LastAppliedAnnotation = corev1.LastAppliedConfigAnnotation

// The patch types, as Kubernetes' PATCH names them in its Content-Type.
const (
	JSONPatch           = types.JSONPatchType           // RFC 6902: a list of operations
	MergePatch          = types.MergePatchType          // RFC 7386: a partial object; null removes
	StrategicMergePatch = types.StrategicMergePatchType // a merge patch that merges lists by their merge keys
)

// Patch applies a patch of type pt to obj, as Kubernetes' PATCH does, and returns the
// patched object; obj is not changed. JSON patches and JSON merge patches are applied by
// evanphx/json-patch and strategic merge patches by apimachinery's strategicpatch, with
// the kind's Go type as the patch's metadata (merge keys and strategies), the libraries
// and the metadata kube-apiserver uses. The patched object is decoded strictly: a field
// the kind does not have is an error naming its path. A patch may not change the kind,
// the name or the namespace.
func Patch(obj Object, pt types.PatchType, patch []byte) (Object, error) {
	in := Of(obj)
	cur, err := ObjectJSON(obj)
	if err != nil {
		return nil, err
	}
	out, err := PatchJSON(cur, patch, pt, in.New())
	if err != nil {
		return nil, err
	}
	next, err := decodeAs(in, out)
	if err != nil {
		return nil, err
	}
	switch {
	case next.GetName() != obj.GetName():
		return nil, fmt.Errorf("metadata.name: Invalid value: %q: a patch may not rename the object (%q)", next.GetName(), obj.GetName())
	case next.GetNamespace() != obj.GetNamespace():
		return nil, fmt.Errorf("metadata.namespace: Invalid value: %q: a patch may not move the object out of namespace %q", next.GetNamespace(), obj.GetNamespace())
	}
	return next, nil
}

// PatchJSON applies a patch of type pt to original, an object's JSON, and returns the
// patched JSON: a JSON patch (RFC 6902) or a JSON merge patch (RFC 7386) by
// evanphx/json-patch, a strategic merge patch by apimachinery's strategicpatch, whose list
// merge keys and strategies are read from the struct tags of schema, a value of the
// patched Go type (x-kubernetes-patch-merge-key and -strategy in OpenAPI say the same).
func PatchJSON(original, patch []byte, pt types.PatchType, schema any) ([]byte, error) {
	switch pt {
	case JSONPatch:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, fmt.Errorf("decode JSON patch: %w", err)
		}
		out, err := p.Apply(original)
		if err != nil {
			return nil, fmt.Errorf("apply JSON patch: %w", err)
		}
		return out, nil
	case MergePatch:
		out, err := jsonpatch.MergePatch(original, patch)
		if err != nil {
			return nil, fmt.Errorf("apply merge patch: %w", err)
		}
		return out, nil
	case StrategicMergePatch:
		out, err := strategicpatch.StrategicMergePatch(original, patch, schema)
		if err != nil {
			return nil, fmt.Errorf("apply strategic merge patch: %w", err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("patch type: Unsupported value: %q: supported values: %q, %q, %q", pt, JSONPatch, MergePatch, StrategicMergePatch)
}

// decodeAs decodes the JSON of an object that must be of kind in (a patch's result).
func decodeAs(in *Info, js []byte) (Object, error) {
	var tm struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, fmt.Errorf("patched object: %w", err)
	}
	if tm.APIVersion != in.APIVersion || tm.Kind != in.Kind {
		return nil, fmt.Errorf("a patch may not change the object's apiVersion and kind (%s %s) to %q %q", in.APIVersion, in.Kind, tm.APIVersion, tm.Kind)
	}
	return decodeStrict(in, js, "")
}

// ObjectJSON is obj's JSON with its apiVersion and kind, as a PATCH handler patches it.
func ObjectJSON(obj Object) ([]byte, error) {
	c := obj.DeepCopyObject().(Object)
	SetTypeMeta(c)
	js, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s %q: %w", Of(c).Kind, c.GetName(), err)
	}
	return js, nil
}

// AppliedConfiguration is what apply sends for a manifest, as kubectl computes it
// (GetModifiedConfiguration): the manifest's JSON, exactly as the user wrote it, with
// LastAppliedAnnotation set to that same JSON (without the annotation). The annotation
// is encoded as kubectl encodes it (keys sorted, a newline at the end), so that kubectl
// and skiffctl read each other's.
func AppliedConfiguration(manifest []byte) ([]byte, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(manifest))
	dec.UseNumber()
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("applied configuration: %w", err)
	}
	meta, _ := m["metadata"].(map[string]any)
	if meta == nil {
		meta = map[string]any{}
		m["metadata"] = meta
	}
	annots, _ := meta["annotations"].(map[string]any)
	if annots != nil {
		delete(annots, LastAppliedAnnotation)
		if len(annots) == 0 {
			delete(meta, "annotations")
		}
	}
	last, err := encodeLine(m)
	if err != nil {
		return nil, err
	}
	if annots == nil {
		annots = map[string]any{}
	}
	annots[LastAppliedAnnotation] = string(last)
	meta["annotations"] = annots
	return encodeLine(m)
}

// encodeLine is JSON as kubectl writes it into the annotation (runtime.Encode of an
// unstructured object): encoding/json's, compact with keys sorted, and a newline.
func encodeLine(v any) ([]byte, error) {
	var b bytes.Buffer
	if err := json.NewEncoder(&b).Encode(v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// ApplyPatch computes kubectl apply's patch (client-side apply) from current, the object
// as stored, to modified, the configuration being applied (AppliedConfiguration), and
// its type: a three-way strategic merge patch (strategicpatch.CreateThreeWayMergePatch,
// with the kind's Go type as patch metadata) whose third side is the configuration last
// applied, read from current's LastAppliedAnnotation. So a field set in modified is set;
// a field that was applied last time and is no longer is removed; a field never applied
// (replicas set by scale, an annotation a controller wrote) is kept. A custom resource
// has no Go type to merge its lists by, and the server refuses strategic merge patches
// of it: as kubectl does for such kinds, its patch is a three-way JSON merge patch
// (jsonmergepatch.CreateThreeWayJSONMergePatch: lists are replaced whole), which may
// not change apiVersion, kind or name. "{}" means nothing to change.
func ApplyPatch(current Object, modified []byte) ([]byte, types.PatchType, error) {
	in := Of(current)
	cur, err := ObjectJSON(current)
	if err != nil {
		return nil, "", err
	}
	var original []byte
	if last, ok := current.GetAnnotations()[LastAppliedAnnotation]; ok {
		original = []byte(last)
	}
	if in.Custom != nil {
		patch, err := jsonmergepatch.CreateThreeWayJSONMergePatch(original, modified, cur,
			mergepatch.RequireKeyUnchanged("apiVersion"), mergepatch.RequireKeyUnchanged("kind"), mergepatch.RequireMetadataKeyUnchanged("name"))
		if err != nil {
			return nil, "", fmt.Errorf("compute apply patch of %s %q: %w", in.Kind, current.GetName(), err)
		}
		return patch, MergePatch, nil
	}
	meta, err := strategicpatch.NewPatchMetaFromStruct(in.New())
	if err != nil {
		return nil, "", err
	}
	patch, err := strategicpatch.CreateThreeWayMergePatch(original, modified, cur, meta, true)
	if err != nil {
		return nil, "", fmt.Errorf("compute apply patch of %s %q: %w", in.Kind, current.GetName(), err)
	}
	return patch, StrategicMergePatch, nil
}

// TwoWayPatch is the strategic merge patch that turns original into modified (both an
// object's JSON), as kubectl edit computes it.
func TwoWayPatch(in *Info, original, modified []byte) ([]byte, error) {
	return strategicpatch.CreateTwoWayMergePatch(original, modified, in.New())
}
