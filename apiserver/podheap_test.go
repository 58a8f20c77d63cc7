package apiserver_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// scalePod is a pod as the scale benchmarks' Deployments make them.
func scalePod(i int) *corev1.Pod {
	lbl := map[string]string{"app": fmt.Sprintf("scale-%d", i/1000), "bench": "scale", "pod-template-hash": "5d8f9c7b6"}
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("scale-%d-5d8f9c7b6-%05d", i/1000, i), Namespace: "default", Labels: lbl},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"},
			Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
				corev1.ResourceCPU: resource.MustParse("10m"), corev1.ResourceMemory: resource.MustParse("16Mi")}}}}}}
}

// BenchmarkPodHeap measures what one member holds per pod: pods created, bound and
// made Running (three writes each, as the controllers, scheduler and kubelet do), with
// the heap in use before and after. SKIFF_POD_HEAP_PODS sets the count (default 10,000);
// SKIFF_HEAP_PROFILE names a file for the heap profile at the end, before the member stops.
func BenchmarkPodHeap(b *testing.B) {
	benchfig.Want(b, "member_heap_per_pod")
	n := 10_000
	if v := os.Getenv("SKIFF_POD_HEAP_PODS"); v != "" {
		fmt.Sscan(v, &n)
	}
	c := apicluster.Start(b, 1, apicluster.Options{HistorySize: apiserver.DefaultConfig().Store.HistorySize, Certs: apicluster.Certs(b)})
	conn := c.Dial(b, "admin", client.Options{})
	pods := client.For[*corev1.Pod](conn)
	ctx := context.Background()
	start := benchfig.HeapInUse()
	b.ResetTimer()
	var wg sync.WaitGroup
	work := make(chan int)
	for w := 0; w < 32; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				p, err := pods.Create(ctx, scalePod(i))
				if err != nil {
					b.Error(err)
					continue
				}
				if p, err = conn.Bind(ctx, p.Namespace, p.Name, string(p.UID), fmt.Sprintf("sim-%d", i%1000)); err != nil {
					b.Error(err)
					continue
				}
				p.Status.Phase = corev1.PodRunning
				p.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}
				p.Status.PodIP, p.Status.HostIP = "10.42.0.1", "127.0.0.1"
				if _, err := pods.UpdateStatus(ctx, p); err != nil {
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
	b.StopTimer()
	end := benchfig.HeapInUse()
	total, anon := rss(b)
	b.Logf("heap %.1f → %.1f MiB for %d pods; RSS %.0f MiB (anonymous %.0f)", mib(start), mib(end), n, mib(total), mib(anon))
	benchfig.Report("member_heap_per_pod", float64(end-start)/float64(n), "bytes")
	benchfig.WriteHeapProfile(b)
}
