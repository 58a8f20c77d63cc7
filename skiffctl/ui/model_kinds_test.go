package ui

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/kinds"
)

// jobObjects: CronJob tick made Jobs tick-1 (done) and tick-2 (due at 0 ms, created at
// 100 ms, started, its two pods completed).
func jobObjects() *Objects {
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "tick", Namespace: "default", UID: "c1", ResourceVersion: "7"},
		Spec: batchv1.CronJobSpec{Schedule: "*/1 * * * *"}}
	job := func(name string, uid types.UID, due int) *batchv1.Job {
		return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid, ResourceVersion: "9",
			CreationTimestamp: metav1.NewTime(at(due + 100)), OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(cj)},
			Annotations: map[string]string{batchv1.CronJobScheduledTimestampAnnotation: at(due).Format(time.RFC3339)}},
			Spec: batchv1.JobSpec{Completions: ptr.To(int32(2))},
			Status: batchv1.JobStatus{StartTime: ptr.To(metav1.NewTime(at(due + 100))), Succeeded: 2,
				Conditions: []batchv1.JobCondition{{Type: batchv1.JobComplete, Status: corev1.ConditionTrue}}}}
	}
	old, cur := job("tick-1", "j1", -60000), job("tick-2", "j2", 0)
	o := &Objects{CronJobs: []*batchv1.CronJob{cj}, Jobs: []*batchv1.Job{cur, old}}
	o.Events = append(o.Events, event("c1", "CronJob", "tick", "Normal", "SuccessfulCreate", "Created job tick-2", "cronjob-controller", "cm1", 100))
	for i, name := range []string{"tick-2-a", "tick-2-b", "tick-1-a"} {
		owner := cur
		if i == 2 {
			owner = old
		}
		uid := types.UID("p-" + name)
		o.Pods = append(o.Pods, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid,
			OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(owner)}}, Spec: corev1.PodSpec{NodeName: "w1"},
			Status: corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{Name: "c",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed", FinishedAt: metav1.NewTime(at(3000 + 1000*i))}}}}}})
		o.Events = append(o.Events,
			event(owner.UID, "Job", owner.Name, "Normal", "SuccessfulCreate", "Created pod: "+name, "job-controller", "cm1", 200+i),
			event(uid, "Pod", name, "Normal", "Scheduled", "Successfully assigned default/"+name+" to w1", "default-scheduler", "s1", 300+i),
			event(uid, "Pod", name, "Normal", "Pulled", "Container image already present", "kubelet", "w1", 800+i),
			event(uid, "Pod", name, "Normal", "Started", "Started container c", "kubelet", "w1", 1000+i))
	}
	return o
}

func chainSteps(c *Chain) string {
	var got []string
	for _, s := range c.Steps {
		got = append(got, fmt.Sprintf("%s:%s:%v", s.Label, s.Lane, s.Done))
	}
	return strings.Join(got, " ")
}

// TestBuildChainJob: a Job opens in the chain map: the Job controller at steps 2–5, its
// completed pods reach step 10, the title counts completions.
func TestBuildChainJob(t *testing.T) {
	o := jobObjects()
	o.Jobs[0].OwnerReferences = nil // a Job of its own
	c := BuildChain(kinds.Job, "default", "tick-2", []string{"n1"}, o)
	if !c.Found || c.Summary != "2/2 succeeded" || c.Workload == nil || c.Workload.State != "Complete" || c.Total != 2 {
		t.Fatalf("job chain: found %v summary %q total %d workload %+v", c.Found, c.Summary, c.Total, c.Workload)
	}
	want := "1:apiserver:true 2-3:workload controller:true 4-5:workload controller:true 6-7:scheduler:true 8:container runtime:true 9:container runtime:true 10:kubelet:true"
	if got := chainSteps(c); got != want {
		t.Errorf("steps\n got %s\nwant %s", got, want)
	}
	if s := c.Steps[len(c.Steps)-1]; s.Title != "Pod completed" || s.SinceMs != 4000-100 {
		t.Errorf("step 10 %+v, want the slowest pod's completion", s)
	}
	if !reflect.DeepEqual(c.States, map[string]int{"Completed": 2}) {
		t.Errorf("states %v", c.States)
	}
}

