package kinds

import (
	"encoding/json"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

// A HorizontalPodAutoscaler is stored as autoscaling/v2's and served in autoscaling/v1
// too, converted as Kubernetes converts them (pkg/apis/autoscaling/v1's conversion):
// v1's targetCPUUtilizationPercentage is v2's CPU utilization metric, and what v1 has
// no field for — v2's other metrics, its behavior, its status conditions and current
// metrics other than CPU utilization — travels in v1's annotations, in Kubernetes'
// names and shapes, so that a v1 client's update loses none of it.
const (
	HPAMetricsAnnotation        = "autoscaling.alpha.kubernetes.io/metrics"
	HPACurrentMetricsAnnotation = "autoscaling.alpha.kubernetes.io/current-metrics"
	HPAConditionsAnnotation     = "autoscaling.alpha.kubernetes.io/conditions"
	HPABehaviorAnnotation       = "autoscaling.alpha.kubernetes.io/behavior"
)

// hpaToV2 converts an autoscaling/v1 HorizontalPodAutoscaler to v2's.
func hpaToV2(obj Object) Object {
	in := obj.(*autoscalingv1.HorizontalPodAutoscaler)
	out := &autoscalingv2.HorizontalPodAutoscaler{
		TypeMeta:   in.TypeMeta,
		ObjectMeta: *in.ObjectMeta.DeepCopy(),
		Spec: autoscalingv2.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv2.CrossVersionObjectReference(in.Spec.ScaleTargetRef),
			MinReplicas:    copyInt32(in.Spec.MinReplicas),
			MaxReplicas:    in.Spec.MaxReplicas,
		},
		Status: autoscalingv2.HorizontalPodAutoscalerStatus{
			ObservedGeneration: copyInt64(in.Status.ObservedGeneration),
			CurrentReplicas:    in.Status.CurrentReplicas,
			DesiredReplicas:    in.Status.DesiredReplicas,
		},
	}
	out.APIVersion, out.Kind = "autoscaling/v2", HorizontalPodAutoscaler
	if in.Status.LastScaleTime != nil {
		t := *in.Status.LastScaleTime
		out.Status.LastScaleTime = &t
	}
	if p := in.Spec.TargetCPUUtilizationPercentage; p != nil {
		out.Spec.Metrics = []autoscalingv2.MetricSpec{{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: copyInt32(p)}}}}
	}
	if p := in.Status.CurrentCPUUtilizationPercentage; p != nil {
		out.Status.CurrentMetrics = []autoscalingv2.MetricStatus{{Type: autoscalingv2.ResourceMetricSourceType,
			Resource: &autoscalingv2.ResourceMetricStatus{Name: corev1.ResourceCPU,
				Current: autoscalingv2.MetricValueStatus{AverageUtilization: copyInt32(p)}}}}
	}
	// An annotation that does not parse is left where it is, as Kubernetes leaves it.
	var metrics []autoscalingv1.MetricSpec
	if fromAnnotation(out.Annotations, HPAMetricsAnnotation, &metrics) {
		for _, m := range metrics {
			out.Spec.Metrics = append(out.Spec.Metrics, metricSpecToV2(m))
		}
	}
	var current []autoscalingv1.MetricStatus
	if fromAnnotation(out.Annotations, HPACurrentMetricsAnnotation, &current) {
		for _, m := range current {
			out.Status.CurrentMetrics = append(out.Status.CurrentMetrics, metricStatusToV2(m))
		}
	}
	var conditions []autoscalingv1.HorizontalPodAutoscalerCondition
	if fromAnnotation(out.Annotations, HPAConditionsAnnotation, &conditions) {
		for _, c := range conditions {
			out.Status.Conditions = append(out.Status.Conditions, autoscalingv2.HorizontalPodAutoscalerCondition{
				Type: autoscalingv2.HorizontalPodAutoscalerConditionType(c.Type), Status: c.Status,
				LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message})
		}
	}
	var behavior autoscalingv2.HorizontalPodAutoscalerBehavior
	if fromAnnotation(out.Annotations, HPABehaviorAnnotation, &behavior) {
		out.Spec.Behavior = &behavior
	}
	if len(out.Annotations) == 0 {
		out.Annotations = nil
	}
	return out
}

