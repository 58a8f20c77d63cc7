package kubelet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/kinds"
)

var t0 = time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)

func at(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }

func running(name string, attempt, started int) Container {
	return Container{ID: name + string(rune('a'+attempt)), Name: name, Attempt: attempt, State: StateRunning, StartedAt: at(started), CreatedAt: at(started)}
}

func exited(name string, attempt, started, finished, code int) Container {
	return Container{ID: name + string(rune('a'+attempt)), Name: name, Attempt: attempt, State: StateExited, ExitCode: code,
		StartedAt: at(started), FinishedAt: at(finished), CreatedAt: at(started)}
}

func TestPullPolicy(t *testing.T) {
	for img, want := range map[string]string{
		"nginx": PullAlways, "nginx:latest": PullAlways, "nginx:1.25": PullIfNotPresent,
		"localhost:5000/app": PullAlways, "localhost:5000/app:v1": PullIfNotPresent, "app@sha256:abc": PullIfNotPresent,
	} {
		if got := pullPolicy(&corev1.Container{Image: img}); got != want {
			t.Errorf("pullPolicy(%q) = %s, want %s", img, got, want)
		}
	}
	if got := pullPolicy(&corev1.Container{Image: "nginx", ImagePullPolicy: corev1.PullNever}); got != PullNever {
		t.Errorf("explicit policy ignored: %s", got)
	}
}

func TestDecideContainer(t *testing.T) {
	p := backoffPolicy{initial: 10 * time.Second, max: 300 * time.Second, reset: 600 * time.Second}
	for _, tc := range []struct {
		name   string
		policy corev1.RestartPolicy
		hist   []Container
		b      *backoff
		now    time.Time
		want   decision
	}{
		{"first start", corev1.RestartPolicyAlways, nil, nil, at(0), decision{action: actStart}},
		{"running", corev1.RestartPolicyAlways, []Container{running("c", 2, 0)}, nil, at(50), decision{}},
		{"never: exit 1 stays", corev1.RestartPolicyNever, []Container{exited("c", 0, 0, 1, 1)}, nil, at(5), decision{}},
		{"onfailure: exit 0 stays", corev1.RestartPolicyOnFailure, []Container{exited("c", 0, 0, 1, 0)}, nil, at(5), decision{}},
		{"onfailure: exit 1 restarts", corev1.RestartPolicyOnFailure, []Container{exited("c", 0, 0, 1, 1)}, nil, at(5), decision{action: actStart, attempt: 1}},
		{"always: exit 0 restarts", corev1.RestartPolicyAlways, []Container{exited("c", 3, 0, 1, 0)}, nil, at(5), decision{action: actStart, attempt: 4}},
		{"first crash: no back-off yet", corev1.RestartPolicyAlways, []Container{exited("c", 0, 0, 1, 1)}, nil, at(1), decision{action: actStart, attempt: 1}},
		{"in back-off", corev1.RestartPolicyAlways, []Container{exited("c", 1, 1, 2, 1), exited("c", 0, 0, 1, 1)},
			&backoff{delay: 10 * time.Second, updated: at(1)}, at(4), decision{action: actWait, attempt: 2, wait: 8 * time.Second}},
		{"back-off over", corev1.RestartPolicyAlways, []Container{exited("c", 1, 1, 2, 1)},
			&backoff{delay: 10 * time.Second, updated: at(1)}, at(12), decision{action: actStart, attempt: 2}},
		{"back-off forgotten after twice the max", corev1.RestartPolicyAlways, []Container{exited("c", 1, 1, 2, 1)},
			&backoff{delay: 300 * time.Second, updated: at(1)}, at(602), decision{action: actStart, attempt: 2}},
		{"ran 10 minutes: back-off reset", corev1.RestartPolicyAlways, []Container{exited("c", 5, 100, 700, 1)},
			&backoff{delay: 300 * time.Second, updated: at(100)}, at(701), decision{action: actStart, attempt: 6}},
		{"created, never started: counts as failed", corev1.RestartPolicyOnFailure, []Container{{Name: "c", State: StateCreated}}, nil, at(1), decision{action: actStart, attempt: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := decideContainer(tc.policy, tc.hist, tc.b, tc.now, p); got != tc.want {
				t.Errorf("decideContainer = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestBackoffNext(t *testing.T) {
	p := backoffPolicy{initial: 10 * time.Second, max: 40 * time.Second, reset: 600 * time.Second}
	var b *backoff
	var delays []time.Duration
	for i := 0; i < 5; i++ {
		b = p.next(b, nil, at(i))
		delays = append(delays, b.delay)
	}
	want := []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second, 40 * time.Second, 40 * time.Second}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("delays = %v, want %v", delays, want)
		}
	}
	long := exited("c", 1, 0, 700, 1)
	if b = p.next(b, &long, at(700)); b.delay != 10*time.Second {
		t.Fatalf("after a long run the back-off is %v", b.delay)
	}
}

func TestPodPhase(t *testing.T) {
	run := corev1.ContainerStatus{State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	ok := corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}
	bad := corev1.ContainerStatus{State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}}
	wait := corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonContainerCreating}}}
	crash := corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff}},
		LastTerminationState: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}
	for _, tc := range []struct {
		name   string
		policy corev1.RestartPolicy
		cs     []corev1.ContainerStatus
		want   corev1.PodPhase
	}{
		{"no containers yet", corev1.RestartPolicyAlways, []corev1.ContainerStatus{wait}, corev1.PodPending},
		{"one running one creating", corev1.RestartPolicyAlways, []corev1.ContainerStatus{run, wait}, corev1.PodPending},
		{"running", corev1.RestartPolicyAlways, []corev1.ContainerStatus{run, run}, corev1.PodRunning},
		{"crash loop is running", corev1.RestartPolicyAlways, []corev1.ContainerStatus{crash}, corev1.PodRunning},
		{"always: exited is running", corev1.RestartPolicyAlways, []corev1.ContainerStatus{ok}, corev1.PodRunning},
		{"never: all ok", corev1.RestartPolicyNever, []corev1.ContainerStatus{ok, ok}, corev1.PodSucceeded},
		{"never: one failed", corev1.RestartPolicyNever, []corev1.ContainerStatus{ok, bad}, corev1.PodFailed},
		{"never: one still running", corev1.RestartPolicyNever, []corev1.ContainerStatus{bad, run}, corev1.PodRunning},
		{"onfailure: all ok", corev1.RestartPolicyOnFailure, []corev1.ContainerStatus{ok}, corev1.PodSucceeded},
		{"onfailure: failed restarts", corev1.RestartPolicyOnFailure, []corev1.ContainerStatus{bad}, corev1.PodRunning},
	} {
		if got := podPhase(tc.policy, tc.cs, nil); got != tc.want {
			t.Errorf("%s: phase %s, want %s", tc.name, got, tc.want)
		}
	}
}

