package validation_test

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/apiserver/validation"
)

func subresourcePod() *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default"}, Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{{Name: "init", Image: "busybox"}, {Name: "side", Image: "busybox", RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways)}},
		Containers: []corev1.Container{{Name: "app", Image: "busybox", Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")}}}}}}
	validation.Default(p)
	return p
}

// The pods/ephemeralcontainers and pods/resize checks, in Kubernetes' words.
func TestPodSubresourceValidation(t *testing.T) {
	ec := func(mod func(*corev1.EphemeralContainer)) func(p *corev1.Pod) {
		return func(p *corev1.Pod) {
			e := corev1.EphemeralContainer{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}}
			if mod != nil {
				mod(&e)
			}
			p.Spec.EphemeralContainers = append(p.Spec.EphemeralContainers, e)
		}
	}
	for _, tc := range []struct {
		name   string
		resize bool
		old    func(*corev1.Pod)
		change func(*corev1.Pod)
		want   string // "" valid
	}{
		{"add one", false, nil, ec(nil), ""},
		{"target an init container", false, nil, ec(func(e *corev1.EphemeralContainer) { e.TargetContainerName = "init" }), ""},
		{"target unknown", false, nil, ec(func(e *corev1.EphemeralContainer) { e.TargetContainerName = "x" }), `spec.ephemeralContainers[0].targetContainerName: Not found: "x"`},
		{"a sidecar's name", false, nil, ec(func(e *corev1.EphemeralContainer) { e.Name = "side" }), `spec.ephemeralContainers[0].name: Duplicate value: "side"`},
		{"ports", false, nil, ec(func(e *corev1.EphemeralContainer) { e.Ports = []corev1.ContainerPort{{ContainerPort: 80}} }),
			"spec.ephemeralContainers[0].ports: Forbidden: cannot be set for an Ephemeral Container"},
		{"lifecycle", false, nil, ec(func(e *corev1.EphemeralContainer) {
			e.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"true"}}}}
		}), "spec.ephemeralContainers[0].lifecycle: Forbidden: cannot be set for an Ephemeral Container"},
		{"removed", false, ec(nil), func(p *corev1.Pod) { p.Spec.EphemeralContainers = nil },
			`spec.ephemeralContainers: Forbidden: existing ephemeral containers "debug" may not be removed`},
		{"changed", false, ec(nil), func(p *corev1.Pod) { p.Spec.EphemeralContainers[0].Image = "other" },
			`existing ephemeral containers "debug" may not be changed`},
		{"resize cpu", true, nil, func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("1")
		}, ""},
		{"resize a sidecar", true, nil, func(p *corev1.Pod) {
			p.Spec.InitContainers[1].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
		}, ""},
		{"resize an init container", true, nil, func(p *corev1.Pod) {
			p.Spec.InitContainers[0].Resources.Limits = corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("1")}
		}, "spec: Forbidden: resources for non-sidecar init containers are immutable"},
		{"a limit removed", true, nil, func(p *corev1.Pod) { delete(p.Spec.Containers[0].Resources.Limits, corev1.ResourceCPU) },
			"spec.containers[0].resources.limits: Forbidden: resource limits cannot be removed"},
		{"ephemeral-storage", true, nil, func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources.Limits[corev1.ResourceEphemeralStorage] = resource.MustParse("2Gi")
		}, "spec: Forbidden: only cpu and memory resources are mutable"},
		{"reordered", true, nil, func(p *corev1.Pod) {
			p.Spec.InitContainers[0], p.Spec.InitContainers[1] = p.Spec.InitContainers[1], p.Spec.InitContainers[0]
		},
			"spec.initContainers[0].name: Forbidden: initContainers may not be renamed or reordered on resize"},
		{"to BestEffort", true, nil, func(p *corev1.Pod) {
			p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")}}
		}, "Pod QOS Class may not change as a result of resizing"},
	} {
		old := subresourcePod()
		if tc.old != nil {
			tc.old(old)
		}
		next := old.DeepCopy()
		tc.change(next)
		validation.Default(next)
		var err error
		if tc.resize {
			err = validation.ValidateResize(old, next)
		} else {
			err = validation.ValidateEphemeralContainersUpdate(old, next)
		}
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// What a write through each subresource keeps of the written pod.
func TestPrepareSubresourceWrites(t *testing.T) {
	old := subresourcePod()
	written := old.DeepCopy()
	written.Labels = map[string]string{"x": "y"}
	written.Spec.Containers[0].Image = "other"
	written.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("1")
	written.Spec.EphemeralContainers = []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "d", Image: "busybox"}}}
	e := validation.PrepareEphemeralContainers(old, written)
	if len(e.Spec.EphemeralContainers) != 1 || e.Labels != nil || e.Spec.Containers[0].Image != "busybox" || e.Spec.Containers[0].Resources.Limits.Cpu().String() != "200m" {
		t.Errorf("ephemeralcontainers kept more than its field: %+v", e)
	}
	r := validation.PrepareResize(old, written)
	if len(r.Spec.EphemeralContainers) != 0 || r.Labels != nil || r.Spec.Containers[0].Image != "busybox" || r.Spec.Containers[0].Resources.Limits.Cpu().String() != "1" {
		t.Errorf("resize kept more than its fields: %+v", r)
	}
}
