package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/skiffhq/skiff/test/waitfor"
)

// uiServer is a `skiffctl ui` process.
type uiServer struct {
	url  string
	proc *proc
}

var uiURLRe = regexp.MustCompile(`Serving the Skiff UI on (http://127\.0\.0\.1:\d+/)`)

// startUI runs `skiffctl ui` on a free loopback port against servers and returns its URL.
func startUI(t *testing.T, servers string) *uiServer {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "skiffctl"), "--server", servers, "ui", "--port", "0")
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{name: "skiffctl ui", cmd: cmd, out: out, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of skiffctl ui ---\n%s", lastLines(out.String(), 100))
		}
	})
	var url string
	waitfor.Condition(t, 30*time.Second, "skiffctl ui to print its URL", func() (bool, string) {
		m := uiURLRe.FindStringSubmatch(out.String())
		if m != nil {
			url = m[1]
		}
		return m != nil, out.String()
	})
	return &uiServer{url: url, proc: p}
}

// browser starts a headless Chromium (Debian's chromium; `make test` installs it) and
// returns a tab's context; the test's cleanup closes it.
func browser(t testing.TB) context.Context {
	t.Helper()
	path, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("no chromium (test/tools/install-deps.sh chromium installs it): the UI cannot be tested in a browser")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(path), chromedp.NoSandbox,
		chromedp.WindowSize(1400, 1000), chromedp.UserDataDir(t.TempDir()))
	actx, acancel := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); acancel() })
	// The first action starts the browser, tied to the context it runs in: it runs on the
	// tab's own context (a deadline on it would close the browser with it), and the test
	// waits for it with a deadline of its own, so a browser that never answers fails the
	// test instead of hanging it.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start chromium: %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatalf("start chromium (%s, headless, --no-sandbox): no answer within a minute", path)
	}
	return ctx
}

// evalIn evaluates a JavaScript expression in the page within 10 s.
func evalIn[T any](ctx context.Context, expr string, out *T) error {
	c, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(c, chromedp.Evaluate[T](expr))
	if err == nil {
		*out = v
	}
	return err
}

// screenshot saves the page as name.png in the test's artifact directory (kept with
// `go test -artifacts -outputdir DIR`).
func screenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	c, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	png, err := chromedp.Run(c, chromedp.FullScreenshot(100)) // 100: PNG
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join(t.ArtifactDir(), name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s", path)
}

// uiCluster is three API servers, a controller-manager, a scheduler, simulated nodes and
// `skiffctl ui`.
func uiCluster(t *testing.T, nodes int) (*apiCluster, *uiServer) {
	c := startAPIServers(t)
	s := c.servers()
	start(t, "controller-manager", "controller-manager", "--server", s, "--identity", "cm", "--log-level", "warn")
	start(t, "scheduler", "scheduler", "--server", s, "--identity", "sched", "--log-level", "warn")
	start(t, "kubelets", "kubelet", "--server", s, "--runtime", "sim", "--sim-nodes", fmt.Sprint(nodes), "--node-name", "sim",
		"--kubelet-listen", "127.0.0.1:0", "--log-level", "warn")
	waitfor.Condition(t, 60*time.Second, fmt.Sprintf("%d Ready nodes", nodes), func() (bool, string) {
		out, _, err := ctl(s, "get", "nodes", "--no-headers")
		return err == nil && strings.Count(out, " Ready ") == nodes, out
	})
	return c, startUI(t, s)
}

