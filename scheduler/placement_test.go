package scheduler

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// Affinity, spread and extended resources through real API servers: the pods are
// validated and stored, the scheduler reads them from its informers, binds them, and
// tells why it cannot in the pod's PodScheduled condition and a FailedScheduling event.

// failedScheduling returns the message of the pod's FailedScheduling event, if any.
func failedScheduling(t testing.TB, ctx context.Context, cs *client.Clientset, pod string) string {
	t.Helper()
	l, err := cs.Events.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range l.Items {
		if e.Reason == "FailedScheduling" && e.InvolvedObject.Name == pod {
			return e.Message
		}
	}
	return ""
}

// waitUnschedulable waits until the pod's PodScheduled condition and its
// FailedScheduling event both say msg.
func waitUnschedulable(t *testing.T, ctx context.Context, cs *client.Clientset, pod, msg string) {
	t.Helper()
	waitfor.Condition(t, time.Minute, pod+": "+msg, func() (bool, string) {
		p, err := cs.Pods.Get(ctx, "default", pod)
		if err != nil {
			return false, err.Error()
		}
		cond, ev := unschedulableMessage(p), failedScheduling(t, ctx, cs, pod)
		return cond == msg && ev == msg && p.Spec.NodeName == "", fmt.Sprintf("condition %q, event %q, node %q", cond, ev, p.Spec.NodeName)
	})
}

// nodesOf waits until the pods named are all bound and returns their nodes.
func nodesOf(t *testing.T, ctx context.Context, cs *client.Clientset, pods ...string) map[string]string {
	t.Helper()
	out := map[string]string{}
	waitfor.Condition(t, time.Minute, "pods bound: "+strings.Join(pods, ", "), func() (bool, string) {
		for _, name := range pods {
			p, err := cs.Pods.Get(ctx, "default", name)
			if err != nil {
				return false, err.Error()
			}
			if p.Spec.NodeName == "" {
				return false, name + " is not bound: " + unschedulableMessage(p)
			}
			out[name] = p.Spec.NodeName
		}
		return true, ""
	})
	return out
}

func TestPlacementThroughTheAPI(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := dial(t, c.Addrs())
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	for _, n := range fourNodes(func(string) []nodeOpt { return []nodeOpt{withAllocatable("example.com/dongle", "2")} }) {
		createNode(t, ctx, cs, n)
	}
	startScheduler(t, cs, 21)
	zoneOf := map[string]string{"n1": "a", "n2": "a", "n3": "b", "n4": "b"}

	t.Run("anti-affinity", func(t *testing.T) {
		var names []string
		for i := 0; i < 4; i++ {
			name := fmt.Sprintf("web-%d", i)
			names = append(names, name)
			createPod(t, ctx, cs, makePod(name, "100m", "", withPodLabel("app", "web"), withAntiAffinity(corev1.LabelHostname, "app", "web")))
		}
		on := nodesOf(t, ctx, cs, names...)
		if nodes := slices.Sorted(maps.Values(on)); !slices.Equal(nodes, []string{"n1", "n2", "n3", "n4"}) {
			t.Fatalf("web pods on %v, want one per node", on)
		}
		createPod(t, ctx, cs, makePod("web-4", "100m", "", withPodLabel("app", "web"), withAntiAffinity(corev1.LabelHostname, "app", "web")))
		waitUnschedulable(t, ctx, cs, "web-4", "0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules.")
	})

	t.Run("topology spread", func(t *testing.T) {
		var names []string
		for i := 0; i < 4; i++ {
			name := fmt.Sprintf("spread-%d", i)
			names = append(names, name)
			createPod(t, ctx, cs, makePod(name, "100m", "", withPodLabel("app", "spread"),
				withSpread(1, corev1.LabelTopologyZone, corev1.DoNotSchedule, "app", "spread")))
		}
		perZone := map[string]int{}
		for _, n := range nodesOf(t, ctx, cs, names...) {
			perZone[zoneOf[n]]++
		}
		if perZone["a"] != 2 || perZone["b"] != 2 {
			t.Fatalf("spread over zones %v, want 2 and 2", perZone)
		}
	})

	t.Run("node affinity", func(t *testing.T) {
		createPod(t, ctx, cs, makePod("picky", "100m", "", withNodeAffinity(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			expr(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, "b"), expr(corev1.LabelHostname, corev1.NodeSelectorOpNotIn, "n3")}})))
		if on := nodesOf(t, ctx, cs, "picky"); on["picky"] != "n4" {
			t.Fatalf("picky on %s, want n4", on["picky"])
		}
		createPod(t, ctx, cs, makePod("nowhere", "100m", "", withNodeAffinity(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			expr(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, "c")}})))
		waitUnschedulable(t, ctx, cs, "nowhere", "0/4 nodes are available: 4 node(s) didn't match Pod's node affinity/selector.")
	})

	t.Run("extended resources", func(t *testing.T) {
		createPod(t, ctx, cs, makePod("dongles-3", "100m", "", withRequest("example.com/dongle", "3")))
		waitUnschedulable(t, ctx, cs, "dongles-3", "0/4 nodes are available: 4 Insufficient example.com/dongle.")
		for i := 0; i < 4; i++ {
			createPod(t, ctx, cs, makePod(fmt.Sprintf("dongles-2-%d", i), "100m", "", withRequest("example.com/dongle", "2")))
		}
		if on := nodesOf(t, ctx, cs, "dongles-2-0", "dongles-2-1", "dongles-2-2", "dongles-2-3"); len(slices.Compact(slices.Sorted(maps.Values(on)))) != 4 {
			t.Fatalf("two dongles each on %v, want one pod per node", on)
		}
		createPod(t, ctx, cs, makePod("dongles-1", "100m", "", withRequest("example.com/dongle", "1")))
		waitUnschedulable(t, ctx, cs, "dongles-1", "0/4 nodes are available: 4 Insufficient example.com/dongle.")
	})

	t.Run("affinity waits for its pod", func(t *testing.T) {
		createPod(t, ctx, cs, makePod("follower", "100m", "", withAffinity(corev1.LabelHostname, "app", "leader")))
		waitUnschedulable(t, ctx, cs, "follower", "0/4 nodes are available: 4 node(s) didn't match pod affinity rules.")
		createPod(t, ctx, cs, makePod("leader", "100m", "", withPodLabel("app", "leader"), withSelector(corev1.LabelHostname, "n2")))
		if on := nodesOf(t, ctx, cs, "leader", "follower"); on["follower"] != "n2" {
			t.Fatalf("follower on %s, want n2 with its leader", on["follower"])
		}
	})
}
