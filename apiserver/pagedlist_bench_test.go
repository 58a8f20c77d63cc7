package apiserver_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// BenchmarkPagedList is the scale runs' list probe (test/e2e/bench_scale_test.go) in one
// process: a client lists every pod through the REST API in pages of 500 from a cluster
// of three TLS members holding 50,000 Running pods, while pods are created, bound and
// made Running at the 50,000-pod run's rate (about 400 writes a second). It lists three
// times per b.N (run it with -benchtime 1x) in JSON, as the probe does, then three in
// Kubernetes' protobuf encoding, as Kubernetes' own components list, and prints for each
// (paged_list_50k, paged_list_50k_protobuf) the slowest whole list's time, the process's
// CPU time per list (the members', the writer's and the client's together) and the
// pages' p99, whole and up to the reply's headers (the server's part; the rest is the
// client's decoding). SKIFF_PAGED_LIST_PODS sets the pods (default 50,000),
// SKIFF_PAGED_LIST_WRITES the writes a second (default 400, 0 for none),
// SKIFF_PAGED_LIST_MEMBERS the members (default 3; the list is served by the first, a
// follower or the leader as it falls); SKIFF_CPU_PROFILE writes the lists' CPU profile.
func BenchmarkPagedList(b *testing.B) {
	benchfig.Want(b, "paged_list_50k")
	n, rate, members := 50_000, 400, 3
	for env, v := range map[string]*int{"SKIFF_PAGED_LIST_PODS": &n, "SKIFF_PAGED_LIST_WRITES": &rate, "SKIFF_PAGED_LIST_MEMBERS": &members} {
		if s := os.Getenv(env); s != "" {
			fmt.Sscan(s, v)
		}
	}
	c := apicluster.Start(b, members, apicluster.Options{HistorySize: apiserver.DefaultConfig().Store.HistorySize, Certs: apicluster.Certs(b)})
	conn := c.Dial(b, "admin", client.Options{})
	pods := client.For[*corev1.Pod](conn)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	fill := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Go(func() {
			for {
				lo := next.Add(client.MaxCreateBatch) - client.MaxCreateBatch
				if lo >= int64(n) {
					return
				}
				batch := make([]*corev1.Pod, 0, client.MaxCreateBatch)
				for i := lo; i < min(lo+client.MaxCreateBatch, int64(n)); i++ {
					batch = append(batch, ownedPod(int(i)))
				}
				if err := runningPods(ctx, conn, pods, batch); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if b.Failed() {
		return
	}
	b.Logf("%d Running pods written in %v", n, time.Since(fill).Round(time.Millisecond))

	// The writer: pods after the first n, each created, bound and made Running (three
	// writes), rate/3 a second, until the lists end.
	writes := &sync.WaitGroup{}
	if rate > 0 {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		work := make(chan int, 64)
		for w := 0; w < 16; w++ {
			writes.Go(func() {
				for i := range work {
					if err := runningPods(ctx, conn, pods, []*corev1.Pod{ownedPod(i)}); err != nil && ctx.Err() == nil {
						b.Error(err)
					}
				}
			})
		}
		writes.Go(func() {
			defer close(work)
			i, owed := n, 0.0
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				for owed += float64(rate) / 3 / 10; owed >= 1; owed-- {
					select {
					case work <- i:
						i++
					default: // the writers are behind: the rate is not reached, said below
					}
				}
			}
		})
	}

	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: apicluster.ClientTLS(b, c.CertsDir(), "admin"), ForceAttemptHTTP2: true}}
	defer hc.CloseIdleConnections()
	base := "https://" + c.Addr(0)
	if _, err := pagedList(ctx, hc, base, false, nil); err != nil { // the connection made, the first list's one-time costs paid
		b.Fatal(err)
	}
	stopProfile := benchfig.StartCPUProfile(b)
	b.ResetTimer()
	for _, protobuf := range []bool{false, true} {
		var lists, pages, server []time.Duration
		var cpu time.Duration
		for i := 0; i < 3*b.N; i++ {
			elapsed := benchfig.StartCPU()
			at := time.Now()
			got, err := pagedList(ctx, hc, base, protobuf, func(page, head time.Duration) {
				pages, server = append(pages, page), append(server, head)
			})
			if err != nil {
				b.Fatal(err)
			}
			lists = append(lists, time.Since(at))
			cpu += elapsed()
			if got < n {
				b.Fatalf("list %d: %d pods, want at least %d", i, got, n)
			}
		}
		figure := "paged_list_50k"
		if protobuf {
			figure += "_protobuf"
		}
		b.Logf("%s: %d lists of %d pages, load %s", figure, len(lists), len(pages)/len(lists), benchfig.LoadAverage())
		benchfig.Report(figure, benchfig.Percentile(lists, 1), "ms")
		benchfig.Report(figure+"_cpu", float64(cpu.Milliseconds())/float64(len(lists)), "ms")
		benchfig.Report(figure+"_page_p99", benchfig.Percentile(pages, 0.99), "ms")
		benchfig.Report(figure+"_page_server_p99", benchfig.Percentile(server, 0.99), "ms")
	}
	b.StopTimer()
	stopProfile()
	cancel()
	writes.Wait()
}

