package e2e

import (
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
