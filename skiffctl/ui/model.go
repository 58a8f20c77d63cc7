package ui

import (
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/trace"
)

// Objects is what the views are computed from: the informers' caches at one moment.
type Objects struct {
	Nodes               []*corev1.Node
	Pods                []*corev1.Pod
	Deployments         []*appsv1.Deployment
	ReplicaSets         []*appsv1.ReplicaSet
	DaemonSets          []*appsv1.DaemonSet
	StatefulSets        []*appsv1.StatefulSet
	ControllerRevisions []*appsv1.ControllerRevision
	Jobs                []*batchv1.Job
	CronJobs            []*batchv1.CronJob
	Services            []*corev1.Service
	EndpointSlices      []*discoveryv1.EndpointSlice
	Events              []*corev1.Event
}

// Member is one API server of the Raft cluster as the page shows it. Health is what
// the member itself answered: "healthy" (it answered a status request), "unreachable"
// (it did not, within the poll's timeout: down, paused or cut off).
type Member struct {
	Name        string `json:"name"`
	API         string `json:"api"`
	Raft        string `json:"raft"`
	Suffrage    string `json:"suffrage"`
	Leader      bool   `json:"leader"`
	State       string `json:"state"` // Leader, Follower, Candidate; "" when unreachable
	Health      string `json:"health"`
	CommitIndex uint64 `json:"commitIndex"`
	AppliedIdx  uint64 `json:"appliedIndex"`
	Error       string `json:"error,omitempty"`
}

// Raft is the API servers' cluster: its leader, term and members.
type Raft struct {
	Leader   string   `json:"leader"`
	Term     uint64   `json:"term"`
	Revision int64    `json:"revision"`
	Members  []Member `json:"members"`
	// Error is set when no member answered.
	Error string `json:"error,omitempty"`
}

// Node is one node with its capacity use and its pods, counted by state (a node of 110
// pods, or 10,000 pods on 1,000 nodes, stays a row per node).
type Node struct {
	Name          string         `json:"name"`
	Ready         bool           `json:"ready"`
	Unschedulable bool           `json:"unschedulable"`
	CPURequested  int64          `json:"cpuRequestedMilli"`
	CPUAllocated  int64          `json:"cpuAllocatableMilli"`
	MemRequested  int64          `json:"memoryRequestedBytes"`
	MemAllocated  int64          `json:"memoryAllocatableBytes"`
	Pods          int            `json:"pods"`
	MaxPods       int64          `json:"maxPods"`
	States        map[string]int `json:"states"`
}

// Workload is one workload's rollout state, as `kubectl rollout status` words it.
type Workload struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Desired   int32  `json:"desired"`
	Updated   int32  `json:"updated"`
	Ready     int32  `json:"ready"`
	Available int32  `json:"available"`
	// State: Complete, Progressing or Stuck (a Progressing condition with reason
	// ProgressDeadlineExceeded).
	State   string `json:"state"`
	Message string `json:"message,omitempty"`
}

// Event is one Event as the event stream shows it.
type Event struct {
	Time    time.Time `json:"time"`
	Type    string    `json:"type"`
	Reason  string    `json:"reason"`
	Object  string    `json:"object"` // kind/namespace/name, "Pod/default/web-1"
	Message string    `json:"message"`
	Source  string    `json:"source"`
	Count   int32     `json:"count"`
}

// ServiceRow is one Service in the cluster view: its endpoints counted by condition.
type ServiceRow struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Type      string `json:"type"`
	ClusterIP string `json:"clusterIP"`
	EndpointCounts
}

// EndpointCounts counts a Service's endpoints by their conditions (an endpoint may be
// serving and terminating at once, as EndpointSlice's conditions are).
type EndpointCounts struct {
	Endpoints   int `json:"total"`
	Ready       int `json:"ready"`
	Serving     int `json:"serving"`
	Terminating int `json:"terminating"`
}

// Cluster is the cluster view.
type Cluster struct {
	Raft      Raft         `json:"raft"`
	Nodes     []Node       `json:"nodes"`
	Workloads []Workload   `json:"workloads"`
	Services  []ServiceRow `json:"services"`
	Events    []Event      `json:"events"`
}

// MaxEvents is how many of the newest events the cluster view carries.
const MaxEvents = 200

