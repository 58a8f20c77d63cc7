package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

// TestProcessesDieWithTheTestBinary: a process the harness started is killed when the
// test binary ends without its cleanups (a -test.timeout panic, a kill), instead of
// running on and loading the machine under whatever runs next.
func TestProcessesDieWithTheTestBinary(t *testing.T) {
	if pidFile := os.Getenv("SKIFF_E2E_CHILD_PID_FILE"); pidFile != "" {
		// The child: start a process, say its pid, end without cleanups.
		p := startCommand(t, "sleep", exec.Command("sleep", "300"))
		if err := os.WriteFile(pidFile, []byte(strconv.Itoa(p.cmd.Process.Pid)), 0o644); err != nil {
			t.Fatal(err)
		}
		os.Exit(0)
	}
	pidFile := filepath.Join(t.TempDir(), "pid")
	cmd := exec.Command(os.Args[0], "-test.run", "^TestProcessesDieWithTheTestBinary$")
	cmd.Env = append(os.Environ(), "SKIFF_E2E_CHILD_PID_FILE="+pidFile, "SKIFF_E2E_BIN="+binDir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child test binary: %v\n%s", err, out)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	waitfor.Condition(t, 30*time.Second, "the child's process to be gone", func() (bool, string) {
		// Gone, or a zombie of init's: either way no longer running.
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true, ""
		}
		fields := strings.Fields(string(stat))
		return len(fields) > 2 && fields[2] == "Z", "still running: " + string(stat)
	})
}

// A root of a process that no longer exists is removed; this process's, another live
// process's and names of another form are left.
func TestReapRoots(t *testing.T) {
	parent := t.TempDir()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	dirs := map[string]bool{ // name: removed
		fmt.Sprintf("%s%d-123", tmpRootPrefix, gone.Process.Pid): true,
		rootName(tmpRootPrefix) + "456":                          false,
		fmt.Sprintf("%s%d-789", tmpRootPrefix, os.Getppid()):     false,
		tmpRootPrefix + "bin-1":                                  false,
		fmt.Sprintf("other-%d-1", gone.Process.Pid):              false,
	}
	for name := range dirs {
		if err := os.MkdirAll(filepath.Join(parent, name, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	reaped := reapRoots(parent, tmpRootPrefix)
	for name, removed := range dirs {
		_, err := os.Stat(filepath.Join(parent, name))
		if gotRemoved := os.IsNotExist(err); gotRemoved != removed {
			t.Errorf("%s: removed %v, want %v (reaped %v)", name, gotRemoved, removed, reaped)
		}
	}
}