// hpaFromV2 converts an autoscaling/v2 HorizontalPodAutoscaler to v1's.
func hpaFromV2(obj Object) Object {
	in := obj.(*autoscalingv2.HorizontalPodAutoscaler)
	out := &autoscalingv1.HorizontalPodAutoscaler{
		TypeMeta:   in.TypeMeta,
		ObjectMeta: *in.ObjectMeta.DeepCopy(),
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference(in.Spec.ScaleTargetRef),
			MinReplicas:    copyInt32(in.Spec.MinReplicas),
			MaxReplicas:    in.Spec.MaxReplicas,
		},
		Status: autoscalingv1.HorizontalPodAutoscalerStatus{
			ObservedGeneration: copyInt64(in.Status.ObservedGeneration),
			CurrentReplicas:    in.Status.CurrentReplicas,
			DesiredReplicas:    in.Status.DesiredReplicas,
		},
	}
	out.APIVersion, out.Kind = "autoscaling/v1", HorizontalPodAutoscaler
	if in.Status.LastScaleTime != nil {
		t := *in.Status.LastScaleTime
		out.Status.LastScaleTime = &t
	}
	var others []autoscalingv1.MetricSpec
	for _, m := range in.Spec.Metrics {
		if r := m.Resource; m.Type == autoscalingv2.ResourceMetricSourceType && r != nil && r.Name == corev1.ResourceCPU &&
			r.Target.AverageUtilization != nil && out.Spec.TargetCPUUtilizationPercentage == nil {
			out.Spec.TargetCPUUtilizationPercentage = copyInt32(r.Target.AverageUtilization)
			continue
		}
		others = append(others, metricSpecFromV2(m))
	}
	var current []autoscalingv1.MetricStatus
	for _, m := range in.Status.CurrentMetrics {
		if r := m.Resource; m.Type == autoscalingv2.ResourceMetricSourceType && r != nil && r.Name == corev1.ResourceCPU &&
			r.Current.AverageUtilization != nil && out.Status.CurrentCPUUtilizationPercentage == nil {
			out.Status.CurrentCPUUtilizationPercentage = copyInt32(r.Current.AverageUtilization)
			continue
		}
		current = append(current, metricStatusFromV2(m))
	}
	var conditions []autoscalingv1.HorizontalPodAutoscalerCondition
	for _, c := range in.Status.Conditions {
		conditions = append(conditions, autoscalingv1.HorizontalPodAutoscalerCondition{
			Type: autoscalingv1.HorizontalPodAutoscalerConditionType(c.Type), Status: c.Status,
			LastTransitionTime: c.LastTransitionTime, Reason: c.Reason, Message: c.Message})
	}
	out.Annotations = toAnnotation(out.Annotations, HPAMetricsAnnotation, others, len(others) > 0)
	out.Annotations = toAnnotation(out.Annotations, HPACurrentMetricsAnnotation, current, len(current) > 0)
	out.Annotations = toAnnotation(out.Annotations, HPAConditionsAnnotation, conditions, len(conditions) > 0)
	out.Annotations = toAnnotation(out.Annotations, HPABehaviorAnnotation, in.Spec.Behavior, in.Spec.Behavior != nil)
	return out
}

// fromAnnotation decodes annotations[key] into v and removes it; false if it is absent
// or does not decode (then it stays).
func fromAnnotation(annotations map[string]string, key string, v any) bool {
	enc, ok := annotations[key]
	if !ok || json.Unmarshal([]byte(enc), v) != nil {
		return false
	}
	delete(annotations, key)
	return true
}

