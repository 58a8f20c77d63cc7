package nodelifecycle

import (
	"context"
	"fmt"
	"maps"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func TestEvictAfter(t *testing.T) {
	pod := func(tols ...corev1.Toleration) *corev1.Pod {
		return &corev1.Pod{Spec: corev1.PodSpec{Tolerations: tols}}
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want time.Duration
		ok   bool
	}{
		{"no toleration: default", pod(), 300 * time.Second, true},
		{"own seconds", pod(corev1.Toleration{Key: UnreachableTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](5)}), 5 * time.Second, true},
		{"forever", pod(corev1.Toleration{Key: UnreachableTaint, Operator: corev1.TolerationOpExists}), 0, false},
		{"tolerates everything", pod(corev1.Toleration{Operator: corev1.TolerationOpExists}), 0, false},
		{"other taint", pod(corev1.Toleration{Key: "dedicated", Operator: corev1.TolerationOpExists, TolerationSeconds: ptr.To[int64](1)}), 300 * time.Second, true},
		{"NoSchedule only", pod(corev1.Toleration{Key: UnreachableTaint, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}), 300 * time.Second, true},
		// The unreachable taint has no value: Equal tolerates it only with none (Kubernetes' matching).
		{"equal, no value", pod(corev1.Toleration{Key: UnreachableTaint, Operator: corev1.TolerationOpEqual, TolerationSeconds: ptr.To[int64](7)}), 7 * time.Second, true},
		{"equal, another value", pod(corev1.Toleration{Key: UnreachableTaint, Operator: corev1.TolerationOpEqual, Value: "x", TolerationSeconds: ptr.To[int64](7)}), 300 * time.Second, true},
	} {
		got, ok := EvictAfter(tc.pod, 300)
		if got != tc.want || ok != tc.ok {
			t.Errorf("%s: %v %v, want %v %v", tc.name, got, ok, tc.want, tc.ok)
		}
	}
}

type harness struct {
	cs  *client.Clientset
	ctx context.Context
}

func start(t *testing.T) harness {
	conn := apicluster.Start(t, 1, apicluster.Options{}).Dial(t, "", client.Options{})
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	// The API server creates the lease namespace itself; make sure it is there.
	if _, err := cs.Namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: LeaseNamespace}}); err != nil && !client.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	rec := record.New(cs.Events, record.Config{Component: "node-controller"})
	cfg := DefaultConfig()
	cfg.GracePeriod, cfg.DefaultTolerationSeconds, cfg.MonitorPeriod = 2*time.Second, 1, 100*time.Millisecond
	ctrl, err := New(cs, f, rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{}, 2)
	go func() { rec.Run(ctx); done <- struct{}{} }()
	go func() { ctrl.Run(ctx); done <- struct{}{} }()
	t.Cleanup(func() { cancel(); f.Wait(); <-done; <-done })
	return harness{cs, ctx}
}

func (h harness) node(t *testing.T, name string) {
	n, err := h.cs.Nodes.Create(h.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil {
		t.Fatal(err)
	}
	n.Status = corev1.NodeStatus{Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.Now()}}}
	if _, err := h.cs.Nodes.UpdateStatus(h.ctx, n); err != nil {
		t.Fatal(err)
	}
	h.renew(t, name)
}

func (h harness) renew(t *testing.T, name string) {
	l, err := h.cs.Leases.Get(h.ctx, LeaseNamespace, name)
	if client.IsNotFound(err) {
		_, err = h.cs.Leases.Create(h.ctx, &coordinationv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: LeaseNamespace},
			Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(name), RenewTime: ptr.To(metav1.NowMicro())}})
	} else if err == nil {
		l.Spec.RenewTime = ptr.To(metav1.NowMicro())
		_, err = h.cs.Leases.Update(h.ctx, l)
	}
	if err != nil && h.ctx.Err() == nil {
		t.Error(err)
	}
}

