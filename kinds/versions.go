package kinds

import (
	"fmt"
	"strings"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
)

// A kind may also be served in a second group and version over another kind's objects,
// as Kubernetes serves events.k8s.io/v1 Event over the core/v1 Events' storage: one
// store, two schemas, converted both ways. Such a kind is an Info whose Conversion
// names the stored kind and a pair of conversion functions. It is not in All — nothing
// stores, watches or controls it as its own kind, and its objects are the stored
// kind's — but in Served, which the REST API routes, describes and documents; the REST
// API converts at its edge (what it reads, it decodes as the stored kind and converts;
// what it is sent, it converts before the registry sees it), so the registry's
// defaults, validation, admission, selectors and watches stay the stored kind's.

// Conversion is how a kind served over another kind's storage reaches it.
type Conversion struct {
	// Storage is the kind the objects are stored as.
	Storage *Info
	// ToStorage converts an object of the served kind to Storage's type, FromStorage
	// back; neither shares memory with its argument. A built-in kind's never fail (the
	// two schemas say the same things); a custom kind's may (its CRD's conversion
	// webhook).
	ToStorage, FromStorage func(Object) (Object, error)
	// FieldLabels maps each field a field selector may name on the served kind to the
	// stored kind's field.
	FieldLabels map[string]string
}

// Stored is the kind in's objects are stored as: in itself, unless in is served over
// another kind's storage.
func (in *Info) Stored() *Info {
	if in.Conversion != nil {
		return in.Conversion.Storage
	}
	return in
}

// FromStorage converts obj, of in's stored kind, to in's type (obj itself when in is
// stored as itself).
func (in *Info) FromStorage(obj Object) (Object, error) {
	if in.Conversion == nil {
		return obj, nil
	}
	return in.Conversion.FromStorage(obj)
}

// ToStorage converts obj, of kind in, to its stored kind's type (obj itself when in is
// stored as itself).
func (in *Info) ToStorage(obj Object) (Object, error) {
	if in.Conversion == nil {
		return obj, nil
	}
	return in.Conversion.ToStorage(obj)
}

// EventV1 is events.k8s.io/v1's Event, served over core/v1 Events' storage.
const EventV1 = "Event.events.k8s.io"

// HorizontalPodAutoscalerV1 is autoscaling/v1's HorizontalPodAutoscaler, served over
// autoscaling/v2's storage (hpa.go).
const HorizontalPodAutoscalerV1 = "horizontalpodautoscalers.v1.autoscaling"

// versions are the kinds served over another kind's storage.
var versions = []*Info{
	withConversion(kind[eventsv1.Event](Info{Kind: Event, Group: "events.k8s.io", Version: "v1", Plural: "events", Singular: "event",
		ShortNames: []string{"ev"}, Namespaced: true}), "v1", Event, infallible(eventToCore), infallible(eventFromCore), eventFieldLabels),
	withConversion(kind[autoscalingv1.HorizontalPodAutoscaler](Info{Kind: HorizontalPodAutoscaler, Group: "autoscaling", Version: "v1",
		Plural: "horizontalpodautoscalers", Singular: "horizontalpodautoscaler", ShortNames: []string{"hpa"}, Categories: []string{"all"},
		Namespaced: true, HasStatus: true, HasSpec: true}), "autoscaling/v2", HorizontalPodAutoscaler,
		infallible(hpaToV2), infallible(hpaFromV2), map[string]string{"metadata.name": "metadata.name", "metadata.namespace": "metadata.namespace"}),
}

// infallible is a conversion that cannot fail as a Conversion's.
func infallible(convert func(Object) Object) func(Object) (Object, error) {
	return func(obj Object) (Object, error) { return convert(obj), nil }
}

// withConversion serves in over the storage of the kind of apiVersion and kind.
func withConversion(in *Info, apiVersion, kind string, to, from func(Object) (Object, error), fields map[string]string) *Info {
	for _, s := range all {
		if s.APIVersion == apiVersion && s.Kind == kind {
			in.Conversion = &Conversion{Storage: s, ToStorage: to, FromStorage: from, FieldLabels: fields}
			return in
		}
	}
	panic("kinds: no stored kind " + apiVersion + " " + kind)
}

