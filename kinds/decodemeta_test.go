package kinds_test

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/kinds"
)

// TestDecodeMeta: the metadata of a built-in kind and of a custom resource, decoded
// alone, is the whole object's, resourceVersion suffix included, under their apiVersion
// and kind; kinds.Of knows what kind the metadata is of.
func TestDecodeMeta(t *testing.T) {
	t.Cleanup(func() { kinds.SetCustom(nil) })
	kinds.ServeCRDs([]*apiextensionsv1.CustomResourceDefinition{widgetCRD()}, nil)
	meta := metav1.ObjectMeta{Name: "n", Namespace: "ns", UID: "u1", Labels: map[string]string{"a": "b"}, Finalizers: []string{"foregroundDeletion"},
		DeletionTimestamp: &metav1.Time{}, OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "Deployment", Name: "d", UID: "u0", BlockOwnerDeletion: ptr.To(true)}}}
	widget, _ := kinds.ForGroupVersionKind("example.com/v1", "Widget")
	w := widget.New().(*kinds.Custom)
	w.ObjectMeta = *meta.DeepCopy()
	w.Content = map[string]any{"spec": map[string]any{"size": int64(3)}}
	for _, obj := range []kinds.Object{
		&corev1.ConfigMap{ObjectMeta: *meta.DeepCopy(), Data: map[string]string{"k": "v"}},
		&corev1.Pod{ObjectMeta: *meta.DeepCopy(), Spec: corev1.PodSpec{NodeName: "w1", Containers: []corev1.Container{{Name: "c", Image: "i"}}}},
		w,
	} {
		b, err := kinds.Encode(obj)
		if err != nil {
			t.Fatal(err)
		}
		in := kinds.Of(obj)
		m, err := kinds.DecodeMeta(kinds.AppendWithResourceVersion(nil, b, 7))
		if err != nil {
			t.Fatalf("%s: %v", in.Kind, err)
		}
		want := *meta.DeepCopy()
		want.ResourceVersion = "7"
		if m.APIVersion != in.APIVersion || m.Kind != in.Kind || !equality.Semantic.DeepEqual(m.ObjectMeta, want) {
			t.Errorf("%s: DecodeMeta = %+v, want %+v", in.Kind, m, want)
		}
		if got := kinds.Of(m); got != in {
			t.Errorf("%s: kinds.Of(its metadata) = %v", in.Kind, got.Kind)
		}
	}
}
