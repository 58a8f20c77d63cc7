package store

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// TestCheckLogFindsATornTail: a Raft log whose last page was cut off, or whose bytes in a
// page of the log were inverted, is reported as damaged by openLog, rather than crashing
// the process from bbolt's own goroutine when it rebuilds the freelist (as the torn tail
// did before checkLog: "panic: freepages: failed to get all reachable pages").
func TestCheckLogFindsATornTail(t *testing.T) {
	// write makes a log of 2,000 entries of 1 KiB in dir and returns its path, the
	// file's page size and size in pages, and the page of the logs bucket's root.
	write := func(t *testing.T) (path string, pageSize, pages int64, root int64) {
		path = filepath.Join(t.TempDir(), "raft.db")
		logs, err := openLog(path, 0)
		if err != nil {
			t.Fatal(err)
		}
		var entries []*raft.Log
		for i := uint64(1); i <= 2000; i++ {
			entries = append(entries, &raft.Log{Index: i, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, 1024)})
		}
		if err := logs.StoreLogs(entries); err != nil {
			t.Fatal(err)
		}
		logs.Close()
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		db.View(func(tx *bbolt.Tx) error {
			pageSize = int64(db.Info().PageSize)
			pages = tx.Size() / pageSize
			root = int64(tx.Bucket([]byte("logs")).Root())
			return nil
		})
		return path, pageSize, pages, root
	}
	open := func(t *testing.T, path string) error {
		t.Helper()
		logs, err := openLog(path, 0)
		if err == nil {
			logs.Close()
		}
		return err
	}

	t.Run("intact", func(t *testing.T) {
		path, _, _, _ := write(t)
		if err := open(t, path); err != nil {
			t.Fatalf("an intact log: %v", err)
		}
	})
	t.Run("new", func(t *testing.T) {
		if err := checkLog(filepath.Join(t.TempDir(), "raft.db")); err != nil {
			t.Fatalf("no log yet: %v", err)
		}
	})
	t.Run("truncated", func(t *testing.T) {
		path, ps, pages, _ := write(t)
		if err := os.Truncate(path, pages*ps-ps/2); err != nil {
			t.Fatal(err)
		}
		if err := open(t, path); err == nil || !strings.Contains(err.Error(), "torn") {
			t.Fatalf("a log cut in its last page: %v, want it torn", err)
		}
	})
	t.Run("inverted", func(t *testing.T) {
		path, ps, _, root := write(t)
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, ps-16) // the page after its header
		f.ReadAt(b, root*ps+16)
		for i := range b {
			b[i] ^= 0xff
		}
		f.WriteAt(b, root*ps+16)
		f.Close()
		if err := open(t, path); err == nil || !strings.Contains(err.Error(), "corrupt") {
			t.Fatalf("a log with a page inverted: %v, want it corrupt", err)
		}
	})
}
