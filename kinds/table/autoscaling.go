package table

import (
	"fmt"
	"strings"
	"time"

	autoscalingv2 "k8s.io/api/autoscaling/v2"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiffhq/skiff/kinds"
)

// The columns of HorizontalPodAutoscalers (autoscaling/v1's are printed as the stored
// v2's, as Kubernetes prints them) and CSINodes, as Kubernetes' printers define them.
func init() {
	hpa := typed[*autoscalingv2.HorizontalPodAutoscaler]
	spec := autoscalingv2.HorizontalPodAutoscalerSpec{}.SwaggerDoc()
	columns[kinds.HorizontalPodAutoscaler] = []Column{nameCol,
		col("Reference", "string", 0, spec["scaleTargetRef"], hpa(func(h *autoscalingv2.HorizontalPodAutoscaler) any {
			return h.Spec.ScaleTargetRef.Kind + "/" + h.Spec.ScaleTargetRef.Name
		})),
		col("Targets", "string", 0, spec["metrics"], hpa(func(h *autoscalingv2.HorizontalPodAutoscaler) any { return HPATargets(h) })),
		col("MinPods", "string", 0, spec["minReplicas"], hpa(func(h *autoscalingv2.HorizontalPodAutoscaler) any {
			if h.Spec.MinReplicas == nil {
				return "<unset>"
			}
			return int64(*h.Spec.MinReplicas)
		})),
		col("MaxPods", "integer", 0, spec["maxReplicas"], hpa(func(h *autoscalingv2.HorizontalPodAutoscaler) any { return int64(h.Spec.MaxReplicas) })),
		col("Replicas", "string", 0, autoscalingv2.HorizontalPodAutoscalerStatus{}.SwaggerDoc()["currentReplicas"],
			hpa(func(h *autoscalingv2.HorizontalPodAutoscaler) any { return int64(h.Status.CurrentReplicas) })),
		ageCol,
	}
	columns[kinds.CSINode] = []Column{nameCol,
		col("Drivers", "integer", 0, "Drivers indicates the number of CSI drivers registered on the node", func(o kinds.Object, _ time.Time) any {
			return int64(len(o.(*storagev1.CSINode).Spec.Drivers))
		}),
		ageCol,
	}
}

// HPATargets is the Targets column: each metric's current value (<unknown> until the
// status has one) over its target, the first two, then how many more.
func HPATargets(h *autoscalingv2.HorizontalPodAutoscaler) string {
	if len(h.Spec.Metrics) == 0 {
		return "<none>"
	}
	var list []string
	for i, m := range h.Spec.Metrics {
		var cur *autoscalingv2.MetricStatus
		if i < len(h.Status.CurrentMetrics) && h.Status.CurrentMetrics[i].Type == m.Type {
			cur = &h.Status.CurrentMetrics[i]
		}
		list = append(list, hpaTarget(m, cur))
	}
	if len(list) > 2 {
		return fmt.Sprintf("%s + %d more...", strings.Join(list[:2], ", "), len(list)-2)
	}
	return strings.Join(list, ", ")
}

// hpaTarget is one metric's current/target.
func hpaTarget(m autoscalingv2.MetricSpec, cur *autoscalingv2.MetricStatus) string {
	quantity := func(q *resource.Quantity) string {
		if q == nil {
			return "<unknown>"
		}
		return q.String()
	}
	target := func(t autoscalingv2.MetricTarget, c *autoscalingv2.MetricValueStatus) string {
		if t.AverageUtilization != nil {
			current := "<unknown>"
			if c != nil && c.AverageUtilization != nil {
				current = fmt.Sprintf("%d%%", *c.AverageUtilization)
			}
			return fmt.Sprintf("%s/%d%%", current, *t.AverageUtilization)
		}
		if t.Type == autoscalingv2.AverageValueMetricType || t.Value == nil {
			current := "<unknown>"
			if c != nil {
				current = quantity(c.AverageValue)
			}
			return fmt.Sprintf("%s/%s (avg)", current, quantity(t.AverageValue))
		}
		current := "<unknown>"
		if c != nil {
			current = quantity(c.Value)
		}
		return fmt.Sprintf("%s/%s", current, quantity(t.Value))
	}
	switch {
	case m.Resource != nil:
		var c *autoscalingv2.MetricValueStatus
		if cur != nil && cur.Resource != nil {
			c = &cur.Resource.Current
		}
		return string(m.Resource.Name) + ": " + target(m.Resource.Target, c)
	case m.ContainerResource != nil:
		var c *autoscalingv2.MetricValueStatus
		if cur != nil && cur.ContainerResource != nil {
			c = &cur.ContainerResource.Current
		}
		return string(m.ContainerResource.Name) + ": " + target(m.ContainerResource.Target, c)
	case m.Pods != nil:
		var c *autoscalingv2.MetricValueStatus
		if cur != nil && cur.Pods != nil {
			c = &cur.Pods.Current
		}
		return target(m.Pods.Target, c)
	case m.Object != nil:
		var c *autoscalingv2.MetricValueStatus
		if cur != nil && cur.Object != nil {
			c = &cur.Object.Current
		}
		return target(m.Object.Target, c)
	case m.External != nil:
		var c *autoscalingv2.MetricValueStatus
		if cur != nil && cur.External != nil {
			c = &cur.External.Current
		}
		return target(m.External.Target, c)
	}
	return "<unknown metric type>"
}