// TestUIChainMap opens a Deployment's chain map in a real browser before the Deployment
// exists, creates it with 3 replicas through the API, and sees the map reach "3/3 ready"
// with all ten steps done and timed, live (the page is never reloaded).
func TestUIChainMap(t *testing.T) {
	c, ui := uiCluster(t, 2)
	ctx := browser(t)
	nav, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(nav, chromedp.Navigate(ui.url+"#/Deployment/default/web"), chromedp.WaitVisible(chromedp.CSS("#chain"))); err != nil {
		t.Fatalf("open the chain map: %v", err)
	}
	var found string
	if err := evalIn(ctx, `document.querySelector('#chain').dataset.found`, &found); err != nil || found != "false" {
		t.Fatalf("before the Deployment exists the map says found=%q (%v)", found, err)
	}
	mustCtl(t, c.servers(), "create", "deployment", "web", "--image", "docker.io/library/busybox:latest", "--replicas", "3")

	type stepView struct {
		Step string `json:"step"`
		Took string `json:"took"`
		Done bool   `json:"done"`
	}
	var steps []stepView
	var summary string
	waitfor.Condition(t, 90*time.Second, "the chain map to show 3/3 ready with every step done", func() (bool, string) {
		if err := evalIn(ctx, `document.querySelector('#summary') ? document.querySelector('#summary').textContent : ''`, &summary); err != nil {
			return false, err.Error()
		}
		if err := evalIn(ctx, `[...document.querySelectorAll('#chain .step')].map(e => ({step: e.dataset.step, done: e.dataset.done === 'true', took: e.querySelector('.took').textContent}))`, &steps); err != nil {
			return false, err.Error()
		}
		done := 0
		for _, s := range steps {
			if s.Done {
				done++
			}
		}
		return summary == "3/3 ready" && done == len(steps) && len(steps) == 7, fmt.Sprintf("summary %q, steps %+v", summary, steps)
	})
	var labels []string
	took := regexp.MustCompile(`^\+\d+(\.\d+)? m?s`)
	for _, s := range steps {
		labels = append(labels, s.Step)
		if !took.MatchString(s.Took) {
			t.Errorf("step %s is not timed: %q", s.Step, s.Took)
		}
	}
	if got := strings.Join(labels, " "); got != "1 2-3 4-5 6-7 8 9 10" {
		t.Errorf("the map's steps are %q, want the ten: 1 2-3 4-5 6-7 8 9 10", got)
	}
	var lanes []string
	if err := evalIn(ctx, `[...document.querySelectorAll('#chain .lane')].map(e => e.dataset.lane)`, &lanes); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(lanes, ","); got != "user,apiserver,workload controller,replicaset controller,scheduler,kubelet,container runtime" {
		t.Errorf("lanes %q", got)
	}
	screenshot(t, ctx, "chain-map")

	// The cluster view, reached by its link: the Deployment complete, the nodes with its pods.
	waitfor.Condition(t, 30*time.Second, "the cluster view to show web complete", func() (bool, string) {
		var state string
		err := evalIn(ctx, `(location.hash = '#/', document.querySelector('.workload[data-name="Deployment/default/web"] .wstate') || {}).textContent || ''`, &state)
		return err == nil && state == "Complete", fmt.Sprintf("state %q %v", state, err)
	})
	screenshot(t, ctx, "cluster")
}

// TestUILeaderChange shows the cluster view in a real browser, kills the leader of the
// three API servers, and sees the view mark it unreachable and name the new leader,
// without reloading the page.
func TestUILeaderChange(t *testing.T) {
	c, ui := uiCluster(t, 1)
	ctx := browser(t)
	nav, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := chromedp.Do(nav, chromedp.Navigate(ui.url), chromedp.WaitVisible(chromedp.CSS("#raft"))); err != nil {
		t.Fatalf("open the cluster view: %v", err)
	}
	old := fmt.Sprintf("n%d", c.leader()+1)
	type member struct {
		Name   string `json:"name"`
		Role   string `json:"role"`
		Health string `json:"health"`
	}
	var members []member
	var leader string
	read := func() error {
		if err := evalIn(ctx, `document.querySelector('#leader').textContent`, &leader); err != nil {
			return err
		}
		return evalIn(ctx, `[...document.querySelectorAll('#raft .member')].map(e => ({name: e.dataset.name, role: e.dataset.role, health: e.dataset.health}))`, &members)
	}
	waitfor.Condition(t, 30*time.Second, "the view to show "+old+" leading three healthy members", func() (bool, string) {
		if err := read(); err != nil {
			return false, err.Error()
		}
		healthy := 0
		for _, m := range members {
			if m.Health == "healthy" {
				healthy++
			}
		}
		return leader == old && healthy == 3, fmt.Sprintf("leader %q members %+v", leader, members)
	})
	screenshot(t, ctx, "cluster-before")

	c.procs[c.leader()].kill()
	waitfor.Condition(t, 60*time.Second, "the view to show a new leader and "+old+" unreachable", func() (bool, string) {
		if err := read(); err != nil {
			return false, err.Error()
		}
		var oldHealth, newRole string
		for _, m := range members {
			if m.Name == old {
				oldHealth = m.Health
			}
			if m.Name == leader {
				newRole = m.Role
			}
		}
		return leader != old && leader != "none" && leader != "" && oldHealth == "unreachable" && newRole == "leader",
			fmt.Sprintf("leader %q members %+v", leader, members)
	})
	t.Logf("leader %s killed; the view shows %s leading", old, leader)
	screenshot(t, ctx, "cluster-after")
}