// BuildCluster computes the cluster view.
func BuildCluster(raft Raft, o *Objects) *Cluster {
	c := &Cluster{Raft: raft, Nodes: []Node{}, Workloads: []Workload{}, Services: []ServiceRow{}, Events: []Event{}}
	byNode := map[string]*Node{}
	for _, n := range o.Nodes {
		v := Node{Name: n.Name, Unschedulable: n.Spec.Unschedulable, States: map[string]int{},
			CPUAllocated: n.Status.Allocatable.Cpu().MilliValue(), MemAllocated: n.Status.Allocatable.Memory().Value(),
			MaxPods: n.Status.Allocatable.Pods().Value()}
		for _, cond := range n.Status.Conditions {
			if cond.Type == corev1.NodeReady {
				v.Ready = cond.Status == corev1.ConditionTrue
			}
		}
		c.Nodes = append(c.Nodes, v)
	}
	sort.Slice(c.Nodes, func(i, j int) bool { return c.Nodes[i].Name < c.Nodes[j].Name })
	for i := range c.Nodes {
		byNode[c.Nodes[i].Name] = &c.Nodes[i]
	}
	for _, p := range o.Pods {
		n := byNode[p.Spec.NodeName]
		if n == nil {
			continue
		}
		n.Pods++
		n.States[PodState(p)]++
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			continue // holds no resources
		}
		cpu, mem := requests(p)
		n.CPURequested += cpu
		n.MemRequested += mem
	}
	for _, d := range o.Deployments {
		c.Workloads = append(c.Workloads, deploymentWorkload(d))
	}
	for _, ds := range o.DaemonSets {
		c.Workloads = append(c.Workloads, daemonSetWorkload(ds))
	}
	for _, ss := range o.StatefulSets {
		c.Workloads = append(c.Workloads, statefulSetWorkload(ss))
	}
	for _, j := range o.Jobs {
		c.Workloads = append(c.Workloads, jobWorkload(j))
	}
	for _, cj := range o.CronJobs {
		w := Workload{Kind: kinds.CronJob, Namespace: cj.Namespace, Name: cj.Name, Desired: int32(len(cj.Status.Active)),
			State: "Scheduled", Message: "schedule " + cj.Spec.Schedule}
		if cj.Spec.Suspend != nil && *cj.Spec.Suspend {
			w.State = "Suspended"
		}
		if job := trace.NewestJob(cj, o.Jobs); job != nil {
			w.Message += ", last job " + job.Name + " " + jobWorkload(job).State
		}
		c.Workloads = append(c.Workloads, w)
	}
	sort.Slice(c.Workloads, func(i, j int) bool {
		a, b := c.Workloads[i], c.Workloads[j]
		return a.Kind+"/"+a.Namespace+"/"+a.Name < b.Kind+"/"+b.Namespace+"/"+b.Name
	})
	slicesOf := endpointSlicesByService(o.EndpointSlices)
	for _, svc := range o.Services {
		row := ServiceRow{Namespace: svc.Namespace, Name: svc.Name, Type: string(svc.Spec.Type), ClusterIP: svc.Spec.ClusterIP}
		for _, es := range slicesOf[svc.Namespace+"/"+svc.Name] {
			for _, e := range es.Endpoints {
				row.EndpointCounts.add(e.Conditions)
			}
		}
		c.Services = append(c.Services, row)
	}
	sort.Slice(c.Services, func(i, j int) bool {
		return c.Services[i].Namespace+"/"+c.Services[i].Name < c.Services[j].Namespace+"/"+c.Services[j].Name
	})
	c.Events = newestEvents(o.Events, MaxEvents, nil)
	return c
}

func daemonSetWorkload(ds *appsv1.DaemonSet) Workload {
	w := Workload{Kind: kinds.DaemonSet, Namespace: ds.Namespace, Name: ds.Name, Desired: ds.Status.DesiredNumberScheduled,
		Updated: ds.Status.UpdatedNumberScheduled, Ready: ds.Status.NumberReady, Available: ds.Status.NumberAvailable, State: "Progressing"}
	if ds.Status.ObservedGeneration >= ds.Generation && w.Updated == w.Desired && w.Available == w.Desired {
		w.State = "Complete"
	}
	return w
}

func statefulSetWorkload(ss *appsv1.StatefulSet) Workload {
	w := Workload{Kind: kinds.StatefulSet, Namespace: ss.Namespace, Name: ss.Name, Desired: replicas(ss.Spec.Replicas),
		Updated: ss.Status.UpdatedReplicas, Ready: ss.Status.ReadyReplicas, Available: ss.Status.AvailableReplicas, State: "Progressing"}
	if ss.Status.ObservedGeneration >= ss.Generation && w.Updated == w.Desired && w.Ready == w.Desired {
		w.State = "Complete"
	}
	return w
}

// jobWorkload is a Job's state, as kubectl get jobs words it: Complete, Failed (its
// conditions), Suspended, else Running; desired is its completions.
func jobWorkload(j *batchv1.Job) Workload {
	w := Workload{Kind: kinds.Job, Namespace: j.Namespace, Name: j.Name, Desired: jobCompletions(j), Updated: j.Status.Succeeded,
		Ready: ptrOr(j.Status.Ready), Available: j.Status.Succeeded, State: "Running"}
	for _, c := range j.Status.Conditions {
		if c.Status != corev1.ConditionTrue {
			continue
		}
		switch c.Type {
		case batchv1.JobComplete:
			w.State = "Complete"
		case batchv1.JobFailed:
			w.State, w.Message = "Failed", c.Message
		case batchv1.JobSuspended:
			w.State = "Suspended"
		}
	}
	return w
}

// jobCompletions is how many pods must succeed: spec.completions, else 1 (a Job of
// parallelism alone is done when one pod is).
func jobCompletions(j *batchv1.Job) int32 {
	if j.Spec.Completions != nil {
		return *j.Spec.Completions
	}
	return 1
}

