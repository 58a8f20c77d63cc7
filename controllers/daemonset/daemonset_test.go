package daemonset_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/controllers/daemonset"
	"github.com/skiffhq/skiff/controllers/internal/fakekubelet"
	"github.com/skiffhq/skiff/controllers/internal/history"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func start(t *testing.T) (*client.Clientset, context.Context) {
	t.Helper()
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	rec := record.New(cs.Events, record.Config{Component: "daemonset-controller"})
	ctrl, err := daemonset.New(cs, f, rec, daemonset.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{}, 3)
	go func() { rec.Run(ctx); done <- struct{}{} }()
	go func() { ctrl.Run(ctx); done <- struct{}{} }()
	go func() { fakekubelet.Run(ctx, cs); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); f.Wait(); <-done; <-done; <-done })
	return cs, ctx
}

// onNodes lists the nodes the DaemonSet's live pods are for, and their images.
func onNodes(ctx context.Context, cs *client.Clientset) (map[string]string, error) {
	l, err := cs.Pods.List(ctx, "default", client.ListOptions{LabelSelector: "app=agent"})
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, p := range l.Items {
		if p.DeletionTimestamp == nil {
			n := daemonset.TargetNode(p)
			if _, dup := out[n]; dup {
				out[n] += "+"
			}
			out[n] += p.Spec.Containers[0].Image
		}
	}
	return out, nil
}

// setImage changes the DaemonSet's image, again on a conflict with the controller's
// status writes.
func setImage(t *testing.T, ctx context.Context, cs *client.Clientset, image string) {
	t.Helper()
	waitfor.ConditionErr(t, 30*time.Second, "update the daemonset", func() (bool, error) {
		cur, err := cs.DaemonSets.Get(ctx, "default", "agent")
		if err != nil {
			return false, err
		}
		cur.Spec.Template.Spec.Containers[0].Image = image
		_, err = cs.DaemonSets.Update(ctx, cur)
		if client.IsConflict(err) {
			return false, nil
		}
		return err == nil, err
	})
}