// ownedPod is scalePod owned by its ReplicaSet, as the scale runs' pods are.
func ownedPod(i int) *corev1.Pod {
	p := scalePod(i)
	p.OwnerReferences = []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: p.Labels["app"] + "-5d8f9c7b6",
		UID: types.UID(fmt.Sprintf("00000000-0000-0000-0000-%012d", i/1000)), Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}}
	return p
}

// runningPods creates pods (at most client.MaxCreateBatch), binds them and reports them
// Running and Ready with the status a kubelet writes (conditions, container status),
// as the controllers, scheduler and kubelet do: three writes each.
func runningPods(ctx context.Context, conn *client.Conn, pods *client.Client[*corev1.Pod], batch []*corev1.Pod) error {
	made, errs := pods.CreateEach(ctx, batch)
	bs := make([]client.Binding, len(made))
	for i, p := range made {
		if errs[i] != nil {
			return errs[i]
		}
		bs[i] = client.Binding{Namespace: p.Namespace, Name: p.Name, UID: string(p.UID), Node: fmt.Sprintf("sim-%d", i%1000)}
	}
	bound, errs := conn.BindEach(ctx, bs)
	for i, p := range bound {
		if errs[i] != nil {
			return errs[i]
		}
		now := metav1.Now()
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, QOSClass: p.Status.QOSClass, StartTime: &now,
			HostIP: "127.0.0.1", HostIPs: []corev1.HostIP{{IP: "127.0.0.1"}}, PodIP: "10.42.0.1", PodIPs: []corev1.PodIP{{IP: "10.42.0.1"}}}
		for _, c := range []corev1.PodConditionType{corev1.PodReadyToStartContainers, corev1.PodInitialized, corev1.PodReady, corev1.ContainersReady, corev1.PodScheduled} {
			p.Status.Conditions = append(p.Status.Conditions, corev1.PodCondition{Type: c, Status: corev1.ConditionTrue, LastTransitionTime: now})
		}
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: "app", Image: "docker.io/library/busybox:latest", ImageID: "sim://busybox",
			ContainerID: "sim://" + string(p.UID) + "/app", Ready: true, Started: ptr.To(true), State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}}}
		if _, err := pods.UpdateStatus(ctx, p); err != nil {
			return err
		}
	}
	return nil
}

// pagedList lists every pod in pages of 500 as the scale runs' probe does (JSON into a
// PodList), or in Kubernetes' protobuf encoding as Kubernetes' own components ask for
// it, and returns how many there were; page, when set, is told each page's time and the
// part of it until the reply's headers came.
func pagedList(ctx context.Context, hc *http.Client, base string, protobuf bool, page func(total, head time.Duration)) (int, error) {
	n, token := 0, ""
	for {
		u := base + "/api/v1/pods?limit=500"
		if token != "" {
			u += "&continue=" + url.QueryEscape(token)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return n, err
		}
		req.Header.Set("Accept", "application/json")
		if protobuf {
			req.Header.Set("Accept", kinds.ContentType)
		}
		at := time.Now()
		resp, err := hc.Do(req)
		if err != nil {
			return n, err
		}
		head := time.Since(at)
		l, err := benchfig.DecodePodList(resp.Body, protobuf)
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode != http.StatusOK {
			err = fmt.Errorf("status %s", resp.Status)
		}
		if err != nil {
			return n, fmt.Errorf("page after %d pods: %w", n, err)
		}
		if page != nil {
			page(time.Since(at), head)
		}
		n += len(l.Items)
		if token = l.Continue; token == "" {
			return n, nil
		}
	}
}
