package clusterdns

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// BenchmarkDNSQPS: A queries for a Service answered per second over UDP on loopback,
// from 16 clients at once for 5 seconds; the figure is per second of the server
// process's CPU time too (logged), since the machine's other work shares its cores.
func BenchmarkDNSQPS(b *testing.B) {
	benchfig.Want(b, "dns_qps")
	c := apicluster.Start(b, 1, apicluster.Options{})
	cs := client.NewClientset(c.Dial(b, "admin", client.Options{}))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	svc := &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default"}, Spec: corev1.ServiceSpec{
		Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(80)}}}}
	if _, err := cs.Services.Create(ctx, svc); err != nil {
		b.Fatal(err)
	}
	f := cache.NewFactory(cs, nil)
	cfg := DefaultConfig()
	cfg.Upstreams = nil
	s, err := New(f, cfg)
	if err != nil {
		b.Fatal(err)
	}
	f.Start(ctx)
	defer f.Wait()
	defer cancel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	go s.Serve(ctx, pc, ln)
	addr := pc.LocalAddr().String()
	m := new(dns.Msg)
	m.SetQuestion("web.default.svc.cluster.local.", dns.TypeA)
	// Wait for the first answer (the caches synced).
	for {
		in, _, err := (&dns.Client{Timeout: time.Second}).Exchange(m, addr)
		if err == nil && len(in.Answer) == 1 {
			break
		}
		if ctx.Err() != nil {
			b.Fatal(ctx.Err())
		}
	}
	b.ResetTimer()
	cpu := benchfig.StartCPU()
	var answered atomic.Int64
	deadline := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			conn, err := dns.Dial("udp", addr)
			if err != nil {
				b.Error(err)
				return
			}
			defer conn.Close()
			for time.Now().Before(deadline) {
				q := m.Copy()
				q.Id = dns.Id()
				conn.SetDeadline(time.Now().Add(time.Second))
				if err := conn.WriteMsg(q); err != nil {
					continue
				}
				if in, err := conn.ReadMsg(); err == nil && len(in.Answer) == 1 {
					answered.Add(1)
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	used := cpu()
	b.Logf("%d answers in 5s, %v of CPU (clients and server)", answered.Load(), used)
	benchfig.Report("dns_qps", float64(answered.Load())/5, "queries/s")
}
