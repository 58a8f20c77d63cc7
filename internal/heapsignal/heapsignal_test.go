package heapsignal

import (
	"bytes"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

// TestWritesOnSignal: SIGUSR2 writes a heap profile (gzip-compressed protobuf, as
// pprof writes it) to the file named, and the goroutines' stacks beside it (this test's
// own among them); after stop, the signal is no longer handled here.
func TestWritesOnSignal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heap.pb.gz")
	stop := Start(path, t.Logf)
	if err := syscall.Kill(os.Getpid(), syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	var data []byte
	waitfor.Condition(t, time.Minute, "the profile written", func() (bool, string) {
		var err error
		data, err = os.ReadFile(path)
		return err == nil, "not yet"
	})
	stop()
	if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
		t.Fatalf("not a gzip-compressed profile: % x", data[:min(len(data), 8)])
	}
	if _, err := os.Stat(path + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	stacks, err := os.ReadFile(path + GoroutinesSuffix)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(stacks, []byte("heapsignal.TestWritesOnSignal")) || !bytes.Contains(stacks, []byte("goroutine ")) {
		t.Errorf("the goroutines' stacks lack this test's:\n%s", stacks[:min(len(stacks), 2000)])
	}
}

// TestCPUProfileBetweenSignals: a first SIGUSR1 starts a CPU profile, the second ends it
// and writes it (gzip-compressed protobuf) to FILE.cpu, with nothing left beside it; a
// third starts another, which stop ends and writes.
func TestCPUProfileBetweenSignals(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heap.pb.gz")
	cpu := path + CPUSuffix
	stop := Start(path, t.Logf)
	signal := func() {
		t.Helper()
		if err := syscall.Kill(os.Getpid(), syscall.SIGUSR1); err != nil {
			t.Fatal(err)
		}
	}
	profiled := func(what string) {
		t.Helper()
		var data []byte
		waitfor.Condition(t, time.Minute, what, func() (bool, string) {
			var err error
			data, err = os.ReadFile(cpu)
			return err == nil, "not yet"
		})
		if !bytes.HasPrefix(data, []byte{0x1f, 0x8b}) {
			t.Fatalf("%s: not a gzip-compressed profile: % x", what, data[:min(len(data), 8)])
		}
		if _, err := os.Stat(cpu + ".tmp"); !os.IsNotExist(err) {
			t.Errorf("%s: temporary file left: %v", what, err)
		}
	}
	signal()
	waitfor.Condition(t, time.Minute, "the profile started", func() (bool, string) {
		_, err := os.Stat(cpu + ".tmp")
		return err == nil, "not yet"
	})
	if _, err := os.Stat(cpu); !os.IsNotExist(err) {
		t.Fatalf("the profile was written before its end: %v", err)
	}
	signal()
	profiled("the profile written at the second signal")
	if err := os.Remove(cpu); err != nil {
		t.Fatal(err)
	}
	signal()
	waitfor.Condition(t, time.Minute, "a second profile started", func() (bool, string) {
		_, err := os.Stat(cpu + ".tmp")
		return err == nil, "not yet"
	})
	stop()
	profiled("the profile under way written at stop")
}
