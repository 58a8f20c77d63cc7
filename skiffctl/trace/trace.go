// Package trace reconstructs the chain of events behind a Deployment — the ten steps
// from the API server storing it to the kubelet reporting its pods Running — from the
// objects' timestamps and the Events each component records, and renders it as a
// timeline (text or JSON) for `skiffctl trace`.
package trace

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/skiffhq/skiff/client"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
)

// RevisionAnnotation is the Deployment controller's revision number on ReplicaSets.
const RevisionAnnotation = "deployment.kubernetes.io/revision"

// Step is one entry of the chain. Steps is one step number, or several that one entry
// covers (2–3: the Deployment controller sees the Deployment and writes a ReplicaSet).
type Step struct {
	Steps           []int     `json:"-"`
	Title           string    `json:"title"`
	Component       string    `json:"component"`
	Node            string    `json:"node"`
	Object          string    `json:"object"`
	ResourceVersion string    `json:"resourceVersion"`
	Time            time.Time `json:"time"`
	SinceStartMs    float64   `json:"sinceStartMs"`
	// SincePreviousMs is the step's own duration: from the previous step to this one.
	SincePreviousMs float64 `json:"sincePreviousMs"`
	// Missing is set when the step has not happened (yet) or left no trace.
	Missing bool `json:"missing,omitempty"`
}

// MarshalJSON writes "step" as a number, or a list for a combined entry.
func (s Step) MarshalJSON() ([]byte, error) {
	type plain Step
	var step any = s.Steps
	if len(s.Steps) == 1 {
		step = s.Steps[0]
	}
	b, err := json.Marshal(plain(s))
	if err != nil {
		return nil, err
	}
	head, err := json.Marshal(map[string]any{"step": step})
	if err != nil {
		return nil, err
	}
	return append(head[:len(head)-1], append([]byte{','}, b[1:]...)...), nil
}

// Label is how the text timeline numbers a step: "1", "2-3".
func (s Step) Label() string {
	if len(s.Steps) == 1 {
		return strconv.Itoa(s.Steps[0])
	}
	return fmt.Sprintf("%d-%d", s.Steps[0], s.Steps[len(s.Steps)-1])
}

// Pod is one pod's part of the chain (steps 4–10).
type Pod struct {
	Name    string  `json:"name"`
	Node    string  `json:"node"`
	ReadyMs float64 `json:"readyMs"` // since the chain started; 0 when not ready
	Ready   bool    `json:"ready"`
	Steps   []Step  `json:"steps"`
}

// Pods summarises the pods of the ReplicaSet.
type Pods struct {
	Total   int  `json:"total"`
	Ready   int  `json:"ready"`
	First   *Pod `json:"first,omitempty"`
	Median  *Pod `json:"median,omitempty"`
	Slowest *Pod `json:"slowest,omitempty"`
}

// Trace is the chain for one Deployment revision.
type Trace struct {
	Deployment string    `json:"deployment"`
	Namespace  string    `json:"namespace"`
	Revision   int64     `json:"revision"`
	ReplicaSet string    `json:"replicaSet"`
	Start      time.Time `json:"start"`
	Steps      []Step    `json:"steps"`
	Pods       Pods      `json:"pods"`
}

