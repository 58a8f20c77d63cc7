package kinds

import (
	"testing"

	"google.golang.org/protobuf/proto"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

func TestLookupNames(t *testing.T) {
	for _, tc := range []struct{ name, kind string }{
		{"pods", Pod}, {"po", Pod}, {"Pod", Pod}, {"deploy", Deployment}, {"deployments", Deployment},
		{"rs", ReplicaSet}, {"no", Node}, {"ev", Event}, {"cm", ConfigMap}, {"leases", Lease}, {"ns", Namespace},
	} {
		in, ok := Lookup(tc.name)
		if !ok || in.Kind != tc.kind {
			t.Errorf("Lookup(%q) = %v, %v; want %s", tc.name, in, ok, tc.kind)
		}
	}
	if _, ok := Lookup("widgets"); ok {
		t.Error("Lookup(widgets) found a kind")
	}
}

func TestWrapUnwrapEveryKind(t *testing.T) {
	for _, in := range All() {
		obj := in.New()
		Meta(obj).Name = "x"
		SetTypeMeta(obj)
		back, err := Unwrap(Wrap(obj))
		if err != nil {
			t.Fatalf("%s: %v", in.Kind, err)
		}
		if !proto.Equal(back, obj) || Of(back) != in {
			t.Errorf("%s: round trip changed the object", in.Kind)
		}
		if av, k := TypeMeta(back); av != in.APIVersion || k != in.Kind {
			t.Errorf("%s: TypeMeta = %s %s", in.Kind, av, k)
		}
	}
	if _, err := Unwrap(nil); err == nil {
		t.Error("Unwrap(nil) gave no error")
	}
}

func TestSections(t *testing.T) {
	a := &corev1.Pod{Metadata: &corev1.ObjectMeta{Name: "a"}, Spec: &corev1.PodSpec{NodeName: "n1"},
		Status: &corev1.PodStatus{Phase: "Running"}}
	b := &corev1.Pod{Metadata: &corev1.ObjectMeta{Name: "b"}, Spec: &corev1.PodSpec{NodeName: "n1"}}
	if !SectionEqual(a, b, SpecSection) {
		t.Error("specs differ")
	}
	if SectionEqual(a, b, StatusSection) {
		t.Error("statuses equal")
	}
	CopySection(b, a, StatusSection)
	if b.Status.GetPhase() != "Running" || b.Metadata.Name != "b" {
		t.Errorf("CopySection(status) = %v", b)
	}
	CopySection(a, &corev1.Pod{}, SpecSection)
	if a.Spec != nil || a.Status == nil {
		t.Errorf("CopySection(empty spec) = %v", a)
	}
}

func TestControllerRef(t *testing.T) {
	d := &corev1.Deployment{Metadata: &corev1.ObjectMeta{Name: "web", Uid: "u1"}}
	ref := NewControllerRef(d)
	if ref.GetKind() != "Deployment" || ref.GetApiVersion() != "apps/v1" || ref.GetUid() != "u1" || !ref.GetController() || !ref.GetBlockOwnerDeletion() {
		t.Fatalf("ref %v", ref)
	}
	f := false
	rs := &corev1.ReplicaSet{Metadata: &corev1.ObjectMeta{OwnerReferences: []*corev1.OwnerReference{{Uid: "x", Controller: &f}, ref}}}
	if got := ControllerOf(rs); got != ref {
		t.Fatalf("ControllerOf = %v", got)
	}
	if ControllerOf(d) != nil {
		t.Fatal("an object without owners has no controller")
	}
}
