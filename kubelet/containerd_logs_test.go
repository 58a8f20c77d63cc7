package kubelet_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/credentials/insecure"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/kubelet/crilog"
	kubeletv1 "github.com/skiffhq/skiff/proto/kubelet/v1"
	"github.com/skiffhq/skiff/test/containerdtest"
	"github.com/skiffhq/skiff/test/waitfor"
)

// logKubelet is what of a kubelet serves logs: its runtime and its log server.
type logKubelet struct {
	rt   *containerd.Runtime
	c    kubeletv1.KubeletLogsClient
	stop func()
}

func startLogKubelet(t *testing.T, ctx context.Context, cfg containerd.Config) *logKubelet {
	t.Helper()
	rt, err := containerd.New(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ls := kubelet.NewLogServer(nil)
	ls.Register("n1", rt)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- ls.Serve(sctx, ln, nil) }()
	k := &logKubelet{rt: rt, c: logsClient(t, ln.Addr().String(), insecure.NewCredentials())}
	stopped := false
	k.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("log server: %v", err)
		}
		rt.Close()
	}
	t.Cleanup(k.stop)
	return k
}

// TestContainerdLogsTimestamps runs a container on a private containerd (root and the
// containerd binaries, else it skips) that writes to stdout and stderr, with a line
// longer than a log record: its output comes back through the log server as it was
// written, and with --timestamps each line prefixed with the time it was written. The
// kubelet then stops: the container goes on logging (the logging program belongs to
// containerd's shim), and a new kubelet serves all of it and follows what comes next.
func TestContainerdLogsTimestamps(t *testing.T) {
	socket := containerdtest.Start(t)
	data, err := containerd.BusyboxArchive("/bin/busybox", busyboxImage)
	if err != nil {
		t.Skipf("no static busybox to build a test image from: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cfg := containerd.Config{Socket: socket, Namespace: "skiff-logs", LogDir: t.TempDir()}
	k1 := startLogKubelet(t, ctx, cfg)
	if _, err := k1.rt.Import(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	long := crilog.MaxLine + 100
	script := fmt.Sprintf(`head -c %d /dev/zero | tr '\0' x; echo; i=0; while true; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); sleep 0.1; done`, long)
	id, err := k1.rt.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "uid-logs", PodName: "talker", Namespace: "default", Name: "main",
		Image: busyboxImage, Command: []string{"sh", "-c", script}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		rt, err := containerd.New(context.Background(), cfg)
		if err == nil {
			rt.Remove(context.Background(), id)
			rt.Close()
		}
	})
	req := func(timestamps bool) *kubeletv1.ContainerLogsRequest {
		return &kubeletv1.ContainerLogsRequest{NodeName: "n1", Namespace: "default", Pod: "talker", Container: "main", Timestamps: timestamps}
	}
	longLine := strings.Repeat("x", long) + "\n"
	// outLines is the highest "out N" in plain output (-1: none).
	outLines := func(plain string) int {
		n := -1
		for _, m := range regexp.MustCompile(`(?m)^out (\d+)$`).FindAllStringSubmatch(plain, -1) {
			i, _ := strconv.Atoi(m[1])
			n = max(n, i)
		}
		return n
	}
	var plain string
	waitfor.ConditionErr(t, 30*time.Second, "three lines on each stream", func() (bool, error) {
		plain, err = readLogs(ctx, k1.c, req(false))
		return strings.Contains(plain, "out 2\n") && strings.Contains(plain, "err 2\n"), err
	})
	// The logging program copies stdout and stderr each on its own, so a stderr record may
	// land between the long line's two stdout records (Kubernetes' kubelet prints them in
	// that order too): without the stderr lines, the output begins with the long line whole.
	if out := regexp.MustCompile(`err \d+\n`).ReplaceAllString(plain, ""); !strings.HasPrefix(out, longLine+"out 0\n") {
		t.Fatalf("plain logs begin %.60q..., want the long line whole, then out 0 (stderr's lines aside)", strings.TrimLeft(plain, "x"))
	}

	// With timestamps: the same lines, each with a time from this test's span, in order.
	begun := time.Now().Add(-time.Minute)
	checkTimestamps := func(stamped, plain string) {
		t.Helper()
		lines := strings.SplitAfter(stamped, "\n")
		var stripped strings.Builder
		var last time.Time
		for _, l := range lines[:len(lines)-1] {
			ts, rest, ok := strings.Cut(l, " ")
			at, err := time.Parse(time.RFC3339Nano, ts)
			if !ok || err != nil || at.Before(begun) || at.After(time.Now().Add(time.Minute)) || at.Before(last) {
				t.Fatalf("line %.80q: want a time since the test began, after the last (%v), then the output (%v)", l, last, err)
			}
			last = at
			stripped.WriteString(rest)
		}
		// The container went on writing between the two reads: one is the other's start.
		s := stripped.String()
		if !strings.HasPrefix(s, plain) && !strings.HasPrefix(plain, s) {
			t.Fatalf("timestamped lines without their times:\n%.200q\nplain:\n%.200q", s, plain)
		}
	}
	stamped, err := readLogs(ctx, k1.c, req(true))
	if err != nil {
		t.Fatal(err)
	}
	checkTimestamps(stamped, plain)
	if strings.Count(stamped, "x") != long {
		t.Errorf("the long line (two records) has %d x, want %d", strings.Count(stamped, "x"), long)
	}

	// The kubelet stops; the container keeps writing to its log meanwhile.
	seen := outLines(plain)
	k1.stop()
	logFile := filepath.Join(cfg.LogDir, id+".log")
	waitfor.ConditionErr(t, 30*time.Second, "lines written while no kubelet runs", func() (bool, error) {
		b, err := os.ReadFile(logFile)
		var out bytes.Buffer
		crilog.NewDecoder(crilog.NewPrinter(&out, crilog.Options{})).Write(b)
		return outLines(out.String()) >= seen+3, err
	})

	k2 := startLogKubelet(t, ctx, cfg)
	after, err := readLogs(ctx, k2.c, req(false))
	if err != nil || !strings.HasPrefix(after, plain) || outLines(after) < seen+3 {
		t.Fatalf("after the kubelet's restart the logs have up to out %d, %v; want all of before (up to out %d) and 3 more", outLines(after), err, seen)
	}
	stamped, err = readLogs(ctx, k2.c, req(true))
	if err != nil {
		t.Fatal(err)
	}
	checkTimestamps(stamped, after)

	// Following with timestamps from the last line gets the lines that come next.
	fctx, fcancel := context.WithCancel(ctx)
	defer fcancel()
	freq := req(true)
	freq.Follow, freq.TailLines = true, ptr.To[int64](1)
	s, err := k2.c.ContainerLogs(fctx, freq)
	if err != nil {
		t.Fatal(err)
	}
	var followed strings.Builder
	now := outLines(after)
	for outLines(regexp.MustCompile(`(?m)^\S+ `).ReplaceAllString(followed.String(), "")) < now+3 {
		chunk, err := s.Recv()
		if err != nil {
			t.Fatalf("follow ended: %v, after %q", err, followed.String())
		}
		followed.Write(chunk.GetData())
	}
	if f := followed.String(); strings.Count(f, "\n") > 10 || !regexp.MustCompile(`(?m)\A(\S+Z (out|err) \d+\n)+`).MatchString(f) {
		t.Errorf("followed %q: want a few timestamped lines from the end", f)
	}
}
