package kubelet

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
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
	if got := pullPolicy(&corev1.Container{Image: "nginx", ImagePullPolicy: PullNever}); got != PullNever {
		t.Errorf("explicit policy ignored: %s", got)
	}
}

func TestDecideContainer(t *testing.T) {
	p := backoffPolicy{initial: 10 * time.Second, max: 300 * time.Second, reset: 600 * time.Second}
	for _, tc := range []struct {
		name   string
		policy string
		hist   []Container
		b      *backoff
		now    time.Time
		want   decision
	}{
		{"first start", RestartAlways, nil, nil, at(0), decision{action: actStart}},
		{"running", RestartAlways, []Container{running("c", 2, 0)}, nil, at(50), decision{}},
		{"never: exit 1 stays", RestartNever, []Container{exited("c", 0, 0, 1, 1)}, nil, at(5), decision{}},
		{"onfailure: exit 0 stays", RestartOnFailure, []Container{exited("c", 0, 0, 1, 0)}, nil, at(5), decision{}},
		{"onfailure: exit 1 restarts", RestartOnFailure, []Container{exited("c", 0, 0, 1, 1)}, nil, at(5), decision{action: actStart, attempt: 1}},
		{"always: exit 0 restarts", RestartAlways, []Container{exited("c", 3, 0, 1, 0)}, nil, at(5), decision{action: actStart, attempt: 4}},
		{"first crash: no back-off yet", RestartAlways, []Container{exited("c", 0, 0, 1, 1)}, nil, at(1), decision{action: actStart, attempt: 1}},
		{"in back-off", RestartAlways, []Container{exited("c", 1, 1, 2, 1), exited("c", 0, 0, 1, 1)},
			&backoff{delay: 10 * time.Second, updated: at(1)}, at(4), decision{action: actWait, attempt: 2, wait: 8 * time.Second}},
		{"back-off over", RestartAlways, []Container{exited("c", 1, 1, 2, 1)},
			&backoff{delay: 10 * time.Second, updated: at(1)}, at(12), decision{action: actStart, attempt: 2}},
		{"back-off forgotten after twice the max", RestartAlways, []Container{exited("c", 1, 1, 2, 1)},
			&backoff{delay: 300 * time.Second, updated: at(1)}, at(602), decision{action: actStart, attempt: 2}},
		{"ran 10 minutes: back-off reset", RestartAlways, []Container{exited("c", 5, 100, 700, 1)},
			&backoff{delay: 300 * time.Second, updated: at(100)}, at(701), decision{action: actStart, attempt: 6}},
		{"created, never started: counts as failed", RestartOnFailure, []Container{{Name: "c", State: StateCreated}}, nil, at(1), decision{action: actStart, attempt: 1}},
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
	run := &corev1.ContainerStatus{State: &corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	ok := &corev1.ContainerStatus{State: &corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0}}}
	bad := &corev1.ContainerStatus{State: &corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2}}}
	wait := &corev1.ContainerStatus{State: &corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonContainerCreating}}}
	crash := &corev1.ContainerStatus{State: &corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff}},
		LastState: &corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1}}}
	for _, tc := range []struct {
		name   string
		policy string
		cs     []*corev1.ContainerStatus
		want   string
	}{
		{"no containers yet", RestartAlways, []*corev1.ContainerStatus{wait}, PhasePending},
		{"one running one creating", RestartAlways, []*corev1.ContainerStatus{run, wait}, PhasePending},
		{"running", RestartAlways, []*corev1.ContainerStatus{run, run}, PhaseRunning},
		{"crash loop is running", RestartAlways, []*corev1.ContainerStatus{crash}, PhaseRunning},
		{"always: exited is running", RestartAlways, []*corev1.ContainerStatus{ok}, PhaseRunning},
		{"never: all ok", RestartNever, []*corev1.ContainerStatus{ok, ok}, PhaseSucceeded},
		{"never: one failed", RestartNever, []*corev1.ContainerStatus{ok, bad}, PhaseFailed},
		{"never: one still running", RestartNever, []*corev1.ContainerStatus{bad, run}, PhaseRunning},
		{"onfailure: all ok", RestartOnFailure, []*corev1.ContainerStatus{ok}, PhaseSucceeded},
		{"onfailure: failed restarts", RestartOnFailure, []*corev1.ContainerStatus{bad}, PhaseRunning},
	} {
		if got := podPhase(tc.policy, tc.cs); got != tc.want {
			t.Errorf("%s: phase %s, want %s", tc.name, got, tc.want)
		}
	}
}

