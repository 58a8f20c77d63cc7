// Package s3backup keeps Skiff's scheduled snapshots in S3-compatible object storage
// (Amazon S3, SeaweedFS, Ceph RGW, MinIO, ...), with minio-go.
//
// A snapshot is one object, PREFIX/NAME, where NAME is the name the schedule gives the
// local file (skiff-snapshot-CLUSTER-TIME-rREVISION.db) and the content is that file: the
// state followed by its trailer (see store.ReadSnapshotMeta). The object's metadata
// repeats what the trailer says (x-amz-meta-skiff-cluster, -member, -revision, -version,
// -created, -state-size, -sha256, -format), so a listing tells the snapshots apart
// without reading them, and a download is checked against both.
//
// An upload is a single PUT (a multipart upload above PartSize) with Content-MD5, so
// the server refuses a body that arrived damaged; afterwards the object's ETag (the MD5
// the server computed) and size are compared with the file's. S3 makes an object visible
// only once its upload completes, so an upload cut off mid-way leaves no object; and a
// restore takes an object only if its trailer and checksum match it anyway.
package s3backup

import (
	"context"
	"crypto/md5"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/skiffhq/skiff/store"
)

// PartSize is the size of each part of a multipart upload; a snapshot no larger is
// uploaded in a single PUT.
const PartSize = 64 << 20

// Config says where snapshots go and how to reach the storage.
type Config struct {
	// Endpoint is the storage's address: host:port, or a URL http(s)://host:port.
	// Without a scheme it is https unless Insecure.
	Endpoint string
	// Bucket holds the snapshots (it must exist); Prefix is the "folder" in it, "" for
	// the bucket's top.
	Bucket, Prefix string
	// CredentialsFile holds the access key in the AWS shared credentials format
	// ([default] aws_access_key_id = ..., aws_secret_access_key = ...); its profile is
	// AWS_PROFILE's, else default. Empty: anonymous.
	CredentialsFile string
	// CAFile, when set, is the PEM CA bundle that verifies an https endpoint's
	// certificate (default: the system's).
	CAFile string
	// Insecure talks plain http to an endpoint given without a scheme.
	Insecure bool
	// Region, when the storage needs one (default: asked of the storage).
	Region string
	// MaxRetries bounds the retries of each request within one operation (default 3):
	// the schedule retries a failed upload later, with back-off.
	MaxRetries int
}

// Remote is one bucket and prefix of snapshots. It implements store.RemoteBackups.
type Remote struct {
	cfg    Config
	client *minio.Client
}

