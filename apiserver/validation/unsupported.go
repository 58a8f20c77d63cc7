package validation

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/kinds"
)

// With Kubernetes' types every Kubernetes field can be written, but Skiff acts on some
// of them only (supportedFields). A field it would silently ignore is refused instead, so
// that a manifest never means less in Skiff than it says:
//
//	spec.template.spec.containers[0].resizePolicy: Forbidden: not supported by Skiff
//
// The table is compiled once per kind into a check that lists, for each struct type on
// the way to a supported field, the fields that need a look: those not supported at all,
// which must be unset, and those partly supported, which the check enters. A field
// supported whole is never looked at. The walk reads the object by reflection and
// builds a field path only for what it refuses.

const notSupportedMsg = "not supported by Skiff"

// structCheck is the check of one struct type.
type structCheck struct {
	fields []fieldCheck
}

type fieldCheck struct {
	name  string
	index []int // reflect's, through flattened embeds
	// under checks what the field holds (a struct, or each struct of a list) when part of
	// it is supported; nil when none of it is, and the field must be unset.
	under *structCheck
}

// kindCheck is the compiled table of one kind.
type kindCheck struct {
	all    *structCheck
	status *fieldCheck // nil when the kind has no status, or supports all of it
}

var supportChecks = compileSupported()

func compileSupported() map[*kinds.Info]kindCheck {
	out := map[*kinds.Info]kindCheck{}
	for _, in := range kinds.All() {
		paths, ok := supportedFields[in.Kind]
		if !ok {
			panic("validation: no supported fields for kind " + in.Kind)
		}
		sc, err := compileKind(reflect.TypeOf(in.New()).Elem(), paths)
		if err != nil {
			panic(fmt.Sprintf("validation: supported fields of %s: %v", in.Kind, err))
		}
		kc := kindCheck{all: sc}
		for i := range sc.fields {
			if sc.fields[i].name == "status" {
				kc.status = &sc.fields[i]
			}
		}
		out[in] = kc
	}
	if len(out) != len(supportedFields) {
		panic("validation: supportedFields names a kind Skiff does not serve")
	}
	return out
}

// checkSupported reports every field of obj that is set but not supported, by the path
// of its outermost unsupported field; of its status only when statusOnly.
func checkSupported(obj kinds.Object, statusOnly bool) field.ErrorList {
	kc := supportChecks[kinds.Of(obj)]
	v := reflect.ValueOf(obj).Elem()
	w := walker{at: make([]step, 0, 16)} // deeper than any supported path
	switch {
	case !statusOnly:
		w.structFields(kc.all, v)
	case kc.status != nil:
		w.field(kc.status, v)
	}
	return w.errs
}

// walker walks one object. at is where it is, made into a field.Path only for an error.
type walker struct {
	at   []step
	errs field.ErrorList
}

// step is a field's name, or the index of a list's element when name is "".
type step struct {
	name  string
	index int
}

func (w *walker) structFields(sc *structCheck, v reflect.Value) {
	for i := range sc.fields {
		w.field(&sc.fields[i], v)
	}
}

// field checks field f of v, a struct of the type f belongs to.
func (w *walker) field(f *fieldCheck, v reflect.Value) {
	fv := v.FieldByIndex(f.index)
	w.at = append(w.at, step{name: f.name})
	defer func() { w.at = w.at[:len(w.at)-1] }()
	if f.under == nil {
		if isSet(fv) {
			w.errs = append(w.errs, field.Forbidden(w.path(), notSupportedMsg))
		}
		return
	}
	if fv.Kind() == reflect.Pointer {
		if fv.IsNil() {
			return
		}
		fv = fv.Elem()
	}
	if fv.Kind() != reflect.Slice {
		w.structFields(f.under, fv)
		return
	}
	for i := range fv.Len() {
		ev := fv.Index(i)
		if ev.Kind() == reflect.Pointer {
			if ev.IsNil() {
				continue
			}
			ev = ev.Elem()
		}
		w.at = append(w.at, step{index: i})
		w.structFields(f.under, ev)
		w.at = w.at[:len(w.at)-1]
	}
}

func (w *walker) path() *field.Path {
	p := field.NewPath(w.at[0].name)
	for _, s := range w.at[1:] {
		if s.name == "" {
			p = p.Index(s.index)
		} else {
			p = p.Child(s.name)
		}
	}
	return p
}

// isSet reports whether a field says something. An empty list or map does not: protobuf
// cannot tell it from an absent one, so refusing it would depend on the encoding.
func isSet(v reflect.Value) bool {
	switch v.Kind() {
	case reflect.Slice, reflect.Map:
		return v.Len() > 0
	}
	return !v.IsZero()
}

