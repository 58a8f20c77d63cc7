package e2e

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/skiffctl/ui"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// BenchmarkUIUpdateLag: the time from a change of a Deployment in the store to the chain
// map in a real (headless) Chromium showing it, while the Deployment's 1,000 replicas
// roll out on 100 simulated nodes and then roll out again to a new template. Every
// 100 ms the benchmark writes an annotation on the Deployment and notes the time just
// before the write; the page records when its DOM first shows each resourceVersion
// (#chain's data-rv, by a MutationObserver); the lag of a change is the difference (the
// same machine's clock). It counts the write's own commit, so it is an upper bound of
// the store-to-DOM time. The cluster is the other end-to-end benchmarks' (in process,
// with TLS and each component's certificate, as shipped); skiffctl ui's server runs in
// process too, as the admin.
func BenchmarkUIUpdateLag(b *testing.B) {
	benchUILag(b, "ui_update_lag", 1000, 100, 2)
}

// BenchmarkUIUpdateLag10000r: the same during the rollout of a Deployment of 10,000
// replicas on 1,000 simulated nodes (one rollout: its creation), the page showing the
// chain map with its pods aggregated by state and node (target p99 < 1 s).
func BenchmarkUIUpdateLag10000r(b *testing.B) {
	benchUILag(b, "ui_update_lag_10000r", 10000, 1000, 1)
}

// benchUILag measures name_p50 and name_p99 over rollouts rollouts of replicas pods on
// nodes simulated nodes.
func benchUILag(b *testing.B, name string, replicas int32, nodes, rollouts int) {
	benchfig.Want(b, name+"_p99", name+"_p50")
	c, cs, ctx, stop := benchCluster(b, nodes, true)
	defer stop()
	// The shipped configuration: TLS, the admin's certificate, authorization, default limits.
	srv, err := ui.New(ui.Config{Listen: "127.0.0.1:0", Servers: c.Addrs(),
		Options: client.Options{TLS: apicluster.ClientTLS(b, c.CertsDir(), "admin")}})
	if err != nil {
		b.Fatal(err)
	}
	uictx, uicancel := context.WithCancel(ctx)
	uidone := make(chan error, 1)
	go func() { uidone <- srv.Run(uictx) }()
	defer func() { uicancel(); <-uidone }()

	tab := browser(b)
	nav, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(nav, chromedp.Navigate(srv.URL()+"#/Deployment/default/bench"), chromedp.WaitVisible(chromedp.CSS("#chain"))); err != nil {
		b.Fatalf("open the chain map: %v", err)
	}
	// The page notes when each resourceVersion first shows.
	if err := evalIn(tab, `window.seen = []; new MutationObserver(() => {
		const e = document.querySelector('#chain'), rv = e && +e.dataset.rv;
		if (rv && (seen.length === 0 || seen[seen.length-1][0] !== rv)) seen.push([rv, Date.now()]);
	}).observe(document.body, {subtree: true, childList: true, attributes: true}); true`, new(bool)); err != nil {
		b.Fatal(err)
	}

	// What a watcher of the store sees, for the breakdown: when each resourceVersion of
	// the Deployment arrives.
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	var arrivedMu sync.Mutex
	arrived := map[int64]time.Time{}
	note := func(d *appsv1.Deployment) {
		rv, _ := strconv.ParseInt(d.ResourceVersion, 10, 64)
		arrivedMu.Lock()
		arrived[rv] = time.Now()
		arrivedMu.Unlock()
	}
	cache.InformerFor[*appsv1.Deployment](f, "default", client.ListOptions{}).AddHandler(cache.Handler[*appsv1.Deployment]{
		OnAdd: note, OnUpdate: func(_, d *appsv1.Deployment) { note(d) }})
	f.Start(ctx)
	defer f.Wait()

	lbl := map[string]string{"app": "bench"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"}}}}}}}
	b.ResetTimer()
	if _, err := cs.Deployments.Create(ctx, d); err != nil {
		b.Fatal(err)
	}
	type mark struct {
		at, written time.Time
		rv          int64
	}
	var marks []mark
	// update changes the Deployment (an annotation, or the template to start the second
	// rollout), retrying on conflicts with the controller's status writes and on writes
	// whose outcome a change of leader left unknown.
	update := func(change func(*appsv1.Deployment)) {
		for {
			cur, err := cs.Deployments.Get(ctx, "default", "bench")
			if err != nil {
				b.Fatal(err)
			}
			change(cur)
			at := time.Now()
			got, err := cs.Deployments.Update(ctx, cur)
			if client.IsConflict(err) || client.IsUnknownOutcome(err) || client.IsUnavailable(err) {
				continue // re-read: the write may have failed, or landed (a loaded machine loses leaders)
			}
			if err != nil {
				b.Fatal(err)
			}
			rv, _ := strconv.ParseInt(got.ResourceVersion, 10, 64)
			marks = append(marks, mark{at: at, written: time.Now(), rv: rv})
			return
		}
	}
	rolledOut := func(image string) bool {
		cur, err := cs.Deployments.Get(ctx, "default", "bench")
		return err == nil && cur.Status.ObservedGeneration >= cur.Generation && cur.Status.UpdatedReplicas == replicas &&
			cur.Status.ReadyReplicas == replicas && cur.Status.Replicas == replicas && cur.Spec.Template.Spec.Containers[0].Image == image
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for phase, image := range []string{"busybox", "busybox:1.36"}[:rollouts] {
		if phase == 1 {
			update(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image })
		}
		for n := 0; !rolledOut(image); n++ {
			if ctx.Err() != nil {
				b.Fatalf("rollout of %s not done", image)
			}
			update(func(d *appsv1.Deployment) {
				if d.Annotations == nil {
					d.Annotations = map[string]string{}
				}
				d.Annotations["bench.skiff.dev/mark"] = fmt.Sprint(len(marks))
			})
			<-tick.C
		}
	}
	// The last change has time to show.
	last := marks[len(marks)-1].rv
	deadline := time.Now().Add(30 * time.Second)
	var seen [][2]int64
	for {
		if err := evalIn(tab, `seen`, &seen); err != nil {
			b.Fatal(err)
		}
		if len(seen) > 0 && seen[len(seen)-1][0] >= last || time.Now().After(deadline) {
			break
		}
		<-tick.C
	}
	b.StopTimer()
	var lags, writes, watches []time.Duration
	arrivedMu.Lock()
	for _, m := range marks {
		writes = append(writes, m.written.Sub(m.at))
		if a, ok := arrived[m.rv]; ok {
			watches = append(watches, a.Sub(m.at))
		}
	}
	arrivedMu.Unlock()
	for _, m := range marks {
		shown := int64(-1)
		for _, s := range seen {
			if s[0] >= m.rv {
				shown = s[1]
				break
			}
		}
		if shown < 0 {
			b.Fatalf("the page never showed resourceVersion %d (last shown %v)", m.rv, seen[len(seen)-1])
		}
		lags = append(lags, max(0, time.UnixMilli(shown).Sub(m.at)))
	}
	b.Logf("%d changes during %d rollout(s) of %d replicas; write p50 %.0f ms p99 %.0f ms; watch delivery p50 %.0f ms p99 %.0f ms",
		len(lags), rollouts, replicas, benchfig.Percentile(writes, 0.5), benchfig.Percentile(writes, 0.99),
		benchfig.Percentile(watches, 0.5), benchfig.Percentile(watches, 0.99))
	benchfig.Report(name+"_p50", benchfig.Percentile(lags, 0.5), "ms")
	benchfig.Report(name+"_p99", benchfig.Percentile(lags, 0.99), "ms")
}
