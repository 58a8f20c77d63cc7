package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/test/waitfor"
)

// podNodes maps the live pods whose names start with prefix to their node and phase
// ("sim-0 Running"), and a pending pod to why it waits.
func podNodes(t *testing.T, s, prefix string) map[string]string {
	out := map[string]string{}
	for _, p := range podsJSON(t, s).Items {
		if strings.HasPrefix(p.Name, prefix) && p.DeletionTimestamp == nil {
			out[p.Name] = p.Spec.NodeName + " " + string(p.Status.Phase)
			if why := unschedulable(&p); why != "" {
				out[p.Name] += ": " + why
			}
		}
	}
	return out
}

// byNode lists "node phase" of each pod, sorted: one entry per pod.
func byNode(pods map[string]string) string {
	var out []string
	for _, v := range pods {
		out = append(out, v)
	}
	slices.Sort(out)
	return strings.Join(out, ", ")
}

// TestDaemonSetFollowsNodes: the example DaemonSet runs a pod on each node, through the
// scheduler; a node that joins gets one; a cordoned node keeps its pod, and gets it back
// when it is deleted; a new image rolls across the nodes, with its revisions, its
// status and its chain as skiffctl shows them.
func TestDaemonSetFollowsNodes(t *testing.T) {
	t.Parallel() // a cluster of its own, mostly waiting: see harness_test.go
	c := startAPIServers(t)
	s := c.servers()
	start(t, "controller-manager", "controller-manager", "--server", s, "--log-level", "warn")
	start(t, "scheduler", "scheduler", "--server", s, "--log-level", "warn")
	start(t, "kubelets", "kubelet", "--server", s, "--runtime", "sim", "--sim-nodes", "2", "--node-name", "sim",
		"--kubelet-listen", "127.0.0.1:0", "--log-level", "warn")
	mustCtl(t, s, "apply", "-f", "../../examples/workloads/daemonset.yaml")
	waitfor.Condition(t, time.Minute, "a running agent on each of two nodes", func() (bool, string) {
		got := byNode(podNodes(t, s, "node-agent-"))
		return got == "sim-0 Running, sim-1 Running", got
	})

	start(t, "kubelet-extra", "kubelet", "--server", s, "--runtime", "sim", "--node-name", "extra",
		"--kubelet-listen", "127.0.0.1:0", "--log-level", "warn")
	waitfor.Condition(t, time.Minute, "the node that joined runs one too", func() (bool, string) {
		got := byNode(podNodes(t, s, "node-agent-"))
		return got == "extra Running, sim-0 Running, sim-1 Running", got
	})

	mustCtl(t, s, "cordon", "sim-0")
	var onSim0 string
	for name, v := range podNodes(t, s, "node-agent-") {
		if strings.HasPrefix(v, "sim-0 ") {
			onSim0 = name
		}
	}
	mustCtl(t, s, "delete", "pod", onSim0)
	waitfor.Condition(t, time.Minute, "the cordoned node's pod back on it", func() (bool, string) {
		pods := podNodes(t, s, "node-agent-")
		_, old := pods[onSim0]
		got := byNode(pods)
		return !old && got == "extra Running, sim-0 Running, sim-1 Running", got
	})

	mustCtl(t, s, "patch", "daemonset", "node-agent", "-p", `{"spec":{"template":{"spec":{"containers":[{"name":"agent","image":"busybox:1.37"}]}}}}`)
	out := mustCtl(t, s, "rollout", "status", "daemonset/node-agent", "--timeout", "2m")
	if !strings.Contains(out, `daemon set "node-agent" successfully rolled out`) {
		t.Fatalf("rollout status:\n%s", out)
	}
	waitfor.Condition(t, time.Minute, "every agent on the new image", func() (bool, string) {
		var images []string
		for _, p := range podsJSON(t, s).Items {
			if strings.HasPrefix(p.Name, "node-agent-") && p.DeletionTimestamp == nil && p.Status.Phase == corev1.PodRunning {
				images = append(images, p.Spec.NodeName+"="+p.Spec.Containers[0].Image)
			}
		}
		slices.Sort(images)
		got := strings.Join(images, " ")
		return got == "extra=busybox:1.37 sim-0=busybox:1.37 sim-1=busybox:1.37", got
	})
	hist := mustCtl(t, s, "rollout", "history", "ds/node-agent")
	if !strings.Contains(hist, "daemonset.apps/node-agent") || !strings.Contains(hist, "\n1 ") || !strings.Contains(hist, "\n2 ") {
		t.Errorf("rollout history:\n%s", hist)
	}
	if out := mustCtl(t, s, "get", "all"); !strings.Contains(out, "daemonset.apps/node-agent") {
		t.Errorf("get all:\n%s", out)
	}
	if out := mustCtl(t, s, "get", "ds", "node-agent"); !strings.Contains(out, "node-agent   3         3         3       3            3") {
		t.Errorf("get ds:\n%s", out)
	}
	var tr struct {
		Kind  string
		Steps []struct {
			Title     string
			Component string
			Missing   bool
		}
		Pods struct{ Total, Ready int }
	}
	if err := json.Unmarshal([]byte(mustCtl(t, s, "trace", "daemonset", "node-agent", "-o", "json")), &tr); err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, st := range tr.Steps {
		if st.Missing {
			t.Errorf("trace: step %q missing", st.Title)
		}
		steps = append(steps, st.Title)
	}
	if tr.Kind != "DaemonSet" || tr.Pods.Total != 3 || tr.Pods.Ready != 3 || len(steps) != 7 || steps[1] != "Revision created" {
		t.Errorf("trace: %s %+v: %q", tr.Kind, tr.Pods, steps)
	}
}