func ptrOr(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

func (c *EndpointCounts) add(cond discoveryv1.EndpointConditions) {
	c.Endpoints++
	// EndpointSlice's rules: nil ready means ready; nil serving means as ready.
	ready := cond.Ready == nil || *cond.Ready
	if ready {
		c.Ready++
	}
	if cond.Serving != nil && *cond.Serving || cond.Serving == nil && ready {
		c.Serving++
	}
	if cond.Terminating != nil && *cond.Terminating {
		c.Terminating++
	}
}

// endpointSlicesByService indexes slices by their Service (kubernetes.io/service-name),
// "namespace/name".
func endpointSlicesByService(slices []*discoveryv1.EndpointSlice) map[string][]*discoveryv1.EndpointSlice {
	out := map[string][]*discoveryv1.EndpointSlice{}
	for _, es := range slices {
		if svc := es.Labels[discoveryv1.LabelServiceName]; svc != "" {
			out[es.Namespace+"/"+svc] = append(out[es.Namespace+"/"+svc], es)
		}
	}
	return out
}

func deploymentWorkload(d *appsv1.Deployment) Workload {
	w := Workload{Kind: kinds.Deployment, Namespace: d.Namespace, Name: d.Name, Desired: replicas(d.Spec.Replicas),
		Updated: d.Status.UpdatedReplicas, Ready: d.Status.ReadyReplicas, Available: d.Status.AvailableReplicas, State: "Progressing"}
	for _, cond := range d.Status.Conditions {
		if cond.Type == appsv1.DeploymentProgressing && cond.Reason == "ProgressDeadlineExceeded" {
			w.State, w.Message = "Stuck", cond.Message
			return w
		}
	}
	if d.Status.ObservedGeneration >= d.Generation && w.Updated == w.Desired && d.Status.Replicas == w.Desired && w.Available == w.Desired {
		w.State = "Complete"
	}
	return w
}

func replicas(r *int32) int32 {
	if r == nil {
		return 1
	}
	return *r
}

// requests is a pod's CPU (milli) and memory (bytes) requests, as the scheduler counts
// them: the sum of its containers'.
func requests(p *corev1.Pod) (cpu, mem int64) {
	for _, c := range p.Spec.Containers {
		cpu += c.Resources.Requests.Cpu().MilliValue()
		mem += c.Resources.Requests.Memory().Value()
	}
	return cpu, mem
}

// newestEvents is the n newest events (those about uids only, when uids is not nil),
// newest first; events of the same time in the order of events.
func newestEvents(events []*corev1.Event, n int, uids map[types.UID]bool) []Event {
	// Keep only the n newest while reading, then build only those: a rollout of 10,000
	// pods leaves tens of thousands of events, and sorting them all, at each update of
	// the page, was the chain's largest cost after the trace.
	type timed struct {
		at time.Time
		e  *corev1.Event
	}
	if n <= 0 {
		return []Event{}
	}
	top := make([]timed, 0, n+1) // newest first
	for _, e := range events {
		if uids != nil && !uids[e.InvolvedObject.UID] {
			continue
		}
		t := timed{eventTime(e), e}
		if len(top) == n && !t.at.After(top[n-1].at) {
			continue // no newer than the n kept (and after them in events' order)
		}
		// After every kept event as new or newer: a tie keeps the order of events.
		i, _ := slices.BinarySearchFunc(top, t.at, func(k timed, at time.Time) int {
			if k.at.Before(at) {
				return 1
			}
			return -1
		})
		top = slices.Insert(top, i, t)
		if len(top) > n {
			top = top[:n]
		}
	}
	out := []Event{}
	for _, t := range top {
		e := t.e
		out = append(out, Event{Time: t.at, Type: e.Type, Reason: e.Reason, Message: e.Message, Source: eventSource(e), Count: e.Count,
			Object: objectName(e.InvolvedObject.Kind, e.InvolvedObject.Namespace, e.InvolvedObject.Name)})
	}
	return out
}

func objectName(kind, namespace, name string) string {
	if namespace == "" {
		return kind + "/" + name
	}
	return kind + "/" + namespace + "/" + name
}

// eventTime is when an event last happened, as precisely as it says.
func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}

// PodState is the state a pod shows in the map, in kubectl get pods' words: Terminating,
// a container's waiting or terminated reason (ContainerCreating, ImagePullBackOff,
// CrashLoopBackOff, Completed, Error), Pending (not on a node yet), Running (not Ready)
// or Ready.
func PodState(p *corev1.Pod) string {
	if p.DeletionTimestamp != nil {
		return "Terminating"
	}
	switch p.Status.Phase {
	case corev1.PodSucceeded:
		return "Completed"
	case corev1.PodFailed:
		if p.Status.Reason != "" {
			return p.Status.Reason
		}
		return "Failed"
	}
	if p.Spec.NodeName == "" {
		return "Pending"
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" {
			return w.Reason
		}
		if t := cs.State.Terminated; t != nil && t.Reason != "" {
			return t.Reason
		}
	}
	if c := podCondition(p, corev1.PodReady); c != nil && c.Status == corev1.ConditionTrue {
		return "Ready"
	}
	if p.Status.Phase == corev1.PodRunning {
		return "Running"
	}
	return "ContainerCreating"
}

