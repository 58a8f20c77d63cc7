package validation

import (
	"testing"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
)

func hpaOf(spec autoscalingv2.HorizontalPodAutoscalerSpec) *autoscalingv2.HorizontalPodAutoscaler {
	return &autoscalingv2.HorizontalPodAutoscaler{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: spec}
}

// TestValidateHPAAndCSINode: Kubernetes' defaults and validation of
// HorizontalPodAutoscalers and CSINodes, in its words and field paths.
func TestValidateHPAAndCSINode(t *testing.T) {
	ref := autoscalingv2.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}
	neg := resource.MustParse("-1")
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want []string
	}{
		{"hpa", hpaOf(autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 3}), nil},
		{"hpa replicas", hpaOf(autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: autoscalingv2.CrossVersionObjectReference{Name: "a/b"},
			MinReplicas: new(int32(0)), MaxReplicas: -1}),
			[]string{"spec.minReplicas: Invalid value: 0: must be greater than or equal to 1",
				"spec.maxReplicas: Invalid value: -1: must be greater than 0",
				"spec.maxReplicas: Invalid value: -1: must be greater than or equal to `minReplicas`",
				"spec.scaleTargetRef.kind: Required value",
				`spec.scaleTargetRef.name: Invalid value: "a/b": may not contain '/'`}},
		{"hpa metrics", hpaOf(autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 3, Metrics: []autoscalingv2.MetricSpec{
			{Type: autoscalingv2.ResourceMetricSourceType, Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceCPU,
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.UtilizationMetricType, AverageUtilization: new(int32(0))}}},
			{Type: autoscalingv2.PodsMetricSourceType},
			{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "q"},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: &neg}},
				Resource: &autoscalingv2.ResourceMetricSource{Name: corev1.ResourceMemory,
					Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: new(resource.MustParse("1Gi"))}}},
			{Type: autoscalingv2.ExternalMetricSourceType, External: &autoscalingv2.ExternalMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "q"},
				Target: autoscalingv2.MetricTarget{Type: autoscalingv2.ValueMetricType, Value: &neg}}},
		}}),
			[]string{`spec.metrics[3].external.target.value: Invalid value: "-1": must be positive`,
				"spec.metrics[0].resource.target.averageUtilization: Invalid value: 0: must be greater than 0",
				"spec.metrics[1].pods: Required value: must populate information for the given metric source",
				"spec.metrics[2].resource: Forbidden: must populate the given metric source only"}},
		{"hpa behavior", hpaOf(autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 3, Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{
			ScaleUp: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: new(int32(3601)), Policies: []autoscalingv2.HPAScalingPolicy{
				{Type: "Nodes", Value: 0, PeriodSeconds: 1801}}},
			ScaleDown: &autoscalingv2.HPAScalingRules{Policies: []autoscalingv2.HPAScalingPolicy{}}}}),
			[]string{"spec.behavior.scaleUp.stabilizationWindowSeconds: Invalid value: 3601: must be less than or equal to 3600",
				`spec.behavior.scaleUp.policies[0].type: Unsupported value: "Nodes"`,
				"spec.behavior.scaleUp.policies[0].value: Invalid value: 0: must be greater than zero",
				"spec.behavior.scaleUp.policies[0].periodSeconds: Invalid value: 1801: must be less than or equal to 1800",
				"spec.behavior.scaleDown.policies: Required value: must specify at least one Policy"}},
		{"csinode", &storagev1.CSINode{ObjectMeta: named("n1"), Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{
			{Name: "csi.example.com", NodeID: "n1", TopologyKeys: []string{"topology.example.com/zone"}},
			{Name: "csi.example.com", TopologyKeys: []string{"bad key"}, Allocatable: &storagev1.VolumeNodeResources{Count: new(int32(-1))}},
			{Name: "Bad_Driver", NodeID: "n1"}}}},
			[]string{`spec.drivers[1].name: Duplicate value: "csi.example.com"`,
				"spec.drivers[1].nodeID: Required value: nodeID must be provided",
				`spec.drivers[1].topologyKeys[0]: Invalid value: "bad key"`,
				"spec.drivers[1].allocatable.count: Invalid value: -1: must be greater than or equal to 0",
				`spec.drivers[2].name: Invalid value: "Bad_Driver"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			Default(tc.obj)
			checkErrors(t, Validate(tc.obj), tc.want)
		})
	}

	// Defaults: one replica at least, CPU at 80%, and the scaling rules a behavior leaves out.
	h := hpaOf(autoscalingv2.HorizontalPodAutoscalerSpec{ScaleTargetRef: ref, MaxReplicas: 3,
		Behavior: &autoscalingv2.HorizontalPodAutoscalerBehavior{ScaleDown: &autoscalingv2.HPAScalingRules{StabilizationWindowSeconds: new(int32(60))}}})
	Default(h)
	if *h.Spec.MinReplicas != 1 || len(h.Spec.Metrics) != 1 || h.Spec.Metrics[0].Resource.Name != corev1.ResourceCPU ||
		*h.Spec.Metrics[0].Resource.Target.AverageUtilization != DefaultHPACPUUtilization {
		t.Errorf("defaults: %+v", h.Spec)
	}
	if b := h.Spec.Behavior; *b.ScaleDown.StabilizationWindowSeconds != 60 || len(b.ScaleDown.Policies) != 1 || *b.ScaleDown.SelectPolicy != autoscalingv2.MaxChangePolicySelect ||
		*b.ScaleUp.StabilizationWindowSeconds != 0 || len(b.ScaleUp.Policies) != 2 {
		t.Errorf("behavior defaults: up %+v, down %+v", b.ScaleUp, b.ScaleDown)
	}
	checkErrors(t, Validate(h), nil)

	// A CSINode's drivers keep their node IDs.
	n := &storagev1.CSINode{ObjectMeta: named("n1"), Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{{Name: "csi.example.com", NodeID: "a"}}}}
	m := n.DeepCopy()
	m.Spec.Drivers[0].NodeID = "b"
	checkErrors(t, ValidateUpdate(n, m), []string{`spec.drivers[0].nodeID: Invalid value: "b": field is immutable`})
}
