package openapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/kinds"
)

const widgetSchema = `
type: object
properties:
  spec:
    type: object
    description: what the widget should be
    properties:
      size: {type: integer, description: how big, default: 3}
      colour: {type: string}
`

func widgetCRD(t *testing.T, rv string) *apiextensionsv1.CustomResourceDefinition {
	t.Helper()
	var props apiextensionsv1.JSONSchemaProps
	if err := yaml.Unmarshal([]byte(widgetSchema), &props); err != nil {
		t.Fatal(err)
	}
	return &apiextensionsv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "widgets.example.com", UID: types.UID("u1"), ResourceVersion: rv},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ListKind: "WidgetList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true,
				Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &props}}}}}
}

func get(t *testing.T, h http.Handler, path string) (int, []byte) {
	t.Helper()
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", path, nil)
	req.Header.Set("Accept", "application/json")
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.Bytes()
}

// v3Paths is /openapi/v3's discovery: each group-version's URL, with its hash.
func v3Paths(t *testing.T, h http.Handler) map[string]string {
	t.Helper()
	code, body := get(t, h, "/openapi/v3")
	if code != 200 {
		t.Fatalf("/openapi/v3: %d %s", code, body)
	}
	var d struct {
		Paths map[string]struct {
			URL string `json:"serverRelativeURL"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(body, &d); err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for gv, p := range d.Paths {
		out[gv] = p.URL
	}
	return out
}

// TestCRDDocuments: an established CRD's schema is served in /openapi/v2 and in its
// group-version's /openapi/v3 document, with its x-kubernetes-group-version-kind; a
// change of the CRD changes the document's hash, and a CRD gone takes its
// group-version's document along.
func TestCRDDocuments(t *testing.T) {
	h := New([]Resource{{Info: kinds.MustLookup(kinds.CustomResourceDefinition)}}, nil, "v1.37.2")
	if _, ok := v3Paths(t, h)["apis/example.com/v1"]; ok {
		t.Fatal("apis/example.com/v1 served before its CRD")
	}
	h.SetCRDs([]*apiextensionsv1.CustomResourceDefinition{widgetCRD(t, "1")})
	paths := v3Paths(t, h)
	url, ok := paths["apis/example.com/v1"]
	if !ok || !strings.HasPrefix(url, "/openapi/v3/apis/example.com/v1?hash=") {
		t.Fatalf("/openapi/v3 paths: %v", paths)
	}
	if _, ok := paths["apis/apiextensions.k8s.io/v1"]; !ok {
		t.Errorf("the built-in group-version is gone: %v", paths)
	}
	code, body := get(t, h, "/openapi/v3/apis/example.com/v1")
	if code != 200 {
		t.Fatalf("v3 document: %d %s", code, body)
	}
	var v3 struct {
		Paths      map[string]any `json:"paths"`
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Description string         `json:"description"`
					Properties  map[string]any `json:"properties"`
				} `json:"properties"`
				GVK []map[string]string `json:"x-kubernetes-group-version-kind"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(body, &v3); err != nil {
		t.Fatal(err)
	}
	w, ok := v3.Components.Schemas["com.example.v1.Widget"]
	if !ok {
		t.Fatalf("no com.example.v1.Widget in %s", body)
	}
	if len(w.GVK) != 1 || w.GVK[0]["group"] != "example.com" || w.GVK[0]["version"] != "v1" || w.GVK[0]["kind"] != "Widget" {
		t.Errorf("x-kubernetes-group-version-kind = %v", w.GVK)
	}
	if w.Properties["spec"].Description != "what the widget should be" || w.Properties["spec"].Properties["size"] == nil {
		t.Errorf("spec = %+v", w.Properties["spec"])
	}
	if _, ok := v3.Components.Schemas["io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"]; !ok {
		t.Error("no ObjectMeta in the v3 document")
	}
	if v3.Paths["/apis/example.com/v1/namespaces/{namespace}/widgets/{name}"] == nil {
		t.Errorf("no object path in %v", v3.Paths)
	}

	code, body = get(t, h, "/openapi/v2")
	if code != 200 {
		t.Fatalf("v2: %d", code)
	}
	var v2 struct {
		Definitions map[string]struct {
			GVK []map[string]string `json:"x-kubernetes-group-version-kind"`
		} `json:"definitions"`
		Paths map[string]any `json:"paths"`
	}
	if err := json.Unmarshal(body, &v2); err != nil {
		t.Fatal(err)
	}
	if d, ok := v2.Definitions["com.example.v1.Widget"]; !ok || len(d.GVK) != 1 || d.GVK[0]["kind"] != "Widget" {
		t.Errorf("v2 com.example.v1.Widget = %+v, %v", d, ok)
	}
	if _, ok := v2.Definitions["io.k8s.apiextensions-apiserver.pkg.apis.apiextensions.v1.CustomResourceDefinition"]; !ok {
		t.Error("the built-in definitions are gone from v2")
	}
	if v2.Paths["/apis/example.com/v1/namespaces/{namespace}/widgets"] == nil {
		t.Error("no collection path in v2")
	}

	// The same CRD again: nothing to make. A changed one: a new hash.
	h.SetCRDs([]*apiextensionsv1.CustomResourceDefinition{widgetCRD(t, "1")})
	if got := v3Paths(t, h)["apis/example.com/v1"]; got != url {
		t.Errorf("hash changed without a change: %s, then %s", url, got)
	}
	changed := widgetCRD(t, "2")
	changed.Spec.Versions[0].Schema.OpenAPIV3Schema.Properties["spec"].Properties["shape"] = apiextensionsv1.JSONSchemaProps{Type: "string"}
	h.SetCRDs([]*apiextensionsv1.CustomResourceDefinition{changed})
	if got := v3Paths(t, h)["apis/example.com/v1"]; got == url || got == "" {
		t.Errorf("hash after a change of the schema: %s, then %s", url, got)
	}
	if _, body := get(t, h, "/openapi/v3/apis/example.com/v1"); !strings.Contains(string(body), `"shape"`) {
		t.Error("the changed schema is not served")
	}

	h.SetCRDs(nil)
	if _, ok := v3Paths(t, h)["apis/example.com/v1"]; ok {
		t.Error("apis/example.com/v1 still served after its CRD went")
	}
	if _, body := get(t, h, "/openapi/v3/apis/example.com/v1"); len(body) != 0 {
		t.Errorf("document of a CRD gone: %.200s", body) // kube-openapi's handler writes nothing, as for any unknown group-version
	}
	if _, body := get(t, h, "/openapi/v2"); strings.Contains(string(body), "com.example.v1.Widget") {
		t.Error("v2 still has the CRD gone")
	}
}
