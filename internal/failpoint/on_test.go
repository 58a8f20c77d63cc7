//go:build failpoints

package failpoint

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// With the tag, the test binary runs itself with the variable set: the child must crash
// with ExitCode, panic, sleep, or refuse a malformed variable.
func TestArmed(t *testing.T) {
	if point := os.Getenv("FAILPOINT_CHILD"); point != "" {
		Inject("test/unarmed")
		Inject(point)
		os.Exit(0)
	}
	for _, tc := range []struct {
		spec, point string
		code        int
		stderr      string
		minTime     time.Duration
	}{
		{spec: "test/point=crash", point: "test/point", code: ExitCode, stderr: "failpoint test/point: crash"},
		{spec: "test/point=panic", point: "test/point", code: 2, stderr: "panic: failpoint test/point"},
		{spec: "test/point=delay(300ms)", point: "test/point", code: 0, minTime: 300 * time.Millisecond},
		{spec: "test/point=crash@0", point: "test/point", code: 0},
		{spec: "test/other=crash", point: "test/point", code: 0},
		{spec: "test/point=boom", point: "test/point", code: 2, stderr: "unknown action"},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestArmed$")
		cmd.Env = append(os.Environ(), "FAILPOINT_CHILD="+tc.point, EnvVar+"="+tc.spec)
		start := time.Now()
		out, err := cmd.CombinedOutput()
		took := time.Since(start)
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else if err != nil {
			t.Fatalf("%s: %v", tc.spec, err)
		}
		if code != tc.code || !strings.Contains(string(out), tc.stderr) || took < tc.minTime {
			t.Errorf("%s: exit %d after %v, output %q; want exit %d, output with %q, at least %v", tc.spec, code, took, out, tc.code, tc.stderr, tc.minTime)
		}
	}
}