// TestStatefulSetKeepsItsVolumes: a StatefulSet of three with a claim template comes up
// web-0, web-1, web-2; each claim is provisioned by local-path on its pod's node and
// bound; a pod deleted comes back with its name, on the node its volume lives on; scaling
// down removes the highest ordinals and keeps their claims (the default retention).
func TestStatefulSetKeepsItsVolumes(t *testing.T) {
	t.Parallel() // a cluster of its own, mostly waiting: see harness_test.go
	c := startAPIServers(t)
	s := c.servers()
	start(t, "controller-manager", "controller-manager", "--server", s, "--log-level", "warn")
	start(t, "scheduler", "scheduler", "--server", s, "--log-level", "warn")
	start(t, "kubelets", "kubelet", "--server", s, "--runtime", "sim", "--sim-nodes", "3", "--node-name", "sim",
		"--kubelet-listen", "127.0.0.1:0", "--log-level", "warn")
	if _, errs, err := ctlIn(s, statefulSetManifest, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v: %s", err, errs)
	}
	waitfor.Condition(t, 2*time.Minute, "web-0, web-1 and web-2 running", func() (bool, string) {
		pods := podNodes(t, s, "web-")
		ok := len(pods) == 3
		for i := range 3 {
			ok = ok && strings.HasSuffix(pods[fmt.Sprintf("web-%d", i)], " Running")
		}
		return ok, fmt.Sprint(pods)
	})
	claims := func() map[string]corev1.PersistentVolumeClaim {
		out, _, _ := ctl(s, "get", "pvc", "-o", "json")
		var l corev1.PersistentVolumeClaimList
		json.Unmarshal([]byte(out), &l)
		m := map[string]corev1.PersistentVolumeClaim{}
		for _, c := range l.Items {
			m[c.Name] = c
		}
		return m
	}
	waitfor.Condition(t, time.Minute, "three claims bound", func() (bool, string) {
		m := claims()
		n := 0
		for _, c := range m {
			if c.Status.Phase == corev1.ClaimBound {
				n++
			}
		}
		return n == 3, fmt.Sprint(len(m))
	})
	volumeNode := func(claim string) string {
		var pv corev1.PersistentVolume
		out := mustCtl(t, s, "get", "pv", claims()[claim].Spec.VolumeName, "-o", "json")
		if err := json.Unmarshal([]byte(out), &pv); err != nil {
			t.Fatal(err)
		}
		return pv.Spec.NodeAffinity.Required.NodeSelectorTerms[0].MatchExpressions[0].Values[0]
	}
	pods := podNodes(t, s, "web-")
	node1 := strings.Fields(pods["web-1"])[0]
	if got := volumeNode("www-web-1"); got != node1 {
		t.Fatalf("web-1 runs on %s, its volume lives on %s", node1, got)
	}
	// Deleted, web-1 comes back with its name, on its volume's node.
	mustCtl(t, s, "delete", "pod", "web-1")
	waitfor.Condition(t, time.Minute, "web-1 back on its volume's node", func() (bool, string) {
		got := podNodes(t, s, "web-")["web-1"]
		return got == node1+" Running", got
	})
	mustCtl(t, s, "scale", "statefulset", "web", "--replicas", "1")
	waitfor.Condition(t, time.Minute, "web-0 alone", func() (bool, string) {
		got := podNodes(t, s, "web-")
		return len(got) == 1 && got["web-0"] != "", fmt.Sprint(got)
	})
	if m := claims(); len(m) != 3 {
		t.Errorf("claims after scale-down: %d, want the three kept", len(m))
	}
	if out := mustCtl(t, s, "get", "sts"); !strings.Contains(out, "web    1/1") {
		t.Errorf("get sts:\n%s", out)
	}
	if out := mustCtl(t, s, "rollout", "status", "sts/web"); !strings.Contains(out, "statefulset rolling update complete 1 pods at revision") {
		t.Errorf("rollout status:\n%s", out)
	}
	if out := mustCtl(t, s, "trace", "statefulset", "web"); !strings.Contains(out, "statefulset default/web  revision 1  controllerrevision web-") {
		t.Errorf("trace:\n%s", out)
	}
}

// statefulSetManifest is examples/workloads/statefulset.yaml without the volume mount,
// which the simulated runtime does not need.
const statefulSetManifest = `apiVersion: apps/v1
kind: StatefulSet
metadata:
  name: web
spec:
  serviceName: nginx
  replicas: 3
  selector:
    matchLabels: {app: nginx}
  template:
    metadata:
      labels: {app: nginx}
    spec:
      containers:
      - name: nginx
        image: busybox:1.36
        command: ["sh", "-c", "while true; do sleep 3600; done"]
  volumeClaimTemplates:
  - metadata: {name: www}
    spec:
      accessModes: [ReadWriteOnce]
      resources:
        requests: {storage: 1Gi}
`
