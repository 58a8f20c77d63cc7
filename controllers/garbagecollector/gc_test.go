package garbagecollector

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func setup(t *testing.T) (*client.Clientset, context.Context) {
	cs, ctx, _ := setupCollector(t)
	return cs, ctx
}

// setupCollector runs a collector over a one-member cluster until the test ends.
func setupCollector(t *testing.T) (*client.Clientset, context.Context, *Collector) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)
	ctx, gc := runCollector(t, cs)
	return cs, ctx, gc
}

// runCollector runs a collector over cs until the test ends.
func runCollector(t *testing.T, cs *client.Clientset) (context.Context, *Collector) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	cfg := DefaultConfig()
	cfg.UncachedOwnerResync = 200 * time.Millisecond
	rec := record.New(cs.Events, record.Config{Component: "generic-garbage-collector"})
	gc, err := New(cs, f, rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{}, 2)
	go func() { defer func() { done <- struct{}{} }(); gc.Run(ctx) }()
	go func() { defer func() { done <- struct{}{} }(); rec.Run(ctx) }()
	t.Cleanup(func() { cancel(); f.Wait(); <-done; <-done })
	return ctx, gc
}

// tree makes a Deployment owning a ReplicaSet owning two Pods.
func tree(t *testing.T, ctx context.Context, cs *client.Clientset, name string) (*appsv1.Deployment, *appsv1.ReplicaSet, []*corev1.Pod) {
	lbl := map[string]string{"app": name}
	tmpl := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	d, err := cs.Deployments.Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: tmpl}})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := cs.ReplicaSets.Create(ctx, &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name + "-rs", Namespace: "default", Labels: lbl,
		OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(d)}},
		Spec: appsv1.ReplicaSetSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: lbl}, Template: tmpl}})
	if err != nil {
		t.Fatal(err)
	}
	var pods []*corev1.Pod
	for _, n := range []string{"-a", "-b"} {
		p, err := cs.Pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name + n, Namespace: "default", Labels: lbl,
			OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(rs)}}, Spec: tmpl.Spec})
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, p)
	}
	return d, rs, pods
}

func gone[T kinds.Object](ctx context.Context, c *client.Client[T], name string) func() (bool, error) {
	return func() (bool, error) {
		_, err := c.Get(ctx, "default", name)
		if client.IsNotFound(err) {
			return true, nil
		}
		return false, err
	}
}

func TestBackground(t *testing.T) {
	cs, ctx := setup(t)
	_, rs, pods := tree(t, ctx, cs, "bg")
	if _, err := cs.Deployments.Delete(ctx, "default", "bg", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "replicaset collected", gone(ctx, cs.ReplicaSets, rs.Name))
	for _, p := range pods {
		waitfor.ConditionErr(t, 30*time.Second, "pod collected", gone(ctx, cs.Pods, p.Name))
	}
}

func TestOrphan(t *testing.T) {
	cs, ctx := setup(t)
	_, rs, pods := tree(t, ctx, cs, "orph")
	if _, err := cs.ReplicaSets.Delete(ctx, "default", rs.Name, client.DeleteOptions{PropagationPolicy: "Orphan"}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "replicaset deleted once its pods are orphaned", gone(ctx, cs.ReplicaSets, rs.Name))
	for _, p := range pods {
		got, err := cs.Pods.Get(ctx, "default", p.Name)
		if err != nil {
			t.Fatalf("orphaned pod deleted: %v", err)
		}
		if len(got.OwnerReferences) != 0 {
			t.Fatalf("orphaned pod still owned: %v", got.OwnerReferences)
		}
	}
	// The Deployment stays: orphaning went down one level only.
	if _, err := cs.Deployments.Get(ctx, "default", "orph"); err != nil {
		t.Fatal(err)
	}
	// A dependent the collector sees only once its owner, deleted with the orphan
	// policy, is gone is orphaned as the others were, not collected. Nothing orders two
	// kinds' events: one created just before the owner's deletion can reach the cache
	// after the owner went (a flake of TestCustomResourcesOwnAndAreOwned under load);
	// created after, it takes the same path every time.
	late := pods[0].DeepCopy()
	late.Name, late.ResourceVersion, late.UID = "orph-late", "", ""
	late.OwnerReferences = []metav1.OwnerReference{kinds.NewControllerRef(rs)}
	if _, err := cs.Pods.Create(ctx, late); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "the late pod orphaned", func() (bool, error) {
		p, err := cs.Pods.Get(ctx, "default", late.Name)
		if err != nil {
			return false, err // collected: NotFound ends the wait with it
		}
		return len(p.OwnerReferences) == 0, nil
	})
}

