package podgc

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/controllers/nodelifecycle"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/sim"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func TestTerminatedOverThreshold(t *testing.T) {
	at := func(s int) metav1.Time { return metav1.NewTime(time.Date(2026, 12, 5, 10, 0, s, 0, time.UTC)) }
	pod := func(name string, created metav1.Time, phase corev1.PodPhase, reason string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, CreationTimestamp: created}, Status: corev1.PodStatus{Phase: phase, Reason: reason}}
	}
	pods := []*corev1.Pod{
		pod("new", at(9), corev1.PodSucceeded, ""),
		pod("running", at(0), corev1.PodRunning, ""),
		pod("old-b", at(1), corev1.PodFailed, ""),
		pod("old-a", at(1), corev1.PodSucceeded, ""),
		pod("evicted", at(8), corev1.PodFailed, "Evicted"),
		pod("mid", at(5), corev1.PodSucceeded, ""),
	}
	names := func(ps []*corev1.Pod) string {
		var out []string
		for _, p := range ps {
			out = append(out, p.Name)
		}
		return strings.Join(out, ",")
	}
	for _, tc := range []struct {
		threshold int
		want      string
	}{
		{5, ""}, {9, ""}, {4, "evicted"}, {2, "evicted,old-a,old-b"}, {0, "evicted,old-a,old-b,mid,new"},
	} {
		if got := names(TerminatedOverThreshold(pods, tc.threshold)); got != tc.want {
			t.Errorf("threshold %d: deleted %q, want %q", tc.threshold, got, tc.want)
		}
	}
}

type harness struct {
	cs  *client.Clientset
	ctx context.Context
}

