package s3backup_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/skiffhq/skiff/s3backup"
	"github.com/skiffhq/skiff/store"
	"github.com/skiffhq/skiff/test/s3test"
	"github.com/skiffhq/skiff/test/waitfor"
)

// openStore starts a one-member store with backups, and waits until it has a cluster ID.
func openStore(t *testing.T, backups store.BackupConfig) *store.Store {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := store.DefaultConfig()
	cfg.ID, cfg.Dir, cfg.Listener = "n1", t.TempDir(), ln
	cfg.InitialCluster = []store.Server{{ID: "n1", Address: ln.Addr().String()}}
	cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
	cfg.MmapSize, cfg.HistorySize = 16<<20, 1000
	cfg.Backups = backups
	s, err := store.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "a cluster ID", func() (bool, string) { return s.ClusterID() != "", "none yet" })
	for i := range 50 { // some state, so a snapshot is more than a few pages
		if _, err := s.Txn(ctx, store.Op{Type: store.Create, Key: store.Key{Kind: "ConfigMap", Namespace: "default", Name: fmt.Sprint("cm", i)},
			Value: bytes.Repeat([]byte{'v'}, 2000)}); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func remote(t *testing.T, endpoint, credentials, bucket, prefix string) *s3backup.Remote {
	t.Helper()
	r, err := s3backup.New(s3backup.Config{Endpoint: endpoint, Bucket: bucket, Prefix: prefix, CredentialsFile: credentials, Insecure: true, MaxRetries: 1})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// writeSnapshot writes a snapshot file of s as the schedule would.
func writeSnapshot(t *testing.T, s *store.Store, at time.Time) (string, store.SnapshotMeta) {
	t.Helper()
	var b bytes.Buffer
	meta, err := s.WriteSnapshot(&b, "v9.9.9-test", at)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), store.SnapshotName(meta))
	if err := os.WriteFile(path, b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, meta
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestScheduledUploads: the leader uploads every scheduled snapshot, each object
// carrying the cluster, member, revision, version and checksum in its metadata as in
// its trailer; the retention keeps the newest there and deletes nothing that is not this
// cluster's own snapshot under the prefix; the listing shows them; a download of the
// newest is checked and matches.
func TestScheduledUploads(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "backups")
	ctx := ctxT(t)
	c := srv.Client(t)
	other := map[string]string{ // not this cluster's snapshots: the retention leaves them
		"cluster1/notes.txt": "mine",
		"cluster1/skiff-snapshot-0123456789abcdef-20260101T000000Z-r5.db":  "named like one, no metadata",
		"cluster1/skiff-snapshot-00000000000000aa-20200101T000000Z-r1.db":  "another cluster's",
		"elsewhere/skiff-snapshot-00000000000000bb-20200101T000000Z-r1.db": "outside the prefix",
	}
	for k, v := range other {
		md := map[string]string{}
		if strings.Contains(k, "aa-") {
			md = map[string]string{"Skiff-Format": "1", "Skiff-Cluster": "00000000000000aa", "Skiff-Member": "x", "Skiff-Revision": "1",
				"Skiff-Version": "v0", "Skiff-Created": "2020-01-01T00:00:00Z", "Skiff-State-Size": "1", "Skiff-Sha256": "00"}
		}
		if _, err := c.PutObject(ctx, "backups", k, strings.NewReader(v), int64(len(v)), minio.PutObjectOptions{UserMetadata: md}); err != nil {
			t.Fatal(err)
		}
	}

	var minutes atomic.Int64
	base := time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC)
	r := remote(t, srv.Endpoint, srv.CredentialsFile, "backups", "/cluster1/")
	s := openStore(t, store.BackupConfig{Interval: 100 * time.Millisecond, Retention: 3, Version: "v9.9.9-test", Remote: r,
		Now: func() time.Time { return base.Add(time.Duration(minutes.Add(1)) * time.Minute) }})
	waitfor.Condition(t, 60*time.Second, "six snapshots uploaded", func() (bool, string) {
		st := s.BackupStatus()
		return st.Uploaded >= 6, fmt.Sprintf("%+v", st)
	})
	if st := s.BackupStatus(); st.UploadFailed != 0 {
		t.Errorf("uploads failed: %+v", st)
	}
	// Stop the schedule (Close waits for an upload under way), so the listing and the
	// newest snapshot below are of one bucket: an upload between them made "latest" newer.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files, err := s.RemoteBackups(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// Between 3 and 4: the schedule may have stopped between an upload and its retention.
	if len(files) < 3 || len(files) > 4 {
		t.Fatalf("this cluster's snapshots in the bucket: %d (%v), want the retention's 3", len(files), files)
	}
	for _, f := range files {
		if f.Meta.Cluster != s.ClusterID() || f.Meta.Member != "n1" || f.Meta.Version != "v9.9.9-test" || f.Meta.Revision == 0 ||
			len(f.Meta.SHA256) != 64 || !strings.HasPrefix(f.Path, "s3://backups/cluster1/skiff-snapshot-"+s.ClusterID()+"-") {
			t.Errorf("uploaded snapshot %+v", f)
		}
	}
	keys := srv.Objects(t, "backups", "")
	for k, v := range other {
		if !slices.Contains(keys, k) {
			t.Fatalf("the retention deleted %s, which is not this cluster's snapshot (bucket: %v)", k, keys)
		}
		o, err := c.GetObject(ctx, "backups", k, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		b.ReadFrom(o)
		if b.String() != v {
			t.Fatalf("%s changed: %q", k, b.String())
		}
	}

	latest, err := r.Latest(ctx, s.ClusterID())
	if err != nil || latest.Path != files[0].Path {
		t.Fatalf("latest: %v, %v; want %s", latest.Path, err, files[0].Path)
	}
	dst := filepath.Join(t.TempDir(), "got.db")
	meta, err := r.Download(ctx, filepath.Base(latest.Path), dst)
	if err != nil {
		t.Fatal(err)
	}
	if *meta != latest.Meta {
		t.Fatalf("downloaded %+v, listed %+v", *meta, latest.Meta)
	}
	if _, err := store.VerifySnapshot(dst); err != nil {
		t.Fatal(err)
	}
}

// TestUploadCutOffMidway: an upload the network cuts off mid-way fails, and leaves no
// object a restore would take: the newest snapshot is still the last whole one. An
// object that is not whole (a truncated copy, one whose name or metadata do not say
// what its content is) is refused by a download, saying why.
func TestUploadCutOffMidway(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "backups")
	ctx := ctxT(t)
	s := openStore(t, store.BackupConfig{})
	proxy := s3test.NewProxy(t, srv.Endpoint)
	r := remote(t, proxy.Addr, srv.CredentialsFile, "backups", "p")

	whole, wholeMeta := writeSnapshot(t, s, time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC))
	if _, err := r.Upload(ctx, filepath.Base(whole), whole, wholeMeta); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Txn(ctx, store.Op{Type: store.Create, Key: store.Key{Kind: "ConfigMap", Namespace: "default", Name: "later"}, Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	cut, cutMeta := writeSnapshot(t, s, time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC))
	fi, _ := os.Stat(cut)
	proxy.CutAfter(fi.Size() / 2) // headers and half the body
	if _, err := r.Upload(ctx, filepath.Base(cut), cut, cutMeta); err == nil {
		t.Fatal("an upload cut off mid-way succeeded")
	}
	proxy.CutAfter(0)
	keys := srv.Objects(t, "backups", "p/")
	if slices.Contains(keys, "p/"+filepath.Base(cut)) {
		t.Fatalf("the cut-off upload left an object: %v", keys)
	}
	latest, err := r.Latest(ctx, "")
	if err != nil || latest.Meta != wholeMeta {
		t.Fatalf("latest after a cut-off upload: %+v, %v; want the whole snapshot %+v", latest.Meta, err, wholeMeta)
	}

	// Objects that are not what they say.
	c := srv.Client(t)
	b, _ := os.ReadFile(cut)
	md := map[string]string{"Skiff-Format": "1", "Skiff-Cluster": cutMeta.Cluster, "Skiff-Member": cutMeta.Member,
		"Skiff-Revision": fmt.Sprint(cutMeta.Revision), "Skiff-Version": cutMeta.Version, "Skiff-Created": cutMeta.Created.Format(time.RFC3339),
		"Skiff-State-Size": fmt.Sprint(cutMeta.StateSize), "Skiff-Sha256": cutMeta.SHA256}
	damaged := slices.Clone(b)
	damaged[200] ^= 0xff
	wrongMD := maps(md, "Skiff-Member", "n9")
	for _, tc := range []struct {
		name    string
		content []byte
		md      map[string]string
		want    string
	}{
		{"truncated", b[:len(b)/2], md, "not a scheduled snapshot"},
		{"damaged", damaged, md, "checksum does not match"},
		{"metadata", b, wrongMD, "identity does not match: the object's metadata says cluster " + cutMeta.Cluster + ", member n9"},
	} {
		name := fmt.Sprintf("skiff-snapshot-%s-20261205T0%d0000Z-r%d.db", cutMeta.Cluster, 5+len(tc.name)%4, cutMeta.Revision)
		if tc.name == "metadata" {
			name = filepath.Base(cut)
		}
		if _, err := c.PutObject(ctx, "backups", "p/"+name, bytes.NewReader(tc.content), int64(len(tc.content)), minio.PutObjectOptions{UserMetadata: tc.md}); err != nil {
			t.Fatal(err)
		}
		_, err := r.Download(ctx, name, filepath.Join(t.TempDir(), "x.db"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("download of a %s object: %v, want an error saying %q", tc.name, err, tc.want)
		}
		c.RemoveObject(ctx, "backups", "p/"+name, minio.RemoveObjectOptions{})
	}
	// A whole snapshot under another snapshot's name.
	other := fmt.Sprintf("skiff-snapshot-%s-20261205T090000Z-r%d.db", wholeMeta.Cluster, wholeMeta.Revision)
	if _, err := c.CopyObject(ctx, minio.CopyDestOptions{Bucket: "backups", Object: "p/" + other}, minio.CopySrcOptions{Bucket: "backups", Object: "p/" + filepath.Base(whole)}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Download(ctx, other, filepath.Join(t.TempDir(), "y.db")); err == nil || !strings.Contains(err.Error(), "identity does not match: its content is snapshot "+filepath.Base(whole)) {
		t.Errorf("download of a renamed snapshot: %v", err)
	}
}

func maps(m map[string]string, k, v string) map[string]string {
	out := map[string]string{}
	for a, b := range m {
		out[a] = b
	}
	out[k] = v
	return out
}

// TestUnreachableBucketRetried: while the storage cannot be reached, every scheduled
// snapshot fails (never skipped silently): counted, told to OnFailure (the API server's
// Warning event) with the failures in a row, and retried sooner than the interval; once
// the storage is back the next upload succeeds and the count resets.
func TestUnreachableBucketRetried(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "backups")
	proxy := s3test.NewProxy(t, srv.Endpoint)
	proxy.Refuse(true)
	var mu sync.Mutex
	var told []string
	r := remote(t, proxy.Addr, srv.CredentialsFile, "backups", "")
	s := openStore(t, store.BackupConfig{Interval: 500 * time.Millisecond, RetryDelay: 50 * time.Millisecond, Remote: r,
		OnFailure: func(err error, n int) {
			mu.Lock()
			defer mu.Unlock()
			told = append(told, fmt.Sprintf("%d: %v", n, err))
		}})
	waitfor.Condition(t, 60*time.Second, "three failed uploads in a row", func() (bool, string) {
		st := s.BackupStatus()
		return st.Consecutive >= 3 && st.UploadFailed >= 3, fmt.Sprintf("%+v", st)
	})
	mu.Lock()
	for i, msg := range told[:3] {
		if !strings.HasPrefix(msg, fmt.Sprintf("%d: snapshot ", i+1)) || !strings.Contains(msg, "not uploaded: upload to s3://backups/skiff-snapshot-") {
			t.Errorf("failure %d told as %q", i+1, msg)
		}
	}
	mu.Unlock()
	if st := s.BackupStatus(); st.Uploaded != 0 || st.Failed < 3 || !strings.Contains(st.LastError, "not uploaded") {
		t.Errorf("status while the storage is unreachable: %+v", st)
	}
	proxy.Refuse(false)
	waitfor.Condition(t, 60*time.Second, "an upload once the storage is back", func() (bool, string) {
		st := s.BackupStatus()
		return st.Uploaded >= 1 && st.Consecutive == 0, fmt.Sprintf("%+v", st)
	})
	files, err := s.RemoteBackups(ctxT(t))
	if err != nil || len(files) == 0 {
		t.Fatalf("snapshots in the bucket once it is back: %v, %v", files, err)
	}
}
