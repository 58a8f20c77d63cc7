// Package manifest reads and writes Kubernetes-shaped manifests: YAML or JSON documents,
// several to a file separated by "---", each with apiVersion and kind. Decoding checks
// every field against the resource model before converting, so an unknown or mistyped
// field is an error that names its path (spec.template.spec.containers[0].foo), as
// Kubernetes' strict decoding does. Encoding writes the same shape back.
package manifest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/proto/kinds"
)

// Document is one decoded manifest document.
type Document struct {
	Object kinds.Object
	// Index is the document's position in its source, from 1.
	Index int
}

// Error is a decoding error in one document.
type Error struct {
	Source string // file name, or "-" for stdin
	Index  int    // document number, from 1
	What   string // `Deployment "web"` when known
	Err    error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Source)
	if e.Index > 0 {
		fmt.Fprintf(&b, ": document %d", e.Index)
	}
	if e.What != "" {
		fmt.Fprintf(&b, " (%s)", e.What)
	}
	b.WriteString(": ")
	b.WriteString(e.Err.Error())
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// Decode reads every document of r. source names r in errors.
func Decode(r io.Reader, source string) ([]Document, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", source, err)
	}
	return DecodeBytes(data, source)
}

// DecodeBytes reads every document of data. Empty documents (only comments or blank
// lines) are skipped; any error stops decoding.
func DecodeBytes(data []byte, source string) ([]Document, error) {
	var out []Document
	for i, doc := range splitDocuments(data) {
		if isBlank(doc) {
			continue
		}
		obj, what, err := decodeOne(doc)
		if err != nil {
			return nil, &Error{Source: source, Index: i + 1, What: what, Err: err}
		}
		out = append(out, Document{Object: obj, Index: i + 1})
	}
	return out, nil
}

// splitDocuments splits YAML at lines that start with "---".
func splitDocuments(data []byte) [][]byte {
	var docs [][]byte
	var cur bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), len(data)+1)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte("---")) {
			rest := strings.TrimSpace(string(line[3:]))
			if rest == "" || strings.HasPrefix(rest, "#") {
				docs = append(docs, append([]byte(nil), cur.Bytes()...))
				cur.Reset()
				continue
			}
		}
		cur.Write(line)
		cur.WriteByte('\n')
	}
	return append(docs, cur.Bytes())
}

func isBlank(doc []byte) bool {
	for _, line := range strings.Split(string(doc), "\n") {
		t := strings.TrimSpace(line)
		if t != "" && !strings.HasPrefix(t, "#") {
			return false
		}
	}
	return true
}

func decodeOne(doc []byte) (kinds.Object, string, error) {
	js, err := yaml.YAMLToJSON(doc)
	if err != nil {
		return nil, "", fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	var tree any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, "", fmt.Errorf("not valid YAML or JSON: %w", err)
	}
	top, ok := tree.(map[string]any)
	if !ok {
		return nil, "", fmt.Errorf("a manifest must be a mapping with apiVersion and kind, got %s", typeName(tree))
	}
	info, err := kindOf(top)
	if err != nil {
		return nil, "", err
	}
	what := info.Kind
	if md, ok := top["metadata"].(map[string]any); ok {
		if name, ok := md["name"].(string); ok && name != "" {
			what = fmt.Sprintf("%s %q", info.Kind, name)
		}
	}
	obj := info.New()
	var errs fieldErrors
	check(&errs, "", top, obj.ProtoReflect().Descriptor())
	if len(errs) > 0 {
		return nil, what, errs
	}
	js, err = json.Marshal(top)
	if err != nil {
		return nil, what, err
	}
	if err := protojson.Unmarshal(js, obj); err != nil {
		return nil, what, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "proto: "))
	}
	return obj, what, nil
}

func kindOf(top map[string]any) (*kinds.Info, error) {
	apiVersion, _ := top["apiVersion"].(string)
	kind, _ := top["kind"].(string)
	switch {
	case kind == "":
		return nil, fmt.Errorf("kind: Required value")
	case apiVersion == "":
		return nil, fmt.Errorf("apiVersion: Required value")
	}
	info, ok := kinds.Lookup(kind)
	if !ok || info.Kind != kind {
		var known []string
		for _, in := range kinds.All() {
			known = append(known, in.Kind)
		}
		return nil, fmt.Errorf("kind: Unsupported value: %q: supported values: %s", kind, strings.Join(known, ", "))
	}
	if apiVersion != info.APIVersion {
		return nil, fmt.Errorf("apiVersion: Unsupported value: %q: %s is served as %q", apiVersion, kind, info.APIVersion)
	}
	return info, nil
}

// fieldErrors lists every problem of one document.
type fieldErrors []string

func (e fieldErrors) Error() string { return strings.Join(e, "; ") }

func (e *fieldErrors) add(path, format string, args ...any) {
	if path == "" {
		path = "<root>"
	}
	*e = append(*e, path+": "+fmt.Sprintf(format, args...))
}

func join(path, name string) string {
	if path == "" {
		return name
	}
	return path + "." + name
}

