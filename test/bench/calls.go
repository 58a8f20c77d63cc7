package bench

import (
	"context"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Calls is a closed-loop load of callers goroutines making total calls of call, numbered
// 0 to total-1, each caller starting its next call when its last returned (the API
// benchmarks' 100 callers creating 20,000 pods, over gRPC or REST). It returns the first
// error, once every caller has stopped; otherwise it reports
//
//	name              calls a second
//	name_p99          ms, the 99th percentile of the calls' latencies
//	name_cpu_per_op   µs, the process's CPU (user and system) per call
//
// The CPU is the whole process's, the servers' and the callers' together: the rate
// depends on what else runs on the machine, the CPU per call much less. The callers run
// under the profile label component=benchmark (as Label runs a component), which call's
// ctx carries too, so that a profile splits them from a cluster started under another
// label, and SKIFF_CPU_PROFILE (StartCPUProfile)
// covers the calls only. On a *testing.B the timer covers the calls only.
func Calls(tb testing.TB, ctx context.Context, name string, callers, total int, call func(ctx context.Context, i int) error) error {
	lat := make([]time.Duration, total)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	if b, ok := tb.(*testing.B); ok {
		b.ResetTimer()
		defer b.StopTimer()
	}
	stopProfile := StartCPUProfile(tb)
	cpu := StartCPU()
	start := time.Now()
	pprof.Do(ctx, pprof.Labels(ComponentLabel, "benchmark"), func(ctx context.Context) {
		for range callers {
			wg.Go(func() {
				for failed.Load() == nil {
					i := int(next.Add(1)) - 1
					if i >= total {
						return
					}
					t0 := time.Now()
					if err := call(ctx, i); err != nil {
						failed.CompareAndSwap(nil, &err)
						return
					}
					lat[i] = time.Since(t0)
				}
			})
		}
	})
	wg.Wait()
	elapsed, spent := time.Since(start), cpu()
	stopProfile()
	if err := failed.Load(); err != nil {
		return *err
	}
	Report(name, float64(total)/elapsed.Seconds(), "ops/s")
	Report(name+"_p99", Percentile(lat, 0.99), "ms")
	Report(name+"_cpu_per_op", float64(spent.Microseconds())/float64(total), "µs")
	return nil
}
