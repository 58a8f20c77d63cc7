package openapi

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/kinds"
)

// TestEveryKindHasADefinition: the generated definitions cover every kind Skiff serves.
// A kind of a group not yet generated fails here: add its k8s.io/api package to
// OPENAPI_PACKAGES in the Makefile and run make openapi.
func TestEveryKindHasADefinition(t *testing.T) {
	models := Models()
	for _, in := range kinds.All() {
		for _, name := range []string{ModelName(in), ModelName(in) + "List"} {
			if !slices.Contains(models, name) {
				t.Errorf("%s: no OpenAPI definition %s (add its package to generated/doc.go's go:generate line and run make openapi)", in.Kind, name)
			}
		}
	}
}

// TestReviewsDocumented: a review is documented as Kubernetes documents it — one POST
// operation on its collection (in its namespace for a namespaced one), its model with
// the x-kubernetes-group-version-kind extension, in v2 and in its group-version's v3
// document — so that kubectl explain and kubectl's validation know it.
func TestReviewsDocumented(t *testing.T) {
	h := New(nil, []Review{
		{Group: "authorization.k8s.io", Version: "v1", Kind: "SubjectAccessReview", Plural: "subjectaccessreviews"},
		{Group: "authorization.k8s.io", Version: "v1", Kind: "LocalSubjectAccessReview", Plural: "localsubjectaccessreviews", Namespaced: true},
	}, "v1.37.2")
	code, body := get(t, h, "/openapi/v2")
	if code != 200 {
		t.Fatalf("/openapi/v2: %d %s", code, body)
	}
	var v2 struct {
		Paths       map[string]map[string]json.RawMessage `json:"paths"`
		Definitions map[string]struct {
			GVK []map[string]string `json:"x-kubernetes-group-version-kind"`
		} `json:"definitions"`
	}
	if err := json.Unmarshal(body, &v2); err != nil {
		t.Fatal(err)
	}
	for p, op := range map[string]string{
		"/apis/authorization.k8s.io/v1/subjectaccessreviews":                             "createAuthorizationV1SubjectAccessReview",
		"/apis/authorization.k8s.io/v1/namespaces/{namespace}/localsubjectaccessreviews": "createAuthorizationV1NamespacedLocalSubjectAccessReview",
	} {
		ops := v2.Paths[p]
		if len(ops) != 2 || ops["post"] == nil { // post, and the path's parameters
			t.Errorf("%s: operations %v, want POST alone", p, slices.Collect(maps.Keys(ops)))
			continue
		}
		var post struct {
			ID     string         `json:"operationId"`
			Action string         `json:"x-kubernetes-action"`
			GVK    map[string]any `json:"x-kubernetes-group-version-kind"`
		}
		if err := json.Unmarshal(ops["post"], &post); err != nil {
			t.Fatal(err)
		}
		if post.ID != op || post.Action != "post" || post.GVK["group"] != "authorization.k8s.io" {
			t.Errorf("%s POST = %+v, want %s", p, post, op)
		}
	}
	d, ok := v2.Definitions["io.k8s.api.authorization.v1.SubjectAccessReview"]
	if !ok || len(d.GVK) != 1 || d.GVK[0]["kind"] != "SubjectAccessReview" || d.GVK[0]["group"] != "authorization.k8s.io" {
		t.Errorf("SubjectAccessReview's definition: %v, %+v", ok, d)
	}
	url, ok := v3Paths(t, h)["apis/authorization.k8s.io/v1"]
	if !ok {
		t.Fatal("no v3 document for authorization.k8s.io/v1")
	}
	code, body = get(t, h, url)
	if code != 200 || !strings.Contains(string(body), `"/apis/authorization.k8s.io/v1/subjectaccessreviews"`) ||
		!strings.Contains(string(body), `"io.k8s.api.authorization.v1.SubjectAccessReviewSpec"`) {
		t.Errorf("v3 authorization.k8s.io/v1: %d, %.300s", code, body)
	}
}
