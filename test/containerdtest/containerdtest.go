// Package containerdtest runs a private containerd for tests: its own root, state and
// socket under a temporary directory, so tests never touch the machine's containerd and
// clean up after themselves (the daemon, the shims of any container left behind and their
// containers, their mounts, the directory). It needs root and the containerd,
// containerd-shim-runc-v2 and runc binaries (`make deps` installs them); without them the
// test is skipped, saying why.
package containerdtest

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/skiffhq/skiff/up/daemon"
)

// Start starts containerd for t and returns its socket. It stops at t's cleanup.
func Start(t testing.TB) string {
	t.Helper()
	if err := daemon.Usable(); err != nil {
		t.Skipf("containerd tests: %v", err)
	}
	dir, err := os.MkdirTemp("", "ctrd-") // short: socket paths are limited to 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	// Read only once containerd has exited (Start and Stop wait for it), when exec has
	// copied all its output.
	var log bytes.Buffer
	p, err := daemon.Start(context.Background(), filepath.Join(dir, "root"), filepath.Join(dir, "state"), &log)
	if err != nil {
		os.RemoveAll(dir)
		t.Fatalf("%v\n%s", err, log.String())
	}
	t.Cleanup(func() {
		p.Stop()
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("remove %s: %v", dir, err)
		}
		if t.Failed() {
			t.Logf("containerd log:\n%s", log.String())
		}
	})
	return p.Socket
}
