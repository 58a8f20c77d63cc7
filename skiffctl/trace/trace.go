// Package trace reconstructs the chain of events behind a Deployment — the ten steps
// from the API server storing it to the kubelet reporting its pods Running — from the
// objects' timestamps and the Events each component records, and renders it as a
// timeline (text, JSON or a diagram) for `skiffctl trace`.
//
// Each step is timed from the most precise record of it. Kubernetes keeps object times
// (metadata.creationTimestamp, a condition's lastTransitionTime) to the second, on the
// wire and in storage, while an Event's eventTime keeps the microsecond. So the steps
// that record an Event are timed by its eventTime: Stored, which the API server records
// in the transaction that stores the Deployment (step 1), ScalingReplicaSet (steps 2–3;
// for a later revision, also the rollout's start), SuccessfulCreate (4–5), Scheduled
// (6–7), Pulled (8) and Started (9). The pod's Ready condition (step 10) is to the second,
// and an object time stands in for an event that is missing (the Deployment's
// creationTimestamp, from a server older than the Stored event; a pod's
// creationTimestamp when its SuccessfulCreate was combined with similar events). A step is never shown before the
// step ahead of it: a time to the second, cut down to its second, is raised to the
// previous step's time (its own duration then shows as 0).
package trace

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// StoredReason is the reason of the Event the API server records when it stores a
// Deployment (apiserver.ReasonStored).
const StoredReason = "Stored"

// storedByRE finds the request a Stored event names.
var storedByRE = regexp.MustCompile(` stored \((.+)\)$`)

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

// Trace is the chain for one revision of a Deployment, DaemonSet or StatefulSet.
type Trace struct {
	// Kind and Name are the workload's: Deployment, DaemonSet or StatefulSet.
	Kind string `json:"kind"`
	Name string `json:"name"`
	// Deployment is the Deployment's name, in a Deployment's trace.
	Deployment string `json:"deployment,omitempty"`
	Namespace  string `json:"namespace"`
	Revision   int64  `json:"revision"`
	// ReplicaSet is the Deployment's newest ReplicaSet; ControllerRevision a DaemonSet's
	// or StatefulSet's newest revision: what the controller writes at steps 2–3.
	ReplicaSet         string    `json:"replicaSet,omitempty"`
	ControllerRevision string    `json:"controllerRevision,omitempty"`
	Start              time.Time `json:"start"`
	// StartedBy is the request that stored the workload, as the API server recorded
	// it: "HTTP POST from kubectl/v1.37.2", "gRPC Create from skiffctl" ("" unknown).
	StartedBy string `json:"startedBy,omitempty"`
	Steps     []Step `json:"steps"`
	Pods      Pods   `json:"pods"`
	// Services are those whose selector picks the Deployment's pods.
	Services []Service `json:"services,omitempty"`

	// Job is the Job of a Job's or CronJob's trace (a CronJob's newest).
	Job string `json:"job,omitempty"`
}

// Service is a Service of the Deployment's pods and its endpoints, from its
// EndpointSlices.
type Service struct {
	Name  string `json:"name"`
	Ready int    `json:"ready"`
	Total int    `json:"total"`
}