func (h harness) boundPod(t *testing.T, name, node string) {
	if _, err := h.cs.Pods.Create(h.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.cs.Conn.Bind(h.ctx, "default", name, "", node); err != nil {
		t.Fatal(err)
	}
}

func TestUnreachableNodeIsTaintedAndEvicted(t *testing.T) {
	h := start(t)
	h.node(t, "alive")
	h.node(t, "dead")
	h.boundPod(t, "on-dead", "dead")
	h.boundPod(t, "on-alive", "alive")
	// "alive" keeps renewing; "dead" stops.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		tk := time.NewTicker(300 * time.Millisecond)
		defer tk.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tk.C:
				h.renew(t, "alive")
			}
		}
	}()
	waitfor.ConditionErr(t, 30*time.Second, "dead node tainted and Unknown", func() (bool, error) {
		n, err := h.cs.Nodes.Get(h.ctx, "", "dead")
		return err == nil && readyStatus(n) == corev1.ConditionUnknown && unreachableTaint(n) != nil, err
	})
	waitfor.ConditionErr(t, 30*time.Second, "its pod evicted", func() (bool, error) {
		p, err := h.cs.Pods.Get(h.ctx, "default", "on-dead")
		return err == nil && p.DeletionTimestamp != nil, err
	})
	n, _ := h.cs.Nodes.Get(h.ctx, "", "alive")
	p, _ := h.cs.Pods.Get(h.ctx, "default", "on-alive")
	if readyStatus(n) != corev1.ConditionTrue || unreachableTaint(n) != nil || p.DeletionTimestamp != nil {
		t.Fatalf("the live node or its pod was touched: %v %v", n, p.ObjectMeta)
	}
	// The dead node comes back: the taint goes.
	h.renew(t, "dead")
	n, _ = h.cs.Nodes.Get(h.ctx, "", "dead")
	n.Status.Conditions[0].Status = corev1.ConditionTrue
	if _, err := h.cs.Nodes.UpdateStatus(h.ctx, n); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "taint removed", func() (bool, error) {
		n, err := h.cs.Nodes.Get(h.ctx, "", "dead")
		return err == nil && unreachableTaint(n) == nil, err
	})
}

