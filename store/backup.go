package store

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"sync"
	"time"

	storev1 "github.com/skiffhq/skiff/proto/store/v1"
)

// Scheduled snapshots.
//
// The leader writes a snapshot of the state into its backup directory every
// BackupConfig.Interval and keeps the newest Retention of them there. A snapshot file is
// the state file (as Backup streams it, so bbolt and skiff restore read it as they read
// any backup) followed by a trailer that says what it is:
//
//	state file | metadata (JSON) | uint32 length of the metadata | "SKIFFSN1"
//
// The metadata names the cluster, the member that wrote it, the revision, the Skiff
// version, the time, the state's length and its SHA-256. VerifySnapshot (and so skiff
// restore) checks a file that has a trailer against it and refuses one whose checksum,
// length or format does not match. Retention deletes only files named as this member
// names them that carry this cluster's trailer: nothing else in the directory is touched.

// snapshotMagic ends every snapshot file's trailer; snapshotFormat is the trailer's
// version.
const (
	snapshotMagic  = "SKIFFSN1"
	snapshotFormat = 1
)

// snapshotName matches the names the schedule gives its files.
var snapshotName = regexp.MustCompile(`^skiff-snapshot-[0-9a-f]+-[0-9]{8}T[0-9]{6}Z-r[0-9]+\.db$`)

// IsSnapshotName says whether name is a name the schedule gives its snapshots.
func IsSnapshotName(name string) bool { return snapshotName.MatchString(name) }

// SnapshotName is the name the schedule gives the snapshot meta describes.
func SnapshotName(meta SnapshotMeta) string {
	return fmt.Sprintf("skiff-snapshot-%s-%s-r%d.db", meta.Cluster, meta.Created.UTC().Format("20060102T150405Z"), meta.Revision)
}

// RemoteBackups is object storage that keeps a copy of every scheduled snapshot
// (s3backup implements it for S3).
type RemoteBackups interface {
	// Upload stores the snapshot file at path as name, its trailer saying meta, and
	// checks what the storage then holds; it returns the stored copy.
	Upload(ctx context.Context, name, path string, meta SnapshotMeta) (BackupFile, error)
	// List lists the snapshots the storage holds, newest first, with what their
	// metadata says (objects that are not Skiff's snapshots are left out).
	List(ctx context.Context) ([]BackupFile, error)
	// Delete deletes snapshot name.
	Delete(ctx context.Context, name string) error
	// String names the storage's location (s3://bucket/prefix/).
	String() string
}

// SnapshotMeta is what a scheduled snapshot file says of itself.
type SnapshotMeta struct {
	Format   int       `json:"format"`
	Cluster  string    `json:"cluster"`
	Member   string    `json:"member"`
	Revision int64     `json:"revision"`
	Version  string    `json:"version"`
	Created  time.Time `json:"created"`
	// StateSize is the length of the state file that starts the snapshot file, SHA256
	// its checksum (hex).
	StateSize int64  `json:"stateSize"`
	SHA256    string `json:"sha256"`
}

// BackupConfig schedules snapshots. The zero value schedules none.
type BackupConfig struct {
	// Dir is where the leader writes them (created 0700).
	Dir string
	// Interval between snapshots; 0: none.
	Interval time.Duration
	// Retention is how many of this cluster's snapshots Dir keeps (the newest). Default 5.
	Retention int
	// Version is the Skiff version recorded in each.
	Version string
	// Remote, when set, receives a copy of every snapshot, and keeps the newest
	// Retention of this cluster's: a snapshot whose upload fails counts as failed.
	Remote RemoteBackups
	// UploadTimeout bounds one upload and its retention. Default 10 min.
	UploadTimeout time.Duration
	// RetryDelay is how soon the leader tries again after a failed snapshot, doubled after
	// each further failure in a row, up to Interval. Default 30 s (Interval if shorter).
	RetryDelay time.Duration
	// OnFailure, when set, is told of every failed scheduled snapshot and how many have
	// failed in a row (the API server records a Warning event of it).
	OnFailure func(err error, consecutive int)
	// Now tells the time (tests). Default time.Now.
	Now func() time.Time
}

// BackupStatus is how this member's scheduled snapshots have gone since it started: a
// failure is never silent (logged, counted here, exported as metrics, told to
// BackupConfig.OnFailure) and retried sooner than the next interval.
type BackupStatus struct {
	Succeeded, Failed uint64
	// Consecutive is how many have failed in a row (0 after a success).
	Consecutive int
	LastSuccess time.Time
	LastFailure time.Time
	// LastError is the last failure's, "" after a success.
	LastError string
	// Uploaded and UploadFailed count the copies sent to BackupConfig.Remote.
	Uploaded, UploadFailed uint64
}

