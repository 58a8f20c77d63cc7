package store

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"go.etcd.io/bbolt"
)

// TestDamagedDataRefusedWithAdvice: a member whose Raft log or snapshots are damaged
// refuses to start and says how to recover (remove, wipe, add again); one whose snapshot a
// newer release wrote refuses and says that instead.
func TestDamagedDataRefusedWithAdvice(t *testing.T) {
	prepare := func(t *testing.T) Config {
		c := newCluster(t, 1, nil)
		ctx := ctxT(t, 30*time.Second)
		c.leader()
		waitClusterID(t, c)
		s := c.nodes[0]
		for i := 0; i < 20; i++ {
			if _, err := s.Txn(ctx, Op{Type: Create, Key: key(fmt.Sprint("k", i)), Value: []byte("v")}); err != nil {
				t.Fatal(err)
			}
		}
		if err := s.raft.Snapshot().Error(); err != nil {
			t.Fatal(err)
		}
		c.stop(0)
		cfg := c.cfgs[0]
		cfg.Listen = "127.0.0.1:0"
		cfg.InitialCluster = nil
		return cfg
	}
	advice := func(t *testing.T, cfg Config, err error) {
		t.Helper()
		for _, want := range []string{"member n1 cannot start", cfg.Dir, "is damaged", "skiffctl cluster remove n1", "move its data directory away", "add it again"} {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Fatalf("open on a damaged directory: %v; want it to say %q", err, want)
			}
		}
	}

	t.Run("raft log", func(t *testing.T) {
		cfg := prepare(t)
		f, err := os.OpenFile(filepath.Join(cfg.Dir, "raft.db"), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteAt(bytes.Repeat([]byte{0xab}, 16<<10), 0)
		f.Close()
		s, err := Open(cfg)
		if err == nil {
			s.Close()
		}
		advice(t, cfg, err)
	})

	t.Run("snapshots", func(t *testing.T) {
		cfg := prepare(t)
		states, _ := filepath.Glob(filepath.Join(cfg.Dir, "snapshots", "*", "state.bin"))
		if len(states) == 0 {
			t.Fatal("no snapshot to damage")
		}
		for _, p := range states {
			b, _ := os.ReadFile(p)
			b[len(b)/2] ^= 0xff
			os.WriteFile(p, b, 0o600)
		}
		s, err := Open(cfg)
		if err == nil {
			s.Close()
		}
		advice(t, cfg, err)
	})

	t.Run("newer format", func(t *testing.T) {
		cfg := prepare(t)
		// Rewrite the latest snapshot as a newer release would have written it.
		snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hclog.NewNullLogger())
		if err != nil {
			t.Fatal(err)
		}
		list, err := snaps.List()
		if err != nil || len(list) == 0 {
			t.Fatalf("snapshots: %v %v", list, err)
		}
		meta, rc, err := snaps.Open(list[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		tmp := filepath.Join(t.TempDir(), "state")
		b, _ := io.ReadAll(rc)
		rc.Close()
		os.WriteFile(tmp, b, 0o600)
		db, err := bbolt.Open(tmp, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(keyFormat, []byte{0, 0, 0, stateFormat + 1})
		})
		db.Close()
		b, _ = os.ReadFile(tmp)
		for _, old := range list { // only the newer one left
			os.RemoveAll(filepath.Join(cfg.Dir, "snapshots", old.ID))
		}
		_, trans := raft.NewInmemTransport("")
		sink, err := snaps.Create(meta.Version, meta.Index, meta.Term, meta.Configuration, meta.ConfigurationIndex, trans)
		if err != nil {
			t.Fatal(err)
		}
		sink.Write(b)
		if err := sink.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := Open(cfg)
		if err == nil {
			s.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "member n1 cannot start") || !strings.Contains(err.Error(), "written by a newer Skiff") || strings.Contains(err.Error(), "damaged") {
			t.Fatalf("open on a directory of a newer format: %v", err)
		}
	})
}
