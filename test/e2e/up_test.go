package e2e

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestUp runs `skiff up` with simulated containers: a Deployment goes through all ten
// steps, scales, rolls out and back, is deleted with everything it made; Ctrl-C stops
// the process cleanly and a restart keeps the data.
func TestUp(t *testing.T) {
	ports := freePorts(t, 1)
	if ports[0]+100 > 65535 {
		t.Skip("no usable port")
	}
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", ports[0])
	// skiff up writes the admin's client config here; skiffctl finds it with no flags.
	t.Setenv("SKIFF_CONFIG", filepath.Join(dir, "client-config"))
	up := start(t, "skiff up", "up", "--data-dir", dir, "--listen", addr, "--runtime", "sim", "--node-name", "e2e-node")
	eventually(t, "skiff up ready", 60*time.Second, func() (bool, string) {
		out, errs, err := ctl(addr, "get", "nodes")
		return err == nil && strings.Contains(out, "e2e-node") && strings.Contains(out, "Ready"), out + errs
	})
	if !strings.Contains(up.out.String(), "simulated") || !strings.Contains(up.out.String(), "skiffctl trace deployment") {
		t.Errorf("skiff up did not say its runtime or what to try:\n%s", up.out.String())
	}

	// TLS is on, and skiffctl needs no flags: the client config skiff up wrote says where
	// and as whom.
	if out, err := exec.Command(filepath.Join(binDir, "skiffctl"), "get", "nodes").CombinedOutput(); err != nil || !strings.Contains(string(out), "e2e-node") {
		t.Fatalf("skiffctl without flags: %v\n%s", err, out)
	}
	if out, err := exec.Command(filepath.Join(binDir, "skiffctl"), "--config", filepath.Join(t.TempDir(), "none"), "--server", addr, "get", "nodes").CombinedOutput(); err == nil {
		t.Fatalf("skiffctl without credentials reached skiff up:\n%s", out)
	}
	mustCtl(t, addr, "apply", "-f", "../../examples/nginx-deployment.yaml")
	running := func(n int) func() (bool, string) {
		return func() (bool, string) {
			out, _, err := ctl(addr, "get", "pods", "--no-headers")
			return err == nil && strings.Count(out, "Running") == n && strings.Count(strings.TrimSpace(out), "\n")+1 == n, out
		}
	}
	eventually(t, "3 pods running", 60*time.Second, running(3))
	// skiffctl logs reaches skiff up's kubelet (over TLS, with skiff up's certificates).
	names := strings.Fields(mustCtl(t, addr, "get", "pods", "-o", "name"))
	if out := mustCtl(t, addr, "logs", names[0]); !strings.Contains(out, "sim: container nginx started") {
		t.Fatalf("skiffctl logs %s: %q", names[0], out)
	}

	var tr struct {
		Steps []struct {
			Step    any
			Missing bool
			Time    time.Time
		}
		Pods struct{ Total, Ready int }
	}
	eventually(t, "a complete trace", 30*time.Second, func() (bool, string) {
		out, _, err := ctl(addr, "trace", "deployment", "nginx-deployment", "-o", "json")
		if err != nil || json.Unmarshal([]byte(out), &tr) != nil {
			return false, out
		}
		return tr.Pods.Ready == 3, out
	})
	var labels []string
	var prev time.Time
	for _, s := range tr.Steps {
		labels = append(labels, fmt.Sprint(s.Step))
		if s.Missing || s.Time.Before(prev) {
			t.Fatalf("step %v missing or out of order: %+v", s.Step, tr.Steps)
		}
		prev = s.Time
	}
	if got := strings.Join(labels, " "); got != "1 [2 3] [4 5] [6 7] 8 9 10" {
		t.Fatalf("trace steps %q", got)
	}

	mustCtl(t, addr, "scale", "deployment", "nginx-deployment", "--replicas", "5")
	eventually(t, "5 pods running", 60*time.Second, running(5))
	mustCtl(t, addr, "set", "image", "deployment/nginx-deployment", "nginx=docker.io/library/busybox:1.36")
	status := mustCtl(t, addr, "rollout", "status", "deployment/nginx-deployment", "--timeout", "60s")
	if !strings.Contains(status, "successfully rolled out") {
		t.Fatalf("rollout status:\n%s", status)
	}
	history := mustCtl(t, addr, "rollout", "history", "deployment/nginx-deployment")
	if !strings.Contains(history, "1 ") || !strings.Contains(history, "2 ") {
		t.Fatalf("history:\n%s", history)
	}
	mustCtl(t, addr, "rollout", "undo", "deployment/nginx-deployment")
	eventually(t, "rolled back", 60*time.Second, func() (bool, string) {
		out, _, err := ctl(addr, "get", "deploy", "nginx-deployment", "-o", "wide")
		return err == nil && strings.Contains(out, "busybox:latest") && strings.Contains(out, "5/5"), out
	})

	// Stop and start again: the data is still there.
	up.stop(t)
	up = start(t, "skiff up again", "up", "--data-dir", dir, "--listen", addr, "--runtime", "sim", "--node-name", "e2e-node")
	eventually(t, "deployment survives a restart", 60*time.Second, func() (bool, string) {
		out, errs, err := ctl(addr, "get", "deploy")
		return err == nil && strings.Contains(out, "nginx-deployment"), out + errs
	})

	mustCtl(t, addr, "delete", "deployment", "nginx-deployment")
	eventually(t, "everything gone", 60*time.Second, func() (bool, string) {
		pods, _, err1 := ctl(addr, "get", "pods", "-o", "name")
		rss, _, err2 := ctl(addr, "get", "rs", "-o", "name")
		return err1 == nil && err2 == nil && pods == "" && rss == "", pods + rss
	})
	up.stop(t)
}