// New checks cfg and makes a client; it does not reach the storage.
func New(cfg Config) (*Remote, error) {
	if cfg.Endpoint == "" {
		return nil, fmt.Errorf("s3: the endpoint is required")
	}
	if cfg.Bucket == "" {
		return nil, fmt.Errorf("s3: the bucket is required")
	}
	cfg.Prefix = strings.Trim(cfg.Prefix, "/")
	host, secure := cfg.Endpoint, !cfg.Insecure
	if u, err := url.Parse(cfg.Endpoint); err == nil && (u.Scheme == "http" || u.Scheme == "https") {
		if u.Path != "" && u.Path != "/" {
			return nil, fmt.Errorf("s3: endpoint %q: give the bucket and prefix on their own, not in the endpoint's path", cfg.Endpoint)
		}
		host, secure = u.Host, u.Scheme == "https"
	}
	tr, err := minio.DefaultTransport(secure)
	if err != nil {
		return nil, fmt.Errorf("s3: %w", err)
	}
	if cfg.CAFile != "" {
		pem, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return nil, fmt.Errorf("s3: CA file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("s3: CA file %s holds no PEM certificate", cfg.CAFile)
		}
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	creds := credentials.NewStatic("", "", "", credentials.SignatureAnonymous)
	if cfg.CredentialsFile != "" {
		if _, err := os.Stat(cfg.CredentialsFile); err != nil {
			return nil, fmt.Errorf("s3: credentials file: %w", err)
		}
		creds = credentials.NewFileAWSCredentials(cfg.CredentialsFile, "")
		if _, err := creds.Get(); err != nil {
			return nil, fmt.Errorf("s3: credentials file %s: %w", cfg.CredentialsFile, err)
		}
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 3
	}
	c, err := minio.New(host, &minio.Options{Creds: creds, Secure: secure, Transport: tr, Region: cfg.Region,
		MaxRetries: cfg.MaxRetries, BucketLookup: minio.BucketLookupPath})
	if err != nil {
		return nil, fmt.Errorf("s3: endpoint %q: %w", cfg.Endpoint, err)
	}
	return &Remote{cfg: cfg, client: c}, nil
}

// String is the snapshots' location, s3://BUCKET/PREFIX/.
func (r *Remote) String() string {
	if r.cfg.Prefix == "" {
		return "s3://" + r.cfg.Bucket + "/"
	}
	return "s3://" + r.cfg.Bucket + "/" + r.cfg.Prefix + "/"
}

// key is the object name of snapshot name.
func (r *Remote) key(name string) string {
	if r.cfg.Prefix == "" {
		return name
	}
	return r.cfg.Prefix + "/" + name
}

// URL is the location of snapshot name.
func (r *Remote) URL(name string) string { return r.String() + name }

// ParseURL splits s3://BUCKET/PREFIX/NAME into bucket and the rest ("" and a trailing
// "/" allowed): the caller decides whether the rest names an object or a prefix.
func ParseURL(s string) (bucket, rest string, err error) {
	after, ok := strings.CutPrefix(s, "s3://")
	if !ok {
		return "", "", fmt.Errorf("%q is not an s3:// URL", s)
	}
	bucket, rest, _ = strings.Cut(after, "/")
	if bucket == "" {
		return "", "", fmt.Errorf("%q names no bucket (s3://BUCKET/PREFIX/NAME)", s)
	}
	return bucket, rest, nil
}

// metadata is what an object says of the snapshot it holds.
func metadata(m store.SnapshotMeta) map[string]string {
	return map[string]string{
		"Skiff-Format":     strconv.Itoa(m.Format),
		"Skiff-Cluster":    m.Cluster,
		"Skiff-Member":     m.Member,
		"Skiff-Revision":   strconv.FormatInt(m.Revision, 10),
		"Skiff-Version":    m.Version,
		"Skiff-Created":    m.Created.UTC().Format(time.RFC3339),
		"Skiff-State-Size": strconv.FormatInt(m.StateSize, 10),
		"Skiff-Sha256":     m.SHA256,
	}
}

// sameMeta says whether a and b describe the same snapshot.
func sameMeta(a, b store.SnapshotMeta) bool {
	ac, bc := a.Created, b.Created
	a.Created, b.Created = time.Time{}, time.Time{}
	return a == b && ac.Equal(bc)
}

// parseMetadata reads metadata back; an object without it is not a Skiff snapshot.
func parseMetadata(md map[string]string) (store.SnapshotMeta, error) {
	get := func(k string) string {
		for key, v := range md {
			if strings.EqualFold(key, k) || strings.EqualFold(key, "X-Amz-Meta-"+k) {
				return v
			}
		}
		return ""
	}
	var m store.SnapshotMeta
	var errs []error
	num := func(k string) int64 {
		n, err := strconv.ParseInt(get(k), 10, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("metadata %s: %q", k, get(k)))
		}
		return n
	}
	m.Format = int(num("Skiff-Format"))
	m.Cluster, m.Member, m.Version, m.SHA256 = get("Skiff-Cluster"), get("Skiff-Member"), get("Skiff-Version"), get("Skiff-Sha256")
	m.Revision, m.StateSize = num("Skiff-Revision"), num("Skiff-State-Size")
	created, err := time.Parse(time.RFC3339, get("Skiff-Created"))
	if err != nil {
		errs = append(errs, fmt.Errorf("metadata Skiff-Created: %q", get("Skiff-Created")))
	}
	m.Created = created.UTC()
	if m.Cluster == "" || m.SHA256 == "" {
		errs = append(errs, fmt.Errorf("metadata names no cluster or checksum"))
	}
	return m, errors.Join(errs...)
}

