package daemonset

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var t0 = time.Date(2026, 12, 5, 12, 0, 0, 0, time.UTC)

func testDS(mut func(*appsv1.DaemonSet)) *appsv1.DaemonSet {
	lbl := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default", UID: "ds-uid"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}},
			UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
				RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromInt32(1)), MaxSurge: new(intstr.FromInt32(0))}}}}
	if mut != nil {
		mut(ds)
	}
	return ds
}

func testNode(name string, mut func(*corev1.Node)) *corev1.Node {
	n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"disk": "ssd"}}}
	if mut != nil {
		mut(n)
	}
	return n
}

func TestShouldRun(t *testing.T) {
	taint := func(effect corev1.TaintEffect) func(*corev1.Node) {
		return func(n *corev1.Node) { n.Spec.Taints = []corev1.Taint{{Key: "dedicated", Value: "db", Effect: effect}} }
	}
	for _, tc := range []struct {
		name           string
		ds             *appsv1.DaemonSet
		node           *corev1.Node
		run, continue_ bool
	}{
		{"plain node", testDS(nil), testNode("n", nil), true, true},
		{"cordoned: the daemon tolerations", testDS(nil), testNode("n", func(n *corev1.Node) {
			n.Spec.Unschedulable = true
			n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}}
		}), true, true},
		{"unreachable: tolerated", testDS(nil), testNode("n", func(n *corev1.Node) {
			n.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnreachable, Effect: corev1.TaintEffectNoExecute}}
		}), true, true},
		{"node selector matches", testDS(func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"} }),
			testNode("n", nil), true, true},
		{"node selector does not match", testDS(func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "hdd"} }),
			testNode("n", nil), false, false},
		{"node affinity does not match", testDS(func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Affinity = &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "disk", Operator: corev1.NodeSelectorOpIn, Values: []string{"hdd"}}}}}}}}
		}), testNode("n", nil), false, false},
		{"untolerated NoSchedule: no new pod, the old stays", testDS(nil), testNode("n", taint(corev1.TaintEffectNoSchedule)), false, true},
		{"untolerated NoExecute: none", testDS(nil), testNode("n", taint(corev1.TaintEffectNoExecute)), false, false},
		{"tolerated taint", testDS(func(ds *appsv1.DaemonSet) {
			ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
		}), testNode("n", taint(corev1.TaintEffectNoExecute)), true, true},
		{"another node's name", testDS(func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeName = "other" }), testNode("n", nil), false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := slices.Clone(tc.ds.Spec.Template.Spec.Tolerations)
			run, cont := ShouldRun(tc.node, tc.ds)
			if run != tc.run || cont != tc.continue_ {
				t.Errorf("ShouldRun = %v, %v; want %v, %v", run, cont, tc.run, tc.continue_)
			}
			if !slices.Equal(before, tc.ds.Spec.Template.Spec.Tolerations) {
				t.Errorf("ShouldRun changed the template's tolerations: %v", tc.ds.Spec.Template.Spec.Tolerations)
			}
		})
	}
}

// BenchmarkDecide1000Nodes: the decisions of one sync of a DaemonSet rolling out on
// 1,000 nodes (Fenceposts, Manage, RollingUpdate, Status), each of which asks every
// node whether the DaemonSet should run there.
func BenchmarkDecide1000Nodes(b *testing.B) {
	ds := testDS(func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: "dedicated", Operator: corev1.TolerationOpExists}}
		ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = new(intstr.FromString("10%"))
	})
	ns := nodes(1000, nil)
	byNode := map[string][]*corev1.Pod{}
	for i, n := range ns {
		byNode[n.Name] = []*corev1.Pod{pod(fmt.Sprintf("p%d", i), n.Name, "old", i, true)}
	}
	noBackoff := func(string) time.Duration { return 0 }
	for b.Loop() {
		surge, _ := Fenceposts(ds, desiredNodes(ds, ns))
		Manage(ds, ns, byNode, "new", surge > 0, noBackoff, t0)
		RollingUpdate(ds, ns, byNode, "new", t0)
		Status(ds, ns, byNode, "new", t0)
	}
}

