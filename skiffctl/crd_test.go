package skiffctl_test

import (
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
