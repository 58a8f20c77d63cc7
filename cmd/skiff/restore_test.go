package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
)

func runSkiff(args ...string) (string, error) {
	cmd := rootCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func dialAPI(t *testing.T, addr string) (apiv1.ResourcesClient, apiv1.ClusterClient) {
	cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return apiv1.NewResourcesClient(cc), apiv1.NewClusterClient(cc)
}

// listPods returns name -> resourceVersion of the pods a member serves.
func listPods(t *testing.T, ctx context.Context, rc apiv1.ResourcesClient) (map[string]string, int64) {
	t.Helper()
	resp, err := rc.List(ctx, &apiv1.ListRequest{Kind: "pods"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, o := range resp.GetItems() {
		p := unwrap(t, o)
		out[p.GetName()] = p.GetResourceVersion()
	}
	rev, _ := strconv.ParseInt(resp.GetResourceVersion(), 10, 64)
	return out, rev
}

func namespaces(t *testing.T, ctx context.Context, rc apiv1.ResourcesClient) []string {
	t.Helper()
	resp, err := rc.List(ctx, &apiv1.ListRequest{Kind: "namespaces"})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, o := range resp.GetItems() {
		ns := unwrap(t, o)
		out = append(out, ns.GetName()+"@"+ns.GetResourceVersion())
	}
	sort.Strings(out)
	return out
}

// wrap puts obj into the API's envelope, for calls to the gRPC service.
func wrap(t *testing.T, obj kinds.Object) *apiv1.Object {
	t.Helper()
	o, err := kinds.Wrap(obj)
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// unwrap reads an object the gRPC service sent.
func unwrap(t *testing.T, o *apiv1.Object) kinds.Object {
	t.Helper()
	obj, err := kinds.Unwrap(o)
	if err != nil {
		t.Fatal(err)
	}
	return obj
}

func newPod(t *testing.T, name string) *apiv1.Object {
	return wrap(t, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}})
}

// TestRestoreCommandStartsClusterFromSnapshot saves a snapshot of a running cluster,
// changes it, restores three members with `skiff restore` and starts them as API
// servers: they serve exactly the snapshot's objects, and revisions continue after it.
func TestRestoreCommandStartsClusterFromSnapshot(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	src := apicluster.Start(t, 1, apicluster.Options{})
	rc, cc := dialAPI(t, src.Addr(0))
	// The API server creates the system namespaces once it has a leader: wait for them,
	// or the restored cluster would create them and differ from the snapshot.
	for {
		resp, err := rc.List(ctx, &apiv1.ListRequest{Kind: "namespaces"})
		if err == nil && len(resp.GetItems()) == 3 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("system namespaces never appeared: %v, %v", resp.GetItems(), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, n := range []string{"a", "b", "c"} {
		if _, err := rc.Create(ctx, &apiv1.CreateRequest{Object: newPod(t, n)}); err != nil {
			t.Fatal(err)
		}
	}
	want, _ := listPods(t, ctx, rc)
	wantNS := namespaces(t, ctx, rc)

	snap := filepath.Join(t.TempDir(), "backup.db")
	stream, err := cc.Snapshot(ctx, &apiv1.SnapshotRequest{})
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	var snapRev int64
	for {
		chunk, err := stream.Recv()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, chunk.GetData()...)
		snapRev = max(snapRev, chunk.GetRevision())
	}
	if err := os.WriteFile(snap, data, 0o600); err != nil {
		t.Fatal(err)
	}

	// Changes after the snapshot, which the restored cluster must not show.
	if _, err := rc.Delete(ctx, &apiv1.DeleteRequest{Kind: "pods", Namespace: "default", Name: "b", GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Create(ctx, &apiv1.CreateRequest{Object: newPod(t, "d")}); err != nil {
		t.Fatal(err)
	}
	if _, err := rc.Create(ctx, &apiv1.CreateRequest{Object: wrap(t, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "later"}})}); err != nil {
		t.Fatal(err)
	}
	if got, _ := listPods(t, ctx, rc); fmt.Sprint(got) == fmt.Sprint(want) {
		t.Fatal("the source did not change after the snapshot")
	}

	// Bad inputs first: a non-empty data dir and files that are not snapshots.
	full := t.TempDir()
	os.WriteFile(filepath.Join(full, "raft.db"), []byte("x"), 0o600)
	garbage := filepath.Join(t.TempDir(), "garbage.db")
	os.WriteFile(garbage, bytes.Repeat([]byte("garbage "), 4096), 0o600)
	truncated := filepath.Join(t.TempDir(), "truncated.db")
	os.WriteFile(truncated, data[:len(data)/2], 0o600)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--snapshot", snap, "--data-dir", full}, "not empty"},
		{[]string{"--snapshot", garbage, "--data-dir", t.TempDir()}, garbage},
		{[]string{"--snapshot", truncated, "--data-dir", t.TempDir()}, truncated},
	} {
		args := append([]string{"restore", "--name", "n1", "--initial-cluster", "n1=127.0.0.1:1"}, tc.args...)
		if _, err := runSkiff(args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("skiff %s: %v, want an error saying %q", strings.Join(args, " "), err, tc.want)
		}
	}

	const bump = 5000
	dst := apicluster.Start(t, 3, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		var members []string
		for _, m := range cfg.InitialCluster {
			members = append(members, m.ID+"="+m.Address)
		}
		out, err := runSkiff("restore", "--snapshot", snap, "--data-dir", cfg.DataDir, "--name", cfg.Name,
			"--initial-cluster", strings.Join(members, ","), "--bump-revision", strconv.Itoa(bump))
		if err != nil {
			t.Fatalf("restore %s: %v", cfg.Name, err)
		}
		if !strings.Contains(out, fmt.Sprintf("at revision %d", snapRev)) {
			t.Errorf("restore %s said %q", cfg.Name, out)
		}
	}})
	for i := 0; i < 3; i++ {
		rc, _ := dialAPI(t, dst.Addr(i))
		got, rev := listPods(t, ctx, rc)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("restored member %d serves pods %v, want the snapshot's %v", i, got, want)
		}
		if rev <= snapRev+bump {
			t.Fatalf("restored member %d lists at revision %d, want after %d", i, rev, snapRev+bump)
		}
		if ns := namespaces(t, ctx, rc); fmt.Sprint(ns) != fmt.Sprint(wantNS) {
			t.Fatalf("restored member %d serves namespaces %v, want %v", i, ns, wantNS)
		}
	}
	rc, _ = dialAPI(t, dst.Addr(1))
	created, err := rc.Create(ctx, &apiv1.CreateRequest{Object: newPod(t, "e")})
	if err != nil {
		t.Fatal(err)
	}
	if rv, _ := strconv.ParseInt(unwrap(t, created).GetResourceVersion(), 10, 64); rv <= snapRev+bump {
		t.Fatalf("new pod at resourceVersion %d, want after %d", rv, snapRev+bump)
	}
	// A watch from a revision of the old cluster is refused as too old.
	w, err := rc.Watch(ctx, &apiv1.WatchRequest{Kind: "pods", ResourceVersion: strconv.FormatInt(snapRev, 10)})
	if err == nil {
		_, err = w.Recv()
	}
	if status.Code(err) != codes.OutOfRange {
		t.Fatalf("watch from the snapshot's revision on the restored cluster: %v, want OutOfRange (too old)", err)
	}
}

