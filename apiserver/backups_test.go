package apiserver_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/s3backup"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/s3test"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestSnapshotFailureVisible: a scheduled snapshot that fails is a Warning event
// (SnapshotFailed, in kube-system, naming the member and the error) and shows in the
// metrics; once the snapshots succeed again the metrics say so.
func TestSnapshotFailureVisible(t *testing.T) {
	blocker := filepath.Join(t.TempDir(), "not-a-dir")
	if err := os.WriteFile(blocker, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		cfg.Store.Backups.Dir = filepath.Join(blocker, "backups")
		cfg.Store.Backups.Interval, cfg.Store.Backups.RetryDelay = 300*time.Millisecond, 20*time.Millisecond
		cfg.HTTPListener = hln
	}})
	ctx := testCtx(t)
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	events := client.For[*corev1.Event](conn)
	waitfor.Condition(t, 60*time.Second, "a SnapshotFailed warning event", func() (bool, string) {
		l, err := events.List(ctx, "kube-system", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range l.Items {
			if ev.Reason == apiserver.ReasonSnapshotFailed && ev.Type == corev1.EventTypeWarning &&
				strings.Contains(ev.Message, "n1") && strings.Contains(ev.Message, "not a directory") &&
				ev.InvolvedObject.Kind == "Namespace" && ev.InvolvedObject.Name == "kube-system" {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events in kube-system", len(l.Items))
	})
	metric := func(name string) float64 {
		resp, err := http.Get("http://" + hln.Addr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no %s in the metrics", name)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	if n := metric(`skiff_store_scheduled_snapshots_total{result="failure"}`); n < 1 {
		t.Fatalf("failures counted: %v", n)
	}
	if n := metric("skiff_store_scheduled_snapshot_failures_in_a_row"); n < 1 {
		t.Fatalf("failures in a row: %v", n)
	}
	if err := os.Remove(blocker); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 60*time.Second, "the metrics show snapshots succeeding again", func() (bool, string) {
		ok, row, last := metric(`skiff_store_scheduled_snapshots_total{result="success"}`),
			metric("skiff_store_scheduled_snapshot_failures_in_a_row"), metric("skiff_store_scheduled_snapshot_last_success_timestamp_seconds")
		return ok >= 1 && row == 0 && last > 0, fmt.Sprint(ok, " succeeded, ", row, " failed in a row, last ", last)
	})
}

// TestSnapshotUploadFailureVisible: while the S3 storage cannot be reached, each
// scheduled snapshot fails, a SnapshotFailed Warning event says the upload failed and
// where to, and the metrics count it; once the storage answers again the uploads
// succeed, and cluster snapshots lists the copies in the bucket beside the members'.
func TestSnapshotUploadFailureVisible(t *testing.T) {
	t.Parallel() // its own cluster, waiting out scheduled snapshots and their retries beside the other long waits
	srv := s3test.Start(t)
	srv.MakeBucket(t, "backups")
	proxy := s3test.NewProxy(t, srv.Endpoint)
	proxy.Refuse(true)
	hln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		r, err := s3backup.New(s3backup.Config{Endpoint: proxy.Addr, Insecure: true, CredentialsFile: srv.CredentialsFile, Bucket: "backups", Prefix: "p", MaxRetries: 1})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Store.Backups.Remote = r
		cfg.Store.Backups.Interval, cfg.Store.Backups.RetryDelay = 300*time.Millisecond, 20*time.Millisecond
		cfg.HTTPListener = hln
	}})
	ctx := testCtx(t)
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	events := client.For[*corev1.Event](conn)
	waitfor.Condition(t, 60*time.Second, "a SnapshotFailed warning event about the upload", func() (bool, string) {
		l, err := events.List(ctx, "kube-system", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		for _, ev := range l.Items {
			if ev.Reason == apiserver.ReasonSnapshotFailed && ev.Type == corev1.EventTypeWarning &&
				strings.Contains(ev.Message, "not uploaded: upload to s3://backups/p/skiff-snapshot-") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events in kube-system", len(l.Items))
	})
	metric := func(name string) float64 {
		resp, err := http.Get("http://" + hln.Addr().String() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("no %s in the metrics", name)
		}
		v, _ := strconv.ParseFloat(string(m[1]), 64)
		return v
	}
	if n := metric(`skiff_store_scheduled_snapshot_uploads_total{result="failure"}`); n < 1 {
		t.Fatalf("failed uploads counted: %v", n)
	}
	if n := metric("skiff_store_scheduled_snapshot_failures_in_a_row"); n < 1 {
		t.Fatalf("failures in a row: %v", n)
	}
	proxy.Refuse(false)
	waitfor.Condition(t, 60*time.Second, "the metrics show uploads succeeding", func() (bool, string) {
		ok, row := metric(`skiff_store_scheduled_snapshot_uploads_total{result="success"}`), metric("skiff_store_scheduled_snapshot_failures_in_a_row")
		return ok >= 1 && row == 0, fmt.Sprint(ok, " uploaded, ", row, " failed in a row")
	})
	l, err := conn.ListSnapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var local, remote int
	for _, s := range l.GetSnapshots() {
		switch {
		case strings.HasPrefix(s.GetPath(), "s3://backups/p/skiff-snapshot-"+s.GetClusterId()):
			remote++
		case strings.HasPrefix(s.GetPath(), "/"):
			local++
		}
	}
	if local == 0 || remote == 0 || len(l.GetErrors()) > 0 {
		t.Fatalf("cluster snapshots lists %d on the members and %d in the bucket (%v), want both", local, remote, l)
	}
}
