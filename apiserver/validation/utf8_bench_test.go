package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func BenchmarkValidateUTF8Pod(b *testing.B) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-5d4f8-x2x9k", Namespace: "default", Labels: map[string]string{"app": "web", "pod-template-hash": "5d4f8"},
		OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: "web-5d4f8", UID: "1234"}}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "nginx", Image: "nginx:1.27", Ports: []corev1.ContainerPort{{ContainerPort: 80}}}}}}
	Default(p)
	b.ReportAllocs()
	for b.Loop() {
		validateUTF8(p)
	}
}

// BenchmarkValidateStatusPod: a kubelet's status write of the Job benchmark's pod (one a
// completion), as admitStatusUpdate validates it.
func BenchmarkValidateStatusPod(b *testing.B) {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "bench-7-x2x9k", Namespace: "default", Labels: map[string]string{"batch.kubernetes.io/job-completion-index": "7", "job-name": "bench"},
		Annotations: map[string]string{"batch.kubernetes.io/job-completion-index": "7"}, Finalizers: []string{"batch.kubernetes.io/job-tracking"},
		OwnerReferences: []metav1.OwnerReference{{Kind: "Job", Name: "bench", UID: "1234"}}},
		Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, NodeName: "node-7",
			Containers: []corev1.Container{{Name: "work", Image: "busybox", Command: []string{"sh", "-c", "exit 0"}}}},
		Status: corev1.PodStatus{Phase: corev1.PodSucceeded, HostIP: "10.0.0.7", PodIP: "10.244.7.3",
			ContainerStatuses: []corev1.ContainerStatus{{Name: "work", Image: "busybox", ImageID: "sha256:abc", ContainerID: "sim://1",
				State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{Reason: "Completed"}}}}}}
	Default(p)
	b.ReportAllocs()
	for b.Loop() {
		if err := ValidateStatus(p); err != nil {
			b.Fatal(err)
		}
	}
}
