package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os/exec"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestPageScale serves the page the views of a Deployment of 10,000 pods on 1,000 nodes
// (fixed objects, no cluster) and counts, in a real headless Chromium, the elements the
// page draws: the pods are aggregated by state and node and the lists virtualized, so the
// chain map and the cluster view stay a few hundred elements, not one or more per pod
// or node.
func TestPageScale(t *testing.T) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium (test/tools/install-deps.sh chromium installs it): the page cannot be tested in a browser")
	}
	s := newTestServer(t)
	objs := bigRollout(10000, 1000)
	s.objects = func() *Objects { return objs }
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(s.ln)
	t.Cleanup(func() { srv.Close() })

	ctx := startBrowser(t, path)
	for _, tc := range []struct {
		route, summary string
		rows           string // a virtualized list's rows
	}{
		{"#/Deployment/default/web", "8000/10000 ready", "#pod-nodes .vrow"},
		{"#/", "", "#node-list .vrow"},
	} {
		c, cancel := context.WithTimeout(ctx, 120*time.Second)
		err := chromedp.Do(c, chromedp.Navigate(s.URL()+tc.route), chromedp.WaitVisible(chromedp.CSS(tc.rows)))
		cancel()
		if err != nil {
			var text string
			evalIn(ctx, `document.body.innerText.slice(0, 500)`, &text)
			t.Fatalf("open %s: %v; the page says %q", tc.route, err, text)
		}
		var elements, rows int
		var summary string
		waitfor.Condition(t, 30*time.Second, tc.route+" drawn", func() (bool, string) {
			err := errors.Join(evalIn(ctx, `document.getElementsByTagName('*').length`, &elements),
				evalIn(ctx, `document.querySelectorAll('`+tc.rows+`').length`, &rows),
				evalIn(ctx, `(document.querySelector('#summary') || {}).textContent || ''`, &summary))
			return err == nil && rows > 0 && summary == tc.summary, summary
		})
		t.Logf("%s: %d elements, %d rows of %s drawn", tc.route, elements, rows, tc.rows)
		if elements > 1500 || rows > 50 {
			t.Errorf("%s draws %d elements (%d rows of %s) for 10,000 pods on 1,000 nodes: want at most 1,500 and 50 rows", tc.route, elements, rows, tc.rows)
		}
	}
}

// evalIn evaluates a JavaScript expression in the page within 30 s.
func evalIn[T any](ctx context.Context, expr string, out *T) error {
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err == nil {
		*out = v
	}
	return err
}

func startBrowser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	if err := chromedp.Do(ctx); err != nil { // starts the browser, for ctx's lifetime
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// TestPageService shows a Service's view in Chromium (fixed objects: TestBuildService's),
// then follows its link to the Deployment's chain map, without reloading the page: its
// endpoints with their conditions, the pods marked as endpoints or not, the Deployment
// behind it.
func TestPageService(t *testing.T) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium (test/tools/install-deps.sh chromium installs it): the page cannot be tested in a browser")
	}
	s := newTestServer(t)
	objs := serviceObjects()
	s.objects = func() *Objects { return objs }
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(s.ln)
	t.Cleanup(func() { srv.Close() })
	ctx := startBrowser(t, path)
	c, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if err := chromedp.Do(c, chromedp.Navigate(s.URL()+"#/Service/default/web"), chromedp.WaitVisible(chromedp.CSS("#endpoint-list .endpoint"))); err != nil {
		t.Fatalf("open the service: %v", err)
	}
	type row struct {
		Pod, Ready, Serving, Terminating, Endpoint, Name string
	}
	var eps, pods []row
	var summary, backers string
	err = errors.Join(evalIn(ctx, `[...document.querySelectorAll('#endpoint-list .endpoint')].map(e => ({Pod: e.dataset.pod, Ready: e.dataset.ready, Serving: e.dataset.serving, Terminating: e.dataset.terminating}))`, &eps),
		evalIn(ctx, `[...document.querySelectorAll('#backing-pods .backing-pod')].map(e => ({Name: e.dataset.name, Endpoint: e.dataset.endpoint}))`, &pods),
		evalIn(ctx, `document.querySelector('#summary').textContent`, &summary),
		evalIn(ctx, `document.querySelector('#backers').textContent`, &backers))
	if err != nil {
		t.Fatal(err)
	}
	wantEps := []row{{Pod: "web-1-a", Ready: "false", Serving: "true", Terminating: "true"}, {Pod: "web-2-a", Ready: "true", Serving: "true", Terminating: "false"}}
	wantPods := []row{{Name: "web-1-a", Endpoint: "true"}, {Name: "web-2-a", Endpoint: "true"}, {Name: "web-2-b", Endpoint: "false"}, {Name: "web-2-c", Endpoint: "false"}}
	if summary != "1/2 endpoints ready" || !reflect.DeepEqual(eps, wantEps) || !reflect.DeepEqual(pods, wantPods) || !strings.Contains(backers, "deployment/web (4 pods)") {
		t.Fatalf("service view: summary %q endpoints %+v pods %+v backers %q", summary, eps, pods, backers)
	}
	// The Deployment's link opens its chain map in the same page.
	if err := evalIn(ctx, `(document.querySelector('#backers a').click(), true)`, new(bool)); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 60*time.Second, "the chain map of deployment web", func() (bool, string) {
		var got, hash string
		err := errors.Join(evalIn(ctx, `(document.querySelector('#chain #summary') || {}).textContent || ''`, &got), evalIn(ctx, `location.hash`, &hash))
		return err == nil && got == "1/3 ready" && hash == "#/Deployment/default/web", fmt.Sprintf("%q at %s %v", got, hash, err)
	})
}

