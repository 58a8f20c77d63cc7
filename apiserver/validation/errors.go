package validation

import (
	"cmp"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation/field"
)

// ErrorList is every problem found in one object, as apimachinery's field errors. It is
// the error Validate and its siblings return, so that a caller can errors.As it and read
// each problem's path and type.
type ErrorList field.ErrorList

// Error joins the problems with "; ", each as Kubernetes prints it
// (`spec.replicas: Invalid value: -1: must be greater than or equal to 0`).
func (l ErrorList) Error() string {
	parts := make([]string, len(l))
	for i, e := range l {
		parts[i] = e.Error()
	}
	return strings.Join(parts, "; ")
}

// Paths lists the field path of each problem, in order.
func (l ErrorList) Paths() []string {
	out := make([]string, len(l))
	for i, e := range l {
		out[i] = e.Field
	}
	return out
}

// asError returns errs as an error: nil when there are none, never a nil ErrorList
// inside an error.
func asError(errs field.ErrorList) error {
	if len(errs) == 0 {
		return nil
	}
	return ErrorList(sortRuns(errs))
}

// sortRuns orders each run of consecutive errors about one field by message, leaving the
// fields in the order they were checked. apimachinery's helpers for maps (labels,
// annotations, node selectors) report in map order, and the same object should always
// get the same message.
func sortRuns(errs field.ErrorList) field.ErrorList {
	for i := 0; i < len(errs); {
		j := i + 1
		for j < len(errs) && errs[j].Field == errs[i].Field {
			j++
		}
		slices.SortStableFunc(errs[i:j], func(a, b *field.Error) int { return cmp.Compare(a.Error(), b.Error()) })
		i = j
	}
	return errs
}

// oneOf reports v as not supported unless it is one of supported, which lists the
// values in the order the message prints them.
func oneOf[T ~string](p *field.Path, v T, supported ...T) field.ErrorList {
	if slices.Contains(supported, v) {
		return nil
	}
	return field.ErrorList{field.NotSupported(p, string(v), supported)}
}

// oneOfChild is oneOf at p's child name, a path made only for a value not supported:
// the checks of a valid object's enumerations make none.
func oneOfChild[T ~string](p *field.Path, name string, v T, supported ...T) field.ErrorList {
	if slices.Contains(supported, v) {
		return nil
	}
	return field.ErrorList{field.NotSupported(p.Child(name), string(v), supported)}
}

// invalidEach reports each message of one of apimachinery's Is* checks as an Invalid
// error about value.
func invalidEach(p *field.Path, value any, msgs []string) field.ErrorList {
	var errs field.ErrorList
	for _, msg := range msgs {
		errs = append(errs, field.Invalid(p, value, msg))
	}
	return errs
}
