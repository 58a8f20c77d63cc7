package openapi

import (
	"slices"
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
				t.Errorf("%s: no OpenAPI definition %s (add its package to OPENAPI_PACKAGES in the Makefile and run make openapi)", in.Kind, name)
			}
		}
	}
}
