package apiserver

import (
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/selection"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// A field selector on a custom kind's selectableFields selects by the value of the
// field in the version the list or watch asks for, as Kubernetes evaluates it (on the
// object converted to that version). With conversion None every version holds the same
// content, so the values stored beside each object (kinds.Custom.FieldsOf) answer for
// all of them. With a conversion webhook they answer only for the objects stored in the
// version asked for: the store's predicate lets the others through on those fields
// (selector's deferTo), and a convertedSelection, after the store, converts them (one
// review for a page or a watch's batch) and matches them as converted. A webhook is
// never called under the store's locks.
//
// A page may therefore hold fewer objects than its limit (Kubernetes' "may return
// fewer than the requested amount of items ... in the event all requested objects are
// filtered out"); its continue token is the store's, so the next page goes on after it.

// convertedSelection matches objects of a webhook-converted custom kind on its
// selectable fields as converted to info's version.
type convertedSelection struct {
	info *kinds.Info
	reqs []fields.Requirement // on the version's selectableFields (not metadata)
}

// convertedSelectionFor returns the selection to finish after the store for a list or
// watch of info with fieldSel, or nil when the store's predicate is exact (not a
// custom kind with a conversion webhook, or no selectable field named).
func convertedSelectionFor(info *kinds.Info, fieldSel string) *convertedSelection {
	if info.Custom == nil || fieldSel == "" {
		return nil
	}
	conv := info.Custom.CRD.Spec.Conversion
	if conv == nil || conv.Strategy != apiextensionsv1.WebhookConverter {
		return nil
	}
	sel, err := fields.ParseSelector(fieldSel)
	if err != nil {
		return nil // selector reports it
	}
	s := &convertedSelection{info: info}
	for _, r := range sel.Requirements() {
		if !isMetadataField(r.Field) {
			s.reqs = append(s.reqs, r)
		}
	}
	if len(s.reqs) == 0 {
		return nil
	}
	return s
}

func isMetadataField(f string) bool { return f == "metadata.name" || f == "metadata.namespace" }

// deferTo is the apiVersion whose stored objects the store's predicate matches exactly
// (selector's deferTo): "" when s is nil.
func (s *convertedSelection) deferTo() string {
	if s == nil {
		return ""
	}
	return s.info.APIVersion
}

// storedAPIVersion is the apiVersion a stored object was written in ("" when it cannot be
// read: then the store's predicate has its say).
func storedAPIVersion(o *store.Object) string {
	env, err := kinds.Parse(o.Value)
	if err != nil {
		return ""
	}
	return env.APIVersion
}

// matchOthers says which of objs are stored in another version than s's (those the store
// let through unmatched) and matches those, converted in one review.
func (s *convertedSelection) matchOthers(objs []*store.Object) (map[*store.Object]bool, error) {
	var others []store.Object
	var at []*store.Object
	for _, o := range objs {
		if v := storedAPIVersion(o); v != "" && v != s.info.APIVersion {
			others, at = append(others, *o), append(at, o)
		}
	}
	out := make(map[*store.Object]bool, len(at))
	if len(others) == 0 {
		return out, nil
	}
	conv, err := decodeCustom(s.info, others)
	if err != nil {
		return nil, err
	}
	for i, c := range conv {
		out[at[i]] = s.matches(c.(*kinds.Custom))
	}
	return out, nil
}

// matches evaluates s's requirements on c, an object in s's version.
func (s *convertedSelection) matches(c *kinds.Custom) bool {
	for _, r := range s.reqs {
		v, _ := c.FieldValue(r.Field)
		if (v == r.Value) == (r.Operator == selection.NotEquals) {
			return false
		}
	}
	return true
}

// filterObjects keeps the objects of a page that match as converted.
func (s *convertedSelection) filterObjects(items []store.Object) ([]store.Object, error) {
	ptrs := make([]*store.Object, len(items))
	for i := range items {
		ptrs[i] = &items[i]
	}
	m, err := s.matchOthers(ptrs)
	if err != nil {
		return nil, err
	}
	out := items[:0:0]
	for i := range items {
		if ok, other := m[&items[i]]; !other || ok {
			out = append(out, items[i])
		}
	}
	return out, nil
}

// filterEvents turns a watch's batch, selected by the store with the other versions'
// objects let through, into what a watch of the converted objects sees: an object
// entering the selection is ADDED, one leaving it DELETED (as its last state that
// matched), one outside it before and after is not seen.
func (s *convertedSelection) filterEvents(evs []store.Event) ([]store.Event, error) {
	var objs []*store.Object
	for i := range evs {
		ev := &evs[i]
		switch ev.Type {
		case store.Added:
			objs = append(objs, &ev.Object)
		case store.Deleted:
			objs = append(objs, deletedState(ev))
		case store.Modified:
			objs = append(objs, &ev.Object)
			if ev.Prev != nil {
				objs = append(objs, ev.Prev)
			}
		}
	}
	m, err := s.matchOthers(objs)
	if err != nil {
		return nil, err
	}
	match := func(o *store.Object) bool {
		ok, other := m[o]
		return !other || ok
	}
	out := evs[:0:0]
	for i := range evs {
		ev := &evs[i]
		switch ev.Type {
		case store.Added:
			if match(&ev.Object) {
				out = append(out, *ev)
			}
		case store.Deleted:
			if match(deletedState(ev)) {
				out = append(out, *ev)
			}
		case store.Modified:
			was, is := ev.Prev == nil || match(ev.Prev), match(&ev.Object)
			switch {
			case was && is:
				out = append(out, *ev)
			case is:
				out = append(out, store.Event{Type: store.Added, Revision: ev.Revision, Object: ev.Object, Applied: ev.Applied})
			case was:
				gone := *ev.Prev
				gone.ModRevision = ev.Revision
				out = append(out, store.Event{Type: store.Deleted, Revision: ev.Revision, Object: gone, Prev: ev.Prev, Applied: ev.Applied})
			}
		default:
			out = append(out, *ev)
		}
	}
	return out, nil
}

// deletedState is the state a DELETED event's object was in: its last one.
func deletedState(ev *store.Event) *store.Object {
	if ev.Prev != nil {
		return ev.Prev
	}
	return &ev.Object
}
