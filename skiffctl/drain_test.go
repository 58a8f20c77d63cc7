package skiffctl_test

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestDrain drives skiffctl drain against an API server alone: the pods' kubelet and the
// disruption controller are played by the test (pods go at once with --grace-period 0;
// the budget's status is written by hand).
func TestDrain(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := strings.Join(c.Addrs(), ",")
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, n := range []string{"w1", "w2"} {
		if _, err := cs.Nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n}}); err != nil {
			t.Fatal(err)
		}
	}
	// pod makes a running, ready pod on node, controlled by controllerKind (none if "").
	pod := func(name, node, controllerKind string) {
		t.Helper()
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": name}},
			Spec: corev1.PodSpec{NodeName: node, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		if controllerKind != "" {
			p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: controllerKind, Name: name + "-owner", UID: types.UID("uid-" + name), Controller: ptr.To(true)}}
		}
		p, err := cs.Pods.Create(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
		if _, err := cs.Pods.UpdateStatus(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	pod("web", "w1", "ReplicaSet")
	pod("bare", "w1", "")
	pod("agent", "w1", "DaemonSet")
	lbl := map[string]string{"app": "agent"}
	if _, err := cs.DaemonSets.Create(ctx, &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent-owner", Namespace: "default"},
		Spec: appsv1.DaemonSetSpec{Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: corev1.PodTemplateSpec{
			ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}); err != nil {
		t.Fatal(err)
	}
	pod("other", "w2", "ReplicaSet")
	b, err := cs.PDBs.Create(ctx, &policyv1.PodDisruptionBudget{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"},
		Spec: policyv1.PodDisruptionBudgetSpec{MinAvailable: ptr.To(intstr.FromInt32(1)), Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}})
	if err != nil {
		t.Fatal(err)
	}
	b.Status = policyv1.PodDisruptionBudgetStatus{ObservedGeneration: b.Generation, ExpectedPods: 1, CurrentHealthy: 1, DesiredHealthy: 1}
	if b, err = cs.PDBs.UpdateStatus(ctx, b); err != nil {
		t.Fatal(err)
	}

	fails(t, s, "", `node "nope" not found`, "drain", "nope")

	// Pods a flag is needed for stop the drain before anything is evicted; the node is
	// cordoned all the same.
	code, out, errs := run(t, s, "", "drain", "w1")
	if code == 0 || out != "node/w1 cordoned\n" {
		t.Fatalf("drain w1: exit %d, stdout %q", code, out)
	}
	wantErr := "cannot delete DaemonSet-managed Pods (use --ignore-daemonsets to ignore): default/agent, " +
		"cannot delete cannot delete Pods that declare no controller (use --force to override): default/bare"
	contains(t, "drain w1 stderr", errs, `error: unable to drain node "w1" due to error: [`+wantErr+`], continuing command...`,
		"There are pending nodes to be drained:\n w1\n", "Error: ["+wantErr+"]")
	if n, _ := cs.Nodes.Get(ctx, "", "w1"); !n.Spec.Unschedulable {
		t.Fatal("w1 not cordoned")
	}
	for _, name := range []string{"web", "bare", "agent"} {
		if p, err := cs.Pods.Get(ctx, "default", name); err != nil || p.DeletionTimestamp != nil {
			t.Fatalf("pod %s touched by a drain that stopped: %v %v", name, p, err)
		}
	}

	// With the flags, bare goes; web's budget allows nothing, until the timeout.
	code, out, errs = run(t, s, "", "drain", "w1", "--ignore-daemonsets", "--force", "--grace-period", "0", "--timeout", "1s")
	if code == 0 {
		t.Fatalf("drain with a refusing budget succeeded: %s", out)
	}
	contains(t, "drain stdout", out, "node/w1 already cordoned\n", "evicting pod default/bare\n", "pod/bare evicted\n", "evicting pod default/web\n")
	contains(t, "drain stderr", errs,
		"Warning: deleting Pods that declare no controller: default/bare; ignoring DaemonSet-managed Pods: default/agent\n",
		`error when evicting pods/"web" -n "default" (will retry after 5s): Cannot evict pod as it would violate the pod's disruption budget.`,
		`error when evicting pods/"web" -n "default": global timeout reached: 1s`,
		"There are pending pods in node \"w1\" when an error occurred", "pod/web\n")
	if strings.Contains(out, "node/w1 drained") {
		t.Fatalf("w1 reported drained: %s", out)
	}

	// The budget allows one: the drain finishes, and leaves the DaemonSet's pod.
	b.Status.DisruptionsAllowed, b.Status.DesiredHealthy = 1, 0
	if _, err := cs.PDBs.UpdateStatus(ctx, b); err != nil {
		t.Fatal(err)
	}
	out = must(t, s, "drain", "w1", "--ignore-daemonsets", "--grace-period", "0")
	if out != "node/w1 already cordoned\nevicting pod default/web\npod/web evicted\nnode/w1 drained\n" {
		t.Fatalf("drain w1: %q", out)
	}
	if _, err := cs.Pods.Get(ctx, "default", "agent"); err != nil {
		t.Fatalf("the DaemonSet's pod: %v", err)
	}

	// A client dry run changes nothing.
	out = must(t, s, "drain", "w2", "--dry-run")
	if out != "node/w2 cordoned (dry run)\nevicting pod default/other (dry run)\nnode/w2 drained (dry run)\n" {
		t.Fatalf("drain --dry-run: %q", out)
	}
	if n, _ := cs.Nodes.Get(ctx, "", "w2"); n.Spec.Unschedulable {
		t.Fatal("a dry run cordoned w2")
	}
	// --disable-eviction deletes.
	out = must(t, s, "drain", "w2", "--disable-eviction", "--grace-period", "0")
	if out != "node/w2 cordoned\npod/other deleted\nnode/w2 drained\n" {
		t.Fatalf("drain --disable-eviction: %q", out)
	}
	fails(t, s, "", `Invalid dry-run value (maybe)`, "drain", "w2", "--dry-run=maybe")
	fails(t, s, "", `cannot specify both a node name and a --selector option`, "drain", "w2", "-l", "a=b")
}
