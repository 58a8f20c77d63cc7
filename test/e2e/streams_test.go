package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/portforwardtest"
	"github.com/skiffhq/skiff/test/waitfor"
)

// checkStreams drives skiffctl exec, cp and port-forward, as processes, into real
// containers: pod is a running busybox pod; a pod serving HTTP is made, used and
// deleted (the caller's counts of pods and containers are as before).
func checkStreams(t *testing.T, s, socket, pod string, wantContainers int) {
	t.Helper()
	// exec: output, the remote exit code as skiffctl's own, stdin.
	if out := mustCtl(t, s, "exec", pod, "--", "echo", "hello", "from", pod); out != "hello from "+pod+"\n" {
		t.Fatalf("skiffctl exec echo: %q", out)
	}
	_, errs, err := ctl(s, "exec", pod, "--", "sh", "-c", "exit 4")
	var exit *exec.ExitError
	if !errors.As(err, &exit) || exit.ExitCode() != 4 || errs != "command terminated with exit code 4\n" {
		t.Fatalf("skiffctl exec exit 4: %v, %q", err, errs)
	}
	if out, errs, err := ctlIn(s, "through stdin\n", "exec", "-i", pod, "--", "cat"); err != nil || out != "through stdin\n" {
		t.Fatalf("skiffctl exec -i cat: %v, %q, %s", err, out, errs)
	}

	// cp: a file and a directory in, and back out.
	local := t.TempDir()
	if err := os.WriteFile(filepath.Join(local, "notes.txt"), []byte("copied in\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(local, "site", "css"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"site/index.html": "<h1>hi</h1>\n", "site/css/a.css": "h1 {}\n"} {
		if err := os.WriteFile(filepath.Join(local, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustCtl(t, s, "cp", filepath.Join(local, "notes.txt"), pod+":/tmp/notes.txt")
	if out := mustCtl(t, s, "exec", pod, "--", "cat", "/tmp/notes.txt"); out != "copied in\n" {
		t.Fatalf("after skiffctl cp in: %q", out)
	}
	mustCtl(t, s, "cp", filepath.Join(local, "site"), pod+":/tmp") // an existing directory: site goes inside
	if out := mustCtl(t, s, "exec", pod, "--", "cat", "/tmp/site/index.html", "/tmp/site/css/a.css"); out != "<h1>hi</h1>\nh1 {}\n" {
		t.Fatalf("after skiffctl cp of a directory: %q", out)
	}
	back := t.TempDir()
	mustCtl(t, s, "cp", pod+":/tmp/notes.txt", filepath.Join(back, "notes.txt"))
	mustCtl(t, s, "cp", "default/"+pod+":/tmp/site", filepath.Join(back, "site"))
	for name, want := range map[string]string{"notes.txt": "copied in\n", "site/index.html": "<h1>hi</h1>\n", "site/css/a.css": "h1 {}\n"} {
		if got, err := os.ReadFile(filepath.Join(back, name)); err != nil || string(got) != want {
			t.Fatalf("skiffctl cp out: %s: %q, %v", name, got, err)
		}
	}
	if _, errs, err := ctl(s, "cp", pod+":/tmp/no-such-file", filepath.Join(back, "x")); err == nil || !strings.Contains(errs, "no-such-file") {
		t.Fatalf("skiffctl cp of a missing file: %v, %q", err, errs)
	}

	// port-forward to httpd in a container.
	port := freeport.Loopback(t, 1)[0]
	if _, errs, err := ctlIn(s, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: httpd
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "mkdir -p /www && echo hello through port-forward > /www/index.html && exec httpd -f -p 127.0.0.1:%d -h /www"]
`, port), "apply", "-f", "-"); err != nil {
		t.Fatalf("apply pod web: %v: %s", err, errs)
	}
	waitfor.Condition(t, 60*time.Second, "pod web running", func() (bool, string) {
		out, _, err := ctl(s, "get", "pod", "web", "--no-headers")
		return err == nil && strings.Contains(out, " Running "), out
	})
	pf := portforwardtest.Start(t, exec.Command(filepath.Join(binDir, "skiffctl"), "--server", s, "port-forward", "pod/web", fmt.Sprintf(":%d", port)), port)
	if got := pf.GET(t, "/index.html"); !strings.HasSuffix(got, "\r\n\r\nhello through port-forward\n") {
		t.Fatalf("HTTP through skiffctl port-forward: %q (stderr %s)", got, pf.Stderr())
	}
	if err := pf.Interrupt(t); err != nil {
		t.Fatalf("skiffctl port-forward after SIGINT: %v: %s", err, pf.Stderr())
	}

	mustCtl(t, s, "delete", "pod", "web")
	waitfor.Condition(t, 60*time.Second, "pod web and its container gone", func() (bool, string) {
		out, _, err := ctl(s, "get", "pods", "web", "-o", "name")
		n := containers(t, socket)
		return err != nil && n == wantContainers, fmt.Sprintf("%s%d containers in containerd, want %d", out, n, wantContainers)
	})
}
