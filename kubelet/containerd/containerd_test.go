package containerd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/errdefs"
	"github.com/containerd/containerd/identifiers"
	"github.com/containerd/containerd/images"
	"github.com/containerd/containerd/namespaces"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/remotes/docker"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/crilog"
	"github.com/skiffhq/skiff/test/containerdtest"
	"github.com/skiffhq/skiff/test/registrytest"
)

// These tests run against a private containerd (test/containerdtest: root, and the
// containerd and runc binaries, else they skip), or the one at $SKIFF_CONTAINERD_SOCKET. The lifecycle test also needs an image
// with /bin/sh: $SKIFF_TEST_IMAGE (pulled unless present), or an archive to import,
// $SKIFF_TEST_IMAGE_ARCHIVE (then $SKIFF_TEST_IMAGE names an image in it); without
// either it builds an image from the host's static /bin/busybox.

func connect(t testing.TB) (*Runtime, context.Context) {
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
	if _, _, err := r.EnsureImage(ctx, "skiff.invalid/none:1", kubelet.PullNever, nil); !errors.Is(err, kubelet.ErrImageNeverPull) {
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
	if _, _, err := r.EnsureImage(ctx, image, policy, nil); err != nil {
		t.Fatal(err)
	}
	base := kubelet.ContainerConfig{PodUID: "0123456789abcdef", PodName: "p", Namespace: "test", Image: image}
	exit3 := base
	exit3.Name, exit3.Command = "exit3", []string{"sh", "-c", "echo hello; exit 3"}
	exit3.Security.SeccompRuntimeDefault = true // runs under containerd's default profile
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
	// The log is in the CRI format: its one line, with the time it was written.
	if rec, err := crilog.Parse([]byte(strings.TrimSuffix(logs.String(), "\n"))); err != nil || string(rec.Content) != "hello" ||
		rec.Stream != crilog.Stdout || rec.Partial || time.Since(rec.Time) > time.Hour || time.Until(rec.Time) > time.Minute {
		t.Fatalf("log %q: %+v, %v", logs.String(), rec, err)
	}
	var plain strings.Builder
	if err := r.Logs(ctx, ids[0], crilog.NewDecoder(crilog.NewPrinter(&plain, crilog.Options{})), true); err != nil || plain.String() != "hello\n" {
		t.Fatalf("following an exited container's logs: %q, %v", plain.String(), err)
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

// busybox imports an image built from the host's static busybox as ref (skipping t
// without one).
func busybox(t testing.TB, r *Runtime, ctx context.Context, ref string) {
	t.Helper()
	data, err := BusyboxArchive("/bin/busybox", ref)
	if err != nil {
		t.Skipf("no static busybox to build a test image from: %v", err)
	}
	if _, err := r.Import(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
}

// pushTo pushes the local image src to the registry at reg as name (REPO:TAG) over
// plain HTTP, then removes src and everything it holds from containerd: a later use of
// the image must pull it. It returns the reference and the manifest's digest.
func pushTo(t *testing.T, r *Runtime, ctx context.Context, src, reg, name string) (string, string) {
	t.Helper()
	nctx := r.ns(ctx)
	is := r.client.ImageService()
	img, err := is.Get(nctx, src)
	if err != nil {
		t.Fatal(err)
	}
	ref := reg + "/" + name
	resolver := docker.NewResolver(docker.ResolverOptions{Hosts: docker.ConfigureDefaultRegistries(docker.WithPlainHTTP(docker.MatchAllHosts))})
	if err := r.client.Push(nctx, ref, img.Target, containerd.WithResolver(resolver)); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	if err := is.Delete(nctx, src, images.SynchronousDelete()); err != nil {
		t.Fatal(err)
	}
	if _, err := r.client.ContentStore().Info(nctx, img.Target.Digest); !errdefs.IsNotFound(err) {
		t.Fatalf("the pushed image's manifest is still in containerd (%v)", err)
	}
	return ref, img.Target.Digest.String()
}

// waitExit waits for container id to exit and returns it.
func waitExit(t *testing.T, r *Runtime, ctx context.Context, id string) kubelet.Container {
	t.Helper()
	for {
		l, err := r.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range l {
			if c.ID == id && c.State == kubelet.StateExited {
				return c
			}
		}
		select {
		case <-ctx.Done():
			t.Fatalf("container %s never exited: %+v", id, l)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestPullFromRegistry(t *testing.T) {
	r, ctx := connect(t)
	reg := registrytest.Start(t)
	busybox(t, r, ctx, "docker.io/library/skiff-busybox:push")
	ref, digest := pushTo(t, r, ctx, "docker.io/library/skiff-busybox:push", reg, "busybox:1.0")

	if _, _, err := r.EnsureImage(ctx, ref, kubelet.PullNever, nil); !errors.Is(err, kubelet.ErrImageNeverPull) || !strings.Contains(err.Error(), ref) {
		t.Fatalf("absent image with Never: %v", err)
	}
	for _, step := range []struct {
		policy string
		pulled bool
	}{
		{kubelet.PullIfNotPresent, true},  // absent: pulled
		{kubelet.PullIfNotPresent, false}, // present: used as is
		{kubelet.PullNever, false},
		{kubelet.PullAlways, true},
	} {
		id, pulled, err := r.EnsureImage(ctx, ref, step.policy, nil)
		if err != nil || pulled != step.pulled || id != digest {
			t.Fatalf("EnsureImage(%s, %s) = %s, pulled %v, %v; want %s, pulled %v", ref, step.policy, id, pulled, err, digest, step.pulled)
		}
	}
	id, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "feedfacecafe", PodName: "pulled", Namespace: "test",
		Name: "main", Image: ref, Command: []string{"sh", "-c", "echo from the registry"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Remove(context.Background(), id) })
	if c := waitExit(t, r, ctx, id); c.ExitCode != 0 || c.ImageID != digest || c.Image != ref {
		t.Fatalf("container %+v", c)
	}
	var logs strings.Builder
	if err := r.Logs(ctx, id, &logs, false); err != nil || !strings.Contains(logs.String(), "from the registry") {
		t.Fatalf("logs %q, %v", logs.String(), err)
	}

	// A name the registry does not have is a pull error, whatever the policy allows.
	for _, policy := range []string{kubelet.PullIfNotPresent, kubelet.PullAlways} {
		missing := reg + "/busybox:no-such-tag"
		if _, _, err := r.EnsureImage(ctx, missing, policy, nil); !errors.Is(err, kubelet.ErrImagePull) || !strings.Contains(err.Error(), missing) {
			t.Fatalf("EnsureImage(%s, %s) = %v, want ErrImagePull naming the image", missing, policy, err)
		}
	}
}

// A plain-HTTP registry elsewhere than on loopback is refused unless listed in
// InsecureRegistries.
func TestPullFromInsecureRegistry(t *testing.T) {
	var ip string
	addrs, _ := net.InterfaceAddrs()
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			ip = n.IP.String()
			break
		}
	}
	if ip == "" {
		t.Skip("no non-loopback IPv4 address to serve a registry on")
	}
	r, ctx := connect(t)
	reg := registrytest.StartOn(t, ip)
	busybox(t, r, ctx, "docker.io/library/skiff-busybox:push")
	ref, digest := pushTo(t, r, ctx, "docker.io/library/skiff-busybox:push", reg, "busybox:1.0")
	if _, _, err := r.EnsureImage(ctx, ref, kubelet.PullIfNotPresent, nil); !errors.Is(err, kubelet.ErrImagePull) {
		t.Fatalf("pull from the plain-HTTP registry %s not listed as insecure: %v", reg, err)
	}
	// Another runtime on the same containerd, told the registry is insecure.
	lax, err := New(ctx, Config{Socket: r.cfg.Socket, Namespace: r.cfg.Namespace, LogDir: t.TempDir(), InsecureRegistries: []string{reg}})
	if err != nil {
		t.Fatal(err)
	}
	defer lax.Close()
	if id, pulled, err := lax.EnsureImage(ctx, ref, kubelet.PullIfNotPresent, nil); err != nil || !pulled || id != digest {
		t.Fatalf("pull from the insecure registry %s: %s, pulled %v, %v", reg, id, pulled, err)
	}
}

func TestInsecureRegistries(t *testing.T) {
	set := map[string]bool{"10.0.0.5:5000": true, "registry.lan": true}
	for host, want := range map[string]bool{
		"localhost:5000": true, "127.0.0.1:5000": true, "127.1.2.3:80": true, "[::1]:5000": true, "localhost": true,
		"10.0.0.5:5000": true, "10.0.0.5:5001": false, "registry.lan": true, "registry.lan:8443": true,
		"docker.io": false, "ghcr.io": false, "10.0.0.6:5000": false, "localhost.example.com:5000": false,
	} {
		if got := isInsecure(set, host); got != want {
			t.Errorf("isInsecure(%q) = %v, want %v", host, got, want)
		}
	}
	for _, bad := range []string{"", "http://10.0.0.5:5000", "10.0.0.5:5000/v2", "Bad Host"} {
		if err := validateRegistry(bad); err == nil {
			t.Errorf("validateRegistry(%q) accepted it", bad)
		}
	}
	for _, ok := range []string{"10.0.0.5:5000", "registry.lan", "[::1]:5000", "reg-1.example.com:443"} {
		if err := validateRegistry(ok); err != nil {
			t.Errorf("validateRegistry(%q): %v", ok, err)
		}
	}
	if _, err := New(context.Background(), Config{Socket: "/nonexistent", InsecureRegistries: []string{"http://x"}}); err == nil || !strings.Contains(err.Error(), `"http://x"`) {
		t.Errorf("New with a bad insecure registry: %v", err)
	}
}

// Stop sends SIGTERM and waits the grace period: a process that exits on it does so
// with its own code; one that ignores it is killed (137) once the grace period is up.
func TestStopGraceful(t *testing.T) {
	r, ctx := connect(t)
	const image = "docker.io/library/skiff-busybox:test"
	busybox(t, r, ctx, image)
	start := func(name, script string) string {
		id, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "5709", PodName: "stop", Namespace: "test",
			Name: name, Image: image, Command: []string{"sh", "-c", script}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Remove(context.Background(), id) })
		// Wait until the shell has set its trap: it says so.
		for {
			var out strings.Builder
			if err := r.Logs(ctx, id, &out, false); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out.String(), "ready") {
				return id
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s never got ready: %q", name, out.String())
			case <-time.After(20 * time.Millisecond):
			}
		}
	}
	term := start("term", `trap "exit 0" TERM; echo ready; while true; do sleep 0.1; done`)
	ignore := start("ignore", `trap "" TERM; echo ready; while true; do sleep 0.1; done`)

	// A long grace period: only SIGTERM can have ended it (SIGKILL would be 137).
	if err := r.Stop(ctx, term, time.Hour); err != nil {
		t.Fatal(err)
	}
	if c := waitExit(t, r, ctx, term); c.ExitCode != 0 {
		t.Fatalf("the container trapping SIGTERM exited %d, want 0", c.ExitCode)
	}
	const grace = 500 * time.Millisecond
	began := time.Now()
	if err := r.Stop(ctx, ignore, grace); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(began); took < grace {
		t.Fatalf("the container ignoring SIGTERM was stopped after %v, before its grace period %v", took, grace)
	}
	if c := waitExit(t, r, ctx, ignore); c.ExitCode != 137 {
		t.Fatalf("the container ignoring SIGTERM exited %d, want 137 (SIGKILL)", c.ExitCode)
	}
	// Stopping an exited container does nothing.
	if err := r.Stop(ctx, ignore, grace); err != nil {
		t.Fatal(err)
	}
}

// TestContainerID: every container's ID is one containerd accepts, the pod's long
// names and all (e2e's pods are named with a UUID, in namespaces such as
// "projected-865", and containerd refused their containers: longer than 76 characters),
// and two containers differing only past the kept part differ.
func TestContainerID(t *testing.T) {
	long := kubelet.ContainerConfig{Namespace: "projected-865", PodName: "pod-projected-configmaps-cc44fd0e-4cb1-41ab-939f-0775000cec6a",
		Name: "projected-configmap-volume-test", PodUID: "216bcfa3-1111-2222-3333-444455556666"}
	other := long
	other.Attempt = 1
	short := kubelet.ContainerConfig{Namespace: "default", PodName: "web", Name: "nginx", PodUID: "0123456789", Attempt: 2}
	dash := long
	dash.PodName = strings.Repeat("a", 44) + "-----" + strings.Repeat("b", 8) // the cut falls on the dashes
	dashes := short
	dashes.PodName = "a--b" // a valid pod name; containerd takes no separators in a row
	ids := map[string]bool{}
	for _, cfg := range []kubelet.ContainerConfig{long, other, short, dash, dashes} {
		id := containerID(cfg)
		if err := identifiers.Validate(id); err != nil {
			t.Errorf("containerID(%s/%s %s) = %q: %v", cfg.Namespace, cfg.PodName, cfg.Name, id, err)
		}
		ids[id] = true
	}
	if len(ids) != 5 {
		t.Errorf("IDs not unique: %v", ids)
	}
	if id := containerID(short); id != "default_web_nginx_01234567_2" {
		t.Errorf("short ID = %q, want the readable one", id)
	}
}

// TestSeccompOpts: RuntimeDefault puts containerd's default profile in the spec (not
// for a privileged container); without it the spec has none.
func TestSeccompOpts(t *testing.T) {
	for _, tc := range []struct {
		name string
		sec  kubelet.Security
		want bool
	}{
		{"runtime default", kubelet.Security{SeccompRuntimeDefault: true}, true},
		{"unconfined", kubelet.Security{}, false},
		{"privileged", kubelet.Security{SeccompRuntimeDefault: true, Privileged: true}, false},
	} {
		s := &oci.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{}}, Linux: &specs.Linux{}}
		for _, opt := range securityOpts(kubelet.ContainerConfig{Security: tc.sec}) {
			if err := opt(context.Background(), nil, &containers.Container{}, s); err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
		}
		if got := s.Linux.Seccomp != nil && s.Linux.Seccomp.DefaultAction == specs.ActErrno; got != tc.want {
			t.Errorf("%s: default profile in the spec = %v, want %v (%+v)", tc.name, got, tc.want, s.Linux.Seccomp)
		}
	}
}

