package scheduler

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

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// Integration tests: real API servers (test/apicluster), real informers and binds.

func dial(t testing.TB, addrs []string) *client.Clientset {
	t.Helper()
	conn, err := client.Dial(addrs, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return client.NewClientset(conn)
}

// testLogger sends logs to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// startScheduler runs a scheduler until the test ends.
func startScheduler(t testing.TB, cs *client.Clientset, seed uint64) *Scheduler {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Seed = seed
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: fmt.Sprintf("sched%d", seed), Output: testWriter{t}, Level: hclog.Info})
	s, err := New(cs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("scheduler run: %v", err)
		}
	})
	return s
}

// createNode creates a node, then writes its status (allocatable, Ready) as a kubelet
// would. Like createPod it may run on any goroutine: it reports failures with Errorf.
func createNode(t testing.TB, ctx context.Context, cs *client.Clientset, n *corev1.Node) {
	t.Helper()
	status := *n.Status.DeepCopy()
	created, err := cs.Nodes.Create(ctx, n)
	if err != nil {
		t.Errorf("create node %s: %v", n.Name, err)
		return
	}
	created.Status = status
	if _, err := cs.Nodes.UpdateStatus(ctx, created); err != nil {
		t.Errorf("update status of node %s: %v", n.Name, err)
	}
}