// jsonField is a struct field as encoding/json sees it.
type jsonField struct {
	name  string
	index []int
	typ   reflect.Type
}

// jsonFields lists the fields of struct type t by their JSON names, flattening embedded
// structs that have no name of their own (`json:""` or `json:",inline"`: TypeMeta,
// VolumeSource, ProbeHandler), as encoding/json does. k8s.io/api embeds no pointers that
// way and has no name clashes across levels, so encoding/json's rules for those are left
// out: an embedded pointer would be a field named after its type, still checked.
func jsonFields(t reflect.Type) []jsonField {
	var out []jsonField
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
			continue
		case f.Anonymous && name == "" && f.Type.Kind() == reflect.Struct:
			for _, sub := range jsonFields(f.Type) {
				sub.index = append([]int{i}, sub.index...)
				out = append(out, sub)
			}
			continue
		case !f.IsExported():
			continue
		case name == "":
			name = f.Name
		}
		out = append(out, jsonField{name: name, index: []int{i}, typ: f.Type})
	}
	return out
}

// supportNode is the table of one kind as a tree of JSON names.
type supportNode struct {
	list bool // written "name[*]"
	// children are the supported fields under this one; nil when all of them are.
	children map[string]*supportNode
}

// compileKind compiles the supported paths of a kind's type, or says which path does
// not fit the type.
func compileKind(t reflect.Type, paths []string) (*structCheck, error) {
	root := &supportNode{children: map[string]*supportNode{}}
	// TypeMeta: the kind is the envelope's, checked when the object is decoded.
	for _, p := range append([]string{"apiVersion", "kind"}, paths...) {
		if err := root.add(p); err != nil {
			return nil, err
		}
	}
	return root.compile(t, "")
}

func (n *supportNode) add(path string) error {
	segs := strings.Split(path, ".")
	for i, seg := range segs {
		name, list := strings.CutSuffix(seg, "[*]")
		if name == "" || strings.ContainsAny(name, "[]*") {
			return fmt.Errorf("%s: malformed path", path)
		}
		if n.children == nil {
			return fmt.Errorf("%s: a shorter path already covers it", path)
		}
		child, seen := n.children[name]
		if !seen {
			child = &supportNode{list: list, children: map[string]*supportNode{}}
			n.children[name] = child
		} else if child.list != list {
			return fmt.Errorf("%s: %s is written both with and without [*]", path, name)
		}
		if i == len(segs)-1 {
			if seen {
				return fmt.Errorf("%s: listed twice, or covers longer paths", path)
			}
			child.children = nil
		}
		n = child
	}
	return nil
}

var jsonMarshaler = reflect.TypeFor[json.Marshaler]()

// compile builds the check of struct type t, which n describes; at names t's place
// in the object, for errors.
func (n *supportNode) compile(t reflect.Type, at string) (*structCheck, error) {
	sc := &structCheck{}
	known := map[string]bool{}
	for _, f := range jsonFields(t) {
		known[f.name] = true
		child, ok := n.children[f.name]
		if !ok {
			sc.fields = append(sc.fields, fieldCheck{name: f.name, index: f.index})
			continue
		}
		path := joinPath(at, f.name)
		elem := f.typ
		isList := elem.Kind() == reflect.Slice && elem.Elem().Kind() != reflect.Uint8 // []byte is a string in JSON
		if child.list != isList {
			return nil, fmt.Errorf("%s: [*] marks a list, and every list (%s is a %s)", path, f.name, f.typ)
		}
		if child.children == nil {
			continue
		}
		if isList {
			path += "[*]"
			elem = elem.Elem()
		}
		if elem.Kind() == reflect.Pointer {
			elem = elem.Elem()
		}
		if elem.Kind() != reflect.Struct || reflect.PointerTo(elem).Implements(jsonMarshaler) {
			return nil, fmt.Errorf("%s: a %s has no fields to name (a map, a value, or its own JSON form): support it whole", path, elem)
		}
		sub, err := child.compile(elem, path)
		if err != nil {
			return nil, err
		}
		if len(sub.fields) > 0 { // else every field of it is supported
			sc.fields = append(sc.fields, fieldCheck{name: f.name, index: f.index, under: sub})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(n.children)) {
		if !known[name] {
			return nil, fmt.Errorf("%s: %s has no field %q", joinPath(at, name), t, name)
		}
	}
	return sc, nil
}

func joinPath(at, name string) string {
	if at == "" {
		return name
	}
	return at + "." + name
}