// Child is what the controller wrote at steps 2–3: "replicaset NAME" or
// "controllerrevision NAME"; "" before it did.
func (t *Trace) Child() string {
	switch {
	case t.ReplicaSet != "":
		return "replicaset " + t.ReplicaSet
	case t.ControllerRevision != "":
		return "controllerrevision " + t.ControllerRevision
	}
	return ""
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
	t := Assemble(d, rss.Items, pods.Items, events.Items)
	svcs, err := cs.Services.List(ctx, namespace, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	slices, err := cs.EndpointSlices.List(ctx, namespace, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	t.Services = ServicesOf(d, svcs.Items, slices.Items)
	return t, nil
}

// ServicesOf are the Services whose selector picks d's pods, by name, with their
// endpoints: ready ones and all.
func ServicesOf(d *appsv1.Deployment, svcs []*corev1.Service, slices []*discoveryv1.EndpointSlice) []Service {
	var out []Service
	podLabels := labels.Set(d.Spec.Template.Labels)
	for _, svc := range svcs {
		if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
			continue
		}
		s := Service{Name: svc.Name}
		for _, es := range slices {
			if es.Labels[discoveryv1.LabelServiceName] != svc.Name {
				continue
			}
			for _, e := range es.Endpoints {
				s.Total++
				if e.Conditions.Ready == nil || *e.Conditions.Ready {
					s.Ready++
				}
			}
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func owned(obj metav1.Object, uid types.UID) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && ref.UID == uid
}

// eventsByObject groups events by the UID of their object, oldest first.
func eventsByObject(events []*corev1.Event) map[types.UID][]*corev1.Event {
	byUID := map[types.UID][]*corev1.Event{}
	for _, e := range events {
		uid := e.InvolvedObject.UID
		byUID[uid] = append(byUID[uid], e)
	}
	for _, evs := range byUID {
		// Generic, not sort.SliceStable: a rollout of 10,000 pods is 10,000 small groups,
		// and reflection's swapper for each was a tenth of a live map's update.
		if len(evs) > 1 {
			slices.SortStableFunc(evs, func(a, b *corev1.Event) int { return evTime(a).Compare(evTime(b)) })
		}
	}
	return byUID
}

// Assemble builds the trace of d's newest ReplicaSet from the objects and events.
func Assemble(d *appsv1.Deployment, rss []*appsv1.ReplicaSet, pods []*corev1.Pod, events []*corev1.Event) *Trace {
	byUID := eventsByObject(events)
	t := &Trace{Kind: kinds.Deployment, Name: d.Name, Deployment: d.Name, Namespace: d.Namespace, Start: d.CreationTimestamp.Time}
	if e := find(byUID[d.UID], StoredReason, ""); e != nil {
		t.Start = evTime(e)
		// "Deployment web stored (HTTP POST from kubectl/v1.37.2)": the request it came by.
		if m := storedByRE.FindStringSubmatch(e.Message); m != nil {
			t.StartedBy = m[1]
		}
	}
	var rs *appsv1.ReplicaSet
	for _, r := range rss {
		if owned(r, d.UID) && (rs == nil || revision(r) > revision(rs)) {
			rs = r
		}
	}
	step1 := Step{Steps: []int{1}, Title: "Deployment stored", Component: "apiserver", Object: "deployment/" + d.Name,
		ResourceVersion: d.ResourceVersion, Time: t.Start}
	if rs == nil {
		t.Steps = []Step{step1, missing([]int{2, 3}, "ReplicaSet created")}
		return finish(t)
	}
	t.Revision = revision(rs)
	t.ReplicaSet = rs.Name
	step23 := Step{Steps: []int{2, 3}, Title: "ReplicaSet created", Component: "controller-manager",
		Object: "replicaset/" + rs.Name, ResourceVersion: rs.ResourceVersion, Time: rs.CreationTimestamp.Time}
	if e := find(byUID[d.UID], "ScalingReplicaSet", rs.Name); e != nil {
		step23.Component, step23.Node, step23.Time = e.Source.Component, e.Source.Host, evTime(e)
	}
	if t.Revision > 1 {
		// A rollout: the chain starts when the controller saw the new template.
		t.Start = step23.Time
		step1.Title = fmt.Sprintf("Template changed (rev %d)", t.Revision)
		step1.Time = t.Start
	}
	step23.Time = notBefore(step23.Time, step1.Time)
	t.Steps = []Step{step1, step23}

	rsEvents := byUID[rs.UID]
	summarise(t, step23.Time, pods, func(p *corev1.Pod) bool { return owned(p, rs.UID) }, rsEvents, byUID)
	return finish(t)
}

// summarise adds the pods that mine selects (made at step 4–5 with a SuccessfulCreate
// among creates): their summary, and the slowest pod's steps as the chain's 4–10.
func summarise(t *Trace, prev time.Time, pods []*corev1.Pod, mine func(*corev1.Pod) bool, creates []*corev1.Event, byUID map[types.UID][]*corev1.Event) {
	var traces []*Pod
	created := createdBy(creates)
	for _, p := range pods {
		if mine(p) && p.DeletionTimestamp == nil {
			traces = append(traces, podTrace(t.Start, prev, p, created, byUID[p.UID]))
		}
	}
	t.Pods.Total = len(traces)
	slices.SortStableFunc(traces, func(a, b *Pod) int {
		if a.Ready != b.Ready {
			if a.Ready {
				return -1
			}
			return 1
		}
		return cmp.Compare(a.ReadyMs, b.ReadyMs)
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
}

// createdBy indexes the first SuccessfulCreate event naming each word of its message, as
// find(creates, "SuccessfulCreate", word) would find it: once for all the pods, not a scan
// of every event per pod (a ReplicaSet of 10,000 pods has 10,000 such events).
func createdBy(creates []*corev1.Event) map[string]*corev1.Event {
	out := map[string]*corev1.Event{}
	for _, e := range creates {
		if e.Reason != "SuccessfulCreate" {
			continue
		}
		for _, w := range strings.Fields(e.Message) {
			if _, ok := out[w]; !ok {
				out[w] = e
			}
		}
	}
	return out
}

// podTrace is one pod's steps 4–10, each no earlier than the one before, starting from
// prev (step 2–3's time). creates indexes the owner's SuccessfulCreate events (createdBy).
func podTrace(start, prev time.Time, p *corev1.Pod, creates map[string]*corev1.Event, events []*corev1.Event) *Pod {
	node := p.Spec.NodeName
	obj := "pod/" + p.Name
	out := &Pod{Name: p.Name, Node: node}
	created := Step{Steps: []int{4, 5}, Title: "Pod created", Component: "controller-manager", Object: obj,
		Time: p.CreationTimestamp.Time}
	if e := creates[p.Name]; e != nil {
		created.Component, created.Node, created.Time = e.Source.Component, e.Source.Host, evTime(e)
	}
	scheduled := fromEvent([]int{6, 7}, "Pod bound to "+orDash(node), obj, find(events, "Scheduled", ""))
	if c := condition(p, corev1.PodScheduled); scheduled.Missing && c != nil && c.Status == corev1.ConditionTrue {
		// No event (yet): the condition the API server sets when the Bind commits.
		scheduled.Time, scheduled.Missing, scheduled.Component = c.LastTransitionTime.Time, false, "scheduler"
	}
	pulled := fromEvent([]int{8}, "Image ready", obj, find(events, "Pulled", ""))
	started := fromEvent([]int{9}, "Container started", obj, find(events, "Started", ""))
	ready := Step{Steps: []int{10}, Title: "Pod Running and Ready", Component: "kubelet", Node: node, Object: obj,
		ResourceVersion: p.ResourceVersion, Missing: true}
	if c := condition(p, corev1.PodReady); c != nil && c.Status == corev1.ConditionTrue {
		ready.Time, ready.Missing = c.LastTransitionTime.Time, false
	} else if p.Status.Phase == corev1.PodSucceeded {
		// A Job's pod that ran to completion: no longer Ready (PodCompleted), and maybe
		// never was; its step 10 is its containers' finish (to the second), else the Ready
		// condition's turn to False.
		ready.Title, ready.Missing = "Pod completed", false
		for _, cs := range p.Status.ContainerStatuses {
			if t := cs.State.Terminated; t != nil && t.FinishedAt.Time.After(ready.Time) {
				ready.Time = t.FinishedAt.Time
			}
		}
		if c != nil && ready.Time.IsZero() {
			ready.Time = c.LastTransitionTime.Time
		}
	}
	out.Steps = []Step{created, scheduled, pulled, started, ready}
	for i := range out.Steps {
		s := &out.Steps[i]
		if s.Missing {
			continue
		}
		s.Time = notBefore(s.Time, prev)
		prev = s.Time
	}
	if r := out.Steps[len(out.Steps)-1]; !r.Missing {
		out.Ready = true
		out.ReadyMs = ms(r.Time.Sub(start))
	}
	return out
}

// notBefore is t, or prev when t is earlier: a time to the second may fall before a
// step that came ahead of it.
func notBefore(t, prev time.Time) time.Time {
	if t.Before(prev) {
		return prev
	}
	return t
}

func fromEvent(steps []int, title, obj string, e *corev1.Event) Step {
	if e == nil {
		return missing(steps, title)
	}
	return Step{Steps: steps, Title: title, Component: e.Source.Component, Node: e.Source.Host, Object: obj,
		ResourceVersion: e.InvolvedObject.ResourceVersion, Time: evTime(e)}
}

func missing(steps []int, title string) Step { return Step{Steps: steps, Title: title, Missing: true} }

// finish fills the relative times.
func finish(t *Trace) *Trace {
	relative(t.Steps, t.Start)
	for _, p := range []*Pod{t.Pods.First, t.Pods.Median, t.Pods.Slowest} {
		if p != nil {
			relative(p.Steps, t.Start)
		}
	}
	return t
}

func relative(steps []Step, start time.Time) {
	prev := start
	for i := range steps {
		s := &steps[i]
		if s.Missing {
			continue
		}
		s.SinceStartMs = ms(s.Time.Sub(start))
		s.SincePreviousMs = ms(s.Time.Sub(prev))
		prev = s.Time
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// evTime is when an event first happened, as precisely as it says: eventTime (to the
// microsecond), else firstTimestamp (to the second).
func evTime(e *corev1.Event) time.Time {
	if !e.EventTime.IsZero() {
		return e.EventTime.Time
	}
	if !e.FirstTimestamp.IsZero() {
		return e.FirstTimestamp.Time
	}
	return e.LastTimestamp.Time
}

// find returns the first event with reason whose message names about, a word of it
// ("" for any): "web-1" is not found in a message about web-10.
func find(events []*corev1.Event, reason, about string) *corev1.Event {
	for _, e := range events {
		if e.Reason == reason && (about == "" || slices.Contains(strings.Fields(e.Message), about)) {
			return e
		}
	}
	return nil
}

func condition(p *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if c := &p.Status.Conditions[i]; c.Type == typ {
			return c
		}
	}
	return nil
}

func revision(rs *appsv1.ReplicaSet) int64 {
	n, _ := strconv.ParseInt(rs.Annotations[RevisionAnnotation], 10, 64)
	return n
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
