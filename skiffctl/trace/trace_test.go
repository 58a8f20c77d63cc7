package trace

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kinds"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// sec is an object time as Kubernetes keeps it: to the second.
func sec(ms int) metav1.Time { return metav1.NewTime(at(ms).Truncate(time.Second)) }

// event is an Event as the recorder writes it: eventTime to the microsecond, first and
// last timestamps to the second.
func event(uid types.UID, reason, msg, component, host string, ms int) *corev1.Event {
	return &corev1.Event{InvolvedObject: corev1.ObjectReference{UID: uid, ResourceVersion: "7"}, Reason: reason, Message: msg,
		Source: corev1.EventSource{Component: component, Host: host}, EventTime: metav1.NewMicroTime(at(ms)),
		FirstTimestamp: sec(ms), LastTimestamp: sec(ms)}
}

func controllerRef(owner kinds.Object) []metav1.OwnerReference {
	return []metav1.OwnerReference{kinds.NewControllerRef(owner)}
}

// fixture: a deployment whose three pods' containers started after 1.3 s, 1.95 s and
// 2.8 s, and which became ready at 1.4 s, 2.05 s and 2.9 s (the Ready condition keeps
// 1 s, 2 s and 2 s).
func fixture() (*appsv1.Deployment, []*appsv1.ReplicaSet, []*corev1.Pod, []*corev1.Event) {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "d1", ResourceVersion: "10", CreationTimestamp: sec(0)}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "default", UID: "r1", ResourceVersion: "12",
		CreationTimestamp: sec(20), Annotations: map[string]string{RevisionAnnotation: "1"}, OwnerReferences: controllerRef(d)}}
	events := []*corev1.Event{event("d1", "ScalingReplicaSet", "Scaled up replica set web-abc to 3", "controller-manager", "cp1", 21)}
	var pods []*corev1.Pod
	for i, readyAt := range []int{2900, 1400, 2050} {
		name := fmt.Sprintf("web-abc-%d", i)
		uid := types.UID(fmt.Sprintf("p%d", i))
		pods = append(pods, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid, ResourceVersion: "30", CreationTimestamp: sec(40),
				OwnerReferences: controllerRef(rs)},
			Spec: corev1.PodSpec{NodeName: "w1"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
				{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: sec(60)},
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: sec(readyAt)}}},
		})
		events = append(events,
			event("r1", "SuccessfulCreate", "Created pod: "+name, "controller-manager", "cp1", 40),
			event(uid, "Scheduled", "Successfully assigned default/"+name+" to w1", "default-scheduler", "cp2", 60),
			event(uid, "Pulled", "Container image already present", "kubelet", "w1", readyAt-200),
			event(uid, "Started", "Started container web", "kubelet", "w1", readyAt-100))
	}
	return d, []*appsv1.ReplicaSet{rs}, pods, events
}

