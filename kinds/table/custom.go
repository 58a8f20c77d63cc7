package table

import (
	"bytes"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/jsonpath"

	"github.com/skiffhq/skiff/kinds"
)

// customColumns are a custom kind's columns, as Kubernetes' apiextensions-apiserver
// prints them: Name, the version's additionalPrinterColumns (each a JSONPath into the
// object), or Age alone when it names none.
func customColumns(info *kinds.Info) []Column {
	cols := []Column{nameCol}
	defs := info.Custom.Version.AdditionalPrinterColumns
	if len(defs) == 0 {
		return append(cols, Column{metav1.TableColumnDefinition{Name: "Age", Type: "date", Description: metaDoc["creationTimestamp"]},
			func(o kinds.Object, _ time.Time) any { return o.GetCreationTimestamp().UTC().Format(time.RFC3339) }})
	}
	for _, d := range defs {
		jp := jsonpath.New(d.Name).AllowMissingKeys(true)
		if err := jp.Parse(fmt.Sprintf("{%s}", d.JSONPath)); err != nil {
			continue // the CRD's validation refuses such a path
		}
		typ := d.Type
		cols = append(cols, Column{metav1.TableColumnDefinition{Name: d.Name, Type: typ, Format: d.Format, Description: d.Description, Priority: d.Priority},
			func(o kinds.Object, _ time.Time) any { return customCell(jp, typ, o) }})
	}
	return cols
}

// customCell is a column's value in obj: the JSONPath's results, formatted as
// Kubernetes' table convertor formats them (nil when there is none).
func customCell(jp *jsonpath.JSONPath, typ string, obj kinds.Object) any {
	c, ok := obj.(*kinds.Custom)
	if !ok {
		return nil
	}
	data := map[string]any{}
	for k, v := range c.Content {
		data[k] = v
	}
	var meta map[string]any
	if js, err := json.Marshal(&c.ObjectMeta); err == nil {
		_ = json.Unmarshal(js, &meta)
	}
	data["metadata"], data["apiVersion"], data["kind"] = meta, c.APIVersion, c.Kind
	results, err := jp.FindResults(data)
	if err != nil || len(results) == 0 || len(results[0]) == 0 {
		return nil
	}
	if len(results[0]) == 1 {
		v := results[0][0].Interface()
		switch typ {
		case "integer":
			if n, ok := v.(int64); ok {
				return n
			}
		case "number":
			if n, ok := v.(float64); ok {
				return n
			}
		case "boolean":
			if b, ok := v.(bool); ok {
				return b
			}
		case "string", "date":
			if s, ok := v.(string); ok {
				return s
			}
		}
	}
	var buf bytes.Buffer
	var parts []string
	for _, r := range results[0] {
		buf.Reset()
		if r.Kind() == reflect.String {
			parts = append(parts, r.String())
			continue
		}
		fmt.Fprint(&buf, r.Interface())
		parts = append(parts, buf.String())
	}
	return strings.Join(parts, ",")
}
