package e2e

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

type podList struct {
	Items []struct {
		Metadata struct {
			Name              string
			Uid               string
			DeletionTimestamp string
		}
		Spec   struct{ NodeName string }
		Status struct {
			Phase      string
			Conditions []struct{ Type, Status string }
		}
	}
}

func pods(t *testing.T, servers string) podList {
	out, _, err := ctl(servers, "get", "pods", "-o", "json")
	var l podList
	if err != nil || json.Unmarshal([]byte(out), &l) != nil {
		return podList{}
	}
	return l
}

// TestFailoverMidRollout kills -9 the API server leader, the active controller-manager and
// the active scheduler in the middle of a 50-replica rollout on simulated nodes: the
// rollout completes with exactly 50 pods, and no pod is bound twice.
func TestFailoverMidRollout(t *testing.T) {
	c := startAPIServers(t)
	s := c.servers()
	cms := map[string]*proc{}
	scheds := map[string]*proc{}
	for i := 1; i <= 2; i++ {
		id := fmt.Sprintf("cm%d", i)
		cms[id] = start(t, id, "controller-manager", "--server", s, "--identity", id, "--log-level", "warn")
		id = fmt.Sprintf("sched%d", i)
		scheds[id] = start(t, id, "scheduler", "--server", s, "--identity", id, "--log-level", "warn")
	}
	start(t, "kubelets", "kubelet", "--server", s, "--runtime", "sim", "--sim-nodes", "5", "--node-name", "sim", "--log-level", "warn",
		"--kubelet-listen", "127.0.0.1:0")

	manifest := func(image string) string {
		return fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata: {name: big}
spec:
  replicas: 50
  selector: {matchLabels: {app: big}}
  template:
    metadata: {labels: {app: big}}
    spec:
      containers: [{name: app, image: %q, command: [sleep, "3600"]}]
`, image)
	}
	done := func(image string) func() (bool, string) {
		return func() (bool, string) {
			out, _, err := ctl(s, "get", "deploy", "big", "-o", "json")
			var d struct {
				Metadata struct{ Generation int64 }
				Spec     struct {
					Template struct {
						Spec struct{ Containers []struct{ Image string } }
					}
				}
				Status struct {
					ObservedGeneration                                          int64
					Replicas, UpdatedReplicas, AvailableReplicas, ReadyReplicas int32
				}
			}
			if err != nil || json.Unmarshal([]byte(out), &d) != nil {
				return false, out
			}
			st := d.Status
			return st.ObservedGeneration == d.Metadata.Generation && st.Replicas == 50 && st.UpdatedReplicas == 50 && st.AvailableReplicas == 50 &&
				d.Spec.Template.Spec.Containers[0].Image == image, out
		}
	}
	if _, errs, err := ctlIn(s, manifest("busybox:1"), "apply", "-f", "-"); err != nil {
		t.Fatal(errs)
	}
	waitfor.Condition(t, 120*time.Second, "first rollout", done("busybox:1"))

	if _, errs, err := ctlIn(s, manifest("busybox:2"), "apply", "-f", "-"); err != nil {
		t.Fatal(errs)
	}
	waitfor.Condition(t, 60*time.Second, "rollout under way", func() (bool, string) {
		out, _, _ := ctl(s, "get", "deploy", "big", "--no-headers")
		f := strings.Fields(out)
		return len(f) > 2 && f[2] != "0" && f[2] != "50", out
	})
	leader := c.leader()
	cm := leaseHolder(s, "skiff-controller-manager")
	sched := leaseHolder(s, "skiff-scheduler")
	if cms[cm] == nil || scheds[sched] == nil {
		t.Fatalf("lease holders %q and %q are not ours", cm, sched)
	}
	c.procs[leader].kill()
	cms[cm].kill()
	scheds[sched].kill()
	t.Logf("killed apiserver n%d, controller-manager %s and scheduler %s mid-rollout", leader+1, cm, sched)

	waitfor.Condition(t, 180*time.Second, "rollout completes after the failover", done("busybox:2"))
	l := pods(t, s)
	active := 0
	for _, p := range l.Items {
		if p.Metadata.DeletionTimestamp == "" && p.Status.Phase != "Succeeded" && p.Status.Phase != "Failed" {
			active++
		}
	}
	if active != 50 {
		t.Fatalf("%d active pods after the rollout, want 50", active)
	}
	// No pod bound twice: at most one Scheduled event per pod.
	out, _, err := ctl(s, "get", "events", "-o", "json", "--field-selector", "reason=Scheduled")
	if err != nil {
		t.Fatal(err)
	}
	var evs struct {
		Items []struct {
			InvolvedObject struct{ Uid string }
			Count          int
		}
	}
	if err := json.Unmarshal([]byte(out), &evs); err != nil {
		t.Fatal(err)
	}
	per := map[string]int{}
	for _, e := range evs.Items {
		per[e.InvolvedObject.Uid] += e.Count
	}
	for uid, n := range per {
		if n > 1 {
			t.Errorf("pod %s scheduled %d times", uid, n)
		}
	}
}

// TestKubeletDeath kills one of two kubelets: after the grace period its node is
// unreachable and its pods are replaced on the other node.
func TestKubeletDeath(t *testing.T) {
	t.Parallel() // a cluster of its own, mostly waiting: see harness_test.go
	c := startAPIServers(t)
	s := c.servers()
	start(t, "controller-manager", "controller-manager", "--server", s, "--node-monitor-grace-period", "4s", "--pod-eviction-timeout", "2s", "--log-level", "warn")
	start(t, "scheduler", "scheduler", "--server", s, "--log-level", "warn")
	kubelets := map[string]*proc{}
	for _, n := range []string{"w1", "w2"} {
		kubelets[n] = start(t, "kubelet-"+n, "kubelet", "--server", s, "--runtime", "sim", "--node-name", n,
			"--node-lease-renew-interval", "500ms", "--node-status-update-frequency", "1s", "--log-level", "warn",
			"--kubelet-listen", "127.0.0.1:0")
	}
	waitfor.Condition(t, 60*time.Second, "two Ready nodes", func() (bool, string) {
		out, _, err := ctl(s, "get", "nodes", "--no-headers")
		return err == nil && strings.Count(out, " Ready ") == 2, out
	})
	mustCtl(t, s, "apply", "-f", "../../examples/nginx-deployment.yaml")
	mustCtl(t, s, "scale", "deployment", "nginx-deployment", "--replicas", "6")
	on := func(node string) (running, total int) {
		for _, p := range pods(t, s).Items {
			if p.Spec.NodeName == node && p.Metadata.DeletionTimestamp == "" {
				total++
				if p.Status.Phase == "Running" {
					running++
				}
			}
		}
		return
	}
	waitfor.Condition(t, 60*time.Second, "pods on both nodes", func() (bool, string) {
		r1, _ := on("w1")
		r2, _ := on("w2")
		return r1+r2 == 6 && r1 > 0 && r2 > 0, fmt.Sprintf("w1 %d, w2 %d", r1, r2)
	})
	kubelets["w1"].kill()
	waitfor.Condition(t, 90*time.Second, "w1's pods replaced on w2", func() (bool, string) {
		_, t1 := on("w1")
		r2, _ := on("w2")
		out, _, _ := ctl(s, "get", "nodes", "--no-headers")
		return t1 == 0 && r2 == 6 && strings.Contains(out, "Unknown"), fmt.Sprintf("w1 %d, w2 running %d\n%s", t1, r2, out)
	})
}
