package skiffctl_test

import (
	"bytes"
	"context"
	"net"
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
	fails(t, s, "", "only pods have logs", "logs", "deployment/web")
	fails(t, s, "", "expected POD", "logs")

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