// Fetch reads what a trace needs from the API servers and assembles it.
func Fetch(ctx context.Context, cs *client.Clientset, namespace, name string) (*Trace, error) {
	d, err := cs.Deployments.Get(ctx, namespace, name)
	if err != nil {
		if client.IsNotFound(err) {
			return nil, fmt.Errorf("deployment %q not found", name)
		}
		return nil, err
	}
	rss, err := cs.ReplicaSets.List(ctx, namespace, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	pods, err := cs.Pods.List(ctx, namespace, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	events, err := cs.Events.List(ctx, namespace, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	return Assemble(d, rss.Items, pods.Items, events.Items), nil
}

func owned(obj kinds.Object, uid string) bool {
	ref := kinds.ControllerOf(obj)
	return ref != nil && ref.GetUid() == uid
}

// Assemble builds the trace of d's newest ReplicaSet from the objects and events.
func Assemble(d *corev1.Deployment, rss []*corev1.ReplicaSet, pods []*corev1.Pod, events []*corev1.Event) *Trace {
	byUID := map[string][]*corev1.Event{}
	for _, e := range events {
		uid := e.GetInvolvedObject().GetUid()
		byUID[uid] = append(byUID[uid], e)
	}
	for _, evs := range byUID {
		sort.SliceStable(evs, func(i, j int) bool { return evTime(evs[i]).Before(evTime(evs[j])) })
	}
	md := d.GetMetadata()
	t := &Trace{Deployment: md.GetName(), Namespace: md.GetNamespace(), Start: md.GetCreationTimestamp().AsTime()}
	var rs *corev1.ReplicaSet
	for _, r := range rss {
		if owned(r, md.GetUid()) && (rs == nil || revision(r) > revision(rs)) {
			rs = r
		}
	}
	step1 := Step{Steps: []int{1}, Title: "Deployment stored", Component: "apiserver", Object: "deployment/" + md.GetName(),
		ResourceVersion: md.GetResourceVersion(), Time: t.Start}
	if rs == nil {
		t.Steps = []Step{step1, missing([]int{2, 3}, "ReplicaSet created")}
		return finish(t)
	}
	t.Revision = revision(rs)
	t.ReplicaSet = rs.GetMetadata().GetName()
	rsTime := rs.GetMetadata().GetCreationTimestamp().AsTime()
	if t.Revision > 1 {
		// A rollout: the chain starts when the controller saw the new template.
		t.Start = rsTime
		step1.Title = fmt.Sprintf("Template changed (rev %d)", t.Revision)
		step1.Time = rsTime
	}
	step23 := Step{Steps: []int{2, 3}, Title: "ReplicaSet created", Component: "controller-manager",
		Object: "replicaset/" + rs.GetMetadata().GetName(), ResourceVersion: rs.GetMetadata().GetResourceVersion(), Time: rsTime}
	if e := find(byUID[md.GetUid()], "ScalingReplicaSet", rs.GetMetadata().GetName()); e != nil {
		step23.Component, step23.Node = e.GetSource().GetComponent(), e.GetSource().GetHost()
	}
	t.Steps = []Step{step1, step23}

	var traces []*Pod
	rsEvents := byUID[rs.GetMetadata().GetUid()]
	for _, p := range pods {
		if owned(p, rs.GetMetadata().GetUid()) && p.GetMetadata().GetDeletionTimestamp() == nil {
			traces = append(traces, podTrace(t.Start, p, rsEvents, byUID[p.GetMetadata().GetUid()]))
		}
	}
	t.Pods.Total = len(traces)
	sort.SliceStable(traces, func(i, j int) bool {
		if traces[i].Ready != traces[j].Ready {
			return traces[i].Ready
		}
		return traces[i].ReadyMs < traces[j].ReadyMs
	})
	for _, p := range traces {
		if p.Ready {
			t.Pods.Ready++
		}
	}
	if len(traces) > 0 {
		t.Pods.First, t.Pods.Median, t.Pods.Slowest = traces[0], traces[len(traces)/2], traces[len(traces)-1]
		t.Steps = append(t.Steps, t.Pods.Slowest.Steps...)
	} else {
		t.Steps = append(t.Steps, missing([]int{4, 5}, "Pods created"))
	}
	return finish(t)
}

func podTrace(start time.Time, p *corev1.Pod, rsEvents, events []*corev1.Event) *Pod {
	name := p.GetMetadata().GetName()
	node := p.GetSpec().GetNodeName()
	obj := "pod/" + name
	rv := p.GetMetadata().GetResourceVersion()
	out := &Pod{Name: name, Node: node}
	created := Step{Steps: []int{4, 5}, Title: "Pod created", Component: "controller-manager", Object: obj,
		Time: p.GetMetadata().GetCreationTimestamp().AsTime()}
	if e := find(rsEvents, "SuccessfulCreate", name); e != nil {
		created.Component, created.Node = e.GetSource().GetComponent(), e.GetSource().GetHost()
	}
	scheduled := fromEvent([]int{6, 7}, "Pod bound to "+orDash(node), obj, find(events, "Scheduled", ""))
	if c := condition(p, "PodScheduled"); c != nil && c.GetStatus() == "True" {
		// The API server stamps the condition when the Bind commits; the scheduler's
		// event comes after, possibly after the kubelet has already started.
		scheduled.Time, scheduled.Missing = c.GetLastTransitionTime().AsTime(), false
		if scheduled.Component == "" {
			scheduled.Component = "scheduler"
		}
	}
	pulled := fromEvent([]int{8}, "Image ready", obj, find(events, "Pulled", ""))
	started := fromEvent([]int{9}, "Container started", obj, find(events, "Started", ""))
	ready := Step{Steps: []int{10}, Title: "Pod Running and Ready", Component: "kubelet", Node: node, Object: obj, ResourceVersion: rv, Missing: true}
	if c := condition(p, "Ready"); c != nil && c.GetStatus() == "True" {
		ready.Time, ready.Missing = c.GetLastTransitionTime().AsTime(), false
		out.Ready = true
		out.ReadyMs = ms(ready.Time.Sub(start))
	}
	out.Steps = []Step{created, scheduled, pulled, started, ready}
	return out
}

func fromEvent(steps []int, title, obj string, e *corev1.Event) Step {
	if e == nil {
		return missing(steps, title)
	}
	return Step{Steps: steps, Title: title, Component: e.GetSource().GetComponent(), Node: e.GetSource().GetHost(), Object: obj,
		ResourceVersion: e.GetInvolvedObject().GetResourceVersion(), Time: evTime(e)}
}

func missing(steps []int, title string) Step { return Step{Steps: steps, Title: title, Missing: true} }

// finish fills the relative times.
func finish(t *Trace) *Trace {
	prev := t.Start
	for i := range t.Steps {
		s := &t.Steps[i]
		if s.Missing {
			continue
		}
		s.SinceStartMs = ms(s.Time.Sub(t.Start))
		s.SincePreviousMs = ms(s.Time.Sub(prev))
		prev = s.Time
	}
	for _, p := range []*Pod{t.Pods.First, t.Pods.Median, t.Pods.Slowest} {
		if p == nil {
			continue
		}
		prev := t.Start
		for i := range p.Steps {
			s := &p.Steps[i]
			if s.Missing {
				continue
			}
			s.SinceStartMs = ms(s.Time.Sub(t.Start))
			s.SincePreviousMs = ms(s.Time.Sub(prev))
			prev = s.Time
		}
	}
	return t
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func evTime(e *corev1.Event) time.Time {
	if e.GetFirstTimestamp() != nil {
		return e.GetFirstTimestamp().AsTime()
	}
	return e.GetEventTime().AsTime()
}

// find returns the first event with reason whose message mentions about ("" for any).
func find(events []*corev1.Event, reason, about string) *corev1.Event {
	for _, e := range events {
		if e.GetReason() == reason && (about == "" || strings.Contains(e.GetMessage(), about)) {
			return e
		}
	}
	return nil
}

func condition(p *corev1.Pod, typ string) *corev1.PodCondition {
	for _, c := range p.GetStatus().GetConditions() {
		if c.GetType() == typ {
			return c
		}
	}
	return nil
}

func revision(rs *corev1.ReplicaSet) int64 {
	n, _ := strconv.ParseInt(rs.GetMetadata().GetAnnotations()[RevisionAnnotation], 10, 64)
	return n
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
