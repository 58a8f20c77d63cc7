package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/waitfor"
	"github.com/skiffhq/skiff/up/daemon"
)

// TestUp runs `skiff up` with simulated containers: a Deployment goes through all ten
// steps, scales, rolls out and back, is deleted with everything it made; Ctrl-C stops
// the process cleanly and a restart keeps the data.
func TestUp(t *testing.T) {
	dir, addr := upPlace(t, 1)
	up := start(t, "skiff up", "up", "--data-dir", dir, "--listen", addr, "--runtime", "sim", "--node-name", "e2e-node", "--ui-listen", "127.0.0.1:0")
	waitfor.Condition(t, 60*time.Second, "skiff up ready", func() (bool, string) {
		out, errs, err := ctl(addr, "get", "nodes")
		return err == nil && strings.Contains(out, "e2e-node") && strings.Contains(out, "Ready"), out + errs
	})
	// The live map: skiff up prints its URL and serves it with the admin's credentials.
	var m []string
	waitfor.Condition(t, 30*time.Second, "skiff up to print the live map's URL", func() (bool, string) {
		m = regexp.MustCompile(`The live map of the cluster and its workloads: (http://127\.0\.0\.1:\d+/)`).FindStringSubmatch(up.out.String())
		return m != nil, up.out.String()
	})
	waitfor.Condition(t, 30*time.Second, "the live map to show e2e-node", func() (bool, string) {
		resp, err := http.Get(m[1] + "api/cluster")
		if err != nil {
			return false, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode == 200 && strings.Contains(string(b), `"name":"e2e-node"`), string(b)
	})
	if resp, err := http.Get(m[1]); err != nil || resp.StatusCode != 200 {
		t.Fatalf("the live map's page: %v %v", resp, err)
	} else {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(b), `<script src="app.js">`) {
			t.Fatalf("the live map's page:\n%s", b)
		}
	}
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
	waitfor.Condition(t, 60*time.Second, "3 pods running", running(3))
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
	waitfor.Condition(t, 30*time.Second, "a complete trace", func() (bool, string) {
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
	waitfor.Condition(t, 60*time.Second, "5 pods running", running(5))
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
	waitfor.Condition(t, 60*time.Second, "rolled back", func() (bool, string) {
		out, _, err := ctl(addr, "get", "deploy", "nginx-deployment", "-o", "wide")
		return err == nil && strings.Contains(out, "busybox:latest") && strings.Contains(out, "5/5"), out
	})

	// Stop and start again: the data is still there.
	up.stop(t)
	up = start(t, "skiff up again", "up", "--data-dir", dir, "--listen", addr, "--runtime", "sim", "--node-name", "e2e-node")
	waitfor.Condition(t, 60*time.Second, "deployment survives a restart", func() (bool, string) {
		out, errs, err := ctl(addr, "get", "deploy")
		return err == nil && strings.Contains(out, "nginx-deployment"), out + errs
	})

	mustCtl(t, addr, "delete", "deployment", "nginx-deployment")
	waitfor.Condition(t, 60*time.Second, "everything gone", func() (bool, string) {
		pods, _, err1 := ctl(addr, "get", "pods", "-o", "name")
		rss, _, err2 := ctl(addr, "get", "rs", "-o", "name")
		return err1 == nil && err2 == nil && pods == "" && rss == "", pods + rss
	})
	up.stop(t)
}

// upPlace gives a skiff up of nodes API servers a data directory and a free address:
// nodes free ports from it for the API and as many from port+100 for Raft. It points
// skiffctl at the client config skiff up writes there, so it needs no flags.
func upPlace(t *testing.T, nodes int) (dir, addr string) {
	t.Helper()
	dir, addr, config := upPlaceOwn(t, nodes)
	t.Setenv("SKIFF_CONFIG", config)
	return dir, addr
}

// upPlaceOwn is upPlace for a test that runs beside others (t.Parallel), which may not
// set the process's environment: skiff up is given config as its $SKIFF_CONFIG and
// skiffctl as its --config.
func upPlaceOwn(t *testing.T, nodes int) (dir, addr, config string) {
	t.Helper()
	var offsets []int // skiff up's members listen at base+i, their Raft at base+100+i
	for i := range nodes {
		offsets = append(offsets, i, 100+i)
	}
	base := freeport.Spaced(t, "127.0.0.1", offsets...)
	dir = t.TempDir()
	// What skiff up's kubelet mounted for pods still there when it stopped (their
	// secret and service-account token tmpfs), as a kubelet leaves them: unmounted
	// before the directory goes (cleanups run last registered first).
	t.Cleanup(func() { unmountUnder(t, dir) })
	return dir, fmt.Sprintf("127.0.0.1:%d", base), filepath.Join(dir, "client-config")
}

// TestUpThreeNodes: `skiff up --nodes 3` is a three-member cluster in one process: every
// member answers, the leadership moves on request, and the chain runs across a change
// of leader; Ctrl-C stops it cleanly.
func TestUpThreeNodes(t *testing.T) {
	dir, addr := upPlace(t, 3)
	up := start(t, "skiff up --nodes 3", "up", "--nodes", "3", "--data-dir", dir, "--listen", addr, "--runtime", "sim", "--node-name", "e2e-ha")
	host, port, _ := net.SplitHostPort(addr)
	base, _ := strconv.Atoi(port)
	addrs := []string{addr, fmt.Sprintf("%s:%d", host, base+1), fmt.Sprintf("%s:%d", host, base+2)}
	leaderRow := regexp.MustCompile(`(?m)^(up\d)\s+leader\s+Voter`)
	var leader string
	for _, a := range addrs {
		waitfor.Condition(t, 60*time.Second, "a three-member cluster seen from "+a, func() (bool, string) {
			out, errs, err := ctl(a, "cluster", "status")
			m := leaderRow.FindStringSubmatch(out)
			if m != nil {
				leader = m[1]
			}
			return err == nil && m != nil && strings.Count(out, "Voter") == 3, out + errs
		})
	}
	mustCtl(t, addr, "cluster", "transfer-leader")
	waitfor.Condition(t, 30*time.Second, "another leader", func() (bool, string) {
		out, errs, err := ctl(addrs[2], "cluster", "status")
		m := leaderRow.FindStringSubmatch(out)
		return err == nil && m != nil && m[1] != leader, out + errs
	})
	mustCtl(t, addrs[1], "apply", "-f", "../../examples/nginx-deployment.yaml")
	waitfor.Condition(t, 60*time.Second, "3 pods running", func() (bool, string) {
		out, _, err := ctl(addrs[2], "get", "pods", "--no-headers")
		return err == nil && strings.Count(out, "Running") == 3, out
	})
	up.stop(t)
}

// TestUpPrivateContainerd runs `skiff up` on a machine with containerd installed but no
// containerd answering at --containerd-address (only a stale socket file there): skiff up
// runs a private containerd, the example's pods run in real containers, Ctrl-C leaves no
// process, mount or state behind, and a restart runs the pods again from the data kept.
func TestUpPrivateContainerd(t *testing.T) {
	if err := daemon.Usable(); err != nil {
		t.Skipf("skiff up's private containerd: %v", err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("skiff up's private containerd: the example's image comes from /bin/busybox (busybox-static), which is missing")
	}
	dir, addr := upPlace(t, 1)
	args := []string{"up", "--data-dir", filepath.Join(dir, "up"), "--listen", addr, "--node-name", "e2e-ctrd", "--pod-network=false",
		"--containerd-address", staleSocket(t, dir)}
	up := start(t, "skiff up", args...)
	state := privateContainerd(t, up)

	mustCtl(t, addr, "apply", "-f", "../../examples/nginx-deployment.yaml")
	var pids []int
	containersRunning := func() (bool, string) {
		out, _, err := ctl(addr, "get", "pods", "--no-headers")
		pids = containerProcs(state)
		return err == nil && strings.Count(out, "Running") == 3 && len(pids) == 3, fmt.Sprintf("%s\ncontainer processes: %v", out, pids)
	}
	waitfor.Condition(t, 90*time.Second, "3 pods running in containers", containersRunning)

	up.stop(t)
	checkNothingLeft := func() {
		t.Helper()
		for _, pid := range pids {
			if alive(pid) {
				t.Errorf("container process %d still runs after skiff up stopped", pid)
			}
		}
		if left := procsNaming(state); len(left) > 0 {
			t.Errorf("processes of the private containerd still run after skiff up stopped: %v", left)
		}
		// The containers' logging programs name their log files, in the data directory.
		if left := procsNaming(filepath.Join(dir, "up")); len(left) > 0 {
			t.Errorf("processes naming the data directory (container-logger?) still run after skiff up stopped: %v", left)
		}
		if _, err := os.Stat(state); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("the private containerd's state %s is still there (%v)", state, err)
		}
		if mi, err := os.ReadFile("/proc/self/mountinfo"); err == nil && strings.Contains(string(mi), state+"/") {
			t.Errorf("something is still mounted under %s", state)
		}
	}
	checkNothingLeft()

	// Again: the same data directory, the same pods, in containers anew.
	up = start(t, "skiff up again", args...)
	waitfor.Condition(t, 90*time.Second, "the pods run again after a restart", containersRunning)
	up.stop(t)
	checkNothingLeft()
}

// procsNaming lists the processes whose command line names dir.
func procsNaming(dir string) []int {
	var out []int
	for pid, cmdline := range procs() {
		if strings.Contains(cmdline.cmdline, dir) {
			out = append(out, pid)
		}
	}
	return out
}

// containerProcs lists the containers' first processes under a private containerd's
// state directory: the children of its shims, but for their logging programs (`skiff
// container-logger`).
func containerProcs(state string) []int {
	all := procs()
	var out []int
	for pid, p := range all {
		if parent, ok := all[p.ppid]; ok && strings.Contains(parent.cmdline, "containerd-shim") && strings.Contains(parent.cmdline, state) &&
			!strings.Contains(p.cmdline, " container-logger ") {
			out = append(out, pid)
		}
	}
	return out
}

type procInfo struct {
	ppid    int
	cmdline string
}

// procs reads every process's parent and command line from /proc.
func procs() map[int]procInfo {
	out := map[int]procInfo{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err1 := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		cmdline, err2 := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		i := strings.LastIndexByte(string(stat), ')')
		if err1 != nil || err2 != nil || i < 0 {
			continue
		}
		f := strings.Fields(string(stat[i+1:]))
		if len(f) < 2 || f[0] == "Z" {
			continue // gone, or a zombie
		}
		ppid, _ := strconv.Atoi(f[1])
		out[pid] = procInfo{ppid: ppid, cmdline: strings.ReplaceAll(string(cmdline), "\x00", " ")}
	}
	return out
}

func alive(pid int) bool {
	_, ok := procs()[pid]
	return ok
}

// staleSocket makes a socket file in dir that nothing answers on, as a containerd that
// died leaves behind: skiff up given it runs a private containerd.
func staleSocket(t *testing.T, dir string) string {
	t.Helper()
	stale := filepath.Join(dir, "stale.sock")
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: stale, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	ln.SetUnlinkOnClose(false)
	ln.Close()
	return stale
}

// privateContainerd waits for skiff up to say it runs a private containerd, and
// returns that containerd's state directory; whatever happens, neither outlives the test.
func privateContainerd(t *testing.T, up *proc) string {
	t.Helper()
	var state string
	waitfor.Condition(t, 60*time.Second, "skiff up says it runs a private containerd", func() (bool, string) {
		m := regexp.MustCompile(`runs containers: a private containerd at (\S+) \(no containerd answering at `).FindStringSubmatch(up.out.String())
		if m != nil {
			state = filepath.Dir(m[1])
		}
		return m != nil, up.out.String()
	})
	t.Cleanup(func() { up.kill(); daemon.Cleanup(state) })
	return state
}