func TestAssemble(t *testing.T) {
	tr := Assemble(fixture())
	var labels []string
	for _, s := range tr.Steps {
		labels = append(labels, s.Label())
		if s.Missing {
			t.Errorf("step %s missing", s.Label())
		}
	}
	if got := strings.Join(labels, " "); got != "1 2-3 4-5 6-7 8 9 10" {
		t.Fatalf("steps %q", got)
	}
	// Ready 1.4 s, 2.05 s and 2.9 s; the condition says 1 s, 2 s and 2 s: the first and
	// the last are raised to their Started events (1.3 s, 2.8 s).
	if tr.Pods.Total != 3 || tr.Pods.Ready != 3 || tr.Pods.First.ReadyMs != 1300 || tr.Pods.Median.ReadyMs != 2000 || tr.Pods.Slowest.ReadyMs != 2800 {
		t.Fatalf("pods %+v", tr.Pods)
	}
	s := tr.Steps
	// Steps with an event are timed by its eventTime (21 ms), not by the object's
	// creationTimestamp (to the second) nor the event's firstTimestamp (to the second).
	if s[1].Component != "controller-manager" || s[1].Node != "cp1" || s[1].SincePreviousMs != 21 || s[2].SinceStartMs != 40 {
		t.Errorf("steps 2-3, 4-5 %+v %+v", s[1], s[2])
	}
	if s[3].Component != "default-scheduler" || s[3].Node != "cp2" || s[3].SinceStartMs != 60 || s[4].SinceStartMs != 2700 ||
		s[5].SinceStartMs != 2800 || s[6].SinceStartMs != 2800 || s[6].SincePreviousMs != 0 {
		t.Errorf("steps %+v", s)
	}
	if m := tr.Pods.Median.Steps; m[4].SinceStartMs != 2000 || m[4].SincePreviousMs != 50 {
		t.Errorf("median pod's step 10 %+v (want its Ready condition's 2 s, 50 ms after Started)", m[4])
	}

	var b bytes.Buffer
	if err := WriteJSON(&b, tr); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Deployment string
		Steps      []map[string]any
		Pods       map[string]any
	}
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Deployment != "web" || len(doc.Steps) != 7 || doc.Steps[0]["step"] != 1.0 || fmt.Sprint(doc.Steps[1]["step"]) != "[2 3]" ||
		doc.Steps[0]["time"] == nil || doc.Steps[6]["sinceStartMs"] != 2800.0 || doc.Pods == nil {
		t.Fatalf("json:\n%s", b.String())
	}
	for _, k := range []string{"step", "title", "component", "node", "object", "resourceVersion", "time", "sinceStartMs"} {
		if _, ok := doc.Steps[3][k]; !ok {
			t.Errorf("json step lacks %q:\n%s", k, b.String())
		}
	}
	if got := doc.Steps[1]["time"]; got != "2026-11-25T12:00:00.021Z" {
		t.Errorf("step 2-3 time %v, want RFC 3339 with the event's fraction", got)
	}

	b.Reset()
	if err := WriteText(&b, tr, 80); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if n := utf8.RuneCountInString(line); n > 80 {
			t.Errorf("line of %d columns: %q", n, line)
		}
	}
	for _, want := range []string{"deployment default/web", "Deployment stored", "controller-manager@cp1", "default-scheduler@cp2", "pods: 3 of 3 ready", "slowest 2.80s", "web-abc-0 on w1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
}

// TestNeverEarlier: whatever the sources say, no step is shown before the one ahead of
// it, for every pod.
func TestNeverEarlier(t *testing.T) {
	tr := Assemble(fixture())
	for _, p := range []*Pod{tr.Pods.First, tr.Pods.Median, tr.Pods.Slowest} {
		prev := tr.Steps[1].Time
		for _, s := range p.Steps {
			if s.Time.Before(prev) || s.SincePreviousMs < 0 {
				t.Errorf("pod %s: step %s at %v, before %v", p.Name, s.Label(), s.Time, prev)
			}
			prev = s.Time
		}
	}
}

// TestSecondPrecisionSources: without eventTime (an Event written by an older recorder)
// a step is timed by firstTimestamp; without a Scheduled event, by the PodScheduled
// condition; either, cut to its second, is raised to the step before.
func TestSecondPrecisionSources(t *testing.T) {
	d, rss, pods, events := fixture()
	var kept []*corev1.Event
	for _, e := range events {
		switch {
		case e.Reason == "Scheduled":
			continue
		case e.Reason == "Pulled":
			e.EventTime = metav1.MicroTime{}
		}
		kept = append(kept, e)
	}
	tr := Assemble(d, rss, pods, kept)
	s := tr.Pods.Slowest.Steps // created 40 ms, scheduled (condition: 0 s), pulled 2.7 s (firstTimestamp: 2 s)
	if s[1].Missing || s[1].Component != "scheduler" || s[1].SinceStartMs != 40 || s[1].SincePreviousMs != 0 {
		t.Errorf("step 6-7 from the condition %+v", s[1])
	}
	if s[2].SinceStartMs != 2000 || s[3].SinceStartMs != 2800 {
		t.Errorf("steps 8, 9 %+v %+v (want firstTimestamp's 2 s, then 2.8 s)", s[2], s[3])
	}
}

