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
