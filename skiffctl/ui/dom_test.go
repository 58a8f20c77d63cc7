package ui

import (
	"context"
	"errors"
	"net/http"
	"os/exec"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

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

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer acancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser, for ctx's lifetime
		t.Fatalf("start chromium: %v", err)
	}
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
