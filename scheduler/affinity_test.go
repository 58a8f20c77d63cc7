package scheduler

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Table tests of the affinity, spread and extended-resource plugins, run through the
// framework as a cycle runs them (PreFilter, then every filter on every node), over a
// cache holding the nodes and the pods already bound.

type placementCase struct {
	name  string
	nodes []*corev1.Node
	pods  []*corev1.Pod // bound
	ns    []*corev1.Namespace
	pod   *corev1.Pod
	// want lists the nodes the pod may go to; when empty, msg is the FitError.
	want []string
	msg  string
}

// fourNodes: n1 and n2 in zone a, n3 and n4 in zone b.
func fourNodes(opts ...func(name string) []nodeOpt) []*corev1.Node {
	var out []*corev1.Node
	for i, zone := range []string{"a", "a", "b", "b"} {
		name := fmt.Sprintf("n%d", i+1)
		var o []nodeOpt
		for _, f := range opts {
			o = append(o, f(name)...)
		}
		out = append(out, hostNode(name, zone, o...))
	}
	return out
}

// fiveNodes adds n5, in zone c.
func fiveNodes(n5 ...nodeOpt) []*corev1.Node {
	return append(fourNodes(), hostNode("n5", "c", n5...))
}

func bound(name, node string, opts ...podOpt) *corev1.Pod {
	return makePod(name, "", "", append([]podOpt{onNode(node)}, opts...)...)
}

func pending(opts ...podOpt) *corev1.Pod { return makePod("new", "", "", opts...) }

func namespace(name string, labels map[string]string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}
}

func labelOn(nodes map[string]map[string]string) func(string) []nodeOpt {
	return func(name string) []nodeOpt {
		var o []nodeOpt
		for k, v := range nodes[name] {
			o = append(o, withLabel(k, v))
		}
		return o
	}
}

// feasible runs a cycle's filters on every node and returns the names of those that
// pass, or the FitError's message when none does.
func feasible(t *testing.T, tc placementCase) ([]string, string) {
	t.Helper()
	c := cacheWith(tc.nodes, tc.pods...)
	for _, ns := range tc.ns {
		c.SetNamespace(ns)
	}
	fw := newTestFramework(t, 1, 100)
	pi := NewPodInfo(tc.pod)
	state := &CycleState{}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := fw.preFilter(state, pi, c); err != nil {
		return nil, err.Error()
	}
	var ok []string
	for _, n := range c.list {
		if fw.runFilters(state, pi, n).IsSuccess() {
			ok = append(ok, n.Name)
		}
	}
	slices.Sort(ok)
	if len(ok) > 0 {
		return ok, ""
	}
	_, err := fw.Schedule(pi, c)
	if err == nil {
		t.Fatal("no node passes the filters, yet Schedule placed the pod")
	}
	return nil, err.Error()
}

func runPlacements(t *testing.T, cases []placementCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, msg := feasible(t, tc)
			if !slices.Equal(got, tc.want) || msg != tc.msg {
				t.Fatalf("feasible %v (%q), want %v (%q)", got, msg, tc.want, tc.msg)
			}
		})
	}
}

