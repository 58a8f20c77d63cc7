package scheduler

import (
	"context"
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
	"github.com/skiffhq/skiff/test/waitfor"
)

// The scheduler's benchmarks print `BENCH <name> <value> <unit>` lines (see
// INTERFACE.md) and run once each: `go test -run '^$' -bench Sched -benchtime 1x`.

var bench = benchfig.Report

// fakeBinder binds in memory and reports each binding to the cache, as the watch would.
type fakeBinder struct {
	cache *Cache
	n     atomic.Int64
	want  int64
	done  chan struct{}
}

func (b *fakeBinder) Bind(_ context.Context, pod *corev1.Pod, node string) error {
	b.cache.SetPod(&corev1.Pod{ObjectMeta: pod.ObjectMeta,
		Spec: corev1.PodSpec{Containers: pod.Spec.Containers, NodeName: node}, Status: pod.Status})
	if b.n.Add(1) == b.want {
		close(b.done)
	}
	return nil
}

type nopRecorder struct{}

func (nopRecorder) Eventf(kinds.Object, string, string, string, ...any) {}

// benchPods makes n pending pods in groups of 50 owned by one ReplicaSet each, labelled
// app=rsN as a Deployment's pods are.
func benchPods(n int) []*corev1.Pod {
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		rs := fmt.Sprintf("rs%d", i/50)
		pods[i] = makePod(fmt.Sprintf("p%d", i), "100m", "128Mi", ownedBy(rs), createdAt(i), withPodLabel("app", rs))
	}
	return pods
}

// benchNodes makes n nodes of 32 cpu and 128Gi, labelled with their host name and one of
// ten zones, as kubelets label them.
func benchNodes(n int) []*corev1.Node {
	nodes := make([]*corev1.Node, n)
	for i := range nodes {
		name := fmt.Sprintf("node-%d", i)
		nodes[i] = makeNode(name, "32", "128Gi", withLabel(corev1.LabelHostname, name),
			withLabel(corev1.LabelTopologyZone, fmt.Sprintf("zone-%d", i%10)))
	}
	return nodes
}

// BenchmarkSched5000n10000p: 10,000 pods through the queue, the algorithm and the
// cache's assumption, bound by an in-memory binder, on 5,000 nodes.
func BenchmarkSched5000n10000p(b *testing.B) {
	benchfig.Want(b, "sched_5000n_10000p")
	for i := 0; i < b.N; i++ {
		benchSched(b, "sched_5000n_10000p", benchNodes(5000), benchPods(10000))
	}
}

// BenchmarkSched5000n10000pAntiAffinity: the same, with half the pods (every other
// ReplicaSet's) required to keep away from their siblings, one per node, as a
// Deployment with podAntiAffinity on kubernetes.io/hostname asks.
func BenchmarkSched5000n10000pAntiAffinity(b *testing.B) {
	benchfig.Want(b, "sched_5000n_10000p_antiaffinity")
	for i := 0; i < b.N; i++ {
		pods := benchPods(10000)
		for j, p := range pods {
			if (j/50)%2 == 0 {
				withAntiAffinity(corev1.LabelHostname, "app", p.Labels["app"])(p)
			}
		}
		benchSched(b, "sched_5000n_10000p_antiaffinity", benchNodes(5000), pods)
	}
}

// benchSched runs pods through a scheduler over nodes and reports pods/s as figure.
func benchSched(b *testing.B, figure string, nodes []*corev1.Node, pods []*corev1.Pod) {
	cfg := DefaultConfig()
	cfg.Seed = 1
	s, err := newScheduler(cfg)
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range nodes {
		s.cache.AddNode(n)
	}
	fb := &fakeBinder{cache: s.cache, want: int64(len(pods)), done: make(chan struct{})}
	s.binder, s.events = fb, nopRecorder{}
	for _, p := range pods {
		s.queue.Add(p)
	}
	ctx, cancel := context.WithCancel(context.Background())
	loopDone := make(chan struct{})
	b.ResetTimer()
	start := time.Now()
	go func() {
		defer close(loopDone)
		s.loop(ctx)
	}()
	select {
	case <-fb.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("only %d of %d pods bound", fb.n.Load(), len(pods))
	}
	elapsed := time.Since(start)
	b.StopTimer()
	cancel()
	<-loopDone
	s.wg.Wait()
	if a, bo, u := s.queue.Lens(); a+bo+u != 0 {
		b.Fatalf("pods left in the queue: %d active, %d backing off, %d unschedulable", a, bo, u)
	}
	bench(figure, float64(len(pods))/elapsed.Seconds(), "pods/s")
}

