package ui

import (
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/trace"
)

var t0 = time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

func event(uid types.UID, kind, name, typ, reason, msg, component, host string, ms int) *corev1.Event {
	return &corev1.Event{InvolvedObject: corev1.ObjectReference{UID: uid, Kind: kind, Namespace: "default", Name: name},
		Type: typ, Reason: reason, Message: msg, Source: corev1.EventSource{Component: component, Host: host},
		EventTime: metav1.NewMicroTime(at(ms)), Count: 1}
}

func ready(ms int) []corev1.PodCondition {
	return []corev1.PodCondition{
		{Type: corev1.PodScheduled, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at(ms - 500))},
		{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(at(ms))},
	}
}

func int32p(n int32) *int32 { return &n }

// rollout: Deployment web (3 replicas) mid-rollout. Its new ReplicaSet web-2 has a Ready
// pod on w1, a pod creating its container on w2 and a pod no node fits; the old
// ReplicaSet web-1 still has one Ready pod on w1.
func rollout() *Objects {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "d1", ResourceVersion: "40", Generation: 2},
		Spec:   appsv1.DeploymentSpec{Replicas: int32p(3)},
		Status: appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 4, UpdatedReplicas: 3, ReadyReplicas: 2, AvailableReplicas: 2}}
	old := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "default", UID: "r1",
		Annotations: map[string]string{trace.RevisionAnnotation: "1"}, OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(d)}},
		Spec: appsv1.ReplicaSetSpec{Replicas: int32p(1)}, Status: appsv1.ReplicaSetStatus{Replicas: 1, ReadyReplicas: 1}}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web-2", Namespace: "default", UID: "r2", CreationTimestamp: metav1.NewTime(at(0)),
		Annotations: map[string]string{trace.RevisionAnnotation: "2"}, OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(d)}},
		Spec: appsv1.ReplicaSetSpec{Replicas: int32p(3)}, Status: appsv1.ReplicaSetStatus{Replicas: 3, ReadyReplicas: 1}}
	cpu := func(m string) corev1.ResourceRequirements {
		return corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(m), corev1.ResourceMemory: resource.MustParse("64Mi")}}
	}
	pod := func(name string, uid types.UID, owner *appsv1.ReplicaSet, node string, st corev1.PodStatus) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid,
			OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(owner)}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "web", Resources: cpu("250m")}}}, Status: st}
	}
	pods := []*corev1.Pod{
		pod("web-1-a", "p0", old, "w1", corev1.PodStatus{Phase: corev1.PodRunning, Conditions: ready(-1000)}),
		pod("web-2-a", "p1", rs, "w1", corev1.PodStatus{Phase: corev1.PodRunning, Conditions: ready(1500)}),
		pod("web-2-b", "p2", rs, "w2", corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{
			{Name: "web", State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}}),
		pod("web-2-c", "p3", rs, "", corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{
			{Type: corev1.PodScheduled, Status: corev1.ConditionFalse, Reason: "Unschedulable", Message: "0/2 nodes are available: 2 Insufficient cpu."}}}),
	}
	events := []*corev1.Event{
		event("d1", "Deployment", "web", "Normal", "ScalingReplicaSet", "Scaled up replica set web-2 to 3", "deployment-controller", "cm1", 100),
		event("r2", "ReplicaSet", "web-2", "Normal", "SuccessfulCreate", "Created pod: web-2-a", "replicaset-controller", "cm1", 200),
		event("p1", "Pod", "web-2-a", "Normal", "Scheduled", "Successfully assigned default/web-2-a to w1", "default-scheduler", "s1", 300),
		event("p1", "Pod", "web-2-a", "Normal", "Pulled", "Container image already present", "kubelet", "w1", 800),
		event("p1", "Pod", "web-2-a", "Normal", "Started", "Started container web", "kubelet", "w1", 1000),
		event("p3", "Pod", "web-2-c", "Warning", "FailedScheduling", "0/2 nodes are available: 2 Insufficient cpu.", "default-scheduler", "s1", 400),
		event("x9", "Pod", "other", "Normal", "Pulled", "not about web", "kubelet", "w2", 50),
	}
	node := func(name string, ready corev1.ConditionStatus) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name},
			Status: corev1.NodeStatus{Allocatable: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("2"),
				corev1.ResourceMemory: resource.MustParse("1Gi"), corev1.ResourcePods: resource.MustParse("110")},
				Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: ready}}}}
	}
	return &Objects{
		Nodes: []*corev1.Node{node("w2", corev1.ConditionFalse), node("w1", corev1.ConditionTrue)},
		Pods:  pods, Deployments: []*appsv1.Deployment{d}, ReplicaSets: []*appsv1.ReplicaSet{old, rs}, Events: events,
	}
}

