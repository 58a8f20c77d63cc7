package apiserver_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// The API's benchmarks print `BENCH <name> <value> <unit>` lines, on a three-node cluster
// in this process, calling the leader's gRPC API as the store's benchmarks call the
// leader's store (so the two compare). They run as users run Skiff: TLS, the callers
// authenticated as an administrator (certificate admin), authorized, and the default
// limits; a figure whose name ends in _insecure runs without any of it, to show what it
// costs.

// benchCluster starts the three members, secure or not, and returns them with the
// administrator's TLS (nil when insecure).
func benchCluster(b *testing.B, secure bool, opts apicluster.Options) (*apicluster.Cluster, *tls.Config) {
	if !secure {
		return apicluster.Start(b, 3, opts), nil
	}
	opts.Certs = apicluster.Certs(b)
	return apicluster.Start(b, 3, opts), apicluster.ClientTLS(b, opts.Certs, "admin")
}

func insecureSuffix(secure bool) string {
	if secure {
		return ""
	}
	return "_insecure"
}

func benchPod(name string) *corev1.Pod {
	// About 1 KiB encoded, like the store benchmark's values.
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "bench", "tier": "web"},
			Annotations: map[string]string{"note": strings.Repeat("x", 700)}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "docker.io/library/busybox:1.36",
			Command: []string{"sleep", "3600"}, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}}},
	}
}

func conns(b *testing.B, addr string, tc *tls.Config, n int) []apiv1.ResourcesClient {
	var out []apiv1.ResourcesClient
	for _, cc := range clientConns(b, addr, tc, n) {
		out = append(out, apiv1.NewResourcesClient(cc))
	}
	return out
}

func clientConns(b *testing.B, addr string, tc *tls.Config, n int) []*grpc.ClientConn {
	creds := insecure.NewCredentials()
	if tc != nil {
		creds = credentials.NewTLS(tc)
	}
	var out []*grpc.ClientConn
	for i := 0; i < n; i++ {
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds), client.DialBufferPool())
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { cc.Close() })
		out = append(out, cc)
	}
	return out
}

func p99ms(lat []time.Duration) float64 { return benchfig.Percentile(lat, 0.99) }

// BenchmarkAPICreatePod: 100 concurrent callers create 20,000 pods over one connection to
// the leader, as a component's goroutines share client.Conn's one connection per server
// (and client-go's one per API server).
func BenchmarkAPICreatePod(b *testing.B)         { benchCreatePod(b, true) }
func BenchmarkAPICreatePodInsecure(b *testing.B) { benchCreatePod(b, false) }