// TestPageHead: a change of the workload reaches the chain map on its own, as the chain's
// head (the stream's builder here never builds again: its throttle is an hour), and the
// page shows it: the Deployment's resourceVersion and its rollout state.
func TestPageHead(t *testing.T) {
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium (test/tools/install-deps.sh chromium installs it): the page cannot be tested in a browser")
	}
	s := newTestServer(t)
	s.cfg.Throttle = time.Hour
	objs := rollout()
	var d atomic.Pointer[appsv1.Deployment]
	d.Store(objs.Deployments[0])
	s.objects = func() *Objects { return objs }
	s.workloadObjects = func(string, string, string) *Objects {
		return &Objects{Deployments: []*appsv1.Deployment{d.Load()}}
	}
	srv := &http.Server{Handler: s.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(s.ln)
	t.Cleanup(func() { srv.Close() })
	ctx := startBrowser(t, path)
	c, cancel := context.WithTimeout(ctx, 120*time.Second)
	defer cancel()
	if err := chromedp.Do(c, chromedp.Navigate(s.URL()+"#/Deployment/default/web"), chromedp.WaitVisible(chromedp.CSS("#rollout"))); err != nil {
		t.Fatalf("open the chain map: %v", err)
	}
	shown := func() (rv, state, rollout string, err error) {
		err = errors.Join(evalIn(ctx, `document.querySelector('#chain').dataset.rv`, &rv),
			evalIn(ctx, `document.querySelector('#rollout').dataset.state`, &state),
			evalIn(ctx, `document.querySelector('#rollout').textContent`, &rollout))
		return rv, state, rollout, err
	}
	if rv, state, rollout, err := shown(); err != nil || rv != "40" || state != "Progressing" || !strings.Contains(rollout, "3 updated · 2 ready · 2 available of 3") {
		t.Fatalf("before the change: rv %q, %q (%q) %v", rv, state, rollout, err)
	}
	done := d.Load().DeepCopy()
	done.ResourceVersion = "41"
	done.Status = appsv1.DeploymentStatus{ObservedGeneration: 2, Replicas: 3, UpdatedReplicas: 3, ReadyReplicas: 3, AvailableReplicas: 3}
	d.Store(done)
	s.hub.changed(objectKey(kinds.Deployment, "default", "web"))
	waitfor.Condition(t, 30*time.Second, "the page to show the Deployment's change", func() (bool, string) {
		rv, state, rollout, err := shown()
		return err == nil && rv == "41" && state == "Complete" && strings.Contains(rollout, "3 updated · 3 ready · 3 available of 3"),
			fmt.Sprintf("rv %q, %q (%q) %v", rv, state, rollout, err)
	})
}