func podCondition(p *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if c := &p.Status.Conditions[i]; c.Type == typ {
			return c
		}
	}
	return nil
}

// Lane is one component of the chain map, in the order the objects flow through them.
type Lane struct {
	Component string `json:"component"`
	// Instances are what runs it: the Raft members for the API server, the nodes for the
	// kubelet and the runtime, the holder of the leader lease otherwise (when known).
	Instances []string `json:"instances"`
	// Steps are the step labels ("1", "2-3") the component did.
	Steps []string `json:"steps"`
}

// ChainStep is one step of the chain as the map draws it.
type ChainStep struct {
	Label     string  `json:"label"` // "1", "2-3"
	Count     int     `json:"count"` // how many of the ten steps it covers
	Title     string  `json:"title"`
	Lane      string  `json:"lane"`
	Component string  `json:"component"`
	Node      string  `json:"node"`
	Object    string  `json:"object"`
	Done      bool    `json:"done"`
	SinceMs   float64 `json:"sinceStartMs"`
	TookMs    float64 `json:"tookMs"`
	// Stuck is why the step is not done, when something says so.
	Stuck string `json:"stuck,omitempty"`
}

// Stuck is one reason pods are held at a step, with how many pods it holds.
type Stuck struct {
	Step string `json:"step"`
	// Reason and Message are the pod's own account: the PodScheduled condition's
	// (Unschedulable), a container's waiting state's (ImagePullBackOff), else the event's.
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// Event is the newest Warning event about the pod that says why, in the words of the
	// component that hit it: the scheduler's FailedScheduling ("0/5 nodes are available:
	// 5 Insufficient cpu."), the kubelet's Failed (an image pull) or FailedMount.
	Event   *StuckEvent `json:"event,omitempty"`
	Pods    int         `json:"pods"`
	Example string      `json:"example"`
}

// StuckEvent is the Warning event of a Stuck.
type StuckEvent struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
	Source  string `json:"source"`
	Count   int32  `json:"count"`
}

// maxStuck bounds the reasons a chain lists: messages that differ per pod stay a page.
const maxStuck = 20

// NodePods is one node's pods of the workload, by state.
type NodePods struct {
	Node   string         `json:"node"`
	States map[string]int `json:"states"`
}

// OldSet is a ReplicaSet of an older revision that still has pods: draining.
type OldSet struct {
	Name     string `json:"name"`
	Revision string `json:"revision"`
	Replicas int32  `json:"replicas"`
	Ready    int32  `json:"ready"`
}

// ChainHead is what a chain map shows of the workload object alone: its
// resourceVersion, how many pods it wants and its rollout state (its status's counts and
// conditions). A page gets it on its own as soon as the workload changes (BuildHead, a
// few hundred bytes), while the chain's aggregation of its pods and events, which costs
// in proportion to them, follows at the stream's pace.
type ChainHead struct {
	ResourceVersion string    `json:"resourceVersion"`
	Desired         int32     `json:"desired"`
	Workload        *Workload `json:"workload,omitempty"`
}

// Chain is the chain map of one workload.
type Chain struct {
	Kind      string `json:"kind"`
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	Found     bool   `json:"found"`
	ChainHead
	Revision int64  `json:"revision"`
	Child    string `json:"child"` // "replicaset web-5d4f", "controllerrevision ..."
	Ready    int    `json:"ready"`
	Total    int    `json:"total"`
	// Summary is what the map's title says: "3/3 ready".
	Summary string         `json:"summary"`
	Lanes   []Lane         `json:"lanes"`
	Steps   []ChainStep    `json:"steps"`
	States  map[string]int `json:"states"`
	Nodes   []NodePods     `json:"nodes"`
	OldSets []OldSet       `json:"oldSets"`
	Stuck   []Stuck        `json:"stuck"`
	Events  []Event        `json:"events"`
}

// The chain's lanes, in order: who does which of the ten steps.
const (
	LaneUser       = "user"
	LaneAPIServer  = "apiserver"
	LaneController = "workload controller"
	LaneReplicaSet = "replicaset controller"
	LaneJob        = "job controller"
	LaneScheduler  = "scheduler"
	LaneKubelet    = "kubelet"
	LaneRuntime    = "container runtime"
)

// laneOf is the lane of a trace step, by its first step number. A CronJob's chain has
// its own controller make the Job (steps 0 and 1: due, created) and the Job controller
// do steps 2–5.
func laneOf(kind string, first int) string {
	switch first {
	case 0:
		return LaneController
	case 1:
		if kind == kinds.CronJob {
			return LaneController
		}
		return LaneAPIServer
	case 2, 3:
		if kind == kinds.CronJob {
			return LaneJob
		}
		return LaneController
	case 4, 5:
		switch kind {
		case kinds.Deployment:
			return LaneReplicaSet
		case kinds.CronJob:
			return LaneJob
		}
		return LaneController
	case 6, 7:
		return LaneScheduler
	case 8, 9:
		return LaneRuntime
	}
	return LaneKubelet
}

