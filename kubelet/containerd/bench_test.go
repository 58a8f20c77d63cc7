package containerd

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/kubelet"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// BenchmarkStartContainers is the floor under pod_startup_containerd: 50 busybox
// containers created and started at once straight through the Runtime (no API server, no
// kubelet), the image present. Its p99 is the least any kubelet on this containerd could
// reach for 50 pods created together; the rate is containerd's (shim + runc) throughput.
func BenchmarkStartContainers(b *testing.B) {
	benchfig.Want(b, "containerd_start_1", "containerd_start_50_p50", "containerd_start_50_p99", "containerd_start_rate")
	r, ctx := connect(b)
	const ref = "docker.io/library/busybox:bench"
	busybox(b, r, ctx, ref)
	if _, _, err := r.EnsureImage(ctx, ref, kubelet.PullIfNotPresent, nil); err != nil {
		b.Fatal(err)
	}
	start1 := func(name string) (string, time.Duration, error) {
		t0 := time.Now()
		id, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{
			PodUID: "bench-" + name, PodName: name, Namespace: "default", Name: "c", Image: ref, Command: []string{"sleep", "3600"},
		})
		return id, time.Since(t0), err
	}
	// One alone, after a first (warm-up) one: a start without contention.
	var alone time.Duration
	for i := 0; i < 2; i++ {
		id, d, err := start1(fmt.Sprintf("alone-%d", i))
		if err != nil {
			b.Fatal(err)
		}
		alone = d
		r.Stop(ctx, id, 0)
		r.Remove(ctx, id)
	}

	const n = 50
	lat := make([]time.Duration, n)
	ids := make([]string, n)
	b.ResetTimer()
	start := time.Now()
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, d, err := start1(fmt.Sprintf("start-%d", i))
			if err != nil {
				b.Error(err)
				return
			}
			lat[i], ids[i] = d, id
		}()
	}
	wg.Wait()
	total := time.Since(start)
	b.StopTimer()
	for _, id := range ids {
		if id != "" {
			r.Stop(ctx, id, 0)
			r.Remove(ctx, id)
		}
	}
	if b.Failed() {
		return
	}
	benchfig.Report("containerd_start_1", float64(alone.Microseconds())/1000, "ms")
	benchfig.Report("containerd_start_50_p50", benchfig.Percentile(lat, 0.50), "ms")
	benchfig.Report("containerd_start_50_p99", benchfig.Percentile(lat, 0.99), "ms")
	benchfig.Report("containerd_start_rate", float64(n)/total.Seconds(), "containers/s")
}
