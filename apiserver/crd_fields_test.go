package apiserver_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// shirtCRD is Kubernetes' documentation's example of selectable fields: a Shirt selected
// by its color and size, in two versions (v1 stored, v2 served with conversion None).
const shirtCRD = `{
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "shirts.stable.example.com"},
  "spec": {
    "group": "stable.example.com", "scope": "Namespaced",
    "names": {"plural": "shirts", "singular": "shirt", "kind": "Shirt"},
    "versions": [
      {"name": "v1", "served": true, "storage": true,
       "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
         "color": {"type": "string"}, "size": {"type": "string"}, "sleeves": {"type": "integer"}}}}}},
       "selectableFields": [{"jsonPath": ".spec.color"}]},
      {"name": "v2", "served": true, "storage": false,
       "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object", "properties": {
         "color": {"type": "string"}, "size": {"type": "string"}, "sleeves": {"type": "integer"}, "collar": {"type": "boolean"}}}}}},
       "selectableFields": [{"jsonPath": ".spec.size"}]}
    ]
  }
}`

// TestRESTCustomResourceSelectableFields: a CRD version's selectableFields select its
// custom resources in lists and watches, each version by its own fields; another field
// is refused in Kubernetes' words; a field a CRD gains later selects the resources
// stored before it.
func TestRESTCustomResourceSelectableFields(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	crds := "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
	rc.want(rc.do("POST", crds, "application/json", "", shirtCRD), 201, "create CRD")
	v1 := "/apis/stable.example.com/v1/namespaces/default/shirts"
	v2 := "/apis/stable.example.com/v2/namespaces/default/shirts"
	waitfor.Condition(t, 30*time.Second, "shirts served", func() (bool, string) {
		r := rc.do("GET", v1, "", "", nil)
		return r.code == 200, fmt.Sprintf("HTTP %d", r.code)
	})
	shirt := func(name, color, size string, sleeves int) string {
		return fmt.Sprintf(`{"apiVersion":"stable.example.com/v1","kind":"Shirt","metadata":{"name":%q},"spec":{"color":%q,"size":%q,"sleeves":%d}}`,
			name, color, size, sleeves)
	}
	rc.want(rc.do("POST", v1, "application/json", "", shirt("s1", "blue", "S", 1)), 201, "create s1")
	rc.want(rc.do("POST", v1, "application/json", "", shirt("s2", "red", "M", 2)), 201, "create s2")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	blues := rc.watch(ctx, v1+"?watch=1&fieldSelector=spec.color%3Dblue")
	mediums := rc.watch(ctx, v2+"?watch=1&fieldSelector=spec.size%3DM")
	rc.want(rc.do("POST", v1, "application/json", "", shirt("s3", "blue", "M", 3)), 201, "create s3")
	rc.want(rc.do("PATCH", v1+"/s2", "application/merge-patch+json", "", `{"spec":{"color":"blue"}}`), 200, "paint s2 blue")

	names := func(path string) string {
		type list struct{ Items []crontabObject }
		l := decodeJSON[list](t, rc.want(rc.do("GET", path, "", "", nil), 200, "list "+path).body)
		var out []string
		for _, it := range l.Items {
			out = append(out, it.APIVersion+" "+it.Metadata.Name)
		}
		return strings.Join(out, ",")
	}
	for path, want := range map[string]string{
		v1 + "?fieldSelector=spec.color%3Dblue":                                                       "stable.example.com/v1 s1,stable.example.com/v1 s2,stable.example.com/v1 s3",
		v1 + "?fieldSelector=spec.color%21%3Dblue":                                                    "",
		v1 + "?fieldSelector=spec.color%3Dblue,metadata.name%21%3Ds1":                                 "stable.example.com/v1 s2,stable.example.com/v1 s3",
		v2 + "?fieldSelector=spec.size%3DM":                                                           "stable.example.com/v2 s2,stable.example.com/v2 s3",
		"/apis/stable.example.com/v2/shirts?fieldSelector=spec.size%3DS,metadata.namespace%3Ddefault": "stable.example.com/v2 s1",
	} {
		if got := names(path); got != want {
			t.Errorf("list %s = %q, want %q", path, got, want)
		}
	}
	// The gRPC API (the storage version, v1) selects by v1's fields too.
	grpc, _ := dial(t, c.Addr(0))
	gl, err := grpc.List(ctx, &apiv1.ListRequest{Kind: "shirts.stable.example.com", Namespace: "default", FieldSelector: "spec.color!=blue"})
	if err != nil || len(gl.Items) != 0 {
		t.Errorf("gRPC list of shirts not blue = %v, %v", gl, err)
	}
	if gl, err = grpc.List(ctx, &apiv1.ListRequest{Kind: "shirts.stable.example.com", Namespace: "default", FieldSelector: "spec.color=blue"}); err != nil || len(gl.Items) != 3 {
		t.Errorf("gRPC list of blue shirts = %v, %v", gl, err)
	}
	if _, err := grpc.List(ctx, &apiv1.ListRequest{Kind: "shirts.stable.example.com", FieldSelector: "spec.size=M"}); status.Code(err) != codes.InvalidArgument ||
		!strings.Contains(err.Error(), "field label not supported: spec.size") {
		t.Errorf("gRPC list by v2's field: %v", err)
	}

	// A field the version does not declare: Kubernetes' words.
	for _, path := range []string{v1 + "?fieldSelector=spec.size%3DM", v2 + "?fieldSelector=spec.color%3Dblue", v1 + "?fieldSelector=spec.sleeves%3D1"} {
		st := rc.want(rc.do("GET", path, "", "", nil), 400, "unsupported field").status()
		field := strings.SplitN(strings.SplitN(path, "fieldSelector=", 2)[1], "%", 2)[0]
		if !strings.Contains(st.Message, "field label not supported: "+field) {
			t.Errorf("list %s: %s", path, st.Message)
		}
	}
	rc.want(rc.do("GET", v1+"?watch=1&fieldSelector=spec.size%3DM", "", "", nil), 400, "unsupported field in a watch")

	// The watches: the state at their start (s1; s2), then s3 added, and s2 entering the
	// blues (ADDED, as Kubernetes' watch filter makes a change into the selection).
	want := func(events <-chan restEvent, what string, want ...string) {
		t.Helper()
		var seen []string
		for len(seen) < len(want) {
			select {
			case ev := <-events:
				seen = append(seen, ev.Type+" "+ev.Object.Name)
			case <-ctx.Done():
				t.Fatalf("%s: saw only %v", what, seen)
			}
		}
		if strings.Join(seen, ",") != strings.Join(want, ",") {
			t.Errorf("%s = %v, want %v", what, seen, want)
		}
	}
	want(blues, "watch of blue shirts", "ADDED s1", "ADDED s3", "ADDED s2")
	want(mediums, "watch of medium shirts", "ADDED s2", "ADDED s3")

	// The CRD gains spec.sleeves on v1: the shirts stored before are selected by it.
	crd := decodeJSON[apiextensionsv1.CustomResourceDefinition](t, rc.want(rc.do("GET", crds+"/shirts.stable.example.com", "", "", nil), 200, "get CRD").body)
	crd.Spec.Versions[0].SelectableFields = append(crd.Spec.Versions[0].SelectableFields, apiextensionsv1.SelectableField{JSONPath: ".spec.sleeves"})
	rc.want(rc.do("PUT", crds+"/shirts.stable.example.com", "application/json", "", &crd), 200, "add a selectable field")
	waitfor.Condition(t, 30*time.Second, "spec.sleeves selectable", func() (bool, string) {
		r := rc.do("GET", v1+"?fieldSelector=spec.sleeves%3D2", "", "", nil)
		return r.code == 200, fmt.Sprintf("HTTP %d %s", r.code, r.body)
	})
	if got := names(v1 + "?fieldSelector=spec.sleeves%3D2"); got != "stable.example.com/v1 s2" {
		t.Errorf("by a field added later = %q", got)
	}
	if got := names(v1 + "?fieldSelector=spec.sleeves%21%3D2,spec.color%3Dblue"); got != "stable.example.com/v1 s1,stable.example.com/v1 s3" {
		t.Errorf("by a field added later, not equal = %q", got)
	}
}
