package validation

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/skiffhq/skiff/kinds"
)

// FuzzValidate: any object of any kind that decodes from Kubernetes' protobuf encoding
// can be defaulted and validated without a panic, and Default stays idempotent.
func FuzzValidate(f *testing.F) {
	for _, obj := range []kinds.Object{pod(nil), deployment(nil), replicaSet(nil), fullDeployment()} {
		b := make([]byte, obj.Size())
		if _, err := obj.MarshalToSizedBuffer(b); err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range kinds.All() {
			obj := in.New()
			if obj.Unmarshal(b) != nil {
				continue
			}
			old := obj.DeepCopyObject().(kinds.Object)
			_ = Validate(obj)
			_ = ValidateStatus(obj)
			Default(obj)
			once := obj.DeepCopyObject()
			Default(obj)
			if !equality.Semantic.DeepEqual(once, obj) {
				t.Fatalf("%s: Default is not idempotent", in.Kind)
			}
			_ = ValidateUpdate(old, obj)
		}
	})
}