// stepOfState is the step a pod in a given state waits for.
func stepOfState(state string) string {
	switch state {
	case "Pending":
		return "6-7"
	case "ContainerCreating", "ErrImagePull", "ImagePullBackOff", "InvalidImageName":
		return "8"
	case "Running", "Ready", "Completed":
		return "10"
	}
	return "9" // CrashLoopBackOff, CreateContainerError, RunContainerError, ...
}

// BuildHead is the head of the chain map of the workload kind namespace/name (the same
// as BuildChain's); found is false when the workload is not among o's. It reads the
// workload alone (a CronJob's, with its Jobs): what a page needs at once when the
// workload changes.
func BuildHead(kind, namespace, name string, o *Objects) (head ChainHead, found bool) {
	owner, head := workloadOf(kind, namespace, name, o)
	return head, owner != nil
}

// workloadOf finds the workload kind namespace/name among o's and says its head; owner is
// nil when it is not there. A CronJob's head is its newest Job's.
func workloadOf(kind, namespace, name string, o *Objects) (owner metav1.Object, head ChainHead) {
	workload := func(w Workload) *Workload { return &w }
	switch kind {
	case kinds.Deployment:
		if d := findObj(o.Deployments, namespace, name); d != nil {
			owner, head = d, ChainHead{Desired: replicas(d.Spec.Replicas), Workload: workload(deploymentWorkload(d))}
		}
	case kinds.DaemonSet:
		if ds := findObj(o.DaemonSets, namespace, name); ds != nil {
			owner, head = ds, ChainHead{Desired: ds.Status.DesiredNumberScheduled, Workload: workload(daemonSetWorkload(ds))}
		}
	case kinds.StatefulSet:
		if ss := findObj(o.StatefulSets, namespace, name); ss != nil {
			owner, head = ss, ChainHead{Desired: replicas(ss.Spec.Replicas), Workload: workload(statefulSetWorkload(ss))}
		}
	case kinds.Job:
		if job := findObj(o.Jobs, namespace, name); job != nil {
			owner, head = job, ChainHead{Desired: jobCompletions(job), Workload: workload(jobWorkload(job))}
		}
	case kinds.CronJob:
		if cj := findObj(o.CronJobs, namespace, name); cj != nil {
			owner = cj
			if job := trace.NewestJob(cj, o.Jobs); job != nil {
				head = ChainHead{Desired: jobCompletions(job), Workload: workload(jobWorkload(job))}
			}
		}
	}
	if owner != nil {
		head.ResourceVersion = owner.GetResourceVersion()
	}
	return owner, head
}

