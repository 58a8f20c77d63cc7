package store

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/debug"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/skiffhq/skiff/proto/store/v1"
)

// DefaultRevisionBump is how far RestoreDir moves the revision past the snapshot's: more
// than the writes the old cluster is expected to have taken after the snapshot, so that
// no revision of the restored cluster can be mistaken for one of the old cluster's.
const DefaultRevisionBump = 1_000_000

// SnapshotInfo describes a backup file (Backup's output) that passed VerifySnapshot.
type SnapshotInfo struct {
	// Revision is the revision the backup reflects.
	Revision int64
	// Meta is what a scheduled snapshot says of itself (nil for a plain backup).
	Meta *SnapshotMeta
	// Objects counts the objects it holds, by kind.
	Objects map[string]int
}

// VerifySnapshot checks that path is a whole, uncorrupted backup written by Backup (or a
// scheduled snapshot, whose trailer must match it: see ReadSnapshotMeta): a bbolt file
// that passes bbolt's consistency check, holds the state machine's buckets and revision,
// and whose every record decodes. It opens the file read-only.
func VerifySnapshot(path string) (*SnapshotInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("snapshot %s: not a regular file", path)
	}
	if fi.Size() == 0 {
		return nil, fmt.Errorf("snapshot %s: not a snapshot: the file is empty", path)
	}
	meta, err := ReadSnapshotMeta(path)
	if err != nil {
		return nil, err
	}
	stateSize := fi.Size()
	if meta != nil {
		stateSize = meta.StateSize
	}
	db, err := bbolt.Open(path, 0o400, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: not a valid state file: %w", path, err)
	}
	defer db.Close()
	info := &SnapshotInfo{Objects: map[string]int{}, Meta: meta}
	err = db.View(func(tx *bbolt.Tx) error {
		if tx.Size() > stateSize {
			return fmt.Errorf("truncated: the state is %d bytes, its pages need %d", stateSize, tx.Size())
		}
		// Walk every page here first, where a damaged page's panic (bbolt asserts rather
		// than returns errors) can be caught; Check's own walk runs on a goroutine of its
		// own, where it could not.
		if err := walkSnapshot(tx, info); err != nil {
			return err
		}
		var problems []error
		for err := range tx.Check() { // drained whole: the checker stops only at the end
			if len(problems) < 10 {
				problems = append(problems, err)
			}
		}
		if len(problems) > 0 {
			return fmt.Errorf("corrupt: %w", errors.Join(problems...))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	if meta != nil && meta.Revision != info.Revision {
		return nil, fmt.Errorf("snapshot %s: format does not match: the trailer says revision %d, the state %d", path, meta.Revision, info.Revision)
	}
	return info, nil
}

// walkSnapshot reads every key of the state file, decoding every record, and turns a
// panic or a memory fault on a damaged page into an error.
func walkSnapshot(tx *bbolt.Tx, info *SnapshotInfo) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("corrupt: %v", r)
		}
	}()
	for _, b := range [][]byte{bucketObjects, bucketIndex, bucketMeta} {
		if tx.Bucket(b) == nil {
			return fmt.Errorf("not a snapshot: no %q bucket", b)
		}
	}
	if _, err := readStateFormat(tx); err != nil {
		return err
	}
	v := tx.Bucket(bucketMeta).Get(keyRevision)
	if len(v) != 8 {
		return fmt.Errorf("not a snapshot: no revision")
	}
	info.Revision = int64(binary.BigEndian.Uint64(v))
	if info.Revision <= 0 {
		return fmt.Errorf("not a snapshot: revision %d", info.Revision)
	}
	if err := tx.Bucket(bucketIndex).ForEach(func(k, v []byte) error { return nil }); err != nil {
		return err
	}
	return tx.Bucket(bucketObjects).ForEach(func(k, v []byte) error {
		key := parseObjectKey(k)
		var r storev1.Record
		if err := proto.Unmarshal(v, &r); err != nil {
			return fmt.Errorf("corrupt: decode %s: %w", key, err)
		}
		if r.GetModRevision() > info.Revision {
			return fmt.Errorf("corrupt: %s has revision %d, after the snapshot's %d", key, r.GetModRevision(), info.Revision)
		}
		info.Objects[key.Kind]++
		return nil
	})
}

// RestoreConfig says how to seed a data directory from a backup.
type RestoreConfig struct {
	// Snapshot is the backup file (skiffctl cluster snapshot save).
	Snapshot string
	// Dir is the new node's data directory; it must be absent or empty.
	Dir string
	// ID is the node the directory is for; it must be in InitialCluster.
	ID string
	// InitialCluster is the restored cluster's membership. Every member restored from the
	// same file with the same list forms one cluster; a one-member list makes a cluster
	// that others then join.
	InitialCluster []Server
	// RevisionBump is added to the snapshot's revision: the restored cluster's first
	// revision follows snapshot revision + RevisionBump, and watches from any earlier
	// revision get a CompactedError. Zero means DefaultRevisionBump; negative means none.
	RevisionBump int64
	// Logger, default discard.
	Logger hclog.Logger
}

// RestoreResult reports what RestoreDir wrote.
type RestoreResult struct {
	SnapshotInfo
	// StartRevision is the restored state's revision: Revision + the bump.
	StartRevision int64
}

