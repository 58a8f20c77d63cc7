package kinds

import (
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// Wrap puts obj into the gRPC API's Object envelope.
func Wrap(obj Object) (*apiv1.Object, error) {
	raw, err := Encode(obj)
	if err != nil {
		return nil, err
	}
	in := Of(obj)
	return &apiv1.Object{ApiVersion: in.APIVersion, Kind: in.Kind, Raw: raw}, nil
}

// Unwrap decodes the object of a gRPC API Object envelope.
func Unwrap(o *apiv1.Object) (Object, error) {
	if len(o.GetRaw()) == 0 {
		return nil, fmt.Errorf("object: empty (no kind set)")
	}
	obj, err := Decode(o.GetRaw())
	if err != nil {
		return nil, fmt.Errorf("object: %w", err)
	}
	if in := Of(obj); o.GetKind() != in.Kind || o.GetApiVersion() != in.APIVersion {
		return nil, fmt.Errorf("object: the envelope says %s %s, its bytes hold %s %s", o.GetApiVersion(), o.GetKind(), in.APIVersion, in.Kind)
	}
	return obj, nil
}

// UnwrapMeta decodes only the metadata of a gRPC API Object envelope's object
// (DecodeMeta): what a reader of many objects' metadata alone, the garbage collector,
// keeps.
func UnwrapMeta(o *apiv1.Object) (*metav1.PartialObjectMetadata, error) {
	if len(o.GetRaw()) == 0 {
		return nil, fmt.Errorf("object: empty (no kind set)")
	}
	m, err := DecodeMeta(o.GetRaw())
	if err != nil {
		return nil, fmt.Errorf("object: %w", err)
	}
	if m.APIVersion != o.GetApiVersion() || m.Kind != o.GetKind() {
		return nil, fmt.Errorf("object: the envelope says %s %s, its bytes hold %s %s", o.GetApiVersion(), o.GetKind(), m.APIVersion, m.Kind)
	}
	return m, nil
}
