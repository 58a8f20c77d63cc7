package scheduler

import (
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func withPriority(p int32) podOpt { return func(pod *corev1.Pod) { pod.Spec.Priority = &p } }

func withPolicy(policy corev1.PreemptionPolicy) podOpt {
	return func(pod *corev1.Pod) { pod.Spec.PreemptionPolicy = &policy }
}

// TestQueuePriorityOrder: the active queue pops the higher priority first, and among
// equal priorities the older pod, as Kubernetes' PrioritySort.
func TestQueuePriorityOrder(t *testing.T) {
	q, _ := newTestQueue()
	q.Add(makePod("old-low", "", "", createdAt(1)))
	q.Add(makePod("new-high", "", "", createdAt(5), withPriority(1000)))
	q.Add(makePod("old-high", "", "", createdAt(2), withPriority(1000)))
	q.Add(makePod("negative", "", "", createdAt(0), withPriority(-5)))
	q.Add(makePod("mid", "", "", createdAt(9), withPriority(10)))
	for _, want := range []string{"default/old-high", "default/new-high", "default/mid", "default/old-low", "default/negative"} {
		if qp := pop(t, q); qp.Key != want {
			t.Fatalf("popped %s, want %s", qp.Key, want)
		}
	}
}

func preemptionFramework(t *testing.T) *Framework {
	t.Helper()
	fw, err := NewFramework(DefaultRegistry(), DefaultProfile(), FrameworkOptions{PercentageOfNodesToScore: 100, Parallelism: 1})
	if err != nil {
		t.Fatal(err)
	}
	return fw
}

func victimNames(p Preemption) []string {
	var names []string
	for _, v := range p.Victims {
		names = append(names, v.Name)
	}
	slices.Sort(names)
	return names
}

// TestPreemptionVictims: preemption picks the node and the fewest, lowest victims that
// make the pod fit; it never takes a pod of equal or higher priority; a pod of the
// Never policy preempts nothing; a disruption budget is respected where another node
// will do.
func TestPreemptionVictims(t *testing.T) {
	nodes := []*corev1.Node{makeNode("n1", "4", "8Gi"), makeNode("n2", "4", "8Gi")}
	budget := func(app string, allowed int32) *policyv1.PodDisruptionBudget {
		return &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: app, Namespace: "default"},
			Spec:   policyv1.PodDisruptionBudgetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}},
			Status: policyv1.PodDisruptionBudgetStatus{DisruptionsAllowed: allowed}}
	}
	for _, tc := range []struct {
		name    string
		pods    []*corev1.Pod
		pod     *corev1.Pod
		budgets []*policyv1.PodDisruptionBudget
		node    string
		victims []string
	}{
		{"the lowest victims, the fewest needed", []*corev1.Pod{
			makePod("a1", "2", "", onNode("n1"), withPriority(100)),
			makePod("a2", "2", "", onNode("n1"), withPriority(5)),
			makePod("b1", "1", "", onNode("n2"), withPriority(10)),
			makePod("b2", "1", "", onNode("n2"), withPriority(10)),
			makePod("b3", "2", "", onNode("n2"), withPriority(20)),
		}, makePod("big", "2", "", withPriority(1000)), nil, "n1", []string{"a2"}},
		{"one victim of a lower priority beats two", []*corev1.Pod{
			makePod("a1", "3", "", onNode("n1"), withPriority(50)),
			makePod("a2", "1", "", onNode("n1"), withPriority(60)),
			makePod("b1", "2", "", onNode("n2"), withPriority(1)),
			makePod("b2", "2", "", onNode("n2"), withPriority(1)),
		}, makePod("big", "4", "", withPriority(1000)), nil, "n2", []string{"b1", "b2"}},
		{"equal and higher priorities stay", []*corev1.Pod{
			makePod("a1", "4", "", onNode("n1"), withPriority(1000)),
			makePod("b1", "4", "", onNode("n2"), withPriority(2000)),
		}, makePod("big", "1", "", withPriority(1000)), nil, "", nil},
		{"Never does not preempt", []*corev1.Pod{
			makePod("a1", "4", "", onNode("n1")),
			makePod("b1", "4", "", onNode("n2")),
		}, makePod("polite", "1", "", withPriority(1000), withPolicy(corev1.PreemptNever)), nil, "", nil},
		{"a budget is respected where another node will do", []*corev1.Pod{
			makePod("a1", "4", "", onNode("n1"), withPodLabel("app", "guarded")),
			makePod("b1", "4", "", onNode("n2"), withPriority(500)),
		}, makePod("big", "1", "", withPriority(1000)), []*policyv1.PodDisruptionBudget{budget("guarded", 0)}, "n2", []string{"b1"}},
		{"a budget is broken when nothing else will do", []*corev1.Pod{
			makePod("a1", "4", "", onNode("n1"), withPodLabel("app", "guarded")),
			makePod("b1", "4", "", onNode("n2"), withPriority(5000)),
		}, makePod("big", "1", "", withPriority(1000)), []*policyv1.PodDisruptionBudget{budget("guarded", 0)}, "n1", []string{"a1"}},
		{"a node the pod's selector refuses is no candidate", []*corev1.Pod{
			makePod("a1", "4", "", onNode("n1")),
			makePod("b1", "4", "", onNode("n2"), withPriority(10)),
		}, makePod("picky", "1", "", withPriority(1000), withNodeAffinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{
			{Key: "metadata.name", Operator: corev1.NodeSelectorOpIn, Values: []string{"n2"}}}})), nil, "n2", []string{"b1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cacheWith(nodes, tc.pods...)
			fw := preemptionFramework(t)
			pi := NewPodInfo(tc.pod)
			if _, err := c.scheduleAndAssume(fw, pi); err == nil {
				t.Fatal("the pod fits without preemption")
			}
			got, ok, err := c.Preempt(fw, pi, func() []*policyv1.PodDisruptionBudget { return tc.budgets })
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				if tc.node != "" {
					t.Fatalf("no preemption, want victims %v on %s", tc.victims, tc.node)
				}
				return
			}
			if got.Node != tc.node || !slices.Equal(victimNames(got), tc.victims) {
				t.Errorf("preempt %v on %s, want %v on %s", victimNames(got), got.Node, tc.victims, tc.node)
			}
		})
	}
}