func TestForeground(t *testing.T) {
	cs, ctx := setup(t)
	_, rs, pods := tree(t, ctx, cs, "fg")
	d, err := cs.Deployments.Delete(ctx, "default", "fg", client.DeleteOptions{PropagationPolicy: "Foreground"})
	if err != nil {
		t.Fatal(err)
	}
	if d.DeletionTimestamp == nil {
		t.Fatal("foreground delete removed the owner at once")
	}
	for _, p := range pods {
		waitfor.ConditionErr(t, 30*time.Second, "pod deleted", gone(ctx, cs.Pods, p.Name))
	}
	waitfor.ConditionErr(t, 30*time.Second, "replicaset deleted", gone(ctx, cs.ReplicaSets, rs.Name))
	waitfor.ConditionErr(t, 30*time.Second, "deployment deleted last", gone(ctx, cs.Deployments, "fg"))
}

// TestForegroundCircle: three pods owning each other in a circle, all references
// blocking; the first deleted in the foreground, all three go (Kubernetes' "should not be
// blocked by dependency circle"). Each waited for the next before the circle was broken.
func TestForegroundCircle(t *testing.T) {
	cs, ctx := setup(t)
	spec := corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}
	var pods [3]*corev1.Pod
	for i, n := range []string{"ring-1", "ring-2", "ring-3"} {
		p, err := cs.Pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: n, Namespace: "default"}, Spec: spec})
		if err != nil {
			t.Fatal(err)
		}
		pods[i] = p
	}
	// ring-1 is owned by ring-3, ring-2 by ring-1, ring-3 by ring-2.
	for i, p := range pods {
		owner := pods[(i+2)%3]
		p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: owner.Name, UID: owner.UID, BlockOwnerDeletion: ptr.To(true)}}
		if _, err := cs.Pods.Update(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.Pods.Delete(ctx, "default", "ring-1", client.DeleteOptions{PropagationPolicy: "Foreground"}); err != nil {
		t.Fatal(err)
	}
	for _, p := range pods {
		waitfor.ConditionErr(t, 30*time.Second, p.Name+" deleted", gone(ctx, cs.Pods, p.Name))
	}
}

func TestKeepsObjectWithLiveOwner(t *testing.T) {
	cs, ctx := setup(t)
	d, rs, _ := tree(t, ctx, cs, "keep")
	// A second owner that does not exist is dropped; the live one keeps the object.
	cur, err := cs.ReplicaSets.Get(ctx, "default", rs.Name)
	if err != nil {
		t.Fatal(err)
	}
	cur.OwnerReferences = append(cur.OwnerReferences, metav1.OwnerReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "ghost", UID: "nope"})
	if _, err := cs.ReplicaSets.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "dangling owner removed", func() (bool, error) {
		got, err := cs.ReplicaSets.Get(ctx, "default", rs.Name)
		if err != nil {
			return false, err
		}
		refs := got.OwnerReferences
		return len(refs) == 1 && refs[0].UID == d.UID, nil
	})
}