func TestDaemonSetFollowsNodes(t *testing.T) {
	cs, ctx := start(t)
	for i := range 3 {
		if _, err := cs.Nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("w%d", i), Labels: map[string]string{"role": "worker"}}}); err != nil {
			t.Fatal(err)
		}
	}
	lbl := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default"}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{
			NodeSelector: map[string]string{"role": "worker"},
			Containers:   []corev1.Container{{Name: "c", Image: "agent:1"}}}},
		UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromInt32(1))}}}}
	if _, err := cs.DaemonSets.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	want := func(what string, nodes map[string]string) {
		t.Helper()
		waitfor.ConditionErr(t, 30*time.Second, what, func() (bool, error) {
			got, err := onNodes(ctx, cs)
			return fmt.Sprint(got) == fmt.Sprint(nodes), err
		})
	}
	want("a pod on each worker", map[string]string{"w0": "agent:1", "w1": "agent:1", "w2": "agent:1"})
	waitfor.ConditionErr(t, 30*time.Second, "status", func() (bool, error) {
		cur, err := cs.DaemonSets.Get(ctx, "default", "agent")
		st := cur.Status
		return st.DesiredNumberScheduled == 3 && st.CurrentNumberScheduled == 3 && st.NumberReady == 3 && st.NumberAvailable == 3 &&
			st.UpdatedNumberScheduled == 3 && st.ObservedGeneration == cur.Generation, err
	})

	// A node joins; another stops being a worker; a third is cordoned (its pod stays).
	if _, err := cs.Nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w3", Labels: map[string]string{"role": "worker"}}}); err != nil {
		t.Fatal(err)
	}
	n1, _ := cs.Nodes.Get(ctx, "", "w1")
	n1.Labels["role"] = "db"
	if _, err := cs.Nodes.Update(ctx, n1); err != nil {
		t.Fatal(err)
	}
	n2, _ := cs.Nodes.Get(ctx, "", "w2")
	n2.Spec.Unschedulable = true
	n2.Spec.Taints = []corev1.Taint{{Key: corev1.TaintNodeUnschedulable, Effect: corev1.TaintEffectNoSchedule}}
	if _, err := cs.Nodes.Update(ctx, n2); err != nil {
		t.Fatal(err)
	}
	want("w3 gains one, w1 loses its, cordoned w2 keeps its", map[string]string{"w0": "agent:1", "w2": "agent:1", "w3": "agent:1"})

	// A pod deleted on the cordoned node comes back there.
	got, _ := cs.Pods.List(ctx, "default", client.ListOptions{LabelSelector: "app=agent"})
	for _, p := range got.Items {
		if daemonset.TargetNode(p) == "w2" {
			if _, err := cs.Pods.Delete(ctx, "default", p.Name, client.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	want("the cordoned node's pod replaced", map[string]string{"w0": "agent:1", "w2": "agent:1", "w3": "agent:1"})

	// A new image rolls out, one node at a time; the revisions are kept.
	setImage(t, ctx, cs, "agent:2")
	want("rolled to agent:2", map[string]string{"w0": "agent:2", "w2": "agent:2", "w3": "agent:2"})
	revisions := func() ([]*appsv1.ControllerRevision, error) {
		l, err := cs.ControllerRevisions.List(ctx, "default", client.ListOptions{})
		if err != nil {
			return nil, err
		}
		history.Sort(l.Items)
		return l.Items, nil
	}
	waitfor.ConditionErr(t, 30*time.Second, "two revisions", func() (bool, error) {
		revs, err := revisions()
		return len(revs) == 2 && revs[0].Revision == 1 && revs[1].Revision == 2, err
	})
	// Back to the first template: its revision becomes number 3, no new one is made.
	setImage(t, ctx, cs, "agent:1")
	want("rolled back to agent:1", map[string]string{"w0": "agent:1", "w2": "agent:1", "w3": "agent:1"})
	waitfor.ConditionErr(t, 30*time.Second, "the first revision renumbered 3", func() (bool, error) {
		revs, err := revisions()
		if err != nil || len(revs) != 2 {
			return false, err
		}
		tmpl, err := history.Template(revs[1])
		return revs[1].Revision == 3 && tmpl.Spec.Containers[0].Image == "agent:1", err
	})

	// OnDelete: a new image changes no pod until one is deleted; that one comes back new.
	waitfor.ConditionErr(t, 30*time.Second, "switch to OnDelete", func() (bool, error) {
		cur, err := cs.DaemonSets.Get(ctx, "default", "agent")
		if err != nil {
			return false, err
		}
		cur.Spec.UpdateStrategy = appsv1.DaemonSetUpdateStrategy{Type: appsv1.OnDeleteDaemonSetStrategyType}
		cur.Spec.Template.Spec.Containers[0].Image = "agent:3"
		_, err = cs.DaemonSets.Update(ctx, cur)
		return err == nil, nil
	})
	got, _ = cs.Pods.List(ctx, "default", client.ListOptions{LabelSelector: "app=agent"})
	for _, p := range got.Items {
		if daemonset.TargetNode(p) == "w0" {
			if _, err := cs.Pods.Delete(ctx, "default", p.Name, client.DeleteOptions{}); err != nil {
				t.Fatal(err)
			}
		}
	}
	want("only the deleted pod updated", map[string]string{"w0": "agent:3", "w2": "agent:1", "w3": "agent:1"})
	waitfor.ConditionErr(t, 30*time.Second, "status: one of three updated", func() (bool, error) {
		cur, err := cs.DaemonSets.Get(ctx, "default", "agent")
		return cur.Status.UpdatedNumberScheduled == 1 && cur.Status.NumberAvailable == 3 && cur.Status.ObservedGeneration == cur.Generation, err
	})
	if pods, _ := onNodes(ctx, cs); fmt.Sprint(pods) != fmt.Sprint(map[string]string{"w0": "agent:3", "w2": "agent:1", "w3": "agent:1"}) {
		t.Fatalf("OnDelete replaced pods not deleted: %v", pods)
	}

	// A node that goes takes nothing with it here (the pod garbage collector removes pods
	// of missing nodes); the desired count follows.
	if _, err := cs.Nodes.Delete(ctx, "", "w3", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "desired 2", func() (bool, error) {
		cur, err := cs.DaemonSets.Get(ctx, "default", "agent")
		return cur.Status.DesiredNumberScheduled == 2, err
	})
}

// creationRevisions watches the agent's pods from resourceVersion rv until pods that
// match have been created for n nodes, and counts them by the revision that created
// them (one store transaction: one CreateBatch call).
func creationRevisions(t *testing.T, ctx context.Context, cs *client.Clientset, rv string, n int, match func(*corev1.Pod) bool) map[string]int {
	t.Helper()
	w, err := cs.Pods.Watch(ctx, "default", client.WatchOptions{ListOptions: client.ListOptions{LabelSelector: "app=agent"},
		ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	revisions := map[string]int{}
	nodes := map[string]bool{}
	for len(nodes) < n {
		evs, err := w.Next()
		if err != nil {
			t.Fatalf("watch pods: %v (pods seen on %d nodes)", err, len(nodes))
		}
		for _, ev := range evs {
			if ev.Type == client.Added && match(ev.Object) {
				revisions[ev.ResourceVersion]++
				nodes[daemonset.TargetNode(ev.Object)] = true
			}
		}
	}
	return revisions
}

// TestDaemonSetCreatesInBatches: the pods of a slow-start batch are made by one
// CreateBatch call, which the server commits in one transaction, so that on seven nodes
// the pods come in three revisions (batches of 1, 2 and 4), not seven.
func TestDaemonSetCreatesInBatches(t *testing.T) {
	cs, ctx := start(t)
	const n = 7
	for i := range n {
		if _, err := cs.Nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("w%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := cs.Pods.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	lbl := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default"}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "agent:1"}}}}}}
	if _, err := cs.DaemonSets.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	revisions := creationRevisions(t, ctx, cs, before.ResourceVersion, n, func(*corev1.Pod) bool { return true })
	if len(revisions) != 3 {
		t.Fatalf("%d pods created in %d revisions (pods per revision: %v); want 3 (batches of 1, 2, 4)", n, len(revisions), revisions)
	}
}