// TestSELinuxOpts: seLinuxOptions are nothing to apply on a node without SELinux, as in
// Kubernetes; on a node with it, the container is refused (its labels are not applied).
func TestSELinuxOpts(t *testing.T) {
	defer func(f func() bool) { selinuxEnabled = f }(selinuxEnabled)
	for _, enabled := range []bool{false, true} {
		selinuxEnabled = func() bool { return enabled }
		var err error
		s := &oci.Spec{Process: &specs.Process{}, Linux: &specs.Linux{}}
		for _, opt := range securityOpts(kubelet.ContainerConfig{Namespace: "ns", PodName: "p", Security: kubelet.Security{SELinuxLabel: true}}) {
			if err = opt(context.Background(), nil, &containers.Container{}, s); err != nil {
				break
			}
		}
		if got := errors.Is(err, kubelet.ErrContainerConfig); got != enabled {
			t.Errorf("SELinux enabled %v: error %v", enabled, err)
		}
	}
}

// TestCgroupMountOpts: a container's spec mounts its cgroups at /sys/fs/cgroup,
// read-only unless privileged, with a cgroup namespace of its own on a v2 host (not
// when privileged), as containerd's CRI plugin makes it; a pod's own mount there takes
// its place.
func TestCgroupMountOpts(t *testing.T) {
	for _, tc := range []struct {
		name                string
		mounts              []kubelet.Mount
		privileged, unified bool
		wantMount, wantRO   bool
		wantNS              bool
	}{
		{name: "v1", wantMount: true, wantRO: true},
		{name: "v2", unified: true, wantMount: true, wantRO: true, wantNS: true},
		{name: "v2 privileged", unified: true, privileged: true, wantMount: true},
		{name: "the pod's own", unified: true, mounts: []kubelet.Mount{{HostPath: "/sys/fs/cgroup", ContainerPath: "/sys/fs/cgroup/"}}},
	} {
		s, err := oci.GenerateSpecWithPlatform(namespaces.WithNamespace(context.Background(), "test"), nil, "linux/amd64", &containers.Container{ID: "c"},
			cgroupMountOpts(tc.mounts, tc.privileged, tc.unified)...)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		var cg *specs.Mount
		sys := -1
		for i, m := range s.Mounts {
			switch m.Destination {
			case "/sys":
				sys = i
			case "/sys/fs/cgroup":
				if sys < 0 {
					t.Errorf("%s: /sys/fs/cgroup mounted before /sys: %+v", tc.name, s.Mounts)
				}
				cg = &s.Mounts[i]
			}
		}
		if got := cg != nil; got != tc.wantMount {
			t.Fatalf("%s: cgroup mount %v, want %v (%+v)", tc.name, got, tc.wantMount, s.Mounts)
		}
		if cg != nil {
			if cg.Type != "cgroup" || cg.Source != "cgroup" {
				t.Errorf("%s: mount %+v, want a cgroup filesystem", tc.name, *cg)
			}
			if got := slices.Contains(cg.Options, "ro"); got != tc.wantRO {
				t.Errorf("%s: read-only %v, want %v (%v)", tc.name, got, tc.wantRO, cg.Options)
			}
		}
		ns := slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.CgroupNamespace && n.Path == "" })
		if ns != tc.wantNS {
			t.Errorf("%s: private cgroup namespace %v, want %v", tc.name, ns, tc.wantNS)
		}
	}
}

