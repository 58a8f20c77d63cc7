package controllers

import (
	"context"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/protobuf/proto"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controllers/internal/fakekubelet"
	"github.com/skiffhq/skiff/controllers/replicaset"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestFailoverMidRollout runs two controller-managers; the leader is stopped in the middle
// of a rollout and the other finishes it, with no pod beyond what the rollout needs.
func TestFailoverMidRollout(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	go fakekubelet.Run(ctx, cs)

	start := func(id string) (context.CancelFunc, chan struct{}) {
		cfg := DefaultConfig()
		cfg.Identity = id
		cfg.Leader.LeaseDuration, cfg.Leader.RenewDeadline, cfg.Leader.RetryPeriod = 3*time.Second, 2*time.Second, 200*time.Millisecond
		cfg.Logger = hclog.NewNullLogger()
		mctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { defer close(done); Run(mctx, conn, cfg) }()
		return stop, done
	}
	stopA, doneA := start("a")
	waitfor.ConditionErr(t, time.Minute, "a leads", func() (bool, error) {
		l, err := cs.Leases.Get(ctx, "kube-system", "skiff-controller-manager")
		if client.IsNotFound(err) {
			return false, nil
		}
		return l.GetSpec().GetHolderIdentity() == "a", err
	})
	stopB, doneB := start("b")
	defer func() { stopB(); <-doneB }()

	lbl := map[string]string{"app": "web"}
	d := &corev1.Deployment{Metadata: &corev1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: &corev1.DeploymentSpec{
		Replicas: proto.Int32(10), Selector: &corev1.LabelSelector{MatchLabels: lbl},
		Template: &corev1.PodTemplateSpec{Metadata: &corev1.ObjectMeta{Labels: lbl},
			Spec: &corev1.PodSpec{Containers: []*corev1.Container{{Name: "web", Image: "busybox:1"}}}}}}
	if _, err := cs.Deployments.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	done := func(image string) func() (bool, error) {
		return func() (bool, error) {
			cur, err := cs.Deployments.Get(ctx, "default", "web")
			st := cur.GetStatus()
			return st.GetObservedGeneration() == cur.GetMetadata().GetGeneration() && st.GetUpdatedReplicas() == 10 && st.GetReplicas() == 10 &&
				st.GetAvailableReplicas() == 10 && cur.GetSpec().GetTemplate().GetSpec().GetContainers()[0].GetImage() == image, err
		}
	}
	waitfor.ConditionErr(t, time.Minute, "first rollout", done("busybox:1"))

	for {
		cur, _ := cs.Deployments.Get(ctx, "default", "web")
		cur.Spec.Template.Spec.Containers[0].Image = "busybox:2"
		if _, err = cs.Deployments.Update(ctx, cur); !client.IsConflict(err) {
			break
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, time.Minute, "rollout under way", func() (bool, error) {
		cur, err := cs.Deployments.Get(ctx, "default", "web")
		return cur.GetStatus().GetUpdatedReplicas() > 0, err
	})
	stopA()
	<-doneA
	waitfor.ConditionErr(t, time.Minute, "b finishes the rollout", done("busybox:2"))
	l, _ := cs.Leases.Get(ctx, "kube-system", "skiff-controller-manager")
	if l.GetSpec().GetHolderIdentity() != "b" {
		t.Errorf("lease held by %q after a stopped", l.GetSpec().GetHolderIdentity())
	}
	pods, _ := cs.Pods.List(ctx, "default", client.ListOptions{})
	active := 0
	for _, p := range pods.Items {
		if replicaset.IsActive(p) {
			active++
		}
	}
	if active != 10 {
		t.Fatalf("%d active pods after the rollout, want 10", active)
	}
}
