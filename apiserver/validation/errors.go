package validation

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// ErrorType is the class of a field error. Its value is the phrase Kubernetes prints.
type ErrorType string

const (
	// Required: a field that must be set is empty.
	Required ErrorType = "Required value"
	// Invalid: the value breaks a rule about its form or range.
	Invalid ErrorType = "Invalid value"
	// NotSupported: the value is not one of a fixed set.
	NotSupported ErrorType = "Unsupported value"
	// Duplicate: the value must be unique and is not.
	Duplicate ErrorType = "Duplicate value"
	// Forbidden: the field may not be set, or not changed, here.
	Forbidden ErrorType = "Forbidden"
	// TooLong: the value is over a size limit.
	TooLong ErrorType = "Too long"
)

// Error is one problem with one field.
type Error struct {
	Type ErrorType
	// Path is the field in the JSON form of the object: "spec.containers[0].image",
	// "metadata.labels", "data[key]".
	Path string
	// Value is the offending value, printed for Invalid, NotSupported and Duplicate;
	// nil omits it.
	Value any
	// Detail says why, or what is allowed.
	Detail string
}

// Error renders the error the way Kubernetes' field.Error does:
// `spec.replicas: Invalid value: -1: must be greater than or equal to 0`.
func (e *Error) Error() string {
	s := e.Path + ": " + string(e.Type)
	switch e.Type {
	case Invalid, NotSupported, Duplicate:
		if e.Value != nil {
			s += ": " + formatValue(e.Value)
		}
	}
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

func formatValue(v any) string {
	switch t := v.(type) {
	case string:
		return strconv.Quote(t)
	case int, int32, int64, float64, bool:
		return fmt.Sprint(t)
	case fmt.Stringer:
		return t.String()
	}
	return fmt.Sprintf("%#v", v)
}

// ErrorList is every problem found in one object. It is the error Validate and its
// siblings return, so callers can errors.As it and look at the paths.
type ErrorList []*Error

// Error joins the problems with "; ", in the order they were found.
func (l ErrorList) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Paths lists the paths of the errors, in order.
func (l ErrorList) Paths() []string {
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = e.Path
	}
	return out
}

// err returns l as an error, or nil when it is empty (never a nil ErrorList in an error).
func (l ErrorList) err() error {
	if len(l) == 0 {
		return nil
	}
	return l
}

// path builds field paths. The empty path is the object itself.
type path string

func (p path) child(name string) path {
	if p == "" {
		return path(name)
	}
	return p + "." + path(name)
}

func (p path) index(i int) path { return p + path("["+strconv.Itoa(i)+"]") }

func (p path) key(k string) path { return p + path("["+k+"]") }

// errs collects errors while walking an object.
type errs struct{ list ErrorList }

func (e *errs) add(t ErrorType, p path, value any, detail string) {
	e.list = append(e.list, &Error{Type: t, Path: string(p), Value: value, Detail: detail})
}

func (e *errs) required(p path, detail string) { e.add(Required, p, nil, detail) }

func (e *errs) invalid(p path, value any, detail string) { e.add(Invalid, p, value, detail) }

func (e *errs) forbidden(p path, detail string) { e.add(Forbidden, p, nil, detail) }

func (e *errs) duplicate(p path, value any) { e.add(Duplicate, p, value, "") }

func (e *errs) tooLong(p path, max int) {
	e.add(TooLong, p, nil, fmt.Sprintf("must have at most %d bytes", max))
}

// oneOf reports NotSupported unless v is one of supported.
func (e *errs) oneOf(p path, v string, supported ...string) {
	for _, s := range supported {
		if v == s {
			return
		}
	}
	quoted := make([]string, len(supported))
	for i, s := range supported {
		quoted[i] = strconv.Quote(s)
	}
	sort.Strings(quoted)
	e.add(NotSupported, p, v, "supported values: "+strings.Join(quoted, ", "))
}

func (e *errs) nonNegative(p path, v int64) {
	if v < 0 {
		e.invalid(p, v, "must be greater than or equal to 0")
	}
}

// sortedKeys gives map iteration a stable order, so error lists are deterministic.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
