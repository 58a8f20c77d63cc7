package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestStartCPUProfile: with SKIFF_CPU_PROFILE set, the profile of what ran between
// the start and the stop is written there; unset, nothing is written.
func TestStartCPUProfile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "cpu.prof")
	t.Setenv(CPUProfileEnv, "")
	StartCPUProfile(t)()
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("unset %s: a profile was written (%v)", CPUProfileEnv, err)
	}

	t.Setenv(CPUProfileEnv, path)
	stop := StartCPUProfile(t)
	n := 0
	for i := range 1_000_000 {
		n += i % 7
	}
	stop()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// runtime/pprof writes a gzipped profile.proto.
	if !bytes.HasPrefix(b, []byte{0x1f, 0x8b}) {
		t.Errorf("%s: %d bytes, not a gzipped profile (n %d)", path, len(b), n)
	}
}
