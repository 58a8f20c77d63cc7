package apiserver

import (
	"errors"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
)

// A kind served over another kind's storage (kinds.Conversion: events.k8s.io/v1 Event
// over core/v1 Events') is converted at the REST API's edge, so that the registry
// below sees only the stored kind: a request's object is converted to the stored kind
// before it is created, updated or patched (a patch applies to the served kind's form
// of the current object, and its result is converted back); what is read, listed or
// watched is decoded as the stored kind and converted (decode, respondList, table); a
// field selector is rewritten in the stored kind's fields (storageFieldSelector). The
// served kind adds its own rules to the stored kind's validation (versionRules), and
// its errors name it. A kind stored as itself passes each step unchanged, at the cost of
// a nil check.

// versionRules are the rules a kind served over another's storage adds to the stored
// kind's validation, on the stored form: create checks a new object, update the next
// state of a stored one.
type versionRules struct {
	create func(obj kinds.Object) error
	update func(old, obj kinds.Object) error
}

var versionRulesOf = map[*kinds.Info]versionRules{
	kinds.MustLookup(kinds.EventV1): {
		create: func(obj kinds.Object) error { return validation.ValidateEventV1(obj.(*corev1.Event)) },
		update: func(old, obj kinds.Object) error {
			return validation.ValidateEventV1Update(old.(*corev1.Event), obj.(*corev1.Event))
		},
	},
}

// toStorage converts obj, of the served kind view, to its stored kind, checked by the
// served kind's rules for a create.
func toStorage(view *kinds.Info, obj kinds.Object) (kinds.Object, error) {
	if view.Conversion == nil {
		return obj, nil
	}
	stored, err := convertToStorage(view, obj)
	if err != nil {
		return nil, err
	}
	if rules, ok := versionRulesOf[view]; ok && rules.create != nil {
		if err := rules.create(stored); err != nil {
			return nil, invalid(view, obj.GetName(), err)
		}
	}
	return stored, nil
}

// checkVersionUpdate checks next, the next stored state of cur, by the rules of the
// served kind view.
func checkVersionUpdate(view *kinds.Info, cur, next kinds.Object) error {
	if rules, ok := versionRulesOf[view]; ok && rules.update != nil {
		if err := rules.update(cur, next); err != nil {
			return invalid(view, next.GetName(), err)
		}
	}
	return nil
}

// asVersion converts the result of an operation on the stored kind to what the served
// kind view answers: its object converted, its error naming view (for a kind stored as
// itself, the result as it is). It is a function of the result so that it takes a call's
// results as they come: asVersion(view)(a.res.create(ctx, obj, opts)).
func asVersion(view *kinds.Info) func(result, error) (result, error) {
	if view.Conversion == nil {
		return sameResult
	}
	return func(res result, err error) (result, error) { return convertResult(view, res, err) }
}

func sameResult(res result, err error) (result, error) { return res, err }

func convertResult(view *kinds.Info, res result, err error) (result, error) {
	if err != nil {
		return res, versionError(view, err)
	}
	if res.obj == nil && res.value == nil {
		return res, nil
	}
	obj, err := res.object()
	if err != nil {
		return res, err
	}
	if obj, err = fromStorage(view, obj); err != nil {
		return res, err
	}
	return result{info: view, obj: obj, gone: res.gone}, nil
}

// fromStorage converts obj, of view's stored kind, to view; a conversion that fails (a
// custom kind's webhook) is an API error.
func fromStorage(view *kinds.Info, obj kinds.Object) (kinds.Object, error) {
	out, err := view.FromStorage(obj)
	if err != nil {
		return nil, conversionFailed(err)
	}
	return out, nil
}

// convertToStorage converts obj, of kind view, to its stored kind, as fromStorage back.
func convertToStorage(view *kinds.Info, obj kinds.Object) (kinds.Object, error) {
	out, err := view.ToStorage(obj)
	if err != nil {
		return nil, conversionFailed(err)
	}
	return out, nil
}

// versionError renames the stored kind in err's message and details as view, the
// served kind the request named ("events.events.k8s.io "e" not found").
func versionError(view *kinds.Info, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) {
		return err
	}
	stored := view.Stored()
	st := &ae.status
	for _, names := range [][2]string{
		{resourceName(stored) + " ", resourceName(view) + " "},
		{stored.GroupVersionKind().GroupKind().String() + " ", view.GroupVersionKind().GroupKind().String() + " "},
	} {
		if rest, ok := strings.CutPrefix(st.Message, names[0]); ok {
			st.Message = names[1] + rest
			break
		}
	}
	if d := st.Details; d != nil && d.Group == stored.Group && (d.Kind == stored.Plural || d.Kind == stored.Kind) {
		d.Group = view.Group
	}
	return err
}

// storageFieldSelector rewrites a field selector on the served kind info's fields as one
// on its stored kind's (Kubernetes' field label conversion); a field the served kind
// does not offer is refused. It returns the stored kind, the selector and the fields it
// may name there. A custom kind's versions share their objects' content (conversion
// None) or are indexed by every version's fields at once: the selector stays, checked
// against the version asked for.
func storageFieldSelector(info *kinds.Info, sel string) (stored *kinds.Info, storedSel string, allowed []string, err error) {
	if info.Conversion == nil || info.Custom != nil {
		return info.Stored(), sel, selectable(info), nil
	}
	stored = info.Stored()
	if sel == "" {
		return stored, sel, selectable(stored), nil
	}
	s, err := fields.ParseSelector(sel)
	if err != nil {
		return nil, "", nil, badRequest("fieldSelector: %v", err)
	}
	s, err = s.Transform(func(field, value string) (string, string, error) {
		mapped, ok := info.Conversion.FieldLabels[field]
		if !ok {
			return "", "", badRequest("fieldSelector: field label not supported: %s", field)
		}
		return mapped, value, nil
	})
	if err != nil {
		return nil, "", nil, err
	}
	return stored, s.String(), selectable(stored), nil
}
