package store

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"go.etcd.io/bbolt"

	"github.com/skiffhq/skiff/test/waitfor"
)

// backupFile writes a node's backup to a file and returns its path and revision.
func backupFile(t *testing.T, s *Store) (string, int64) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snap.db")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := s.Backup(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path, rev
}

func listNames(t *testing.T, s *Store) map[string]int64 {
	t.Helper()
	objs, _, err := s.List(ctxT(t, 30*time.Second), "ConfigMap", ListOptions{})
	if err != nil {
		t.Fatalf("list on %s: %v", s.ID(), err)
	}
	out := map[string]int64{}
	for _, o := range objs {
		out[o.Name] = o.ModRevision
	}
	return out
}

func sameObjects(t *testing.T, who string, got, want map[string]int64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s holds %v, want the snapshot's %v", who, got, want)
	}
}

// sourceWithSnapshot runs a one-node cluster, writes, backs up, then changes the state so
// that only a correct restore shows the backup's objects.
func sourceWithSnapshot(t *testing.T) (path string, rev int64, want map[string]int64) {
	c := newCluster(t, 1, nil)
	ctx := ctxT(t, 60*time.Second)
	c.leader()
	s := c.nodes[0]
	for _, n := range []string{"a", "b", "c"} {
		if _, err := s.Txn(ctx, Op{Type: Create, Key: key(n), Value: []byte(n)}); err != nil {
			t.Fatal(err)
		}
	}
	path, rev = backupFile(t, s)
	want = listNames(t, s)
	if _, err := s.Txn(ctx, Op{Type: Update, Key: key("a"), Value: []byte("changed")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Txn(ctx, Op{Type: Delete, Key: key("b")}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Txn(ctx, Op{Type: Create, Key: key("d"), Value: []byte("d")}); err != nil {
		t.Fatal(err)
	}
	return path, rev, want
}

// TestRestoreThreeMembersFromOneSnapshot: one snapshot restores a three-member cluster onto
// new members at new addresses (127.0.0.21-23; the source listened on 127.0.0.1).
func TestRestoreThreeMembersFromOneSnapshot(t *testing.T) {
	path, snapRev, want := sourceWithSnapshot(t)
	ctx := ctxT(t, 120*time.Second)

	var members []Server
	var lns []net.Listener
	for i := 0; i < 3; i++ {
		// New machines with new addresses (the source cluster listens on 127.0.0.1).
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", 21+i))
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		members = append(members, Server{ID: fmt.Sprintf("r%d", i+1), Address: ln.Addr().String()})
	}
	c := &cluster{t: t, log: &testLog{t: t}}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	const bump = 1000
	for i, m := range members {
		cfg := testConfig(m.ID, filepath.Join(t.TempDir(), "data")) // absent: restore creates it
		res, err := RestoreDir(RestoreConfig{Snapshot: path, Dir: cfg.Dir, ID: m.ID, InitialCluster: members, RevisionBump: bump})
		if err != nil {
			t.Fatal(err)
		}
		if res.Revision != snapRev || res.StartRevision != snapRev+bump || res.Objects["ConfigMap"] != len(want) {
			t.Fatalf("restore result %+v, want revision %d, start %d, %d ConfigMaps", res, snapRev, snapRev+bump, len(want))
		}
		cfg.Listener = lns[i]
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: m.ID, Output: c.log, Level: hclog.Warn})
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, nil)
	}
	for i := range members {
		c.start(i)
		if !c.nodes[i].HadState() {
			t.Fatalf("%s: a restored directory must count as existing state (never bootstrapped)", members[i].ID)
		}
	}
	c.leader()
	for _, s := range c.nodes {
		sameObjects(t, s.ID(), listNames(t, s), want)
		if s.Revision() < snapRev+bump {
			t.Fatalf("%s at revision %d, want at least %d", s.ID(), s.Revision(), snapRev+bump)
		}
	}
	st, err := c.nodes[0].Status()
	if err != nil || len(st.Members) != 3 {
		t.Fatalf("restored cluster status %+v %v", st, err)
	}

	// Watches from before the restore are compacted, never silently short.
	for _, after := range []int64{1, snapRev, snapRev + bump/2} {
		_, err := c.nodes[1].Watch(WatchOptions{Kind: "ConfigMap", After: after})
		var ce *CompactedError
		if !errors.As(err, &ce) || ce.Oldest < snapRev+bump {
			t.Fatalf("watch after %d on a restored node: %v, want a CompactedError", after, err)
		}
	}
	w, err := c.nodes[1].Watch(WatchOptions{Kind: "ConfigMap"})
	if err != nil {
		t.Fatal(err)
	}

	// The backup's resourceVersions stay valid, and revisions go on after the bump.
	res, err := c.nodes[2].Txn(ctx, Op{Type: Update, Key: key("a"), Value: []byte("new"), IfRevision: want["a"]})
	if err != nil {
		t.Fatalf("update with the snapshot's resourceVersion: %v", err)
	}
	if res.Revision <= snapRev+bump {
		t.Fatalf("write after restore at revision %d, want > %d", res.Revision, snapRev+bump)
	}
	evs, err := w.Next(ctx)
	if err != nil || len(evs) != 1 || evs[0].Object.Name != "a" || evs[0].Revision != res.Revision {
		t.Fatalf("watch on restored cluster: %v %v", evs, err)
	}
}