// BuildChain computes the chain map of the workload kind namespace/name: the trace of its
// newest revision (skiffctl trace's), its pods by state and node, older ReplicaSets still
// draining, and why a step is stuck (a pod's Unschedulable condition, a container's
// waiting reason, a Warning event). members are the Raft members' names.
func BuildChain(kind, namespace, name string, members []string, o *Objects) *Chain {
	c := &Chain{Kind: kind, Namespace: namespace, Name: name, States: map[string]int{}, Nodes: []NodePods{},
		OldSets: []OldSet{}, Stuck: []Stuck{}, Events: []Event{}, Steps: []ChainStep{}}
	owner, head := workloadOf(kind, namespace, name, o)
	var t *trace.Trace
	var mine func(*corev1.Pod) bool
	ownedByUID := func(uid types.UID) func(*corev1.Pod) bool { return func(p *corev1.Pod) bool { return ownedBy(p, uid) } }
	switch w := owner.(type) {
	case *appsv1.Deployment:
		t = trace.Assemble(w, o.ReplicaSets, o.Pods, o.Events)
		for _, rs := range o.ReplicaSets {
			if !ownedBy(rs, w.UID) {
				continue
			}
			if rs.Name == t.ReplicaSet {
				mine = ownedByUID(rs.UID)
			} else if rs.Status.Replicas > 0 || replicas(rs.Spec.Replicas) > 0 {
				c.OldSets = append(c.OldSets, OldSet{Name: rs.Name, Revision: rs.Annotations[trace.RevisionAnnotation],
					Replicas: rs.Status.Replicas, Ready: rs.Status.ReadyReplicas})
			}
		}
		sort.Slice(c.OldSets, func(i, j int) bool { return c.OldSets[i].Name < c.OldSets[j].Name })
	case *appsv1.DaemonSet:
		t = trace.AssembleWorkload(w, o.ControllerRevisions, o.Pods, o.Events)
		mine = ownedByUID(w.UID)
	case *appsv1.StatefulSet:
		t = trace.AssembleWorkload(w, o.ControllerRevisions, o.Pods, o.Events)
		mine = ownedByUID(w.UID)
	case *batchv1.Job:
		t = trace.AssembleJob(nil, w, o.Pods, o.Events)
		mine = ownedByUID(w.UID)
	case *batchv1.CronJob:
		// The chain of the newest Job it made; the older ones' pods count as draining.
		job := trace.NewestJob(w, o.Jobs)
		t = trace.AssembleJob(w, job, o.Pods, o.Events)
		if job != nil {
			mine = ownedByUID(job.UID)
		}
	}
	c.Lanes = lanes(kind, members, nil)
	if owner == nil {
		c.Summary = fmt.Sprintf("%s %s/%s not found", strings.ToLower(kind), namespace, name)
		return c
	}
	c.Found, c.ChainHead = true, head
	c.Revision, c.Child = t.Revision, t.Child()
	if kind == kinds.CronJob && t.Job != "" {
		c.Child = "job " + t.Job
	}

	// The pods of the newest revision: by state and by node; the others of the workload
	// (older ReplicaSets') count as draining.
	byNode := map[string]map[string]int{}
	uids := map[types.UID]bool{owner.GetUID(): true}
	for _, rs := range o.ReplicaSets {
		if ownedBy(rs, owner.GetUID()) {
			uids[rs.UID] = true
		}
	}
	for _, j := range o.Jobs {
		if ownedBy(j, owner.GetUID()) {
			uids[j.UID] = true // a CronJob's Jobs
		}
	}
	warnings := warningsByObject(o.Events)
	stuck := map[string]*Stuck{}
	var nodes []string
	for _, p := range o.Pods {
		if mine == nil || !mine(p) {
			if ref := metav1.GetControllerOfNoCopy(p); ref != nil && uids[ref.UID] {
				uids[p.UID] = true // an older ReplicaSet's pod: its events still matter
			}
			continue
		}
		uids[p.UID] = true
		state := PodState(p)
		c.States[state]++
		if state != "Terminating" {
			c.Total++
			if state == "Ready" {
				c.Ready++
			}
		}
		if p.Spec.NodeName != "" {
			if byNode[p.Spec.NodeName] == nil {
				byNode[p.Spec.NodeName] = map[string]int{}
				nodes = append(nodes, p.Spec.NodeName)
			}
			byNode[p.Spec.NodeName][state]++
		}
		if reason, msg, ev := whyStuck(p, state, warnings[p.UID]); reason != "" {
			step := stepOfState(state)
			key := step + "|" + reason + "|" + msg
			if ev != nil {
				key += "|" + ev.Reason + "|" + ev.Message
			}
			if stuck[key] == nil {
				if len(stuck) == maxStuck {
					continue
				}
				stuck[key] = &Stuck{Step: step, Reason: reason, Message: msg, Event: ev, Example: p.Name}
			}
			stuck[key].Pods++
		}
	}
	sort.Strings(nodes)
	for _, n := range nodes {
		c.Nodes = append(c.Nodes, NodePods{Node: n, States: byNode[n]})
	}
	for _, s := range stuck {
		c.Stuck = append(c.Stuck, *s)
	}
	sort.Slice(c.Stuck, func(i, j int) bool {
		if c.Stuck[i].Pods != c.Stuck[j].Pods {
			return c.Stuck[i].Pods > c.Stuck[j].Pods
		}
		return c.Stuck[i].Reason+c.Stuck[i].Message < c.Stuck[j].Reason+c.Stuck[j].Message
	})
	c.Events = newestEvents(o.Events, 50, uids)
	c.Summary = fmt.Sprintf("%d/%d ready", c.Ready, c.Desired)
	if c.Workload != nil && c.Workload.Kind == kinds.Job {
		// A Job's pods finish: what counts is how many succeeded (kubectl's COMPLETIONS).
		c.Summary = fmt.Sprintf("%d/%d succeeded", c.Workload.Available, c.Desired)
	}

	for _, s := range t.Steps {
		cs := ChainStep{Label: s.Label(), Count: len(stepRange(s.Steps)), Title: s.Title, Lane: laneOf(kind, s.Steps[0]),
			Component: s.Component, Node: s.Node, Object: s.Object, Done: !s.Missing}
		if cs.Done {
			cs.SinceMs, cs.TookMs = s.SinceStartMs, s.SincePreviousMs
		}
		for _, st := range c.Stuck {
			if !cs.Done && st.Step == cs.Label && cs.Stuck == "" {
				cs.Stuck = st.Reason + ": " + st.Message
				if st.Event != nil {
					// The component's Warning says why in its words.
					cs.Stuck = st.Event.Reason + ": " + st.Event.Message
				}
			}
		}
		c.Steps = append(c.Steps, cs)
	}
	c.Lanes = lanes(kind, members, nodes)
	for i := range c.Lanes {
		for _, s := range c.Steps {
			if s.Lane == c.Lanes[i].Component {
				c.Lanes[i].Steps = append(c.Lanes[i].Steps, s.Label)
			}
		}
	}
	return c
}

// stepRange is every step number an entry covers: [2 3] for "2-3".
func stepRange(steps []int) []int {
	if len(steps) < 2 {
		return steps
	}
	var out []int
	for i := steps[0]; i <= steps[len(steps)-1]; i++ {
		out = append(out, i)
	}
	return out
}