// Upload uploads the snapshot file at file as snapshot name, its trailer saying meta,
// and checks what the storage holds afterwards: the ETag the server computed must be
// the file's MD5 (for a multipart upload, the MD5 of the parts' MD5s), the size and
// the metadata the file's.
func (r *Remote) Upload(ctx context.Context, name, file string, meta store.SnapshotMeta) (store.BackupFile, error) {
	f, err := os.Open(file)
	if err != nil {
		return store.BackupFile{}, fmt.Errorf("upload to %s: %w", r.URL(name), err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return store.BackupFile{}, fmt.Errorf("upload to %s: %w", r.URL(name), err)
	}
	etag, err := multipartETag(f, fi.Size(), PartSize)
	if err != nil {
		return store.BackupFile{}, fmt.Errorf("upload to %s: read %s: %w", r.URL(name), file, err)
	}
	_, err = r.client.PutObject(ctx, r.cfg.Bucket, r.key(name), io.NewSectionReader(f, 0, fi.Size()), fi.Size(), minio.PutObjectOptions{
		UserMetadata: metadata(meta), ContentType: "application/octet-stream", SendContentMd5: true, PartSize: PartSize,
	})
	if err != nil {
		return store.BackupFile{}, fmt.Errorf("upload to %s: %w", r.URL(name), err)
	}
	info, err := r.client.StatObject(ctx, r.cfg.Bucket, r.key(name), minio.StatObjectOptions{})
	if err != nil {
		return store.BackupFile{}, fmt.Errorf("upload to %s: check the object: %w", r.URL(name), err)
	}
	if got := strings.Trim(info.ETag, `"`); got != etag || info.Size != fi.Size() {
		return store.BackupFile{}, fmt.Errorf("upload to %s: the storage holds %d bytes with ETag %s, the file has %d bytes with MD5 %s: the upload is damaged",
			r.URL(name), info.Size, got, fi.Size(), etag)
	}
	if got, err := parseMetadata(info.UserMetadata); err != nil || !sameMeta(got, meta) {
		return store.BackupFile{}, fmt.Errorf("upload to %s: the object's metadata %+v does not match the snapshot's %+v (%v)", r.URL(name), got, meta, err)
	}
	return store.BackupFile{Path: r.URL(name), Member: meta.Member, Size: info.Size, Meta: meta}, nil
}

// multipartETag is the ETag S3 gives an object of size bytes uploaded in parts of
// partSize: the MD5 of its content (hex) when it fits one part, else the MD5 of the
// parts' MD5s, "-", and the number of parts.
func multipartETag(r io.ReaderAt, size, partSize int64) (string, error) {
	if size <= partSize {
		h := md5.New()
		if _, err := io.Copy(h, io.NewSectionReader(r, 0, size)); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	all := md5.New()
	n := 0
	for off := int64(0); off < size; off += partSize {
		h := md5.New()
		if _, err := io.Copy(h, io.NewSectionReader(r, off, min(partSize, size-off))); err != nil {
			return "", err
		}
		all.Write(h.Sum(nil))
		n++
	}
	return hex.EncodeToString(all.Sum(nil)) + "-" + strconv.Itoa(n), nil
}

// List lists the snapshots under the prefix (not below it), newest first: objects
// named as the schedule names them whose metadata says what they are. Anything else
// is not Skiff's and is left out.
func (r *Remote) List(ctx context.Context) ([]store.BackupFile, error) {
	prefix := ""
	if r.cfg.Prefix != "" {
		prefix = r.cfg.Prefix + "/"
	}
	var out []store.BackupFile
	for o := range r.client.ListObjects(ctx, r.cfg.Bucket, minio.ListObjectsOptions{Prefix: prefix}) {
		if o.Err != nil {
			return nil, fmt.Errorf("list %s: %w", r, o.Err)
		}
		name := strings.TrimPrefix(o.Key, prefix)
		if !store.IsSnapshotName(name) {
			continue
		}
		info, err := r.client.StatObject(ctx, r.cfg.Bucket, o.Key, minio.StatObjectOptions{})
		if err != nil {
			if minio.ToErrorResponse(err).Code == minio.NoSuchKey {
				continue // deleted meanwhile
			}
			return nil, fmt.Errorf("list %s: %s: %w", r, name, err)
		}
		meta, err := parseMetadata(info.UserMetadata)
		if err != nil {
			continue
		}
		out = append(out, store.BackupFile{Path: r.URL(name), Member: meta.Member, Size: info.Size, Meta: meta})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].Meta.Created.Equal(out[j].Meta.Created) {
			return out[i].Meta.Created.After(out[j].Meta.Created)
		}
		return out[i].Meta.Revision > out[j].Meta.Revision
	})
	return out, nil
}