// toAnnotation sets annotations[key] to v's JSON when set, and returns the map.
func toAnnotation(annotations map[string]string, key string, v any, set bool) map[string]string {
	if !set {
		return annotations
	}
	enc, err := json.Marshal(v)
	if err != nil {
		return annotations // the API's types always encode
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[key] = string(enc)
	return annotations
}

// metricSpecToV2 converts a v1 annotation's metric to v2's.
func metricSpecToV2(in autoscalingv1.MetricSpec) autoscalingv2.MetricSpec {
	out := autoscalingv2.MetricSpec{Type: autoscalingv2.MetricSourceType(in.Type)}
	if o := in.Object; o != nil {
		t := autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: copyQuantity(&o.TargetValue), AverageValue: copyQuantity(o.AverageValue)}
		if o.AverageValue != nil {
			t.Type = autoscalingv2.AverageValueMetricType
		}
		out.Object = &autoscalingv2.ObjectMetricSource{DescribedObject: autoscalingv2.CrossVersionObjectReference(o.Target),
			Metric: autoscalingv2.MetricIdentifier{Name: o.MetricName, Selector: o.Selector.DeepCopy()}, Target: t}
	}
	if p := in.Pods; p != nil {
		out.Pods = &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: p.MetricName, Selector: p.Selector.DeepCopy()},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: copyQuantity(&p.TargetAverageValue)}}
	}
	if r := in.Resource; r != nil {
		out.Resource = &autoscalingv2.ResourceMetricSource{Name: r.Name, Target: resourceTarget(r.TargetAverageUtilization, r.TargetAverageValue)}
	}
	if r := in.ContainerResource; r != nil {
		out.ContainerResource = &autoscalingv2.ContainerResourceMetricSource{Name: r.Name, Container: r.Container,
			Target: resourceTarget(r.TargetAverageUtilization, r.TargetAverageValue)}
	}
	if e := in.External; e != nil {
		t := autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, Value: copyQuantity(e.TargetValue), AverageValue: copyQuantity(e.TargetAverageValue)}
		if e.TargetValue != nil {
			t.Type = autoscalingv2.ValueMetricType
		}
		out.External = &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: e.MetricName, Selector: e.MetricSelector.DeepCopy()}, Target: t}
	}
	return out
}

// resourceTarget is a v1 resource metric's target in v2's terms.
func resourceTarget(utilization *int32, value *resource.Quantity) autoscalingv2.MetricTarget {
	t := autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageUtilization: copyInt32(utilization), AverageValue: copyQuantity(value)}
	if utilization != nil {
		t.Type = autoscalingv2.UtilizationMetricType
	}
	return t
}

// metricSpecFromV2 converts a v2 metric to v1's annotation form.
func metricSpecFromV2(in autoscalingv2.MetricSpec) autoscalingv1.MetricSpec {
	out := autoscalingv1.MetricSpec{Type: autoscalingv1.MetricSourceType(in.Type)}
	if o := in.Object; o != nil {
		out.Object = &autoscalingv1.ObjectMetricSource{Target: autoscalingv1.CrossVersionObjectReference(o.DescribedObject),
			MetricName: o.Metric.Name, Selector: o.Metric.Selector.DeepCopy(), AverageValue: copyQuantity(o.Target.AverageValue)}
		if o.Target.Value != nil {
			out.Object.TargetValue = o.Target.Value.DeepCopy()
		}
	}
	if p := in.Pods; p != nil {
		out.Pods = &autoscalingv1.PodsMetricSource{MetricName: p.Metric.Name, Selector: p.Metric.Selector.DeepCopy()}
		if p.Target.AverageValue != nil {
			out.Pods.TargetAverageValue = p.Target.AverageValue.DeepCopy()
		}
	}
	if r := in.Resource; r != nil {
		out.Resource = &autoscalingv1.ResourceMetricSource{Name: r.Name, TargetAverageUtilization: copyInt32(r.Target.AverageUtilization),
			TargetAverageValue: copyQuantity(r.Target.AverageValue)}
	}
	if r := in.ContainerResource; r != nil {
		out.ContainerResource = &autoscalingv1.ContainerResourceMetricSource{Name: r.Name, Container: r.Container,
			TargetAverageUtilization: copyInt32(r.Target.AverageUtilization), TargetAverageValue: copyQuantity(r.Target.AverageValue)}
	}
	if e := in.External; e != nil {
		out.External = &autoscalingv1.ExternalMetricSource{MetricName: e.Metric.Name, MetricSelector: e.Metric.Selector.DeepCopy(),
			TargetValue: copyQuantity(e.Target.Value), TargetAverageValue: copyQuantity(e.Target.AverageValue)}
	}
	return out
}

