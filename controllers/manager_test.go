package controllers

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controllers/internal/fakekubelet"
	"github.com/skiffhq/skiff/controllers/replicaset"
	"github.com/skiffhq/skiff/pki"
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
		return err == nil && ptr.Deref(l.Spec.HolderIdentity, "") == "a", err
	})
	stopB, doneB := start("b")
	defer func() { stopB(); <-doneB }()

	lbl := map[string]string{"app": "web"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To[int32](10), Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "busybox:1"}}}}}}
	if _, err := cs.Deployments.Create(ctx, d); err != nil {
		t.Fatal(err)
	}
	done := func(image string) func() (bool, error) {
		return func() (bool, error) {
			cur, err := cs.Deployments.Get(ctx, "default", "web")
			if err != nil {
				return false, err
			}
			st := cur.Status
			return st.ObservedGeneration == cur.Generation && st.UpdatedReplicas == 10 && st.Replicas == 10 &&
				st.AvailableReplicas == 10 && cur.Spec.Template.Spec.Containers[0].Image == image, nil
		}
	}
	waitfor.ConditionErr(t, time.Minute, "first rollout", done("busybox:1"))

	for {
		var cur *appsv1.Deployment
		if cur, err = cs.Deployments.Get(ctx, "default", "web"); err != nil {
			t.Fatal(err)
		}
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
		return err == nil && cur.Status.UpdatedReplicas > 0, err
	})
	stopA()
	<-doneA
	waitfor.ConditionErr(t, time.Minute, "b finishes the rollout", done("busybox:2"))
	l, err := cs.Leases.Get(ctx, "kube-system", "skiff-controller-manager")
	if err != nil {
		t.Fatal(err)
	}
	if holder := ptr.Deref(l.Spec.HolderIdentity, ""); holder != "b" {
		t.Errorf("lease held by %q after a stopped", holder)
	}
	pods, err := cs.Pods.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
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

// TestManagerPublishesTheRootCA: a controller-manager given the cluster CA publishes it
// in every namespace as kube-root-ca.crt (what pods and Kubernetes' e2e framework wait
// for in a new namespace).
func TestManagerPublishesTheRootCA(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cfg := DefaultConfig()
	ca, err := pki.NewCA("test-ca", time.Now(), 0)
	if err != nil {
		t.Fatal(err)
	}
	caFile := filepath.Join(t.TempDir(), pki.CACertFile)
	if err := os.WriteFile(caFile, ca.CertPEM(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg.LeaderElect, cfg.Logger, cfg.RootCAFile = false, hclog.NewNullLogger(), caFile
	mctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); Run(mctx, conn, cfg) }()
	defer func() { stop(); <-done }()
	waitfor.ConditionErr(t, 30*time.Second, "default/kube-root-ca.crt", func() (bool, error) {
		cm, err := cs.ConfigMaps.Get(ctx, "default", "kube-root-ca.crt")
		if client.IsNotFound(err) {
			return false, nil
		}
		return err == nil && cm.Data["ca.crt"] == string(ca.CertPEM()), err
	})
}