// start runs an API server, the collector (threshold 3, quick passes, a short
// quarantine) and the node lifecycle controller (short grace and toleration).
func start(t *testing.T) harness {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	cfg := DefaultConfig()
	cfg.TerminatedPodThreshold, cfg.Period, cfg.Quarantine = 3, 100*time.Millisecond, 300*time.Millisecond
	gc, err := New(cs, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	rec := record.New(cs.Events, record.Config{Component: "controller-manager"})
	ncfg := nodelifecycle.DefaultConfig()
	ncfg.GracePeriod, ncfg.DefaultTolerationSeconds, ncfg.MonitorPeriod = 2*time.Second, 1, 100*time.Millisecond
	nl, err := nodelifecycle.New(cs, f, rec, ncfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { gc.Run(ctx) })
	wg.Go(func() { nl.Run(ctx) })
	wg.Go(func() { rec.Run(ctx) })
	t.Cleanup(func() { cancel(); f.Wait(); wg.Wait(); conn.Close() })
	return harness{cs, ctx}
}

// kubelet runs a kubelet for node on the simulated runtime until the returned stop.
func (h harness) kubelet(t *testing.T, node string) (stop func()) {
	cfg := kubelet.DefaultConfig()
	cfg.NodeName, cfg.NodeIP, cfg.RelistPeriod = node, "127.0.0.1", 50*time.Millisecond
	cfg.RootDir = t.TempDir() // not the host's /var/lib/skiff/kubelet
	cfg.LeaseRenewInterval = 200 * time.Millisecond
	k, err := kubelet.New(h.cs, sim.New(sim.Config{}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	done := make(chan struct{})
	go func() { defer close(done); k.Run(ctx) }()
	stop = func() { cancel(); <-done }
	t.Cleanup(stop)
	return stop
}

// pod creates a pod, bound to node unless it is "", in phase (set as a kubelet would).
func (h harness) pod(t *testing.T, name, node string, phase corev1.PodPhase, mut func(*corev1.Pod)) {
	t.Helper()
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox", Command: []string{"sleep", "3600"}}}}}
	if mut != nil {
		mut(p)
	}
	p, err := h.cs.Pods.Create(h.ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if node != "" {
		if p, err = h.cs.Conn.Bind(h.ctx, "default", name, "", node); err != nil {
			t.Fatal(err)
		}
	}
	if phase != "" && phase != corev1.PodPending {
		p.Status.Phase = phase
		if _, err := h.cs.Pods.UpdateStatus(h.ctx, p); err != nil {
			t.Fatal(err)
		}
	}
}

func (h harness) gone(t *testing.T, what string, names ...string) {
	t.Helper()
	waitfor.Condition(t, time.Minute, what, func() (bool, string) {
		var left []string
		for _, n := range names {
			if _, err := h.cs.Pods.Get(h.ctx, "default", n); !client.IsNotFound(err) {
				left = append(left, fmt.Sprintf("%s (%v)", n, err))
			}
		}
		return len(left) == 0, strings.Join(left, ", ") + " still there"
	})
}

// TestOrphanedPodsAreForceDeleted: a running pod bound to a node that does not exist is
// marked Failed, with DisruptionTarget DeletionByPodGC, and deleted at once.
func TestOrphanedPodsAreForceDeleted(t *testing.T) {
	h := start(t)
	w, err := h.cs.Pods.Watch(h.ctx, "default", client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	h.pod(t, "orphan", "ghost", corev1.PodRunning, nil)
	h.gone(t, "the orphan force-deleted", "orphan")
	var failed *corev1.Pod
	for failed == nil {
		evs, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Type == client.Modified && ev.Object.Status.Phase == corev1.PodFailed {
				failed = ev.Object
			}
		}
	}
	var cnd *corev1.PodCondition
	for i := range failed.Status.Conditions {
		if failed.Status.Conditions[i].Type == corev1.DisruptionTarget {
			cnd = &failed.Status.Conditions[i]
		}
	}
	if cnd == nil || cnd.Reason != "DeletionByPodGC" || cnd.Message != "PodGC: node no longer exists" {
		t.Fatalf("the orphan's last state: %+v", failed.Status)
	}
}

// TestPodsOfAnUnreachableNode: the node's kubelet stops; the node lifecycle controller
// marks its pod for deletion, which stays Terminating as no kubelet confirms it; once the
// node is deleted the pod is force-deleted.
func TestPodsOfAnUnreachableNode(t *testing.T) {
	h := start(t)
	stop := h.kubelet(t, "w1")
	h.kubelet(t, "w2") // a live node: with every node down nothing is evicted
	h.pod(t, "web", "", "", func(p *corev1.Pod) { p.Spec.NodeName = "w1" })
	waitfor.ConditionErr(t, time.Minute, "pod running on w1", func() (bool, error) {
		p, err := h.cs.Pods.Get(h.ctx, "default", "web")
		return err == nil && p.Status.Phase == corev1.PodRunning, err
	})
	stop()
	waitfor.ConditionErr(t, time.Minute, "pod marked for deletion by the node lifecycle controller", func() (bool, error) {
		p, err := h.cs.Pods.Get(h.ctx, "default", "web")
		return err == nil && p.DeletionTimestamp != nil, err
	})
	// Its grace period is 30s: it is still there when the node goes.
	p, err := h.cs.Pods.Get(h.ctx, "default", "web")
	if err != nil || ptr.Deref(p.DeletionGracePeriodSeconds, 0) != 30 {
		t.Fatalf("pod on the unreachable node: %v %v", p, err)
	}
	if _, err := h.cs.Nodes.Delete(h.ctx, "", "w1", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.gone(t, "the pod of the deleted node force-deleted", "web")
}

// TestTerminatingOnOutOfServiceNode: a pod being deleted on a node that is not ready and
// tainted out-of-service is force-deleted.
func TestTerminatingOnOutOfServiceNode(t *testing.T) {
	h := start(t)
	h.kubelet(t, "keep") // a live node: with every node down nothing is evicted
	if _, err := h.cs.Nodes.Create(h.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "oos"}, Spec: corev1.NodeSpec{
		Taints: []corev1.Taint{{Key: corev1.TaintNodeOutOfService, Value: "nodeshutdown", Effect: corev1.TaintEffectNoExecute}}}}); err != nil {
		t.Fatal(err)
	}
	h.pod(t, "stuck", "oos", corev1.PodRunning, nil)
	if _, err := h.cs.Pods.Delete(h.ctx, "default", "stuck", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	h.gone(t, "the terminating pod on the out-of-service node force-deleted", "stuck")
}

// TestUnscheduledTerminating: a pod being deleted that was never scheduled is marked
// Failed and force-deleted (a finalizer holds this one until it is removed).
func TestUnscheduledTerminating(t *testing.T) {
	h := start(t)
	h.pod(t, "held", "", "", func(p *corev1.Pod) { p.Finalizers = []string{"example.com/hold"} })
	if _, err := h.cs.Pods.Delete(h.ctx, "default", "held", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, time.Minute, "the unscheduled terminating pod marked Failed", func() (bool, error) {
		p, err := h.cs.Pods.Get(h.ctx, "default", "held")
		return err == nil && p.Status.Phase == corev1.PodFailed && p.DeletionTimestamp != nil, err
	})
	p, err := h.cs.Pods.Get(h.ctx, "default", "held")
	if err != nil {
		t.Fatal(err)
	}
	p.Finalizers = nil
	if _, err := h.cs.Pods.Update(h.ctx, p); err != nil {
		t.Fatal(err)
	}
	h.gone(t, "held gone once its finalizer is", "held")
}

// TestTerminatedOverThresholdCollected: one pass deletes the finished pods above the
// threshold, the evicted one first and then the oldest; running pods are not counted.
func TestTerminatedOverThresholdCollected(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	h := harness{client.NewClientset(conn), testContext(t)}
	// Names sort in creation order, so that creation times of one second tie the same way.
	for _, n := range []string{"a-old", "b-mid", "c-new"} {
		h.pod(t, n, "", corev1.PodSucceeded, nil)
	}
	h.pod(t, "d-running", "", corev1.PodRunning, nil)
	h.pod(t, "z-evicted", "", "", nil)
	ev, err := h.cs.Pods.Get(h.ctx, "default", "z-evicted")
	if err != nil {
		t.Fatal(err)
	}
	ev.Status.Phase, ev.Status.Reason = corev1.PodFailed, "Evicted"
	if _, err := h.cs.Pods.UpdateStatus(h.ctx, ev); err != nil {
		t.Fatal(err)
	}

	f := cache.NewFactory(h.cs, hclog.NewNullLogger())
	cfg := DefaultConfig()
	cfg.TerminatedPodThreshold = 2
	gc, err := New(h.cs, f, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(h.ctx)
	f.Start(ctx)
	defer func() { cancel(); f.Wait() }()
	if !f.WaitForSync(ctx) {
		t.Fatal("caches did not sync")
	}
	if err := gc.GC(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := h.cs.Pods.List(ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var left []string
	for _, p := range l.Items {
		left = append(left, p.Name)
	}
	if got := strings.Join(left, ","); got != "b-mid,c-new,d-running" {
		t.Fatalf("pods left: %s, want b-mid,c-new,d-running", got)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}
