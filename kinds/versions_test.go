package kinds_test

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
)

// TestEventV1Conversion: events.k8s.io/v1 Event and core/v1 Event convert both ways as
// Kubernetes converts them, field by field, and round-trip unchanged.
func TestEventV1Conversion(t *testing.T) {
	v1 := kinds.MustLookup("events.events.k8s.io")
	if v1.Stored() != kinds.MustLookup(kinds.Event) || v1.APIVersion != "events.k8s.io/v1" || kinds.MustLookup("events") != v1.Stored() {
		t.Fatalf("events.k8s.io/v1 Event = %+v", v1)
	}
	at := metav1.NewMicroTime(time.Date(2026, 12, 5, 21, 0, 0, 123456000, time.UTC))
	first, last := metav1.NewTime(time.Unix(1700000000, 0)), metav1.NewTime(time.Unix(1700000100, 0))
	meta := metav1.ObjectMeta{Name: "web.1", Namespace: "default", Labels: map[string]string{"a": "b"}, UID: "u"}
	pod := corev1.ObjectReference{Kind: "Pod", Namespace: "default", Name: "web", UID: "p", APIVersion: "v1", FieldPath: "spec.containers{web}"}
	node := &corev1.ObjectReference{Kind: "Node", Name: "w1"}
	for _, tc := range []struct {
		name string
		ev   *eventsv1.Event
		core *corev1.Event
	}{
		{"every field",
			&eventsv1.Event{ObjectMeta: meta, EventTime: at, Series: &eventsv1.EventSeries{Count: 3, LastObservedTime: at},
				ReportingController: "kubelet", ReportingInstance: "kubelet-w1", Action: "Pull", Reason: "Pulled", Regarding: pod,
				Related: node, Note: "pulled nginx", Type: "Normal", DeprecatedSource: corev1.EventSource{Component: "kubelet", Host: "w1"},
				DeprecatedFirstTimestamp: first, DeprecatedLastTimestamp: last, DeprecatedCount: 4},
			&corev1.Event{ObjectMeta: meta, InvolvedObject: pod, Reason: "Pulled", Message: "pulled nginx",
				Source: corev1.EventSource{Component: "kubelet", Host: "w1"}, FirstTimestamp: first, LastTimestamp: last, Count: 4,
				Type: "Normal", EventTime: at, Series: &corev1.EventSeries{Count: 3, LastObservedTime: at}, Action: "Pull",
				Related: node, ReportingController: "kubelet", ReportingInstance: "kubelet-w1"}},
		{"empty", &eventsv1.Event{}, &corev1.Event{}},
		{"core/v1's recorder",
			&eventsv1.Event{ObjectMeta: meta, Regarding: pod, Reason: "Killing", Note: "Stopping container web", Type: "Normal",
				DeprecatedSource: corev1.EventSource{Component: "kubelet"}, DeprecatedFirstTimestamp: first, DeprecatedLastTimestamp: first, DeprecatedCount: 1},
			&corev1.Event{ObjectMeta: meta, InvolvedObject: pod, Reason: "Killing", Message: "Stopping container web", Type: "Normal",
				Source: corev1.EventSource{Component: "kubelet"}, FirstTimestamp: first, LastTimestamp: first, Count: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			core := must(v1.ToStorage(tc.ev))
			if !equality.Semantic.DeepEqual(core, tc.core) {
				t.Errorf("to core/v1 = %+v\nwant %+v", core, tc.core)
			}
			back := must(v1.FromStorage(tc.core))
			if !equality.Semantic.DeepEqual(back, tc.ev) {
				t.Errorf("from core/v1 = %+v\nwant %+v", back, tc.ev)
			}
			if round := must(v1.FromStorage(must(v1.ToStorage(tc.ev)))); !equality.Semantic.DeepEqual(round, tc.ev) {
				t.Errorf("round trip = %+v", round)
			}
			// The conversion shares no memory with its argument.
			if c := core.(*corev1.Event); c.Labels != nil {
				c.Labels["x"] = "y"
				if tc.ev.Labels["x"] != "" {
					t.Errorf("ToStorage shares labels")
				}
			}
		})
	}
	// With TypeMeta set, each side gets its own.
	ev := &eventsv1.Event{}
	kinds.SetTypeMeta(ev)
	if gvk := must(v1.ToStorage(ev)).GetObjectKind().GroupVersionKind(); gvk.GroupVersion().String() != "v1" || gvk.Kind != "Event" {
		t.Errorf("ToStorage's kind = %v", gvk)
	}
	if obj, ok := kinds.ForGroupVersionKind("events.k8s.io/v1", "Event"); !ok || obj != v1 {
		t.Errorf("ForGroupVersionKind(events.k8s.io/v1, Event) = %v, %v", obj, ok)
	}
}

// must is a conversion's result that cannot fail (a built-in kind's).
func must(obj kinds.Object, err error) kinds.Object {
	if err != nil {
		panic(err)
	}
	return obj
}
