package controllers

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestQuotaCapsHugeDeployment is issue 27's case: a Deployment of 1,000,000,000 replicas
// in a namespace whose quota allows 10 pods makes 10 pods; the ReplicaSet says why it
// makes no more (FailedCreate, in the quota's words) and backs off rather than spinning;
// deleting the Deployment is quick, and the quota gets its pods back.
func TestQuotaCapsHugeDeployment(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn := c.Dial(t, "", client.Options{})
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := conn.EnsureNamespace(ctx, "capped"); err != nil {
		t.Fatal(err)
	}
	hard := corev1.ResourceList{"pods": resource.MustParse("10")}
	if _, err := cs.ResourceQuotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: "capped"},
		Spec: corev1.ResourceQuotaSpec{Hard: hard}}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.LeaderElect, cfg.Logger = false, hclog.NewNullLogger()
	mctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); Run(mctx, conn, cfg) }()
	defer func() { stop(); <-done }()

	usedPods := func() (int64, bool, error) {
		q, err := cs.ResourceQuotas.Get(ctx, "capped", "q")
		if err != nil {
			return 0, false, err
		}
		used, ok := q.Status.Used["pods"]
		return used.Value(), ok, nil
	}
	waitfor.ConditionErr(t, time.Minute, "the quota controller to sync the quota", func() (bool, error) {
		n, ok, err := usedPods()
		return ok && n == 0, err
	})

	lbl := map[string]string{"app": "huge"}
	if _, err := cs.Deployments.Create(ctx, &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "huge", Namespace: "capped"},
		Spec: appsv1.DeploymentSpec{Replicas: ptr.To[int32](1_000_000_000), Selector: &metav1.LabelSelector{MatchLabels: lbl},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}); err != nil {
		t.Fatal(err)
	}
	// attempts counts the ReplicaSet's refused creates, from its FailedCreate events.
	attempts := func() (int32, string, error) {
		evs, err := cs.Events.List(ctx, "capped", client.ListOptions{})
		if err != nil {
			return 0, "", err
		}
		var n int32
		var msg string
		for _, e := range evs.Items {
			if e.Reason == "FailedCreate" && e.InvolvedObject.Kind == "ReplicaSet" {
				n += e.Count
				msg = e.Message
			}
		}
		return n, msg, nil
	}
	const refusal = "is forbidden: exceeded quota: q, requested: pods=1, used: pods=10, limited: pods=10"
	waitfor.ConditionErr(t, time.Minute, "10 pods and a FailedCreate event", func() (bool, error) {
		pods, err := cs.Pods.List(ctx, "capped", client.ListOptions{})
		if err != nil {
			return false, err
		}
		if len(pods.Items) > 10 {
			t.Fatalf("%d pods: the quota allows 10", len(pods.Items))
		}
		n, msg, err := attempts()
		return len(pods.Items) == 10 && n > 0 && strings.Contains(msg, refusal), err
	})
	// Back-off, not a spin: the retries of one ReplicaSet double their delay from 5ms,
	// so a few seconds see about ten of them; a loop without back-off makes hundreds.
	time.Sleep(3 * time.Second) // a window to count attempts in, not a synchronisation
	n, _, err := attempts()
	t.Logf("%d refused creates", n)
	if err != nil || n > 40 {
		t.Errorf("%d refused creates within seconds (%v): the ReplicaSet does not back off", n, err)
	}
	pods, err := cs.Pods.List(ctx, "capped", client.ListOptions{})
	if err != nil || len(pods.Items) != 10 {
		t.Fatalf("pods: %d, %v; want 10", len(pods.Items), err)
	}

	start := time.Now()
	if _, err := cs.Deployments.Delete(ctx, "capped", "huge", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "the Deployment, its ReplicaSet and pods gone", func() (bool, error) {
		pods, err := cs.Pods.List(ctx, "capped", client.ListOptions{})
		if err != nil {
			return false, err
		}
		rss, err := cs.ReplicaSets.List(ctx, "capped", client.ListOptions{})
		return err == nil && len(pods.Items) == 0 && len(rss.Items) == 0, err
	})
	t.Logf("deleted in %v", time.Since(start))
	waitfor.ConditionErr(t, time.Minute, "the quota to get its pods back", func() (bool, error) {
		n, _, err := usedPods()
		return n == 0, err
	})
}