func TestBuildChainMidRollout(t *testing.T) {
	c := BuildChain(kinds.Deployment, "default", "web", []string{"n1", "n2", "n3"}, rollout())
	if !c.Found || c.Summary != "1/3 ready" || c.Ready != 1 || c.Total != 3 || c.Desired != 3 || c.Revision != 2 || c.Child != "replicaset web-2" {
		t.Fatalf("chain head: found %v summary %q ready %d/%d desired %d rev %d child %q", c.Found, c.Summary, c.Ready, c.Total, c.Desired, c.Revision, c.Child)
	}
	if want := map[string]int{"Ready": 1, "ContainerCreating": 1, "Pending": 1}; !reflect.DeepEqual(c.States, want) {
		t.Errorf("states %v, want %v", c.States, want)
	}
	wantNodes := []NodePods{{Node: "w1", States: map[string]int{"Ready": 1}}, {Node: "w2", States: map[string]int{"ContainerCreating": 1}}}
	if !reflect.DeepEqual(c.Nodes, wantNodes) {
		t.Errorf("pods by node %v, want %v", c.Nodes, wantNodes)
	}
	if want := []OldSet{{Name: "web-1", Revision: "1", Replicas: 1, Ready: 1}}; !reflect.DeepEqual(c.OldSets, want) {
		t.Errorf("old sets %v, want %v", c.OldSets, want)
	}
	wantStuck := []Stuck{{Step: "6-7", Reason: "Unschedulable", Message: "0/2 nodes are available: 2 Insufficient cpu.", Pods: 1, Example: "web-2-c",
		Event: &StuckEvent{Reason: "FailedScheduling", Message: "0/2 nodes are available: 2 Insufficient cpu.", Source: "default-scheduler s1", Count: 1}}}
	if !reflect.DeepEqual(c.Stuck, wantStuck) {
		t.Errorf("stuck %v, want %v", c.Stuck, wantStuck)
	}
	// The slowest pod (not scheduled) leads steps 4-10: created, then stuck at 6-7.
	var got []string
	for _, s := range c.Steps {
		got = append(got, fmt.Sprintf("%s:%s:%v", s.Label, s.Lane, s.Done))
	}
	want := "1:apiserver:true 2-3:workload controller:true 4-5:replicaset controller:true 6-7:scheduler:false 8:container runtime:false 9:container runtime:false 10:kubelet:false"
	if strings.Join(got, " ") != want {
		t.Errorf("steps\n got %s\nwant %s", strings.Join(got, " "), want)
	}
	// The step says why in the scheduler's Warning event.
	if s := c.Steps[3]; s.Stuck != "FailedScheduling: 0/2 nodes are available: 2 Insufficient cpu." {
		t.Errorf("step 6-7 stuck %q", s.Stuck)
	}
	n := 0
	for _, s := range c.Steps {
		n += s.Count
	}
	if n != 10 {
		t.Errorf("the steps cover %d of the ten", n)
	}
	var lanes []string
	for _, l := range c.Lanes {
		lanes = append(lanes, fmt.Sprintf("%s%v%v", l.Component, l.Instances, l.Steps))
	}
	if got, want := strings.Join(lanes, " "), "user[][] apiserver[n1 n2 n3][1] workload controller[][2-3] replicaset controller[][4-5] scheduler[][6-7] kubelet[w1 w2][10] container runtime[w1 w2][8 9]"; got != want {
		t.Errorf("lanes\n got %s\nwant %s", got, want)
	}
	// The workload's events only (its Deployment, ReplicaSets and pods, the old ones'
	// too), newest first.
	var reasons []string
	for _, e := range c.Events {
		reasons = append(reasons, e.Reason)
	}
	if got := strings.Join(reasons, " "); got != "Started Pulled FailedScheduling Scheduled SuccessfulCreate ScalingReplicaSet" {
		t.Errorf("events %s", got)
	}
	if c.Workload == nil || c.Workload.State != "Progressing" {
		t.Errorf("workload %+v", c.Workload)
	}
}