func TestNewPod(t *testing.T) {
	ds := testDS(func(ds *appsv1.DaemonSet) {
		ds.Spec.Template.Spec.Tolerations = []corev1.Toleration{{Key: corev1.TaintNodeUnschedulable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}}
	})
	p := NewPod(ds, "w1", "h1")
	if p.GenerateName != "agent-" || p.Labels[HashLabel] != "h1" || p.Labels["app"] != "agent" || !metav1.IsControlledBy(p, ds) {
		t.Errorf("pod %+v", p.ObjectMeta)
	}
	if TargetNode(p) != "w1" {
		t.Errorf("target node %q, want w1 (its node affinity)", TargetNode(p))
	}
	if n := len(p.Spec.Tolerations); n != len(daemonTolerations) {
		t.Errorf("%d tolerations, want %d (the template's unschedulable one not twice): %v", n, len(daemonTolerations), p.Spec.Tolerations)
	}
	if ds.Spec.Template.Labels[HashLabel] != "" || ds.Spec.Template.Spec.Affinity != nil {
		t.Error("NewPod changed the DaemonSet's template")
	}
}

// pod makes a daemon pod on node, of revision hash, created at t0+age seconds; ready
// pods have been so since t0.
func pod(name, node, hash string, age int, ready bool) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{HashLabel: hash},
		CreationTimestamp: metav1.NewTime(t0.Add(time.Duration(age) * time.Second))},
		Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	if ready {
		p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}}
	}
	return p
}

