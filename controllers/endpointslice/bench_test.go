package endpointslice

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// BenchmarkSvcEndpoints: 1,000 Services over 10,000 ready pods (ten each) on a 3-node
// TLS cluster; seconds from the controller's start, all pods ready, to every Service's
// EndpointSlices listing its ten ready endpoints.
func BenchmarkSvcEndpoints(b *testing.B) {
	benchfig.Want(b, "svc_endpoints_1000svc_10000p")
	const services, perService = 1000, 10
	c := apicluster.Start(b, 3, apicluster.Options{HistorySize: 100_000, Certs: apicluster.Certs(b)})
	admin := client.NewClientset(c.Dial(b, "admin", client.Options{}))
	cs := client.NewClientset(c.Dial(b, "controller-manager", client.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()

	batch := func(objs []*corev1.Service) {
		if _, errs, err := admin.Services.CreateBatch(ctx, objs); err != nil {
			b.Fatal(err)
		} else {
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	var svcs []*corev1.Service
	for i := range services {
		svcs = append(svcs, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("svc-%d", i), Namespace: "default"},
			Spec: corev1.ServiceSpec{Selector: map[string]string{"app": fmt.Sprintf("svc-%d", i)},
				Ports: []corev1.ServicePort{{Port: 80, TargetPort: intstr.FromInt32(8080)}}}})
		if len(svcs) == 100 {
			batch(svcs)
			svcs = nil
		}
	}
	// The pods, then their status (Running, Ready, an address), as kubelets write it.
	var pods []*corev1.Pod
	for i := range services * perService {
		pods = append(pods, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("p-%d", i), Namespace: "default",
			Labels: map[string]string{"app": fmt.Sprintf("svc-%d", i%services)}},
			Spec: corev1.PodSpec{NodeName: fmt.Sprintf("n%d", i%100), Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}})
	}
	var created []*corev1.Pod
	for i := 0; i < len(pods); i += 100 {
		out, errs, err := admin.Pods.CreateBatch(ctx, pods[i:i+100])
		if err != nil {
			b.Fatal(err)
		}
		for j, err := range errs {
			if err != nil {
				b.Fatal(err)
			}
			created = append(created, out[j])
		}
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range work {
				p := created[i]
				ip := fmt.Sprintf("10.42.%d.%d", i/250, i%250+2)
				p.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}},
					Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue, LastTransitionTime: metav1.Now()}}}
				if _, err := admin.Pods.UpdateStatus(ctx, p); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range created {
		work <- i
	}
	close(work)
	wg.Wait()

	f := cache.NewFactory(cs, hclog.NewNullLogger())
	cfg := DefaultConfig()
	ctl, err := New(cs, f, cfg)
	if err != nil {
		b.Fatal(err)
	}
	slices := cache.InformerFor[*discoveryv1.EndpointSlice](f, "", client.ListOptions{}).Lister()
	runCtx, stop := context.WithCancel(ctx)
	defer func() { stop(); f.Wait() }()
	b.ResetTimer()
	cpu := benchfig.StartCPU()
	start := time.Now()
	f.Start(runCtx)
	go ctl.Run(runCtx)
	complete := func() bool {
		ready := 0
		for _, es := range slices.List(labels.Everything()) {
			if es.Labels[discoveryv1.LabelManagedBy] != ManagedBy {
				continue
			}
			for _, e := range es.Endpoints {
				if e.Conditions.Ready != nil && *e.Conditions.Ready {
					ready++
				}
			}
		}
		return ready == services*perService
	}
	for !complete() {
		if ctx.Err() != nil {
			b.Fatalf("endpoints incomplete after %v", time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.Logf("%v elapsed, %v of CPU (the API servers' and the controller's)", elapsed, cpu())
	benchfig.Report("svc_endpoints_1000svc_10000p", elapsed.Seconds(), "s")
}