// uiOpen points the tab at the UI's route: the first time by loading the page, then by
// changing its hash as a link does (the page is not reloaded), and waits for sel.
func uiOpen(t *testing.T, ctx context.Context, url, sel string) {
	t.Helper()
	var loaded bool
	if evalIn(ctx, `!!document.querySelector('#app')`, &loaded); !loaded {
		nav, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		if err := chromedp.Do(nav, chromedp.Navigate(url)); err != nil {
			t.Fatalf("open %s: %v", url, err)
		}
		// The page's uncaught errors, which pageErrors reports.
		evalIn(ctx, `window.pageErrors = []; addEventListener('error', (e) => pageErrors.push(e.message + ' at ' + e.filename + ':' + e.lineno)); true`, new(bool))
	} else {
		hash := url[strings.Index(url, "#"):]
		if err := evalIn(ctx, fmt.Sprintf(`(location.hash = %q, true)`, hash), new(bool)); err != nil {
			t.Fatalf("open %s: %v", hash, err)
		}
	}
	waitfor.Condition(t, 60*time.Second, "the page to show "+sel, func() (bool, string) {
		var ok bool
		err := evalIn(ctx, fmt.Sprintf(`!!document.querySelector(%q)`, sel), &ok)
		return err == nil && ok, fmt.Sprint(err)
	})
}

// pageErrors fails the test when the page threw (an error a render hit stops the page).
func pageErrors(t *testing.T, ctx context.Context) {
	t.Helper()
	var errs []string
	if err := evalIn(ctx, `window.pageErrors || []`, &errs); err != nil || len(errs) > 0 {
		t.Errorf("the page threw: %q %v", errs, err)
	}
}