func TestBuildChainAllReady(t *testing.T) {
	o := rollout()
	o.Pods = o.Pods[1:2] // the old pod gone, web-2-a alone
	o.ReplicaSets[0].Spec.Replicas, o.ReplicaSets[0].Status.Replicas = int32p(0), 0
	o.Deployments[0].Spec.Replicas = int32p(1)
	c := BuildChain(kinds.Deployment, "default", "web", nil, o)
	if c.Summary != "1/1 ready" || len(c.OldSets) != 0 || len(c.Stuck) != 0 {
		t.Fatalf("summary %q old %v stuck %v", c.Summary, c.OldSets, c.Stuck)
	}
	for _, s := range c.Steps {
		if !s.Done || s.Stuck != "" {
			t.Errorf("step %s not done: %+v", s.Label, s)
		}
	}
	if s := c.Steps[len(c.Steps)-1]; s.SinceMs != 1400 || s.TookMs != 500 { // a rollout starts at its ScalingReplicaSet (100 ms)
		t.Errorf("step 10 at %vms taking %vms, want 1400 and 500", s.SinceMs, s.TookMs)
	}
}

func TestBuildChainStuckPull(t *testing.T) {
	o := rollout()
	o.Pods = append(o.Pods[:2], &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-2-d", Namespace: "default", UID: "p4",
		OwnerReferences: o.Pods[1].OwnerReferences}, Spec: corev1.PodSpec{NodeName: "w2"},
		Status: corev1.PodStatus{Phase: corev1.PodPending, ContainerStatuses: []corev1.ContainerStatus{{Name: "web", State: corev1.ContainerState{
			Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: `Back-off pulling image "nope:1"`}}}}}})
	c := BuildChain(kinds.Deployment, "default", "web", nil, o)
	want := []Stuck{{Step: "8", Reason: "ImagePullBackOff", Message: `Back-off pulling image "nope:1"`, Pods: 1, Example: "web-2-d"}}
	if !reflect.DeepEqual(c.Stuck, want) {
		t.Fatalf("stuck %v, want %v", c.Stuck, want)
	}
	if s := c.Steps[4]; s.Label != "8" || s.Stuck != `ImagePullBackOff: Back-off pulling image "nope:1"` {
		t.Errorf("step %s stuck %q", s.Label, s.Stuck)
	}
}

func TestBuildChainNotFound(t *testing.T) {
	c := BuildChain(kinds.Deployment, "default", "nope", nil, rollout())
	if c.Found || c.Summary != `deployment default/nope not found` || len(c.Steps) != 0 {
		t.Fatalf("%+v", c)
	}
}

func TestBuildCluster(t *testing.T) {
	raft := Raft{Leader: "n1", Term: 3, Members: []Member{{Name: "n1", Leader: true, Health: "healthy"}}}
	c := BuildCluster(raft, rollout())
	if !reflect.DeepEqual(c.Raft, raft) {
		t.Errorf("raft %+v", c.Raft)
	}
	want := []Node{
		{Name: "w1", Ready: true, CPURequested: 500, CPUAllocated: 2000, MemRequested: 128 << 20, MemAllocated: 1 << 30, Pods: 2, MaxPods: 110,
			States: map[string]int{"Ready": 2}},
		{Name: "w2", Ready: false, CPURequested: 250, CPUAllocated: 2000, MemRequested: 64 << 20, MemAllocated: 1 << 30, Pods: 1, MaxPods: 110,
			States: map[string]int{"ContainerCreating": 1}},
	}
	if !reflect.DeepEqual(c.Nodes, want) {
		t.Errorf("nodes\n got %+v\nwant %+v", c.Nodes, want)
	}
	wantW := []Workload{{Kind: "Deployment", Namespace: "default", Name: "web", Desired: 3, Updated: 3, Ready: 2, Available: 2, State: "Progressing"}}
	if !reflect.DeepEqual(c.Workloads, wantW) {
		t.Errorf("workloads %+v", c.Workloads)
	}
	if len(c.Events) != 7 || c.Events[0].Reason != "Started" || c.Events[0].Object != "Pod/default/web-2-a" || c.Events[0].Source != "kubelet w1" {
		t.Errorf("events %+v", c.Events)
	}
}