// TestBuildChainCronJob: a CronJob's chain is its newest Job's, starting at the schedule
// (step 0) with the CronJob controller making the Job (step 1).
func TestBuildChainCronJob(t *testing.T) {
	c := BuildChain(kinds.CronJob, "default", "tick", nil, jobObjects())
	if !c.Found || c.Child != "job tick-2" || c.Summary != "2/2 ready" && c.Summary != "2/2 succeeded" {
		t.Fatalf("cronjob chain: found %v child %q summary %q", c.Found, c.Child, c.Summary)
	}
	want := "0:workload controller:true 1:workload controller:true 2-3:job controller:true 4-5:job controller:true 6-7:scheduler:true 8:container runtime:true 9:container runtime:true 10:kubelet:true"
	if got := chainSteps(c); got != want {
		t.Errorf("steps\n got %s\nwant %s", got, want)
	}
	var lanes []string
	for _, l := range c.Lanes {
		lanes = append(lanes, l.Component)
	}
	if got := strings.Join(lanes, ","); got != "user,apiserver,workload controller,job controller,scheduler,kubelet,container runtime" {
		t.Errorf("lanes %s", got)
	}
	// Only the newest Job's pods count; the older Job's pod events are the CronJob's too.
	if c.Total != 2 || c.States["Completed"] != 2 {
		t.Errorf("total %d states %v", c.Total, c.States)
	}
	var objs []string
	for _, e := range c.Events {
		objs = append(objs, e.Object)
	}
	if j := strings.Join(objs, " "); !strings.Contains(j, "Pod/default/tick-1-a") || !strings.Contains(j, "CronJob/default/tick") {
		t.Errorf("events of %s", j)
	}
	// The cluster view lists both kinds, the CronJob with its last Job.
	cl := BuildCluster(Raft{}, jobObjects())
	var ws []string
	for _, w := range cl.Workloads {
		ws = append(ws, w.Kind+"/"+w.Name+":"+w.State)
	}
	if got := strings.Join(ws, " "); got != "CronJob/tick:Scheduled Job/tick-1:Complete Job/tick-2:Complete" {
		t.Errorf("workloads %s", got)
	}
}

