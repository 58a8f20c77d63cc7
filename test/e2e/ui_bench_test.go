package e2e

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/hashicorp/go-hclog"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/ui"
	"github.com/skiffhq/skiff/store"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
	"github.com/skiffhq/skiff/test/waitfor"
)

// BenchmarkUIUpdateLag: the time from a change of a Deployment in the store to the chain
// map in a real (headless) Chromium showing it, while the Deployment's 1,000 replicas
// roll out on 100 simulated nodes and then roll out again to a new template. Every
// 100 ms the benchmark writes an annotation on the Deployment; the page records when its
// DOM first shows each resourceVersion (#chain's data-rv, by a MutationObserver). The
// change is in the store when the leader applies it on its commit: each member's store
// (in process) stamps the events it applies (store.Event.Applied), and the benchmark
// reads them from a watch on every member's store; the first member to apply a
// revision is the leader. The lag of a change is from that commit to the DOM (the same
// machine's clock). The log also gives the same from just before the write (an upper
// bound, counting the write's own commit) and the parts. The cluster is the other
// end-to-end benchmarks' (in process, with TLS and each component's certificate, as
// shipped); skiffctl ui's server runs in process too, as the admin.
func BenchmarkUIUpdateLag(b *testing.B) {
	benchUILag(b, "ui_update_lag", 1000, 100, 2)
}

// uiLagBudget bounds a run's timed part: the rollouts and the wait for the page.
const uiLagBudget = 10 * time.Minute

// BenchmarkUIUpdateLag10000r: the same during the rollout of a Deployment of 10,000
// replicas on 1,000 simulated nodes (one rollout: its creation), the page showing the
// chain map with its pods aggregated by state and node (target p99 < 1 s).
func BenchmarkUIUpdateLag10000r(b *testing.B) {
	benchUILag(b, "ui_update_lag_10000r", 10000, 1000, 1)
}

