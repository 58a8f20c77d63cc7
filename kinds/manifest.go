package kinds

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"

	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"
)

// ManifestError lists every problem of one manifest document, each naming its field path.
type ManifestError struct {
	// What is `Deployment "web"` when the document says so.
	What     string
	Problems []string
}

func (e *ManifestError) Error() string { return strings.Join(e.Problems, "; ") }

// DecodeManifest decodes one manifest document, YAML or JSON, into a new object of the
// kind it names, strictly: a field the kind does not have, a field given twice or a value
// of the wrong type is an error naming the field's path
// (spec.template.spec.containers[0].foo: unknown field), as kubectl's strict decoding
// reports it. Numbers are accepted where Kubernetes takes quantities (cpu: 1).
func DecodeManifest(doc []byte) (Object, error) {
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	js = bytes.TrimSpace(js)
	if len(js) == 0 || js[0] != '{' {
		return nil, fmt.Errorf("a manifest must be a mapping with apiVersion and kind")
	}
	var tm struct {
		APIVersion any `json:"apiVersion"`
		Kind       any `json:"kind"`
		Metadata   struct {
			Name any `json:"name"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(js, &tm); err != nil {
		return nil, fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	apiVersion, _ := tm.APIVersion.(string)
	kind, _ := tm.Kind.(string)
	in, err := manifestKind(apiVersion, kind)
	if err != nil {
		return nil, err
	}
	name, _ := tm.Metadata.Name.(string)
	return decodeStrict(in, js, name)
}

// decodeStrict decodes an object of kind in from its JSON, strictly; name, when known,
// names the object in the error.
func decodeStrict(in *Info, js []byte, name string) (Object, error) {
	e := &ManifestError{What: in.Kind}
	if name != "" {
		e.What = fmt.Sprintf("%s %q", in.Kind, name)
	}
	obj := in.New()
	strict, err := kjson.UnmarshalStrict(js, obj)
	var b64 base64.CorruptInputError
	switch {
	case errors.As(err, &b64):
		e.Problems = append(e.Problems, base64Problem(js, in, err))
	case err != nil:
		e.Problems = append(e.Problems, typeProblem(err))
	}
	for _, s := range strict {
		e.Problems = append(e.Problems, strictProblem(s))
	}
	if len(e.Problems) > 0 {
		return nil, e
	}
	obj.GetObjectKind().SetGroupVersionKind(in.GroupVersionKind())
	return obj, nil
}

func manifestKind(apiVersion, kind string) (*Info, error) {
	switch {
	case kind == "":
		return nil, fmt.Errorf("kind: Required value")
	case apiVersion == "":
		return nil, fmt.Errorf("apiVersion: Required value")
	}
	if in, ok := customByGVK(apiVersion, kind); ok {
		return in, nil
	}
	in, ok := lookupFolded(byName, kind)
	if !ok || in.Kind != kind {
		var known []string
		for _, in := range all {
			known = append(known, in.Kind)
		}
		return nil, fmt.Errorf("kind: Unsupported value: %q: supported values: %s", kind, strings.Join(known, ", "))
	}
	if apiVersion != in.APIVersion {
		return nil, fmt.Errorf("apiVersion: Unsupported value: %q: %s is served as %q", apiVersion, kind, in.APIVersion)
	}
	return in, nil
}

var strictRE = regexp.MustCompile(`^(unknown|duplicate) field "(.*)"$`)

// strictProblem turns `unknown field "spec.foo"` into `spec.foo: unknown field`.
func strictProblem(err error) string {
	if m := strictRE.FindStringSubmatch(err.Error()); m != nil {
		return m[2] + ": " + m[1] + " field"
	}
	return err.Error()
}

// base64Problem names the value that is not base64, which encoding/json does not: the
// kinds keep bytes in maps at their top (a Secret's data, a ConfigMap's binaryData),
// which YAML and JSON write in base64.
func base64Problem(js []byte, in *Info, err error) string {
	var doc map[string]any
	if json.Unmarshal(js, &doc) == nil {
		t := in.typ.Elem()
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			m, ok := doc[name].(map[string]any)
			if f.Type != reflect.TypeOf(map[string][]byte(nil)) || !ok {
				continue
			}
			for _, k := range slices.Sorted(maps.Keys(m)) {
				v, _ := m[k].(string)
				if _, derr := base64.StdEncoding.DecodeString(v); derr != nil {
					return fmt.Sprintf("%s[%s]: Invalid value: not base64: %v", name, k, derr)
				}
			}
		}
	}
	return err.Error()
}

var typeRE = regexp.MustCompile(`^json: cannot unmarshal (.+?) into Go struct field \S+?\.(\S+) of type (\S+)$`)

// typeProblem turns encoding/json's `cannot unmarshal string into Go struct field
// DeploymentSpec.spec.replicas of type int32` into `spec.replicas: expected int32, got
// string`.
func typeProblem(err error) string {
	msg := err.Error()
	if m := typeRE.FindStringSubmatch(msg); m != nil {
		return fmt.Sprintf("%s: expected %s, got %s", m[2], m[3], m[1])
	}
	return strings.TrimPrefix(msg, "json: ")
}
