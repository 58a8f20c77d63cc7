package k8sclients

import "testing"

// TestKubectlAutoscaleAndDiscovery: kubectl autoscale makes an autoscaling/v2
// HorizontalPodAutoscaler that reads the same through v1, printed with kubectl's
// columns; api-resources lists the reviews (create only) and CSINodes.
func TestKubectlAutoscaleAndDiscovery(t *testing.T) {
	s := startSkiff(t)
	s.wantOut(`(?m)^selfsubjectaccessreviews\s+authorization.k8s.io/v1\s+false\s+SelfSubjectAccessReview$`, "api-resources", "--api-group=authorization.k8s.io")
	s.wantOut(`(?m)^localsubjectaccessreviews\s+authorization.k8s.io/v1\s+true\s+LocalSubjectAccessReview\s+create\s*$`,
		"api-resources", "--api-group=authorization.k8s.io", "-o", "wide")
	s.wantOut(`(?m)^tokenreviews\s+authentication.k8s.io/v1\s+false\s+TokenReview$`, "api-resources", "--api-group=authentication.k8s.io")
	s.wantOut(`(?m)^horizontalpodautoscalers\s+hpa\s+autoscaling/v2\s+true\s+HorizontalPodAutoscaler$`, "api-resources", "--api-group=autoscaling")
	s.wantOut(`(?m)^csinodes\s+storage.k8s.io/v1\s+false\s+CSINode$`, "api-resources", "--api-group=storage.k8s.io")

	s.wantOut(`^deployment.apps/web created\n$`, "create", "deployment", "web", "--image=nginx:1.25")
	s.wantOut(`^horizontalpodautoscaler.autoscaling/web autoscaled\n$`, "autoscale", "deployment", "web", "--min=2", "--max=5", "--cpu-percent=60")
	s.wantOut(`(?m)^NAME\s+REFERENCE\s+TARGETS\s+MINPODS\s+MAXPODS\s+REPLICAS\s+AGE\nweb\s+Deployment/web\s+cpu: <unknown>/60%\s+2\s+5\s+0\s+\S+$`, "get", "hpa")
	s.wantOut(`^60 Utilization$`, "get", "hpa", "web", "-o", "jsonpath={.spec.metrics[0].resource.target.averageUtilization} {.spec.metrics[0].resource.target.type}")
	s.wantOut(`^autoscaling/v1 60$`, "get", "horizontalpodautoscalers.v1.autoscaling", "web", "-o", "jsonpath={.apiVersion} {.spec.targetCPUUtilizationPercentage}")
	s.wantOut(`^horizontalpodautoscaler.autoscaling/web patched\n$`, "patch", "horizontalpodautoscalers.v1.autoscaling", "web", "--type=merge",
		"-p", `{"spec":{"targetCPUUtilizationPercentage":70}}`)
	s.wantOut(`^70$`, "get", "hpa", "web", "-o", "jsonpath={.spec.metrics[0].resource.target.averageUtilization}")
	s.wantOut(`horizontalpodautoscaler.autoscaling "web" deleted`, "delete", "hpa", "web")
}