func TestAssembleBeforeAnything(t *testing.T) {
	d, _, _, _ := fixture()
	tr := Assemble(d, nil, nil, nil)
	if len(tr.Steps) != 2 || !tr.Steps[1].Missing {
		t.Fatalf("steps %+v", tr.Steps)
	}
	var b bytes.Buffer
	WriteText(&b, tr, 80)
	if !strings.Contains(b.String(), "(not yet)") {
		t.Fatalf("text:\n%s", b.String())
	}
}

func TestDiagram(t *testing.T) {
	tr := Assemble(fixture())
	var svg bytes.Buffer
	if err := WriteSVG(&svg, tr); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		XMLName xml.Name
		Lines   []struct{} `xml:"line"`
		Texts   []string   `xml:"text"`
	}
	if err := xml.Unmarshal(svg.Bytes(), &doc); err != nil {
		t.Fatalf("not well-formed SVG: %v\n%s", err, svg.String())
	}
	if doc.XMLName.Local != "svg" || len(doc.Lines) != len(arrows) {
		t.Fatalf("svg root %q with %d arrows", doc.XMLName.Local, len(doc.Lines))
	}
	all := strings.Join(doc.Texts, "\n")
	for _, want := range []string{"API server", "Scheduler", "Kubelet", "6-7 Pod bound to w1", "+2.80s (took 100ms) kubelet@w1", "web-abc-0 on w1"} {
		if !strings.Contains(all, want) {
			t.Errorf("diagram lacks %q:\n%s", want, all)
		}
	}
	var page bytes.Buffer
	if err := WriteHTML(&page, tr); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(page.String(), "<svg") || !strings.Contains(page.String(), "Deployment stored") {
		t.Fatalf("html page:\n%s", page.String())
	}
}

// TestAssembleAfterRollout: after a template change the trace follows the new
// ReplicaSet (the highest revision), timed from its creation (the controller's
// ScalingReplicaSet event: its creationTimestamp keeps only the second), with its pods
// only.
func TestAssembleAfterRollout(t *testing.T) {
	d, rss, pods, events := fixture()
	rs2 := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-def", Namespace: "default", UID: "r2", ResourceVersion: "50",
		CreationTimestamp: sec(5000), Annotations: map[string]string{RevisionAnnotation: "2"}, OwnerReferences: controllerRef(d)}}
	pods = append(pods, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-def-0", Namespace: "default", UID: "q0", ResourceVersion: "60", CreationTimestamp: sec(5010),
			OwnerReferences: controllerRef(rs2)},
		Spec: corev1.PodSpec{NodeName: "w2"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: sec(5030)},
			{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: sec(6100)}}},
	})
	events = append(events,
		event("d1", "ScalingReplicaSet", "Scaled up replica set web-def to 1", "controller-manager", "cp3", 5001),
		event("r2", "SuccessfulCreate", "Created pod: web-def-0", "controller-manager", "cp3", 5010),
		event("q0", "Scheduled", "Successfully assigned default/web-def-0 to w2", "default-scheduler", "cp2", 5030),
		event("q0", "Started", "Started container web", "kubelet", "w2", 5500))
	// The newest is found whatever the order the ReplicaSets come in.
	tr := Assemble(d, append([]*appsv1.ReplicaSet{rs2}, rss...), pods, events)
	if tr.Revision != 2 || tr.ReplicaSet != "web-def" || !tr.Start.Equal(at(5001)) {
		t.Fatalf("trace of revision %d, ReplicaSet %q, from %v", tr.Revision, tr.ReplicaSet, tr.Start)
	}
	if tr.Steps[0].Title != "Template changed (rev 2)" || tr.Steps[1].Node != "cp3" || tr.Steps[1].SinceStartMs != 0 {
		t.Fatalf("steps 1 and 2-3: %+v %+v", tr.Steps[0], tr.Steps[1])
	}
	// Ready 6.1 s; the condition keeps 6 s: 999 ms after the change.
	if tr.Pods.Total != 1 || tr.Pods.Slowest.Name != "web-def-0" || tr.Pods.Slowest.ReadyMs != 999 {
		t.Fatalf("pods %+v (want only web-def-0, ready 999 ms after the template changed)", tr.Pods)
	}
	if last := tr.Steps[len(tr.Steps)-1]; last.SinceStartMs != 999 || last.Node != "w2" {
		t.Fatalf("last step %+v", last)
	}
}

