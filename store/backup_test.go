package store

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/test/waitfor"
)

// TestScheduledSnapshots: the leader writes snapshots on schedule, each naming the
// cluster, the revision and the version; the retention keeps the newest and deletes
// nothing that is not this cluster's own snapshot; every member's files are listed.
func TestScheduledSnapshots(t *testing.T) {
	dir := t.TempDir()
	var minutes atomic.Int64
	base := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Backups = BackupConfig{Dir: dir, Interval: 50 * time.Millisecond, Retention: 3, Version: "v9.9.9-test",
			Now: func() time.Time { return base.Add(time.Duration(minutes.Add(1)) * time.Minute) }}
	})
	ctx := ctxT(t, 60*time.Second)
	c.leader()
	s := c.nodes[0]
	id := waitClusterID(t, c)

	// What is not Skiff's, or not this cluster's, stays.
	keep := map[string][]byte{
		"notes.txt": []byte("mine"),
		"skiff-snapshot-0123456789abcdef-20260101T000000Z-r5.db": []byte("named like one, but no trailer"),
	}
	var foreign bytes.Buffer
	other := newCluster(t, 1, nil)
	other.leader()
	waitClusterID(t, other)
	if _, err := other.nodes[0].WriteSnapshot(&foreign, "v0", base); err != nil {
		t.Fatal(err)
	}
	keep[fmt.Sprintf("skiff-snapshot-%s-20200101T000000Z-r1.db", other.nodes[0].ClusterID())] = foreign.Bytes()
	for name, b := range keep {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}

	for i := 0; i < 20; i++ {
		if _, err := s.Txn(ctx, Op{Type: Create, Key: key(fmt.Sprint("k", i)), Value: []byte("v")}); err != nil {
			t.Fatal(err)
		}
	}
	waitfor.Condition(t, 30*time.Second, "more snapshots written than the retention keeps", func() (bool, string) {
		return minutes.Load() > 5, fmt.Sprint(minutes.Load(), " written")
	})
	s.backupMu.Lock() // no snapshot half-written while the test looks
	defer s.backupMu.Unlock()
	files, err := s.localBackups()
	if err != nil || len(files) != 3 {
		t.Fatalf("this cluster's snapshots after %d: %d kept (%v), want the retention's 3", minutes.Load(), len(files), err)
	}
	for name, b := range keep {
		got, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("retention touched %s, which is not this cluster's snapshot: %v", name, err)
		}
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != len(keep)+3 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("backup dir holds %v", names)
	}
	for _, f := range files {
		m := f.Meta
		if m.Cluster != id || m.Member != "n1" || m.Version != "v9.9.9-test" || m.Revision == 0 || len(m.SHA256) != 64 ||
			!strings.Contains(filepath.Base(f.Path), id) {
			t.Fatalf("snapshot %s says %+v", f.Path, m)
		}
		if _, err := VerifySnapshot(f.Path); err != nil {
			t.Fatalf("a scheduled snapshot does not verify: %v", err)
		}
	}
	if !sort.SliceIsSorted(files, func(i, j int) bool { return files[i].Meta.Created.After(files[j].Meta.Created) }) {
		t.Fatal("snapshots not listed newest first")
	}
	listed, errs := s.ListBackups(ctx)
	if len(errs) != 0 || len(listed) != 3 || listed[0].Member != "n1" {
		t.Fatalf("ListBackups: %+v %v", listed, errs)
	}
}

// TestRestoreChecksSnapshotTrailer: restore takes a scheduled snapshot (without its
// trailer in the new state) into a new cluster with an ID of its own, and refuses one whose
// checksum, length or format does not match.
func TestRestoreChecksSnapshotTrailer(t *testing.T) {
	src := newCluster(t, 1, nil)
	ctx := ctxT(t, 60*time.Second)
	src.leader()
	srcID := waitClusterID(t, src)
	for _, n := range []string{"a", "b"} {
		if _, err := src.nodes[0].Txn(ctx, Op{Type: Create, Key: key(n), Value: []byte(n)}); err != nil {
			t.Fatal(err)
		}
	}
	var buf bytes.Buffer
	meta, err := src.nodes[0].WriteSnapshot(&buf, "v1.2.3", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	good := buf.Bytes()
	write := func(b []byte) string {
		path := filepath.Join(t.TempDir(), "snap.db")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	info, err := VerifySnapshot(write(good))
	if err != nil || info.Meta == nil || info.Meta.Cluster != srcID || info.Meta.Revision != meta.Revision || info.Revision != meta.Revision {
		t.Fatalf("verify a good snapshot: %+v %v", info, err)
	}

	trailerAt := int(meta.StateSize)
	flipped := bytes.Clone(good)
	flipped[trailerAt/2] ^= 0xff
	otherFormat := bytes.Clone(good[:trailerAt])
	b := []byte(strings.Replace(string(good[trailerAt:len(good)-12]), `"format":1`, `"format":7`, 1))
	otherFormat = append(binary.BigEndian.AppendUint32(append(otherFormat, b...), uint32(len(b))), snapshotMagic...)
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"a flipped byte", flipped, "checksum does not match"},
		{"bytes appended after the state", append(append(bytes.Clone(good[:trailerAt]), "extra"...), good[trailerAt:]...), "format does not match"},
		{"another format", otherFormat, "format 7 does not match"},
		{"a trailer that does not parse", append(bytes.Clone(good[:len(good)-12-3]), good[len(good)-12:]...), "format does not match"},
	} {
		dir := filepath.Join(t.TempDir(), "data")
		_, err := RestoreDir(RestoreConfig{Snapshot: write(tc.file), Dir: dir, ID: "r1", InitialCluster: []Server{{ID: "r1", Address: "127.0.0.1:1"}}})
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("restore of a snapshot with %s: %v; want %q", tc.name, err, tc.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("a refused restore left %d files in the data directory", len(entries))
		}
	}

	// The good one restores: its objects, and a cluster ID of the new cluster's own.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	members := []Server{{ID: "r1", Address: ln.Addr().String()}}
	cfg := testConfig("r1", filepath.Join(t.TempDir(), "data"))
	if _, err := RestoreDir(RestoreConfig{Snapshot: write(good), Dir: cfg.Dir, ID: "r1", InitialCluster: members}); err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, log: &testLog{t: t}}
	t.Cleanup(func() { c.stop(0) })
	cfg.Listener = ln
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "r1", Output: c.log, Level: hclog.Warn})
	c.cfgs, c.nodes = []Config{cfg}, []*Store{nil}
	c.start(0)
	c.leader()
	if got := listNames(t, c.nodes[0]); len(got) != 2 {
		t.Fatalf("restored objects %v", got)
	}
	if id := waitClusterID(t, c); id == srcID {
		t.Fatalf("the restored cluster kept the old cluster's ID %s", id)
	}
}

