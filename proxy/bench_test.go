package proxy_test

import (
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/skiffhq/skiff/proxy"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// BenchmarkProxySync: a node's proxy with 1,000 Services of 10 endpoints each
// programmed (in a network namespace of the benchmark's) applies one endpoint's
// change (not ready, then ready again, in turn over the Services): the p99 of 200
// such syncs, each from the call to the committed nftables transaction.
func BenchmarkProxySync(b *testing.B) {
	benchfig.Want(b, "proxy_sync_1000svc_p99")
	requireRoot(b)
	node := newNetns(b, "bench")
	p, err := proxy.New(proxy.Config{ClusterCIDR: "10.42.0.0/16", NetNS: node.fd(b)})
	if err != nil {
		b.Fatal(err)
	}
	defer p.Cleanup()
	const nsvc, neps = 1000, 10
	svcs := make([]*corev1.Service, nsvc)
	eps := make([]*discoveryv1.EndpointSlice, nsvc)
	for i := range nsvc {
		name := fmt.Sprintf("svc-%d", i)
		svcs[i] = service(name, fmt.Sprintf("10.43.%d.%d", 1+i/250, 1+i%250), i%10 == 0)
		svcs[i].Spec.Ports[0].NodePort = int32(30000 + i)
		var list []ep
		for j := range neps {
			list = append(list, ep{ip: fmt.Sprintf("10.42.%d.%d", i/25, 2+(i%25)*10+j), ready: true, serving: true})
		}
		eps[i] = slice(name, list...)
	}
	start := time.Now()
	if err := p.Sync(svcs, eps); err != nil {
		b.Fatal(err)
	}
	b.Logf("first sync of %d Services: %v", nsvc, time.Since(start))
	b.ResetTimer()
	var took, cpuTook []time.Duration
	for i := range 200 {
		k := (i / 2 * 37) % nsvc // each Service's endpoint goes not ready, then ready again
		e := eps[k].DeepCopy()
		e.Endpoints[(i/2)%neps].Conditions.Ready = ptrBool(i%2 == 1)
		eps[k] = e
		cpu := benchfig.StartCPU()
		start := time.Now()
		if err := p.Sync(svcs, eps); err != nil {
			b.Fatalf("sync %d (Service %d): %v", i, k, err)
		}
		took = append(took, time.Since(start))
		cpuTook = append(cpuTook, cpu())
		if st := p.Stats(); st.ServicePortsWritten != 1 {
			b.Fatalf("sync %d wrote %d service ports, want 1", i, st.ServicePortsWritten)
		}
	}
	b.StopTimer()
	// The wall time waits for the CPU on a loaded machine: the process's CPU time
	// (user and system, which holds the kernel's work on the transaction) says what a
	// sync costs.
	b.Logf("CPU time of a sync: p50 %.3g ms, p99 %.3g ms; load average %s", benchfig.Percentile(cpuTook, 0.5),
		benchfig.Percentile(cpuTook, 0.99), benchfig.LoadAverage())
	benchfig.Report("proxy_sync_1000svc_p99", benchfig.Percentile(took, 0.99), "ms")
}

func ptrBool(v bool) *bool { return &v }
