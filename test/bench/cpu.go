package bench

import (
	"os"
	"runtime/pprof"
	"testing"
)

// CPUProfileEnv names a file a benchmark that calls StartCPUProfile writes the CPU
// profile of its timed part to (go tool pprof BINARY FILE).
const CPUProfileEnv = "SKIFF_CPU_PROFILE"

// StartCPUProfile starts the CPU profile SKIFF_CPU_PROFILE names, if it is set, and
// returns the function that stops and writes it. A benchmark calls it at its timer's
// start: go test's -cpuprofile also holds the cluster's start (a hundred nodes'
// registrations and TLS handshakes), which is not what the figure measures.
func StartCPUProfile(b testing.TB) (stop func()) {
	path := os.Getenv(CPUProfileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		b.Fatalf("cpu profile %s: %v", path, err)
	}
	return func() {
		pprof.StopCPUProfile()
		if err := f.Close(); err != nil {
			b.Errorf("cpu profile %s: %v", path, err)
		}
		b.Logf("cpu profile written to %s", path)
	}
}
