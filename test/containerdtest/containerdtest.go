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

// RemoveCgroups removes, at t's cleanup, the cgroup tree under root ("/skiff-test",
// a runtime's CgroupRoot) in every hierarchy: what containers and pods left there when
// a test stopped containerd under them. Directories are removed deepest first; one
// still in use stays, and is logged.
func RemoveCgroups(t testing.TB, root string) {
	t.Cleanup(func() {
		hierarchies, _ := filepath.Glob("/sys/fs/cgroup/*")
		hierarchies = append(hierarchies, "/sys/fs/cgroup")
		for _, h := range hierarchies {
			top := filepath.Join(h, root)
			var dirs []string
			filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
				if err == nil && d.IsDir() {
					dirs = append(dirs, p)
				}
				return nil
			})
			for i := len(dirs) - 1; i >= 0; i-- {
				if err := os.Remove(dirs[i]); err != nil && !os.IsNotExist(err) {
					t.Logf("remove cgroup %s: %v", dirs[i], err)
				}
			}
		}
	})
}
