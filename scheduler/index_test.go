package scheduler

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
)

// feasibleIn runs a cycle's filters over c's nodes and returns those that pass.
func feasibleIn(t *testing.T, c *Cache, pod *corev1.Pod) []string {
	t.Helper()
	fw := newTestFramework(t, 1, 100)
	pi := NewPodInfo(pod)
	state := &CycleState{}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := fw.preFilter(state, pi, c); err != nil {
		t.Fatal(err)
	}
	var ok []string
	for _, n := range c.list {
		if fw.runFilters(state, pi, n).IsSuccess() {
			ok = append(ok, n.Name)
		}
	}
	slices.Sort(ok)
	return ok
}

func wantFeasible(t *testing.T, c *Cache, pod *corev1.Pod, want ...string) {
	t.Helper()
	if got := feasibleIn(t, c, pod); !slices.Equal(got, want) {
		t.Fatalf("feasible %v, want %v", got, want)
	}
}

// The counts by domain follow a node whose labels change, a node that goes and comes
// back, and a pod whose labels change.
func TestIndexFollowsChanges(t *testing.T) {
	web := pending(withPodLabel("app", "web"))
	loner := bound("loner", "n1", withAntiAffinity(corev1.LabelTopologyZone, "app", "web"))
	c := cacheWith(fourNodes(), loner)
	wantFeasible(t, c, web, "n3", "n4")

	c.UpdateNode(hostNode("n1", "b"))
	wantFeasible(t, c, web, "n2")

	c.RemoveNode("n1") // its pod no longer has a domain
	wantFeasible(t, c, web, "n2", "n3", "n4")
	c.AddNode(hostNode("n1", "a"))
	wantFeasible(t, c, web, "n3", "n4")

	// A bound pod relabelled stops repelling.
	api := pending(withPodLabel("app", "api"), withAntiAffinity(corev1.LabelHostname, "app", "api"))
	c.SetPod(bound("a1", "n2", withPodLabel("app", "api")))
	wantFeasible(t, c, api, "n1", "n3", "n4")
	c.SetPod(bound("a1", "n2", withPodLabel("app", "other")))
	wantFeasible(t, c, api, "n1", "n2", "n3", "n4")

	// An assumption counts at once, and Forget undoes it.
	if err := c.Assume(NewPodInfo(makePod("a2", "", "", withPodLabel("app", "api"))), "n3"); err != nil {
		t.Fatal(err)
	}
	wantFeasible(t, c, api, "n1", "n2", "n4")
	c.Forget("default/a2")
	wantFeasible(t, c, api, "n1", "n2", "n3", "n4")
}

// Once every pod and node is gone, nothing is left in the indexes.
func TestIndexEmptiesWhenEverythingGoes(t *testing.T) {
	c := NewCache()
	for _, n := range fiveNodes() {
		c.AddNode(n)
	}
	c.SetNamespace(namespace("blue", map[string]string{"team": "blue"}))
	pods := []*corev1.Pod{
		bound("a", "n1", withPodLabel("app", "web"), withAntiAffinity(corev1.LabelHostname, "app", "web")),
		bound("b", "n2", withPodLabel("app", "web"), withAntiAffinity(corev1.LabelHostname, "app", "web")),
		bound("c", "n3", withPodLabel("tier", "x"), withPreferredAffinity(10, term(corev1.LabelTopologyZone, "app", "web")),
			withAffinityTerm(corev1.PodAffinityTerm{TopologyKey: corev1.LabelHostname}), inNamespace("blue")),
		bound("d", "gone", withPodLabel("app", "db"), withAffinity(corev1.LabelTopologyZone, "app", "db")),
	}
	for _, p := range pods {
		c.SetPod(p)
	}
	if len(c.idx.groups) != 3 { // a and b share their term; c's term without a selector selects nothing
		t.Fatalf("%d term groups, want 3", len(c.idx.groups))
	}
	c.UpdateNode(hostNode("n1", "c"))
	for _, p := range pods {
		c.RemovePod(podKey(p))
	}
	for _, n := range fiveNodes() {
		c.RemoveNode(n.Name)
	}
	c.RemoveNamespace("blue")
	x := c.idx
	if len(x.byLabel)+len(x.byKey)+len(x.byNS)+len(x.groups)+len(x.groupsByLabel)+len(x.groupsByKey)+len(x.groupsOther)+
		len(x.nodeLabels)+len(x.nodeKeys)+len(x.namespaces)+len(c.nodes)+len(c.pods) != 0 {
		t.Fatalf("left behind: %+v; nodes %v, pods %v", x, c.nodes, c.pods)
	}
}