// TestRestoreScheduledSnapshot: skiff restore takes a scheduled snapshot, saying what it
// is, and refuses a damaged one, saying why.
func TestRestoreScheduledSnapshot(t *testing.T) {
	dir := t.TempDir()
	apicluster.Start(t, 1, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		cfg.Store.Backups.Dir, cfg.Store.Backups.Interval = dir, 100*time.Millisecond
	}})
	var snap string
	deadline := time.Now().Add(30 * time.Second)
	for snap == "" {
		matches, _ := filepath.Glob(filepath.Join(dir, "skiff-snapshot-*.db"))
		if len(matches) > 0 {
			snap = matches[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no scheduled snapshot within 30s")
		}
		time.Sleep(50 * time.Millisecond) // bounded polling of a directory
	}
	b, err := os.ReadFile(snap)
	if err != nil {
		t.Fatal(err)
	}
	damaged := filepath.Join(t.TempDir(), "damaged.db")
	b[100] ^= 0xff
	if err := os.WriteFile(damaged, b, 0o600); err != nil {
		t.Fatal(err)
	}
	out, err := runSkiff("restore", "--snapshot", damaged, "--data-dir", filepath.Join(t.TempDir(), "d1"), "--name", "n1", "--initial-cluster", "n1=127.0.0.1:1")
	if err == nil || !strings.Contains(err.Error(), "checksum does not match") {
		t.Fatalf("restore of a damaged snapshot: %v\n%s", err, out)
	}
	// --from and --cluster-id, and what they refuse.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--from", snap, "--cluster-id", "00000000000000ff"}, "identity does not match: it is not a snapshot of cluster 00000000000000ff"},
		{[]string{"--from", snap, "--snapshot", snap}, "--snapshot and --from: give one"},
		{[]string{"--from", "s3://backups/prod"}, `"prod" is not a snapshot's name`},
		{[]string{"--from", "s3://backups/prod/"}, "--s3-endpoint is required"},
		{[]string{"--from", "s3:///prod/", "--s3-endpoint", "127.0.0.1:1"}, "names no bucket"},
	} {
		args := append([]string{"restore", "--data-dir", filepath.Join(t.TempDir(), "d"), "--name", "n1", "--initial-cluster", "n1=127.0.0.1:1"}, tc.args...)
		if _, err := runSkiff(args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("skiff %s: %v, want an error saying %q", strings.Join(args, " "), err, tc.want)
		}
	}
	out, err = runSkiff("restore", "--from", snap, "--data-dir", filepath.Join(t.TempDir(), "d2"), "--name", "n1", "--initial-cluster", "n1=127.0.0.1:1")
	if err != nil || !strings.Contains(out, "checksum sha256") || !strings.Contains(out, "Restored") {
		t.Fatalf("restore of a scheduled snapshot: %v\n%s", err, out)
	}
}