func testPod(policy corev1.RestartPolicy, names ...string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", UID: "u"}, Spec: corev1.PodSpec{RestartPolicy: policy}}
	for _, n := range names {
		p.Spec.Containers = append(p.Spec.Containers, corev1.Container{Name: n, Image: "img:1"})
	}
	return p
}

func condMap(st *corev1.PodStatus) map[corev1.PodConditionType]string {
	m := map[corev1.PodConditionType]string{}
	for _, c := range st.Conditions {
		m[c.Type] = string(c.Status) + "/" + c.Reason
	}
	return m
}

// terminatedOf is a state's termination; empty when it did not terminate.
func terminatedOf(s corev1.ContainerState) corev1.ContainerStateTerminated {
	if s.Terminated == nil {
		return corev1.ContainerStateTerminated{}
	}
	return *s.Terminated
}

func TestComputePodStatus(t *testing.T) {
	pull := &corev1.ContainerStateWaiting{Reason: ReasonErrImagePull, Message: "no such image"}
	crash := &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff, Message: "back-off 10s restarting failed container"}
	for _, tc := range []struct {
		name       string
		pod        *corev1.Pod
		containers []Container
		waiting    map[string]*corev1.ContainerStateWaiting
		phase      corev1.PodPhase
		ready      string
		check      func(t *testing.T, cs []corev1.ContainerStatus)
	}{
		{"creating", testPod("", "a"), nil, nil, corev1.PodPending, "False/ContainersNotReady", func(t *testing.T, cs []corev1.ContainerStatus) {
			if waitingReason(cs[0].State.Waiting) != ReasonContainerCreating || cs[0].Ready {
				t.Errorf("status %v", cs[0])
			}
		}},
		{"image pull failed", testPod("", "a"), nil, map[string]*corev1.ContainerStateWaiting{"a": pull}, corev1.PodPending, "False/ContainersNotReady", func(t *testing.T, cs []corev1.ContainerStatus) {
			if !equality.Semantic.DeepEqual(cs[0].State.Waiting, pull) {
				t.Errorf("status %v", cs[0])
			}
		}},
		{"running and ready", testPod("", "a", "b"), []Container{running("a", 0, 5), running("b", 0, 6)}, nil, corev1.PodRunning, "True/", func(t *testing.T, cs []corev1.ContainerStatus) {
			if !cs[0].Ready || cs[0].ContainerID != "sim://aa" || cs[1].State.Running == nil || !cs[1].State.Running.StartedAt.Time.Equal(at(6)) || !ptr.Deref(cs[0].Started, false) {
				t.Errorf("statuses %v", cs)
			}
		}},
		{"one running one creating", testPod("", "a", "b"), []Container{running("a", 0, 5)}, nil, corev1.PodPending, "False/ContainersNotReady", nil},
		{"completed", testPod(corev1.RestartPolicyNever, "a"), []Container{exited("a", 0, 1, 2, 0)}, nil, corev1.PodSucceeded, "False/PodCompleted", func(t *testing.T, cs []corev1.ContainerStatus) {
			term := terminatedOf(cs[0].State)
			if term.Reason != "Completed" || term.ExitCode != 0 || !term.FinishedAt.Time.Equal(at(2)) || term.ContainerID != "sim://aa" {
				t.Errorf("terminated %v", term)
			}
		}},
		{"failed", testPod(corev1.RestartPolicyNever, "a"), []Container{exited("a", 0, 1, 2, 3)}, nil, corev1.PodFailed, "False/PodCompleted", func(t *testing.T, cs []corev1.ContainerStatus) {
			if term := terminatedOf(cs[0].State); term.Reason != "Error" || term.ExitCode != 3 {
				t.Errorf("terminated %v", term)
			}
		}},
		{"crash loop", testPod("", "a"), []Container{exited("a", 2, 10, 11, 1), exited("a", 1, 5, 6, 1)}, map[string]*corev1.ContainerStateWaiting{"a": crash}, corev1.PodRunning, "False/ContainersNotReady",
			func(t *testing.T, cs []corev1.ContainerStatus) {
				if last := terminatedOf(cs[0].LastTerminationState); waitingReason(cs[0].State.Waiting) != ReasonCrashLoopBackOff || cs[0].RestartCount != 2 ||
					last.ExitCode != 1 || last.ContainerID != "sim://ac" {
					t.Errorf("status %v", cs[0])
				}
			}},
		{"restarted and running", testPod("", "a"), []Container{running("a", 1, 10), exited("a", 0, 5, 6, 1)}, nil, corev1.PodRunning, "True/",
			func(t *testing.T, cs []corev1.ContainerStatus) {
				if cs[0].RestartCount != 1 || terminatedOf(cs[0].LastTerminationState).ExitCode != 1 || cs[0].State.Running == nil {
					t.Errorf("status %v", cs[0])
				}
			}},
		{"terminal stays terminal", func() *corev1.Pod {
			p := testPod(corev1.RestartPolicyNever, "a")
			p.Status = corev1.PodStatus{Phase: corev1.PodSucceeded}
			return p
		}(), nil, nil, corev1.PodSucceeded, "False/PodCompleted", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := computePodStatus(podState{spec: &tc.pod.Spec, old: &tc.pod.Status, containers: byName(tc.containers), waiting: tc.waiting, scheme: "sim", hostIP: "10.0.0.1", podIP: "10.0.0.1", now: at(100)})
			if st.Phase != tc.phase {
				t.Errorf("phase %s, want %s", st.Phase, tc.phase)
			}
			c := condMap(st)
			if c[corev1.PodReady] != tc.ready || c[corev1.ContainersReady] != tc.ready || c[corev1.PodScheduled] != "True/" || c[corev1.PodInitialized] != "True/" {
				t.Errorf("conditions %v, want Ready %s", c, tc.ready)
			}
			if st.HostIP != "10.0.0.1" || st.PodIP != "10.0.0.1" || st.StartTime == nil || !st.StartTime.Time.Equal(at(100)) {
				t.Errorf("hostIP %q podIP %q startTime %v", st.HostIP, st.PodIP, st.StartTime)
			}
			if len(st.ContainerStatuses) != len(tc.pod.Spec.Containers) {
				t.Fatalf("%d container statuses", len(st.ContainerStatuses))
			}
			if tc.check != nil {
				tc.check(t, st.ContainerStatuses)
			}
		})
	}
}