func TestWorkloadState(t *testing.T) {
	d := func(mod func(*appsv1.Deployment)) *appsv1.Deployment {
		x := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Generation: 1}, Spec: appsv1.DeploymentSpec{Replicas: int32p(2)},
			Status: appsv1.DeploymentStatus{ObservedGeneration: 1, Replicas: 2, UpdatedReplicas: 2, ReadyReplicas: 2, AvailableReplicas: 2}}
		mod(x)
		return x
	}
	for _, tc := range []struct {
		name, state string
		d           *appsv1.Deployment
	}{
		{"complete", "Complete", d(func(*appsv1.Deployment) {})},
		{"new generation not observed", "Progressing", d(func(x *appsv1.Deployment) { x.Generation = 2 })},
		{"old pods left", "Progressing", d(func(x *appsv1.Deployment) { x.Status.Replicas = 3 })},
		{"deadline exceeded", "Stuck", d(func(x *appsv1.Deployment) {
			x.Status.AvailableReplicas = 1
			x.Status.Conditions = []appsv1.DeploymentCondition{{Type: appsv1.DeploymentProgressing, Status: corev1.ConditionFalse,
				Reason: "ProgressDeadlineExceeded", Message: `ReplicaSet "web-2" has timed out progressing.`}}
		})},
	} {
		if got := deploymentWorkload(tc.d).State; got != tc.state {
			t.Errorf("%s: state %s, want %s", tc.name, got, tc.state)
		}
	}
}