// quantityMaps are the string maps whose values are quantities: Kubernetes accepts
// `cpu: 1` there, so numbers are turned into strings.
var quantityMaps = map[protoreflect.FullName]bool{
	"skiff.core.v1.ResourceRequirements.limits":   true,
	"skiff.core.v1.ResourceRequirements.requests": true,
	"skiff.core.v1.NodeStatus.capacity":           true,
	"skiff.core.v1.NodeStatus.allocatable":        true,
}

// check walks a decoded JSON mapping against a message descriptor, reporting unknown
// fields and values of the wrong type with their paths. It rewrites numbers in quantity
// maps to strings.
func check(errs *fieldErrors, path string, obj map[string]any, md protoreflect.MessageDescriptor) {
	keys := make([]string, 0, len(obj))
	for k := range obj {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fd := md.Fields().ByJSONName(k)
		p := join(path, k)
		if fd == nil {
			errs.add(p, "unknown field")
			continue
		}
		v := obj[k]
		if v == nil {
			continue
		}
		switch {
		case fd.IsMap():
			m, ok := v.(map[string]any)
			if !ok {
				errs.add(p, "expected a mapping, got %s", typeName(v))
				continue
			}
			for mk, mv := range m {
				mp := fmt.Sprintf("%s[%s]", p, strconv.Quote(mk))
				if n, isNum := mv.(json.Number); isNum && quantityMaps[fd.FullName()] {
					m[mk] = n.String()
					continue
				}
				checkValue(errs, mp, mv, fd.MapValue(), func(nv any) { m[mk] = nv })
			}
		case fd.IsList():
			l, ok := v.([]any)
			if !ok {
				errs.add(p, "expected a list, got %s", typeName(v))
				continue
			}
			for i := range l {
				checkValue(errs, fmt.Sprintf("%s[%d]", p, i), l[i], fd, func(nv any) { l[i] = nv })
			}
		default:
			checkValue(errs, p, v, fd, func(nv any) { obj[k] = nv })
		}
	}
}

// checkValue checks one (non-map, non-list) value of field fd.
func checkValue(errs *fieldErrors, path string, v any, fd protoreflect.FieldDescriptor, set func(any)) {
	if v == nil {
		return
	}
	switch fd.Kind() {
	case protoreflect.MessageKind, protoreflect.GroupKind:
		switch fd.Message().FullName() {
		case "google.protobuf.Value":
			return // any JSON value (int-or-string fields)
		case "google.protobuf.Timestamp":
			if _, ok := v.(string); !ok {
				errs.add(path, "expected an RFC 3339 time string, got %s", typeName(v))
			}
			return
		}
		m, ok := v.(map[string]any)
		if !ok {
			errs.add(path, "expected a mapping, got %s", typeName(v))
			return
		}
		check(errs, path, m, fd.Message())
	case protoreflect.StringKind:
		if _, ok := v.(string); !ok {
			errs.add(path, "expected a string, got %s %v", typeName(v), v)
		}
	case protoreflect.BytesKind:
		if _, ok := v.(string); !ok {
			errs.add(path, "expected a base64 string, got %s", typeName(v))
		}
	case protoreflect.BoolKind:
		if _, ok := v.(bool); !ok {
			errs.add(path, "expected true or false, got %s %v", typeName(v), v)
		}
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind:
		checkInt(errs, path, v, math.MinInt32, math.MaxInt32, set)
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind:
		checkInt(errs, path, v, math.MinInt64, math.MaxInt64, set)
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind:
		checkInt(errs, path, v, 0, math.MaxUint32, set)
	case protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		checkInt(errs, path, v, 0, math.MaxInt64, set)
	case protoreflect.DoubleKind, protoreflect.FloatKind:
		if _, ok := v.(json.Number); !ok {
			errs.add(path, "expected a number, got %s", typeName(v))
		}
	case protoreflect.EnumKind:
		if _, ok := v.(string); !ok {
			errs.add(path, "expected a string, got %s", typeName(v))
		}
	}
}

func checkInt(errs *fieldErrors, path string, v any, lo, hi int64, set func(any)) {
	n, ok := v.(json.Number)
	if !ok {
		errs.add(path, "expected an integer, got %s %v", typeName(v), v)
		return
	}
	i, err := strconv.ParseInt(n.String(), 10, 64)
	if err != nil {
		f, ferr := n.Float64()
		if ferr != nil || f != math.Trunc(f) || f < float64(lo) || f > float64(hi) {
			errs.add(path, "expected an integer, got %s", n)
			return
		}
		i = int64(f)
		set(json.Number(strconv.FormatInt(i, 10)))
	}
	if i < lo || i > hi {
		errs.add(path, "integer %d out of range [%d, %d]", i, lo, hi)
	}
}

func typeName(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "string"
	case json.Number:
		return "number"
	case bool:
		return "boolean"
	case []any:
		return "list"
	case map[string]any:
		return "mapping"
	}
	return fmt.Sprintf("%T", v)
}