// A pod with a sidecar, through its life: the sidecar must have started (its startup
// probe passed) before the next init container counts; it counts in Ready by its
// readiness; the pod runs on while it does, and completes once the app containers are
// done and it has been stopped, whatever its exit code.
func TestComputePodStatusSidecar(t *testing.T) {
	pod := testPod(corev1.RestartPolicyNever, "a")
	exec := corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}
	pod.Spec.InitContainers = []corev1.Container{
		{Name: "s", Image: "img:1", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways),
			StartupProbe: &corev1.Probe{ProbeHandler: exec}, ReadinessProbe: &corev1.Probe{ProbeHandler: exec}},
		{Name: "i", Image: "img:1"},
	}
	for _, tc := range []struct {
		name           string
		containers     []Container
		started, ready result
		phase          corev1.PodPhase
		initialized    string
		podReady       string
		done           bool
		sidecarStarted bool
	}{
		{"sidecar starting", []Container{running("s", 0, 1)}, resultUnknown, resultFailure, corev1.PodPending, "False/ContainersNotInitialized", "False/ContainersNotReady", false, false},
		{"sidecar started", []Container{running("s", 0, 1)}, resultSuccess, resultFailure, corev1.PodPending, "False/ContainersNotInitialized", "False/ContainersNotReady", false, true},
		{"init done, sidecar unready", []Container{running("s", 0, 1), exited("i", 0, 2, 3, 0), running("a", 0, 4)}, resultSuccess, resultFailure, corev1.PodRunning, "True/", "False/ContainersNotReady", false, true},
		{"all ready", []Container{running("s", 0, 1), exited("i", 0, 2, 3, 0), running("a", 0, 4)}, resultSuccess, resultSuccess, corev1.PodRunning, "True/", "True/", false, true},
		{"app done, sidecar runs", []Container{running("s", 0, 1), exited("i", 0, 2, 3, 0), exited("a", 0, 4, 5, 0)}, resultSuccess, resultSuccess, corev1.PodRunning, "True/", "False/ContainersNotReady", true, true},
		{"app done, sidecar stopped", []Container{exited("s", 0, 1, 6, 143), exited("i", 0, 2, 3, 0), exited("a", 0, 4, 5, 0)}, resultSuccess, resultSuccess, corev1.PodSucceeded, "True/", "False/PodCompleted", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			probe := func(c Container, typ probeType) result {
				return map[probeType]result{startup: tc.started, readiness: tc.ready, liveness: resultSuccess}[typ]
			}
			hist := byName(tc.containers)
			st := computePodStatus(podState{spec: &pod.Spec, old: &corev1.PodStatus{}, containers: hist, scheme: "sim", now: at(100), probe: probe})
			c := condMap(st)
			if st.Phase != tc.phase || c[corev1.PodInitialized] != tc.initialized || c[corev1.PodReady] != tc.podReady {
				t.Errorf("phase %s, conditions %v; want %s, Initialized %s, Ready %s", st.Phase, c, tc.phase, tc.initialized, tc.podReady)
			}
			if got := podDone(&pod.Spec, hist, probe); got != tc.done {
				t.Errorf("podDone %v, want %v", got, tc.done)
			}
			s := statusOf(st.InitContainerStatuses, "s")
			if ptr.Deref(s.Started, false) != tc.sidecarStarted || s.Ready != (tc.sidecarStarted && tc.ready == resultSuccess) {
				t.Errorf("sidecar's status: started %v ready %v", ptr.Deref(s.Started, false), s.Ready)
			}
		})
	}
}

