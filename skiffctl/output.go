package skiffctl

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/manifest"
	"github.com/skiffhq/skiff/skiffctl/printers"
	"k8s.io/client-go/util/jsonpath"
)

// output writes objects in one of get's formats.
type output struct {
	format       string // "", wide, yaml, json, name, jsonpath=..., custom-columns=...
	allNS        bool
	noHeaders    bool
	showLabels   bool
	labelColumns []string
	sortBy       string

	// parsed from format by validate
	jsonpath *jsonpath.JSONPath
	columns  []customColumn
}

// customColumn is one column of -o custom-columns.
type customColumn struct {
	header string
	path   *jsonpath.JSONPath
}

// addTableFlags adds the flags that shape get's tables.
func (o *output) addTableFlags(f *pflag.FlagSet) {
	f.BoolVar(&o.noHeaders, "no-headers", false, "leave out the table's header")
	f.BoolVar(&o.showLabels, "show-labels", false, "add a LABELS column with every label")
	f.StringSliceVarP(&o.labelColumns, "label-columns", "L", nil, "add a column for each of these label keys (KEY,KEY or repeated)")
	f.StringVar(&o.sortBy, "sort-by", "", "sort by the value of a JSONPath expression (e.g. .metadata.name, {.status.replicas})")
}

const formats = "wide, yaml, json, name, jsonpath=TEMPLATE, jsonpath-file=FILE, custom-columns=SPEC, custom-columns-file=FILE"

// validate checks the format and parses its template, as kubectl does before reading
// anything.
func (o *output) validate() error {
	name, arg, hasArg := strings.Cut(o.format, "=")
	switch name {
	case "", "wide", "yaml", "json", "name":
		if !hasArg {
			return nil
		}
	case "jsonpath", "jsonpath-file", "custom-columns", "custom-columns-file":
		if !hasArg || arg == "" {
			return fmt.Errorf("--output: %s needs a value: %s=...", name, name)
		}
		if strings.HasSuffix(name, "-file") {
			b, err := os.ReadFile(arg)
			if err != nil {
				return fmt.Errorf("--output: %w", err)
			}
			arg = strings.TrimSpace(string(b))
			name = strings.TrimSuffix(name, "-file")
		}
		if name == "jsonpath" {
			jp := jsonpath.New("output").AllowMissingKeys(true)
			if err := jp.Parse(arg); err != nil {
				return fmt.Errorf("--output: error parsing jsonpath %s, %w", arg, err)
			}
			o.jsonpath = jp
			return nil
		}
		cols, err := parseCustomColumns(arg)
		if err != nil {
			return fmt.Errorf("--output: %w", err)
		}
		o.columns = cols
		return nil
	}
	return fmt.Errorf("--output: Unsupported value: %q: supported values: %s", o.format, formats)
}

// relaxed turns kubectl's relaxed JSONPath ("metadata.name", ".metadata.name",
// "{.metadata.name}") into a template, as kubectl's custom-columns and --sort-by read it.
var relaxedRE = regexp.MustCompile(`^\{\.?([^{}]+)\}$|^\.?([^{}]+)$`)

func relaxed(expr string) (*jsonpath.JSONPath, error) {
	m := relaxedRE.FindStringSubmatch(expr)
	if m == nil {
		return nil, fmt.Errorf("unexpected path string %q, expected a 'name1.name2' or '.name1.name2' or '{name1.name2}' or '{.name1.name2}'", expr)
	}
	field := m[1]
	if field == "" {
		field = m[2]
	}
	jp := jsonpath.New(expr).AllowMissingKeys(true)
	if err := jp.Parse("{." + field + "}"); err != nil {
		return nil, err
	}
	return jp, nil
}

func parseCustomColumns(spec string) ([]customColumn, error) {
	var cols []customColumn
	for _, part := range strings.Split(spec, ",") {
		header, path, ok := strings.Cut(part, ":")
		if !ok || header == "" {
			return nil, fmt.Errorf("unexpected custom-columns spec: %s, expected <header>:<json-path-expr>", part)
		}
		jp, err := relaxed(path)
		if err != nil {
			return nil, err
		}
		cols = append(cols, customColumn{header: header, path: jp})
	}
	return cols, nil
}

// group is the objects of one kind that get prints.
type group struct {
	info *kinds.Info
	objs []kinds.Object
}