func TestNodeAffinity(t *testing.T) {
	extra := labelOn(map[string]map[string]string{"n1": {"disk": "ssd", "cores": "4"}, "n3": {"disk": "hdd", "cores": "16"}})
	runPlacements(t, []placementCase{
		{name: "nodeSelector", nodes: fourNodes(), pod: pending(withSelector(corev1.LabelTopologyZone, "a")), want: []string{"n1", "n2"}},
		{name: "In", nodes: fourNodes(), pod: pending(withNodeAffinity(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			expr(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, "b", "c")}})), want: []string{"n3", "n4"}},
		{name: "NotIn", nodes: fourNodes(), pod: pending(withNodeAffinity(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			expr(corev1.LabelHostname, corev1.NodeSelectorOpNotIn, "n1", "n4")}})), want: []string{"n2", "n3"}},
		{name: "Exists", nodes: fourNodes(extra), pod: pending(withNodeAffinity(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			expr("disk", corev1.NodeSelectorOpExists)}})), want: []string{"n1", "n3"}},
		{name: "DoesNotExist", nodes: fourNodes(extra), pod: pending(withNodeAffinity(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			expr("disk", corev1.NodeSelectorOpDoesNotExist)}})), want: []string{"n2", "n4"}},
		{name: "Gt", nodes: fourNodes(extra), pod: pending(withNodeAffinity(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			expr("cores", corev1.NodeSelectorOpGt, "8")}})), want: []string{"n3"}},
		{name: "Lt", nodes: fourNodes(extra), pod: pending(withNodeAffinity(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
			expr("cores", corev1.NodeSelectorOpLt, "8")}})), want: []string{"n1"}},
		{name: "matchFields", nodes: fourNodes(), pod: pending(withNodeAffinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
			expr("metadata.name", corev1.NodeSelectorOpIn, "n2")}})), want: []string{"n2"}},
		{name: "terms are ORed, requirements ANDed", nodes: fourNodes(extra), pod: pending(withNodeAffinity(
			corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{
				expr(corev1.LabelTopologyZone, corev1.NodeSelectorOpIn, "a"), expr("disk", corev1.NodeSelectorOpExists)}},
			corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "n4")}})),
			want: []string{"n1", "n4"}},
		{name: "nodeSelector and affinity both hold", nodes: fourNodes(), pod: pending(withSelector(corev1.LabelTopologyZone, "a"),
			withNodeAffinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "n3")}})),
			msg: "0/4 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 3 node(s) didn't satisfy plugin(s) [NodeAffinity]."},
	})
}

// TestScheduleOnlyNamedNodes: a pod whose required node affinity names its nodes (a
// DaemonSet's pod names one) has only those filtered, as Kubernetes' NodeAffinity
// PreFilterResult does, instead of every node of the cluster; a term that names none
// lets every node through.
func TestScheduleOnlyNamedNodes(t *testing.T) {
	fw := newTestFramework(t, 1, 0)
	c := NewCache()
	for i := 0; i < 2000; i++ {
		c.AddNode(makeNode(nodeName(i), "4", "4Gi"))
	}
	name := func(names ...string) corev1.NodeSelectorTerm {
		return corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{expr(metav1.ObjectNameField, corev1.NodeSelectorOpIn, names...)}}
	}
	schedule := func(pod *corev1.Pod) (Result, error) {
		c.mu.Lock()
		defer c.mu.Unlock()
		return fw.Schedule(NewPodInfo(pod), c)
	}
	res, err := schedule(makePod("ds", "100m", "64Mi", withNodeAffinity(name("node-1234"))))
	if err != nil || res.Node != "node-1234" || res.Evaluated != 1 {
		t.Fatalf("one named node: %+v, %v; want node-1234 after 1 evaluated", res, err)
	}
	if fw.nextStart != 0 {
		t.Fatalf("a narrowed cycle moved the rotation to %d", fw.nextStart)
	}
	// Two terms naming nodes: their union (Kubernetes takes one value per requirement).
	res, err = schedule(makePod("two", "100m", "64Mi", withNodeAffinity(name("node-5"), name("node-7"))))
	if err != nil || res.Evaluated != 2 {
		t.Fatalf("two terms: %+v, %v; want 2 evaluated", res, err)
	}
	// The requirements of one term: their intersection, here none.
	both := name("node-6")
	both.MatchFields = append(both.MatchFields, expr(metav1.ObjectNameField, corev1.NodeSelectorOpIn, "node-9"))
	_, err = schedule(makePod("and", "100m", "64Mi", withNodeAffinity(both)))
	if want := "0/2000 nodes are available: 2000 node(s) didn't satisfy plugin(s) [NodeAffinity]."; err == nil || err.Error() != want {
		t.Fatalf("one term, two names: %v, want %q", err, want)
	}
	// A term without names: every node may fit, the cycle samples as usual.
	res, err = schedule(makePod("any", "100m", "64Mi", withNodeAffinity(name("node-5"),
		corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr(corev1.LabelHostname, corev1.NodeSelectorOpExists)}})))
	if err != nil || res.Evaluated < 100 {
		t.Fatalf("a term without names: %+v, %v; want the usual sample", res, err)
	}
	// The named node is full, or absent: the others are counted as ruled out.
	_, err = schedule(makePod("big", "8", "64Mi", withNodeAffinity(name("node-3"))))
	if want := "0/2000 nodes are available: 1 Insufficient cpu, 1999 node(s) didn't satisfy plugin(s) [NodeAffinity]."; err == nil || err.Error() != want {
		t.Fatalf("full node: %v, want %q", err, want)
	}
	_, err = schedule(makePod("gone", "100m", "64Mi", withNodeAffinity(name("node-x"))))
	if want := "0/2000 nodes are available: 2000 node(s) didn't satisfy plugin(s) [NodeAffinity]."; err == nil || err.Error() != want {
		t.Fatalf("absent node: %v, want %q", err, want)
	}
}

