package sim

import (
	"bytes"
	"context"
	"errors"
	"io"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/crilog"
)

type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		argv   []string
		runFor time.Duration
		code   int
		ignore bool
	}{
		{[]string{"nginx"}, -1, 0, false},
		{[]string{"sh", "-c", "exit 3"}, 0, 3, false},
		{[]string{"sh", "-c", "sleep 2; exit 1"}, 2 * time.Second, 1, false},
		{[]string{"sleep", "1.5s"}, 1500 * time.Millisecond, 0, false},
		{[]string{"sh", "-c", "trap '' TERM; sleep 3600"}, time.Hour, 0, true},
		{[]string{"sh", "-c", "exit"}, 0, 0, false},
		{[]string{"sh", "-c", "cat /etc/motd"}, 0, 0, false},
		{[]string{"sh", "-c", "while true; do sleep 1; done"}, -1, 0, false},
	} {
		runFor, code, ignore := parse(tc.argv)
		if runFor != tc.runFor || code != tc.code || ignore != tc.ignore {
			t.Errorf("parse(%q) = %v %d %v, want %v %d %v", tc.argv, runFor, code, ignore, tc.runFor, tc.code, tc.ignore)
		}
	}
}

func TestLifecycle(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r := New(Config{Images: []string{"busybox:1.36", "nginx"}, Present: []string{"pause:3.9"}, Now: clk.Now})

	if _, _, err := r.EnsureImage(ctx, "nope:1", kubelet.PullIfNotPresent, nil); !errors.Is(err, kubelet.ErrImagePull) {
		t.Fatalf("pull of an unknown image: %v", err)
	}
	if _, _, err := r.EnsureImage(ctx, "busybox:1.36", kubelet.PullNever, nil); !errors.Is(err, kubelet.ErrImageNeverPull) {
		t.Fatalf("Never with the image absent: %v", err)
	}
	if _, pulled, err := r.EnsureImage(ctx, "pause:3.9", kubelet.PullIfNotPresent, nil); err != nil || pulled {
		t.Fatalf("present image: pulled=%v %v", pulled, err)
	}
	if _, pulled, err := r.EnsureImage(ctx, "nginx", kubelet.PullAlways, nil); err != nil || !pulled {
		t.Fatalf("nginx: pulled=%v %v", pulled, err)
	}
	if _, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{Name: "x", Image: "busybox:1.36"}); !errors.Is(err, kubelet.ErrNotFound) {
		t.Fatalf("create without the image: %v", err)
	}
	if _, _, err := r.EnsureImage(ctx, "busybox:1.36", kubelet.PullIfNotPresent, nil); err != nil {
		t.Fatal(err)
	}

	web, _ := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "u1", Name: "web", Image: "nginx:latest"})
	job, _ := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "u1", Name: "job", Image: "busybox:1.36", Command: []string{"sh", "-c", "sleep 10; exit 2"}, Attempt: 4})
	crash, _ := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "u2", Name: "crash", Image: "busybox:1.36", Command: []string{"sh", "-c", "exit 1"}})
	stubborn, _ := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "u2", Name: "stubborn", Image: "busybox:1.36", Command: []string{"sh", "-c", "trap '' TERM; sleep 3600"}})

	state := func() map[string]kubelet.Container {
		l, err := r.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		m := map[string]kubelet.Container{}
		for _, c := range l {
			m[c.ID] = c
		}
		return m
	}
	s := state()
	if s[web].State != kubelet.StateRunning || s[job].State != kubelet.StateRunning || s[job].Attempt != 4 || s[job].PodUID != "u1" {
		t.Fatalf("after start: %+v", s)
	}
	if c := s[crash]; c.State != kubelet.StateExited || c.ExitCode != 1 || !c.FinishedAt.Equal(c.StartedAt) {
		t.Fatalf("exit 1 container: %+v", c)
	}
	clk.Add(10 * time.Second)
	if c := state()[job]; c.State != kubelet.StateExited || c.ExitCode != 2 || c.FinishedAt.Sub(c.StartedAt) != 10*time.Second {
		t.Fatalf("sleep 10; exit 2 container after 10s: %+v", c)
	}
	if err := r.Stop(ctx, web, 30*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctx, stubborn, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	s = state()
	if s[web].ExitCode != 143 || s[stubborn].ExitCode != 137 || s[stubborn].FinishedAt.Sub(s[stubborn].StartedAt) != 15*time.Second {
		t.Fatalf("stopped: %+v %+v", s[web], s[stubborn])
	}
	var buf bytes.Buffer
	if err := r.Logs(ctx, web, &buf, true); err != nil || !strings.Contains(buf.String(), "exited with code 143") {
		t.Fatalf("logs = %q, %v", buf.String(), err)
	}
	if err := r.Remove(ctx, web); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(ctx, web); !errors.Is(err, kubelet.ErrNotFound) {
		t.Fatalf("second remove: %v", err)
	}
	if len(state()) != 3 || r.Creates() != 4 {
		t.Fatalf("after remove: %d containers, %d creates", len(state()), r.Creates())
	}
}