func TestNextBackup(t *testing.T) {
	const interval, retry = time.Hour, 30 * time.Second
	for _, tc := range []struct {
		consecutive int
		interval    time.Duration
		want        time.Duration
	}{
		{0, interval, interval},
		{1, interval, 30 * time.Second},
		{2, interval, time.Minute},
		{4, interval, 4 * time.Minute},
		{8, interval, interval}, // 64 min, capped
		{100, interval, interval},
		{1, 10 * time.Second, 10 * time.Second}, // a retry no sooner than the interval
	} {
		if got := nextBackup(tc.interval, retry, tc.consecutive); got != tc.want {
			t.Errorf("after %d failures with interval %v: next in %v, want %v", tc.consecutive, tc.interval, got, tc.want)
		}
	}
}

// TestScheduledSnapshotFailureNotSilent: a snapshot that cannot be written is counted,
// told to OnFailure with the failures in a row, and retried; the first success clears it.
func TestScheduledSnapshotFailureNotSilent(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(blocker, "backups")
	type failure struct {
		err string
		n   int
	}
	failures := make(chan failure, 100)
	c := newCluster(t, 1, func(cfg *Config) {
		cfg.Backups = BackupConfig{Dir: dir, Interval: 200 * time.Millisecond, RetryDelay: 10 * time.Millisecond,
			OnFailure: func(err error, n int) {
				select {
				case failures <- failure{err.Error(), n}:
				default:
				}
			}}
	})
	c.leader()
	waitClusterID(t, c)
	s := c.nodes[0]
	for want := 1; want <= 3; want++ {
		select {
		case f := <-failures:
			if f.n != want || !strings.Contains(f.err, dir) {
				t.Fatalf("failure told: %+v, want failure %d in a row naming %s", f, want, dir)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("failure %d in a row never told: %+v", want, s.BackupStatus())
		}
	}
	if st := s.BackupStatus(); st.Failed < 3 || st.Consecutive < 3 || st.Succeeded != 0 || !strings.Contains(st.LastError, dir) || st.LastFailure.IsZero() {
		t.Fatalf("status after three failures: %+v", st)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "a snapshot written once the directory can be made", func() (bool, string) {
		st := s.BackupStatus()
		return st.Succeeded > 0 && st.Consecutive == 0 && st.LastError == "", fmt.Sprintf("%+v", st)
	})
	if files, err := s.localBackups(); err != nil || len(files) == 0 {
		t.Fatalf("snapshots after the recovery: %v, %v", files, err)
	}
}

// TestFirstSnapshotWaitsForTheClusterID: a new cluster's leader records the cluster's
// ID with its first commands; a snapshot due before then waits for it rather than
// failing ("the cluster has no ID yet" was a scheduled failure, told as a Warning, of
// every cluster whose first election took longer than the interval).
func TestFirstSnapshotWaitsForTheClusterID(t *testing.T) {
	for range 3 {
		var failures atomic.Int64
		c := newCluster(t, 1, func(cfg *Config) {
			cfg.Backups = BackupConfig{Dir: t.TempDir(), Interval: time.Millisecond, RetryDelay: time.Millisecond, Retention: 2,
				OnFailure: func(err error, n int) { failures.Add(1); t.Errorf("scheduled snapshot %d failed: %v", n, err) }}
		})
		waitfor.Condition(t, 60*time.Second, "three scheduled snapshots", func() (bool, string) {
			st := c.nodes[0].BackupStatus()
			return st.Succeeded >= 3, fmt.Sprintf("%+v", st)
		})
		if st := c.nodes[0].BackupStatus(); st.Failed != 0 || failures.Load() != 0 {
			t.Fatalf("failures before the first snapshot: %+v", st)
		}
		c.stop(0)
	}
}