func names(pods []*corev1.Pod) string {
	var out []string
	for _, p := range pods {
		out = append(out, p.Name)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func nodes(n int, mut func(int, *corev1.Node)) []*corev1.Node {
	var out []*corev1.Node
	for i := range n {
		node := testNode(fmt.Sprintf("n%d", i), nil)
		if mut != nil {
			mut(i, node)
		}
		out = append(out, node)
	}
	return out
}

func TestManage(t *testing.T) {
	noBackoff := func(string) time.Duration { return 0 }
	failed := pod("failed", "n1", "h", 0, false)
	failed.Status.Phase = corev1.PodFailed
	done := pod("done", "n2", "h", 0, false)
	done.Status.Phase = corev1.PodSucceeded
	ns := nodes(4, func(i int, n *corev1.Node) {
		if i == 3 {
			n.Labels["disk"] = "hdd"
		}
	})
	ds := testDS(func(ds *appsv1.DaemonSet) { ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"} })
	byNode := ByNode([]*corev1.Pod{failed, done, pod("a", "n0", "h", 1, true), pod("b", "n0", "h", 2, true), pod("stray", "n3", "h", 0, true)})
	plan := Manage(ds, ns, byNode, "h", false, noBackoff, t0)
	if got := strings.Join(plan.Create, ","); got != "" {
		t.Errorf("create on %q; want none yet: n1 and n2 get theirs once their finished pods are gone", got)
	}
	if got := names(plan.Delete); got != "b,done,failed,stray" {
		t.Errorf("delete %s; want the younger of two (b), the finished (done, failed), the one on a node it should not run on (stray)", got)
	}
	if names(plan.Failed) != "failed" {
		t.Errorf("failed: %s", names(plan.Failed))
	}
	plan = Manage(ds, ns, map[string][]*corev1.Pod{}, "h", false, noBackoff, t0)
	if got := strings.Join(plan.Create, ","); got != "n0,n1,n2" {
		t.Errorf("create on %s; want n0,n1,n2 (n3 has no ssd)", got)
	}

	// A failed pod waits for its node's back-off.
	plan = Manage(ds, ns, ByNode([]*corev1.Pod{failed}), "h", false, func(string) time.Duration { return 4 * time.Second }, t0)
	if len(plan.Delete) != 0 || plan.RetryFailed != 4*time.Second {
		t.Errorf("in back-off: delete %s, retry in %v", names(plan.Delete), plan.RetryFailed)
	}

	// With surge, an updated pod not yet ready stands beside the old ready one; once it
	// is ready, the old goes.
	byNode = ByNode([]*corev1.Pod{pod("old", "n0", "h1", 0, true), pod("new", "n0", "h2", 5, false)})
	if plan = Manage(ds, ns[:1], byNode, "h2", true, noBackoff, t0); len(plan.Delete) != 0 {
		t.Errorf("surging: delete %s, want none", names(plan.Delete))
	}
	byNode = ByNode([]*corev1.Pod{pod("old", "n0", "h1", 0, true), pod("new", "n0", "h2", 5, true)})
	if plan = Manage(ds, ns[:1], byNode, "h2", true, noBackoff, t0); names(plan.Delete) != "old" {
		t.Errorf("surged and ready: delete %s, want old", names(plan.Delete))
	}
}

func TestRollingUpdate(t *testing.T) {
	ns := nodes(10, nil)
	var pods []*corev1.Pod
	for i, n := range ns {
		pods = append(pods, pod(fmt.Sprintf("p%d", i), n.Name, "old", 0, i != 9))
	}
	// maxUnavailable 2 (20% of 10, rounded up): the unavailable old pod goes at no cost,
	// and two available ones.
	ds := testDS(func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable = new(intstr.FromString("20%"))
	})
	plan := RollingUpdate(ds, ns, ByNode(pods), "new", t0)
	if got := names(plan.Delete); got != "p0,p1,p9" || len(plan.Create) != 0 {
		t.Errorf("delete %s, create %v; want p0,p1,p9 and no creation", got, plan.Create)
	}
	// Two nodes have an updated pod that is not ready yet: nothing more goes.
	pods[0], pods[1] = pod("u0", "n0", "new", 10, false), pod("u1", "n1", "new", 10, false)
	if plan = RollingUpdate(ds, ns, ByNode(pods[:9]), "new", t0); len(plan.Delete) != 0 {
		t.Errorf("at maxUnavailable: delete %s", names(plan.Delete))
	}
	// One is ready: one more old pod goes.
	pods[0] = pod("u0", "n0", "new", 10, true)
	if plan = RollingUpdate(ds, ns, ByNode(pods[:9]), "new", t0); names(plan.Delete) != "p2" {
		t.Errorf("delete %s, want p2", names(plan.Delete))
	}

	// maxSurge 30%: updated pods beside old ones on three nodes; an old pod whose
	// replacement is available goes.
	surge := testDS(func(ds *appsv1.DaemonSet) {
		ds.Spec.UpdateStrategy.RollingUpdate.MaxUnavailable, ds.Spec.UpdateStrategy.RollingUpdate.MaxSurge = new(intstr.FromInt32(0)), new(intstr.FromString("30%"))
	})
	var old []*corev1.Pod
	for i, n := range ns {
		old = append(old, pod(fmt.Sprintf("p%d", i), n.Name, "old", 0, true))
	}
	plan = RollingUpdate(surge, ns, ByNode(old), "new", t0)
	if got := strings.Join(plan.Create, ","); got != "n0,n1,n2" || len(plan.Delete) != 0 {
		t.Errorf("surge: create on %s, delete %s; want n0,n1,n2", got, names(plan.Delete))
	}
	withNew := append(slices.Clone(old), pod("u0", "n0", "new", 10, true), pod("u1", "n1", "new", 10, false))
	plan = RollingUpdate(surge, ns, ByNode(withNew), "new", t0)
	if got := strings.Join(plan.Create, ","); names(plan.Delete) != "p0" || got != "n2,n3" {
		t.Errorf("surge: delete %s, create on %s; want p0 gone and n2,n3 surged", names(plan.Delete), got)
	}
}

func TestStatus(t *testing.T) {
	ns := nodes(4, func(i int, n *corev1.Node) {
		if i == 3 {
			n.Labels["disk"] = "hdd"
		}
	})
	ds := testDS(func(ds *appsv1.DaemonSet) {
		ds.Generation = 3
		ds.Spec.Template.Spec.NodeSelector = map[string]string{"disk": "ssd"}
	})
	st := Status(ds, ns, ByNode([]*corev1.Pod{pod("a", "n0", "new", 0, true), pod("b", "n1", "old", 0, false), pod("c", "n3", "new", 0, true)}), "new", t0)
	want := appsv1.DaemonSetStatus{ObservedGeneration: 3, DesiredNumberScheduled: 3, CurrentNumberScheduled: 2, NumberMisscheduled: 1,
		NumberReady: 1, NumberAvailable: 1, UpdatedNumberScheduled: 1, NumberUnavailable: 2}
	if fmt.Sprint(st) != fmt.Sprint(want) {
		t.Errorf("status %+v\nwant %+v", st, want)
	}
}