// metricStatusToV2 converts a v1 annotation's current metric to v2's.
func metricStatusToV2(in autoscalingv1.MetricStatus) autoscalingv2.MetricStatus {
	out := autoscalingv2.MetricStatus{Type: autoscalingv2.MetricSourceType(in.Type)}
	if o := in.Object; o != nil {
		out.Object = &autoscalingv2.ObjectMetricStatus{DescribedObject: autoscalingv2.CrossVersionObjectReference(o.Target),
			Metric:  autoscalingv2.MetricIdentifier{Name: o.MetricName, Selector: o.Selector.DeepCopy()},
			Current: autoscalingv2.MetricValueStatus{Value: copyQuantity(&o.CurrentValue), AverageValue: copyQuantity(o.AverageValue)}}
	}
	if p := in.Pods; p != nil {
		out.Pods = &autoscalingv2.PodsMetricStatus{Metric: autoscalingv2.MetricIdentifier{Name: p.MetricName, Selector: p.Selector.DeepCopy()},
			Current: autoscalingv2.MetricValueStatus{AverageValue: copyQuantity(&p.CurrentAverageValue)}}
	}
	if r := in.Resource; r != nil {
		out.Resource = &autoscalingv2.ResourceMetricStatus{Name: r.Name,
			Current: autoscalingv2.MetricValueStatus{AverageUtilization: copyInt32(r.CurrentAverageUtilization), AverageValue: copyQuantity(&r.CurrentAverageValue)}}
	}
	if r := in.ContainerResource; r != nil {
		out.ContainerResource = &autoscalingv2.ContainerResourceMetricStatus{Name: r.Name, Container: r.Container,
			Current: autoscalingv2.MetricValueStatus{AverageUtilization: copyInt32(r.CurrentAverageUtilization), AverageValue: copyQuantity(&r.CurrentAverageValue)}}
	}
	if e := in.External; e != nil {
		out.External = &autoscalingv2.ExternalMetricStatus{Metric: autoscalingv2.MetricIdentifier{Name: e.MetricName, Selector: e.MetricSelector.DeepCopy()},
			Current: autoscalingv2.MetricValueStatus{Value: copyQuantity(&e.CurrentValue), AverageValue: copyQuantity(e.CurrentAverageValue)}}
	}
	return out
}

// metricStatusFromV2 converts a v2 current metric to v1's annotation form.
func metricStatusFromV2(in autoscalingv2.MetricStatus) autoscalingv1.MetricStatus {
	out := autoscalingv1.MetricStatus{Type: autoscalingv1.MetricSourceType(in.Type)}
	value := func(q *resource.Quantity) resource.Quantity {
		if q == nil {
			return resource.Quantity{}
		}
		return q.DeepCopy()
	}
	if o := in.Object; o != nil {
		out.Object = &autoscalingv1.ObjectMetricStatus{Target: autoscalingv1.CrossVersionObjectReference(o.DescribedObject),
			MetricName: o.Metric.Name, Selector: o.Metric.Selector.DeepCopy(), CurrentValue: value(o.Current.Value), AverageValue: copyQuantity(o.Current.AverageValue)}
	}
	if p := in.Pods; p != nil {
		out.Pods = &autoscalingv1.PodsMetricStatus{MetricName: p.Metric.Name, Selector: p.Metric.Selector.DeepCopy(), CurrentAverageValue: value(p.Current.AverageValue)}
	}
	if r := in.Resource; r != nil {
		out.Resource = &autoscalingv1.ResourceMetricStatus{Name: r.Name, CurrentAverageUtilization: copyInt32(r.Current.AverageUtilization),
			CurrentAverageValue: value(r.Current.AverageValue)}
	}
	if r := in.ContainerResource; r != nil {
		out.ContainerResource = &autoscalingv1.ContainerResourceMetricStatus{Name: r.Name, Container: r.Container,
			CurrentAverageUtilization: copyInt32(r.Current.AverageUtilization), CurrentAverageValue: value(r.Current.AverageValue)}
	}
	if e := in.External; e != nil {
		out.External = &autoscalingv1.ExternalMetricStatus{MetricName: e.Metric.Name, MetricSelector: e.Metric.Selector.DeepCopy(),
			CurrentValue: value(e.Current.Value), CurrentAverageValue: copyQuantity(e.Current.AverageValue)}
	}
	return out
}

func copyInt32(p *int32) *int32 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func copyInt64(p *int64) *int64 {
	if p == nil {
		return nil
	}
	v := *p
	return &v
}

func copyQuantity(q *resource.Quantity) *resource.Quantity {
	if q == nil {
		return nil
	}
	c := q.DeepCopy()
	return &c
}
