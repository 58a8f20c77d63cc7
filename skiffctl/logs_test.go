package skiffctl_test

import (
	"bytes"
	"context"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/sim"
	"github.com/skiffhq/skiff/skiffctl"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestLogs runs skiffctl logs against a cluster with a simulated node whose kubelet
// serves logs.
func TestLogs(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := strings.Join(c.Addrs(), ",")
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// A simulated node with its log server on loopback.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rt := sim.New(sim.Config{})
	cfg := kubelet.DefaultConfig()
	cfg.NodeName, cfg.NodeIP, cfg.LogPort, cfg.RelistPeriod = "w1", "127.0.0.1", ln.Addr().(*net.TCPAddr).Port, 50*time.Millisecond
	cfg.RootDir = t.TempDir() // not the host's /var/lib/skiff/kubelet: termination logs are written there
	cfg.BackoffInitial, cfg.BackoffMax = 10*time.Millisecond, 20*time.Millisecond // restarts at once, for --previous
	k, err := kubelet.New(client.NewClientset(conn), rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ls := kubelet.NewLogServer(nil)
	ls.Register("w1", rt)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); k.Run(ctx) }()
	go func() { defer wg.Done(); ls.Serve(ctx, ln, nil) }()
	defer func() { cancel(); wg.Wait() }()

	code, _, errs := run(t, s, `apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: w1
  containers:
  - {name: nginx, image: nginx, command: [sh, -c, "echo serving on port 80; sleep 3600"]}
  - {name: sidecar, image: busybox, command: [sh, -c, "echo sidecar up; sleep 3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: lone}
spec:
  nodeName: w1
  restartPolicy: Never
  containers:
  - {name: main, image: busybox, command: [sh, -c, "echo lone ran; exit 0"]}
`, "apply", "-f", "-")
	if code != 0 {
		t.Fatalf("apply: %s", errs)
	}
	var out string
	waitFor(t, func() bool {
		code, out, _ = run(t, s, "", "logs", "web", "-c", "nginx")
		return code == 0 && strings.Contains(out, "serving on port 80\n")
	})
	if !strings.HasPrefix(out, "sim: container nginx started (image nginx, attempt 0)") || strings.Contains(out, "sidecar up") {
		t.Errorf("skiffctl logs web -c nginx = %q", out)
	}
	waitFor(t, func() bool {
		code, out, _ = run(t, s, "", "logs", "pod/lone")
		return code == 0 && strings.Contains(out, "lone ran\nsim: container main exited with code 0\n")
	})
	if out := must(t, s, "logs", "lone", "--tail", "2"); out != "lone ran\nsim: container main exited with code 0\n" {
		t.Errorf("skiffctl logs lone --tail 2 = %q", out)
	}
	fails(t, s, "", "a container name must be specified for pod web, choose one of: [nginx sidecar]", "logs", "web")
	fails(t, s, "", "container db is not valid for pod web: choose one of: [nginx sidecar]", "logs", "web", "-c", "db")
	fails(t, s, "", `pod "nope" not found`, "logs", "nope")
	fails(t, s, "", `pod "web" not found`, "logs", "web", "-n", "other", "-c", "nginx")
	fails(t, s, "", `deployment "web" not found`, "logs", "deployment/web")
	must(t, s, "create", "cm", "x")
	fails(t, s, "", "only pods and workloads with a pod selector have logs", "logs", "cm/x")
	fails(t, s, "", "expected POD", "logs")

	// --timestamps: each line with the time it was written; --since, --since-time and
	// --limit-bytes filter and cut as kubectl's do.
	plain := must(t, s, "logs", "lone")
	stamped := must(t, s, "logs", "lone", "--timestamps")
	stripped := regexp.MustCompile(`(?m)^(\S+) `).ReplaceAllStringFunc(stamped, func(m string) string {
		if _, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(m)); err != nil {
			t.Errorf("logs --timestamps: line begins with %q: %v", m, err)
		}
		return ""
	})
	if stripped != plain || stamped == plain {
		t.Errorf("logs lone --timestamps = %q, want the lines of %q each with a time", stamped, plain)
	}
	if out := must(t, s, "logs", "lone", "--since", "1h"); out != plain {
		t.Errorf("logs lone --since 1h = %q, want %q", out, plain)
	}
	if out := must(t, s, "logs", "lone", "--since-time", time.Now().Add(time.Hour).Format(time.RFC3339)); out != "" {
		t.Errorf("logs lone --since-time (in an hour) = %q, want nothing", out)
	}
	if out := must(t, s, "logs", "lone", "--limit-bytes", "4"); out != "sim:" {
		t.Errorf("logs lone --limit-bytes 4 = %q", out)
	}
	if out := must(t, s, "logs", "lone", "--tail", "1", "--timestamps", "--prefix"); !regexp.MustCompile(`^\[pod/lone/main\] \S+Z sim: container main exited with code 0\n$`).MatchString(out) {
		t.Errorf("logs lone --tail 1 --timestamps --prefix = %q", out)
	}
	fails(t, s, "", "at most one of `sinceTime` or `sinceSeconds` may be specified", "logs", "lone", "--since", "1h", "--since-time", "2024-01-02T15:04:05Z")
	fails(t, s, "", "--limit-bytes must be greater than 0", "logs", "lone", "--limit-bytes", "0")
	fails(t, s, "", "--since must be greater than 0", "logs", "lone", "--since", "-1m")
	fails(t, s, "", `--since-time "yesterday": want an RFC 3339 time`, "logs", "lone", "--since-time", "yesterday")

	// A workload's logs are one of its pods'; -l reads every pod matching, 10 lines each
	// unless --tail says otherwise; --prefix names each line's source.
	must(t, s, "label", "pod", "web", "lone", "app=demo")
	code, out, errs = run(t, s, `apiVersion: apps/v1
kind: ReplicaSet
metadata: {name: demo}
spec:
  replicas: 0
  selector: {matchLabels: {app: demo}}
  template:
    metadata: {labels: {app: demo}}
    spec: {containers: [{name: main, image: busybox}]}
`, "apply", "-f", "-")
	if code != 0 {
		t.Fatal(errs)
	}
	code, out, errs = run(t, s, "", "logs", "rs/demo", "-c", "nginx")
	if code != 0 || !strings.Contains(out, "serving on port 80") || !strings.Contains(errs, "Found 2 pods, using pod/web") {
		t.Errorf("logs rs/demo: %d %q %q", code, out, errs)
	}
	out = must(t, s, "logs", "-l", "app=demo", "--all-containers", "--prefix")
	contains(t, "logs -l --all-containers --prefix", out, "[pod/lone/main] lone ran\n", "[pod/web/nginx] serving on port 80\n", "[pod/web/sidecar] sidecar up\n")
	must(t, s, "label", "pod", "lone", "solo=yes")
	if out := must(t, s, "logs", "-l", "solo=yes", "--tail", "1"); out != "sim: container main exited with code 0\n" {
		t.Errorf("logs -l --tail 1 = %q", out)
	}

	// --previous reads the run before the last restart, which the kubelet keeps.
	fails(t, s, "", `previous terminated container "main" in pod "lone" not found`, "logs", "lone", "--previous")
	code, _, errs = run(t, s, `apiVersion: v1
kind: Pod
metadata: {name: crash}
spec:
  nodeName: w1
  containers:
  - {name: main, image: busybox, command: [sh, -c, "echo crashing; exit 1"]}
`, "apply", "-f", "-")
	if code != 0 {
		t.Fatal(errs)
	}
	waitFor(t, func() bool {
		code, out, _ = run(t, s, "", "logs", "crash", "-p")
		return code == 0 && strings.Contains(out, "sim: container main started (image busybox, attempt ")
	})
	contains(t, "logs --previous", out, "crashing\nsim: container main exited with code 1\n")

	// -f prints what the container writes until it exits.
	var fout, ferr syncBuffer
	done := make(chan int, 1)
	fctx, fcancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer fcancel()
	go func() {
		done <- skiffctl.Execute(fctx, skiffctl.Streams{In: strings.NewReader(""), Out: &fout, Err: &ferr}, []string{"--server", s, "logs", "web", "-c", "sidecar", "-f"})
	}()
	waitFor(t, func() bool { return strings.Contains(fout.String(), "sidecar up\n") })
	var sidecar string
	ctrs, _ := rt.List(fctx)
	for _, c := range ctrs {
		if c.Name == "sidecar" {
			sidecar = c.ID
		}
	}
	if err := rt.Write(sidecar, "tick 1"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool { return strings.Contains(fout.String(), "sidecar up\ntick 1\n") })
	if err := rt.Exit(sidecar, 0); err != nil {
		t.Fatal(err)
	}
	if code := <-done; code != 0 {
		t.Fatalf("skiffctl logs -f: exit %d: %s", code, ferr.String())
	}
	if !strings.HasSuffix(fout.String(), "tick 1\nsim: container sidecar exited with code 0\n") {
		t.Errorf("skiffctl logs -f printed %q", fout.String())
	}

	// Interrupting -f (Ctrl-C cancels the command's context) ends it without an error.
	ictx, icancel := context.WithCancel(context.Background())
	var iout bytes.Buffer
	go func() {
		done <- skiffctl.Execute(ictx, skiffctl.Streams{In: strings.NewReader(""), Out: &iout, Err: &iout}, []string{"--server", s, "logs", "web", "-c", "nginx", "-f"})
	}()
	icancel()
	if code := <-done; code != 0 {
		t.Fatalf("interrupted skiffctl logs -f: exit %d: %s", code, iout.String())
	}
}
