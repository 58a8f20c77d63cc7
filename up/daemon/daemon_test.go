package daemon

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestCleanupKillsShimsAndTheirChildren: a process naming the state directory (as a
// shim names its containerd's socket) and its child (as a container is a shim's) are
// both killed, and the directory removed. Killing only the shim would leave the child.
func TestCleanupKillsShimsAndTheirChildren(t *testing.T) {
	state := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(state, 0o700); err != nil {
		t.Fatal(err)
	}
	shim := exec.Command("sh", "-c", "sleep 1000 & echo $!; wait", "fake-shim", "-address", filepath.Join(state, "containerd.sock"))
	out, err := shim.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := shim.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { shim.Wait(); close(done) }()
	var line [32]byte
	n, err := out.Read(line[:])
	if err != nil {
		t.Fatal(err)
	}
	child, err := strconv.Atoi(strings.TrimSpace(string(line[:n])))
	if err != nil {
		t.Fatalf("child pid %q: %v", line[:n], err)
	}
	t.Cleanup(func() { shim.Process.Kill(); exec.Command("kill", "-9", strconv.Itoa(child)).Run() })

	Cleanup(state)

	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("the shim still runs after Cleanup")
	}
	deadline := time.Now().Add(10 * time.Second)
	for running(child) {
		if time.Now().After(deadline) {
			t.Fatalf("the shim's child %d still runs after Cleanup", child)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if _, err := os.Stat(state); !os.IsNotExist(err) {
		t.Fatalf("state directory still there: %v", err)
	}
}

// running: the process exists and is not a zombie waiting for its parent (init).
func running(pid int) bool {
	stat, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return false
	}
	i := strings.LastIndexByte(string(stat), ')')
	return i < 0 || !strings.HasPrefix(strings.TrimSpace(string(stat[i+1:])), "Z")
}

func TestCleanupRefusesVaguePaths(t *testing.T) {
	// "" and "/" are in every command line, "relative" in this one's: Cleanup must leave
	// the process alone.
	bystander := exec.Command("sh", "-c", "sleep 1000; true", "relative", "/")
	bystander.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its sleep goes with it
	if err := bystander.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(-bystander.Process.Pid, syscall.SIGKILL); bystander.Wait() })
	for _, state := range []string{"", "/", "relative"} {
		Cleanup(state)
	}
	if !running(bystander.Process.Pid) {
		t.Fatal("Cleanup of a vague path killed a process naming it")
	}
}

func TestStartRefusesLongSocketPaths(t *testing.T) {
	if err := Usable(); err != nil {
		t.Skipf("private containerd: %v", err)
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 120))
	_, err := Start(t.Context(), filepath.Join(t.TempDir(), "root"), long, nil)
	if err == nil || !strings.Contains(err.Error(), "too long for a socket path") {
		t.Fatalf("got %v, want the socket path refused", err)
	}
}
