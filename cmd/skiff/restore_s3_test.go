package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/s3backup"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/s3test"
	"github.com/skiffhq/skiff/test/waitfor"
)

// write is one acknowledged write of the workload.
type write struct {
	name, data string
	rv         int64
}

// TestRestoreFromS3OntoNewAddresses is the disaster the backups are for. A three-member
// cluster uploads its scheduled snapshots to S3 (SeaweedFS) while a workload writes to
// it; then every member and every data directory is lost. `skiff restore --from
// s3://bucket/prefix/` on three new "machines" (other loopback addresses) takes the
// newest snapshot, and the new cluster serves every object the snapshot holds, as it
// was. A client informer that lived across the restore, behind an address that moved
// to the new machines, lists again and never sees a revision of the old cluster reused.
func TestRestoreFromS3OntoNewAddresses(t *testing.T) {
	srv := s3test.Start(t)
	srv.MakeBucket(t, "backups")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	old := apicluster.Start(t, 3, apicluster.Options{Configure: func(cfg *apiserver.Config) {
		r, err := s3backup.New(s3backup.Config{Endpoint: srv.Endpoint, Insecure: true, CredentialsFile: srv.CredentialsFile,
			Bucket: "backups", Prefix: "prod"})
		if err != nil {
			t.Fatal(err)
		}
		cfg.Store.Backups.Interval, cfg.Store.Backups.RetryDelay, cfg.Store.Backups.Remote = 300*time.Millisecond, 100*time.Millisecond, r
	}})
	// Clients reach the cluster through one address (a load balancer, a DNS name) that
	// moves to the new machines after the restore.
	lb := s3test.NewProxy(t, old.Addr(0))
	conn, err := client.Dial([]string{lb.Addr}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cms := client.For[*corev1.ConfigMap](conn)

	// The informer records the resourceVersion of everything it is given.
	inf := cache.NewInformer(cms, "default", client.ListOptions{}, hclog.NewNullLogger())
	var seenMu sync.Mutex
	var seen []int64
	note := func(cm *corev1.ConfigMap) {
		rv, _ := strconv.ParseInt(cm.ResourceVersion, 10, 64)
		seenMu.Lock()
		seen = append(seen, rv)
		seenMu.Unlock()
	}
	inf.AddHandler(cache.Handler[*corev1.ConfigMap]{OnAdd: note, OnUpdate: func(_, cm *corev1.ConfigMap) { note(cm) }})
	infCtx, stopInf := context.WithCancel(ctx)
	defer stopInf()
	go inf.Run(infCtx)

	// The workload: creates and updates, acknowledged writes recorded, while the
	// snapshots go up.
	var writes []write
	stop := make(chan struct{})
	done := make(chan error)
	go func() {
		for i := 0; ; i++ {
			select {
			case <-stop:
				done <- nil
				return
			default:
			}
			name := fmt.Sprintf("cm-%d", i)
			if i%3 == 2 {
				name = fmt.Sprintf("cm-%d", i/2)
			}
			data := fmt.Sprint("v", i)
			cm, err := cms.Get(ctx, "default", name)
			if err == nil {
				cm.Data = map[string]string{"v": data}
				cm, err = cms.Update(ctx, cm)
			} else if client.IsNotFound(err) {
				cm, err = cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Data: map[string]string{"v": data}})
			}
			if err != nil {
				done <- fmt.Errorf("workload: %s: %w", name, err)
				return
			}
			rv, _ := strconv.ParseInt(cm.ResourceVersion, 10, 64)
			writes = append(writes, write{name: name, data: data, rv: rv})
		}
	}()
	probe, err := s3backup.New(s3backup.Config{Endpoint: srv.Endpoint, Insecure: true, CredentialsFile: srv.CredentialsFile, Bucket: "backups", Prefix: "prod"})
	if err != nil {
		t.Fatal(err)
	}
	var firstRev int64
	waitfor.Condition(t, 2*time.Minute, "three snapshots uploaded while the workload writes", func() (bool, string) {
		files, err := probe.List(ctx)
		if err != nil {
			return false, err.Error()
		}
		if len(files) > 0 && firstRev == 0 {
			firstRev = files[0].Meta.Revision
		}
		newer := 0
		for _, f := range files {
			if f.Meta.Revision > firstRev {
				newer++
			}
		}
		return newer >= 3, fmt.Sprintf("%d snapshots, %d after the first", len(files), newer)
	})
	close(stop)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(writes) < 20 {
		t.Fatalf("the workload wrote only %d times", len(writes))
	}
	lastWrite := writes[len(writes)-1].rv
	waitfor.Condition(t, time.Minute, "the informer to see the last write", func() (bool, string) {
		rv, _ := strconv.ParseInt(inf.ResourceVersion(), 10, 64)
		return rv >= lastWrite, fmt.Sprint(rv, " < ", lastWrite)
	})
	var oldMax int64 // the newest revision the old cluster gave out
	for i := range 3 {
		if st, err := old.Server(i).Store().Status(); err == nil {
			oldMax = max(oldMax, st.Revision)
		}
	}

	// Every machine and every data directory is lost.
	relists := inf.Relists()
	for i := range 3 {
		old.Stop(i)
		if err := os.RemoveAll(old.DataDir(i)); err != nil {
			t.Fatal(err)
		}
	}
	latest, err := probe.Latest(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	snapRev := latest.Meta.Revision
	t.Logf("%d writes up to revision %d; restoring %s (revision %d)", len(writes), lastWrite, latest.Path, snapRev)
	if snapRev <= firstRev {
		t.Fatalf("the newest snapshot, at %d, is not one taken during the workload (after %d)", snapRev, firstRev)
	}
	want := map[string]write{} // the snapshot's ConfigMaps: each name's last write at or before it
	for _, w := range writes {
		if w.rv <= snapRev {
			want[w.name] = w
		}
	}

	// A restore that names no snapshot of the cluster it is asked for is refused.
	restoreArgs := []string{"restore", "--s3-endpoint", srv.Endpoint, "--s3-insecure", "--s3-credentials-file", srv.CredentialsFile}
	if _, err := runSkiff(append(restoreArgs, "--from", "s3://backups/prod/", "--cluster-id", "00000000000000ff", "--data-dir", t.TempDir(), "--name", "n1", "--initial-cluster", "n1=127.0.0.2:1")...); err == nil ||
		!strings.Contains(err.Error(), "no snapshot of cluster 00000000000000ff in s3://backups/prod/") {
		t.Errorf("restore of another cluster's snapshot: %v", err)
	}

	const bump = 100_000
	hosts := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"}
	restored := apicluster.Start(t, 3, apicluster.Options{Hosts: hosts, Configure: func(cfg *apiserver.Config) {
		var members []string
		for _, m := range cfg.InitialCluster {
			members = append(members, m.ID+"="+m.Address)
		}
		out, err := runSkiff(append(restoreArgs, "--from", "s3://backups/prod/", "--cluster-id", latest.Meta.Cluster,
			"--data-dir", cfg.DataDir, "--name", cfg.Name, "--initial-cluster", strings.Join(members, ","), "--bump-revision", strconv.Itoa(bump))...)
		if err != nil {
			t.Fatalf("restore %s: %v\n%s", cfg.Name, err, out)
		}
		for _, s := range []string{"Newest snapshot in s3://backups/prod/: " + filepath.Base(latest.Path), "checksum sha256 " + latest.Meta.SHA256 + " verified",
			fmt.Sprintf("at revision %d", snapRev)} {
			if !strings.Contains(out, s) {
				t.Errorf("restore %s said %q, want %q in it", cfg.Name, out, s)
			}
		}
	}})
	for i, h := range hosts {
		if !strings.HasPrefix(restored.Addr(i), h+":") {
			t.Fatalf("restored member %d serves at %s, want %s", i, restored.Addr(i), h)
		}
	}
	for i := range 3 {
		rc, _ := dialAPI(t, restored.Addr(i))
		got := listConfigMaps(t, ctx, rc)
		if len(got) != len(want) {
			t.Fatalf("restored member %d serves %d ConfigMaps, the snapshot holds %d", i, len(got), len(want))
		}
		for name, w := range want {
			if g, ok := got[name]; !ok || g != w {
				t.Fatalf("restored member %d serves %s as %+v, the snapshot holds %+v", i, name, g, w)
			}
		}
	}

	// The clients' address moves to the new machines: the informer lists again, and
	// ends up with exactly the snapshot's objects and what is written since.
	seenMu.Lock()
	before := len(seen)
	seenMu.Unlock()
	lb.Retarget(restored.Addr(0))
	created, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "after-restore"}})
	if err != nil {
		t.Fatal(err)
	}
	newRV, _ := strconv.ParseInt(created.ResourceVersion, 10, 64)
	if newRV <= snapRev+bump || newRV <= oldMax {
		t.Fatalf("a write after the restore has revision %d: want past the old cluster's %d and the snapshot's %d + %d", newRV, oldMax, snapRev, bump)
	}
	waitfor.Condition(t, 2*time.Minute, "the informer to list the restored cluster", func() (bool, string) {
		l := inf.Lister().List(labels.Everything())
		names := map[string]bool{}
		for _, cm := range l {
			names[cm.Name] = true
		}
		ok := inf.Relists() > relists && names["after-restore"] && len(names) == len(want)+1
		return ok, fmt.Sprintf("%d relists (%d before), %d objects cached, want %d", inf.Relists(), relists, len(names), len(want)+1)
	})
	for _, cm := range inf.Lister().List(labels.Everything()) {
		if cm.Name == "after-restore" {
			continue
		}
		if w := want[cm.Name]; w.data != cm.Data["v"] || strconv.FormatInt(w.rv, 10) != cm.ResourceVersion {
			t.Fatalf("the informer holds %s at %s %v, the snapshot %+v", cm.Name, cm.ResourceVersion, cm.Data, w)
		}
	}
	if rv, _ := strconv.ParseInt(inf.ResourceVersion(), 10, 64); rv <= oldMax {
		t.Fatalf("the informer is at revision %d, not past the old cluster's %d", rv, oldMax)
	}
	// Everything it was given is either as the snapshot holds it (at or before the
	// snapshot's revision) or new (past every revision of the old cluster): no revision
	// the old cluster gave after the snapshot comes back meaning something else.
	seenMu.Lock()
	defer seenMu.Unlock()
	var reused []int64
	for _, rv := range seen[before:] {
		if rv > snapRev && rv <= oldMax {
			reused = append(reused, rv)
		}
	}
	if len(reused) > 0 {
		sort.Slice(reused, func(i, j int) bool { return reused[i] < reused[j] })
		t.Fatalf("after the restore the informer was given revisions of the old cluster: %v", reused)
	}
}

// listConfigMaps returns the ConfigMaps in default a member serves, as writes.
func listConfigMaps(t *testing.T, ctx context.Context, rc apiv1.ResourcesClient) map[string]write {
	t.Helper()
	resp, err := rc.List(ctx, &apiv1.ListRequest{Kind: "configmaps", Namespace: "default"})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]write{}
	for _, o := range resp.GetItems() {
		cm := unwrap(t, o).(*corev1.ConfigMap)
		rv, _ := strconv.ParseInt(cm.ResourceVersion, 10, 64)
		out[cm.Name] = write{name: cm.Name, data: cm.Data["v"], rv: rv}
	}
	return out
}