// whyStuck says what holds a pod: the scheduler's Unschedulable condition ("0/5 nodes
// are available: 5 Insufficient cpu."), a container's waiting reason and message, and
// the newest Warning event about it that says why (warnings, the pod's, newest first):
// FailedScheduling for a pod not on a node, the kubelet's (Failed, FailedMount,
// FailedCreatePodSandBox, BackOff...) for one that is. A pod that is only being made
// (ContainerCreating) with no Warning is not stuck.
func whyStuck(p *corev1.Pod, state string, warnings []*corev1.Event) (reason, message string, ev *StuckEvent) {
	if state == "Terminating" || state == "Ready" || state == "Running" || state == "Completed" {
		return "", "", nil
	}
	scheduled := p.Spec.NodeName != ""
	var warn *corev1.Event
	for _, e := range warnings {
		// A FailedScheduling from before the pod got its node is history; so is what the
		// kubelet said of an earlier try, before it was on this node (no kubelet speaks
		// of an unscheduled pod).
		if (e.Reason == "FailedScheduling") == scheduled {
			continue
		}
		// The kubelet follows "Failed to pull image ...: why" with "Error: ErrImagePull":
		// the first says why.
		if warn == nil || strings.HasPrefix(warn.Message, "Error: ") && !strings.HasPrefix(e.Message, "Error: ") && e.Reason == warn.Reason {
			warn = e
		}
		if !strings.HasPrefix(warn.Message, "Error: ") {
			break
		}
	}
	if warn != nil {
		ev = &StuckEvent{Reason: warn.Reason, Message: warn.Message, Source: eventSource(warn), Count: max(warn.Count, 1)}
	}
	if c := podCondition(p, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse && !scheduled {
		return c.Reason, c.Message, ev
	}
	for _, cs := range p.Status.ContainerStatuses {
		if w := cs.State.Waiting; w != nil && w.Reason != "" && w.Reason != "ContainerCreating" {
			return w.Reason, w.Message, ev
		}
	}
	if ev != nil {
		return ev.Reason, ev.Message, ev
	}
	return "", "", nil
}

// warningsByObject indexes the Warning events by the UID of their object, newest first.
func warningsByObject(events []*corev1.Event) map[types.UID][]*corev1.Event {
	out := map[types.UID][]*corev1.Event{}
	for _, e := range events {
		if e.Type == corev1.EventTypeWarning {
			out[e.InvolvedObject.UID] = append(out[e.InvolvedObject.UID], e)
		}
	}
	for _, evs := range out {
		if len(evs) > 1 {
			slices.SortStableFunc(evs, func(a, b *corev1.Event) int { return eventTime(b).Compare(eventTime(a)) })
		}
	}
	return out
}

func eventSource(e *corev1.Event) string {
	src := e.Source.Component
	if src == "" {
		src = e.ReportingController
	}
	if e.Source.Host != "" {
		src += " " + e.Source.Host
	}
	return src
}

func lanes(kind string, members, nodes []string) []Lane {
	controller := LaneController
	out := []Lane{{Component: LaneUser}, {Component: LaneAPIServer, Instances: members}, {Component: controller}}
	switch kind {
	case kinds.Deployment:
		out = append(out, Lane{Component: LaneReplicaSet})
	case kinds.CronJob:
		out = append(out, Lane{Component: LaneJob})
	}
	out = append(out, Lane{Component: LaneScheduler}, Lane{Component: LaneKubelet, Instances: nodes},
		Lane{Component: LaneRuntime, Instances: nodes})
	for i := range out {
		if out[i].Instances == nil {
			out[i].Instances = []string{}
		}
		out[i].Steps = []string{}
	}
	return out
}

func ownedBy(obj metav1.Object, uid types.UID) bool {
	ref := metav1.GetControllerOfNoCopy(obj)
	return ref != nil && ref.UID == uid
}

func findObj[T metav1.Object](items []T, namespace, name string) T {
	var zero T
	for _, o := range items {
		if o.GetNamespace() == namespace && o.GetName() == name {
			return o
		}
	}
	return zero
}

// Endpoint is one endpoint of a Service, as its EndpointSlice says it.
type Endpoint struct {
	Address     string `json:"address"`
	Pod         string `json:"pod"` // its targetRef's name, "" when not a pod
	Node        string `json:"node"`
	Ready       bool   `json:"ready"`
	Serving     bool   `json:"serving"`
	Terminating bool   `json:"terminating"`
	Slice       string `json:"slice"`
}

// BackingPod is a pod the Service's selector picks: its state and whether it is one of
// the Service's endpoints (a pod that is not Ready is one, not ready; a pod without an
// IP is not one yet).
type BackingPod struct {
	Name     string `json:"name"`
	Node     string `json:"node"`
	State    string `json:"state"`
	IP       string `json:"ip"`
	Endpoint bool   `json:"endpoint"`
}

// Backer is a workload whose pods back the Service, with how many.
type Backer struct {
	Kind string `json:"kind"`
	Name string `json:"name"`
	Pods int    `json:"pods"`
}

// ServiceView is what the page shows of a Service: its endpoints (ready, serving,
// terminating) and the pods that back it, with the workloads they belong to.
type ServiceView struct {
	Kind            string   `json:"kind"` // Service
	Namespace       string   `json:"namespace"`
	Name            string   `json:"name"`
	Found           bool     `json:"found"`
	ResourceVersion string   `json:"resourceVersion"`
	Summary         string   `json:"summary"` // "2/3 endpoints ready"
	Type            string   `json:"type"`
	ClusterIP       string   `json:"clusterIP"`
	Ports           []string `json:"ports"`    // "http 80/TCP → 8080"
	Selector        string   `json:"selector"` // "app=web"
	EndpointCounts
	Endpoints []Endpoint     `json:"endpoints"`
	Pods      []BackingPod   `json:"pods"`
	States    map[string]int `json:"states"`
	Backers   []Backer       `json:"backers"`
	Events    []Event        `json:"events"`
}

// BuildService computes the view of the Service namespace/name: its endpoints from its
// EndpointSlices and the pods its selector picks.
func BuildService(namespace, name string, o *Objects) *ServiceView {
	v := &ServiceView{Kind: kinds.Service, Namespace: namespace, Name: name, Ports: []string{}, Endpoints: []Endpoint{},
		Pods: []BackingPod{}, States: map[string]int{}, Backers: []Backer{}, Events: []Event{}}
	svc := findObj(o.Services, namespace, name)
	if svc == nil {
		v.Summary = fmt.Sprintf("service %s/%s not found", namespace, name)
		return v
	}
	v.Found, v.ResourceVersion = true, svc.ResourceVersion
	v.Type, v.ClusterIP = string(svc.Spec.Type), svc.Spec.ClusterIP
	for _, p := range svc.Spec.Ports {
		s := fmt.Sprintf("%d/%s", p.Port, p.Protocol)
		if p.Name != "" {
			s = p.Name + " " + s
		}
		if tp := p.TargetPort.String(); tp != "" && tp != "0" {
			s += " → " + tp
		}
		v.Ports = append(v.Ports, s)
	}
	uids := map[types.UID]bool{svc.UID: true}
	inSlice := map[string]bool{} // pod names that are endpoints
	for _, es := range endpointSlicesByService(o.EndpointSlices)[namespace+"/"+name] {
		uids[es.UID] = true
		for _, e := range es.Endpoints {
			v.EndpointCounts.add(e.Conditions)
			ep := Endpoint{Address: strings.Join(e.Addresses, ","), Slice: es.Name, Node: ptrStr(e.NodeName),
				Ready: e.Conditions.Ready == nil || *e.Conditions.Ready, Terminating: e.Conditions.Terminating != nil && *e.Conditions.Terminating}
			ep.Serving = e.Conditions.Serving != nil && *e.Conditions.Serving || e.Conditions.Serving == nil && ep.Ready
			if r := e.TargetRef; r != nil && r.Kind == "Pod" {
				ep.Pod = r.Name
				inSlice[r.Name] = true
			}
			v.Endpoints = append(v.Endpoints, ep)
		}
	}
	sort.Slice(v.Endpoints, func(i, j int) bool {
		a, b := v.Endpoints[i], v.Endpoints[j]
		if a.Pod != b.Pod {
			return a.Pod < b.Pod
		}
		return a.Address < b.Address
	})
	if len(svc.Spec.Selector) > 0 {
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		v.Selector = sel.String()
		rsOwner := map[types.UID]*metav1.OwnerReference{}
		for _, rs := range o.ReplicaSets {
			rsOwner[rs.UID] = metav1.GetControllerOfNoCopy(rs)
		}
		backers := map[string]*Backer{}
		for _, p := range o.Pods {
			if p.Namespace != namespace || !sel.Matches(labels.Set(p.Labels)) {
				continue
			}
			uids[p.UID] = true
			state := PodState(p)
			v.States[state]++
			v.Pods = append(v.Pods, BackingPod{Name: p.Name, Node: p.Spec.NodeName, State: state, IP: p.Status.PodIP, Endpoint: inSlice[p.Name]})
			kind, owner := "Pod", p.Name
			if ref := metav1.GetControllerOfNoCopy(p); ref != nil {
				kind, owner = ref.Kind, ref.Name
				if d := rsOwner[ref.UID]; ref.Kind == kinds.ReplicaSet && d != nil && d.Kind == kinds.Deployment {
					kind, owner = d.Kind, d.Name // a Deployment's pods back it, whatever their revision
				}
			}
			if backers[kind+"/"+owner] == nil {
				backers[kind+"/"+owner] = &Backer{Kind: kind, Name: owner}
			}
			backers[kind+"/"+owner].Pods++
		}
		for _, b := range backers {
			v.Backers = append(v.Backers, *b)
		}
		sort.Slice(v.Backers, func(i, j int) bool {
			return v.Backers[i].Kind+"/"+v.Backers[i].Name < v.Backers[j].Kind+"/"+v.Backers[j].Name
		})
		sort.Slice(v.Pods, func(i, j int) bool { return v.Pods[i].Name < v.Pods[j].Name })
	}
	v.Summary = fmt.Sprintf("%d/%d endpoints ready", v.Ready, v.EndpointCounts.Endpoints)
	v.Events = newestEvents(o.Events, 50, uids)
	return v
}

func ptrStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
