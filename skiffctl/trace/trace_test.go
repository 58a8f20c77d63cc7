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

	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
)

var t0 = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)

func at(ms int) *timestamppb.Timestamp {
	return timestamppb.New(t0.Add(time.Duration(ms) * time.Millisecond))
}

func event(uid, reason, msg, component, host string, ms int) *corev1.Event {
	return &corev1.Event{InvolvedObject: &corev1.ObjectReference{Uid: uid, ResourceVersion: "7"}, Reason: reason, Message: msg,
		Source: &corev1.EventSource{Component: component, Host: host}, FirstTimestamp: at(ms), LastTimestamp: at(ms)}
}

// fixture: a deployment whose three pods became ready after 400, 500 and 900 ms.
func fixture() (*corev1.Deployment, []*corev1.ReplicaSet, []*corev1.Pod, []*corev1.Event) {
	d := &corev1.Deployment{Metadata: &corev1.ObjectMeta{Name: "web", Namespace: "default", Uid: "d1", ResourceVersion: "10", CreationTimestamp: at(0)}}
	rs := &corev1.ReplicaSet{Metadata: &corev1.ObjectMeta{Name: "web-abc", Namespace: "default", Uid: "r1", ResourceVersion: "12",
		CreationTimestamp: at(20), Annotations: map[string]string{RevisionAnnotation: "1"}, OwnerReferences: []*corev1.OwnerReference{kinds.NewControllerRef(d)}}}
	events := []*corev1.Event{event("d1", "ScalingReplicaSet", "Scaled up replica set web-abc to 3", "controller-manager", "cp1", 21)}
	var pods []*corev1.Pod
	for i, readyAt := range []int{900, 400, 500} {
		name := fmt.Sprintf("web-abc-%d", i)
		uid := fmt.Sprintf("p%d", i)
		pods = append(pods, &corev1.Pod{
			Metadata: &corev1.ObjectMeta{Name: name, Namespace: "default", Uid: uid, ResourceVersion: "30", CreationTimestamp: at(40),
				OwnerReferences: []*corev1.OwnerReference{kinds.NewControllerRef(rs)}},
			Spec: &corev1.PodSpec{NodeName: "w1"},
			Status: &corev1.PodStatus{Phase: "Running", Conditions: []*corev1.PodCondition{
				{Type: "PodScheduled", Status: "True", LastTransitionTime: at(60)}, {Type: "Ready", Status: "True", LastTransitionTime: at(readyAt)}}},
		})
		events = append(events,
			event("r1", "SuccessfulCreate", "Created pod: "+name, "controller-manager", "cp1", 40),
			event(uid, "Scheduled", "Successfully assigned default/"+name+" to w1", "default-scheduler", "cp2", 60),
			event(uid, "Pulled", "Container image already present", "kubelet", "w1", readyAt-200),
			event(uid, "Started", "Started container web", "kubelet", "w1", readyAt-100))
	}
	return d, []*corev1.ReplicaSet{rs}, pods, events
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
	if tr.Pods.Total != 3 || tr.Pods.Ready != 3 || tr.Pods.First.ReadyMs != 400 || tr.Pods.Median.ReadyMs != 500 || tr.Pods.Slowest.ReadyMs != 900 {
		t.Fatalf("pods %+v", tr.Pods)
	}
	s := tr.Steps
	if s[1].Component != "controller-manager" || s[1].Node != "cp1" || s[1].SincePreviousMs != 20 {
		t.Errorf("step 2-3 %+v", s[1])
	}
	if s[3].Component != "default-scheduler" || s[3].Node != "cp2" || s[6].SinceStartMs != 900 || s[6].SincePreviousMs != 100 {
		t.Errorf("steps %+v", s)
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
		doc.Steps[0]["time"] == nil || doc.Steps[6]["sinceStartMs"] != 900.0 || doc.Pods == nil {
		t.Fatalf("json:\n%s", b.String())
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
	for _, want := range []string{"deployment default/web", "Deployment stored", "controller-manager@cp1", "default-scheduler@cp2", "pods: 3 of 3 ready", "slowest 900ms", "web-abc-0 on w1"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("text lacks %q:\n%s", want, b.String())
		}
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
	for _, want := range []string{"API server", "Scheduler", "Kubelet", "6-7 Pod bound to w1", "+900ms (took 100ms) kubelet@w1", "web-abc-0 on w1"} {
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
// ReplicaSet (the highest revision), timed from its creation, with its pods only.
func TestAssembleAfterRollout(t *testing.T) {
	d, rss, pods, events := fixture()
	rs2 := &corev1.ReplicaSet{Metadata: &corev1.ObjectMeta{Name: "web-def", Namespace: "default", Uid: "r2", ResourceVersion: "50",
		CreationTimestamp: at(5000), Annotations: map[string]string{RevisionAnnotation: "2"}, OwnerReferences: []*corev1.OwnerReference{kinds.NewControllerRef(d)}}}
	pods = append(pods, &corev1.Pod{
		Metadata: &corev1.ObjectMeta{Name: "web-def-0", Namespace: "default", Uid: "q0", ResourceVersion: "60", CreationTimestamp: at(5010),
			OwnerReferences: []*corev1.OwnerReference{kinds.NewControllerRef(rs2)}},
		Spec: &corev1.PodSpec{NodeName: "w2"},
		Status: &corev1.PodStatus{Phase: "Running", Conditions: []*corev1.PodCondition{
			{Type: "PodScheduled", Status: "True", LastTransitionTime: at(5030)}, {Type: "Ready", Status: "True", LastTransitionTime: at(5600)}}},
	})
	events = append(events,
		event("d1", "ScalingReplicaSet", "Scaled up replica set web-def to 1", "controller-manager", "cp3", 5001),
		event("r2", "SuccessfulCreate", "Created pod: web-def-0", "controller-manager", "cp3", 5010),
		event("q0", "Scheduled", "Successfully assigned default/web-def-0 to w2", "default-scheduler", "cp2", 5030),
		event("q0", "Started", "Started container web", "kubelet", "w2", 5500))
	// The newest is found whatever the order the ReplicaSets come in.
	tr := Assemble(d, append([]*corev1.ReplicaSet{rs2}, rss...), pods, events)
	if tr.Revision != 2 || tr.ReplicaSet != "web-def" || !tr.Start.Equal(t0.Add(5000*time.Millisecond)) {
		t.Fatalf("trace of revision %d, ReplicaSet %q, from %v", tr.Revision, tr.ReplicaSet, tr.Start)
	}
	if tr.Steps[0].Title != "Template changed (rev 2)" || tr.Steps[1].Node != "cp3" {
		t.Fatalf("steps 1 and 2-3: %+v %+v", tr.Steps[0], tr.Steps[1])
	}
	if tr.Pods.Total != 1 || tr.Pods.Slowest.Name != "web-def-0" || tr.Pods.Slowest.ReadyMs != 600 {
		t.Fatalf("pods %+v (want only web-def-0, ready 600 ms after the template changed)", tr.Pods)
	}
	if last := tr.Steps[len(tr.Steps)-1]; last.SinceStartMs != 600 || last.Node != "w2" {
		t.Fatalf("last step %+v", last)
	}
}
