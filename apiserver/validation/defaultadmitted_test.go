package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
)

// TestDefaultAdmittedAsDefaultAgain: a pod defaulted, then given by admission what the
// built-in admission gives (a LimitRange's limits and requests, a RuntimeClass's
// tolerations, overhead and node selector, a priority), is after DefaultAdmitted the pod
// Default would make of it again: the API server no longer defaults a new pod twice.
func TestDefaultAdmittedAsDefaultAgain(t *testing.T) {
	q := resource.MustParse
	for _, tc := range []struct {
		name  string
		admit func(*corev1.Pod)
	}{
		{"nothing added", func(*corev1.Pod) {}},
		{"a limit without its request", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: q("128Mi")}
			p.Spec.InitContainers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: q("1")}
		}},
		{"a limit and its request", func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: q("250m")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: q("2"), corev1.ResourceMemory: q("1Gi")}}
		}},
		{"a class's tolerations and overhead", func(p *corev1.Pod) {
			p.Spec.Tolerations = append(p.Spec.Tolerations, corev1.Toleration{Key: "sandbox", Value: "kata", Effect: corev1.TaintEffectNoSchedule},
				corev1.Toleration{Key: "any", Operator: corev1.TolerationOpExists})
			p.Spec.Overhead = corev1.ResourceList{corev1.ResourceCPU: q("250m")}
			p.Spec.NodeSelector = map[string]string{"sandbox": "kata"}
		}},
		{"a priority", func(p *corev1.Pod) {
			p.Spec.PriorityClassName, p.Spec.Priority = "high", new(int32(1000))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &corev1.Pod{Spec: corev1.PodSpec{
				InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}},
				Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36", Ports: []corev1.ContainerPort{{ContainerPort: 80}},
					Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceCPU: q("500m")}}}},
				Tolerations: []corev1.Toleration{{Key: "own"}},
				Volumes:     []corev1.Volume{{Name: "v", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{}}}},
			}}
			Default(p)
			tc.admit(p)
			again, admitted := p.DeepCopy(), p.DeepCopy()
			Default(again)
			DefaultAdmitted(admitted)
			if !equality.Semantic.DeepEqual(admitted, again) {
				t.Errorf("DefaultAdmitted made\n%+v\nDefault again made\n%+v", admitted.Spec, again.Spec)
			}
		})
	}
}

// BenchmarkDefaultPodAgain is what a new pod's second Default cost (the walk of a
// defaulted pod like the benchmarks'); BenchmarkDefaultAdmitted what replaces it.
func BenchmarkDefaultPodAgain(b *testing.B) {
	p := allocsPod()
	b.ReportAllocs()
	for b.Loop() {
		Default(p)
	}
}

func BenchmarkDefaultAdmitted(b *testing.B) {
	p := allocsPod()
	b.ReportAllocs()
	for b.Loop() {
		DefaultAdmitted(p)
	}
}
