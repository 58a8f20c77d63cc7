package table

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The pod columns as kubectl prints them (Kubernetes' printPod): init containers show
// as Init:N/M or their failure, sidecars count as containers once started, and their
// restarts count with the app containers'.
func TestPodColumns(t *testing.T) {
	now := time.Date(2030, 1, 1, 0, 10, 0, 0, time.UTC)
	running := corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}
	waiting := func(reason string) corev1.ContainerState {
		return corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason}}
	}
	done := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}
	crashed := corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, FinishedAt: metav1.NewTime(now.Add(-2 * time.Minute))}}
	pod := func(phase corev1.PodPhase, initialized bool, init, app []corev1.ContainerStatus) *corev1.Pod {
		p := &corev1.Pod{Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "setup"}, {Name: "side", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}},
			Containers:     []corev1.Container{{Name: "app"}}},
			Status: corev1.PodStatus{Phase: phase, InitContainerStatuses: init, ContainerStatuses: app}}
		if initialized {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodInitialized, Status: corev1.ConditionTrue}}
		}
		return p
	}
	for _, tc := range []struct {
		name                    string
		pod                     *corev1.Pod
		ready, status, restarts string
	}{
		{"first init container running", pod(corev1.PodPending, false,
			[]corev1.ContainerStatus{{Name: "setup", State: running}, {Name: "side", State: waiting("PodInitializing")}},
			[]corev1.ContainerStatus{{Name: "app", State: waiting("PodInitializing")}}), "0/2", "Init:0/2", "0"},
		{"sidecar starting", pod(corev1.PodPending, false,
			[]corev1.ContainerStatus{{Name: "setup", State: done}, {Name: "side", State: running, Started: ptr.To(false)}},
			[]corev1.ContainerStatus{{Name: "app", State: waiting("PodInitializing")}}), "0/2", "Init:1/2", "0"},
		{"sidecar crashing while initializing", pod(corev1.PodPending, false,
			[]corev1.ContainerStatus{{Name: "setup", State: done}, {Name: "side", State: waiting("CrashLoopBackOff"), RestartCount: 2,
				LastTerminationState: crashed}},
			[]corev1.ContainerStatus{{Name: "app", State: waiting("PodInitializing")}}), "0/2", "Init:CrashLoopBackOff", "2 (2m ago)"},
		{"all running", pod(corev1.PodRunning, true,
			[]corev1.ContainerStatus{{Name: "setup", State: done}, {Name: "side", State: running, Started: ptr.To(true), Ready: true, RestartCount: 1,
				LastTerminationState: crashed}},
			[]corev1.ContainerStatus{{Name: "app", State: running, Ready: true}}), "2/2", "Running", "1 (2m ago)"},
		{"sidecar unready", pod(corev1.PodRunning, true,
			[]corev1.ContainerStatus{{Name: "setup", State: done}, {Name: "side", State: running, Started: ptr.To(true)}},
			[]corev1.ContainerStatus{{Name: "app", State: running, Ready: true}}), "1/2", "Running", "0"},
		{"init container failed", pod(corev1.PodFailed, false,
			[]corev1.ContainerStatus{{Name: "setup", State: crashed}, {Name: "side", State: waiting("PodInitializing")}},
			[]corev1.ContainerStatus{{Name: "app", State: waiting("PodInitializing")}}), "0/2", "Init:ExitCode:1", "0"},
		{"completed", pod(corev1.PodSucceeded, true,
			[]corev1.ContainerStatus{{Name: "setup", State: done}, {Name: "side", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 143, Reason: "Error"}}}},
			[]corev1.ContainerStatus{{Name: "app", State: done}}), "0/2", "Completed", "0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cells := Cells(columns["Pod"][:4], tc.pod, now)
			if cells[1] != tc.ready || cells[2] != tc.status || cells[3] != tc.restarts {
				t.Errorf("ready %v status %v restarts %v, want %s %s %s", cells[1], cells[2], cells[3], tc.ready, tc.status, tc.restarts)
			}
		})
	}
}
