package apiserver_test

import (
	"strings"
	"testing"

	autoscalingv1 "k8s.io/api/autoscaling/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/test/apicluster"
)

// TestHPAAndCSINodeREST: HorizontalPodAutoscalers through autoscaling/v1 and v2 (one
// object, converted, defaulted and validated as the stored v2, its status through the
// status subresource alone, printed with kubectl's columns), and CSINodes.
func TestHPAAndCSINodeREST(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	const v1 = "/apis/autoscaling/v1/namespaces/default/horizontalpodautoscalers"
	const v2 = "/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers"

	body := `{"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"web"},` +
		`"spec":{"scaleTargetRef":{"apiVersion":"apps/v1","kind":"Deployment","name":"web"},"maxReplicas":5,"targetCPUUtilizationPercentage":60},` +
		`"status":{"currentReplicas":9,"desiredReplicas":9}}`
	created := decodeJSON[autoscalingv1.HorizontalPodAutoscaler](t, rc.want(rc.do("POST", v1, "application/json", "", body), 201, "create v1").body)
	if created.APIVersion != "autoscaling/v1" || *created.Spec.MinReplicas != 1 || *created.Spec.TargetCPUUtilizationPercentage != 60 ||
		created.Status.CurrentReplicas != 0 {
		t.Errorf("created = %+v", created)
	}
	got := decodeJSON[autoscalingv2.HorizontalPodAutoscaler](t, rc.want(rc.do("GET", v2+"/web", "", "", nil), 200, "get v2").body)
	if got.APIVersion != "autoscaling/v2" || len(got.Spec.Metrics) != 1 || *got.Spec.Metrics[0].Resource.Target.AverageUtilization != 60 ||
		got.ResourceVersion != created.ResourceVersion {
		t.Errorf("v2 = %+v", got)
	}

	// A v2 metric v1 has no field for is in v1's annotation, and a v1 update keeps it.
	got.Spec.Metrics = append(got.Spec.Metrics, autoscalingv2.MetricSpec{Type: autoscalingv2.PodsMetricSourceType,
		Pods: &autoscalingv2.PodsMetricSource{Metric: autoscalingv2.MetricIdentifier{Name: "qps"},
			Target: autoscalingv2.MetricTarget{Type: autoscalingv2.AverageValueMetricType, AverageValue: new(resource.MustParse("10"))}}})
	rc.want(rc.do("PUT", v2+"/web", "application/json", "", got), 200, "update v2")
	asV1 := decodeJSON[autoscalingv1.HorizontalPodAutoscaler](t, rc.want(rc.do("GET", v1+"/web", "", "", nil), 200, "get v1").body)
	if a := asV1.Annotations["autoscaling.alpha.kubernetes.io/metrics"]; !strings.Contains(a, `"metricName":"qps"`) {
		t.Errorf("v1 annotations = %v", asV1.Annotations)
	}
	asV1.Spec.MaxReplicas = 7
	rc.want(rc.do("PUT", v1+"/web", "application/json", "", asV1), 200, "update v1")
	got = decodeJSON[autoscalingv2.HorizontalPodAutoscaler](t, rc.want(rc.do("GET", v2+"/web", "", "", nil), 200, "get v2 again").body)
	if got.Spec.MaxReplicas != 7 || len(got.Spec.Metrics) != 2 || got.Spec.Metrics[1].Pods == nil || len(got.Annotations) != 0 {
		t.Errorf("after a v1 update: %+v", got)
	}

	// The status, through v1's subresource.
	asV1 = decodeJSON[autoscalingv1.HorizontalPodAutoscaler](t, rc.want(rc.do("GET", v1+"/web", "", "", nil), 200, "get v1").body)
	asV1.Status.CurrentReplicas, asV1.Status.DesiredReplicas = 2, 3
	rc.want(rc.do("PUT", v1+"/web/status", "application/json", "", asV1), 200, "status v1")
	got = decodeJSON[autoscalingv2.HorizontalPodAutoscaler](t, rc.want(rc.do("GET", v2+"/web", "", "", nil), 200, "get v2 status").body)
	if got.Status.CurrentReplicas != 2 || got.Status.DesiredReplicas != 3 {
		t.Errorf("status = %+v", got.Status)
	}

	// Invalid, in Kubernetes' words, through either version.
	bad := `{"apiVersion":"autoscaling/v1","kind":"HorizontalPodAutoscaler","metadata":{"name":"bad"},"spec":{"scaleTargetRef":{"kind":"Deployment","name":"web"},"minReplicas":3,"maxReplicas":2}}`
	st := rc.want(rc.do("POST", v1, "application/json", "", bad), 422, "invalid").status()
	if !strings.Contains(st.Message, "spec.maxReplicas: Invalid value: 2: must be greater than or equal to `minReplicas`") {
		t.Errorf("invalid = %q", st.Message)
	}

	// kubectl's columns.
	tbl := decodeJSON[metav1.Table](t, rc.want(rc.do("GET", v1, "", "application/json;as=Table;v=v1;g=meta.k8s.io", nil), 200, "table").body)
	if len(tbl.Rows) != 1 || len(tbl.ColumnDefinitions) < 6 || tbl.ColumnDefinitions[1].Name != "Reference" ||
		tbl.Rows[0].Cells[1] != "Deployment/web" || tbl.Rows[0].Cells[2] != "cpu: <unknown>/60%, <unknown>/10 (avg)" {
		t.Errorf("table = %+v %+v", tbl.ColumnDefinitions, tbl.Rows)
	}

	// CSINode: cluster-scoped, named as its node.
	node := &storagev1.CSINode{ObjectMeta: metav1.ObjectMeta{Name: "w1"}, Spec: storagev1.CSINodeSpec{Drivers: []storagev1.CSINodeDriver{}}}
	node.APIVersion, node.Kind = "storage.k8s.io/v1", "CSINode"
	rc.want(rc.do("POST", "/apis/storage.k8s.io/v1/csinodes", "application/json", "", node), 201, "create csinode")
	rc.want(rc.do("GET", "/apis/storage.k8s.io/v1/csinodes/w1", "", "", nil), 200, "get csinode")
}