// RestoreDir seeds an empty data directory from a backup so that Open starts a node of a
// new cluster holding exactly the backup's objects. It writes a Raft snapshot of the
// state at StartRevision whose configuration is InitialCluster, and sets the Raft term
// to 1; it does not bootstrap (Open then finds existing state, and never bootstraps).
// Objects keep their revisions, so resourceVersions from the backup stay valid; new
// writes take revisions after StartRevision.
func RestoreDir(cfg RestoreConfig) (*RestoreResult, error) {
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if cfg.RevisionBump == 0 {
		cfg.RevisionBump = DefaultRevisionBump
	} else if cfg.RevisionBump < 0 {
		cfg.RevisionBump = 0
	}
	if cfg.Snapshot == "" || cfg.Dir == "" || cfg.ID == "" {
		return nil, fmt.Errorf("restore: %w: snapshot, data directory and node ID are required", ErrInvalid)
	}
	scfg := Config{ID: cfg.ID, Dir: cfg.Dir, Listen: "restore", InitialCluster: cfg.InitialCluster}
	if len(cfg.InitialCluster) == 0 {
		return nil, fmt.Errorf("restore %s: %w: the initial cluster is required", cfg.ID, ErrInvalid)
	}
	if err := scfg.validateMembers(); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := checkEmptyDir(cfg.Dir); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	info, err := VerifySnapshot(cfg.Snapshot)
	if err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("restore: create data dir %s: %w", cfg.Dir, err)
	}
	res := &RestoreResult{SnapshotInfo: *info, StartRevision: info.Revision + cfg.RevisionBump}
	ok := false
	defer func() {
		if !ok { // leave the directory empty, as found, so the restore can be retried
			entries, _ := os.ReadDir(cfg.Dir)
			for _, e := range entries {
				os.RemoveAll(filepath.Join(cfg.Dir, e.Name()))
			}
		}
	}()

	// A copy of the backup, moved to the new revision.
	state := filepath.Join(cfg.Dir, "restore.db")
	stateSize := int64(-1)
	if info.Meta != nil {
		stateSize = info.Meta.StateSize // the trailer stays behind
	}
	if err := copyFile(cfg.Snapshot, state, stateSize); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}
	defer os.Remove(state)
	if err := setRevision(state, res.StartRevision); err != nil {
		return nil, fmt.Errorf("restore: %w", err)
	}

	// The Raft snapshot: the state at StartRevision, taken under the new membership.
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, cfg.Logger.Named("snapshots"))
	if err != nil {
		return nil, fmt.Errorf("restore: open snapshot store in %s: %w", cfg.Dir, err)
	}
	var conf raft.Configuration
	for _, m := range cfg.InitialCluster {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(m.ID), Address: raft.ServerAddress(m.Address)})
	}
	_, trans := raft.NewInmemTransport("") // only encodes peer addresses into the metadata
	idx := uint64(res.StartRevision)
	sink, err := snaps.Create(raft.SnapshotVersionMax, idx, 1, conf, idx, trans)
	if err != nil {
		return nil, fmt.Errorf("restore: create raft snapshot: %w", err)
	}
	f, err := os.Open(state)
	if err != nil {
		sink.Cancel()
		return nil, fmt.Errorf("restore: %w", err)
	}
	_, err = io.Copy(sink, f)
	f.Close()
	if err != nil {
		sink.Cancel()
		return nil, fmt.Errorf("restore: write raft snapshot: %w", err)
	}
	if err := sink.Close(); err != nil {
		return nil, fmt.Errorf("restore: write raft snapshot: %w", err)
	}

	// The term the snapshot was taken in, as bootstrap would set it.
	logs, err := raftboltdb.New(raftboltdb.Options{Path: filepath.Join(cfg.Dir, "raft.db")})
	if err != nil {
		return nil, fmt.Errorf("restore: create raft log %s: %w", filepath.Join(cfg.Dir, "raft.db"), err)
	}
	err = logs.SetUint64([]byte("CurrentTerm"), 1)
	if cerr := logs.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("restore: write raft term: %w", err)
	}
	ok = true
	cfg.Logger.Info("restored data directory", "dir", cfg.Dir, "snapshot", cfg.Snapshot,
		"snapshot_revision", info.Revision, "start_revision", res.StartRevision)
	return res, nil
}

// checkEmptyDir accepts a directory that does not exist or holds nothing.
func checkEmptyDir(dir string) error {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("data dir %s: %w", dir, err)
	}
	if len(entries) > 0 {
		return fmt.Errorf("data dir %s is not empty (it holds %s): restore only into a new, empty directory", dir, entries[0].Name())
	}
	return nil
}

// copyFile copies from's first n bytes (all when n < 0) to a new file.
func copyFile(from, to string, n int64) error {
	f, err := os.Open(from)
	if err != nil {
		return err
	}
	defer f.Close()
	var in io.Reader = f
	if n >= 0 {
		in = io.LimitReader(f, n)
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", from, to, err)
	}
	return out.Close()
}

// setRevision moves a state file's revision, and forgets the old cluster's identity (its
// ID, members, removed members) and alarms: the restored cluster is a new one, named by
// its first leader.
func setRevision(path string, rev int64) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		return fmt.Errorf("open %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(rev))
		if _, err := migrateState(tx); err != nil {
			return err
		}
		for _, b := range [][]byte{bucketMembers, bucketRemoved} {
			if err := tx.DeleteBucket(b); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(b); err != nil {
				return err
			}
		}
		meta := tx.Bucket(bucketMeta)
		for _, k := range [][]byte{keyCluster, keyAlarmNoSpace} {
			if err := meta.Delete(k); err != nil {
				return err
			}
		}
		return meta.Put(keyRevision, b[:])
	})
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("set revision of %s: %w", path, err)
	}
	return nil
}