func benchCreatePod(b *testing.B, secure bool) {
	name := "api_create_pod_c100" + insecureSuffix(secure)
	benchfig.Want(b, name, name+"_p99", name+"_cpu_per_op")
	// The store's benchmarks map 256 MiB of state up front; so does this one, so the two compare.
	var c *apicluster.Cluster
	var tc *tls.Config
	benchfig.Label("apiserver", func() {
		c, tc = benchCluster(b, secure, apicluster.Options{HistorySize: 100_000,
			Configure: func(cfg *apiserver.Config) { cfg.Store.MmapSize = 256 << 20 }})
	})
	var rc apiv1.ResourcesClient
	benchfig.Label("benchmark", func() { rc = conns(b, c.Addr(c.Leader()), tc, 1)[0] })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	err := benchfig.Calls(b, ctx, name, 100, 20_000, func(ctx context.Context, i int) error {
		o, err := kinds.Wrap(benchPod(fmt.Sprintf("p-%d", i)))
		if err == nil {
			_, err = rc.Create(ctx, &apiv1.CreateRequest{Object: o})
		}
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
}

// frame is a received message left in its wire form, in a buffer reused across messages.
type frame struct{ b []byte }

// frameCodec is the proto codec, receiving frames without decoding them.
type frameCodec struct{ encoding.CodecV2 }

func (c frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	f, ok := v.(*frame)
	if !ok {
		return c.CodecV2.Unmarshal(data, v)
	}
	f.b = f.b[:0]
	for _, buf := range data {
		f.b = append(f.b, buf.ReadOnlyData()...)
	}
	return nil
}

// BenchmarkAPIWatchPods: 1,000 gRPC watchers of pods spread over the three servers, while
// 2,000 pods are created; events delivered per second and the p99 delay from a create's
// acknowledgement to its delivery to a watcher. The watchers run in this process too, so
// they count events in the messages' wire form and decode only the objects they sample
// for the delay: otherwise the benchmark mostly measures its own decoding.
func BenchmarkAPIWatchPods(b *testing.B)         { benchWatchPods(b, true) }
func BenchmarkAPIWatchPodsInsecure(b *testing.B) { benchWatchPods(b, false) }

func benchWatchPods(b *testing.B, secure bool) {
	name := "api_watch_pods_1000" + insecureSuffix(secure)
	benchfig.Want(b, name, name+"_p99_lag")
	c, tc := benchCluster(b, secure, apicluster.Options{HistorySize: 100_000})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const watchers, pods = 1000, 2000
	var per [3][]*grpc.ClientConn
	for i := 0; i < 3; i++ {
		per[i] = clientConns(b, c.Addr(i), tc, 4)
	}
	acked := make([]atomic.Int64, pods) // unix nanos of each create's acknowledgement
	var delivered atomic.Int64
	var lagMu sync.Mutex
	var lags []time.Duration
	var ready, done sync.WaitGroup
	for w := 0; w < watchers; w++ {
		ready.Add(1)
		done.Add(1)
		go func(w int) {
			defer done.Done()
			cc := per[w%3][w%4]
			stream, err := cc.NewStream(ctx, &apiv1.Resources_ServiceDesc.Streams[0], apiv1.Resources_Watch_FullMethodName,
				grpc.ForceCodecV2(frameCodec{encoding.GetCodecV2("proto")}))
			if err == nil {
				err = stream.SendMsg(&apiv1.WatchRequest{Kind: "Pod", Namespace: "default"})
			}
			if err == nil {
				err = stream.CloseSend()
			}
			if err == nil {
				_, err = stream.Header()
			}
			ready.Done()
			if err != nil {
				b.Error(err)
				return
			}
			seen := 0
			var mine []time.Duration
			var f frame
			for seen < pods {
				if err := stream.RecvMsg(&f); err != nil {
					b.Error(err)
					return
				}
				now := time.Now().UnixNano()
				for rest := f.b; len(rest) > 0; {
					_, _, n := protowire.ConsumeField(rest)
					if n < 0 {
						b.Error(protowire.ParseError(n))
						return
					}
					evb := rest[:n]
					rest = rest[n:]
					seen++
					if w%10 != 0 {
						continue
					}
					var resp apiv1.RawWatchResponse
					var obj apiv1.Object
					if err := proto.Unmarshal(evb, &resp); err != nil || len(resp.Events) != 1 {
						b.Errorf("event: %v", err)
						return
					}
					if err := proto.Unmarshal(resp.Events[0].GetObject(), &obj); err != nil {
						b.Error(err)
						return
					}
					pod, err := kinds.Unwrap(&obj)
					if err != nil {
						b.Error(err)
						return
					}
					var i int
					fmt.Sscanf(pod.GetName(), "w-%d", &i)
					if at := acked[i].Load(); at > 0 {
						mine = append(mine, time.Duration(now-at))
					}
				}
			}
			delivered.Add(int64(seen))
			lagMu.Lock()
			lags = append(lags, mine...)
			lagMu.Unlock()
		}(w)
	}
	ready.Wait()
	writers := conns(b, c.Addr(c.Leader()), tc, 4)
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 50; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= pods {
					return
				}
				o, err := kinds.Wrap(benchPod(fmt.Sprintf("w-%d", i)))
				if err == nil {
					_, err = writers[w%4].Create(ctx, &apiv1.CreateRequest{Object: o})
				}
				if err != nil {
					b.Error(err)
					return
				}
				acked[i].Store(time.Now().UnixNano())
			}
		}(w)
	}
	wg.Wait()
	done.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	benchfig.Report(name, float64(delivered.Load())/elapsed.Seconds(), "events/s")
	if len(lags) > 0 {
		benchfig.Report(name+"_p99_lag", p99ms(lags), "ms")
	}
}