func TestPodState(t *testing.T) {
	now := metav1.Now()
	for _, tc := range []struct {
		want string
		pod  corev1.Pod
	}{
		{"Pending", corev1.Pod{}},
		{"ContainerCreating", corev1.Pod{Spec: corev1.PodSpec{NodeName: "w1"}}},
		{"Running", corev1.Pod{Spec: corev1.PodSpec{NodeName: "w1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}},
		{"Ready", corev1.Pod{Spec: corev1.PodSpec{NodeName: "w1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: ready(0)}}},
		{"CrashLoopBackOff", corev1.Pod{Spec: corev1.PodSpec{NodeName: "w1"}, Status: corev1.PodStatus{Phase: corev1.PodRunning,
			ContainerStatuses: []corev1.ContainerStatus{{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "CrashLoopBackOff"}}}}}}},
		{"Completed", corev1.Pod{Spec: corev1.PodSpec{NodeName: "w1"}, Status: corev1.PodStatus{Phase: corev1.PodSucceeded}}},
		{"Evicted", corev1.Pod{Spec: corev1.PodSpec{NodeName: "w1"}, Status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted"}}},
		{"Terminating", corev1.Pod{ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &now}, Spec: corev1.PodSpec{NodeName: "w1"}}},
	} {
		if got := PodState(&tc.pod); got != tc.want {
			t.Errorf("PodState = %s, want %s (%+v)", got, tc.want, tc.pod.Status)
		}
	}
}

func TestMergeStatus(t *testing.T) {
	members := []Member{{Name: "n1", API: "a1"}, {Name: "n2", API: "a2"}, {Name: "n3", API: "a3"}}
	said := func(name, leader string, term, commit uint64) *statusAnswer {
		return &statusAnswer{Leader: leader, Term: term, Self: Member{Name: name, State: map[bool]string{true: "Leader", false: "Follower"}[name == leader], CommitIndex: commit}, Members: members}
	}
	// n1, the old leader, is dead; n2 won term 4; n3 has not heard yet and still names n1.
	r := MergeStatus(Raft{}, []answer{
		{addr: "a1", err: errors.New("connection refused")},
		{addr: "a2", st: said("n2", "n2", 4, 120)},
		{addr: "a3", st: said("n3", "n1", 3, 118)},
	})
	if r.Leader != "n2" || r.Term != 4 {
		t.Fatalf("leader %s term %d, want n2 in term 4", r.Leader, r.Term)
	}
	var got []string
	for _, m := range r.Members {
		got = append(got, fmt.Sprintf("%s:%v:%s:%s:%d", m.Name, m.Leader, m.State, m.Health, m.CommitIndex))
	}
	if s := strings.Join(got, " "); s != "n1:false::unreachable:0 n2:true:Leader:healthy:120 n3:false:Follower:healthy:118" {
		t.Errorf("members %s", s)
	}
	// Nobody answers: the members stay, all unreachable, and the error says why.
	r = MergeStatus(r, []answer{{addr: "a2", err: errors.New("connection refused")}})
	if r.Leader != "" || len(r.Members) != 3 || r.Members[1].Health != "unreachable" || !strings.Contains(r.Error, "a2: connection refused") {
		t.Errorf("no answer: %+v", r)
	}
}

func TestCheckLoopback(t *testing.T) {
	for addr, ok := range map[string]bool{"127.0.0.1:7480": true, "[::1]:0": true, "localhost:80": true, "127.0.0.2:1": true,
		"0.0.0.0:7480": false, ":7480": false, "10.0.0.1:80": false, "example.com:80": false, "nope": false} {
		if err := CheckLoopback(addr); (err == nil) != ok {
			t.Errorf("CheckLoopback(%q) = %v, want ok %v", addr, err, ok)
		}
	}
}

// TestNewestEvents: the n newest events, newest first, events of one time in the order
// they were given (as a stable sort of them all by time would give), with and without
// a filter by object, for fewer events than n, exactly n and many more, with many ties.
func TestNewestEvents(t *testing.T) {
	var events []*corev1.Event
	for i := range 500 {
		uid := types.UID(fmt.Sprint("p", i%7))
		// Times out of order and ties: 37 distinct times, each used by several events.
		events = append(events, event(uid, "Pod", fmt.Sprint("web-", i), "Normal", fmt.Sprint("R", i), "", "kubelet", "", (i*13)%37))
	}
	// want is the first n of all the events picked, sorted stably by time, newest first.
	want := func(events []*corev1.Event, n int, uids map[types.UID]bool) []string {
		var picked []*corev1.Event
		for _, e := range events {
			if uids == nil || uids[e.InvolvedObject.UID] {
				picked = append(picked, e)
			}
		}
		sort.SliceStable(picked, func(i, j int) bool { return eventTime(picked[i]).After(eventTime(picked[j])) })
		out := []string{}
		for _, e := range picked[:min(n, len(picked))] {
			out = append(out, e.Reason)
		}
		return out
	}
	reasons := func(evs []Event) []string {
		out := []string{}
		for _, e := range evs {
			out = append(out, e.Reason)
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		events []*corev1.Event
		n      int
		uids   map[types.UID]bool
	}{
		{"none", nil, 50, nil},
		{"fewer than n", events[:20], 50, nil},
		{"exactly n", events[:50], 50, nil},
		{"many, all", events, 50, nil},
		{"many, the cluster's n", events, MaxEvents, nil},
		{"many, one object's", events, 50, map[types.UID]bool{"p3": true}},
		{"many, two objects'", events, 10, map[types.UID]bool{"p1": true, "p5": true}},
		{"one", events, 1, nil},
		{"zero", events, 0, nil},
	} {
		if got, want := reasons(newestEvents(tc.events, tc.n, tc.uids)), want(tc.events, tc.n, tc.uids); !reflect.DeepEqual(got, want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, want)
		}
	}
}
