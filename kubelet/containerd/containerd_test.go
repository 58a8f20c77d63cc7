package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/test/containerdtest"
)

// These tests run against a private containerd (test/containerdtest: root, and the
// containerd and runc binaries, else they skip), or the one at $SKIFF_CONTAINERD_SOCKET. The lifecycle test also needs an image
// with /bin/sh: $SKIFF_TEST_IMAGE (pulled unless present), or an archive to import,
// $SKIFF_TEST_IMAGE_ARCHIVE (then $SKIFF_TEST_IMAGE names an image in it); without
// either it builds an image from the host's static /bin/busybox.

func connect(t *testing.T) (*Runtime, context.Context) {
	t.Helper()
	socket := os.Getenv("SKIFF_CONTAINERD_SOCKET")
	if socket == "" {
		socket = containerdtest.Start(t) // a private instance; skips without root or containerd
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	r, err := New(ctx, Config{Socket: socket, Namespace: "skiff-test", LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r, ctx
}

func TestNormalize(t *testing.T) {
	for in, want := range map[string]string{
		"nginx":              "docker.io/library/nginx:latest",
		"nginx:1.25":         "docker.io/library/nginx:1.25",
		"ghcr.io/a/b:v1":     "ghcr.io/a/b:v1",
		"localhost:5000/app": "localhost:5000/app:latest",
		"busybox@sha256:" + strings.Repeat("a", 64): "docker.io/library/busybox@sha256:" + strings.Repeat("a", 64),
	} {
		if got, err := normalize(in); err != nil || got != want {
			t.Errorf("normalize(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := normalize("Bad Image"); err == nil {
		t.Error("normalize accepted an invalid reference")
	}
}

func TestVersionAndMissingImage(t *testing.T) {
	r, ctx := connect(t)
	if !strings.HasPrefix(r.Version(), "containerd://") {
		t.Fatalf("version %q", r.Version())
	}
	if _, _, err := r.EnsureImage(ctx, "skiff.invalid/none:1", kubelet.PullNever); !errors.Is(err, kubelet.ErrImageNeverPull) {
		t.Fatalf("absent image with Never: %v", err)
	}
	if err := r.Stop(ctx, "no-such-container", time.Second); !errors.Is(err, kubelet.ErrNotFound) {
		t.Fatalf("stop of an unknown container: %v", err)
	}
}

func TestLifecycle(t *testing.T) {
	r, ctx := connect(t)
	image, policy := os.Getenv("SKIFF_TEST_IMAGE"), kubelet.PullIfNotPresent
	var archive io.Reader
	switch path := os.Getenv("SKIFF_TEST_IMAGE_ARCHIVE"); {
	case path != "":
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		archive = f
	case image == "":
		// No image given: build one from the host's static busybox.
		image = "docker.io/library/skiff-busybox:test"
		data, err := BusyboxArchive("/bin/busybox", image)
		if err != nil {
			t.Skipf("no static busybox to build a test image from: %v", err)
		}
		archive = bytes.NewReader(data)
	}
	if archive != nil {
		names, err := r.Import(ctx, archive)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("imported %v", names)
		policy = kubelet.PullNever
	}
	if _, _, err := r.EnsureImage(ctx, image, policy); err != nil {
		t.Fatal(err)
	}
	base := kubelet.ContainerConfig{PodUID: "0123456789abcdef", PodName: "p", Namespace: "test", Image: image}
	exit3 := base
	exit3.Name, exit3.Command = "exit3", []string{"sh", "-c", "echo hello; exit 3"}
	sleeper := base
	sleeper.Name, sleeper.Command, sleeper.MemoryBytes, sleeper.CPUMillis = "sleeper", []string{"sleep", "3600"}, 64<<20, 250
	var ids []string
	for _, cfg := range []kubelet.ContainerConfig{exit3, sleeper} {
		id, err := r.CreateAndStart(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		t.Cleanup(func() { _ = r.Remove(context.Background(), id) })
	}
	state := func(id string) kubelet.Container {
		l, err := r.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range l {
			if c.ID == id {
				return c
			}
		}
		t.Fatalf("container %s not listed", id)
		return kubelet.Container{}
	}
	for c := state(ids[0]); c.State != kubelet.StateExited; c = state(ids[0]) {
		select {
		case <-ctx.Done():
			t.Fatalf("exit3 never exited: %+v", c)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if c := state(ids[0]); c.ExitCode != 3 || c.Name != "exit3" || c.PodUID != base.PodUID || c.FinishedAt.IsZero() {
		t.Fatalf("exited container %+v", c)
	}
	var logs strings.Builder
	if err := r.Logs(ctx, ids[0], &logs, false); err != nil || !strings.Contains(logs.String(), "hello") {
		t.Fatalf("logs %q, %v", logs.String(), err)
	}
	logs.Reset()
	if err := r.Logs(ctx, ids[0], &logs, true); err != nil || logs.String() != "hello\n" {
		t.Fatalf("following an exited container's logs: %q, %v", logs.String(), err)
	}
	if c := state(ids[1]); c.State != kubelet.StateRunning {
		t.Fatalf("sleeper %+v", c)
	}
	if err := r.Stop(ctx, ids[1], time.Second); err != nil {
		t.Fatal(err)
	}
	if c := state(ids[1]); c.State != kubelet.StateExited {
		t.Fatalf("stopped sleeper %+v", c)
	}
	for _, id := range ids {
		if err := r.Remove(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	if l, _ := r.List(ctx); len(l) != 0 {
		t.Fatalf("left %+v", l)
	}
}

// syncBuffer is a bytes.Buffer safe to read while a follower writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestFollowFile follows a file as a container's output grows: what is there, then what
// is appended, then the rest once the container exits.
func TestFollowFile(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	path := filepath.Join(t.TempDir(), "c.log")
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	fmt.Fprintln(out, "one")
	in, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	exited := make(chan struct{})
	var got syncBuffer
	done := make(chan error, 1)
	go func() { done <- followFile(ctx, in, &got, exited, time.Millisecond) }()
	waitFor := func(want string) {
		t.Helper()
		for got.String() != want {
			select {
			case err := <-done:
				t.Fatalf("follow ended early: %v with %q", err, got.String())
			case <-ctx.Done():
				t.Fatalf("follow has %q, want %q", got.String(), want)
			case <-time.After(time.Millisecond):
			}
		}
	}
	waitFor("one\n")
	fmt.Fprintln(out, "two")
	waitFor("one\ntwo\n")
	fmt.Fprintln(out, "three") // written just before the exit is seen: not lost
	close(exited)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got.String() != "one\ntwo\nthree\n" {
		t.Fatalf("followed %q", got.String())
	}

	// A follower whose caller goes away stops.
	cctx, ccancel := context.WithCancel(ctx)
	go func() {
		done <- followFile(cctx, strings.NewReader(""), io.Discard, make(chan struct{}), time.Millisecond)
	}()
	ccancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled follow = %v", err)
	}
}