// Delete deletes snapshot name.
func (r *Remote) Delete(ctx context.Context, name string) error {
	if err := r.client.RemoveObject(ctx, r.cfg.Bucket, r.key(name), minio.RemoveObjectOptions{}); err != nil {
		return fmt.Errorf("delete %s: %w", r.URL(name), err)
	}
	return nil
}

// Download writes snapshot name into the new file dst and checks it against its
// object: it must be a scheduled snapshot whose trailer checks out (checksum, length,
// format) and says what the object's name and metadata say (cluster, revision, member,
// checksum). On any error dst is removed.
func (r *Remote) Download(ctx context.Context, name, dst string) (meta *store.SnapshotMeta, err error) {
	u := r.URL(name)
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", u, err)
	}
	defer func() {
		if err != nil {
			os.Remove(dst)
		}
	}()
	obj, err := r.client.GetObject(ctx, r.cfg.Bucket, r.key(name), minio.GetObjectOptions{})
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("download %s: %w", u, err)
	}
	defer obj.Close()
	info, err := obj.Stat()
	if err != nil {
		out.Close()
		return nil, fmt.Errorf("download %s: %w", u, err)
	}
	_, err = io.Copy(out, obj)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("download %s: %w", u, err)
	}
	meta, err = store.ReadSnapshotMeta(dst)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	if meta == nil {
		return nil, fmt.Errorf("%s: format does not match: not a scheduled snapshot (it has no trailer)", u)
	}
	om, err := parseMetadata(info.UserMetadata)
	if err != nil {
		return nil, fmt.Errorf("%s: identity does not match: the object's metadata is not a Skiff snapshot's: %v", u, err)
	}
	if !sameMeta(om, *meta) {
		return nil, fmt.Errorf("%s: identity does not match: the object's metadata says cluster %s, member %s, revision %d, sha256 %s; its content, cluster %s, member %s, revision %d, sha256 %s",
			u, om.Cluster, om.Member, om.Revision, om.SHA256, meta.Cluster, meta.Member, meta.Revision, meta.SHA256)
	}
	if want := store.SnapshotName(*meta); path.Base(name) != want {
		return nil, fmt.Errorf("%s: identity does not match: its content is snapshot %s (cluster %s, revision %d)", u, want, meta.Cluster, meta.Revision)
	}
	return meta, nil
}

// Latest is the newest snapshot under the prefix, of cluster when not "".
func (r *Remote) Latest(ctx context.Context, cluster string) (store.BackupFile, error) {
	files, err := r.List(ctx)
	if err != nil {
		return store.BackupFile{}, err
	}
	for _, f := range files {
		if cluster == "" || f.Meta.Cluster == cluster {
			return f, nil
		}
	}
	if cluster != "" {
		return store.BackupFile{}, fmt.Errorf("no snapshot of cluster %s in %s", cluster, r)
	}
	return store.BackupFile{}, fmt.Errorf("no snapshot in %s", r)
}

// Check asks the storage whether the bucket exists, for a clear error at start.
func (r *Remote) Check(ctx context.Context) error {
	ok, err := r.client.BucketExists(ctx, r.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("s3 bucket %s at %s: %w", r.cfg.Bucket, r.cfg.Endpoint, err)
	}
	if !ok {
		return fmt.Errorf("s3 bucket %s at %s does not exist", r.cfg.Bucket, r.cfg.Endpoint)
	}
	return nil
}