func createPod(t testing.TB, ctx context.Context, cs *client.Clientset, p *corev1.Pod) {
	t.Helper()
	p = p.DeepCopy()
	p.UID, p.CreationTimestamp, p.Status = "", metav1.Time{}, corev1.PodStatus{}
	if _, err := cs.Pods.Create(ctx, p); err != nil {
		t.Errorf("create pod %s: %v", p.Name, err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func listPods(t testing.TB, ctx context.Context, cs *client.Clientset) []*corev1.Pod {
	t.Helper()
	l, err := cs.Pods.List(ctx, "", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return l.Items
}

func scheduledCondition(p *corev1.Pod) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == corev1.PodScheduled {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

func unschedulableMessage(p *corev1.Pod) string {
	if c := scheduledCondition(p); c != nil && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
		return c.Message
	}
	return ""
}

// scheduledEvents counts Scheduled events per pod uid.
func scheduledEvents(t testing.TB, ctx context.Context, cs *client.Clientset) map[string]int {
	t.Helper()
	l, err := cs.Events.List(ctx, "", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, e := range l.Items {
		if e.Reason == "Scheduled" {
			out[string(e.InvolvedObject.UID)] += int(e.Count)
		}
	}
	return out
}

func TestResourcePackingNeverOvercommits(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	cs := dial(t, c.Addrs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	// Two nodes of 2 cpu hold eight pods of 500m; two of ten cannot fit.
	for i := 0; i < 2; i++ {
		createNode(t, ctx, cs, makeNode(fmt.Sprintf("n%d", i), "2", "8Gi"))
	}
	startScheduler(t, cs, 1)
	var wg sync.WaitGroup
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			createPod(t, ctx, cs, makePod(fmt.Sprintf("p%d", i), "500m", "128Mi"))
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	waitfor.Condition(t, time.Minute, "8 pods bound and 2 unschedulable", func() (bool, string) {
		bound, unsched := 0, 0
		for _, p := range listPods(t, ctx, cs) {
			if p.Spec.NodeName != "" {
				bound++
			} else if strings.Contains(unschedulableMessage(p), "Insufficient cpu") {
				unsched++
			}
		}
		return bound == 8 && unsched == 2, fmt.Sprintf("%d bound, %d unschedulable", bound, unsched)
	})
	perNode := map[string]int64{}
	for _, p := range listPods(t, ctx, cs) {
		if n := p.Spec.NodeName; n != "" {
			perNode[n] += p.Spec.Containers[0].Resources.Requests.Cpu().MilliValue()
		} else if msg := unschedulableMessage(p); msg != "0/2 nodes are available: 2 Insufficient cpu." {
			t.Errorf("pod %s: message %q", p.Name, msg)
		}
	}
	for n, cpu := range perNode {
		if cpu > 2000 {
			t.Errorf("node %s over-committed: %dm of 2000m", n, cpu)
		}
	}
	waitfor.Condition(t, time.Minute, "8 Scheduled events", func() (bool, string) {
		ev := scheduledEvents(t, ctx, cs)
		return len(ev) == 8, fmt.Sprint(ev)
	})
}

func TestTaintsAndNodeSelector(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	cs := dial(t, c.Addrs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createNode(t, ctx, cs, makeNode("tainted", "8", "8Gi", withLabel("pool", "gpu"), withTaint("dedicated", "gpu", "NoSchedule")))
	createNode(t, ctx, cs, makeNode("ssd", "8", "8Gi", withLabel("disk", "ssd")))
	createNode(t, ctx, cs, makeNode("plain", "8", "8Gi"))
	startScheduler(t, cs, 2)

	want := map[string]string{} // pod -> node, "" for unschedulable
	for i := 0; i < 6; i++ {
		createPod(t, ctx, cs, makePod(fmt.Sprintf("any%d", i), "100m", ""))
		want[fmt.Sprintf("any%d", i)] = "!tainted"
	}
	createPod(t, ctx, cs, makePod("wants-ssd", "100m", "", withSelector("disk", "ssd")))
	want["wants-ssd"] = "ssd"
	createPod(t, ctx, cs, makePod("gpu-tolerant", "100m", "", withSelector("pool", "gpu"), withToleration("dedicated", "Equal", "gpu", "NoSchedule")))
	want["gpu-tolerant"] = "tainted"
	createPod(t, ctx, cs, makePod("gpu-intolerant", "100m", "", withSelector("pool", "gpu")))
	want["gpu-intolerant"] = ""

	const msg = "0/3 nodes are available: 1 node(s) had untolerated taint {dedicated: gpu}, 2 node(s) didn't match Pod's node affinity/selector."
	waitfor.Condition(t, time.Minute, "placements", func() (bool, string) {
		var wrong []string
		for _, p := range listPods(t, ctx, cs) {
			name, node := p.Name, p.Spec.NodeName
			w := want[name]
			switch {
			case w == "" && unschedulableMessage(p) == msg:
			case w == "!tainted" && node != "" && node != "tainted":
			case w != "" && w == node:
			default:
				wrong = append(wrong, fmt.Sprintf("%s on %q (%q)", name, node, unschedulableMessage(p)))
			}
		}
		return len(wrong) == 0, strings.Join(wrong, "; ")
	})
}

func TestUnschedulablePodBoundWhenNodeAdded(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	cs := dial(t, c.Addrs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createNode(t, ctx, cs, makeNode("small", "1", "1Gi"))
	startScheduler(t, cs, 3)
	createPod(t, ctx, cs, makePod("big", "2", "2Gi"))
	waitfor.Condition(t, time.Minute, "pod unschedulable", func() (bool, string) {
		p, err := cs.Pods.Get(ctx, "default", "big")
		if err != nil {
			return false, err.Error()
		}
		m := unschedulableMessage(p)
		return m == "0/1 nodes are available: 1 Insufficient cpu, 1 Insufficient memory.", m
	})
	createNode(t, ctx, cs, makeNode("large", "4", "4Gi"))
	waitfor.Condition(t, time.Minute, "pod bound to the new node", func() (bool, string) {
		p, err := cs.Pods.Get(ctx, "default", "big")
		if err != nil {
			return false, err.Error()
		}
		c := scheduledCondition(p)
		return p.Spec.NodeName == "large" && c != nil && c.Status == corev1.ConditionTrue, p.Spec.NodeName
	})
}

func TestTwoSchedulersBindEachPodOnce(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	cs := dial(t, c.Addrs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < 3; i++ {
		createNode(t, ctx, cs, makeNode(fmt.Sprintf("n%d", i), "64", "64Gi"))
	}

	// Watch every pod change: a nodeName, once set, must never change.
	var mu sync.Mutex
	var moved []string
	inf := cache.NewInformer(cs.Pods, "", client.ListOptions{}, nil)
	inf.AddHandler(cache.Handler[*corev1.Pod]{OnUpdate: func(old, p *corev1.Pod) {
		if o := old.Spec.NodeName; o != "" && o != p.Spec.NodeName {
			mu.Lock()
			moved = append(moved, fmt.Sprintf("%s: %s -> %s", cache.Key(p), o, p.Spec.NodeName))
			mu.Unlock()
		}
	}})
	ictx, icancel := context.WithCancel(ctx)
	idone := make(chan struct{})
	go func() { defer close(idone); inf.Run(ictx) }()
	defer func() { icancel(); <-idone }()
	cache.WaitForSync(ctx, inf)

	startScheduler(t, cs, 11)
	startScheduler(t, cs, 12)
	const n = 60
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			createPod(t, ctx, cs, makePod(fmt.Sprintf("p%d", i), "100m", ""))
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	waitfor.Condition(t, time.Minute, "every pod bound", func() (bool, string) {
		bound := 0
		for _, p := range listPods(t, ctx, cs) {
			if p.Spec.NodeName != "" {
				bound++
			}
		}
		return bound == n, fmt.Sprintf("%d of %d bound", bound, n)
	})
	uids := map[string]bool{}
	for _, p := range listPods(t, ctx, cs) {
		uids[string(p.UID)] = true
	}
	waitfor.Condition(t, time.Minute, "a Scheduled event per pod", func() (bool, string) {
		ev := scheduledEvents(t, ctx, cs)
		return len(ev) == n, fmt.Sprintf("%d pods with events", len(ev))
	})
	for uid, count := range scheduledEvents(t, ctx, cs) {
		if !uids[uid] || count != 1 {
			t.Errorf("pod %s: %d Scheduled events", uid, count)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if len(moved) > 0 {
		t.Fatalf("pods moved between nodes: %v", moved)
	}
}

// TestFinishedPodLeavesTheCache: as Kubernetes' scheduler, the scheduler watches no
// finished pod. A pod that succeeds leaves its cache (its informer's lister and the
// node's requests): the pod waiting for its room is bound, and the writes after the
// finish (a Job releasing its finalizer) do not reach the scheduler.
func TestFinishedPodLeavesTheCache(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := dial(t, c.Addrs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	createNode(t, ctx, cs, makeNode("only", "1", "1Gi"))
	s := startScheduler(t, cs, 5)
	createPod(t, ctx, cs, makePod("first", "1", "512Mi"))
	waitfor.Condition(t, time.Minute, "first bound and cached", func() (bool, string) {
		p, ok := s.lookup("default", "first")
		return ok && p.Spec.NodeName == "only", fmt.Sprint(ok)
	})
	createPod(t, ctx, cs, makePod("second", "1", "512Mi"))
	waitfor.Condition(t, time.Minute, "second unschedulable", func() (bool, string) {
		p, err := cs.Pods.Get(ctx, "default", "second")
		if err != nil {
			return false, err.Error()
		}
		return unschedulableMessage(p) != "", p.Spec.NodeName
	})
	first, err := cs.Pods.Get(ctx, "default", "first")
	if err != nil {
		t.Fatal(err)
	}
	first.Status.Phase = corev1.PodSucceeded
	if _, err := cs.Pods.UpdateStatus(ctx, first); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, time.Minute, "second bound in first's room", func() (bool, string) {
		p, err := cs.Pods.Get(ctx, "default", "second")
		if err != nil {
			return false, err.Error()
		}
		return p.Spec.NodeName == "only", p.Spec.NodeName
	})
	if _, ok := s.lookup("default", "first"); ok {
		t.Error("the scheduler's cache holds the succeeded pod first")
	}
}

// TestSharedFactoryOnePodInformer: a scheduler reading a factory it shares with the
// controllers (skiff up) uses the factory's informer of every pod, not a second watch
// of the unfinished ones.
func TestSharedFactoryOnePodInformer(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := dial(t, c.Addrs())
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	shared := cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{})
	cfg := DefaultConfig()
	cfg.Informers = f
	s, err := New(cs, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if s.podInformer != shared {
		t.Error("the scheduler made a pod informer of its own on the shared factory")
	}
}
