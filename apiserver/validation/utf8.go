package validation

import (
	"reflect"
	"strings"
	"sync"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/kinds"
)

// validateUTF8 refuses any string of obj that is not UTF-8: a label, an annotation, a
// ConfigMap's value, a container's command... Kubernetes' JSON cannot carry such a
// string: a client reading the object back as JSON or YAML would get other bytes than
// were written. Bytes fields (a Secret's data, a ConfigMap's binaryData) are bytes and
// may hold anything.
func validateUTF8(obj kinds.Object) field.ErrorList {
	w := utf8Walker{}
	w.walk(reflect.ValueOf(obj))
	return w.errs
}

// validateStatusUTF8 is validateUTF8 for a status write: obj's status only, as
// ValidateStatus checks nothing else (the rest is the stored object, checked when it
// was written). A pod's status write walked its whole spec and metadata again: the
// kubelet writes one a pod, and the walk was most of that write's validation.
func validateStatusUTF8(obj kinds.Object) field.ErrorList {
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return validateUTF8(obj)
	}
	f, ok := v.Elem().Type().FieldByName("Status")
	if !ok {
		return nil // no status: nothing a status write changes
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		name = f.Name
	}
	w := utf8Walker{path: []segment{{name: name}}}
	w.walk(v.Elem().FieldByIndex(f.Index))
	return w.errs
}

// utf8Walker walks an object's strings. The path to the current value is kept as a
// stack of segments and made into a field.Path only for a string found wrong: the walk
// runs on every write and allocates nothing on a valid object.
type utf8Walker struct {
	path []segment
	errs field.ErrorList
}

type segment struct {
	name           string // a field
	key            string // a map key (isKey)
	index          int    // a slice element (isIndex)
	isKey, isIndex bool
}

func (w *utf8Walker) bad(s string) {
	var p *field.Path
	for _, seg := range w.path {
		switch {
		case seg.isIndex:
			p = p.Index(seg.index)
		case seg.isKey:
			p = p.Key(seg.key)
		default:
			p = p.Child(seg.name)
		}
	}
	w.errs = append(w.errs, field.Invalid(p, s, "must be valid UTF-8"))
}

func (w *utf8Walker) walk(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			w.walk(v.Elem())
		}
	case reflect.String:
		if s := v.String(); !utf8.ValidString(s) {
			w.bad(s)
		}
	case reflect.Struct:
		for _, f := range planOf(v.Type()) {
			if f.name == "" {
				w.walk(v.Field(f.index)) // inlined, as TypeMeta
				continue
			}
			w.path = append(w.path, segment{name: f.name})
			w.walk(v.Field(f.index))
			w.path = w.path[:len(w.path)-1]
		}
	case reflect.Slice, reflect.Array:
		if !hasStrings(v.Type().Elem()) {
			return // bytes, numbers
		}
		for i := range v.Len() {
			w.path = append(w.path, segment{index: i, isIndex: true})
			w.walk(v.Index(i))
			w.path = w.path[:len(w.path)-1]
		}
	case reflect.Map:
		keys, values := v.Type().Key().Kind() == reflect.String, hasStrings(v.Type().Elem())
		if !keys && !values {
			return
		}
		if v.CanInterface() {
			if m, ok := v.Interface().(map[string]string); ok {
				w.walkStrings(m) // labels, annotations: no reflect.Value an entry
				return
			}
		}
		// One key and one value for the whole walk, set from each entry in turn: the
		// iterator's Key and Value would allocate an entry's copy each.
		iter := v.MapRange()
		k := reflect.New(v.Type().Key()).Elem()
		var val reflect.Value
		if values {
			val = reflect.New(v.Type().Elem()).Elem()
		}
		for iter.Next() {
			k.SetIterKey(iter)
			if keys && !utf8.ValidString(k.String()) {
				w.bad(k.String()) // reported at the map
				continue
			}
			if values {
				val.SetIterValue(iter)
				w.path = append(w.path, segment{key: k.String(), isKey: true})
				w.walk(val)
				w.path = w.path[:len(w.path)-1]
			}
		}
	}
}

// walkStrings walks a map of strings to strings as walk would.
func (w *utf8Walker) walkStrings(m map[string]string) {
	for k, s := range m {
		if !utf8.ValidString(k) {
			w.bad(k) // reported at the map
			continue
		}
		if !utf8.ValidString(s) {
			w.path = append(w.path, segment{key: k, isKey: true})
			w.bad(s)
			w.path = w.path[:len(w.path)-1]
		}
	}
}

// fieldPlan is a struct field that may hold strings: its index and JSON name ("" for
// an inlined struct).
type fieldPlan struct {
	index int
	name  string
}

var plans sync.Map // reflect.Type → []fieldPlan

// planOf lists the fields of struct type t that may hold strings.
func planOf(t reflect.Type) []fieldPlan {
	if p, ok := plans.Load(t); ok {
		return p.([]fieldPlan)
	}
	var out []fieldPlan
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() || !hasStrings(f.Type) {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch {
		case name == "-":
			continue
		case name == "" && f.Anonymous:
		case name == "":
			name = f.Name
		}
		out = append(out, fieldPlan{index: i, name: name})
	}
	plans.Store(t, out)
	return out
}

var stringy sync.Map // reflect.Type → bool

// hasStrings reports whether a value of type t may hold a string (not counting bytes).
func hasStrings(t reflect.Type) bool {
	if b, ok := stringy.Load(t); ok {
		return b.(bool)
	}
	stringy.Store(t, false) // a recursive type answers from its other fields
	var b bool
	switch t.Kind() {
	case reflect.String, reflect.Interface:
		b = true
	case reflect.Pointer, reflect.Slice, reflect.Array:
		b = t.Elem().Kind() != reflect.Uint8 && hasStrings(t.Elem())
	case reflect.Map:
		b = t.Key().Kind() == reflect.String || hasStrings(t.Elem())
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && hasStrings(f.Type) {
				b = true
				break
			}
		}
	}
	stringy.Store(t, b)
	return b
}
