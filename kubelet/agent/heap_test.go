package agent_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet/agent"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
	"github.com/skiffhq/skiff/test/waitfor"
)

// BenchmarkSimNodesHeap measures what the simulated kubelets and the one API server
// member, in this process, hold per pod: 100 simulated nodes, then
// SKIFF_SIM_HEAP_PODS (default 5,000) pods bound to them round-robin, until every one
// is Running. The pods are a ReplicaSet's each thousand, as the scale runs' are (no
// controller acts on them here). SKIFF_HEAP_PROFILE names a file for the heap profile at the end.
func BenchmarkSimNodesHeap(b *testing.B) {
	benchfig.Want(b, "sim_heap_per_pod")
	const nodes = 100
	n := 5000
	if v := os.Getenv("SKIFF_SIM_HEAP_PODS"); v != "" {
		fmt.Sscan(v, &n)
	}
	c := apicluster.Start(b, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- agent.Run(ctx, cs, simConfig(b, "sim", nodes)) }()
	defer func() { cancel(); <-done }()
	waitfor.Condition(b, 5*time.Minute, "the nodes registered", func() (bool, string) {
		l, err := cs.Nodes.List(ctx, "", client.ListOptions{})
		return err == nil && len(l.Items) == nodes, fmt.Sprint(err)
	})
	start := benchfig.HeapInUse()
	b.ResetTimer()
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				rs := fmt.Sprintf("scale-%d", i/1000)
				p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%05d", i), Namespace: "default",
					Labels: map[string]string{"app": rs, "bench": "scale"},
					OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs,
						UID: types.UID("uid-" + rs), Controller: new(true), BlockOwnerDeletion: new(true)}}},
					Spec: corev1.PodSpec{NodeName: fmt.Sprintf("sim-%d", i%nodes), Containers: []corev1.Container{{Name: "app", Image: "busybox",
						Command: []string{"sleep", "3600"}, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
							corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}}}
				if _, err := cs.Pods.Create(ctx, p); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	for i := 0; i < n; i++ {
		work <- i
	}
	close(work)
	wg.Wait()
	waitfor.Condition(b, 10*time.Minute, "every pod Running", func() (bool, string) {
		l, err := cs.Pods.List(ctx, "default", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for _, p := range l.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		return running == n, fmt.Sprintf("%d of %d Running", running, n)
	})
	b.StopTimer()
	end := benchfig.HeapInUse()
	b.Logf("heap %.1f → %.1f MiB for %d pods on %d nodes", float64(start)/(1<<20), float64(end)/(1<<20), n, nodes)
	benchfig.Report("sim_heap_per_pod", float64(end-start)/float64(n), "bytes")
	benchfig.WriteHeapProfile(b)
}