func statusOf(statuses []corev1.ContainerStatus, name string) corev1.ContainerStatus {
	for _, s := range statuses {
		if s.Name == name {
			return s
		}
	}
	return corev1.ContainerStatus{}
}

// Conditions the kubelet does not own are kept: the eviction's DisruptionTarget.
func TestComputePodStatusKeepsOthersConditions(t *testing.T) {
	pod := testPod("", "a")
	target := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, Reason: "EvictionByEvictionAPI",
		Message: "Eviction API: evicting", LastTransitionTime: metav1.NewTime(at(7))}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}, target}
	st := computePodStatus(podState{spec: &pod.Spec, old: &pod.Status, containers: byName([]Container{running("a", 0, 5)}), scheme: "sim", hostIP: "10.0.0.1", podIP: "10.0.0.1", now: at(10)})
	if got := st.Conditions[len(st.Conditions)-1]; len(st.Conditions) != 6 || !equality.Semantic.DeepEqual(got, target) {
		t.Fatalf("conditions %+v", st.Conditions)
	}
}

// The status and the kubelet's conditions say which generation of the pod they
// observed; a condition another component owns keeps its own.
func TestComputePodStatusObservedGeneration(t *testing.T) {
	pod := testPod("", "a")
	pod.Generation = 7
	target := corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue, ObservedGeneration: 3}
	pod.Status.Conditions = []corev1.PodCondition{target}
	st := computePodStatus(podState{spec: &pod.Spec, old: &pod.Status, containers: byName([]Container{running("a", 0, 5)}), scheme: "sim", hostIP: "10.0.0.1", podIP: "10.0.0.1", now: at(10), generation: pod.Generation})
	if st.ObservedGeneration != 7 {
		t.Errorf("observedGeneration %d, want 7", st.ObservedGeneration)
	}
	for _, c := range st.Conditions {
		if want := map[bool]int64{true: 3, false: 7}[c.Type == corev1.DisruptionTarget]; c.ObservedGeneration != want {
			t.Errorf("condition %s observedGeneration %d, want %d", c.Type, c.ObservedGeneration, want)
		}
	}
}