// TestReplicationControllerQuota: Kubernetes' "should surface a failure condition on a
// common issue like exceeded quota" — a ReplicationController of 3 replicas in a
// namespace whose quota allows 2 pods says why (ReplicaFailure, FailedCreate) and drops
// the condition once scaled to 2 — with the quota also counting ReplicationControllers
// (replicationcontrollers: 1 refuses a second); deleting it collects its pods and gives
// the count back.
func TestReplicationControllerQuota(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn := c.Dial(t, "", client.Options{})
	var err error
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const ns = "rcquota"
	if err := conn.EnsureNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	hard := corev1.ResourceList{"pods": resource.MustParse("2"), "replicationcontrollers": resource.MustParse("1")}
	if _, err := cs.ResourceQuotas.Create(ctx, &corev1.ResourceQuota{ObjectMeta: metav1.ObjectMeta{Name: "q", Namespace: ns},
		Spec: corev1.ResourceQuotaSpec{Hard: hard}}); err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.LeaderElect, cfg.Logger = false, hclog.NewNullLogger()
	mctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); Run(mctx, conn, cfg) }()
	defer func() { stop(); <-done }()

	used := func(name corev1.ResourceName) (int64, bool, error) {
		q, err := cs.ResourceQuotas.Get(ctx, ns, "q")
		if err != nil {
			return 0, false, err
		}
		n, ok := q.Status.Used[name]
		return n.Value(), ok, nil
	}
	waitfor.ConditionErr(t, time.Minute, "the quota controller to sync the quota", func() (bool, error) {
		n, ok, err := used("replicationcontrollers")
		return ok && n == 0, err
	})

	lbl := map[string]string{"name": "condition-test"}
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "condition-test", Namespace: ns},
		Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](3), Selector: lbl,
			Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
	if _, err := cs.ReplicationControllers.Create(ctx, rc); err != nil {
		t.Fatal(err)
	}
	if n, _, err := used("replicationcontrollers"); err != nil || n != 1 {
		t.Errorf("replicationcontrollers used %d (%v), want 1", n, err)
	}
	second := rc.DeepCopy()
	second.Name = "second"
	_, err = cs.ReplicationControllers.Create(ctx, second)
	if want := "exceeded quota: q, requested: replicationcontrollers=1, used: replicationcontrollers=1, limited: replicationcontrollers=1"; err == nil ||
		!strings.Contains(err.Error(), want) {
		t.Errorf("a second ReplicationController: %v, want %q", err, want)
	}

	failure := func() (*corev1.ReplicationControllerCondition, error) {
		cur, err := cs.ReplicationControllers.Get(ctx, ns, rc.Name)
		if err != nil {
			return nil, err
		}
		for i, c := range cur.Status.Conditions {
			if c.Type == corev1.ReplicationControllerReplicaFailure {
				return &cur.Status.Conditions[i], nil
			}
		}
		return nil, nil
	}
	waitfor.ConditionErr(t, time.Minute, "the ReplicaFailure condition", func() (bool, error) {
		c, err := failure()
		return c != nil && c.Status == corev1.ConditionTrue && c.Reason == "FailedCreate" && strings.Contains(c.Message, "exceeded quota: q"), err
	})
	// The controller writes the status meanwhile: an update may lose to it.
	if err := client.RetryOnConflict(ctx, func() error {
		cur, err := cs.ReplicationControllers.Get(ctx, ns, rc.Name)
		if err != nil {
			return err
		}
		cur.Spec.Replicas = ptr.To[int32](2)
		_, err = cs.ReplicationControllers.Update(ctx, cur)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, time.Minute, "the condition gone once scaled to 2", func() (bool, error) {
		c, err := failure()
		return c == nil, err
	})

	if _, err := cs.ReplicationControllers.Delete(ctx, ns, rc.Name, client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, time.Minute, "its pods collected and the quota's counts given back", func() (bool, error) {
		pods, err := cs.Pods.List(ctx, ns, client.ListOptions{})
		if err != nil {
			return false, err
		}
		rcs, _, err := used("replicationcontrollers")
		return len(pods.Items) == 0 && rcs == 0, err
	})
}
