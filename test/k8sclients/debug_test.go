package k8sclients

import (
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

const resizablePod = `apiVersion: v1
kind: Pod
metadata: {name: app}
spec:
  containers:
  - name: app
    image: busybox:1.36
    command: [sleep, "3600"]
    resources:
      requests: {cpu: 100m, memory: 32Mi}
      limits: {cpu: 200m, memory: 64Mi}
`

// TestKubectlDebugAndResize: kubectl debug adds an ephemeral container to a running pod
// (pods/ephemeralcontainers, targeting the app container), which runs and shows in the
// pod's status; kubectl patch --subresource resize changes a running container's cpu
// in place, and a resize that would change the QoS class is refused in Kubernetes'
// words.
func TestKubectlDebugAndResize(t *testing.T) {
	s := startSkiff(t)
	if _, err := s.runEnv(nil, resizablePod, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	jsonpath := func(path string) string {
		out, _ := s.run("get", "pod", "app", "-o", "jsonpath={"+path+"}")
		return out
	}
	waitfor.Condition(t, time.Minute, "the pod running", func() (bool, string) {
		p := jsonpath(".status.phase")
		return p == "Running", p
	})
	out := s.must("debug", "app", "--image=busybox:1.36", "--target=app", "-c", "debugger", "--", "sleep", "3600")
	if !strings.Contains(out, "Targeting container \"app\"") {
		t.Logf("kubectl debug: %s", out)
	}
	waitfor.Condition(t, time.Minute, "the ephemeral container running", func() (bool, string) {
		st := jsonpath(".status.ephemeralContainerStatuses[0].name") + " " + jsonpath(".status.ephemeralContainerStatuses[0].state.running.startedAt")
		return strings.HasPrefix(st, "debugger ") && len(st) > len("debugger "), st
	})
	if got := jsonpath(".spec.ephemeralContainers[0].targetContainerName"); got != "app" {
		t.Errorf("targetContainerName %q", got)
	}
	s.wantOut(`^pod/app patched\n$`, "patch", "pod", "app", "--subresource", "resize", "--patch",
		`{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"150m"},"limits":{"cpu":"300m"}}}]}}`)
	waitfor.Condition(t, time.Minute, "the container resized", func() (bool, string) {
		st := jsonpath(".status.containerStatuses[0].resources.limits.cpu") + " " + jsonpath(".status.containerStatuses[0].allocatedResources.cpu") +
			" " + jsonpath(".status.containerStatuses[0].restartCount")
		return st == "300m 150m 0", st
	})
	if got := jsonpath(".spec.containers[0].resources.limits.cpu"); got != "300m" {
		t.Errorf("spec after resize: cpu limit %q", got)
	}
	out, err := s.run("patch", "pod", "app", "--subresource", "resize", "--patch",
		`{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"300m","memory":"64Mi"}}}]}}`)
	if err == nil || !strings.Contains(out, "Pod QOS Class may not change as a result of resizing") {
		t.Errorf("a resize to Guaranteed: %v: %s", err, out)
	}
}
