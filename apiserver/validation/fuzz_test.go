package validation

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/skiffhq/skiff/proto/kinds"
)

// FuzzValidate: any decodable object of any kind can be defaulted and validated without
// a panic, and Default stays idempotent.
func FuzzValidate(f *testing.F) {
	for _, obj := range []kinds.Object{pod(nil), deployment(nil), replicaSet(nil)} {
		b, err := proto.Marshal(obj)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, in := range kinds.All() {
			obj := in.New()
			if proto.Unmarshal(b, obj) != nil {
				continue
			}
			old := proto.Clone(obj).(kinds.Object)
			_ = Validate(obj)
			_ = ValidateStatus(obj)
			Default(obj)
			once := proto.Clone(obj)
			Default(obj)
			if !proto.Equal(once, obj) {
				t.Fatalf("%s: Default is not idempotent", in.Kind)
			}
			_ = ValidateUpdate(old, obj)
		}
	})
}
