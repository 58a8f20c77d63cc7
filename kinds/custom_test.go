package kinds_test

import (
	"encoding/json"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
)

func widgetCRD() *apiextensionsv1.CustomResourceDefinition {
	return &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ShortNames: []string{"wd"}},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true},
				{Name: "v2", Served: true, Subresources: &apiextensionsv1.CustomResourceSubresources{Status: &apiextensionsv1.CustomResourceSubresourceStatus{}}}}},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{Conditions: []apiextensionsv1.CustomResourceDefinitionCondition{
			{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}}}
}

// TestCustomKinds: an established CRD's versions are found by every name, the storage
// version is stored as itself and the other served over it; a custom resource survives
// the stored encoding, the resourceVersion suffix and JSON; a CRD not established, or
// being deleted, is not served.
func TestCustomKinds(t *testing.T) {
	t.Cleanup(func() { kinds.SetCustom(nil) })
	kinds.ServeCRDs([]*apiextensionsv1.CustomResourceDefinition{widgetCRD()}, nil)
	for _, name := range []string{"widgets", "Widget", "wd", "widget.example.com", "widgets.v2.example.com"} {
		if _, ok := kinds.Lookup(name); !ok {
			t.Errorf("Lookup(%q) found nothing", name)
		}
	}
	v1, _ := kinds.ForGroupVersionKind("example.com/v1", "Widget")
	v2, _ := kinds.ForGroupVersionKind("example.com/v2", "Widget")
	if v1 == nil || v2 == nil || v1.Conversion != nil || v2.Stored() != v1 || !v1.Namespaced || v1.HasStatus || !v2.HasStatus {
		t.Fatalf("v1 %+v, v2 %+v", v1, v2)
	}
	obj := v1.New().(*kinds.Custom)
	if err := json.Unmarshal([]byte(`{"apiVersion":"example.com/v1","kind":"Widget","metadata":{"name":"w","namespace":"ns","labels":{"a":"b"}},"spec":{"size":3,"tags":["x"]}}`), obj); err != nil {
		t.Fatal(err)
	}
	b, err := kinds.Encode(obj)
	if err != nil {
		t.Fatal(err)
	}
	names, err := kinds.ParseNames(b)
	if err != nil || names.Name != "w" || names.Namespace != "ns" {
		t.Errorf("ParseNames = %+v, %v", names, err)
	}
	back, err := kinds.Decode(kinds.AppendWithResourceVersion(nil, b, 42))
	if err != nil {
		t.Fatal(err)
	}
	c := back.(*kinds.Custom)
	if c.ResourceVersion != "42" || c.Labels["a"] != "b" || c.Content["spec"].(map[string]any)["size"] != int64(3) || kinds.Of(c) != v1 {
		t.Errorf("decoded = %+v", c)
	}
	js, _ := json.Marshal(must(v2.FromStorage(c)))
	if string(js) != `{"apiVersion":"example.com/v2","kind":"Widget","metadata":{"name":"w","namespace":"ns","resourceVersion":"42","labels":{"a":"b"}},"spec":{"size":3,"tags":["x"]}}` {
		t.Errorf("v2 JSON = %s", js)
	}
	deleting := widgetCRD()
	deleting.DeletionTimestamp = &metav1.Time{}
	kinds.ServeCRDs([]*apiextensionsv1.CustomResourceDefinition{deleting}, nil)
	if _, ok := kinds.Lookup("widgets"); ok {
		t.Errorf("a CRD being deleted is still served")
	}
}