// countingBinder counts the binds that succeeded.
type countingBinder struct {
	binder
	n    atomic.Int64
	want int64
	done chan struct{}
}

func (b *countingBinder) Bind(ctx context.Context, pod *corev1.Pod, node string) error {
	err := b.binder.Bind(ctx, pod, node)
	if err == nil && b.n.Add(1) == b.want {
		close(b.done)
	}
	return err
}

// parallel runs fn(0..n-1) on workers goroutines.
func parallel(workers, n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

func dialAs(b *testing.B, addrs []string, tc *tls.Config) *client.Clientset {
	conn, err := client.Dial(addrs, client.Options{TLS: tc})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })
	return client.NewClientset(conn)
}

// BenchmarkSchedE2E1000n10000p: a real three-member API server cluster with 1,000
// nodes; 10,000 pods are created in parallel, and the clock runs from the first create
// until the last pod is bound.
func BenchmarkSchedE2E1000n10000p(b *testing.B) {
	benchfig.Want(b, "sched_e2e_1000n_10000p")
	for i := 0; i < b.N; i++ {
		// As users run Skiff: TLS, the scheduler authenticated by its certificate and the
		// users creating nodes and pods as an administrator, the default limits.
		certs := apicluster.Certs(b)
		c := apicluster.Start(b, 3, apicluster.Options{HistorySize: 100_000, Certs: certs})
		// Clients talk to the leader, as the store's benchmarks do (and etcd's tool):
		// through a follower every write takes one more hop.
		// The scheduler and the users creating pods have connections of their own.
		leader := []string{c.Addr(c.Leader())}
		cs := dialAs(b, leader, apicluster.ClientTLS(b, certs, "scheduler"))
		users := dialAs(b, leader, apicluster.ClientTLS(b, certs, "admin"))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		const nodes, pods = 1000, 10000
		parallel(32, nodes, func(j int) {
			createNode(b, ctx, users, makeNode(fmt.Sprintf("node-%d", j), "32", "128Gi"))
		})
		if b.Failed() {
			b.FailNow()
		}
		cfg := DefaultConfig()
		cfg.Seed = 1
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "sched", Output: testWriter{b}, Level: hclog.Warn})
		s, err := New(cs, cfg)
		if err != nil {
			b.Fatal(err)
		}
		cb := &countingBinder{binder: s.binder, want: pods, done: make(chan struct{})}
		s.binder = cb
		runDone := make(chan error, 1)
		go func() { runDone <- s.Run(ctx) }()
		waitfor.Condition(b, time.Minute, "the scheduler to see every node", func() (bool, string) {
			return s.Cache().NumNodes() == nodes, fmt.Sprint(s.Cache().NumNodes())
		})
		all := benchPods(pods)
		b.ResetTimer()
		start := time.Now()
		created := make(chan time.Duration, 1)
		go func() {
			parallel(256, pods, func(j int) {
				p := all[j].DeepCopy()
				p.UID, p.CreationTimestamp, p.Status = "", metav1.Time{}, corev1.PodStatus{}
				if _, err := users.Pods.Create(ctx, p); err != nil {
					b.Errorf("create pod %s: %v", p.Name, err)
				}
			})
			created <- time.Since(start)
		}()
		var createdIn time.Duration
		select {
		case <-cb.done:
		case createdIn = <-created:
			if b.Failed() { // some creates failed: their pods will never be bound
				cancel()
				b.FailNow()
			}
			select {
			case <-cb.done:
			case <-ctx.Done():
			}
		case <-ctx.Done():
		}
		elapsed := time.Since(start)
		if createdIn == 0 {
			createdIn = <-created
		}
		if cb.n.Load() != pods {
			b.Fatalf("only %d of %d pods bound", cb.n.Load(), pods)
		}
		b.StopTimer()
		cancel()
		if err := <-runDone; err != nil {
			b.Error(err)
		}
		b.Logf("created %d pods in %v, all bound in %v", pods, createdIn, elapsed)
		bench("sched_e2e_1000n_10000p", pods/elapsed.Seconds(), "pods/s")
	}
}

