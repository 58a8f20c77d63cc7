package controllers

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
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
	conn := c.Dial(t, "", client.Options{})
	var err error
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
	conn := c.Dial(t, "", client.Options{})
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

// TestLeaderLossKeepsReplicas takes the controller-manager's Lease away from it, again
// and again, while a ReplicaSet of many pods exists: each time it steps down, stops its
// controllers and leads again with new ones. The ReplicaSet must never get a pod more
// (a term that acted before its pod cache held the existing pods made them again), nor
// a status that counts fewer pods than exist.
func TestLeaderLossKeepsReplicas(t *testing.T) {
	const replicas, terms = 400, 3
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn := c.Dial(t, "", client.Options{})
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	cfg := DefaultConfig()
	cfg.Identity, cfg.Logger = "a", hclog.NewNullLogger()
	cfg.Leader.LeaseDuration, cfg.Leader.RenewDeadline, cfg.Leader.RetryPeriod = 3*time.Second, 2*time.Second, 200*time.Millisecond
	mctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); Run(mctx, conn, cfg) }()
	defer func() { stop(); <-done }()

	lbl := map[string]string{"app": "many"}
	rs := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "many", Namespace: "default"}, Spec: appsv1.ReplicaSetSpec{
		Replicas: ptr.To[int32](replicas), Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
			Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
	if _, err := cs.ReplicaSets.Create(ctx, rs); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 2*time.Minute, "the ReplicaSet's pods", func() (bool, error) {
		cur, err := cs.ReplicaSets.Get(ctx, "default", "many")
		return err == nil && cur.Status.Replicas == replicas, err
	})
	pods, err := cs.Pods.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != replicas {
		t.Fatalf("%d pods before any leader change, want %d", len(pods.Items), replicas)
	}

	// From here on no pod may be made, and no status may count fewer than replicas.
	var (
		mu          sync.Mutex
		created     int
		wrongStatus []int32
	)
	wctx, wstop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { wstop(); wg.Wait() }()
	pw, err := cs.Pods.Watch(wctx, "default", client.WatchOptions{ResourceVersion: pods.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		defer pw.Stop()
		for {
			evs, err := pw.Next()
			if err != nil {
				return
			}
			for _, ev := range evs {
				if ev.Type == client.Added {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}
		}
	})
	rsw, err := cs.ReplicaSets.Watch(wctx, "default", client.WatchOptions{ResourceVersion: pods.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	wg.Go(func() {
		defer rsw.Stop()
		for {
			evs, err := rsw.Next()
			if err != nil {
				return
			}
			for _, ev := range evs {
				if ev.Type == client.Modified && ev.Object.Status.Replicas != replicas {
					mu.Lock()
					wrongStatus = append(wrongStatus, ev.Object.Status.Replicas)
					mu.Unlock()
				}
			}
		}
	})

	for term := range terms {
		// An intruder takes the Lease for longer than the renew deadline: the leader
		// fails to renew, steps down, and takes the Lease again once it has expired.
		var taken time.Time
		for {
			l, err := cs.Leases.Get(ctx, "kube-system", "skiff-controller-manager")
			if err != nil {
				t.Fatal(err)
			}
			taken = time.Now()
			now := metav1.NewMicroTime(taken)
			l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds, l.Spec.AcquireTime, l.Spec.RenewTime = ptr.To("intruder"), ptr.To[int32](4), &now, &now
			if _, err = cs.Leases.Update(ctx, l); !client.IsConflict(err) {
				if err != nil {
					t.Fatal(err)
				}
				break
			}
		}
		waitfor.ConditionErr(t, time.Minute, fmt.Sprintf("a leads again (term %d)", term+2), func() (bool, error) {
			l, err := cs.Leases.Get(ctx, "kube-system", "skiff-controller-manager")
			return err == nil && ptr.Deref(l.Spec.HolderIdentity, "") == "a" && l.Spec.AcquireTime.After(taken), err
		})
		// The new term's controllers have looked at the ReplicaSet once they observed a
		// spec change made in it (minReadySeconds: the pods are not ready, so it changes
		// nothing else).
		waitfor.ConditionErr(t, time.Minute, "the ReplicaSet looked at in the new term", func() (bool, error) {
			cur, err := cs.ReplicaSets.Get(ctx, "default", "many")
			if err != nil {
				return false, err
			}
			if cur.Spec.MinReadySeconds == int32(term+1) {
				return cur.Status.ObservedGeneration == cur.Generation, nil
			}
			cur.Spec.MinReadySeconds = int32(term + 1)
			_, err = cs.ReplicaSets.Update(ctx, cur)
			if client.IsConflict(err) {
				err = nil
			}
			return false, err
		})
	}
	pods, err = cs.Pods.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if len(pods.Items) != replicas {
		t.Errorf("%d pods after %d leader changes, want %d", len(pods.Items), terms, replicas)
	}
	wstop()
	wg.Wait()
	if created > 0 {
		t.Errorf("%d pods created after leader changes", created)
	}
	if len(wrongStatus) > 0 {
		t.Errorf("status.replicas written as %v, want %d", wrongStatus, replicas)
	}
}

// TestSharedInformers gives the controllers a factory of another cluster's caches: they
// act on what it holds (a Deployment only that cluster has gets its ReplicaSet, written
// through the controllers' own connection), so they read the given caches, not caches
// of their own; and they leave the factory to its owner to start and stop.
func TestSharedInformers(t *testing.T) {
	conn := apicluster.Start(t, 1, apicluster.Options{}).Dial(t, "", client.Options{})
	other := client.NewClientset(apicluster.Start(t, 1, apicluster.Options{}).Dial(t, "", client.Options{}))
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	labels := map[string]string{"app": "shared"}
	if _, err := other.Deployments.Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "shared", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}); err != nil {
		t.Fatal(err)
	}
	f := NewInformers(other, hclog.NewNullLogger(), true)
	elected := DefaultConfig()
	elected.Informers = f
	if err := elected.Validate(); err == nil {
		t.Error("a shared factory taken with leader election")
	}
	fctx, stopInformers := context.WithCancel(ctx)
	defer func() { stopInformers(); f.Wait() }()
	cfg := DefaultConfig()
	cfg.LeaderElect, cfg.Logger, cfg.Informers = false, hclog.NewNullLogger(), f
	mctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); Run(mctx, conn, cfg) }()
	defer func() { stop(); <-done }()
	f.Start(fctx)
	waitfor.ConditionErr(t, 30*time.Second, "the other cluster's Deployment's ReplicaSet, in this cluster", func() (bool, error) {
		l, err := cs.ReplicaSets.List(ctx, "default", client.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, rs := range l.Items {
			if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == "Deployment" && ref.Name == "shared" {
				return true, nil
			}
		}
		return false, nil
	})
	// Stopped, the controllers leave the factory running: its owner stops it.
	stop()
	<-done
	deployments := cache.InformerFor[*appsv1.Deployment](f, "", client.ListOptions{}).Lister()
	if _, err := other.Deployments.Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "later", Namespace: "default"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](0), Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "a later Deployment in the shared cache", func() (bool, string) {
		_, ok := deployments.Get("default", "later")
		return ok, "not there"
	})
}