// BackupStatus says how this member's scheduled snapshots have gone.
func (s *Store) BackupStatus() BackupStatus {
	s.backupStatusMu.Lock()
	defer s.backupStatusMu.Unlock()
	return s.backupStatus
}

// noteBackup records a scheduled snapshot's outcome and returns the failures in a row.
func (s *Store) noteBackup(err error, now time.Time) int {
	s.backupStatusMu.Lock()
	defer s.backupStatusMu.Unlock()
	st := &s.backupStatus
	if err == nil {
		st.Succeeded++
		st.Consecutive, st.LastSuccess, st.LastError = 0, now, ""
		return 0
	}
	st.Failed++
	st.Consecutive++
	st.LastFailure, st.LastError = now, err.Error()
	return st.Consecutive
}

// nextBackup is how long to wait for the next scheduled snapshot after consecutive
// failures in a row: the interval after a success, else retry doubled per failure past
// the first, never more than the interval.
func nextBackup(interval, retry time.Duration, consecutive int) time.Duration {
	if consecutive == 0 || retry >= interval {
		return interval
	}
	d := retry
	for i := 1; i < consecutive && d < interval; i++ {
		d *= 2
	}
	return min(d, interval)
}

// BackupFile is one snapshot file in a member's backup directory.
type BackupFile struct {
	Path string
	// Member is the member whose directory holds it; Meta.Member wrote it.
	Member string
	Size   int64
	Meta   SnapshotMeta
}

// WriteSnapshot writes a snapshot file of this member's state to w: the state, then the
// trailer.
func (s *Store) WriteSnapshot(w io.Writer, version string, now time.Time) (SnapshotMeta, error) {
	h := sha256.New()
	n := &countingWriter{}
	rev, err := s.fsm.writeTo(io.MultiWriter(w, h, n))
	if err != nil {
		return SnapshotMeta{}, fmt.Errorf("snapshot: %w", err)
	}
	meta := SnapshotMeta{Format: snapshotFormat, Cluster: s.ClusterID(), Member: s.cfg.ID, Revision: rev, Version: version,
		Created: now.UTC().Truncate(time.Second), StateSize: n.n, SHA256: hex.EncodeToString(h.Sum(nil))}
	b, _ := json.Marshal(meta)
	b = binary.BigEndian.AppendUint32(b, uint32(len(b)))
	if _, err := w.Write(append(b, snapshotMagic...)); err != nil {
		return SnapshotMeta{}, fmt.Errorf("snapshot: write trailer: %w", err)
	}
	return meta, nil
}

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// ReadSnapshotMeta reads and checks a snapshot file's trailer: nil (and no error) for a
// file without one (a backup from skiffctl cluster snapshot save); an error when the
// trailer is damaged, of an unknown format, or its length or checksum does not match
// the file.
func ReadSnapshotMeta(path string) (*SnapshotMeta, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	size := fi.Size()
	tail := int64(4 + len(snapshotMagic))
	if size < tail {
		return nil, nil
	}
	end := make([]byte, tail)
	if _, err := f.ReadAt(end, size-tail); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	if !bytes.Equal(end[4:], []byte(snapshotMagic)) {
		return nil, nil
	}
	metaLen := int64(binary.BigEndian.Uint32(end[:4]))
	if metaLen > 64<<10 || metaLen > size-tail {
		return nil, fmt.Errorf("snapshot %s: format does not match: a trailer of %d bytes", path, metaLen)
	}
	b := make([]byte, metaLen)
	if _, err := f.ReadAt(b, size-tail-metaLen); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	var meta SnapshotMeta
	if err := json.Unmarshal(b, &meta); err != nil {
		return nil, fmt.Errorf("snapshot %s: format does not match: trailer: %v", path, err)
	}
	if meta.Format != snapshotFormat {
		return nil, fmt.Errorf("snapshot %s: format %d does not match: this Skiff reads format %d (use the Skiff version that wrote it, %s)", path, meta.Format, snapshotFormat, meta.Version)
	}
	if want := meta.StateSize + metaLen + tail; want != size {
		return nil, fmt.Errorf("snapshot %s: format does not match: the trailer says %d bytes of state, so a file of %d bytes, but it has %d (truncated or appended to)", path, meta.StateSize, want, size)
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.NewSectionReader(f, 0, meta.StateSize)); err != nil {
		return nil, fmt.Errorf("snapshot %s: %w", path, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != meta.SHA256 {
		return nil, fmt.Errorf("snapshot %s: checksum does not match: the file says sha256 %s, its content has %s (the file is damaged)", path, meta.SHA256, got)
	}
	return &meta, nil
}

// runBackups writes a snapshot every Interval while this member leads, and applies the
// retention after each.
func (s *Store) runBackups() {
	defer s.wg.Done()
	cfg := s.cfg.Backups
	t := time.NewTimer(cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-s.ctx.Done():
			return
		case <-t.C:
		}
		if !s.IsLeader() {
			t.Reset(cfg.Interval)
			continue
		}
		if s.ClusterID() == "" {
			// A leader just elected in a new cluster records the cluster's ID with its
			// first commands: a snapshot is due once it has, and that wait is no failure.
			t.Reset(min(cfg.Interval, time.Second))
			continue
		}
		_, err := s.backupNow()
		n := s.noteBackup(err, cfg.Now())
		next := nextBackup(cfg.Interval, cfg.RetryDelay, n)
		if err != nil {
			s.log.Error("scheduled snapshot failed", "dir", cfg.Dir, "error", err, "failures_in_a_row", n, "retry_in", next)
			if cfg.OnFailure != nil {
				cfg.OnFailure(err, n)
			}
		}
		t.Reset(next)
	}
}

// backupNow writes one scheduled snapshot and applies the retention.
func (s *Store) backupNow() (BackupFile, error) {
	s.backupMu.Lock()
	defer s.backupMu.Unlock()
	cfg := s.cfg.Backups
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return BackupFile{}, fmt.Errorf("create backup dir %s: %w", cfg.Dir, err)
	}
	now := cfg.Now()
	tmp, err := os.CreateTemp(cfg.Dir, ".skiff-snapshot-*.part")
	if err != nil {
		return BackupFile{}, fmt.Errorf("snapshot in %s: %w", cfg.Dir, err)
	}
	defer os.Remove(tmp.Name())
	meta, err := s.WriteSnapshot(tmp, cfg.Version, now)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return BackupFile{}, fmt.Errorf("snapshot %s: %w", tmp.Name(), err)
	}
	if meta.Cluster == "" {
		return BackupFile{}, fmt.Errorf("snapshot: the cluster has no ID yet")
	}
	path := filepath.Join(cfg.Dir, SnapshotName(meta))
	if err := os.Rename(tmp.Name(), path); err != nil {
		return BackupFile{}, fmt.Errorf("snapshot: %w", err)
	}
	if d, err := os.Open(cfg.Dir); err == nil { // the rename survives a crash
		d.Sync()
		d.Close()
	}
	fi, _ := os.Stat(path)
	s.log.Info("scheduled snapshot written", "path", path, "revision", meta.Revision, "bytes", fi.Size())
	if err := s.pruneBackups(); err != nil {
		s.log.Warn("snapshot retention", "dir", cfg.Dir, "error", err)
	}
	local := BackupFile{Path: path, Member: s.cfg.ID, Size: fi.Size(), Meta: meta}
	if cfg.Remote != nil {
		if err := s.uploadBackup(local); err != nil {
			return local, err
		}
	}
	return local, nil
}

