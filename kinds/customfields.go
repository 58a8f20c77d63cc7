package kinds

import (
	"fmt"
	"strings"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/client-go/util/jsonpath"
)

// A CRD version's selectableFields are the fields a field selector may name on its
// custom resources, besides metadata.name and metadata.namespace (Kubernetes 1.32's GA
// feature). Each is a JSON path into the object (".spec.color"), named without its
// leading dot ("spec.color"), whose value is read as apiextensions-apiserver's strategy
// reads it: the path's one result printed with fmt.Sprint, "" when the object has none.
//
// The store indexes an object's selectable fields beside it (FieldsOf), for the fields
// of every version of its CRD at once: a version served by conversion None holds the
// same content under another apiVersion, so one value serves each version that
// declares the path.

// SelectableFields are the names of the fields a field selector may name on the kind's
// objects besides metadata.name and metadata.namespace (its version's selectableFields).
func (ck *CustomKind) SelectableFields() []string {
	var out []string
	for _, f := range ck.Version.SelectableFields {
		out = append(out, strings.TrimPrefix(f.JSONPath, "."))
	}
	return out
}

// FieldsOf reads the selectable fields of every version of obj's CRD from obj, by
// name; nil when the CRD declares none (or obj was made outside the registry).
func (c *Custom) FieldsOf() map[string]string {
	in := c.Info()
	if in == nil || in.Custom == nil {
		return nil
	}
	paths := crdFieldPaths(in.Custom.CRD)
	if len(paths) == 0 {
		return nil
	}
	root := make(map[string]any, len(c.Content)+2)
	for k, v := range c.Content {
		root[k] = v
	}
	root["apiVersion"], root["kind"] = c.APIVersion, c.Kind
	out := make(map[string]string, len(paths))
	for _, p := range paths {
		out[p.name] = p.value(root)
	}
	return out
}

// FieldValue reads one selectable field (by name) of obj; false when no version of its
// CRD declares it.
func (c *Custom) FieldValue(name string) (string, bool) {
	f := c.FieldsOf()
	v, ok := f[name]
	return v, ok
}

type fieldPath struct{ name, jsonPath string }

// value reads the path's value in root. A parser is made for each read: a JSONPath
// keeps state while it evaluates, so one cannot serve concurrent reads.
func (p fieldPath) value(root map[string]any) string {
	parser := jsonpath.New(p.name).AllowMissingKeys(true)
	if err := parser.Parse("{" + p.jsonPath + "}"); err != nil {
		return "" // the CRD's validation refuses such a path
	}
	results, err := parser.FindResults(root)
	if err != nil || len(results) != 1 || len(results[0]) != 1 {
		return ""
	}
	v := results[0][0].Interface()
	if v == nil {
		return ""
	}
	return fmt.Sprint(v)
}

// crdFieldPaths are the selectable fields of every version of crd, each once.
func crdFieldPaths(crd *apiextensionsv1.CustomResourceDefinition) []fieldPath {
	var out []fieldPath
	seen := map[string]bool{}
	for _, v := range crd.Spec.Versions {
		for _, f := range v.SelectableFields {
			name := strings.TrimPrefix(f.JSONPath, ".")
			if !seen[name] {
				seen[name] = true
				out = append(out, fieldPath{name: name, jsonPath: f.JSONPath})
			}
		}
	}
	return out
}