func TestInterPodAffinity(t *testing.T) {
	db := withPodLabel("app", "db")
	web := withPodLabel("app", "web")
	zone, host := corev1.LabelTopologyZone, corev1.LabelHostname
	runPlacements(t, []placementCase{
		{name: "affinity by host", nodes: fourNodes(), pods: []*corev1.Pod{bound("db", "n3", db)},
			pod: pending(withAffinity(host, "app", "db")), want: []string{"n3"}},
		{name: "affinity by zone", nodes: fourNodes(), pods: []*corev1.Pod{bound("db", "n3", db)},
			pod: pending(withAffinity(zone, "app", "db")), want: []string{"n3", "n4"}},
		{name: "affinity to no pod", nodes: fourNodes(), pods: []*corev1.Pod{bound("w", "n3", web)},
			pod: pending(withAffinity(zone, "app", "db")),
			msg: "0/4 nodes are available: 4 node(s) didn't match pod affinity rules."},
		{name: "the first of a group that wants to be together", nodes: fourNodes(), pods: []*corev1.Pod{bound("w", "n3", web)},
			pod: pending(db, withAffinity(zone, "app", "db")), want: []string{"n1", "n2", "n3", "n4"}},
		{name: "affinity needs the key on the node", nodes: append(fourNodes(), makeNode("bare", "8", "8Gi")), pods: []*corev1.Pod{bound("db", "n1", db)},
			pod: pending(db, withAffinity(zone, "app", "db")), want: []string{"n1", "n2"}},
		{name: "affinity terms are ANDed on one pod", nodes: fourNodes(),
			pods: []*corev1.Pod{bound("db", "n1", db), bound("cache", "n3", withPodLabel("tier", "cache")), bound("both", "n2", db, withPodLabel("tier", "cache"))},
			pod:  pending(withAffinity(host, "app", "db"), withAffinity(zone, "tier", "cache")), want: []string{"n2"}},
		{name: "anti-affinity by host", nodes: fourNodes(), pods: []*corev1.Pod{bound("w1", "n1", web), bound("w2", "n2", web)},
			pod: pending(web, withAntiAffinity(host, "app", "web")), want: []string{"n3", "n4"}},
		{name: "anti-affinity by zone", nodes: fourNodes(), pods: []*corev1.Pod{bound("w1", "n1", web)},
			pod: pending(web, withAntiAffinity(zone, "app", "web")), want: []string{"n3", "n4"}},
		{name: "anti-affinity everywhere", nodes: fourNodes(), pods: []*corev1.Pod{bound("w1", "n1", web), bound("w2", "n3", web)},
			pod: pending(web, withAntiAffinity(zone, "app", "web")),
			msg: "0/4 nodes are available: 4 node(s) didn't match pod anti-affinity rules."},
		{name: "anti-affinity ignores a node without the key", nodes: append(fourNodes(), makeNode("bare", "8", "8Gi")),
			pods: []*corev1.Pod{bound("w1", "n1", web), bound("w2", "n3", web), bound("w3", "bare", web)},
			pod:  pending(withAntiAffinity(zone, "app", "web")), want: []string{"bare"}},
		{name: "anti-affinity by selector expression", nodes: fourNodes(), pods: []*corev1.Pod{bound("w1", "n1", web), bound("d", "n2", db)},
			pod: pending(withAntiAffinityTerm(corev1.PodAffinityTerm{TopologyKey: host, LabelSelector: &metav1.LabelSelector{
				MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: metav1.LabelSelectorOpNotIn, Values: []string{"web"}}}}})),
			want: []string{"n1", "n3", "n4"}},
		{name: "an existing pod's anti-affinity keeps the pod away", nodes: fourNodes(),
			pods: []*corev1.Pod{bound("loner", "n1", withAntiAffinity(host, "app", "web"))},
			pod:  pending(web), want: []string{"n2", "n3", "n4"}},
		{name: "existing anti-affinity everywhere", nodes: fourNodes(),
			pods: []*corev1.Pod{bound("l1", "n1", withAntiAffinity(zone, "app", "web")), bound("l2", "n4", withAntiAffinity(zone, "app", "web"))},
			pod:  pending(web), msg: "0/4 nodes are available: 4 node(s) didn't satisfy existing pods anti-affinity rules."},
		{name: "a term covers its own namespace", nodes: fourNodes(), pods: []*corev1.Pod{bound("w1", "n1", web, inNamespace("other"))},
			pod: pending(web, withAntiAffinity(host, "app", "web")), want: []string{"n1", "n2", "n3", "n4"}},
		{name: "namespaces", nodes: fourNodes(), pods: []*corev1.Pod{bound("w1", "n1", web), bound("w2", "n3", web, inNamespace("other"))},
			pod: pending(web, withAntiAffinityTerm(func() corev1.PodAffinityTerm {
				t := term(host, "app", "web")
				t.Namespaces = []string{"other"}
				return t
			}())), want: []string{"n1", "n2", "n4"}},
		{name: "namespaceSelector", nodes: fourNodes(),
			ns:   []*corev1.Namespace{namespace("blue", map[string]string{"team": "blue"}), namespace("red", map[string]string{"team": "red"})},
			pods: []*corev1.Pod{bound("w1", "n2", web, inNamespace("blue")), bound("w2", "n3", web, inNamespace("red"))},
			pod: pending(web, withAntiAffinityTerm(func() corev1.PodAffinityTerm {
				t := term(host, "app", "web")
				t.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}}
				return t
			}())), want: []string{"n1", "n3", "n4"}},
		{name: "empty namespaceSelector: every namespace", nodes: fourNodes(),
			pods: []*corev1.Pod{bound("w1", "n1", web), bound("w2", "n3", web, inNamespace("other"))},
			pod: pending(web, withAntiAffinityTerm(func() corev1.PodAffinityTerm {
				t := term(host, "app", "web")
				t.NamespaceSelector = &metav1.LabelSelector{}
				return t
			}())), want: []string{"n2", "n4"}},
		{name: "an existing pod's namespaceSelector selects the new pod's namespace", nodes: fourNodes(),
			ns: []*corev1.Namespace{namespace("blue", map[string]string{"team": "blue"})},
			pods: []*corev1.Pod{bound("loner", "n1", inNamespace("other"), withAntiAffinityTerm(func() corev1.PodAffinityTerm {
				t := term(host, "app", "web")
				t.NamespaceSelector = &metav1.LabelSelector{MatchLabels: map[string]string{"team": "blue"}}
				return t
			}()))},
			pod: pending(web, inNamespace("blue")), want: []string{"n2", "n3", "n4"}},
	})
}

