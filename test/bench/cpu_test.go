package bench

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"testing"
	"time"
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

// TestCoresBusy: the CPU time between samples is spread evenly over their interval and
// divided among the slices by wall time, so a slice half in a busy interval and half in an
// idle one reads half as busy.
func TestCoresBusy(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	samples := []CPUSample{
		{at(0), 0},
		{at(100), 200 * time.Millisecond}, // both cores for 100 ms
		{at(300), 200 * time.Millisecond}, // idle for 200 ms
		{at(400), 250 * time.Millisecond}, // half a core for 100 ms
	}
	got := CoresBusy(samples, 4)
	want := []float64{2, 0, 0, 0.5}
	if len(got) != len(want) {
		t.Fatalf("CoresBusy: %v, want %v", got, want)
	}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Errorf("CoresBusy: %v, want %v", got, want)
			break
		}
	}
	if got := CoresBusy(samples, 8)[1]; math.Abs(got-2) > 1e-9 {
		t.Errorf("slice 50-100 ms: %v cores, want 2", got)
	}
	if got := CoresBusy(samples, 2); math.Abs(got[0]-1) > 1e-9 || math.Abs(got[1]-0.25) > 1e-9 {
		t.Errorf("two slices: %v, want [1 0.25]", got)
	}
	if CoresBusy(samples[:1], 4) != nil || CoresBusy(samples, 0) != nil {
		t.Error("one sample or no slices: want nil")
	}
}

// TestSampleCPU: the samples run from the start to the stop, in order, and the CPU time
// the process spent between them is in them.
func TestSampleCPU(t *testing.T) {
	stop := SampleCPU(time.Millisecond)
	began := cpuTime()
	n := 0
	for cpuTime()-began < 20*time.Millisecond {
		n++
	}
	s := stop()
	if len(s) < 2 {
		t.Fatalf("%d samples", len(s))
	}
	for i := 1; i < len(s); i++ {
		if s[i].At.Before(s[i-1].At) || s[i].CPU < s[i-1].CPU {
			t.Fatalf("sample %d (%v, %v) before sample %d (%v, %v)", i, s[i].At, s[i].CPU, i-1, s[i-1].At, s[i-1].CPU)
		}
	}
	if used := s[len(s)-1].CPU - s[0].CPU; used < 20*time.Millisecond {
		t.Errorf("samples hold %v of CPU, want at least the 20 ms spun (%d turns)", used, n)
	}
}

// TestProcessCPU: /proc's count of this process's CPU agrees with getrusage's, to the
// ticks that separate them, after the process spun; a process that does not exist has
// none.
func TestProcessCPU(t *testing.T) {
	began := cpuTime()
	for cpuTime()-began < 50*time.Millisecond {
	}
	ru, proc := cpuTime(), ProcessCPU(os.Getpid())
	if proc < 50*time.Millisecond-2*time.Second/clockTicks || proc > ru+2*time.Second/clockTicks {
		t.Errorf("/proc says %v, getrusage %v", proc, ru)
	}
	if got := ProcessCPU(-1); got != 0 {
		t.Errorf("no process: %v, want 0", got)
	}
}
