package skiffctl

import (
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/kinds"
)

func explainCmd(g *globals) *cobra.Command {
	var recursive bool
	cmd := &cobra.Command{
		Use:   "explain KIND[.FIELD...]",
		Short: "Document a kind and its fields",
		Long: `Describe a kind, or one of its fields, as kubectl explain does: the field's type and
documentation, and its own fields. The documentation is Kubernetes' own, from the
k8s.io/api types Skiff serves. --recursive lists every field below, by name and type.`,
		Example: `  skiffctl explain deployment.spec.strategy
  skiffctl explain pods.spec.containers --recursive`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path := strings.Split(args[0], ".")
			info, err := kind(path[0])
			if err != nil {
				return err
			}
			return explain(g.streams.Out, info, path[1:], recursive)
		},
	}
	cmd.Flags().BoolVar(&recursive, "recursive", false, "list every field below, by name and type")
	return cmd
}

// field is one field of a documented type.
type field struct {
	name string
	typ  reflect.Type
	doc  string
}

// leafTypes are the types that read as values, not as objects with fields.
var leafTypes = map[reflect.Type]string{
	reflect.TypeOf(resource.Quantity{}):    "Quantity",
	reflect.TypeOf(intstr.IntOrString{}):   "IntOrString",
	reflect.TypeOf(metav1.Time{}):          "string",
	reflect.TypeOf(metav1.MicroTime{}):     "string",
	reflect.TypeOf(metav1.Duration{}):      "string",
	reflect.TypeOf(metav1.FieldsV1{}):      "Object",
	reflect.TypeOf([]byte(nil)):            "string",
	reflect.TypeOf(map[string][]byte(nil)): "map[string]string",
}

// elem is the type a field holds once pointers and lists are looked through.
func elem(t reflect.Type) reflect.Type {
	for {
		if _, leaf := leafTypes[t]; leaf {
			return t
		}
		switch t.Kind() {
		case reflect.Pointer, reflect.Slice:
			t = t.Elem()
		default:
			return t
		}
	}
}

// typeName is how explain names a type: <string>, <integer>, <[]Container>, <Object>.
func typeName(t reflect.Type) string {
	if n, ok := leafTypes[t]; ok {
		return n
	}
	switch t.Kind() {
	case reflect.Pointer:
		return typeName(t.Elem())
	case reflect.Slice:
		return "[]" + typeName(t.Elem())
	case reflect.Map:
		return "map[string]" + typeName(t.Elem())
	case reflect.String:
		return "string"
	case reflect.Bool:
		return "boolean"
	case reflect.Int, reflect.Int32, reflect.Int64, reflect.Uint32, reflect.Uint64:
		return "integer"
	case reflect.Float32, reflect.Float64:
		return "number"
	case reflect.Struct:
		return t.Name()
	}
	return "Object"
}

// swaggerDoc is the generated documentation of a k8s.io type: "" for the type, else by
// JSON field name.
func swaggerDoc(t reflect.Type) map[string]string {
	if t.Kind() != reflect.Struct {
		return nil
	}
	if d, ok := reflect.New(t).Elem().Interface().(interface{ SwaggerDoc() map[string]string }); ok {
		return d.SwaggerDoc()
	}
	return nil
}

// fields lists a struct's fields by JSON name, inlined structs' included.
func fields(t reflect.Type) []field {
	if t.Kind() != reflect.Struct {
		return nil
	}
	if _, leaf := leafTypes[t]; leaf {
		return nil
	}
	docs := swaggerDoc(t)
	var out []field
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		switch {
		case name == "-" || !f.IsExported():
			continue
		case name == "" && (strings.Contains(opts, "inline") || f.Anonymous):
			out = append(out, fields(f.Type)...)
			continue
		case name == "":
			name = f.Name
		}
		out = append(out, field{name: name, typ: f.Type, doc: docs[name]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func explain(w io.Writer, info *kinds.Info, path []string, recursive bool) error {
	t := reflect.TypeOf(info.New()).Elem()
	var at *field
	walked := []string{info.Plural}
	for _, p := range path {
		var next *field
		for _, f := range fields(elem(t)) {
			if f.name == p {
				next = &f
				break
			}
		}
		if next == nil {
			return fmt.Errorf("field %q does not exist in %s", p, strings.Join(walked, "."))
		}
		walked = append(walked, p)
		at, t = next, next.typ
	}
	if info.Group != "" {
		fmt.Fprintf(w, "GROUP:      %s\n", info.Group)
	}
	fmt.Fprintf(w, "KIND:       %s\nVERSION:    %s\n\n", info.Kind, info.Version)
	doc := swaggerDoc(elem(t))[""]
	if at != nil {
		fmt.Fprintf(w, "FIELD: %s <%s>\n\n", at.name, typeName(at.typ))
		if at.doc != "" && doc != "" {
			doc = at.doc + "\n" + doc
		} else if at.doc != "" {
			doc = at.doc
		}
	}
	fmt.Fprintln(w, "DESCRIPTION:")
	if doc == "" {
		doc = "<empty>"
	}
	writeWrapped(w, doc, "    ")
	fs := fields(elem(t))
	if len(fs) == 0 {
		return nil
	}
	fmt.Fprintln(w, "    \nFIELDS:")
	if recursive {
		writeTree(w, elem(t), "  ", map[reflect.Type]bool{})
		return nil
	}
	for _, f := range fs {
		fmt.Fprintf(w, "  %s\t<%s>\n", f.name, typeName(f.typ))
		if f.doc != "" {
			writeWrapped(w, f.doc, "    ")
		}
		fmt.Fprintln(w)
	}
	return nil
}

// writeTree lists the fields below t, indented by depth, as explain --recursive does.
func writeTree(w io.Writer, t reflect.Type, indent string, seen map[reflect.Type]bool) {
	if seen[t] {
		return // a recursive type (JSONSchemaProps-like) is listed once
	}
	seen[t] = true
	defer delete(seen, t)
	for _, f := range fields(t) {
		fmt.Fprintf(w, "%s%s\t<%s>\n", indent, f.name, typeName(f.typ))
		writeTree(w, elem(f.typ), indent+"  ", seen)
	}
}

// writeWrapped writes text wrapped at 80 columns, each line indented.
func writeWrapped(w io.Writer, text, indent string) {
	for _, para := range strings.Split(text, "\n") {
		line := indent
		for _, word := range strings.Fields(para) {
			if len(line) > len(indent) && len(line)+1+len(word) > 80 {
				fmt.Fprintln(w, line)
				line = indent
			}
			if len(line) > len(indent) {
				line += " "
			}
			line += word
		}
		fmt.Fprintln(w, line)
	}
}