func TestLogsFollowEndsOnExit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r := New(Config{Present: []string{"busybox"}})
	id, _ := r.CreateAndStart(ctx, kubelet.ContainerConfig{Name: "c", Image: "busybox"})
	done := make(chan error, 1)
	var buf bytes.Buffer
	go func() { done <- r.Logs(ctx, id, &buf, true) }()
	if err := r.Exit(id, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || !strings.Contains(buf.String(), "exited with code 0") {
		t.Fatalf("follow = %q, %v", buf.String(), err)
	}
}

func TestStartDelay(t *testing.T) {
	r := New(Config{StartDelay: 30 * time.Millisecond, Present: []string{"busybox"}})
	id, err := r.CreateAndStart(context.Background(), kubelet.ContainerConfig{PodUID: "u", PodName: "p", Namespace: "ns", Name: "c", Image: "busybox"})
	if err != nil {
		t.Fatal(err)
	}
	list, _ := r.List(context.Background())
	if len(list) != 1 || list[0].ID != id || list[0].StartedAt.Sub(list[0].CreatedAt) < 30*time.Millisecond {
		t.Fatalf("containers %+v: want one started at least 30ms after its creation", list)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "u", PodName: "p", Namespace: "ns", Name: "d", Image: "busybox"}); err == nil {
		t.Fatal("a cancelled start succeeded")
	}
}

// List follows creates and removes (it keeps its order between them).
func TestListFollowsCreateAndRemove(t *testing.T) {
	ctx := context.Background()
	r := New(Config{Present: []string{"busybox"}})
	ids := func() []string {
		l, err := r.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range l {
			out = append(out, c.ID)
		}
		return out
	}
	start := func(name string) string {
		id, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "u", PodName: "p", Namespace: "ns", Name: name, Image: "busybox"})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	a, b := start("a"), start("b")
	if got := ids(); len(got) != 2 || got[0] != a || got[1] != b {
		t.Fatalf("after two creates: %v", got)
	}
	if err := r.Remove(ctx, a); err != nil {
		t.Fatal(err)
	}
	c := start("c")
	if got := ids(); len(got) != 2 || got[0] != b || got[1] != c {
		t.Fatalf("after remove and create: %v, want [%s %s]", got, b, c)
	}
}

// TestChangesCountWhatListWouldShow: the count moves with every create, exit and remove,
// an exit on the container's own schedule once its time has come on the runtime's clock,
// and never between them.
func TestChangesCountWhatListWouldShow(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r := New(Config{Present: []string{"busybox"}, Now: clk.Now})
	start := func(name string, command ...string) string {
		id, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "u", PodName: "p", Namespace: "ns", Name: name, Image: "busybox", Command: command})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	state := func(id string) kubelet.ContainerState {
		l, _ := r.List(ctx)
		for _, c := range l {
			if c.ID == id {
				return c.State
			}
		}
		return "gone"
	}
	last := r.Changes()
	step := func(what string, moved bool) {
		t.Helper()
		now := r.Changes()
		if (now != last) != moved {
			t.Errorf("%s: changes %d → %d, want moved %v", what, last, now, moved)
		}
		if again := r.Changes(); again != now {
			t.Errorf("%s: changes %d then %d with nothing between", what, now, again)
		}
		last = now
	}
	step("nothing", false)
	forever := start("forever", "sleep", "3600")
	step("a container created", true)
	brief := start("brief", "sleep", "10")
	step("another created", true)
	clk.Add(9 * time.Second)
	step("9 s of the 10 s one's run", false)
	if state(brief) != kubelet.StateRunning {
		t.Fatalf("brief %s before its end", state(brief))
	}
	clk.Add(time.Second)
	step("its run ended", true) // settled by Changes, before any List
	if state(brief) != kubelet.StateExited {
		t.Fatalf("brief %s after its end", state(brief))
	}
	step("listed after it", false)
	if err := r.Stop(ctx, forever, time.Second); err != nil {
		t.Fatal(err)
	}
	step("stopped", true)
	if err := r.Remove(ctx, brief); err != nil {
		t.Fatal(err)
	}
	step("removed", true)
	other := start("other")
	step("created", true)
	if err := r.Exit(other, 2); err != nil {
		t.Fatal(err)
	}
	step("made to exit", true)
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

