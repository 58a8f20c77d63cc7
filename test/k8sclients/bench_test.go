package k8sclients

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// benchPod is apiserver's BenchmarkAPICreatePod's pod: about 1 KiB encoded.
func benchPod(name string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Labels: map[string]string{"app": "bench", "tier": "web"},
			Annotations: map[string]string{"note": strings.Repeat("x", 700)}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "docker.io/library/busybox:1.36",
			Command: []string{"sleep", "3600"}, Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}}},
	}
}

// BenchmarkHTTPCreatePod is BenchmarkAPICreatePod (apiserver) over the REST API: 100
// concurrent callers of one client-go clientset (QPS unlimited, its default protobuf
// encoding) create 20,000 pods through the leader of 3 members, over one HTTP/2
// connection (without TLS, as the gRPC benchmark's).
func BenchmarkHTTPCreatePod(b *testing.B) {
	benchfig.Want(b, "http_create_pod_c100", "http_create_pod_c100_p99")
	c := apicluster.Start(b, 3, apicluster.Options{HistorySize: 100_000,
		Configure: func(cfg *apiserver.Config) { cfg.Store.MmapSize = 256 << 20 }})
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &p}
	b.Cleanup(tr.CloseIdleConnections)
	cs, err := kubernetes.NewForConfig(&rest.Config{Host: "http://" + c.Addr(c.Leader()), QPS: -1, Transport: tr})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	const clients, total = 100, 20_000
	lat := make([]time.Duration, total)
	var next atomic.Int64
	var failed atomic.Value
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				t0 := time.Now()
				if _, err := cs.CoreV1().Pods("default").Create(ctx, benchPod(fmt.Sprintf("p-%d", i)), metav1.CreateOptions{}); err != nil {
					failed.Store(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	benchfig.Report("http_create_pod_c100", total/elapsed.Seconds(), "ops/s")
	benchfig.Report("http_create_pod_c100_p99", benchfig.Percentile(lat, 0.99), "ms")
}