func TestFullDisruptionEvictsNothing(t *testing.T) {
	h := start(t)
	h.node(t, "a")
	h.node(t, "b")
	h.boundPod(t, "p", "a")
	waitfor.ConditionErr(t, 30*time.Second, "both Unknown", func() (bool, error) {
		l, err := h.cs.Nodes.List(h.ctx, "", client.ListOptions{})
		if err != nil {
			return false, err
		}
		for _, n := range l.Items {
			if readyStatus(n) != corev1.ConditionUnknown {
				return false, nil
			}
		}
		return true, nil
	})
	// Well past grace + toleration: nothing tainted, nothing evicted.
	deadline := time.Now().Add(2 * time.Second)
	for time.Now().Before(deadline) {
		p, err := h.cs.Pods.Get(h.ctx, "default", "p")
		if err != nil || p.DeletionTimestamp != nil {
			t.Fatalf("pod evicted during full disruption: %v", err)
		}
		n, _ := h.cs.Nodes.Get(h.ctx, "", "a")
		if unreachableTaint(n) != nil {
			t.Fatal("node tainted during full disruption")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestLastHeartbeat(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 7, 0, 0, 0, time.UTC)
	node := func(heartbeat time.Time) *corev1.Node {
		n := &corev1.Node{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(t0.Add(-time.Hour))}}
		if !heartbeat.IsZero() {
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(heartbeat)}}
		}
		return n
	}
	lease := func(renew time.Time) *coordinationv1.Lease {
		return &coordinationv1.Lease{Spec: coordinationv1.LeaseSpec{RenewTime: ptr.To(metav1.NewMicroTime(renew))}}
	}
	for _, tc := range []struct {
		name string
		n    *corev1.Node
		l    *coordinationv1.Lease
		want time.Time
	}{
		{"lease newer", node(t0.Add(-time.Minute)), lease(t0), t0},
		// The kubelet wrote its status back to Ready while its Lease lagged: alive.
		{"status newer than the lease", node(t0), lease(t0.Add(-time.Minute)), t0},
		{"no lease", node(t0), nil, t0},
		{"lease, no status", node(time.Time{}), lease(t0), t0},
		{"neither: creation", node(time.Time{}), nil, t0.Add(-time.Hour)},
	} {
		if got := lastHeartbeat(tc.n, tc.l); !got.Equal(tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestTaintRate(t *testing.T) {
	c := &Controller{cfg: DefaultConfig()}
	for _, tc := range []struct {
		name string
		z    zoneHealth
		want float64
	}{
		{"healthy", zoneHealth{nodes: 100}, 0.1},
		{"a few down", zoneHealth{nodes: 100, notReady: 54}, 0.1},
		{"over the threshold, large", zoneHealth{nodes: 100, notReady: 55}, 0.01},
		{"over the threshold, small", zoneHealth{nodes: 50, notReady: 40}, 0},
		{"two of three: not more than two", zoneHealth{nodes: 3, notReady: 2}, 0.1},
		{"three of four, small", zoneHealth{nodes: 4, notReady: 3}, 0},
		// A zone that lost every node, while others did not, goes on at the healthy rate.
		{"fully disrupted", zoneHealth{nodes: 100, notReady: 100}, 0.1},
	} {
		if got := c.taintRate(tc.z); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestTaintsPacedByZone: unreachable nodes are tainted at the rate of their zone's
// state, as Kubernetes' node lifecycle controller taints them, and when every node is
// down the taints go. Before, every unreachable node was tainted on the pass that
// found it.
func TestTaintsPacedByZone(t *testing.T) {
	cs := client.NewClientset(apicluster.Start(t, 1, apicluster.Options{}).Dial(t, "", client.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	now := time.Now().Truncate(time.Second)
	clock := now
	cfg := DefaultConfig()
	cfg.GracePeriod, cfg.Now = 40*time.Second, func() time.Time { return clock }
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	rec := record.New(cs.Events, record.Config{Component: "node-controller"})
	ctrl, err := New(cs, f, rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	defer f.Wait()
	defer cancel()

	// Zone a: 10 nodes, 2 down (normal). Zone b: 4 nodes, 3 down (partial disruption of
	// a small zone). Zone c: 2 nodes, both down (fully disrupted, alone).
	zones := []struct {
		name      string
		nodes, dn int
	}{{"a", 10, 2}, {"b", 4, 3}, {"c", 2, 2}}
	for _, z := range zones {
		for i := range z.nodes {
			heartbeat := now
			if i < z.dn {
				heartbeat = now.Add(-time.Minute)
			}
			n, err := cs.Nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", z.name, i),
				Labels: map[string]string{corev1.LabelTopologyZone: z.name}}})
			if err != nil {
				t.Fatal(err)
			}
			n.Status.Conditions = []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, LastHeartbeatTime: metav1.NewTime(heartbeat)}}
			if _, err := cs.Nodes.UpdateStatus(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
	}
	// pass runs Monitor once the controller's caches hold what the API has, and
	// returns the tainted nodes of each zone.
	pass := func() map[string]int {
		t.Helper()
		waitfor.ConditionErr(t, 30*time.Second, "the node cache up to date", func() (bool, error) {
			l, err := cs.Nodes.List(ctx, "", client.ListOptions{})
			if err != nil || !cache.WaitForSync(ctx, ctrl.synced...) {
				return false, err
			}
			for _, n := range l.Items {
				if got, ok := ctrl.nodes.Get("", n.Name); !ok || got.ResourceVersion != n.ResourceVersion {
					return false, nil
				}
			}
			return true, nil
		})
		if err := ctrl.Monitor(ctx); err != nil {
			t.Fatal(err)
		}
		l, err := cs.Nodes.List(ctx, "", client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		tainted := map[string]int{}
		for _, n := range l.Items {
			if unreachableTaint(n) != nil {
				tainted[n.Labels[corev1.LabelTopologyZone]]++
			}
		}
		return tainted
	}
	for _, step := range []struct {
		after time.Duration
		want  map[string]int
	}{
		{0, map[string]int{"a": 1, "c": 1}},                // one of each zone with a token
		{time.Second, map[string]int{"a": 1, "c": 1}},      // the next in 10 s (0.1 nodes/s)
		{10 * time.Second, map[string]int{"a": 2, "c": 2}}, // b, small and mostly down: never
	} {
		clock = clock.Add(step.after)
		if got := pass(); !maps.Equal(got, step.want) {
			t.Fatalf("%v on: tainted %v, want %v", clock.Sub(now), got, step.want)
		}
	}
	// Every node silent: full disruption, the taints removed.
	clock = clock.Add(time.Hour)
	if got := pass(); len(got) != 0 {
		t.Fatalf("every node down: tainted %v, want none", got)
	}
}

// A node whose kubelet has not posted a Ready condition yet has the startup grace period
// (1m) from its creation, not the 40 s of a node that was heard from, as in Kubernetes.
func TestStartupGracePeriod(t *testing.T) {
	cs := client.NewClientset(apicluster.Start(t, 1, apicluster.Options{}).Dial(t, "", client.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var clock time.Time
	cfg := DefaultConfig()
	cfg.Now = func() time.Time { return clock }
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	ctrl, err := New(cs, f, record.New(cs.Events, record.Config{Component: "node-controller"}), cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	defer f.Wait()
	defer cancel()
	n, err := cs.Nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "starting"}})
	if err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the node in the controller's cache", func() (bool, string) {
		_, ok := ctrl.nodes.Get("", n.Name)
		return ok && cache.WaitForSync(ctx, ctrl.synced...), "not cached yet"
	})
	for _, step := range []struct {
		after   time.Duration
		unknown bool
	}{
		{45 * time.Second, false}, // past GracePeriod, within StartupGracePeriod
		{61 * time.Second, true},
	} {
		clock = n.CreationTimestamp.Add(step.after)
		if err := ctrl.Monitor(ctx); err != nil {
			t.Fatal(err)
		}
		got, err := cs.Nodes.Get(ctx, "", n.Name)
		if err != nil {
			t.Fatal(err)
		}
		if unknown := readyStatus(got) == corev1.ConditionUnknown; unknown != step.unknown {
			t.Errorf("%v after creation: Ready %q, want Unknown %v", step.after, readyStatus(got), step.unknown)
		}
	}
}
