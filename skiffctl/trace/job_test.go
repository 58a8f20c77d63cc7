package trace

import (
	"bytes"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

// jobFixture: a CronJob due at t0 whose Job the CronJob controller created 100 ms
// later; the Job controller started it and made two pods, ready after 1.4 s and 2.9 s.
func jobFixture() (*batchv1.CronJob, *batchv1.Job, []*corev1.Pod, []*corev1.Event) {
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "tick", Namespace: "default", UID: "c1", ResourceVersion: "5",
		CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))}}
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "tick-100", Namespace: "default", UID: "j1", ResourceVersion: "9",
		CreationTimestamp: sec(100), OwnerReferences: controllerRef(cj),
		Annotations: map[string]string{batchv1.CronJobScheduledTimestampAnnotation: t0.Format(time.RFC3339)}},
		Status: batchv1.JobStatus{StartTime: ptr.To(sec(150))}}
	events := []*corev1.Event{
		event("c1", "SuccessfulCreate", "Created job tick-100", "controller-manager", "cp1", 101),
		event("j1", StoredReason, "Job tick-100 stored", "apiserver", "", 100),
	}
	var pods []*corev1.Pod
	for i, readyAt := range []int{1400, 2900} {
		name := []string{"tick-100-a", "tick-100-b"}[i]
		uid := types.UID(name)
		pods = append(pods, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", UID: uid, ResourceVersion: "30",
			CreationTimestamp: sec(160), OwnerReferences: controllerRef(job)}, Spec: corev1.PodSpec{NodeName: "w1"},
			Status: corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{
				{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: sec(readyAt)}}}})
		events = append(events,
			event("j1", "SuccessfulCreate", "Created pod: "+name, "controller-manager", "cp1", 160+i),
			event(uid, "Scheduled", "Successfully assigned default/"+name+" to w1", "default-scheduler", "cp2", 200),
			event(uid, "Pulled", "Container image already present", "kubelet", "w1", readyAt-200),
			event(uid, "Started", "Started container c", "kubelet", "w1", readyAt-100))
	}
	return cj, job, pods, events
}

func stepsOf(t *testing.T, tr *Trace) map[string]Step {
	t.Helper()
	out := map[string]Step{}
	var labels []string
	for _, s := range tr.Steps {
		out[s.Label()] = s
		labels = append(labels, s.Label())
	}
	out["labels"] = Step{Title: strings.Join(labels, " ")}
	return out
}

func TestAssembleJob(t *testing.T) {
	_, job, pods, events := jobFixture()
	job.OwnerReferences = nil
	tr := AssembleJob(nil, job, pods, events)
	s := stepsOf(t, tr)
	if s["labels"].Title != "1 2-3 4-5 6-7 8 9 10" || tr.Kind != "Job" || tr.Job != "tick-100" || tr.Pods.Total != 2 || tr.Pods.Ready != 2 {
		t.Fatalf("trace %+v", tr)
	}
	if !tr.Start.Equal(at(100)) || s["1"].Title != "Job stored" {
		t.Errorf("starts %v with %q, want the Stored event's time", tr.Start, s["1"].Title)
	}
	// startTime keeps the second (0 s): raised to the step before it.
	if st := s["2-3"]; st.Component != "controller-manager" || !st.Time.Equal(at(100)) {
		t.Errorf("step 2-3 %+v", st)
	}
	if st := s["4-5"]; st.Object != "pod/tick-100-b" || !st.Time.Equal(at(161)) {
		t.Errorf("step 4-5 %+v, want the slowest pod's create event", st)
	}
	var b bytes.Buffer
	if err := WriteText(&b, tr, 100); err != nil || !strings.Contains(b.String(), "job default/tick-100") || !strings.Contains(b.String(), "Job started") {
		t.Errorf("text %q %v", b.String(), err)
	}
	b.Reset()
	if err := WriteSVG(&b, tr); err != nil || !strings.Contains(b.String(), "Job controller") {
		t.Errorf("svg: %v", err)
	}
}

// TestAssembleCronJob: a CronJob's chain starts one step earlier, at the schedule.
func TestAssembleCronJob(t *testing.T) {
	cj, job, pods, events := jobFixture()
	tr := AssembleJob(cj, job, pods, events)
	s := stepsOf(t, tr)
	if s["labels"].Title != "0 1 2-3 4-5 6-7 8 9 10" || tr.Kind != "CronJob" || tr.Name != "tick" || tr.Job != "tick-100" {
		t.Fatalf("trace %+v", tr)
	}
	if !tr.Start.Equal(t0) || s["0"].Title != "Schedule due" || s["1"].Title != "Job created" || s["1"].SinceStartMs != 100 {
		t.Errorf("steps 0 and 1: %+v %+v", s["0"], s["1"])
	}
	if r := s["10"]; r.SinceStartMs != 2800 || r.Missing {
		t.Errorf("step 10 %+v, want the slowest pod ready at 2 s (its condition), raised to its start at 2.8 s", r)
	}
	var b bytes.Buffer
	if err := WriteJSON(&b, tr); err != nil || !strings.Contains(b.String(), `"kind": "CronJob"`) || !strings.Contains(b.String(), `"step": 0`) {
		t.Errorf("json %s %v", b.String(), err)
	}
	b.Reset()
	if err := WriteHTML(&b, tr); err != nil || !strings.Contains(b.String(), "CronJob default/tick") {
		t.Errorf("html: %v", err)
	}
	// No Job yet: the chain is waiting for its schedule.
	tr = AssembleJob(cj, nil, nil, nil)
	if s := stepsOf(t, tr); s["labels"].Title != "0 1" || !s["0"].Missing || !s["1"].Missing {
		t.Errorf("trace without a job %+v", tr.Steps)
	}
}