// registerVersions names the served versions by their kind.group forms only: a plain
// name ("events") stays the stored kind's, as kubectl prefers the core group; so does a
// kind.group form of the stored kind's own group (horizontalpodautoscalers.autoscaling
// is v2's, its preferred version), which leaves the served version its
// plural.version.group form.
func registerVersions() {
	for _, in := range versions {
		for _, n := range []string{in.Plural + "." + in.Group, in.Singular + "." + in.Group, in.Kind + "." + in.Group,
			in.Plural + "." + in.Version + "." + in.Group} {
			n = strings.ToLower(n)
			if other, dup := byName[n]; dup && other == in.Conversion.Storage && other.Group == in.Group && n != strings.ToLower(in.Plural+"."+in.Version+"."+in.Group) {
				continue
			}
			if other, dup := byName[n]; dup && other != in {
				panic("kinds: duplicate name " + n)
			}
			byName[n] = in
		}
		if _, dup := byType[in.typ]; dup {
			panic(fmt.Sprintf("kinds: duplicate type %v", in.typ))
		}
		byType[in.typ] = in
	}
}

// Served returns every kind the REST API serves: All, then the kinds served over
// another kind's storage, then the custom kinds of the established CRDs (SetCustom).
func Served() []*Info { return servedWithCustom() }

var served = append(append([]*Info(nil), all...), versions...)

// Versions are the kinds served over another kind's storage.
func Versions() []*Info { return versions }

// eventFieldLabels are the fields events.k8s.io/v1 selects Events by, and their core/v1
// names (Kubernetes' pkg/apis/events/v1 field label conversion).
var eventFieldLabels = map[string]string{
	"metadata.name":             "metadata.name",
	"metadata.namespace":        "metadata.namespace",
	"reason":                    "reason",
	"regarding.kind":            "involvedObject.kind",
	"regarding.namespace":       "involvedObject.namespace",
	"regarding.name":            "involvedObject.name",
	"regarding.uid":             "involvedObject.uid",
	"regarding.apiVersion":      "involvedObject.apiVersion",
	"regarding.resourceVersion": "involvedObject.resourceVersion",
	"regarding.fieldPath":       "involvedObject.fieldPath",
	"reportingController":       "reportingComponent",
	"type":                      "type",
}

// eventToCore converts an events.k8s.io/v1 Event to core/v1's, as Kubernetes does:
// note is message, regarding involvedObject, reportingController reportingComponent,
// and the deprecated fields are core/v1's source, firstTimestamp, lastTimestamp and
// count; the rest keeps its name.
func eventToCore(obj Object) Object {
	in := obj.(*eventsv1.Event).DeepCopy()
	out := &corev1.Event{
		ObjectMeta:          in.ObjectMeta,
		InvolvedObject:      in.Regarding,
		Reason:              in.Reason,
		Message:             in.Note,
		Source:              in.DeprecatedSource,
		FirstTimestamp:      in.DeprecatedFirstTimestamp,
		LastTimestamp:       in.DeprecatedLastTimestamp,
		Count:               in.DeprecatedCount,
		Type:                in.Type,
		EventTime:           in.EventTime,
		Related:             in.Related,
		Action:              in.Action,
		ReportingController: in.ReportingController,
		ReportingInstance:   in.ReportingInstance,
	}
	if s := in.Series; s != nil {
		out.Series = &corev1.EventSeries{Count: s.Count, LastObservedTime: s.LastObservedTime}
	}
	if !in.GetObjectKind().GroupVersionKind().Empty() {
		SetTypeMeta(out)
	}
	return out
}

// eventFromCore converts a core/v1 Event to events.k8s.io/v1's (eventToCore's inverse).
func eventFromCore(obj Object) Object {
	in := obj.(*corev1.Event).DeepCopy()
	out := &eventsv1.Event{
		ObjectMeta:               in.ObjectMeta,
		EventTime:                in.EventTime,
		ReportingController:      in.ReportingController,
		ReportingInstance:        in.ReportingInstance,
		Action:                   in.Action,
		Reason:                   in.Reason,
		Regarding:                in.InvolvedObject,
		Related:                  in.Related,
		Note:                     in.Message,
		Type:                     in.Type,
		DeprecatedSource:         in.Source,
		DeprecatedFirstTimestamp: in.FirstTimestamp,
		DeprecatedLastTimestamp:  in.LastTimestamp,
		DeprecatedCount:          in.Count,
	}
	if s := in.Series; s != nil {
		out.Series = &eventsv1.EventSeries{Count: s.Count, LastObservedTime: s.LastObservedTime}
	}
	if !in.GetObjectKind().GroupVersionKind().Empty() {
		SetTypeMeta(out)
	}
	return out
}