// TestPreemptionWaitsForVictims: a pod nominated to a node where lower-priority pods
// are still terminating does not preempt again.
func TestPreemptionWaitsForVictims(t *testing.T) {
	going := makePod("victim", "4", "", onNode("n1"))
	going.DeletionTimestamp = &metav1.Time{Time: epoch}
	c := cacheWith([]*corev1.Node{makeNode("n1", "4", "8Gi")}, going, makePod("other", "0", "", onNode("n1")))
	pod := makePod("big", "1", "", withPriority(1000))
	pod.Status.NominatedNodeName = "n1"
	if _, ok, _ := c.Preempt(preemptionFramework(t), NewPodInfo(pod), nil); ok {
		t.Error("preempted again while its victim terminates")
	}
	pod.Status.NominatedNodeName = ""
	if _, ok, _ := c.Preempt(preemptionFramework(t), NewPodInfo(pod), nil); !ok {
		t.Error("a pod not nominated yet did not preempt")
	}
}

// TestPreemptionSeesAnAssumedVictimGo: a victim this scheduler placed (assumed, then
// confirmed by its bound object) and since deleted is seen terminating by preemption, as
// one bound by another is: its node holds the newest object, not the one assumed.
func TestPreemptionSeesAnAssumedVictimGo(t *testing.T) {
	c := cacheWith([]*corev1.Node{makeNode("n1", "4", "8Gi")})
	victim := makePod("victim", "4", "")
	if err := c.Assume(NewPodInfo(victim), "n1"); err != nil {
		t.Fatal(err)
	}
	bound := victim.DeepCopy()
	bound.Spec.NodeName = "n1"
	c.SetPod(bound) // confirmed
	going := bound.DeepCopy()
	going.DeletionTimestamp = &metav1.Time{Time: epoch}
	c.SetPod(going)
	if got := c.nodes["n1"].pods["default/victim"].Pod; got != going {
		t.Fatalf("the node holds %p (deleting: %v), want the newest object %p", got, got.DeletionTimestamp != nil, going)
	}
	pod := makePod("big", "1", "", withPriority(1000))
	pod.Status.NominatedNodeName = "n1"
	if _, ok, _ := c.Preempt(preemptionFramework(t), NewPodInfo(pod), nil); ok {
		t.Error("preempted again while its assumed victim terminates")
	}
}

// TestNominatedPodHoldsItsRoom: once a pod preempted on a node, pods of no higher
// priority are filtered there as if it were placed; the pod itself and a pod of higher
// priority are not kept out.
func TestNominatedPodHoldsItsRoom(t *testing.T) {
	c := cacheWith([]*corev1.Node{makeNode("n1", "4", "8Gi")})
	fw := preemptionFramework(t)
	important := makePod("important", "4", "", withPriority(1000))
	c.Nominate(NewPodInfo(important), "n1")
	if _, err := c.scheduleAndAssume(fw, NewPodInfo(makePod("equal", "1", "", withPriority(1000)))); err == nil {
		t.Error("a pod of equal priority took the nominated pod's room")
	}
	if _, err := c.scheduleAndAssume(fw, NewPodInfo(makePod("higher", "0", "", withPriority(2000)))); err != nil {
		t.Errorf("a pod of higher priority was kept out: %v", err)
	}
	if res, err := c.scheduleAndAssume(fw, NewPodInfo(important)); err != nil || res.Node != "n1" {
		t.Errorf("the nominated pod: %v on %q", err, res.Node)
	}
	if len(c.nominated) != 0 {
		t.Errorf("the nomination outlived the pod's placement: %v", c.nominated)
	}
}
