package store

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/test/waitfor"
)

// TestApplyWaitsForDiskSpace: committed entries the state file cannot take for a full
// disk (ENOSPC) are neither skipped nor fatal: apply waits, the state file stays as it
// was, and the entries are applied once space is freed.
func TestApplyWaitsForDiskSpace(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: it mounts a tmpfs")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m", "skiff-test", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("unmount %s: %v: %s", dir, err, out)
		}
	})
	logs := &syncBuffer{}
	f, err := openFSM(filepath.Join(dir, "state.db"), 0, 4<<20, nil, newHistory(100, 0), testIdentity(t),
		hclog.New(&hclog.LoggerOptions{Output: logs, Level: hclog.Info}))
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	f.stop = stop
	t.Cleanup(func() { close(stop); f.close() })
	tf := &testFSM{t: t, f: f, next: 1}
	if _, err := tf.one(Op{Type: Create, Key: key("small"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}

	// Fill the file system, then commit an object that needs new pages.
	fill := filepath.Join(dir, "fill")
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	fh, err := os.Create(fill)
	if err != nil {
		t.Fatal(err)
	}
	if err := syscall.Fallocate(int(fh.Fd()), 0, 0, int64(st.Bavail)*st.Bsize); err != nil {
		t.Fatal(err)
	}
	fh.Close()
	done := make(chan error, 1)
	go func() {
		res, err := tf.one(Op{Type: Create, Key: key("big"), Value: bytes.Repeat([]byte("x"), 256<<10)})
		if err == nil && res.Revision != 2 {
			err = fmt.Errorf("revision %d, want 2", res.Revision)
		}
		done <- err
	}()
	waitfor.Condition(t, 30*time.Second, "apply to report the full disk", func() (bool, string) {
		return strings.Contains(logs.String(), "disk full"), logs.String()
	})
	select {
	case err := <-done:
		t.Fatalf("apply returned on a full disk (%v), want it to wait", err)
	default:
	}
	if got := f.applied.Load(); got != 1 {
		t.Fatalf("applied %d on a full disk, want 1", got)
	}
	if _, _, err := f.get(key("big")); err == nil {
		t.Fatal("the object that did not fit is readable")
	}

	if err := os.Remove(fill); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("apply did not complete within 30s of freeing space")
	}
	if obj, rev, err := f.get(key("big")); err != nil || rev != 2 || len(obj.Value) != 256<<10 {
		t.Fatalf("after freeing space: %d bytes at revision %d, %v", len(obj.Value), rev, err)
	}
}