// TestStoredEventStartsTheChain: the API server's Stored event times step 1 to the
// microsecond; the Deployment's creationTimestamp keeps only the second.
func TestStoredEventStartsTheChain(t *testing.T) {
	d, rss, pods, events := fixture()
	d.CreationTimestamp = sec(700)
	for _, e := range events {
		e.EventTime = metav1.NewMicroTime(e.EventTime.Add(700 * time.Millisecond))
	}
	events = append(events, event("d1", StoredReason, "Deployment web stored (HTTP POST from kubectl/v1.37.2)", "apiserver", "cp1", 700))
	tr := Assemble(d, rss, pods, events)
	if !tr.Start.Equal(at(700)) || tr.Steps[0].Component != "apiserver" || tr.Steps[1].SinceStartMs != 21 ||
		tr.StartedBy != "HTTP POST from kubectl/v1.37.2" {
		t.Fatalf("start %v, steps 1 and 2-3: %+v %+v (want 2-3 21 ms after the Stored event)", tr.Start, tr.Steps[0], tr.Steps[1])
	}
	// Without the event, the chain starts at the creationTimestamp's second.
	tr = Assemble(d, rss, pods, events[:len(events)-1])
	if !tr.Start.Equal(at(0)) || tr.Steps[1].SinceStartMs != 721 {
		t.Fatalf("without Stored: start %v, step 2-3 %+v", tr.Start, tr.Steps[1])
	}
}

// TestServices: the Services whose selector picks the Deployment's pods are traced with
// their endpoints; others are not.
func TestServices(t *testing.T) {
	d, rss, pods, events := fixture()
	d.Spec.Template.Labels = map[string]string{"app": "web", "tier": "front"}
	svc := func(name string, sel map[string]string) *corev1.Service {
		return &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}, Spec: corev1.ServiceSpec{Selector: sel}}
	}
	slice := func(svc string, ready ...bool) *discoveryv1.EndpointSlice {
		es := &discoveryv1.EndpointSlice{ObjectMeta: metav1.ObjectMeta{Name: svc + "-x", Labels: map[string]string{discoveryv1.LabelServiceName: svc}}}
		for _, r := range ready {
			es.Endpoints = append(es.Endpoints, discoveryv1.Endpoint{Addresses: []string{"10.42.0.1"}, Conditions: discoveryv1.EndpointConditions{Ready: new(r)}})
		}
		return es
	}
	tr := Assemble(d, rss, pods, events)
	tr.Services = ServicesOf(d, []*corev1.Service{svc("web", map[string]string{"app": "web"}), svc("db", map[string]string{"app": "db"}),
		svc("none", nil), svc("api", map[string]string{"tier": "front"})},
		[]*discoveryv1.EndpointSlice{slice("web", true, true, false), slice("db", true)})
	var b bytes.Buffer
	if err := WriteText(&b, tr, 80); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Service api: 0 of 0 endpoints ready\n", "Service web: 2 of 3 endpoints ready\n"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
	}
	if strings.Contains(b.String(), "Service db") || strings.Contains(b.String(), "Service none") {
		t.Errorf("a Service of other pods is traced:\n%s", b.String())
	}
}
