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