func TestLogsSayWhatHappenedAndFollowStreams(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	clock := &fakeClock{t: time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)}
	r := New(Config{Present: []string{"busybox"}, Now: clock.Now})
	id, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{Name: "c", Image: "busybox", Command: []string{"sh", "-c", "echo 'hello world'; sleep 3600"}})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := r.Logs(ctx, id, &buf, false); err != nil {
		t.Fatal(err)
	}
	// The CRI log format, with the runtime's clock.
	want := "2026-01-02T03:04:05.0000006Z stdout F sim: container c started (image busybox, attempt 0): sh -c echo 'hello world'; sleep 3600\n" +
		"2026-01-02T03:04:05.0000006Z stdout F hello world\n"
	if buf.String() != want {
		t.Fatalf("logs = %q, want %q", buf.String(), want)
	}

	var follow syncBuffer
	done := make(chan error, 1)
	go func() { done <- r.Logs(ctx, id, crilog.NewDecoder(crilog.NewPrinter(&follow, crilog.Options{})), true) }()
	clock.Add(time.Second)
	if err := r.Write(id, "line two"); err != nil {
		t.Fatal(err)
	}
	for !strings.Contains(follow.String(), "hello world\nline two\n") {
		select {
		case err := <-done:
			t.Fatalf("follow ended early: %v, %q", err, follow.String())
		case <-ctx.Done():
			t.Fatalf("follow never streamed the new line: %q", follow.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
	if err := r.Stop(ctx, id, time.Second); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := follow.String(); !strings.HasSuffix(got, "line two\nsim: container c received SIGTERM (grace period 1s)\nsim: container c exited with code 143\n") {
		t.Fatalf("follow = %q", got)
	}
}

func TestLogsFollowCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := New(Config{Present: []string{"busybox"}})
	id, _ := r.CreateAndStart(ctx, kubelet.ContainerConfig{Name: "c", Image: "busybox"})
	done := make(chan error, 1)
	go func() { done <- r.Logs(ctx, id, io.Discard, true) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled follow = %v", err)
	}
}

// The documentation's exec liveness example: the file exists for the first 30 seconds.
func TestExecSyncReadsTheScriptsFiles(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r := New(Config{Now: clk.Now, Present: []string{"busybox"}})
	id, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "u", PodName: "p", Namespace: "ns", Name: "c", Image: "busybox",
		Args: []string{"/bin/sh", "-c", "touch /tmp/healthy; sleep 30; rm -f /tmp/healthy; sleep 600"}})
	if err != nil {
		t.Fatal(err)
	}
	probe := func() int {
		res, err := r.ExecSync(ctx, id, []string{"cat", "/tmp/healthy"}, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return res.ExitCode
	}
	if code := probe(); code != 0 {
		t.Errorf("at start: exit %d", code)
	}
	clk.Add(31 * time.Second)
	if code := probe(); code != 1 {
		t.Errorf("after 31s: exit %d", code)
	}
	if res, err := r.ExecSync(ctx, id, []string{"sh", "-c", "sleep 5"}, time.Second); !errors.Is(err, kubelet.ErrExecTimeout) {
		t.Errorf("a command longer than its timeout: %v %v", res, err)
	}
}

// A container asking for more memory than its limit is OOM-killed at once.
func TestOOMOnRequest(t *testing.T) {
	ctx := context.Background()
	r := New(Config{})
	r.EnsureImage(ctx, "polinux/stress", kubelet.PullIfNotPresent, nil)
	id, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "u", PodName: "p", Namespace: "ns", Name: "c", Image: "polinux/stress",
		Command: []string{"stress"}, Args: []string{"--vm", "1", "--vm-bytes", "250M", "--vm-hang", "1"}, Resources: kubelet.Resources{MemoryBytes: 100 << 20}})
	if err != nil {
		t.Fatal(err)
	}
	l, _ := r.List(ctx)
	if len(l) != 1 || l[0].ID != id || l[0].State != kubelet.StateExited || l[0].ExitCode != 137 || l[0].Reason != "OOMKilled" {
		t.Fatalf("containers %+v", l)
	}
}