// BenchmarkSimNodeCost measures what a simulated node costs in one process, as `skiff
// kubelet --sim-nodes` runs them in a TLS cluster: SKIFF_SIM_NODE_COST_NODES (default
// 500) nodes, each connected as itself with its own certificate, and one pod each, until
// every pod is Running and every node has renewed its Lease. It reports the process's
// growth per node in live heap, goroutine stacks, goroutines and RSS, the one member's
// side of each node's connections included (a member holds its side of every node's
// connection too). SKIFF_SIM_NODE_COST_MEMBERS (default 1) members make the cluster;
// each node connects as `skiff kubelet --sim-nodes` connects it (writes to the leader,
// watches to the member it picked). SKIFF_SIM_NODE_COST_SETTLE (a duration) waits that
// long once every pod is Running before measuring, and the client connections open are
// logged before and after. SKIFF_HEAP_PROFILE names a file for the heap profile at the end.
func BenchmarkSimNodeCost(b *testing.B) {
	benchfig.Want(b, "sim_node_heap_bytes", "sim_node_stack_bytes", "sim_node_goroutines", "sim_node_rss_bytes")
	nodes := 500
	if v := os.Getenv("SKIFF_SIM_NODE_COST_NODES"); v != "" {
		fmt.Sscan(v, &nodes)
	}
	members := 1
	if v := os.Getenv("SKIFF_SIM_NODE_COST_MEMBERS"); v != "" {
		fmt.Sscan(v, &members)
	}
	names := make([]string, nodes)
	for i := range names {
		names[i] = fmt.Sprintf("sim-%d", i)
	}
	c := apicluster.Start(b, members, apicluster.Options{Certs: apicluster.Certs(b, append(names, "agent")...)})
	admin := client.NewClientset(c.Dial(b, "admin", client.Options{}))
	cfg := simConfig(b, "sim", nodes)
	cfg.NodeClient = func(node string) (*client.Clientset, error) {
		return client.NewClientset(c.Dial(b, "kubelet-"+node, client.Options{})), nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	before := usage()
	b.ResetTimer()
	done := make(chan error, 1)
	started := time.Now()
	go func() { done <- agent.Run(ctx, client.NewClientset(c.Dial(b, "kubelet-agent", client.Options{})), cfg) }()
	defer func() { cancel(); <-done }()
	waitfor.Condition(b, 10*time.Minute, "the nodes registered", func() (bool, string) {
		l, err := admin.Nodes.List(ctx, "", client.ListOptions{})
		return err == nil && len(l.Items) == nodes, fmt.Sprint(err)
	})
	for i := 0; i < nodes; i++ {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%05d", i), Namespace: "default"},
			Spec: corev1.PodSpec{NodeName: names[i], Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"}}}}}
		// Three members in this process on a loaded machine change leaders: a create
		// whose outcome a change left unknown is sent again, and AlreadyExists then is
		// its own.
		tried := false
		waitfor.Condition(b, 5*time.Minute, "pod "+p.Name+" created", func() (bool, string) {
			_, err := admin.Pods.Create(ctx, p.DeepCopy())
			done := err == nil || tried && client.IsAlreadyExists(err)
			tried = true
			return done, fmt.Sprint(err)
		})
	}
	waitfor.Condition(b, 10*time.Minute, "every pod Running and every Lease renewed", func() (bool, string) {
		l, err := admin.Pods.List(ctx, "default", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for _, p := range l.Items {
			if p.Status.Phase == corev1.PodRunning {
				running++
			}
		}
		leases, err := admin.Leases.List(ctx, corev1.NamespaceNodeLease, client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		renewed := 0
		for _, l := range leases.Items {
			if l.Spec.RenewTime != nil && l.Spec.RenewTime.After(started.Add(cfg.Kubelet.LeaseRenewInterval)) {
				renewed++
			}
		}
		return running == nodes && renewed == nodes, fmt.Sprintf("%d of %d Running, %d Leases renewed", running, nodes, renewed)
	})
	b.StopTimer()
	if v := os.Getenv("SKIFF_SIM_NODE_COST_SETTLE"); v != "" {
		// Steady state: the connections a node left behind (a failover at start) are
		// closed once idle (client.Options.IdleTimeout).
		settle, err := time.ParseDuration(v)
		if err != nil {
			b.Fatalf("SKIFF_SIM_NODE_COST_SETTLE: %v", err)
		}
		b.Logf("%d client connections open; settling for %v", clientTransports(), settle)
		time.Sleep(settle)
	}
	after := usage()
	b.Logf("%d client connections open (the nodes', the agent's and this benchmark's)", clientTransports())
	per := func(a, b int64) float64 { return float64(a-b) / float64(nodes) }
	b.Logf("%d nodes: heap %.1f → %.1f MiB, stacks %.1f → %.1f MiB, goroutines %d → %d, RSS %.1f → %.1f MiB", nodes,
		mib(before.heap), mib(after.heap), mib(before.stacks), mib(after.stacks), before.goroutines, after.goroutines, mib(before.rss), mib(after.rss))
	benchfig.Report("sim_node_heap_bytes", per(after.heap, before.heap), "bytes")
	benchfig.Report("sim_node_stack_bytes", per(after.stacks, before.stacks), "bytes")
	benchfig.Report("sim_node_goroutines", per(int64(after.goroutines), int64(before.goroutines)), "goroutines")
	benchfig.Report("sim_node_rss_bytes", per(after.rss, before.rss), "bytes")
	benchfig.WriteHeapProfile(b)
}

// clientTransports counts the process's gRPC client connections: each has one
// keepalive goroutine.
func clientTransports() int {
	var buf strings.Builder
	pprof.Lookup("goroutine").WriteTo(&buf, 1)
	_, stacks, _ := strings.Cut(buf.String(), "\n") // after "goroutine profile: total N"
	n := 0
	for _, g := range strings.Split(stacks, "\n\n") {
		var count int
		if strings.Contains(g, "(*http2Client).keepalive") {
			fmt.Sscan(g, &count)
			n += count
		}
	}
	return n
}

// processUsage is what the process holds: live heap, goroutine stacks, goroutines, RSS.
type processUsage struct {
	heap, stacks, rss int64
	goroutines        int
}

func usage() processUsage {
	u := processUsage{heap: benchfig.HeapInUse(), goroutines: runtime.NumGoroutine()}
	s := []metrics.Sample{{Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	u.stacks = int64(s[0].Value.Uint64())
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(status), "\n") {
			if kb, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				fmt.Sscan(strings.TrimSuffix(strings.TrimSpace(kb), " kB"), &u.rss)
				u.rss <<= 10
			}
		}
	}
	return u
}

func mib(n int64) float64 { return float64(n) / (1 << 20) }
