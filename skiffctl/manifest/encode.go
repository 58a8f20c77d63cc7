package manifest

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/kinds"
)

// Tree converts an object to Kubernetes' JSON shape as generic values, with apiVersion
// and kind filled in: what kubectl holds (an unstructured object) before printing it, so
// that keys print sorted, as kubectl's do. obj is not changed.
func Tree(obj kinds.Object) (map[string]any, error) {
	c := obj.DeepCopyObject().(kinds.Object)
	kinds.SetTypeMeta(c)
	js, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode %s %q: %w", kinds.Of(c).Kind, c.GetName(), err)
	}
	var tree map[string]any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	return tree, nil
}

// JSON encodes objects as kubectl -o json does: indented by four spaces, one object as
// itself, several (or list) as a List.
func JSON(objs []kinds.Object, list bool) ([]byte, error) {
	v, err := Value(objs, list)
	if err != nil {
		return nil, err
	}
	out, err := json.MarshalIndent(v, "", "    ")
	if err != nil {
		return nil, err
	}
	return append(out, '\n'), nil
}

// YAML encodes objects as kubectl -o yaml does: one object as itself, several (or list)
// as a List.
func YAML(objs []kinds.Object, list bool) ([]byte, error) {
	v, err := Value(objs, list)
	if err != nil {
		return nil, err
	}
	return yaml.Marshal(v)
}

// Value is what JSON and YAML encode: one object's Tree, or a List of them.
func Value(objs []kinds.Object, list bool) (any, error) {
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
	// kubectl get's List: its metadata holds the (empty) resourceVersion of the list it
	// composes from the items.
	return map[string]any{"apiVersion": "v1", "kind": "List", "items": items,
		"metadata": map[string]any{"resourceVersion": ""}}, nil
}
