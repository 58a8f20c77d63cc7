package scheduler

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
)

func wantRequested(t *testing.T, c *Cache, node string, cpu int64, pods int) {
	t.Helper()
	req, n, ok := c.NodeInfo(node)
	if !ok && (cpu != 0 || pods != 0) {
		t.Fatalf("node %s not in cache", node)
	}
	if req.MilliCPU != cpu || n != pods {
		t.Fatalf("node %s: requested %dm by %d pods, want %dm by %d", node, req.MilliCPU, n, cpu, pods)
	}
}

func TestCacheAssumeConfirmForget(t *testing.T) {
	c := NewCache()
	c.AddNode(makeNode("n1", "2", "2Gi"))
	c.AddNode(makeNode("n2", "2", "2Gi"))
	p := makePod("p", "500m", "")
	if err := c.Assume(NewPodInfo(p), "n1"); err != nil {
		t.Fatal(err)
	}
	wantRequested(t, c, "n1", 500, 1)
	if err := c.Assume(NewPodInfo(p), "n2"); err == nil {
		t.Fatal("assumed a pod twice")
	}
	if !c.IsAssumed("default/p") {
		t.Fatal("not assumed")
	}

	// Forget undoes it.
	c.Forget("default/p")
	wantRequested(t, c, "n1", 0, 0)

	// The watch confirms an assumption; a later Forget leaves it.
	if err := c.Assume(NewPodInfo(p), "n1"); err != nil {
		t.Fatal(err)
	}
	bound := makePod("p", "500m", "", onNode("n1"))
	c.SetPod(bound)
	if c.IsAssumed("default/p") {
		t.Fatal("still assumed after confirmation")
	}
	c.Forget("default/p")
	wantRequested(t, c, "n1", 500, 1)

	// Status updates don't double count; finishing frees the resources.
	c.SetPod(bound)
	wantRequested(t, c, "n1", 500, 1)
	done := makePod("p", "500m", "", onNode("n1"))
	done.Status.Phase = "Succeeded"
	c.SetPod(done)
	wantRequested(t, c, "n1", 0, 0)
}

func TestCacheBoundElsewhere(t *testing.T) {
	c := NewCache()
	c.AddNode(makeNode("n1", "2", "2Gi"))
	c.AddNode(makeNode("n2", "2", "2Gi"))
	if err := c.Assume(NewPodInfo(makePod("p", "1", "")), "n1"); err != nil {
		t.Fatal(err)
	}
	// Another scheduler won the bind, to n2: the pod moves.
	c.SetPod(makePod("p", "1", "", onNode("n2")))
	wantRequested(t, c, "n1", 0, 0)
	wantRequested(t, c, "n2", 1000, 1)
	c.Forget("default/p") // our bind failed: no effect on the confirmed pod
	wantRequested(t, c, "n2", 1000, 1)
}

func TestCacheDeletes(t *testing.T) {
	c := NewCache()
	c.AddNode(makeNode("n1", "2", "2Gi"))
	c.SetPod(makePod("a", "1", "", onNode("n1")))
	if err := c.Assume(NewPodInfo(makePod("b", "500m", "")), "n1"); err != nil {
		t.Fatal(err)
	}
	wantRequested(t, c, "n1", 1500, 2)
	c.RemovePod("default/b") // deleted before its binding was confirmed
	c.RemovePod("default/a")
	wantRequested(t, c, "n1", 0, 0)

	// A removed node keeps its pods' accounting until they go, and is not offered.
	c.SetPod(makePod("a", "1", "", onNode("n1")))
	c.RemoveNode("n1")
	if c.NumNodes() != 0 {
		t.Fatal("removed node still offered")
	}
	c.AddNode(makeNode("n1", "2", "2Gi"))
	wantRequested(t, c, "n1", 1000, 1)
	c.RemoveNode("n1")
	c.RemovePod("default/a")
	if _, _, ok := c.NodeInfo("n1"); ok {
		t.Fatal("empty removed node lingers")
	}
}

func TestCacheSchedulePacksWithoutOvercommit(t *testing.T) {
	c := NewCache()
	for i := 0; i < 3; i++ {
		c.AddNode(makeNode(nodeName(i), "2", "4Gi"))
	}
	fw := newTestFramework(t, 5, 0)
	placed := 0
	var fitErr error
	for i := 0; i < 14; i++ {
		_, err := c.scheduleAndAssume(fw, NewPodInfo(makePod("p"+itoa(i), "500m", "")))
		if err != nil {
			fitErr = err
			continue
		}
		placed++
	}
	if placed != 12 {
		t.Fatalf("placed %d pods, want 12", placed)
	}
	for i := 0; i < 3; i++ {
		wantRequested(t, c, nodeName(i), 2000, 4)
	}
	if fitErr == nil || fitErr.Error() != "0/3 nodes are available: 3 Insufficient cpu." {
		t.Fatalf("fit error %v", fitErr)
	}
}

// The pod informer keeps of a bound pod only what scheduling reads; a pod waiting to be
// scheduled is kept whole (the scheduler writes its PodScheduled condition).
func TestSchedulingFields(t *testing.T) {
	pending := makePod("p", "500m", "")
	pending.Annotations = map[string]string{"a": "b"}
	pending.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse}}
	if got := schedulingFields(pending.DeepCopy()); !equality.Semantic.DeepEqual(got, pending) {
		t.Fatalf("a pending pod was changed: %+v", got)
	}
	bound := pending.DeepCopy()
	bound.Spec.NodeName = "n1"
	bound.Status.Phase = corev1.PodRunning
	got := schedulingFields(bound.DeepCopy())
	if got.Annotations != nil || len(got.Status.Conditions) != 0 || got.Status.Phase != corev1.PodRunning {
		t.Fatalf("a bound pod kept %v %v, phase %q", got.Annotations, got.Status.Conditions, got.Status.Phase)
	}
	if !equality.Semantic.DeepEqual(got.Spec, bound.Spec) || got.Labels["app"] != bound.Labels["app"] || !reflect.DeepEqual(NewPodInfo(got).Requests, NewPodInfo(bound).Requests) {
		t.Fatalf("a bound pod lost what scheduling reads: %+v", got)
	}
}
