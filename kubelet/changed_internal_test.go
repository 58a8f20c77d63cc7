package kubelet

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
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