// benchUILag measures name_p50 and name_p99 over rollouts rollouts of replicas pods on
// nodes simulated nodes. Every wait has a deadline (the timed part as a whole has
// uiLagBudget) and fails saying how far the run got; while it runs, a progress line on
// stderr every 10 s says where the pods, the writes and the page are.
func benchUILag(b *testing.B, name string, replicas int32, nodes, rollouts int) {
	benchfig.Want(b, name+"_p99", name+"_p50")
	// Chromium starts before the cluster: with a thousand simulated nodes running, the
	// loaded machine gave it no answer within its minute.
	tab := browser(b)
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
	defer func() {
		uicancel()
		select {
		case <-uidone:
		case <-time.After(30 * time.Second):
			b.Errorf("skiffctl ui's server did not stop within 30 s of its context's end")
		}
	}()

	nav, cancel := context.WithTimeout(tab, 30*time.Second)
	defer cancel()
	// For the breakdown, the page also notes when each chain map, or the Deployment's own
	// change (the chain's head, sent ahead of the pods' aggregation), arrives on its
	// stream, before it renders it: a listener of its own on the page's EventSource,
	// installed before the page's script runs.
	if _, err := chromedp.Call(nav, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: `
		window.streamed = [];
		const Native = window.EventSource;
		window.EventSource = function (url, opts) {
			const es = new Native(url, opts);
			const note = (e) => streamed.push([+JSON.parse(e.data).resourceVersion, Date.now()]);
			es.addEventListener('chain', note);
			es.addEventListener('head', note);
			return es;
		};`}); err != nil {
		b.Fatalf("hook the page's stream: %v", err)
	}
	if err := chromedp.Do(nav, chromedp.Navigate(srv.URL()+"#/Deployment/default/bench"), chromedp.WaitVisible(chromedp.CSS("#chain"))); err != nil {
		b.Fatalf("open the chain map: %v", err)
	}
	// The page notes when each resourceVersion first shows.
	if err := evalIn(tab, `window.seen = []; new MutationObserver(() => {
		const e = document.querySelector('#chain'), rv = e && +e.dataset.rv;
		if (rv && (seen.length === 0 || seen[seen.length-1][0] !== rv)) seen.push([rv, Date.now()]);
	}).observe(document.body, {subtree: true, childList: true, attributes: true}); true`, new(bool)); err != nil {
		b.Fatalf("watch the page's DOM: %v", err)
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

	// How far the run got, for the progress lines and for a failure's message.
	var (
		written atomic.Int64           // changes written
		lastRV  atomic.Int64           // the last change's resourceVersion
		status  atomic.Pointer[string] // the Deployment's status as last read
		phase   atomic.Pointer[string] // which rollout
	)
	status.Store(new(string))
	phase.Store(new(string))
	pageRV := func() string {
		var rv string
		if err := evalIn(tab, `(document.querySelector('#chain') || {dataset: {}}).dataset.rv || 'none'`, &rv); err != nil {
			return "unknown (" + err.Error() + ")"
		}
		return rv
	}
	where := func() string {
		return fmt.Sprintf("%s; %d changes written, the last rv %d; the page shows rv %s; deployment %s",
			*phase.Load(), written.Load(), lastRV.Load(), pageRV(), *status.Load())
	}
	// The informers and the progress lines end with the benchmark: the cluster's ctx ends
	// only after every deferred call here, so waiting for informers on it hung the run
	// (after its figures) until the cluster's 20 minutes were up.
	fctx, fcancel := context.WithCancel(ctx)
	var commits sync.WaitGroup
	defer func() { fcancel(); f.Wait(); commits.Wait() }()
	watchStages(fctx, f, "default", where)
	f.Start(fctx)

	// When each change was committed: the earliest a member applied it (the leader's
	// apply), from a watch of the Deployment on each member's store.
	var committedMu sync.Mutex
	committed := map[int64]time.Time{}
	for i := range c.Addrs() {
		w, err := c.Server(i).Store().Watch(store.WatchOptions{Kind: kinds.Deployment, Namespace: "default"})
		if err != nil {
			b.Fatalf("watch member %d's store: %v", i, err)
		}
		commits.Add(1)
		go func() {
			defer commits.Done()
			defer w.Close()
			for {
				evs, err := w.Next(fctx)
				if err != nil {
					return // the benchmark's end, or the member's
				}
				committedMu.Lock()
				for _, ev := range evs {
					at := time.Unix(0, ev.Applied)
					if t, ok := committed[ev.Revision]; ev.Applied != 0 && (!ok || at.Before(t)) {
						committed[ev.Revision] = at
					}
				}
				committedMu.Unlock()
			}
		}()
	}

	lbl := map[string]string{"app": "bench"}
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: "bench", Namespace: "default"}, Spec: appsv1.DeploymentSpec{
		Replicas: ptr.To(replicas), Selector: &metav1.LabelSelector{MatchLabels: lbl},
		Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}, Spec: corev1.PodSpec{
			Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"}}}}}}}
	b.ResetTimer()
	tctx, tcancel := context.WithTimeout(ctx, uiLagBudget)
	defer tcancel()
	if _, err := cs.Deployments.Create(tctx, d); err != nil {
		b.Fatalf("create the Deployment: %v", err)
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
			cur, err := cs.Deployments.Get(tctx, "default", "bench")
			if err != nil {
				b.Fatalf("read the Deployment (%v): %v; %s", uiLagBudget, err, where())
			}
			change(cur)
			at := time.Now()
			got, err := cs.Deployments.Update(tctx, cur)
			if tctx.Err() == nil && (client.IsConflict(err) || client.IsUnknownOutcome(err) || client.IsUnavailable(err)) {
				continue // re-read: the write may have failed, or landed (a loaded machine loses leaders)
			}
			if err != nil {
				b.Fatalf("update the Deployment (%v): %v; %s", uiLagBudget, err, where())
			}
			rv, _ := strconv.ParseInt(got.ResourceVersion, 10, 64)
			marks = append(marks, mark{at: at, written: time.Now(), rv: rv})
			written.Store(int64(len(marks)))
			lastRV.Store(rv)
			return
		}
	}
	rolledOut := func(image string) bool {
		cur, err := cs.Deployments.Get(tctx, "default", "bench")
		if err != nil {
			st := "unread: " + err.Error()
			status.Store(&st)
			return false
		}
		st := cur.Status
		line := fmt.Sprintf("generation %d observed %d, %d replicas, %d updated, %d ready (of %d, image %s)",
			cur.Generation, st.ObservedGeneration, st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, replicas,
			cur.Spec.Template.Spec.Containers[0].Image)
		status.Store(&line)
		return st.ObservedGeneration >= cur.Generation && st.UpdatedReplicas == replicas &&
			st.ReadyReplicas == replicas && st.Replicas == replicas && cur.Spec.Template.Spec.Containers[0].Image == image
	}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for i, image := range []string{"busybox", "busybox:1.36"}[:rollouts] {
		p := fmt.Sprintf("rollout %d of %d (%s)", i+1, rollouts, image)
		phase.Store(&p)
		if i == 1 {
			update(func(d *appsv1.Deployment) { d.Spec.Template.Spec.Containers[0].Image = image })
		}
		for !rolledOut(image) {
			if tctx.Err() != nil {
				b.Fatalf("not rolled out within %v: %s", uiLagBudget, where())
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
	p := "after the rollouts"
	phase.Store(&p)
	last := marks[len(marks)-1].rv
	var seen, streamed [][2]int64
	waitfor.Condition(b, 30*time.Second, fmt.Sprintf("the page to show the last change (rv %d)", last), func() (bool, string) {
		if err := evalIn(tab, `seen`, &seen); err != nil {
			return false, err.Error()
		}
		if len(seen) == 0 {
			return false, "the page showed no resourceVersion"
		}
		return seen[len(seen)-1][0] >= last, fmt.Sprintf("the page shows rv %d (since %s)", seen[len(seen)-1][0],
			time.UnixMilli(seen[len(seen)-1][1]).Format(time.TimeOnly))
	})
	if err := evalIn(tab, `streamed`, &streamed); err != nil {
		b.Fatalf("read when the chain maps arrived: %v", err)
	}
	b.StopTimer()
	// The lag of each change from its commit, and from just before its write (the
	// upper bound); and its parts: the write until its commit and its reply, the store's
	// watch delivery to a client (from the commit), then the UI server (from that
	// delivery to the page receiving the chain map: its cache, the view, the throttle,
	// the stream) and the page (from there to the DOM: parse, render).
	first := func(of [][2]int64, rv int64) (time.Time, bool) {
		for _, s := range of {
			if s[0] >= rv {
				return time.UnixMilli(s[1]), true
			}
		}
		return time.Time{}, false
	}
	var lags, fromWrite, commitsIn, replies, writes, watches, servers, pages []time.Duration
	arrivedMu.Lock()
	defer arrivedMu.Unlock()
	committedMu.Lock()
	defer committedMu.Unlock()
	for _, m := range marks {
		shown, ok := first(seen, m.rv)
		if !ok {
			b.Fatalf("the page never showed resourceVersion %d (last shown %v)", m.rv, seen[len(seen)-1])
		}
		at, ok := committed[m.rv]
		if !ok {
			b.Fatalf("no member's store applied resourceVersion %d", m.rv)
		}
		lags = append(lags, max(0, shown.Sub(at)))
		fromWrite = append(fromWrite, max(0, shown.Sub(m.at)))
		commitsIn = append(commitsIn, at.Sub(m.at))
		replies = append(replies, m.written.Sub(at))
		writes = append(writes, m.written.Sub(m.at))
		a, delivered := arrived[m.rv]
		if delivered {
			watches = append(watches, a.Sub(at))
		}
		if got, ok := first(streamed, m.rv); ok {
			pages = append(pages, max(0, shown.Sub(got)))
			if delivered {
				servers = append(servers, max(0, got.Sub(a)))
			}
		}
	}
	pct := func(d []time.Duration) string {
		return fmt.Sprintf("p50 %.0f ms p99 %.0f ms", benchfig.Percentile(d, 0.5), benchfig.Percentile(d, 0.99))
	}
	b.Logf("%d changes during %d rollout(s) of %d replicas: from the commit to the DOM %s (from just before the write %s); "+
		"the write %s (until its commit %s, from the commit to its reply %s); watch delivery from the commit %s; "+
		"then the UI server to the page's stream %s; then the page's render %s",
		len(lags), rollouts, replicas, pct(lags), pct(fromWrite), pct(writes), pct(commitsIn), pct(replies), pct(watches), pct(servers), pct(pages))
	benchfig.Report(name+"_p50", benchfig.Percentile(lags, 0.5), "ms")
	benchfig.Report(name+"_p99", benchfig.Percentile(lags, 0.99), "ms")
}