// uploadBackup copies a snapshot just written to the remote storage, then applies the
// retention there.
func (s *Store) uploadBackup(f BackupFile) error {
	cfg := s.cfg.Backups
	ctx, cancel := context.WithTimeout(s.ctx, cfg.UploadTimeout)
	defer cancel()
	up, err := cfg.Remote.Upload(ctx, filepath.Base(f.Path), f.Path, f.Meta)
	s.backupStatusMu.Lock()
	if err != nil {
		s.backupStatus.UploadFailed++
	} else {
		s.backupStatus.Uploaded++
	}
	s.backupStatusMu.Unlock()
	if err != nil {
		return fmt.Errorf("snapshot %s written, but not uploaded: %w", f.Path, err)
	}
	s.log.Info("scheduled snapshot uploaded", "url", up.Path, "revision", f.Meta.Revision, "bytes", up.Size)
	if err := s.pruneRemoteBackups(ctx); err != nil {
		s.log.Warn("snapshot retention", "remote", cfg.Remote.String(), "error", err)
	}
	return nil
}

// pruneRemoteBackups deletes this cluster's snapshots in the remote storage past the
// newest Retention: only objects named as the schedule names them whose metadata names
// this cluster. Anything else there (other clusters', other files) is left alone.
func (s *Store) pruneRemoteBackups(ctx context.Context) error {
	files, err := s.RemoteBackups(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files[min(len(files), s.cfg.Backups.Retention):] {
		if err := s.cfg.Backups.Remote.Delete(ctx, filepath.Base(f.Path)); err != nil {
			errs = append(errs, err)
			continue
		}
		s.log.Info("snapshot deleted by retention", "url", f.Path, "retention", s.cfg.Backups.Retention)
	}
	return errors.Join(errs...)
}

// RemoteBackupsAt names the remote storage of the snapshots, "" when there is none.
func (s *Store) RemoteBackupsAt() string {
	if s.cfg.Backups.Remote == nil {
		return ""
	}
	return s.cfg.Backups.Remote.String()
}

// RemoteBackups lists this cluster's snapshots in the remote storage, newest first
// (none when there is no remote storage).
func (s *Store) RemoteBackups(ctx context.Context) ([]BackupFile, error) {
	r := s.cfg.Backups.Remote
	if r == nil {
		return nil, nil
	}
	all, err := r.List(ctx)
	if err != nil {
		return nil, err
	}
	cluster := s.ClusterID()
	var out []BackupFile
	for _, f := range all {
		if f.Meta.Cluster == cluster && cluster != "" && IsSnapshotName(filepath.Base(f.Path)) {
			out = append(out, f)
		}
	}
	return out, nil
}

// localBackups lists this cluster's snapshots in this member's backup directory, newest
// first: files named as the schedule names them whose trailer checks out and names this
// cluster. A file that does not is not Skiff's (or not this cluster's) and is left alone.
func (s *Store) localBackups() ([]BackupFile, error) {
	dir := s.cfg.Backups.Dir
	if dir == "" {
		return nil, nil
	}
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list backups in %s: %w", dir, err)
	}
	cluster := s.ClusterID()
	var out []BackupFile
	for _, e := range entries {
		if !e.Type().IsRegular() || !snapshotName.MatchString(e.Name()) {
			continue
		}
		path := filepath.Join(dir, e.Name())
		meta, err := ReadSnapshotMeta(path)
		if err != nil || meta == nil || meta.Cluster != cluster {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			continue
		}
		out = append(out, BackupFile{Path: path, Member: s.cfg.ID, Size: fi.Size(), Meta: *meta})
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Meta.Created.Equal(out[j].Meta.Created) {
			return out[i].Meta.Created.After(out[j].Meta.Created)
		}
		return out[i].Meta.Revision > out[j].Meta.Revision
	})
	return out, nil
}