// TestBuildChainStuckEvents: a stuck step shows the Warning event that says why, the
// pod's condition or waiting reason beside it; an event of an earlier try does not.
func TestBuildChainStuckEvents(t *testing.T) {
	pending := func(name string, uid types.UID, node string, st corev1.PodStatus) *corev1.Pod {
		o := rollout()
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid, OwnerReferences: o.Pods[1].OwnerReferences},
			Spec: corev1.PodSpec{NodeName: node}, Status: st}
	}
	waiting := func(reason, msg string) corev1.PodStatus {
		return corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "web",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: msg}}}}}
	}
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		events []*corev1.Event
		want   []Stuck
		step   string // the step's Stuck text, at label
		label  string
	}{{
		name: "unschedulable, the condition not written yet",
		pod:  pending("web-2-x", "px", "", corev1.PodStatus{Phase: corev1.PodPending}),
		events: []*corev1.Event{event("px", "Pod", "web-2-x", "Warning", "FailedScheduling",
			"0/5 nodes are available: 5 Insufficient cpu.", "default-scheduler", "", 400)},
		want: []Stuck{{Step: "6-7", Reason: "FailedScheduling", Message: "0/5 nodes are available: 5 Insufficient cpu.", Pods: 1, Example: "web-2-x",
			Event: &StuckEvent{Reason: "FailedScheduling", Message: "0/5 nodes are available: 5 Insufficient cpu.", Source: "default-scheduler", Count: 1}}},
		label: "6-7", step: "FailedScheduling: 0/5 nodes are available: 5 Insufficient cpu.",
	}, {
		name: "image pull failed: the event with the registry's answer, not the Error: repeat",
		pod:  pending("web-2-x", "px", "w1", waiting("ErrImagePull", "pull image \"nope:1\": not found")),
		events: []*corev1.Event{
			event("px", "Pod", "web-2-x", "Warning", "FailedScheduling", "0/5 nodes are available: 5 Insufficient cpu.", "default-scheduler", "", 100),
			event("px", "Pod", "web-2-x", "Warning", "Failed", `Failed to pull image "nope:1": repository does not exist`, "kubelet", "w1", 500),
			event("px", "Pod", "web-2-x", "Warning", "Failed", "Error: ErrImagePull", "kubelet", "w1", 501),
		},
		want: []Stuck{{Step: "8", Reason: "ErrImagePull", Message: "pull image \"nope:1\": not found", Pods: 1, Example: "web-2-x",
			Event: &StuckEvent{Reason: "Failed", Message: `Failed to pull image "nope:1": repository does not exist`, Source: "kubelet w1", Count: 1}}},
		label: "8", step: `Failed: Failed to pull image "nope:1": repository does not exist`,
	}, {
		name: "a volume that does not mount: ContainerCreating with FailedMount",
		pod:  pending("web-2-x", "px", "w1", waiting("ContainerCreating", "")),
		events: []*corev1.Event{event("px", "Pod", "web-2-x", "Warning", "FailedMount",
			`MountVolume.SetUp failed for volume "cfg" : configmap "cfg" not found`, "kubelet", "w1", 500)},
		want: []Stuck{{Step: "8", Reason: "FailedMount", Message: `MountVolume.SetUp failed for volume "cfg" : configmap "cfg" not found`, Pods: 1, Example: "web-2-x",
			Event: &StuckEvent{Reason: "FailedMount", Message: `MountVolume.SetUp failed for volume "cfg" : configmap "cfg" not found`, Source: "kubelet w1", Count: 1}}},
		label: "8", step: `FailedMount: MountVolume.SetUp failed for volume "cfg" : configmap "cfg" not found`,
	}, {
		name: "scheduled since its FailedScheduling: being made, not stuck",
		pod:  pending("web-2-x", "px", "w1", waiting("ContainerCreating", "")),
		events: []*corev1.Event{event("px", "Pod", "web-2-x", "Warning", "FailedScheduling",
			"0/5 nodes are available: 5 Insufficient cpu.", "default-scheduler", "", 400)},
		want: []Stuck{},
	}} {
		t.Run(tc.name, func(t *testing.T) {
			o := rollout()
			o.Pods = append(o.Pods[:2], tc.pod)
			o.Events = append(o.Events[:5], tc.events...)
			c := BuildChain(kinds.Deployment, "default", "web", nil, o)
			if !reflect.DeepEqual(c.Stuck, tc.want) {
				got, _ := json.Marshal(c.Stuck)
				want, _ := json.Marshal(tc.want)
				t.Fatalf("stuck\n got %s\nwant %s", got, want)
			}
			for _, s := range c.Steps {
				if tc.label != "" && s.Label == tc.label && s.Stuck != tc.step {
					t.Errorf("step %s says %q, want %q", s.Label, s.Stuck, tc.step)
				}
				if tc.label == "" && s.Stuck != "" {
					t.Errorf("step %s says %q, want nothing", s.Label, s.Stuck)
				}
			}
		})
	}
}

// TestBuildService: a Service shows its endpoints by condition (ready, serving,
// terminating), the pods its selector picks (endpoints or not yet) and their workloads.
func TestBuildService(t *testing.T) {
	o := serviceObjects()
	v := BuildService("default", "web", o)
	if !v.Found || v.Summary != "1/2 endpoints ready" || v.Selector != "app=web" || !reflect.DeepEqual(v.Ports, []string{"http 80/TCP → 8080"}) {
		t.Fatalf("service head %+v", v)
	}
	if want := (EndpointCounts{Endpoints: 2, Ready: 1, Serving: 2, Terminating: 1}); v.EndpointCounts != want {
		t.Errorf("counts %+v, want %+v", v.EndpointCounts, want)
	}
	wantEP := []Endpoint{{Address: "10.0.0.1", Pod: "web-1-a", Node: "w1", Serving: true, Terminating: true, Slice: "web-abc"},
		{Address: "10.0.0.2", Pod: "web-2-a", Node: "w1", Ready: true, Serving: true, Slice: "web-abc"}}
	if !reflect.DeepEqual(v.Endpoints, wantEP) {
		t.Errorf("endpoints\n got %+v\nwant %+v", v.Endpoints, wantEP)
	}
	var pods []string
	for _, p := range v.Pods {
		pods = append(pods, fmt.Sprintf("%s:%s:%v", p.Name, p.State, p.Endpoint))
	}
	if got := strings.Join(pods, " "); got != "web-1-a:Ready:true web-2-a:Ready:true web-2-b:ContainerCreating:false web-2-c:Pending:false" {
		t.Errorf("pods %s", got)
	}
	if want := []Backer{{Kind: "Deployment", Name: "web", Pods: 4}}; !reflect.DeepEqual(v.Backers, want) {
		t.Errorf("backers %+v", v.Backers)
	}
	cl := BuildCluster(Raft{}, o)
	if want := []ServiceRow{{Namespace: "default", Name: "web", Type: "ClusterIP", ClusterIP: "10.96.0.10", EndpointCounts: v.EndpointCounts}}; !reflect.DeepEqual(cl.Services, want) {
		t.Errorf("cluster services %+v", cl.Services)
	}
	if v := BuildService("default", "nope", o); v.Found || v.Summary != "service default/nope not found" {
		t.Errorf("missing service %+v", v)
	}
}

