package s3backup

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/store"
)

func TestMultipartETag(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 25) // 250 bytes
	sum := func(b []byte) []byte { h := md5.Sum(b); return h[:] }
	whole := hex.EncodeToString(sum(data))
	parts := hex.EncodeToString(sum(append(append(sum(data[:100]), sum(data[100:200])...), sum(data[200:])...))) + "-3"
	for _, tc := range []struct {
		part int64
		want string
	}{
		{250, whole}, {1000, whole}, {100, parts},
	} {
		got, err := multipartETag(bytes.NewReader(data), int64(len(data)), tc.part)
		if err != nil || got != tc.want {
			t.Errorf("parts of %d: %s, %v; want %s", tc.part, got, err, tc.want)
		}
	}
}

func TestMetadataRoundTrip(t *testing.T) {
	m := store.SnapshotMeta{Format: 1, Cluster: "9a3e", Member: "n1", Revision: 42, Version: "v0.1.0",
		Created: time.Date(2026, 12, 5, 3, 0, 0, 0, time.UTC), StateSize: 4096, SHA256: strings.Repeat("ab", 32)}
	md := map[string]string{}
	for k, v := range metadata(m) { // as a HEAD response gives them back
		md["X-Amz-Meta-"+k] = v
	}
	got, err := parseMetadata(md)
	if err != nil || got != m {
		t.Fatalf("round trip: %+v, %v; want %+v", got, err, m)
	}
	delete(md, "X-Amz-Meta-Skiff-Cluster")
	if _, err := parseMetadata(md); err == nil {
		t.Fatal("metadata without a cluster accepted")
	}
	if _, err := parseMetadata(map[string]string{"Content-Type": "text/plain"}); err == nil {
		t.Fatal("an object without Skiff's metadata accepted")
	}
}

func TestParseURLAndConfig(t *testing.T) {
	for _, tc := range []struct{ in, bucket, rest, err string }{
		{"s3://b/p/q/", "b", "p/q/", ""},
		{"s3://b", "b", "", ""},
		{"s3://b/skiff-snapshot-1-20261205T000000Z-r1.db", "b", "skiff-snapshot-1-20261205T000000Z-r1.db", ""},
		{"https://b/p", "", "", "not an s3:// URL"},
		{"s3:///p", "", "", "names no bucket"},
	} {
		b, r, err := ParseURL(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || b != tc.bucket || r != tc.rest {
			t.Errorf("%s: %q %q %v", tc.in, b, r, err)
		}
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Bucket: "b"}, "the endpoint is required"},
		{Config{Endpoint: "h:1"}, "the bucket is required"},
		{Config{Endpoint: "http://h:1/b", Bucket: "b"}, "not in the endpoint's path"},
		{Config{Endpoint: "h:1", Bucket: "b", CredentialsFile: "/nonexistent"}, "credentials file"},
		{Config{Endpoint: "h:1", Bucket: "b", CAFile: "/nonexistent"}, "CA file"},
	} {
		if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%+v): %v, want %q", tc.cfg, err, tc.want)
		}
	}
	r, err := New(Config{Endpoint: "http://h:1", Bucket: "b", Prefix: "/a/b/"})
	if err != nil || r.String() != "s3://b/a/b/" || r.URL("x") != "s3://b/a/b/x" {
		t.Fatalf("%v %v", r, err)
	}
}
