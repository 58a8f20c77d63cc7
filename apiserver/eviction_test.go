package apiserver_test

import (
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestEviction: the eviction subresource deletes a pod only when its budget allows a
// disruption, takes that disruption in the same write, and refuses as Kubernetes does.
func TestEviction(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx := testCtx(t)

	// running makes a pod bound to w1, Running, and Ready or not.
	running := func(name, app string, ready bool) {
		t.Helper()
		p := pod(name)
		p.Namespace, p.Labels = "default", map[string]string{"app": app}
		if _, err := cs.Pods.Create(ctx, p); err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Bind(ctx, "default", name, "", "w1"); err != nil {
			t.Fatal(err)
		}
		cur, err := cs.Pods.Get(ctx, "default", name)
		if err != nil {
			t.Fatal(err)
		}
		st := corev1.ConditionFalse
		if ready {
			st = corev1.ConditionTrue
		}
		cur.Status.Phase = corev1.PodRunning
		cur.Status.Conditions = append(cur.Status.Conditions, corev1.PodCondition{Type: corev1.PodReady, Status: st})
		if _, err := cs.Pods.UpdateStatus(ctx, cur); err != nil {
			t.Fatal(err)
		}
	}
	// budget makes a budget for app whose status says what the disruption controller
	// would have written.
	budget := func(name, app string, st policyv1.PodDisruptionBudgetStatus) *policyv1.PodDisruptionBudget {
		t.Helper()
		b, err := cs.PDBs.Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(st.DesiredHealthy)),
				Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}})
		if err != nil {
			t.Fatal(err)
		}
		if st.ObservedGeneration == 0 {
			st.ObservedGeneration = b.Generation
		}
		b.Status = st
		if b, err = cs.PDBs.UpdateStatus(ctx, b); err != nil {
			t.Fatal(err)
		}
		return b
	}
	refused := func(what string, err error, cause string) {
		t.Helper()
		if !client.IsTooManyRequests(err) || status.Convert(err).Message() != "Cannot evict pod as it would violate the pod's disruption budget." {
			t.Fatalf("%s: got %v, want Kubernetes' refusal", what, err)
		}
		if got := errorInfo(err).GetMetadata()["DisruptionBudget"]; got != cause {
			t.Fatalf("%s: cause %q, want %q", what, got, cause)
		}
	}

	// No budget: the pod goes with its grace period, marked as disrupted.
	running("lone", "lone", true)
	p, err := conn.Evict(ctx, "default", "lone", client.EvictOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p.DeletionTimestamp == nil || ptr.Deref(p.DeletionGracePeriodSeconds, -1) != 30 {
		t.Fatalf("evicted pod: deletionTimestamp %v, grace %v", p.DeletionTimestamp, p.DeletionGracePeriodSeconds)
	}
	if cnd := disruptionTarget(p); cnd == nil || cnd.Reason != "EvictionByEvictionAPI" || cnd.Status != corev1.ConditionTrue {
		t.Fatalf("evicted pod's DisruptionTarget condition: %+v", cnd)
	}

	// A budget allowing one disruption: the first eviction takes it, the second is refused.
	running("web-1", "web", true)
	running("web-2", "web", true)
	budget("web", "web", policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 2, DesiredHealthy: 1, ExpectedPods: 2, DisruptionsAllowed: 1})
	if _, err := conn.Evict(ctx, "default", "web-1", client.EvictOptions{DryRun: true}); err != nil {
		t.Fatal(err)
	}
	if b, _ := cs.PDBs.Get(ctx, "default", "web"); b.Status.DisruptionsAllowed != 1 {
		t.Fatalf("a dry run took a disruption: %+v", b.Status)
	}
	if p, _ := cs.Pods.Get(ctx, "default", "web-1"); p.DeletionTimestamp != nil {
		t.Fatal("a dry run deleted the pod")
	}
	if _, err := conn.Evict(ctx, "default", "web-1", client.EvictOptions{}); err != nil {
		t.Fatal(err)
	}
	b, err := cs.PDBs.Get(ctx, "default", "web")
	if err != nil {
		t.Fatal(err)
	}
	if _, listed := b.Status.DisruptedPods["web-1"]; b.Status.DisruptionsAllowed != 0 || !listed {
		t.Fatalf("budget after an eviction: %+v", b.Status)
	}
	if cnd := apimeta.FindStatusCondition(b.Status.Conditions, policyv1.DisruptionAllowedCondition); cnd == nil ||
		cnd.Status != metav1.ConditionFalse || cnd.Reason != policyv1.InsufficientPodsReason {
		t.Fatalf("budget's DisruptionAllowed condition: %+v", cnd)
	}
	_, err = conn.Evict(ctx, "default", "web-2", client.EvictOptions{})
	refused("second eviction", err, "The disruption budget web needs 1 healthy pods and has 2 currently")
	if p, _ := cs.Pods.Get(ctx, "default", "web-2"); p.DeletionTimestamp != nil {
		t.Fatal("a refused eviction deleted the pod")
	}
	// Evicting a pod being deleted takes nothing more.
	if _, err := conn.Evict(ctx, "default", "web-1", client.EvictOptions{}); err != nil {
		t.Fatalf("evicting a pod being deleted: %v", err)
	}

	// A pod that is not running yet disrupts nothing: it goes whatever the budget says.
	pending := pod("web-new")
	pending.Namespace = "default"
	if _, err := cs.Pods.Create(ctx, pending); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Evict(ctx, "default", "web-new", client.EvictOptions{}); err != nil {
		t.Fatalf("evicting a pending pod: %v", err)
	}
	if _, err := cs.Pods.Get(ctx, "default", "web-new"); !client.IsNotFound(err) {
		t.Fatalf("pending pod after eviction: %v", err)
	}

	// An unready pod goes without a disruption when its budget is met; else it is refused
	// unless the budget's policy is AlwaysAllow.
	running("db-1", "db", false)
	budget("db", "db", policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 2, DesiredHealthy: 2, ExpectedPods: 3})
	if _, err := conn.Evict(ctx, "default", "db-1", client.EvictOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatalf("evicting an unready pod of a healthy budget: %v", err)
	}
	if _, err := cs.Pods.Get(ctx, "default", "db-1"); !client.IsNotFound(err) {
		t.Fatalf("grace 0: pod still there (%v)", err)
	}
	if b, _ := cs.PDBs.Get(ctx, "default", "db"); len(b.Status.DisruptedPods) != 0 {
		t.Fatalf("an unready pod took a disruption: %+v", b.Status)
	}
	running("cache-1", "cache", false)
	b = budget("cache", "cache", policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 1, DesiredHealthy: 2, ExpectedPods: 3})
	_, err = conn.Evict(ctx, "default", "cache-1", client.EvictOptions{})
	refused("unready pod of an unhealthy budget", err, "The disruption budget cache needs 2 healthy pods and has 1 currently")
	b.Spec.UnhealthyPodEvictionPolicy = ptr.To(policyv1.AlwaysAllow)
	if b, err = cs.PDBs.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Evict(ctx, "default", "cache-1", client.EvictOptions{}); err != nil {
		t.Fatalf("AlwaysAllow: %v", err)
	}

	// A budget whose controller has not seen its last change refuses until it has.
	running("api-1", "api", true)
	b = budget("api", "api", policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 3, DesiredHealthy: 1, ExpectedPods: 3, DisruptionsAllowed: 2})
	b.Spec.MinAvailable = ptr.To(intstr.FromInt32(2))
	if _, err := cs.PDBs.Update(ctx, b); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Evict(ctx, "default", "api-1", client.EvictOptions{})
	refused("stale budget", err, "The disruption budget api is still being processed by the server.")

	// Two budgets for one pod: Kubernetes' eviction does not choose.
	budget("api-too", "api", policyv1.PodDisruptionBudgetStatus{CurrentHealthy: 3, DesiredHealthy: 1, ExpectedPods: 3, DisruptionsAllowed: 2})
	_, err = conn.Evict(ctx, "default", "api-1", client.EvictOptions{})
	if status.Code(err) != codes.Internal || status.Convert(err).Message() != "This pod has more than one PodDisruptionBudget, which the eviction subresource does not support." {
		t.Fatalf("two budgets: %v", err)
	}

	// A missing pod, and a precondition that no longer holds.
	if _, err := conn.Evict(ctx, "default", "nope", client.EvictOptions{}); !client.IsNotFound(err) {
		t.Fatalf("missing pod: %v", err)
	}
	if _, err := conn.Evict(ctx, "default", "web-2", client.EvictOptions{UID: "other"}); !client.IsConflict(err) {
		t.Fatalf("uid precondition: %v", err)
	}
}

func disruptionTarget(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.DisruptionTarget {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}