// TestContainerCgroups: a container reads its own limits at /sys/fs/cgroup, where
// Kubernetes' tests (the in-place resize's) read them, and cannot write them; on a v1
// (or hybrid) host no cgroup2 filesystem shows at /sys/fs/cgroup, which those tests
// take for v2.
func TestContainerCgroups(t *testing.T) {
	r, ctx := connect(t)
	const image = "docker.io/library/skiff-busybox:cgroups"
	busybox(t, r, ctx, image)
	cfg := kubelet.ContainerConfig{PodUID: "cgroupmount-0123", PodName: "p", Namespace: "test", Image: image, Name: "limited",
		Command: []string{"sleep", "3600"}}
	cfg.MemoryBytes, cfg.CPUMillis = 64<<20, 250
	id, err := r.CreateAndStart(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Remove(context.Background(), id) })
	read := func(cmd string) (string, int) {
		t.Helper()
		res, err := r.ExecSync(ctx, id, []string{"sh", "-c", cmd}, 30*time.Second)
		if err != nil {
			t.Fatalf("exec %q: %v", cmd, err)
		}
		return strings.TrimSpace(string(res.Output)), res.ExitCode
	}
	want := map[string]string{"cpu/cpu.cfs_quota_us": "25000", "memory/memory.limit_in_bytes": strconv.Itoa(64 << 20)}
	writable := "cpu/cpu.shares"
	if r.unified() {
		want = map[string]string{"cpu.max": "25000 100000", "memory.max": strconv.Itoa(64 << 20)}
		writable = "cpu.weight"
	} else if out, _ := read("mount -t cgroup2"); strings.Contains(out, "/sys/fs/cgroup") {
		t.Errorf("a v1 host's container shows cgroup2 at /sys/fs/cgroup: %q", out)
	}
	for f, w := range want {
		if got, code := read("head -n 1 /sys/fs/cgroup/" + f); got != w || code != 0 {
			t.Errorf("/sys/fs/cgroup/%s = %q (exit %d), want %s", f, got, code, w)
		}
	}
	if out, code := read("echo 2 > /sys/fs/cgroup/" + writable); code == 0 {
		t.Errorf("/sys/fs/cgroup is writable in an unprivileged container: %q", out)
	}
}