// BenchmarkSchedBindBatches: 10,000 pods pending on 1,000 nodes, created a hundred at a
// time (CreateBatch, as the DaemonSet and Job controllers create theirs) before the
// scheduler starts, on a real three-member API server cluster as users run it; the
// clock runs from the first pod a watcher sees bound to the last, so that it times the
// bindings rather than the creates or the scheduler's first list, and the CPU the
// process used from the scheduler's start (all three members, the scheduler) is
// reported too. sched_bind_10000p binds in BindBatch calls as the scheduler does;
// _unbatched binds each pod with its own Bind call, many in flight, as it did before
// (BindBatchSize 1), to show what the batches save.
func BenchmarkSchedBindBatches(b *testing.B) {
	benchSchedBind(b, "sched_bind_10000p", DefaultConfig().BindBatchSize, DefaultConfig().BindCalls)
}
func BenchmarkSchedBindBatchesUnbatched(b *testing.B) {
	benchSchedBind(b, "sched_bind_10000p_unbatched", 1, DefaultConfig().MaxConcurrentBinds)
}

func benchSchedBind(b *testing.B, figure string, batch, calls int) {
	benchfig.Want(b, figure, figure+"_cpu")
	certs := apicluster.Certs(b)
	c := apicluster.Start(b, 3, apicluster.Options{HistorySize: 100_000, Certs: certs})
	leader := []string{c.Addr(c.Leader())}
	cs := dialAs(b, leader, apicluster.ClientTLS(b, certs, "scheduler"))
	users := dialAs(b, leader, apicluster.ClientTLS(b, certs, "admin"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	const nodes, pods = 1000, 10000
	parallel(32, nodes, func(j int) {
		createNode(b, ctx, users, makeNode(fmt.Sprintf("node-%d", j), "32", "128Gi"))
	})
	all := benchPods(pods)
	parallel(8, pods/client.MaxCreateBatch, func(j int) {
		batch := all[j*client.MaxCreateBatch : (j+1)*client.MaxCreateBatch]
		for _, p := range batch {
			p.UID, p.CreationTimestamp, p.Status = "", metav1.Time{}, corev1.PodStatus{}
		}
		_, errs := users.Pods.CreateEach(ctx, batch)
		for i, err := range errs {
			// A create whose outcome is unknown (on a loaded machine the members may
			// lose their leader meanwhile) is made again, as a controller would.
			for attempt := 0; err != nil && !client.IsAlreadyExists(err) && attempt < 5; attempt++ {
				_, err = users.Pods.Create(ctx, batch[i])
			}
			if err != nil && !client.IsAlreadyExists(err) {
				b.Errorf("create pod %s: %v", batch[i].Name, err)
			}
		}
	})
	if b.Failed() {
		b.FailNow()
	}
	// The pods are counted bound as a watcher sees them: a bind whose outcome the
	// scheduler did not learn (leadership lost while committing) may have taken.
	var mu sync.Mutex
	bound := map[string]bool{}
	var first time.Time
	allBound := make(chan struct{})
	note := func(p *corev1.Pod) {
		mu.Lock()
		defer mu.Unlock()
		if p.Spec.NodeName != "" && !bound[p.Name] {
			if len(bound) == 0 {
				first = time.Now()
			}
			if bound[p.Name] = true; len(bound) == pods {
				close(allBound)
			}
		}
	}
	inf := cache.NewInformer(users.Pods, "default", client.ListOptions{}, nil)
	inf.AddHandler(cache.Handler[*corev1.Pod]{OnAdd: note, OnUpdate: func(_, p *corev1.Pod) { note(p) }})
	ictx, istop := context.WithCancel(ctx)
	idone := make(chan struct{})
	go func() { defer close(idone); inf.Run(ictx) }()
	defer func() { istop(); <-idone }()
	if !cache.WaitForSync(ctx, inf) {
		b.Fatal("no sync")
	}
	cfg := DefaultConfig()
	cfg.Seed, cfg.BindBatchSize, cfg.BindCalls = 1, batch, calls
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "sched", Output: testWriter{b}, Level: hclog.Warn})
	s, err := New(cs, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	cpu := benchfig.StartCPU()
	sctx, stop := context.WithCancel(ctx)
	runDone := make(chan error, 1)
	go func() { runDone <- s.Run(sctx) }()
	defer func() {
		stop()
		if err := <-runDone; err != nil {
			b.Error(err)
		}
	}()
	select {
	case <-allBound:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		b.Fatalf("only %d of %d pods bound", len(bound), pods)
	}
	used := cpu()
	b.StopTimer()
	mu.Lock()
	elapsed := time.Since(first)
	mu.Unlock()
	bench(figure, pods/elapsed.Seconds(), "pods/s")
	bench(figure+"_cpu", used.Seconds(), "s")
}