// serviceObjects: rollout()'s pods labelled app=web (and one app=db), Service web
// selecting them, its slice with web-2-a ready and web-1-a terminating (serving).
func serviceObjects() *Objects {
	o := rollout()
	for _, p := range o.Pods {
		p.Labels = map[string]string{"app": "web"}
	}
	o.Pods[0].Status.PodIP, o.Pods[1].Status.PodIP = "10.0.0.1", "10.0.0.2"
	o.Pods = append(o.Pods, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "default", Labels: map[string]string{"app": "db"}}})
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "s1", ResourceVersion: "50"},
		Spec: corev1.ServiceSpec{Type: corev1.ServiceTypeClusterIP, ClusterIP: "10.96.0.10", Selector: map[string]string{"app": "web"},
			Ports: []corev1.ServicePort{{Name: "http", Port: 80, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(8080)}}}}
	ep := func(ip, pod string, ready, serving, terminating bool) discoveryv1.Endpoint {
		return discoveryv1.Endpoint{Addresses: []string{ip}, NodeName: ptr.To("w1"), TargetRef: &corev1.ObjectReference{Kind: "Pod", Name: pod},
			Conditions: discoveryv1.EndpointConditions{Ready: &ready, Serving: &serving, Terminating: &terminating}}
	}
	o.Services = []*corev1.Service{svc}
	o.EndpointSlices = []*discoveryv1.EndpointSlice{{ObjectMeta: metav1.ObjectMeta{Name: "web-abc", Namespace: "default",
		Labels: map[string]string{discoveryv1.LabelServiceName: "web"}},
		Endpoints: []discoveryv1.Endpoint{ep("10.0.0.2", "web-2-a", true, true, false), ep("10.0.0.1", "web-1-a", false, true, true)}}}
	return o
}

// bigRollout is a Deployment of n pods on nodes nodes, mid-rollout: a tenth Pending
// (unschedulable), a tenth ContainerCreating, the rest Ready; each pod with its events.
func bigRollout(n, nodes int) *Objects {
	o := rollout()
	d, rs := o.Deployments[0], o.ReplicaSets[1]
	d.Spec.Replicas = int32p(int32(n))
	o.Pods, o.Nodes, o.Events = nil, nil, o.Events[:2]
	for i := range nodes {
		o.Nodes = append(o.Nodes, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("sim-%d", i)}})
	}
	for i := range n {
		name, uid := fmt.Sprintf("web-2-%05d", i), types.UID(fmt.Sprintf("p%d", i))
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid,
			OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(rs)}}}
		switch {
		case i%10 == 0:
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable",
				Message: "0/1000 nodes are available: 1000 Insufficient cpu."}}
			o.Events = append(o.Events, event(uid, "Pod", name, "Warning", "FailedScheduling", "0/1000 nodes are available: 1000 Insufficient cpu.", "default-scheduler", "", 300))
		case i%10 == 1:
			p.Spec.NodeName = fmt.Sprintf("sim-%d", (i/10)%nodes)
		default:
			p.Spec.NodeName = fmt.Sprintf("sim-%d", (i/10)%nodes)
			p.Status.Phase, p.Status.Conditions = corev1.PodRunning, ready(2000)
			o.Events = append(o.Events,
				event(uid, "Pod", name, "Normal", "Scheduled", "Successfully assigned to "+p.Spec.NodeName, "default-scheduler", "", 300),
				event(uid, "Pod", name, "Normal", "Started", "Started container web", "kubelet", p.Spec.NodeName, 1000))
		}
		o.Pods = append(o.Pods, p)
	}
	return o
}

