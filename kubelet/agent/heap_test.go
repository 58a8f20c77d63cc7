package agent_test

import (
	"context"
	"fmt"
	"os"
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
	go func() { done <- agent.Run(ctx, cs, simConfig("sim", nodes)) }()
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
