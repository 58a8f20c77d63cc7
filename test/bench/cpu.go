package bench

import (
	"os"
	"runtime/pprof"
	"sort"
	"testing"
	"time"
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

// CPUSample is the process's CPU time (user and system, getrusage) as it was at At.
type CPUSample struct {
	At  time.Time
	CPU time.Duration
}

// SampleCPU samples the process's CPU time every interval from now until the returned
// stop is called, which returns the samples (the first taken now, the last at the
// stop). With CoresBusy they say when a benchmark's process worked and when it waited:
// a chain of calls, each waiting for the one before (a commit, a watch's delivery), shows
// as time with cores idle.
func SampleCPU(interval time.Duration) (stop func() []CPUSample) {
	samples := []CPUSample{{time.Now(), cpuTime()}}
	done, exited := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				samples = append(samples, CPUSample{time.Now(), cpuTime()})
			}
		}
	}()
	return func() []CPUSample {
		close(done)
		<-exited
		return append(samples, CPUSample{time.Now(), cpuTime()})
	}
}

// CoresBusy cuts the time samples span into n equal slices and returns, for each, the
// cores the process kept busy in it on average (its CPU time over the slice's wall time;
// 2.0 is both of a 2-core machine's), the CPU time taken as growing evenly between two
// samples. It returns nil for fewer than two samples or n < 1.
func CoresBusy(samples []CPUSample, n int) []float64 {
	if len(samples) < 2 || n < 1 {
		return nil
	}
	first, last := samples[0].At, samples[len(samples)-1].At
	span := last.Sub(first)
	if span <= 0 {
		return nil
	}
	// cpuAt is the CPU time at t, interpolated between the samples around it.
	cpuAt := func(t time.Time) float64 {
		i := sort.Search(len(samples), func(i int) bool { return !samples[i].At.Before(t) })
		switch {
		case i == 0:
			return float64(samples[0].CPU)
		case i == len(samples):
			return float64(samples[len(samples)-1].CPU)
		}
		a, b := samples[i-1], samples[i]
		gap := b.At.Sub(a.At)
		if gap <= 0 {
			return float64(b.CPU)
		}
		return float64(a.CPU) + float64(b.CPU-a.CPU)*float64(t.Sub(a.At))/float64(gap)
	}
	busy := make([]float64, n)
	for i := range busy {
		from := first.Add(span * time.Duration(i) / time.Duration(n))
		to := first.Add(span * time.Duration(i+1) / time.Duration(n))
		if to.After(from) {
			busy[i] = (cpuAt(to) - cpuAt(from)) / float64(to.Sub(from))
		}
	}
	return busy
}
