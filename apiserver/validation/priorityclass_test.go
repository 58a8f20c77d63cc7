package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
)

func priorityClass(name string, value int32, mut func(*schedulingv1.PriorityClass)) *schedulingv1.PriorityClass {
	pc := &schedulingv1.PriorityClass{ObjectMeta: metav1.ObjectMeta{Name: name}, Value: value}
	if mut != nil {
		mut(pc)
	}
	return pc
}

// TestValidatePriorityClass: Kubernetes' rules, in its words: the system- prefix is
// the built-in classes' alone, with their values; a user's class is at most a billion;
// the preemption policy is one of two.
func TestValidatePriorityClass(t *testing.T) {
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want []string
	}{
		{"user class", priorityClass("high", 1000000, nil), nil},
		{"highest user class", priorityClass("highest", HighestUserDefinablePriority, nil), nil},
		{"negative value", priorityClass("low", -10, nil), nil},
		{"above a billion", priorityClass("too-high", HighestUserDefinablePriority+1, nil),
			[]string{"value: Forbidden: maximum allowed value of a user defined priority is 1000000000"}},
		{"built-in class", SystemPriorityClasses()[0], nil},
		{"built-in node class", SystemPriorityClasses()[1], nil},
		{"system prefix of no built-in class", priorityClass("system-mine", 10, nil),
			[]string{"metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: system-mine is not a known system priority class"}},
		{"built-in class of another value", priorityClass(SystemClusterCritical, 5, nil),
			[]string{"metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: value of system-cluster-critical PriorityClass must be 2000000000"}},
		{"built-in class made the default", priorityClass(SystemNodeCritical, SystemCriticalPriority+1000, func(pc *schedulingv1.PriorityClass) { pc.GlobalDefault = true }),
			[]string{"metadata.name: Forbidden: priority class names with 'system-' prefix are reserved for system use only. error: globalDefault of system-node-critical PriorityClass must be false"}},
		{"preemption policy", priorityClass("high", 10, func(pc *schedulingv1.PriorityClass) { pc.PreemptionPolicy = new(corev1.PreemptionPolicy("Sometimes")) }),
			[]string{`preemptionPolicy: Unsupported value: "Sometimes": supported values: "PreemptLowerPriority", "Never"`}},
		{"bad name", priorityClass("High", 10, nil), []string{`metadata.name: Invalid value: "High"`}},
		{"pod preemption policy", pod(func(p *corev1.Pod) { p.Spec.PreemptionPolicy = new(corev1.PreemptionPolicy("")) }),
			[]string{"spec.preemptionPolicy: Required value"}},
		{"pod priority and policy", pod(func(p *corev1.Pod) {
			p.Spec.Priority, p.Spec.PreemptionPolicy = new(int32(10)), new(corev1.PreemptNever)
		}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, Validate(tc.obj), tc.want)
		})
	}
}

// TestValidatePriorityClassUpdate: the value and the preemption policy are fixed; the
// description and globalDefault are not.
func TestValidatePriorityClassUpdate(t *testing.T) {
	old := priorityClass("high", 10, nil)
	Default(old)
	if p := old.PreemptionPolicy; p == nil || *p != corev1.PreemptLowerPriority {
		t.Fatalf("preemptionPolicy defaulted to %v, want PreemptLowerPriority", p)
	}
	defaulted := func(pc *schedulingv1.PriorityClass) *schedulingv1.PriorityClass { Default(pc); return pc }
	checkErrors(t, ValidateUpdate(old, defaulted(priorityClass("high", 11, nil))), []string{"value: Forbidden: may not be changed in an update."})
	checkErrors(t, ValidateUpdate(old, priorityClass("high", 10, func(pc *schedulingv1.PriorityClass) { pc.PreemptionPolicy = new(corev1.PreemptNever) })),
		[]string{`preemptionPolicy: Invalid value: "Never": field is immutable`})
	checkErrors(t, ValidateUpdate(old, defaulted(priorityClass("high", 10, func(pc *schedulingv1.PriorityClass) {
		pc.Description, pc.GlobalDefault = "now the default", true
	}))), nil)
}
