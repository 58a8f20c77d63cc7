package kinds

import (
	"fmt"

	jsonpatch "gopkg.in/evanphx/json-patch.v4"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/strategicpatch"
)

// ApplyPatch applies a patch to the JSON of an object and returns the patched JSON. pt
// is one of Kubernetes' patch types: a JSON patch (RFC 6902), a JSON merge patch (RFC
// 7386), or a strategic merge patch, whose list merge keys and strategies are read from
// the struct tags of schema, an object of the patched type (x-kubernetes-patch-merge-key
// and -strategy in OpenAPI say the same), as Kubernetes' API server does for its
// built-in types.
func ApplyPatch(original, patch []byte, pt types.PatchType, schema any) ([]byte, error) {
	switch pt {
	case types.JSONPatchType:
		p, err := jsonpatch.DecodePatch(patch)
		if err != nil {
			return nil, fmt.Errorf("decode JSON patch: %w", err)
		}
		return p.Apply(original)
	case types.MergePatchType:
		return jsonpatch.MergePatch(original, patch)
	case types.StrategicMergePatchType:
		return strategicpatch.StrategicMergePatch(original, patch, schema)
	}
	return nil, fmt.Errorf("patch type %q is not one of %q, %q, %q", pt, types.JSONPatchType, types.MergePatchType, types.StrategicMergePatchType)
}