// pruneBackups deletes this cluster's snapshots past the newest Retention.
func (s *Store) pruneBackups() error {
	files, err := s.localBackups()
	if err != nil {
		return err
	}
	var errs []error
	for _, f := range files[min(len(files), s.cfg.Backups.Retention):] {
		if err := os.Remove(f.Path); err != nil {
			errs = append(errs, err)
			continue
		}
		s.log.Info("snapshot deleted by retention", "path", f.Path, "retention", s.cfg.Backups.Retention)
	}
	return errors.Join(errs...)
}

// ListBackups lists the scheduled snapshots in every member's backup directory, asking
// the others over the peer link; a member that cannot be asked is in errs by name.
func (s *Store) ListBackups(ctx context.Context) (files []BackupFile, errs map[string]error) {
	st, err := s.Status()
	if err != nil {
		return nil, map[string]error{s.cfg.ID: err}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs = map[string]error{}
	for _, m := range st.Members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs, err := s.memberBackups(ctx, m.ID, m.Address)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs[m.ID] = err
				return
			}
			files = append(files, fs...)
		}()
	}
	wg.Wait()
	sort.SliceStable(files, func(i, j int) bool { return files[i].Meta.Created.After(files[j].Meta.Created) })
	return files, errs
}

func (s *Store) memberBackups(ctx context.Context, id, addr string) ([]BackupFile, error) {
	if id == s.cfg.ID {
		return s.localBackups()
	}
	cc, err := s.peers.get(addr)
	if err != nil {
		return nil, err
	}
	resp, err := storev1.NewPeerClient(cc).ListBackups(ctx, &storev1.ListBackupsRequest{})
	if err != nil {
		return nil, err
	}
	if err := errorFromProto(resp.GetError()); err != nil {
		return nil, err
	}
	var out []BackupFile
	for _, f := range resp.GetFiles() {
		out = append(out, BackupFile{Path: f.GetPath(), Member: id, Size: f.GetSize(), Meta: SnapshotMeta{
			Format: snapshotFormat, Cluster: f.GetCluster(), Member: f.GetMember(), Revision: f.GetRevision(),
			Version: f.GetVersion(), Created: time.Unix(f.GetCreatedUnix(), 0).UTC(), SHA256: f.GetSha256(),
		}})
	}
	return out, nil
}

func (p *peerService) ListBackups(context.Context, *storev1.ListBackupsRequest) (*storev1.ListBackupsResponse, error) {
	files, err := p.s.localBackups()
	resp := &storev1.ListBackupsResponse{Error: errorToProto(err)}
	for _, f := range files {
		resp.Files = append(resp.Files, &storev1.BackupFile{Path: f.Path, Cluster: f.Meta.Cluster, Member: f.Meta.Member,
			Revision: f.Meta.Revision, Version: f.Meta.Version, CreatedUnix: f.Meta.Created.Unix(), Size: f.Size, Sha256: f.Meta.SHA256})
	}
	return resp, nil
}
