package apiserver_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// untar extracts a gzipped tar into dir.
func untar(t *testing.T, archive, dir string) {
	t.Helper()
	f, err := os.Open(archive)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(zr)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, filepath.Clean(h.Name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		out, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(out, tr); err != nil {
			t.Fatal(err)
		}
		out.Close()
	}
}

// A data directory written by the last version with Skiff's own object model
// (testdata/legacy, made by its make-datadir.sh) is read by this one: every object is
// served as Kubernetes' type with the fields it had, lists and watches included, and a
// write stores it in the new encoding.
func TestReadsDataFromBeforeKubernetesTypes(t *testing.T) {
	dir := t.TempDir()
	untar(t, "testdata/legacy/datadir.tar.gz", dir)
	api, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	raft, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := apiserver.DefaultConfig()
	cfg.Name, cfg.DataDir, cfg.Insecure = "n1", filepath.Join(dir, "n1"), true
	cfg.Listen, cfg.RaftListen, cfg.Listener, cfg.RaftListener = api.Addr().String(), raft.Addr().String(), api, raft
	cfg.InitialCluster = []store.Server{{ID: "n1", Address: raft.Addr().String()}}
	cfg.Store.MmapSize = 32 << 20
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: io.Discard})
	s, err := apiserver.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()
	if err := s.Store().WaitLeader(ctx); err != nil {
		t.Fatal(err)
	}
	conn, err := client.Dial([]string{api.Addr().String()}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	// objects.json is what that version's skiffctl printed: one List per kind.
	raw, err := os.ReadFile("testdata/legacy/objects.json")
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	seen := 0
	for dec.More() {
		var list struct{ Items []json.RawMessage }
		if err := dec.Decode(&list); err != nil {
			t.Fatal(err)
		}
		for _, item := range list.Items {
			old, err := kinds.DecodeManifest(item)
			if err != nil {
				t.Fatalf("old object: %v", err)
			}
			in := kinds.Of(old)
			got, err := client.ForKind(conn, in).Get(ctx, old.GetNamespace(), old.GetName())
			if err != nil {
				t.Fatalf("%s %s/%s: %v", in.Kind, old.GetNamespace(), old.GetName(), err)
			}
			// Kubernetes keeps object times to the second: compare the JSON forms.
			want, _ := json.Marshal(old)
			have, _ := json.Marshal(got)
			if !bytes.Equal(want, have) {
				t.Errorf("%s %s read back differs:\n got %s\nwant %s", in.Kind, old.GetName(), have, want)
			}
			seen++
		}
	}
	if seen < 6 {
		t.Fatalf("only %d objects in objects.json", seen)
	}

	pods := client.For[*corev1.Pod](conn)
	l, err := pods.List(ctx, "team", client.ListOptions{LabelSelector: "app=hello"})
	if err != nil || len(l.Items) != 1 || l.Items[0].Spec.RestartPolicy != corev1.RestartPolicyOnFailure {
		t.Fatalf("list of old pods = %v, %v", l, err)
	}
	w, err := pods.Watch(ctx, "team", client.WatchOptions{ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	p := l.Items[0].DeepCopy()
	p.Labels["tier"] = "demo"
	up, err := pods.Update(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	evs, err := w.Next()
	if err != nil || len(evs) != 1 || evs[0].Object.Labels["tier"] != "demo" || evs[0].Object.Spec.Containers[0].Image != "docker.io/library/busybox:latest" {
		t.Fatalf("watch of a converted pod = %v, %v", evs, err)
	}
	stored, err := s.Store().Get(ctx, store.Key{Kind: kinds.Pod, Namespace: "team", Name: "hello"}, store.ReadOptions{})
	if err != nil || !bytes.HasPrefix(stored.Value, kinds.Magic) {
		t.Fatalf("the updated pod is not stored in Kubernetes' encoding: %q, %v", stored.Value[:8], err)
	}
	if up.ResourceVersion == l.Items[0].ResourceVersion {
		t.Error("the update wrote nothing")
	}
}
