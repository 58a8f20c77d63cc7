// Package e2e runs Skiff's real binaries as processes on loopback and drives them with
// skiffctl, as a user would.
//
// A test that starts a cluster of its own and mostly waits on it (simulated kubelets,
// certificate lifetimes, a cron minute, a node's grace period) calls t.Parallel(): it
// binds free ports and owns its directories, so two such tests run side by side (go
// test's -parallel, GOMAXPROCS by default) once the serial ones are done. Tests stay
// serial that set the process's environment (t.Setenv), make network namespaces or
// mounts, run containerd or a browser, load the machine on purpose (thousands of nodes,
// floods), or must catch a rollout in its middle (TestFailoverMidRollout).
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/internal/deathsig"
)

var binDir string

func TestMain(m *testing.M) {
	// Earlier test processes' roots, when they were killed before their cleanups.
	for _, reaped := range append(reapRoots(os.TempDir(), tmpRootPrefix), reapRoots("/dev/shm", shmRootPrefix)...) {
		fmt.Fprintln(os.Stderr, "removed", reaped, "of a test process that no longer runs")
	}
	root, err := os.MkdirTemp("", rootName(tmpRootPrefix))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("TMPDIR", root) // every TempDir, and the started processes' temporary files
	code := runTests(m)
	os.RemoveAll(root)
	os.Exit(code)
}

// runTests builds the binaries (unless SKIFF_E2E_BIN names them) and runs the tests.
func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	binDir = dir
	// Keep the user's ~/.skiff/config out of the processes the tests start (TestUp sets
	// its own).
	os.Setenv("SKIFF_CONFIG", filepath.Join(dir, "no-client-config"))
	// make test has just built both binaries (make build): $SKIFF_E2E_BIN names their
	// directory, which saves linking them again (a minute and more on a loaded machine).
	if bin := os.Getenv("SKIFF_E2E_BIN"); bin != "" {
		binDir = bin
	}
	for _, name := range []string{"skiff", "skiffctl"} {
		if binDir != dir {
			if _, err := os.Stat(filepath.Join(binDir, name)); err != nil {
				fmt.Fprintln(os.Stderr, "SKIFF_E2E_BIN:", err)
				return 1
			}
			continue
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, name), "../../cmd/"+name)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "build", name, err)
			return 1
		}
	}
	return m.Run()
}

// proc is a running binary whose output goes to the test log.
type proc struct {
	name string
	cmd  *exec.Cmd
	out  *lockedBuffer
	done chan struct{}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// start runs bin with args; the test's cleanup kills it (by pid) if it still runs.
func start(t testing.TB, name string, args ...string) *proc {
	t.Helper()
	if len(args) > 0 && args[0] == "kubelet" && !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--root-dir") }) {
		// Not the host's /var/lib/skiff/kubelet, its default: the pods' directories
		// (termination logs, volumes) stay with the test, and kubelets of tests running at
		// once do not remove each other's.
		args = append(slices.Clone(args), "--root-dir", t.TempDir())
	}
	return startCommand(t, name, exec.Command(filepath.Join(binDir, "skiff"), args...))
}

// startCommand is start for a command of the test's making (skiff under a wrapper).
func startCommand(t testing.TB, name string, cmd *exec.Cmd) *proc {
	t.Helper()
	out := &lockedBuffer{}
	if cmd.Stdout != nil { // a copy of the output as it comes (startScale's log file)
		tee := io.MultiWriter(out, cmd.Stdout)
		cmd.Stdout, cmd.Stderr = tee, tee
	} else {
		cmd.Stdout, cmd.Stderr = out, out
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	// It dies with the test binary too: a benchmark stopped by its -test.timeout (a
	// panic, which runs no cleanup) or killed left a whole cluster running, loading the
	// machine under every run after it.
	waited, err := deathsig.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{name: name, cmd: cmd, out: out, done: make(chan struct{})}
	go func() { <-waited; close(p.done) }()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			t.Logf("--- output of %s ---\n%s", name, lastLines(out.String(), 400))
		}
	})
	return p
}

func lastLines(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// kill sends SIGKILL to the process group and waits.
func (p *proc) kill() {
	select {
	case <-p.done:
		return
	default:
	}
	syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
	<-p.done
}

// stop sends SIGINT and waits up to 30s for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
		if !p.cmd.ProcessState.Success() {
			t.Errorf("%s exited with %v", p.name, p.cmd.ProcessState)
		}
	case <-time.After(30 * time.Second):
		// A goroutine dump (SIGQUIT) says what it waits for; it is logged with the output.
		p.cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
		}
		t.Errorf("%s did not stop within 30s of SIGINT", p.name)
		p.kill()
	}
}

func (p *proc) running() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// ctl runs skiffctl and returns its stdout, stderr and error.
func ctl(servers string, args ...string) (string, string, error) { return ctlIn(servers, "", args...) }

// ctlIn runs skiffctl with stdin.
func ctlIn(servers, stdin string, args ...string) (string, string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "skiffctl"), append([]string{"--server", servers}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.Stdin = strings.NewReader(stdin)
	err := cmd.Run()
	return out.String(), errb.String(), err
}

func mustCtl(t *testing.T, servers string, args ...string) string {
	t.Helper()
	out, errs, err := ctl(servers, args...)
	if err != nil {
		t.Fatalf("skiffctl %s: %v: %s", strings.Join(args, " "), err, errs)
	}
	return out
}