// TestBuildChainScale: 10,000 pods on 1,000 nodes are aggregated, by state and by node:
// the view holds a row per node and a line per reason, never one per pod, so the page
// draws (with its virtualized lists) a bounded number of elements.
func TestBuildChainScale(t *testing.T) {
	o := bigRollout(10000, 1000)
	c := BuildChain(kinds.Deployment, "default", "web", []string{"n1", "n2", "n3"}, o)
	if c.Summary != "8000/10000 ready" || c.Total != 10000 {
		t.Fatalf("summary %q total %d", c.Summary, c.Total)
	}
	if want := map[string]int{"Ready": 8000, "ContainerCreating": 1000, "Pending": 1000}; !reflect.DeepEqual(c.States, want) {
		t.Errorf("states %v", c.States)
	}
	if len(c.Nodes) != 1000 || len(c.Stuck) != 1 || c.Stuck[0].Pods != 1000 || len(c.Events) > 50 {
		t.Errorf("%d node rows, stuck %+v, %d events: want 1000 rows, one reason of 1000 pods, at most 50 events", len(c.Nodes), c.Stuck, len(c.Events))
	}
	b, _ := json.Marshal(c)
	if names := strings.Count(string(b), `web-2-0`); names > 60 || len(b) > 200_000 {
		t.Errorf("the chain of 10,000 pods is %d bytes naming %d pods: not aggregated", len(b), names)
	}
	cl := BuildCluster(Raft{}, o)
	if len(cl.Nodes) != 1000 || len(cl.Events) != MaxEvents {
		t.Errorf("cluster: %d nodes %d events", len(cl.Nodes), len(cl.Events))
	}
}

// TestBuildHead: the head a page gets alone when its workload changes is the chain's own
// (for each kind), found from the workload alone, and stays a few hundred bytes however
// many pods the chain aggregates.
func TestBuildHead(t *testing.T) {
	big := bigRollout(10000, 1000)
	for _, tc := range []struct {
		kind, name string
		objs       *Objects
		alone      *Objects // the workload alone, as WorkloadObjects reads it
		desired    int32
		state      string
	}{
		{kinds.Deployment, "web", rollout(), &Objects{Deployments: rollout().Deployments}, 3, "Progressing"},
		{kinds.Deployment, "web", big, &Objects{Deployments: big.Deployments}, 10000, "Progressing"},
		{kinds.Job, "tick-2", jobObjects(), &Objects{Jobs: jobObjects().Jobs[:1]}, 2, "Complete"},
		{kinds.CronJob, "tick", jobObjects(), &Objects{CronJobs: jobObjects().CronJobs, Jobs: jobObjects().Jobs}, 2, "Complete"},
	} {
		c := BuildChain(tc.kind, "default", tc.name, nil, tc.objs)
		h, found := BuildHead(tc.kind, "default", tc.name, tc.alone)
		if !found || !reflect.DeepEqual(h, c.ChainHead) {
			t.Errorf("%s %s: head %+v (found %v), the chain's %+v", tc.kind, tc.name, h, found, c.ChainHead)
			continue
		}
		if h.Desired != tc.desired || h.Workload == nil || h.Workload.State != tc.state || h.ResourceVersion == "" {
			t.Errorf("%s %s: head %+v %+v, want %d desired, %s", tc.kind, tc.name, h, h.Workload, tc.desired, tc.state)
		}
		hb, _ := json.Marshal(h)
		cb, _ := json.Marshal(c)
		if len(hb) > 1024 {
			t.Errorf("%s %s: the head is %d bytes (the chain %d): want it bounded by the workload, not its pods", tc.kind, tc.name, len(hb), len(cb))
		}
		t.Logf("%s %s: head %d bytes, chain %d bytes", tc.kind, tc.name, len(hb), len(cb))
	}
	if _, found := BuildHead(kinds.Deployment, "default", "gone", rollout()); found {
		t.Errorf("the head of a missing Deployment was found")
	}
}

// BenchmarkBuildChain10000: the chain of 10,000 pods, as each page's update computes it.
func BenchmarkBuildChain10000(b *testing.B) {
	o := bigRollout(10000, 1000)
	for b.Loop() {
		BuildChain(kinds.Deployment, "default", "web", nil, o)
	}
}

var _ = appsv1.Deployment{}