// Containers' environments, each made afresh by the kubelet, keep one copy of each
// variable between them, and read as given.
func TestEnvOneCopy(t *testing.T) {
	ctx := context.Background()
	r := New(Config{})
	r.EnsureImage(ctx, "busybox", kubelet.PullIfNotPresent, nil)
	var envs [][]string
	for i := range 2 {
		env := []string{"KUBERNETES_SERVICE_HOST=10.43.0." + strconv.Itoa(1), "POD=" + string(rune('a'+i))}
		id, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "u", PodName: "p", Namespace: "ns", Name: "c", Image: "busybox", Env: env})
		if err != nil {
			t.Fatal(err)
		}
		cfg, _ := r.Config(id)
		if want := []string{"KUBERNETES_SERVICE_HOST=10.43.0.1", "POD=" + string(rune('a'+i))}; !slices.Equal(cfg.Env, want) {
			t.Fatalf("env %q, want %q", cfg.Env, want)
		}
		envs = append(envs, cfg.Env)
	}
	if unsafe.StringData(envs[0][0]) != unsafe.StringData(envs[1][0]) {
		t.Errorf("an equal variable is two copies")
	}
}

// BenchmarkQuietRelist is what a node's relist asks of its runtime each second when
// nothing changed, with 30 containers (150,000 pods on 5,000 nodes): the list it made
// before the runtime counted its changes, and the count it reads now.
func BenchmarkQuietRelist(b *testing.B) {
	ctx := context.Background()
	r := New(Config{Present: []string{"busybox"}})
	for i := range 30 {
		if _, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: strconv.Itoa(i), PodName: "p" + strconv.Itoa(i), Namespace: "ns", Name: "c", Image: "busybox"}); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("list", func(b *testing.B) {
		for b.Loop() {
			if _, err := r.List(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("changes", func(b *testing.B) {
		for b.Loop() {
			r.Changes()
		}
	})
	b.Run("listpod", func(b *testing.B) { // what a pod's sync lists (kubelet.PodLister)
		for b.Loop() {
			if _, err := r.ListPod(ctx, "ns", "p17"); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// ListPod has, for every pod name, what List has for it, in the same order and states —
// containers of an earlier pod of the name included, removed ones gone, an exit on the
// container's schedule settled — and nothing of other pods.
func TestListPodIsListOfThePod(t *testing.T) {
	ctx := context.Background()
	clk := &fakeClock{t: time.Unix(1000, 0)}
	r := New(Config{Present: []string{"busybox"}, Now: clk.Now})
	start := func(uid, ns, pod, name string, command ...string) string {
		id, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: uid, PodName: pod, Namespace: ns, Name: name, Image: "busybox", Command: command})
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	pods := [][2]string{{"ns", "a"}, {"ns", "b"}, {"other", "a"}, {"ns", "none"}}
	check := func(when string) {
		t.Helper()
		all, err := r.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range pods {
			var want []kubelet.Container
			for _, c := range all {
				if c.Namespace == p[0] && c.PodName == p[1] {
					want = append(want, c)
				}
			}
			got, err := r.ListPod(ctx, p[0], p[1])
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("%s: ListPod(%s, %s) = %+v, want %+v", when, p[0], p[1], got, want)
			}
		}
	}
	check("empty")
	old := start("u1", "ns", "a", "app", "sleep", "3600")
	start("u2", "ns", "a", "app", "sleep", "10") // the pod a again, a later UID
	side := start("u2", "ns", "a", "side", "sleep", "3600")
	start("u3", "ns", "b", "app", "sleep", "3600")
	start("u4", "other", "a", "app", "sleep", "3600")
	check("created")
	clk.Add(10 * time.Second)
	check("one exited on its schedule")
	if err := r.Remove(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := r.Stop(ctx, side, time.Second); err != nil {
		t.Fatal(err)
	}
	check("one removed, one stopped")
	l, _ := r.List(ctx)
	for _, c := range l {
		if err := r.Remove(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
	}
	check("all removed")
	if len(r.byPod) != 0 {
		t.Errorf("%d pods indexed after every container was removed", len(r.byPod))
	}
}