// A status computed again from the same state, later, is equal: the kubelet writes
// only changes.
func TestComputePodStatusIsStable(t *testing.T) {
	pod := testPod("", "a")
	ctrs := byName([]Container{running("a", 0, 5)})
	first := computePodStatus(podState{spec: &pod.Spec, old: &pod.Status, containers: ctrs, waiting: nil, scheme: "sim", hostIP: "10.0.0.1", podIP: "10.0.0.1", now: at(10)})
	pod.Status = *first
	again := computePodStatus(podState{spec: &pod.Spec, old: &pod.Status, containers: ctrs, waiting: nil, scheme: "sim", hostIP: "10.0.0.1", podIP: "10.0.0.1", now: at(50)})
	if !equality.Semantic.DeepEqual(first, again) {
		t.Fatalf("status changed with time alone:\n%v\n%v", first, again)
	}
	// A transition moves only the conditions that changed.
	pod.Status.Conditions[1].LastTransitionTime = metav1.NewTime(at(10))
	later := computePodStatus(podState{spec: &pod.Spec, old: &pod.Status, containers: byName([]Container{exited("a", 0, 5, 60, 1)}), scheme: "sim", hostIP: "10.0.0.1", podIP: "10.0.0.1", now: at(60)})
	for _, c := range later.Conditions {
		want := at(10)
		if c.Type == corev1.PodReady || c.Type == corev1.ContainersReady {
			want = at(60)
		}
		if !c.LastTransitionTime.Time.Equal(want) {
			t.Errorf("%s transition at %v, want %v", c.Type, c.LastTransitionTime.Time, want)
		}
	}
}

// The API keeps a status' times in whole seconds (metav1.Time on the wire): a status
// computed from sub-second times equals itself read back from the server, so the
// kubelet, which compares its status with the pod's, does not write it again (after a
// kubelet restart, say, when it has no memory of what it wrote).
func TestComputePodStatusSurvivesTheWire(t *testing.T) {
	pod := testPod(corev1.RestartPolicyAlways, "a", "b")
	sub := func(c Container) Container {
		c.StartedAt, c.FinishedAt = c.StartedAt.Add(300*time.Millisecond), c.FinishedAt.Add(700*time.Millisecond)
		return c
	}
	ctrs := byName([]Container{sub(running("a", 1, 20)), sub(exited("a", 0, 5, 6, 1)), sub(exited("b", 0, 7, 8, 0))})
	st := computePodStatus(podState{spec: &pod.Spec, old: &pod.Status, containers: ctrs, waiting: nil, scheme: "sim", hostIP: "10.0.0.1", podIP: "10.0.0.1", now: at(30).Add(450 * time.Millisecond)})
	pod.Status = *st
	data, err := kinds.Encode(pod)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := kinds.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	read := obj.(*corev1.Pod)
	if !equality.Semantic.DeepEqual(st, &read.Status) {
		t.Fatalf("status changed on the wire:\nwritten %v\nread    %v", st, &read.Status)
	}
	again := computePodStatus(podState{spec: &read.Spec, old: &read.Status, containers: ctrs, waiting: nil, scheme: "sim", hostIP: "10.0.0.1", podIP: "10.0.0.1", now: at(90).Add(100 * time.Millisecond)})
	if !equality.Semantic.DeepEqual(again, &read.Status) {
		t.Fatalf("status computed again differs from the one read back:\n%v\n%v", again, &read.Status)
	}
}
