package bench

import (
	"os"
	"runtime"
	"runtime/metrics"
	"runtime/pprof"
	"testing"
)

// HeapProfileEnv names a file a benchmark that calls WriteHeapProfile writes its heap
// profile to (go tool pprof -sample_index=inuse_space BINARY FILE).
const HeapProfileEnv = "SKIFF_HEAP_PROFILE"

// HeapInUse collects garbage and returns the bytes of live heap objects.
func HeapInUse() int64 {
	runtime.GC()
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// WriteHeapProfile writes the heap profile, after a collection, to the file
// SKIFF_HEAP_PROFILE names, if it is set. A benchmark calls it while what it measures
// still runs: go test's -memprofile is written only after the benchmark's cleanups
// have stopped its cluster. Beside it, FILE.goroutines gets the goroutines counted by
// where they wait (pprof's debug=1 text): what a process holds in stacks is theirs.
func WriteHeapProfile(b testing.TB) {
	path := os.Getenv(HeapProfileEnv)
	if path == "" {
		return
	}
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := pprof.WriteHeapProfile(f); err != nil {
		b.Fatalf("heap profile %s: %v", path, err)
	}
	g, err := os.Create(path + ".goroutines")
	if err != nil {
		b.Fatal(err)
	}
	defer g.Close()
	if err := pprof.Lookup("goroutine").WriteTo(g, 1); err != nil {
		b.Fatalf("goroutine profile %s.goroutines: %v", path, err)
	}
	b.Logf("heap profile written to %s, goroutines to %[1]s.goroutines", path)
}
