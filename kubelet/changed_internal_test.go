package kubelet

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestPodUpdatesThatSync: an update syncs the pod when it changes what the sync acts on
// (the spec, told by the generation; labels and annotations; the deletion; a status
// someone else wrote, or its own of a pod still running), and not when it is a
// finalizer's release, a managed field, or the kubelet's own status write of a finished
// pod coming back.
func TestPodUpdatesThatSync(t *testing.T) {
	base := func() *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "bench-0", UID: "u1", ResourceVersion: "10", Generation: 1,
			Labels: map[string]string{"batch.kubernetes.io/job-completion-index": "0"}, Annotations: map[string]string{"a": "1"},
			Finalizers: []string{"batch.kubernetes.io/job-tracking"}},
			Spec:   corev1.PodSpec{NodeName: "n1", Containers: []corev1.Container{{Name: "work", Image: "busybox"}}},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	}
	const ownRV = 12 // the kubelet's last status write made revision 12
	for _, tc := range []struct {
		name   string
		update func(p *corev1.Pod)
		sync   bool
	}{
		{"finalizer released", func(p *corev1.Pod) { p.Finalizers = nil }, false},
		{"managed fields", func(p *corev1.Pod) {
			p.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: "job-controller"}}
		}, false},
		{"own status write, finished", func(p *corev1.Pod) { p.ResourceVersion = "12"; p.Status.Phase = corev1.PodSucceeded }, false},
		{"own status write, running", func(p *corev1.Pod) {
			p.ResourceVersion = "12"
			p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "work", State: corev1.ContainerState{
				Waiting: &corev1.ContainerStateWaiting{Reason: "ErrImagePull"}}}}
		}, true},
		{"own status write, answer not yet in", func(p *corev1.Pod) {
			p.ResourceVersion = "14"
			p.Status.Phase = corev1.PodSucceeded
			p.Status.Message = "in flight"
		}, false},
		{"status written by another", func(p *corev1.Pod) { p.ResourceVersion = "13"; p.Status.Phase = corev1.PodFailed }, true},
		{"status condition added by another", func(p *corev1.Pod) {
			p.ResourceVersion = "13"
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}
		}, true},
		{"spec changed", func(p *corev1.Pod) { p.Generation = 2; p.Spec.Containers[0].Image = "busybox:1.37" }, true},
		{"label changed", func(p *corev1.Pod) { p.Labels = map[string]string{"x": "y"} }, true},
		{"annotation changed", func(p *corev1.Pod) { p.Annotations["a"] = "2" }, true},
		{"deleted", func(p *corev1.Pod) {
			p.DeletionTimestamp = &metav1.Time{}
			p.DeletionGracePeriodSeconds = ptr.To[int64](30)
		}, true},
		{"grace shortened", func(p *corev1.Pod) { p.DeletionGracePeriodSeconds = ptr.To[int64](0) }, true},
		{"another pod of the name", func(p *corev1.Pod) { p.UID = "u2" }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k := &Kubelet{memory: map[string]*podMemory{}}
			old := base()
			m := k.memoryOf("default/bench-0", old.UID)
			m.ownRV.Store(ownRV)
			m.writing.Store(&corev1.PodStatus{Phase: corev1.PodSucceeded, Message: "in flight"})
			if tc.name == "grace shortened" {
				old.DeletionTimestamp, old.DeletionGracePeriodSeconds = &metav1.Time{}, ptr.To[int64](30)
			}
			cur := old.DeepCopy()
			cur.ResourceVersion = "11"
			tc.update(cur)
			if got := k.changed(old, cur); got != tc.sync {
				t.Errorf("changed = %v, want %v", got, tc.sync)
			}
		})
	}
}

// sameStatus says two statuses are the same exactly when storing one over the other
// would change nothing: a field's value differs, or not; a time's fraction of a second,
// a quantity's spelling, and nil against empty lists do not count, as the API keeps none
// of them.
func TestSameStatus(t *testing.T) {
	base := sampleStatus
	for _, tc := range []struct {
		name   string
		change func(*corev1.PodStatus)
		same   bool
	}{
		{"unchanged", func(*corev1.PodStatus) {}, true},
		{"a time's fraction of a second", func(s *corev1.PodStatus) { s.StartTime = ptr.To(metav1.NewTime(sampleAt.Add(300 * time.Millisecond))) }, true},
		{"a quantity spelled otherwise", func(s *corev1.PodStatus) {
			s.ContainerStatuses[0].AllocatedResources[corev1.ResourceCPU] = resource.MustParse("1000m")
		}, true},
		{"no lists against empty ones", func(s *corev1.PodStatus) {
			s.InitContainerStatuses, s.PodIPs = []corev1.ContainerStatus{}, []corev1.PodIP{}
		}, true},
		{"the phase", func(s *corev1.PodStatus) { s.Phase = corev1.PodSucceeded }, false},
		{"a time by a second", func(s *corev1.PodStatus) { s.StartTime = ptr.To(metav1.NewTime(sampleAt.Add(time.Second))) }, false},
		{"a condition", func(s *corev1.PodStatus) { s.Conditions[0].Status = corev1.ConditionFalse }, false},
		{"a container's state", func(s *corev1.PodStatus) {
			s.ContainerStatuses[0].State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}
		}, false},
		{"a quantity's value", func(s *corev1.PodStatus) {
			s.ContainerStatuses[0].AllocatedResources[corev1.ResourceMemory] = resource.MustParse("32Mi")
		}, false},
		{"a message of the same length", func(s *corev1.PodStatus) { s.PodIP = "10.42.0.6" }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := base(), base()
			tc.change(b)
			if got := sameStatus(a, b); got != tc.same {
				t.Errorf("sameStatus = %v, want %v", got, tc.same)
			}
			if got := sameStatus(b, a); got != tc.same {
				t.Errorf("sameStatus, the other way = %v, want %v", got, tc.same)
			}
		})
	}
}

// sampleAt is sampleStatus's time.
var sampleAt = time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)

// sampleStatus is a running pod's status, as a sync computes it.
func sampleStatus() *corev1.PodStatus {
	return &corev1.PodStatus{Phase: corev1.PodRunning, PodIP: "10.42.0.5", StartTime: ptr.To(metav1.NewTime(sampleAt)),
		Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(sampleAt)}},
		ContainerStatuses: []corev1.ContainerStatus{{Name: "app", Ready: true, Image: "busybox", ContainerID: "sim://1",
			State:              corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: metav1.NewTime(sampleAt)}},
			AllocatedResources: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}
}

// BenchmarkSameStatus compares a running pod's status with an equal one, as every sync
// of a pod that changed nothing does: by the encodings, and by Semantic.DeepEqual.
func BenchmarkSameStatus(b *testing.B) {
	x, y := sampleStatus(), sampleStatus()
	b.Run("encodings", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !sameStatus(x, y) {
				b.Fatal("not the same")
			}
		}
	})
	b.Run("semantic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if !equality.Semantic.DeepEqual(x, y) {
				b.Fatal("not equal")
			}
		}
	})
}
