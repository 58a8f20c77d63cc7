package kinds

import (
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestHPAConversion: a v2 HorizontalPodAutoscaler read through v1 has its CPU
// utilization target in v1's field and the rest in Kubernetes' annotations, and comes
// back from v1 as it was.
func TestHPAConversion(t *testing.T) {
	i32 := func(v int32) *int32 { return &v }
	q := resource.MustParse("100Mi")
	v2 := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   metav1.TypeMeta{APIVersion: "autoscaling/v2", Kind: HorizontalPodAutoscaler},
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", Annotations: map[string]string{"keep": "me"}},
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    i32(2), MaxReplicas: 10,
			Metrics: []autoscalingv2.MetricSpec{
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: i32(50)}}},
				{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: &q}}},
			},
			Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: i32(60)}},
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{CurrentReplicas: 2, DesiredReplicas: 3,
			CurrentMetrics: []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricStatus{
				Name: corev1.ResourceCPU, Current: autoscalingv2.MetricValueStatus{AverageUtilization: i32(70)}}}},
			Conditions: []autoscalingv2.HorizontalPodAutoscalerCondition{{Type: autoscalingv2.ScalingActive, Status: corev1.ConditionFalse,
				Reason: "FailedGetResourceMetric", Message: "no metrics"}},
		},
	}
	view := MustLookup(HorizontalPodAutoscalerV1)
	if view.Version != "v1" || view.Stored() != MustLookup(HorizontalPodAutoscaler) || MustLookup("hpa").Version != "v2" {
		t.Fatalf("lookups: %s, %s, %s", view.APIVersion, view.Stored().APIVersion, MustLookup("hpa").APIVersion)
	}
	if in, ok := ForGroupVersionKind("autoscaling/v1", HorizontalPodAutoscaler); !ok || in != view {
		t.Errorf("ForGroupVersionKind(autoscaling/v1) = %v", in)
	}
	obj, err := view.FromStorage(v2)
	if err != nil {
		t.Fatal(err)
	}
	v1 := obj.(*autoscalingv1.HorizontalPodAutoscaler)
	if v1.APIVersion != "autoscaling/v1" || v1.Spec.TargetCPUUtilizationPercentage == nil || *v1.Spec.TargetCPUUtilizationPercentage != 50 ||
		v1.Status.CurrentCPUUtilizationPercentage == nil || *v1.Status.CurrentCPUUtilizationPercentage != 70 {
		t.Errorf("v1 = %+v", v1)
	}
	if got := v1.Annotations[HPAMetricsAnnotation]; got != `[{"type":"Resource","resource":{"name":"memory","targetAverageValue":"100Mi"}}]` {
		t.Errorf("metrics annotation = %s", got)
	}
	if v1.Annotations[HPAConditionsAnnotation] == "" || v1.Annotations[HPABehaviorAnnotation] == "" || v1.Annotations["keep"] != "me" {
		t.Errorf("annotations = %v", v1.Annotations)
	}
	if _, ok := v2.Annotations[HPAMetricsAnnotation]; ok {
		t.Error("the conversion changed its argument's annotations")
	}
	back, err := view.ToStorage(v1)
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(back, v2) {
		t.Errorf("round trip:\n got %+v\nwant %+v", back, v2)
	}
	// v1 with a CPU target only.
	only := &autoscalingv1.HorizontalPodAutoscaler{Spec: autoscalingv1.HorizontalPodAutoscalerSpec{MaxReplicas: 3, TargetCPUUtilizationPercentage: i32(80)}}
	got, _ := view.ToStorage(only)
	if m := got.(*autoscalingv2.HorizontalPodAutoscaler).Spec.Metrics; len(m) != 1 || m[0].Resource.Name != corev1.ResourceCPU || *m[0].Resource.Target.AverageUtilization != 80 {
		t.Errorf("v1 CPU target in v2 = %+v", m)
	}
}