// TestOwnersOfOtherKinds: a Pod owned by a ConfigMap (a kind the collector follows
// through a metadata-only monitor) and one owned by a cluster-scoped Node are collected
// once their owner goes, and not before.
func TestOwnersOfOtherKinds(t *testing.T) {
	cs, ctx := setup(t)
	cm, err := cs.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "owner", Namespace: "default"}})
	if err != nil {
		t.Fatal(err)
	}
	node, err := cs.Nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1"}})
	if err != nil {
		t.Fatal(err)
	}
	for name, ref := range map[string]metav1.OwnerReference{
		"of-cm":   kinds.NewControllerRef(cm),
		"of-node": {APIVersion: "v1", Kind: kinds.Node, Name: "w1", UID: node.UID},
	} {
		if _, err := cs.Pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default",
			OwnerReferences: []metav1.OwnerReference{ref}},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := cs.ConfigMaps.Delete(ctx, "default", "owner", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "pod owned by a configmap collected", gone(ctx, cs.Pods, "of-cm"))
	if _, err := cs.Pods.Get(ctx, "default", "of-node"); err != nil {
		t.Fatalf("a pod whose owner lives was collected: %v", err)
	}
	if _, err := cs.Nodes.Delete(ctx, "", "w1", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "pod owned by a node collected", gone(ctx, cs.Pods, "of-node"))
}

// TestUnsyncedKindStopsNoDeletion: a followed kind whose cache never lists (as custom
// resources whose conversion webhook is down) holds an owner's foreground deletion for
// UnsyncedKindGrace from the kind's start, then no longer: the deletion goes on without
// that kind's objects, as Kubernetes' collector does since 1.31.
func TestUnsyncedKindStopsNoDeletion(t *testing.T) {
	cs, ctx, gc := setupCollector(t)
	// The monitors start once Run is collecting (the kind stands for one of them).
	waitfor.Condition(t, 30*time.Second, "the collector's monitors", func() (bool, string) {
		cm := gc.tracked("ConfigMap")
		return cm != nil && cm.synced(), ""
	})
	widget := &kinds.Info{Kind: "Widget", Group: "example.com", Singular: "widget", Namespaced: true}
	follow := func(since time.Time) {
		gc.mu.Lock()
		defer gc.mu.Unlock()
		gc.kinds[widget.Kind] = &tracked{info: widget, synced: func() bool { return false }, started: since,
			get:     func(string, string) (kinds.Object, bool) { return nil, false },
			byOwner: func(types.UID) []kinds.Object { return nil },
			withUID: func(types.UID) (kinds.Object, bool) { return nil, false }}
	}
	follow(time.Now())

	_, rs, pods := tree(t, ctx, cs, "unsynced")
	if _, err := cs.Deployments.Delete(ctx, "default", "unsynced", client.DeleteOptions{PropagationPolicy: "Foreground"}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the collector's cache has the deletion", func() (bool, string) {
		d, ok := gc.tracked("Deployment").get("default", "unsynced")
		return ok && d.GetDeletionTimestamp() != nil, ""
	})
	if err := gc.Reconcile(ctx, "Deployment|default/unsynced"); !errors.Is(err, errNotSynced) {
		t.Fatalf("within the grace: %v, want %v", err, errNotSynced)
	}
	if r, err := cs.ReplicaSets.Get(ctx, "default", rs.Name); err != nil || r.DeletionTimestamp != nil {
		t.Fatalf("a dependent was deleted while a kind had not listed: %v", err)
	}
	follow(time.Now().Add(-gc.cfg.UnsyncedKindGrace)) // the same kind, followed for longer than the grace
	if err := gc.Reconcile(ctx, "Deployment|default/unsynced"); err != nil {
		t.Fatalf("after the grace: %v", err)
	}
	for _, p := range pods {
		waitfor.ConditionErr(t, 30*time.Second, "pod deleted", gone(ctx, cs.Pods, p.Name))
	}
	waitfor.ConditionErr(t, 30*time.Second, "replicaset deleted", gone(ctx, cs.ReplicaSets, rs.Name))
	waitfor.ConditionErr(t, 30*time.Second, "deployment deleted", gone(ctx, cs.Deployments, "unsynced"))
}