func testPod(policy string, names ...string) *corev1.Pod {
	p := &corev1.Pod{Metadata: &corev1.ObjectMeta{Name: "p", Namespace: "default", Uid: "u"}, Spec: &corev1.PodSpec{RestartPolicy: policy}}
	for _, n := range names {
		p.Spec.Containers = append(p.Spec.Containers, &corev1.Container{Name: n, Image: "img:1"})
	}
	return p
}

func condMap(st *corev1.PodStatus) map[string]string {
	m := map[string]string{}
	for _, c := range st.GetConditions() {
		m[c.GetType()] = c.GetStatus() + "/" + c.GetReason()
	}
	return m
}

func TestComputePodStatus(t *testing.T) {
	pull := &corev1.ContainerStateWaiting{Reason: ReasonErrImagePull, Message: "no such image"}
	crash := &corev1.ContainerStateWaiting{Reason: ReasonCrashLoopBackOff, Message: "back-off 10s restarting failed container"}
	for _, tc := range []struct {
		name       string
		pod        *corev1.Pod
		containers []Container
		waiting    map[string]*corev1.ContainerStateWaiting
		phase      string
		ready      string
		check      func(t *testing.T, cs []*corev1.ContainerStatus)
	}{
		{"creating", testPod("", "a"), nil, nil, PhasePending, "False/ContainersNotReady", func(t *testing.T, cs []*corev1.ContainerStatus) {
			if cs[0].GetState().GetWaiting().GetReason() != ReasonContainerCreating || cs[0].GetReady() {
				t.Errorf("status %v", cs[0])
			}
		}},
		{"image pull failed", testPod("", "a"), nil, map[string]*corev1.ContainerStateWaiting{"a": pull}, PhasePending, "False/ContainersNotReady", func(t *testing.T, cs []*corev1.ContainerStatus) {
			if !proto.Equal(cs[0].GetState().GetWaiting(), pull) {
				t.Errorf("status %v", cs[0])
			}
		}},
		{"running and ready", testPod("", "a", "b"), []Container{running("a", 0, 5), running("b", 0, 6)}, nil, PhaseRunning, "True/", func(t *testing.T, cs []*corev1.ContainerStatus) {
			if !cs[0].GetReady() || cs[0].GetContainerId() != "sim://aa" || !cs[1].GetState().GetRunning().GetStartedAt().AsTime().Equal(at(6)) || !cs[0].GetStarted() {
				t.Errorf("statuses %v", cs)
			}
		}},
		{"one running one creating", testPod("", "a", "b"), []Container{running("a", 0, 5)}, nil, PhasePending, "False/ContainersNotReady", nil},
		{"completed", testPod(RestartNever, "a"), []Container{exited("a", 0, 1, 2, 0)}, nil, PhaseSucceeded, "False/PodCompleted", func(t *testing.T, cs []*corev1.ContainerStatus) {
			term := cs[0].GetState().GetTerminated()
			if term.GetReason() != "Completed" || term.GetExitCode() != 0 || !term.GetFinishedAt().AsTime().Equal(at(2)) || term.GetContainerId() != "sim://aa" {
				t.Errorf("terminated %v", term)
			}
		}},
		{"failed", testPod(RestartNever, "a"), []Container{exited("a", 0, 1, 2, 3)}, nil, PhaseFailed, "False/PodCompleted", func(t *testing.T, cs []*corev1.ContainerStatus) {
			if term := cs[0].GetState().GetTerminated(); term.GetReason() != "Error" || term.GetExitCode() != 3 {
				t.Errorf("terminated %v", term)
			}
		}},
		{"crash loop", testPod("", "a"), []Container{exited("a", 2, 10, 11, 1), exited("a", 1, 5, 6, 1)}, map[string]*corev1.ContainerStateWaiting{"a": crash}, PhaseRunning, "False/ContainersNotReady",
			func(t *testing.T, cs []*corev1.ContainerStatus) {
				if cs[0].GetState().GetWaiting().GetReason() != ReasonCrashLoopBackOff || cs[0].GetRestartCount() != 2 ||
					cs[0].GetLastState().GetTerminated().GetExitCode() != 1 || cs[0].GetLastState().GetTerminated().GetContainerId() != "sim://ac" {
					t.Errorf("status %v", cs[0])
				}
			}},
		{"restarted and running", testPod("", "a"), []Container{running("a", 1, 10), exited("a", 0, 5, 6, 1)}, nil, PhaseRunning, "True/",
			func(t *testing.T, cs []*corev1.ContainerStatus) {
				if cs[0].GetRestartCount() != 1 || cs[0].GetLastState().GetTerminated().GetExitCode() != 1 || cs[0].GetState().GetRunning() == nil {
					t.Errorf("status %v", cs[0])
				}
			}},
		{"terminal stays terminal", func() *corev1.Pod {
			p := testPod(RestartNever, "a")
			p.Status = &corev1.PodStatus{Phase: PhaseSucceeded}
			return p
		}(), nil, nil, PhaseSucceeded, "False/PodCompleted", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := computePodStatus(tc.pod, byName(tc.containers), tc.waiting, "sim", "10.0.0.1", at(100))
			if st.GetPhase() != tc.phase {
				t.Errorf("phase %s, want %s", st.GetPhase(), tc.phase)
			}
			c := condMap(st)
			if c["Ready"] != tc.ready || c["ContainersReady"] != tc.ready || c["PodScheduled"] != "True/" || c["Initialized"] != "True/" {
				t.Errorf("conditions %v, want Ready %s", c, tc.ready)
			}
			if st.GetHostIp() != "10.0.0.1" || st.GetPodIp() != "10.0.0.1" || !st.GetStartTime().AsTime().Equal(at(100)) {
				t.Errorf("hostIP %q podIP %q startTime %v", st.GetHostIp(), st.GetPodIp(), st.GetStartTime())
			}
			if len(st.GetContainerStatuses()) != len(tc.pod.GetSpec().GetContainers()) {
				t.Fatalf("%d container statuses", len(st.GetContainerStatuses()))
			}
			if tc.check != nil {
				tc.check(t, st.GetContainerStatuses())
			}
		})
	}
}

// A status computed again from the same state, later, is equal: the kubelet writes
// only changes.
func TestComputePodStatusIsStable(t *testing.T) {
	pod := testPod("", "a")
	ctrs := byName([]Container{running("a", 0, 5)})
	first := computePodStatus(pod, ctrs, nil, "sim", "10.0.0.1", at(10))
	pod.Status = first
	again := computePodStatus(pod, ctrs, nil, "sim", "10.0.0.1", at(50))
	if !proto.Equal(first, again) {
		t.Fatalf("status changed with time alone:\n%v\n%v", first, again)
	}
	// A transition moves only the conditions that changed.
	pod.Status.Conditions[1].LastTransitionTime = timestamppb.New(at(10))
	later := computePodStatus(pod, byName([]Container{exited("a", 0, 5, 60, 1)}), nil, "sim", "10.0.0.1", at(60))
	for _, c := range later.GetConditions() {
		want := at(10)
		if c.GetType() == "Ready" || c.GetType() == "ContainersReady" {
			want = at(60)
		}
		if !c.GetLastTransitionTime().AsTime().Equal(want) {
			t.Errorf("%s transition at %v, want %v", c.GetType(), c.GetLastTransitionTime().AsTime(), want)
		}
	}
}