func TestRestoreOneMemberOthersJoin(t *testing.T) {
	path, snapRev, want := sourceWithSnapshot(t)
	ctx := ctxT(t, 120*time.Second)
	c := &cluster{t: t, log: &testLog{t: t}}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
	})
	for i := 0; i < 2; i++ {
		ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:0", 31+i))
		if err != nil {
			t.Fatal(err)
		}
		cfg := testConfig(fmt.Sprintf("r%d", i+1), t.TempDir())
		cfg.Listener = ln
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: cfg.ID, Output: c.log, Level: hclog.Warn})
		if i == 0 {
			if _, err := RestoreDir(RestoreConfig{Snapshot: path, Dir: cfg.Dir, ID: cfg.ID,
				InitialCluster: []Server{{ID: cfg.ID, Address: ln.Addr().String()}}}); err != nil {
				t.Fatal(err)
			}
		}
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, nil)
		c.start(i)
	}
	c.leader()
	if err := c.nodes[0].AddVoter(ctx, "r2", c.nodes[1].PeerAddress()); err != nil {
		t.Fatalf("add r2: %v", err)
	}
	rev := c.nodes[0].Revision()
	if rev < snapRev+DefaultRevisionBump {
		t.Fatalf("restored node at revision %d, want at least %d", rev, snapRev+DefaultRevisionBump)
	}
	waitfor.Condition(t, time.Minute, "r2 caught up", func() (bool, string) {
		return c.nodes[1].Revision() >= rev, fmt.Sprintf("at revision %d of %d", c.nodes[1].Revision(), rev)
	})
	for _, s := range c.nodes {
		sameObjects(t, s.ID(), listNames(t, s), want)
	}
}

func TestRestoreRejectsBadInput(t *testing.T) {
	c := newCluster(t, 1, nil)
	ctx := ctxT(t, 30*time.Second)
	c.leader()
	for i := 0; i < 50; i++ {
		if _, err := c.nodes[0].Txn(ctx, Op{Type: Create, Key: key(fmt.Sprint(i)), Value: []byte(strings.Repeat("v", 300))}); err != nil {
			t.Fatal(err)
		}
	}
	good, _ := backupFile(t, c.nodes[0])
	data, err := os.ReadFile(good)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// A bbolt file that is not a state file.
	other := filepath.Join(dir, "other.db")
	db, err := bbolt.Open(other, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	db.Update(func(tx *bbolt.Tx) error { _, err := tx.CreateBucket([]byte("things")); return err })
	db.Close()
	// State files whose page tree is damaged: the objects bucket's root page gets a wrong
	// page id, or a wild element count.
	sdb, err := bbolt.Open(good, 0o400, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	var root int
	sdb.View(func(tx *bbolt.Tx) error { root = int(tx.Bucket(bucketObjects).Root()); return nil })
	sdb.Close()
	off := root * os.Getpagesize()
	badID := append([]byte(nil), data...)
	copy(badID[off:off+8], []byte{7, 7, 7, 7, 0, 0, 0, 0})
	wild := append([]byte(nil), data...)
	copy(wild[off+10:off+12], []byte{0xff, 0xff})
	cases := []struct {
		name, path, want string
	}{
		{"missing", filepath.Join(dir, "nope.db"), "no such file"},
		{"empty", write("empty.db", nil), "not a snapshot"},
		{"text", write("text.db", []byte(strings.Repeat("not a database\n", 1000))), "not a valid state file"},
		{"truncated", write("trunc.db", data[:len(data)/2]), "trunc.db"},
		{"other bbolt", other, "not a snapshot"},
		{"page id", write("pageid.db", badID), "corrupt"},
		{"element count", write("count.db", wild), "corrupt"},
	}
	members := []Server{{ID: "r1", Address: "127.0.0.1:1"}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			target := t.TempDir()
			_, err := RestoreDir(RestoreConfig{Snapshot: tc.path, Dir: target, ID: "r1", InitialCluster: members})
			if err == nil || !strings.Contains(err.Error(), tc.path) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("restore from %s: %v, want an error naming the file and saying %q", tc.name, err, tc.want)
			}
			t.Log(err)
			if left, _ := os.ReadDir(target); len(left) != 0 {
				t.Fatalf("failed restore left %d files in the data dir", len(left))
			}
		})
	}

	full := t.TempDir()
	write2 := filepath.Join(full, "raft.db")
	if err := os.WriteFile(write2, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := RestoreDir(RestoreConfig{Snapshot: good, Dir: full, ID: "r1", InitialCluster: members}); err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Fatalf("restore into a non-empty dir: %v", err)
	}
	if _, err := RestoreDir(RestoreConfig{Snapshot: good, Dir: t.TempDir(), ID: "r9", InitialCluster: members}); err == nil || !strings.Contains(err.Error(), "does not include this node") {
		t.Fatalf("restore for a node outside the cluster: %v", err)
	}
	info, err := VerifySnapshot(good)
	if err != nil || info.Objects["ConfigMap"] != 50 {
		t.Fatalf("verify good snapshot: %+v %v", info, err)
	}
	names := make([]string, 0, len(info.Objects))
	for k := range info.Objects {
		names = append(names, k)
	}
	sort.Strings(names)
	t.Logf("snapshot kinds %v at revision %d", names, info.Revision)
}
