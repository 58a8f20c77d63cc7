package bench

import (
	"context"
	"os"
	"path/filepath"
	"runtime/pprof"
	"testing"
)

// CPUProfileEnv names a directory a benchmark that calls StartCPUProfile writes the CPU
// profile of a phase to, as PHASE.prof (go tool pprof BINARY FILE). go test's
// -test.cpuprofile covers the whole run, the cluster's start and its nodes' registration
// with it; a phase's profile holds only what the phase measures. The two cannot run at
// once (the runtime has one CPU profile).
const CPUProfileEnv = "SKIFF_CPU_PROFILE"

// ComponentLabel is the profile label under which Label runs a component's work: a
// benchmark runs the whole chain in one process, and `go tool pprof -tagfocus
// component=kubelet` (or -tags) splits its profile by component as it would be by
// process.
const ComponentLabel = "component"

// StartCPUProfile starts the CPU profile of phase if SKIFF_CPU_PROFILE is set; the
// function it returns stops it and writes the file (and does nothing otherwise).
func StartCPUProfile(b testing.TB, phase string) (stop func()) {
	dir := os.Getenv(CPUProfileEnv)
	if dir == "" {
		return func() {}
	}
	path := filepath.Join(dir, phase+".prof")
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
			return
		}
		b.Logf("cpu profile of %s written to %s", phase, path)
	}
}

// Label runs fn with the profile label component=name: the goroutines fn starts, and
// theirs, carry it (a goroutine inherits its creator's labels), so a component started
// and dialled inside fn is labelled throughout.
func Label(name string, fn func()) {
	pprof.Do(context.Background(), pprof.Labels(ComponentLabel, name), func(context.Context) { fn() })
}
