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

// TestSchedulingManifests applies the manifests of examples/scheduling, written as the
// Kubernetes documentation writes them, to a cluster of four simulated nodes in two
// zones with two dongles each (`skiff kubelet --zone --extended-resource`), and checks
// each lands as Kubernetes would place it, or waits saying why in Kubernetes' words.
func TestSchedulingManifests(t *testing.T) {
	c := startAPIServers(t)
	s := c.servers()
	start(t, "controller-manager", "controller-manager", "--server", s, "--log-level", "warn")
	start(t, "scheduler", "scheduler", "--server", s, "--log-level", "warn")
	start(t, "kubelets", "kubelet", "--server", s, "--runtime", "sim", "--sim-nodes", "4", "--node-name", "sim",
		"--zone", "zone-a,zone-b", "--extended-resource", "example.com/dongle=2", "--node-labels", "disktype=ssd",
		"--kubelet-listen", "127.0.0.1:0", "--log-level", "warn")
	zoneOf := map[string]string{"sim-0": "zone-a", "sim-1": "zone-b", "sim-2": "zone-a", "sim-3": "zone-b"}
	waitfor.Condition(t, time.Minute, "four Ready nodes in their zones", func() (bool, string) {
		out, _, err := ctl(s, "get", "nodes", "-o", "json")
		var l corev1.NodeList
		if err != nil || json.Unmarshal([]byte(out), &l) != nil {
			return false, out
		}
		ok := 0
		for _, n := range l.Items {
			d := n.Status.Allocatable["example.com/dongle"]
			if n.Labels[corev1.LabelTopologyZone] == zoneOf[n.Name] && n.Labels["disktype"] == "ssd" && d.String() == "2" && nodeReady(&n) {
				ok++
			}
		}
		return ok == 4, out
	})
	for _, f := range []string{"redis-cache", "web-server", "zone-spread", "node-affinity", "extended-resource"} {
		mustCtl(t, s, "apply", "-f", "../../examples/scheduling/"+f+".yaml")
	}

	byApp := func(l *corev1.PodList, app string) (nodes []string, pending []*corev1.Pod) {
		for i := range l.Items {
			p := &l.Items[i]
			if p.Labels["app"] != app || p.DeletionTimestamp != nil {
				continue
			}
			if p.Spec.NodeName == "" {
				pending = append(pending, p)
			} else {
				nodes = append(nodes, p.Spec.NodeName)
			}
		}
		slices.Sort(nodes)
		return nodes, pending
	}
	named := func(l *corev1.PodList, name string) *corev1.Pod {
		for i := range l.Items {
			if l.Items[i].Name == name {
				return &l.Items[i]
			}
		}
		return nil
	}
	waitfor.Condition(t, 2*time.Minute, "every manifest placed as Kubernetes would", func() (bool, string) {
		l := podsJSON(t, s)
		var wrong []string
		stores, _ := byApp(l, "store")
		if len(stores) != 3 || len(slices.Compact(slices.Clone(stores))) != 3 {
			wrong = append(wrong, fmt.Sprintf("redis-cache on %v, want three nodes", stores))
		}
		webs, _ := byApp(l, "web-store")
		if len(webs) != 3 || len(slices.Compact(slices.Clone(webs))) != 3 {
			wrong = append(wrong, fmt.Sprintf("web-server on %v, want three nodes", webs))
		}
		for _, n := range webs {
			if !slices.Contains(stores, n) {
				wrong = append(wrong, fmt.Sprintf("a web server on %s, which has no cache", n))
			}
		}
		spread, _ := byApp(l, "zone-spread")
		perZone := map[string]int{}
		for _, n := range spread {
			perZone[zoneOf[n]]++
		}
		if len(spread) != 4 || perZone["zone-a"] != 2 || perZone["zone-b"] != 2 {
			wrong = append(wrong, fmt.Sprintf("zone-spread by zone %v", perZone))
		}
		if p := named(l, "with-node-affinity"); p == nil || p.Spec.NodeName != "sim-3" {
			wrong = append(wrong, "with-node-affinity is not on sim-3, the zone-b node it prefers")
		}
		const dongles = "0/4 nodes are available: 4 Insufficient example.com/dongle."
		if p := named(l, "extended-resource-demo"); p == nil || unschedulable(p) != dongles {
			wrong = append(wrong, "extended-resource-demo is not waiting for dongles")
		}
		return len(wrong) == 0, strings.Join(wrong, "; ")
	})
	out := mustCtl(t, s, "describe", "pod", "extended-resource-demo")
	if !strings.Contains(out, "FailedScheduling") || !strings.Contains(out, "0/4 nodes are available: 4 Insufficient example.com/dongle.") {
		t.Errorf("describe does not tell why the pod waits:\n%s", out)
	}

	// A fifth cache replica has no node left.
	mustCtl(t, s, "scale", "deployment", "redis-cache", "--replicas", "5")
	const antiAffinity = "0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules."
	waitfor.Condition(t, time.Minute, "the fourth cache on the fourth node, the fifth waiting", func() (bool, string) {
		nodes, pending := byApp(podsJSON(t, s), "store")
		var why []string
		for _, p := range pending {
			why = append(why, unschedulable(p))
		}
		return len(nodes) == 4 && len(slices.Compact(slices.Clone(nodes))) == 4 && len(pending) == 1 && why[0] == antiAffinity,
			fmt.Sprintf("on %v, waiting: %q", nodes, why)
	})
}

func podsJSON(t *testing.T, servers string) *corev1.PodList {
	t.Helper()
	out, errs, err := ctl(servers, "get", "pods", "-o", "json")
	var l corev1.PodList
	if err != nil || json.Unmarshal([]byte(out), &l) != nil {
		t.Logf("get pods: %v: %s", err, errs)
	}
	return &l
}

func nodeReady(n *corev1.Node) bool {
	for _, c := range n.Status.Conditions {
		if c.Type == corev1.NodeReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// unschedulable is the message of a pod's PodScheduled=False condition.
func unschedulable(p *corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodScheduled && c.Status == corev1.ConditionFalse {
			return c.Message
		}
	}
	return ""
}