// uiText is the text of the elements matching sel, joined by " | ".
func uiText(ctx context.Context, sel string) (string, error) {
	var s string
	err := evalIn(ctx, fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.textContent.replace(/\s+/g, ' ').trim()).join(' | ')`, sel), &s)
	return s, err
}

// TestUIKinds opens, in a real browser, the other kinds the map shows: a Job whose chain
// completes (steps 1 to 10 timed, "1/1 succeeded"); a Service with its endpoints and the
// Deployment and pods behind it; and a Deployment whose pod no node fits, whose step
// 6-7 shows the scheduler's Warning event ("0/2 nodes are available: 2 Insufficient
// cpu.").
func TestUIKinds(t *testing.T) {
	c, ui := uiCluster(t, 2)
	s := c.servers()
	ctx := browser(t)

	t.Run("Job", func(t *testing.T) {
		defer pageErrors(t, ctx)
		uiOpen(t, ctx, ui.url+"#/Job/default/pi", "#chain")
		mustCtl(t, s, "create", "job", "pi", "--image", "docker.io/library/busybox:latest", "--", "sh", "-c", "sleep 1; exit 0")
		type stepView struct {
			Step string `json:"step"`
			Took string `json:"took"`
			Done bool   `json:"done"`
		}
		var steps []stepView
		var summary string
		waitfor.Condition(t, 90*time.Second, "the Job's chain map to show 1/1 succeeded with every step done", func() (bool, string) {
			var err error
			if summary, err = uiText(ctx, "#summary"); err != nil {
				return false, err.Error()
			}
			if err := evalIn(ctx, `[...document.querySelectorAll('#chain .step')].map(e => ({step: e.dataset.step, done: e.dataset.done === 'true', took: e.querySelector('.took').textContent}))`, &steps); err != nil {
				return false, err.Error()
			}
			done := 0
			for _, s := range steps {
				if s.Done {
					done++
				}
			}
			return summary == "1/1 succeeded" && len(steps) == 7 && done == 7, fmt.Sprintf("summary %q steps %+v", summary, steps)
		})
		var labels []string
		took := regexp.MustCompile(`^\+\d+(\.\d+)? m?s`)
		for _, s := range steps {
			labels = append(labels, s.Step)
			if !took.MatchString(s.Took) {
				t.Errorf("step %s is not timed: %q", s.Step, s.Took)
			}
		}
		if got := strings.Join(labels, " "); got != "1 2-3 4-5 6-7 8 9 10" {
			t.Errorf("the Job's steps are %q", got)
		}
		if title, _ := uiText(ctx, "#chain .step[data-step='10'] b"); title != "Pod completed" {
			t.Errorf("step 10 is %q, want Pod completed", title)
		}
		screenshot(t, ctx, "job-chain")
		// The cluster view lists it, Complete, with its link.
		uiOpen(t, ctx, ui.url+"#/", "#workloads")
		waitfor.Condition(t, 30*time.Second, "the cluster view to show job pi Complete", func() (bool, string) {
			txt, err := uiText(ctx, `.workload[data-name="Job/default/pi"]`)
			return err == nil && strings.Contains(txt, "Complete") && strings.Contains(txt, "job/pi"), txt
		})
	})

	t.Run("Service", func(t *testing.T) {
		defer pageErrors(t, ctx)
		// One replica: the simulated nodes give every pod the same address, and the
		// EndpointSlice controller keeps one endpoint per address.
		mustCtl(t, s, "create", "deployment", "web", "--image", "docker.io/library/busybox:latest", "--replicas", "1")
		mustCtl(t, s, "expose", "deployment", "web", "--port", "80", "--target-port", "8080")
		uiOpen(t, ctx, ui.url+"#/Service/default/web", "#service")
		waitfor.Condition(t, 90*time.Second, "the Service view to show 1 ready endpoint, deployment/web's pod", func() (bool, string) {
			summary, err := uiText(ctx, "#summary")
			if err != nil {
				return false, err.Error()
			}
			backers, _ := uiText(ctx, "#backers .backer")
			var eps []map[string]string
			evalIn(ctx, `[...document.querySelectorAll('#endpoint-list .endpoint')].map(e => ({...e.dataset}))`, &eps)
			var pods []map[string]string
			evalIn(ctx, `[...document.querySelectorAll('#backing-pods .backing-pod')].map(e => ({...e.dataset, text: e.textContent}))`, &pods)
			ready, endpoints := 0, 0
			for _, e := range eps {
				if e["ready"] == "true" && e["serving"] == "true" && e["terminating"] == "false" && strings.HasPrefix(e["pod"], "web-") {
					ready++
				}
			}
			for _, p := range pods {
				if p["endpoint"] == "true" {
					endpoints++
				}
			}
			return summary == "1/1 endpoints ready" && strings.Contains(backers, "deployment/web (1 pod)") && ready == 1 && endpoints == 1,
				fmt.Sprintf("summary %q backers %q endpoints %v pods %v", summary, backers, eps, pods)
		})
		screenshot(t, ctx, "service")
	})

	t.Run("Unschedulable", func(t *testing.T) {
		defer pageErrors(t, ctx)
		uiOpen(t, ctx, ui.url+"#/Deployment/default/huge", "#chain")
		if _, errs, err := ctlIn(s, `apiVersion: apps/v1
kind: Deployment
metadata: {name: huge, namespace: default}
spec:
  replicas: 1
  selector: {matchLabels: {app: huge}}
  template:
    metadata: {labels: {app: huge}}
    spec:
      containers:
      - name: app
        image: docker.io/library/busybox:latest
        resources: {requests: {cpu: "1000"}}
`, "apply", "-f", "-"); err != nil {
			t.Fatalf("apply: %v: %s", err, errs)
		}
		waitfor.Condition(t, 60*time.Second, "step 6-7 to show the scheduler's FailedScheduling event", func() (bool, string) {
			why, err := uiText(ctx, "#chain .step.stuck[data-step='6-7'] .why")
			if err != nil {
				return false, err.Error()
			}
			reason, _ := uiText(ctx, "#pods .stuck-reason[data-step='6-7'] .warning-event")
			return strings.HasPrefix(why, "FailedScheduling: 0/2 nodes are available:") && strings.Contains(why, "2 Insufficient cpu") &&
				strings.Contains(reason, "Warning FailedScheduling 0/2 nodes are available:"), fmt.Sprintf("step %q reason %q", why, reason)
		})
		screenshot(t, ctx, "unschedulable")
	})
}