// print writes groups of objects: yaml, json and jsonpath as one document (a List
// unless list is false and there is one object), names, custom columns and tables kind
// by kind. withKind names each object kind/name in tables, as kubectl does when several
// kinds were asked for.
func (g *globals) print(w io.Writer, groups []group, o output, list, withKind bool) error {
	if o.sortBy != "" {
		if err := sortGroups(groups, o.sortBy); err != nil {
			return err
		}
	}
	var objs []kinds.Object
	for _, gr := range groups {
		objs = append(objs, gr.objs...)
	}
	switch {
	case o.format == "yaml" || o.format == "json":
		enc := manifest.YAML
		if o.format == "json" {
			enc = manifest.JSON
		}
		if len(objs) == 0 && !list {
			return nil
		}
		b, err := enc(objs, list)
		if err != nil {
			return err
		}
		_, err = w.Write(b)
		return err
	case o.jsonpath != nil:
		if len(objs) == 0 && !list {
			return nil
		}
		v, err := manifest.Value(objs, list)
		if err != nil {
			return err
		}
		if err := o.jsonpath.Execute(w, v); err != nil {
			return fmt.Errorf("error executing jsonpath %q: %w", strings.TrimPrefix(o.format, "jsonpath="), err)
		}
		return nil
	case o.columns != nil:
		return printCustomColumns(w, objs, o)
	case o.format == "name":
		for _, gr := range groups {
			for _, obj := range gr.objs {
				fmt.Fprintln(w, ref(gr.info, obj.GetName()))
			}
		}
		return nil
	}
	first := true
	for _, gr := range groups {
		if len(gr.objs) == 0 && len(groups) > 1 {
			continue
		}
		if !first {
			fmt.Fprintln(w)
		}
		first = false
		err := printers.Table(w, gr.info, gr.objs, printers.TableOptions{Wide: o.format == "wide", AllNamespaces: o.allNS,
			NoHeaders: o.noHeaders, WithKind: withKind, ShowLabels: o.showLabels, LabelColumns: o.labelColumns, Now: g.now()})
		if err != nil {
			return err
		}
	}
	return nil
}

// printCustomColumns writes -o custom-columns as kubectl does: a column per
// expression, a value's several results joined by commas, <none> for none.
func printCustomColumns(w io.Writer, objs []kinds.Object, o output) error {
	tw := tabwriter.NewWriter(w, 6, 4, 3, ' ', 0) // cli-runtime's GetNewTabWriter
	if !o.noHeaders {
		hs := make([]string, len(o.columns))
		for i, c := range o.columns {
			hs[i] = c.header
		}
		fmt.Fprintln(tw, strings.Join(hs, "\t"))
	}
	for _, obj := range objs {
		tree, err := manifest.Tree(obj)
		if err != nil {
			return err
		}
		cells := make([]string, len(o.columns))
		for i, c := range o.columns {
			results, err := c.path.FindResults(tree)
			if err != nil {
				return err
			}
			var vals []string
			for _, r := range results {
				for _, v := range r {
					vals = append(vals, fmt.Sprintf("%v", v.Interface()))
				}
			}
			if len(vals) == 0 {
				vals = []string{"<none>"}
			}
			cells[i] = strings.Join(vals, ",")
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// sortGroups sorts each group's objects by the value of a relaxed JSONPath expression,
// as kubectl's --sort-by does: numbers by value, quantities by amount, other values as
// text; objects without the field first.
func sortGroups(groups []group, expr string) error {
	jp, err := relaxed(expr)
	if err != nil {
		return fmt.Errorf("--sort-by: %w", err)
	}
	for _, gr := range groups {
		keys := make([]any, len(gr.objs))
		for i, obj := range gr.objs {
			tree, err := manifest.Tree(obj)
			if err != nil {
				return err
			}
			results, err := jp.FindResults(tree)
			if err != nil {
				return fmt.Errorf("--sort-by: %w", err)
			}
			if len(results) > 0 && len(results[0]) > 0 {
				keys[i] = results[0][0].Interface()
			}
		}
		idx := make([]int, len(gr.objs))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return less(keys[idx[a]], keys[idx[b]]) })
		sorted := make([]kinds.Object, len(gr.objs))
		for i, j := range idx {
			sorted[i] = gr.objs[j]
		}
		copy(gr.objs, sorted)
	}
	return nil
}

func less(a, b any) bool {
	switch {
	case a == nil || b == nil:
		return a == nil && b != nil
	}
	if fa, ok := number(a); ok {
		if fb, ok := number(b); ok {
			return fa < fb
		}
	}
	sa, sb := fmt.Sprint(a), fmt.Sprint(b)
	if qa, err := resource.ParseQuantity(sa); err == nil {
		if qb, err := resource.ParseQuantity(sb); err == nil {
			return qa.Cmp(qb) < 0
		}
	}
	if reflect.TypeOf(a) != reflect.TypeOf(b) {
		return reflect.TypeOf(a).String() < reflect.TypeOf(b).String()
	}
	return sa < sb
}

func number(v any) (float64, bool) {
	n, ok := v.(json.Number)
	if !ok {
		return 0, false
	}
	f, err := n.Float64()
	return f, err == nil
}
