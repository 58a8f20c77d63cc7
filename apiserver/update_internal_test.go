package apiserver

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
)

// storedJobPod is a pod as the store holds it: defaulted, admitted (its priority set),
// with the Job's tracking finalizer.
func storedJobPod() *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "bench-0", UID: "u1", ResourceVersion: "7", Generation: 1,
		Finalizers: []string{"batch.kubernetes.io/job-tracking"}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, NodeName: "n1", Priority: ptr.To[int32](0),
			Containers: []corev1.Container{{Name: "work", Image: "busybox", Command: []string{"sh", "-c", "exit 0"}}}}}
	validation.Default(p)
	return p
}

// TestPrepareUpdateComparesSpecOnce: the spec is compared once, after the priority the
// writer left out is kept, so a metadata-only update (the Job controller's finalizer
// release) keeps the generation and skips the spec's update validation (its defaulted
// copies), while a forbidden change is still refused and a changed spec counted.
func TestPrepareUpdateComparesSpecOnce(t *testing.T) {
	info := kinds.MustLookup(kinds.Pod)
	cur := storedJobPod()
	release := func() *corev1.Pod {
		n := cur.DeepCopy()
		n.Finalizers = nil
		return n
	}

	noPriority := release()
	noPriority.Spec.Priority = nil // a writer that never set it: admission's value is kept
	got, err := prepareUpdate(info, cur, noPriority)
	if err != nil {
		t.Fatal(err)
	}
	if g := got.GetGeneration(); g != 1 {
		t.Errorf("generation after a finalizer's release with the priority left out: %d, want 1", g)
	}
	if p := got.(*corev1.Pod).Spec.Priority; p == nil || *p != 0 {
		t.Errorf("priority %v, want the stored 0", p)
	}

	// The spec's comparison is not made twice: a release allocates less than an update
	// whose spec the validation compares (the image: allowed, and a new generation).
	allocs := func(mk func() *corev1.Pod) float64 {
		objs := make([]*corev1.Pod, 101)
		for i := range objs {
			objs[i] = mk()
		}
		i := 0
		return testing.AllocsPerRun(100, func() {
			if _, err := prepareUpdate(info, cur, objs[i]); err != nil {
				t.Fatal(err)
			}
			i++
		})
	}
	image := func() *corev1.Pod {
		n := release()
		n.Spec.Containers[0].Image = "busybox:1.37"
		return n
	}
	same, changed := allocs(release), allocs(image)
	if changed-same < 30 {
		t.Errorf("a finalizer's release allocated %v times, an image's change %v: want the release without the spec's copies (30 and more)", same, changed)
	}
	got, err = prepareUpdate(info, cur, image())
	if err != nil {
		t.Fatal(err)
	}
	if g := got.GetGeneration(); g != 2 {
		t.Errorf("generation after an image change: %d, want 2", g)
	}

	forbidden := release()
	forbidden.Spec.Containers[0].Command = []string{"sh", "-c", "exit 1"}
	if _, err := prepareUpdate(info, cur, forbidden); err == nil {
		t.Error("a changed command was accepted")
	}
}
