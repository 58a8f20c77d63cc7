package garbagecollector

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func setup(t *testing.T) (*client.Clientset, context.Context) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	gc, err := New(cs, f, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{})
	go func() { defer close(done); gc.Run(ctx) }()
	t.Cleanup(func() { cancel(); f.Wait(); <-done; conn.Close() })
	return cs, ctx
}

// tree makes a Deployment owning a ReplicaSet owning two Pods.
func tree(t *testing.T, ctx context.Context, cs *client.Clientset, name string) (*corev1.Deployment, *corev1.ReplicaSet, []*corev1.Pod) {
	lbl := map[string]string{"app": name}
	tmpl := &corev1.PodTemplateSpec{Metadata: &corev1.ObjectMeta{Labels: lbl}, Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "c", Image: "busybox"}}}}
	d, err := cs.Deployments.Create(ctx, &corev1.Deployment{Metadata: &corev1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: &corev1.DeploymentSpec{Replicas: proto.Int32(0), Selector: &corev1.LabelSelector{MatchLabels: lbl}, Template: tmpl}})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := cs.ReplicaSets.Create(ctx, &corev1.ReplicaSet{Metadata: &corev1.ObjectMeta{Name: name + "-rs", Namespace: "default", Labels: lbl,
		OwnerReferences: []*corev1.OwnerReference{kinds.NewControllerRef(d)}},
		Spec: &corev1.ReplicaSetSpec{Replicas: proto.Int32(0), Selector: &corev1.LabelSelector{MatchLabels: lbl}, Template: tmpl}})
	if err != nil {
		t.Fatal(err)
	}
	var pods []*corev1.Pod
	for _, n := range []string{"-a", "-b"} {
		p, err := cs.Pods.Create(ctx, &corev1.Pod{Metadata: &corev1.ObjectMeta{Name: name + n, Namespace: "default", Labels: lbl,
			OwnerReferences: []*corev1.OwnerReference{kinds.NewControllerRef(rs)}}, Spec: tmpl.Spec})
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
	waitfor.ConditionErr(t, 30*time.Second, "replicaset collected", gone(ctx, cs.ReplicaSets, rs.GetMetadata().GetName()))
	for _, p := range pods {
		waitfor.ConditionErr(t, 30*time.Second, "pod collected", gone(ctx, cs.Pods, p.GetMetadata().GetName()))
	}
}

func TestOrphan(t *testing.T) {
	cs, ctx := setup(t)
	_, rs, pods := tree(t, ctx, cs, "orph")
	if _, err := cs.ReplicaSets.Delete(ctx, "default", rs.GetMetadata().GetName(), client.DeleteOptions{PropagationPolicy: "Orphan"}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "replicaset deleted once its pods are orphaned", gone(ctx, cs.ReplicaSets, rs.GetMetadata().GetName()))
	for _, p := range pods {
		got, err := cs.Pods.Get(ctx, "default", p.GetMetadata().GetName())
		if err != nil {
			t.Fatalf("orphaned pod deleted: %v", err)
		}
		if len(got.GetMetadata().GetOwnerReferences()) != 0 {
			t.Fatalf("orphaned pod still owned: %v", got.GetMetadata().GetOwnerReferences())
		}
	}
	// The Deployment stays: orphaning went down one level only.
	if _, err := cs.Deployments.Get(ctx, "default", "orph"); err != nil {
		t.Fatal(err)
	}
}

func TestForeground(t *testing.T) {
	cs, ctx := setup(t)
	_, rs, pods := tree(t, ctx, cs, "fg")
	d, err := cs.Deployments.Delete(ctx, "default", "fg", client.DeleteOptions{PropagationPolicy: "Foreground"})
	if err != nil {
		t.Fatal(err)
	}
	if d.GetMetadata().GetDeletionTimestamp() == nil {
		t.Fatal("foreground delete removed the owner at once")
	}
	for _, p := range pods {
		waitfor.ConditionErr(t, 30*time.Second, "pod deleted", gone(ctx, cs.Pods, p.GetMetadata().GetName()))
	}
	waitfor.ConditionErr(t, 30*time.Second, "replicaset deleted", gone(ctx, cs.ReplicaSets, rs.GetMetadata().GetName()))
	waitfor.ConditionErr(t, 30*time.Second, "deployment deleted last", gone(ctx, cs.Deployments, "fg"))
}

func TestKeepsObjectWithLiveOwner(t *testing.T) {
	cs, ctx := setup(t)
	d, rs, _ := tree(t, ctx, cs, "keep")
	// A second owner that does not exist is dropped; the live one keeps the object.
	cur, _ := cs.ReplicaSets.Get(ctx, "default", rs.GetMetadata().GetName())
	cur.Metadata.OwnerReferences = append(cur.Metadata.OwnerReferences, &corev1.OwnerReference{ApiVersion: "apps/v1", Kind: "Deployment", Name: "ghost", Uid: "nope"})
	if _, err := cs.ReplicaSets.Update(ctx, cur); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "dangling owner removed", func() (bool, error) {
		got, err := cs.ReplicaSets.Get(ctx, "default", rs.GetMetadata().GetName())
		if err != nil {
			return false, err
		}
		refs := got.GetMetadata().GetOwnerReferences()
		return len(refs) == 1 && refs[0].GetUid() == d.GetMetadata().GetUid(), nil
	})
}
