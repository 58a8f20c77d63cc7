package labels

import (
	"fmt"
	"sort"
	"strings"
)

// FieldRequirement is one clause of a field selector: field = value or field != value.
type FieldRequirement struct {
	Field  string
	Value  string
	Negate bool
}

// FieldSelector is a conjunction of field equalities, as Kubernetes' fields.Selector.
// The zero FieldSelector matches everything.
type FieldSelector []FieldRequirement

// ParseFields reads "f1=v1,f2!=v2" (== is accepted for =). Only fields in allowed may
// appear; an empty allowed list allows every field.
func ParseFields(text string, allowed ...string) (FieldSelector, error) {
	if strings.TrimSpace(text) == "" {
		return nil, nil
	}
	var out FieldSelector
	for _, part := range strings.Split(text, ",") {
		part = strings.TrimSpace(part)
		var r FieldRequirement
		switch {
		case strings.Contains(part, "!="):
			i := strings.Index(part, "!=")
			r = FieldRequirement{Field: part[:i], Value: part[i+2:], Negate: true}
		case strings.Contains(part, "=="):
			i := strings.Index(part, "==")
			r = FieldRequirement{Field: part[:i], Value: part[i+2:]}
		case strings.Contains(part, "="):
			i := strings.Index(part, "=")
			r = FieldRequirement{Field: part[:i], Value: part[i+1:]}
		default:
			return nil, fmt.Errorf("field selector %q: %q is not field=value or field!=value", text, part)
		}
		r.Field, r.Value = strings.TrimSpace(r.Field), strings.TrimSpace(r.Value)
		if r.Field == "" {
			return nil, fmt.Errorf("field selector %q: empty field name", text)
		}
		if len(allowed) > 0 && !containsString(allowed, r.Field) {
			return nil, fmt.Errorf("field selector %q: field %q is not supported (supported: %s)",
				text, r.Field, strings.Join(allowed, ", "))
		}
		out = append(out, r)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// Matches reports whether the object's field values satisfy every clause. A field
// absent from fields has the value "".
func (s FieldSelector) Matches(fields map[string]string) bool {
	for _, r := range s {
		if (fields[r.Field] == r.Value) == r.Negate {
			return false
		}
	}
	return true
}

// Equal returns the value a clause requires field to equal, if there is one.
func (s FieldSelector) Equal(field string) (string, bool) {
	for _, r := range s {
		if r.Field == field && !r.Negate {
			return r.Value, true
		}
	}
	return "", false
}

func (s FieldSelector) String() string {
	parts := make([]string, len(s))
	for i, r := range s {
		op := "="
		if r.Negate {
			op = "!="
		}
		parts[i] = r.Field + op + r.Value
	}
	return strings.Join(parts, ",")
}