// TestDaemonSetRolloutBeginsAtTheLastBatch: a rolling update's replacements are
// created from the largest slow-start batch that succeeded for the DaemonSet, not from
// 1 again: on seven nodes the create takes batches of 1, 2 and 4; the update (all
// seven unavailable at once) then replaces the pods in batches of 4 and 3, two
// revisions rather than three.
func TestDaemonSetRolloutBeginsAtTheLastBatch(t *testing.T) {
	cs, ctx := start(t)
	const n = 7
	for i := range n {
		if _, err := cs.Nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("w%d", i)}}); err != nil {
			t.Fatal(err)
		}
	}
	lbl := map[string]string{"app": "agent"}
	ds := &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Name: "agent", Namespace: "default"}, Spec: appsv1.DaemonSetSpec{
		Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "c", Image: "agent:1"}}}},
		UpdateStrategy: appsv1.DaemonSetUpdateStrategy{Type: appsv1.RollingUpdateDaemonSetStrategyType,
			RollingUpdate: &appsv1.RollingUpdateDaemonSet{MaxUnavailable: new(intstr.FromString("100%"))}}}}
	if _, err := cs.DaemonSets.Create(ctx, ds); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "every pod available", func() (bool, error) {
		cur, err := cs.DaemonSets.Get(ctx, "default", "agent")
		return err == nil && cur.Status.NumberAvailable == n && cur.Status.ObservedGeneration == cur.Generation, err
	})
	before, err := cs.Pods.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	setImage(t, ctx, cs, "agent:2")
	revisions := creationRevisions(t, ctx, cs, before.ResourceVersion, n, func(p *corev1.Pod) bool {
		return p.Spec.Containers[0].Image == "agent:2"
	})
	if len(revisions) != 2 {
		t.Fatalf("%d replacements created in %d revisions (pods per revision: %v); want 2 (batches of 4 and 3)", n, len(revisions), revisions)
	}
}
