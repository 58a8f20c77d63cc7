package skiffctl_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

const widgetCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec: {type: object, properties: {size: {type: integer}}}
`

// TestGetCustomResources: skiffctl knows the CRD kind, and the custom kinds of the
// server's established CRDs by their names and short names, with their columns.
func TestGetCustomResources(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := strings.Join(c.Addrs(), ",")
	if code, _, errs := run(t, s, widgetCRD, "create", "-f", "-"); code != 0 {
		t.Fatalf("create CRD: %s", errs)
	}
	waitfor.Condition(t, 30*time.Second, "widgets served", func() (bool, string) {
		code, out, errs := run(t, s, "", "get", "widgets")
		return code == 0, out + errs
	})
	if out := must(t, s, "get", "crd"); !strings.Contains(out, "widgets.example.com") {
		t.Errorf("get crd = %s", out)
	}
	widget := "apiVersion: example.com/v1\nkind: Widget\nmetadata:\n  name: w1\nspec:\n  size: 3\n"
	if code, _, errs := run(t, s, widget, "create", "-f", "-"); code != 0 {
		t.Fatalf("create widget: %s", errs)
	}
	out := must(t, s, "get", "wd")
	if lines := strings.Split(strings.TrimSpace(out), "\n"); len(lines) != 2 || strings.Join(strings.Fields(lines[0]), " ") != "NAME SIZE" ||
		strings.Join(strings.Fields(lines[1]), " ") != "w1 3" {
		t.Errorf("get wd =\n%s", out)
	}
}

const gizmoCRD = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: gizmos.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: gizmos, singular: gizmo, kind: Gizmo}
  versions:
  - name: v1
    served: true
    storage: true
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer}
              owner: {type: string}
              note: {type: string}
              tags: {type: array, items: {type: string}}
`

// TestApplyCustomResources: apply creates a custom resource, then updates it by a
// three-way JSON merge patch (kubectl's for kinds without a Go type; the server refuses
// a strategic merge patch of them): what the manifest sets is set, what the last apply
// set and this one does not is removed, what another writer set is kept, a list is
// replaced whole; the same manifest again is "unchanged".
func TestApplyCustomResources(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := strings.Join(c.Addrs(), ",")
	if code, _, errs := run(t, s, gizmoCRD, "create", "-f", "-"); code != 0 {
		t.Fatalf("create CRD: %s", errs)
	}
	waitfor.Condition(t, 30*time.Second, "gizmos served", func() (bool, string) {
		code, out, errs := run(t, s, "", "get", "gizmos")
		return code == 0, out + errs
	})
	first := "apiVersion: example.com/v1\nkind: Gizmo\nmetadata:\n  name: g1\nspec:\n  size: 3\n  owner: ann\n  tags: [a, b]\n"
	if code, out, errs := run(t, s, first, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "g1 created") {
		t.Fatalf("first apply: exit %d: %s%s", code, out, errs)
	}
	// Another writer's field and label, which apply never set.
	must(t, s, "label", "gizmo", "g1", "team=blue")
	if code, _, errs := run(t, s, "", "patch", "gizmo", "g1", "--type", "merge", "-p", `{"spec":{"note":"kept"}}`); code != 0 {
		t.Fatalf("patch: %s", errs)
	}
	second := "apiVersion: example.com/v1\nkind: Gizmo\nmetadata:\n  name: g1\nspec:\n  size: 5\n  tags: [c]\n"
	if code, out, errs := run(t, s, second, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "g1 configured") {
		t.Fatalf("second apply: exit %d: %s%s", code, out, errs)
	}
	var got struct {
		Metadata struct {
			Labels      map[string]string `json:"labels"`
			Annotations map[string]string `json:"annotations"`
		} `json:"metadata"`
		Spec map[string]any `json:"spec"`
	}
	if err := json.Unmarshal([]byte(must(t, s, "get", "gizmo", "g1", "-o", "json")), &got); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"size": float64(5), "tags": []any{"c"}, "note": "kept"}
	if !reflect.DeepEqual(got.Spec, want) {
		t.Errorf("spec after the second apply = %v, want %v", got.Spec, want)
	}
	if got.Metadata.Labels["team"] != "blue" {
		t.Errorf("labels = %v: another writer's label was removed", got.Metadata.Labels)
	}
	if last := got.Metadata.Annotations["kubectl.kubernetes.io/last-applied-configuration"]; !strings.Contains(last, `"size":5`) || strings.Contains(last, "owner") {
		t.Errorf("last-applied-configuration = %s", last)
	}
	if code, out, errs := run(t, s, second, "apply", "-f", "-"); code != 0 || !strings.Contains(out, "g1 unchanged") {
		t.Fatalf("third apply: exit %d: %s%s", code, out, errs)
	}
}
