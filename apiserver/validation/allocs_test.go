package validation

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// TestValidatePodAllocations: every pod written is validated (create and update, REST
// and gRPC), so what that costs is in every create's CPU. A pod like the benchmarks'
// (one container with requests, here a limit too) was validated in 97 allocations, now
// 62: the sorted copies of its resource lists, and the paths of resources that have no
// error, are no longer made; now 40: the paths of fields left empty (env, probes,
// affinity...), of enumerations (imagePullPolicy, dnsPolicy...) and of resources are
// made only for an error (TestPodErrorPathsAndWords: the errors are as they were), and
// a standard resource's name is not split to be checked as a label key; now 36: the
// UTF-8 walk reads labels and annotations as maps of strings, and another map's entries
// into one reused key and value.
func TestValidatePodAllocations(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's build allocates more (main's 62 failed under -race too)")
	}
	p := allocsPod()
	if err := Validate(p); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	const most = 36
	if n := testing.AllocsPerRun(100, func() { Validate(p) }); n > most {
		t.Errorf("Validate of a pod: %.0f allocations, want at most %d", n, most)
	}
}

func BenchmarkValidateBenchPod(b *testing.B) {
	p := allocsPod()
	b.ReportAllocs()
	for b.Loop() {
		Validate(p)
	}
}

// allocsPod is a pod like the benchmarks', defaulted.
func allocsPod() *corev1.Pod {
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "p-1", Namespace: "default", Labels: map[string]string{"app": "bench", "tier": "web"},
			Annotations: map[string]string{"note": strings.Repeat("x", 700)}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "docker.io/library/busybox:1.36",
			Command: []string{"sleep", "3600"}, Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("128Mi")}}}}},
	}
	Default(p)
	return p
}

// TestResourceListErrorsInOrder: a list's problems are reported in the order of its
// names, whatever the map's, at the name's path.
func TestResourceListErrorsInOrder(t *testing.T) {
	list := corev1.ResourceList{"z!": resource.MustParse("1"), "a!": resource.MustParse("1"), corev1.ResourceCPU: resource.MustParse("-1")}
	for range 20 { // map order differs from one iteration to the next
		errs := validateResourceList(list, field.NewPath("spec", "capacity"))
		var got []string
		for _, e := range errs {
			got = append(got, e.Field)
		}
		want := []string{"spec.capacity[a!]", "spec.capacity[cpu]", "spec.capacity[z!]"}
		if !slices.Equal(got, want) {
			t.Fatalf("fields of the errors: %q, want %q (%v)", got, want, errs)
		}
	}
}
