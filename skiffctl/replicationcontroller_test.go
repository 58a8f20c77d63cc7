package skiffctl_test

import (
	"testing"

	"github.com/skiffhq/skiff/test/apicluster"
)

// TestReplicationControllerCommands: skiffctl applies, lists (rc, in all), describes and
// scales a ReplicationController; it has no rollout, as in kubectl.
func TestReplicationControllerCommands(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := c.Addr(0)
	const manifest = `apiVersion: v1
kind: ReplicationController
metadata:
  name: legacy
spec:
  replicas: 2
  template:
    metadata:
      labels:
        name: legacy
    spec:
      containers:
      - name: web
        image: nginx:1.25
`
	code, out, errs := run(t, s, manifest, "apply", "-f", "-")
	if code != 0 {
		t.Fatalf("apply: %s", errs)
	}
	contains(t, "apply", out, "replicationcontroller/legacy created")
	contains(t, "get rc", must(t, s, "get", "rc"), "NAME", "DESIRED", "CURRENT", "READY", "AGE", "legacy")
	contains(t, "get rc -o wide", must(t, s, "get", "replicationcontrollers", "-o", "wide"), "CONTAINERS", "nginx:1.25", "name=legacy")
	contains(t, "get all", must(t, s, "get", "all"), "replicationcontroller/legacy")
	contains(t, "scale rc", must(t, s, "scale", "rc", "legacy", "--replicas", "4"), "replicationcontroller/legacy scaled")
	contains(t, "get -o yaml", must(t, s, "get", "rc", "legacy", "-o", "yaml"), "replicas: 4", "selector:\n    name: legacy")
	contains(t, "describe rc", must(t, s, "describe", "rc", "legacy"), "Selector:", "name=legacy", "0 current / 4 desired")
	fails(t, s, "", "no rollout support for replicationcontrollers", "rollout", "status", "rc/legacy")
}