// BenchmarkAPIReleaseFinalizers: 5,000 pods lose the Job's tracking finalizer, as the Job
// controller releases its finished pods, each a compare-and-swap on the pod as read: once
// one Update per pod, 250 in flight (the controller before UpdateBatch), then in
// UpdateBatch calls of 100, 10 in flight (since), back to back on the same cluster so
// that the two compare under the same load. The _cpu figures are the process's CPU
// seconds for each (the caller and the three members).
func BenchmarkAPIReleaseFinalizers(b *testing.B) {
	const name, total = "api_release_finalizers_5000", 5000
	benchfig.Want(b, name+"_single", name+"_single_cpu", name+"_batch", name+"_batch_cpu")
	c, tc := benchCluster(b, true, apicluster.Options{})
	rc := conns(b, c.Addr(c.Leader()), tc, 1)[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// made creates the pods, holding the finalizer, and returns each as its release
	// writes it.
	made := func(prefix string) []*apiv1.Object {
		out := make([]*apiv1.Object, 0, total)
		for start := 0; start < total; start += apiserver.MaxBatch {
			req := &apiv1.CreateBatchRequest{}
			for i := start; i < start+apiserver.MaxBatch; i++ {
				p := benchPod(fmt.Sprintf("%s-%d", prefix, i))
				p.Finalizers = []string{"batch.kubernetes.io/job-tracking"}
				o, err := kinds.Wrap(p)
				if err != nil {
					b.Fatal(err)
				}
				req.Objects = append(req.Objects, o)
			}
			res, err := rc.CreateBatch(ctx, req)
			if err != nil {
				b.Fatal(err)
			}
			for i, r := range res.GetResults() {
				obj, err := kinds.Unwrap(r.GetObject())
				if len(r.GetError()) > 0 || err != nil {
					b.Fatalf("create pod %d: %v", start+i, err)
				}
				obj.SetFinalizers(nil)
				o, err := kinds.Wrap(obj)
				if err != nil {
					b.Fatal(err)
				}
				out = append(out, o)
			}
		}
		return out
	}
	run := func(mode string, objs []*apiv1.Object, inFlight, size int, call func([]*apiv1.Object) error) {
		cpu := benchfig.StartCPU()
		start := time.Now()
		sem := make(chan struct{}, inFlight)
		var failed atomic.Value
		var wg sync.WaitGroup
		for lo := 0; lo < len(objs); lo += size {
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				if err := call(objs[lo:min(lo+size, len(objs))]); err != nil {
					failed.Store(err)
				}
			})
		}
		wg.Wait()
		elapsed, used := time.Since(start), cpu()
		if err, _ := failed.Load().(error); err != nil {
			b.Fatalf("%s: %v", mode, err)
		}
		benchfig.Report(name+"_"+mode, elapsed.Seconds(), "s")
		benchfig.Report(name+"_"+mode+"_cpu", used.Seconds(), "s")
	}
	single, batched := made("single"), made("batch")
	b.ResetTimer()
	run("single", single, 250, 1, func(objs []*apiv1.Object) error {
		_, err := rc.Update(ctx, &apiv1.UpdateRequest{Object: objs[0]})
		return err
	})
	run("batch", batched, 10, apiserver.MaxBatch, func(objs []*apiv1.Object) error {
		res, err := rc.UpdateBatch(ctx, &apiv1.UpdateBatchRequest{Objects: objs})
		if err != nil {
			return err
		}
		for i, r := range res.GetResults() {
			if len(r.GetError()) > 0 {
				return fmt.Errorf("objects[%d] not updated", i)
			}
		}
		return nil
	})
	b.StopTimer()
}