func TestPodTopologySpread(t *testing.T) {
	s := withPodLabel("app", "s")
	zone := corev1.LabelTopologyZone
	honor, ignore := corev1.NodeInclusionPolicyHonor, corev1.NodeInclusionPolicyIgnore
	minDomains := func(n int32) func(*corev1.TopologySpreadConstraint) {
		return func(c *corev1.TopologySpreadConstraint) { c.MinDomains = &n }
	}
	affinityPolicy := func(p corev1.NodeInclusionPolicy) func(*corev1.TopologySpreadConstraint) {
		return func(c *corev1.TopologySpreadConstraint) { c.NodeAffinityPolicy = &p }
	}
	taintsPolicy := func(p corev1.NodeInclusionPolicy) func(*corev1.TopologySpreadConstraint) {
		return func(c *corev1.TopologySpreadConstraint) { c.NodeTaintsPolicy = &p }
	}
	abPods := []*corev1.Pod{bound("s1", "n1", s), bound("s2", "n3", s)}
	terminating := bound("s3", "n1", s)
	terminating.DeletionTimestamp = &metav1.Time{Time: epoch}
	runPlacements(t, []placementCase{
		{name: "the emptiest zone", nodes: fiveNodes(), pods: []*corev1.Pod{bound("s1", "n1", s), bound("s2", "n2", s), bound("s3", "n3", s)},
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s")), want: []string{"n5"}},
		{name: "within the skew", nodes: fiveNodes(), pods: []*corev1.Pod{bound("s1", "n1", s), bound("s2", "n3", s), bound("s3", "n5", s)},
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s")), want: []string{"n1", "n2", "n3", "n4", "n5"}},
		{name: "a larger skew", nodes: fiveNodes(), pods: []*corev1.Pod{bound("s1", "n1", s), bound("s2", "n2", s), bound("s3", "n3", s)},
			pod: pending(s, withSpread(2, zone, corev1.DoNotSchedule, "app", "s")), want: []string{"n3", "n4", "n5"}},
		{name: "terminating pods do not count", nodes: fiveNodes(), pods: []*corev1.Pod{bound("s1", "n1", s), bound("s2", "n3", s), bound("s4", "n5", s), terminating},
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s")), want: []string{"n1", "n2", "n3", "n4", "n5"}},
		{name: "the pod does not match its selector", nodes: fiveNodes(), pods: []*corev1.Pod{bound("s1", "n1", s), bound("s2", "n2", s), bound("s3", "n3", s)},
			pod: pending(withSpread(1, zone, corev1.DoNotSchedule, "app", "s")), want: []string{"n3", "n4", "n5"}},
		{name: "other namespaces do not count", nodes: fiveNodes(), pods: []*corev1.Pod{bound("s1", "n1", s, inNamespace("x")), bound("s2", "n2", s, inNamespace("x"))},
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s")), want: []string{"n1", "n2", "n3", "n4", "n5"}},
		{name: "minDomains above the domains: the lowest count is 0", nodes: fourNodes(), pods: abPods,
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s", minDomains(3))),
			msg: "0/4 nodes are available: 4 node(s) didn't match pod topology spread constraints."},
		{name: "minDomains met", nodes: fourNodes(), pods: abPods,
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s", minDomains(2))), want: []string{"n1", "n2", "n3", "n4"}},
		{name: "a node without the key", nodes: append(fourNodes(), makeNode("bare", "8", "8Gi")), pods: abPods,
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s")), want: []string{"n1", "n2", "n3", "n4"}},
		{name: "no node has the key", nodes: []*corev1.Node{makeNode("bare", "8", "8Gi")},
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s")),
			msg: "0/1 nodes are available: 1 node(s) didn't match pod topology spread constraints (missing required label)."},
		{name: "node affinity policy Honor: zone c is not a domain", nodes: fiveNodes(), pods: abPods,
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s", affinityPolicy(honor)),
				withNodeAffinity(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr(zone, corev1.NodeSelectorOpIn, "a", "b")}})),
			want: []string{"n1", "n2", "n3", "n4"}},
		{name: "node affinity policy Ignore: zone c is a domain", nodes: fiveNodes(), pods: abPods,
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s", affinityPolicy(ignore)),
				withNodeAffinity(corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr(zone, corev1.NodeSelectorOpIn, "a", "b")}})),
			msg: "0/5 nodes are available: 1 node(s) didn't match Pod's node affinity/selector, 4 node(s) didn't match pod topology spread constraints."},
		{name: "taints policy Honor: a tainted zone is not a domain", nodes: fiveNodes(withTaint("k", "v", corev1.TaintEffectNoSchedule)), pods: abPods,
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s", taintsPolicy(honor))), want: []string{"n1", "n2", "n3", "n4"}},
		{name: "taints policy Ignore: it is", nodes: fiveNodes(withTaint("k", "v", corev1.TaintEffectNoSchedule)), pods: abPods,
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s")),
			msg: "0/5 nodes are available: 1 node(s) had untolerated taint {k: v}, 4 node(s) didn't match pod topology spread constraints."},

		{name: "the zone's skew alone", nodes: fiveNodes(), pods: []*corev1.Pod{bound("s1", "n1", s), bound("s2", "n3", s)},
			pod: pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s")), want: []string{"n5"}},
		{name: "two constraints", nodes: fiveNodes(), pods: []*corev1.Pod{bound("s1", "n1", s), bound("s2", "n3", s), bound("s3", "n5", s)},
			pod:  pending(s, withSpread(1, zone, corev1.DoNotSchedule, "app", "s"), withSpread(1, corev1.LabelHostname, corev1.DoNotSchedule, "app", "s")),
			want: []string{"n2", "n4"}},
		{name: "ScheduleAnyway does not filter", nodes: fiveNodes(), pods: []*corev1.Pod{bound("s1", "n1", s), bound("s2", "n2", s), bound("s3", "n3", s)},
			pod: pending(s, withSpread(1, zone, corev1.ScheduleAnyway, "app", "s")), want: []string{"n1", "n2", "n3", "n4", "n5"}},
	})
}

func TestExtendedResources(t *testing.T) {
	const dongle = "example.com/dongle"
	runPlacements(t, []placementCase{
		{name: "no node has dongles", nodes: fourNodes(), pod: pending(withRequest(dongle, "3")),
			msg: "0/4 nodes are available: 4 Insufficient example.com/dongle."},
		{name: "too few dongles", nodes: fourNodes(func(string) []nodeOpt { return []nodeOpt{withAllocatable(dongle, "2")} }), pod: pending(withRequest(dongle, "3")),
			msg: "0/4 nodes are available: 4 Insufficient example.com/dongle."},
		{name: "dongles in use count", nodes: []*corev1.Node{hostNode("n1", "a", withAllocatable(dongle, "3")), hostNode("n2", "a", withAllocatable(dongle, "4"))},
			pods: []*corev1.Pod{bound("a", "n1", withRequest(dongle, "2")), bound("b", "n2", withRequest(dongle, "2"))},
			pod:  pending(withRequest(dongle, "2")), want: []string{"n2"}},
		{name: "with cpu", nodes: []*corev1.Node{makeNode("n1", "1", "1Gi")}, pod: makePod("p", "2", "", withRequest(dongle, "1")),
			msg: "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient example.com/dongle."},
	})
}

// scheduleOn places pod with the default profile over nodes holding pods, with
// several seeds, and returns every node it picked.
func scheduleOn(t *testing.T, nodes []*corev1.Node, pods []*corev1.Pod, pod *corev1.Pod) []string {
	t.Helper()
	var picked []string
	for seed := uint64(1); seed <= 8; seed++ {
		fw, err := NewFramework(DefaultRegistry(), DefaultProfile(), FrameworkOptions{PercentageOfNodesToScore: 100, Parallelism: 1,
			Rand: rand.New(rand.NewPCG(seed, seed))})
		if err != nil {
			t.Fatal(err)
		}
		c := cacheWith(nodes, pods...)
		c.mu.Lock()
		res, err := fw.Schedule(NewPodInfo(pod), c)
		c.mu.Unlock()
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(picked, res.Node) {
			picked = append(picked, res.Node)
		}
	}
	slices.Sort(picked)
	return picked
}

// TestPreferences checks where the default profile places a pod. The pods already
// placed weigh on the resource scores too, so each case makes the preference under
// test disagree with them (a heavy pod on the node it prefers).
func TestPreferences(t *testing.T) {
	heavy := func(node string) *corev1.Pod { return makePod("heavy-"+node, "3", "1Gi", onNode(node)) }
	zone, host := corev1.LabelTopologyZone, corev1.LabelHostname
	db, web, s := withPodLabel("app", "db"), withPodLabel("app", "web"), withPodLabel("app", "s")
	for _, tc := range []struct {
		name  string
		nodes []*corev1.Node
		pods  []*corev1.Pod
		pod   *corev1.Pod
		want  []string // where the pod may go: the others score lower
	}{
		{"preferred node affinity", fourNodes(), nil, pending(withPreferredNodeAffinity(50, corev1.NodeSelectorTerm{
			MatchExpressions: []corev1.NodeSelectorRequirement{expr(zone, corev1.NodeSelectorOpIn, "b")}})), []string{"n3", "n4"}},
		{"the heavier preference wins", fourNodes(), nil, pending(
			withPreferredNodeAffinity(10, corev1.NodeSelectorTerm{MatchExpressions: []corev1.NodeSelectorRequirement{expr(zone, corev1.NodeSelectorOpIn, "b")}}),
			withPreferredNodeAffinity(90, corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{expr("metadata.name", corev1.NodeSelectorOpIn, "n1")}})),
			[]string{"n1"}},
		{"preferred pod affinity", fourNodes(), []*corev1.Pod{bound("db", "n2", db)}, pending(withPreferredAffinity(100, term(zone, "app", "db"))), []string{"n1", "n2"}},
		{"preferred anti-affinity", fourNodes(), []*corev1.Pod{bound("w1", "n1", web), bound("w2", "n2", web), bound("w3", "n3", web), heavy("n4")},
			pending(web, withPreferredAntiAffinity(100, term(host, "app", "web"))), []string{"n4"}},
		{"an existing pod's preferred affinity draws the pod", fourNodes(), []*corev1.Pod{bound("fan", "n4", withPreferredAffinity(100, term(host, "app", "web")))},
			pending(web), []string{"n4"}},
		{"an existing pod's required affinity draws the pod", fourNodes(), []*corev1.Pod{bound("fan", "n2", withAffinity(zone, "app", "web"))},
			pending(web), []string{"n1", "n2"}},
		{"an existing pod's preferred anti-affinity repels the pod", fourNodes(),
			[]*corev1.Pod{bound("l1", "n1", withPreferredAntiAffinity(100, term(zone, "app", "web")))}, pending(web), []string{"n3", "n4"}},
		{"ScheduleAnyway by host", fourNodes(), []*corev1.Pod{bound("s1", "n1", s), bound("s2", "n2", s), bound("s3", "n3", s), heavy("n4")},
			pending(s, withSpread(1, host, corev1.ScheduleAnyway, "app", "s")), []string{"n4"}},
		{"ScheduleAnyway by zone", fiveNodes(), []*corev1.Pod{bound("s1", "n1", s), bound("s2", "n2", s), bound("s3", "n5", s), heavy("n3"), heavy("n4")},
			pending(s, withSpread(1, zone, corev1.ScheduleAnyway, "app", "s")), []string{"n3", "n4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := scheduleOn(t, tc.nodes, tc.pods, tc.pod)
			for _, n := range got {
				if !slices.Contains(tc.want, n) {
					t.Fatalf("placed on %v, want among %v", got, tc.want)
				}
			}
		})
	}
}

// A term that does not parse (the API server validates them, so only a bug or another
// writer makes one) fails the cycle with the error, not a verdict on the nodes.
func TestUnparsableTermFailsTheCycle(t *testing.T) {
	pod := pending(withAntiAffinityTerm(corev1.PodAffinityTerm{TopologyKey: corev1.LabelHostname,
		LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "Near"}}}}))
	c := cacheWith(fourNodes())
	fw := newTestFramework(t, 1, 100)
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := fw.Schedule(NewPodInfo(pod), c)
	var fit *FitError
	if err == nil || errors.As(err, &fit) || !strings.Contains(err.Error(), "InterPodAffinity: parse pod affinity") {
		t.Fatalf("got %v, want the parse error", err)
	}
}
