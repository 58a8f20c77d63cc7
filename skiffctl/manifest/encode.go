package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/proto/kinds"
)

// Tree converts an object to its Kubernetes JSON shape as generic values, with apiVersion
// and kind filled in and 64-bit integers as numbers (protojson writes them as strings).
func Tree(obj kinds.Object) (map[string]any, error) {
	obj = proto.Clone(obj).(kinds.Object)
	kinds.SetTypeMeta(obj)
	js, err := protojson.Marshal(obj)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", kinds.Of(obj).Kind, err)
	}
	var tree map[string]any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	numbers(tree, obj.ProtoReflect().Descriptor())
	return tree, nil
}

// numbers rewrites protojson's quoted 64-bit integers as numbers.
func numbers(obj map[string]any, md protoreflect.MessageDescriptor) {
	for k, v := range obj {
		fd := md.Fields().ByJSONName(k)
		if fd == nil {
			continue
		}
		switch {
		case fd.IsMap():
			if m, ok := v.(map[string]any); ok {
				for mk, mv := range m {
					m[mk] = numberValue(mv, fd.MapValue())
				}
			}
		case fd.IsList():
			if l, ok := v.([]any); ok {
				for i := range l {
					l[i] = numberValue(l[i], fd)
				}
			}
		default:
			obj[k] = numberValue(v, fd)
		}
	}
}

func numberValue(v any, fd protoreflect.FieldDescriptor) any {
	switch fd.Kind() {
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if s, ok := v.(string); ok {
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				return json.Number(s)
			}
		}
	case protoreflect.MessageKind:
		if m, ok := v.(map[string]any); ok && fd.Message().FullName() != "google.protobuf.Value" {
			numbers(m, fd.Message())
		}
	}
	return v
}

// JSON encodes objects as indented JSON: one object as itself, several as a List.
func JSON(objs []kinds.Object, list bool) ([]byte, error) {
	v, err := value(objs, list)
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// YAML encodes objects as YAML: one object as itself, several as a List.
func YAML(objs []kinds.Object, list bool) ([]byte, error) {
	v, err := value(objs, list)
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(v)
}

func value(objs []kinds.Object, list bool) (any, error) {
	items := make([]any, 0, len(objs))
	for _, o := range objs {
		t, err := Tree(o)
		if err != nil {
			return nil, err
		}
		items = append(items, t)
	}
	if !list && len(items) == 1 {
		return items[0], nil
	}
	return map[string]any{"apiVersion": "v1", "kind": "List", "items": items, "metadata": map[string]any{}}, nil
}
