package kubelet_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/sim"
	"github.com/skiffhq/skiff/pki"
	kubeletv1 "github.com/skiffhq/skiff/proto/kubelet/v1"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// serveLogs runs a LogServer on a free loopback port until the test ends; it returns
// the address.
func serveLogs(t *testing.T, ls *kubelet.LogServer, tc *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- ls.Serve(ctx, ln, tc) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("log server: %v", err)
		}
	})
	return ln.Addr().String()
}

func logsClient(t *testing.T, addr string, creds credentials.TransportCredentials) kubeletv1.KubeletLogsClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cc.Close() })
	return kubeletv1.NewKubeletLogsClient(cc)
}

// readLogs reads a whole stream.
func readLogs(ctx context.Context, c kubeletv1.KubeletLogsClient, req *kubeletv1.ContainerLogsRequest) (string, error) {
	s, err := c.ContainerLogs(ctx, req)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	for {
		chunk, err := s.Recv()
		if errors.Is(err, io.EOF) {
			return b.String(), nil
		}
		if err != nil {
			return b.String(), err
		}
		b.Write(chunk.GetData())
	}
}

func start(t *testing.T, ctx context.Context, rt *sim.Runtime, pod, uid, name string, attempt int, command ...string) string {
	t.Helper()
	id, err := rt.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: uid, PodName: pod, Namespace: "default", Name: name, Image: "busybox", Attempt: attempt, Command: command})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestLogServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w1, w2 := sim.New(sim.Config{Present: []string{"busybox"}}), sim.New(sim.Config{Present: []string{"busybox"}})
	ls := kubelet.NewLogServer(nil)
	ls.Register("w1", w1)
	ls.Register("w2", w2)
	c := logsClient(t, serveLogs(t, ls, nil), insecure.NewCredentials())

	// A restarted container: its latest attempt is the one shown.
	old := start(t, ctx, w1, "web", "uid-1", "app", 0, "sh", "-c", "echo first run; exit 1")
	start(t, ctx, w1, "web", "uid-1", "app", 1, "sh", "-c", "echo second run; sleep 3600")
	req := &kubeletv1.ContainerLogsRequest{NodeName: "w1", Namespace: "default", Pod: "web", PodUid: "uid-1", Container: "app"}
	got, err := readLogs(ctx, c, req)
	if err != nil || !strings.Contains(got, "second run\n") || strings.Contains(got, "first run") {
		t.Fatalf("logs of the restarted container = %q, %v; want its second run's only", got, err)
	}
	// --previous: the run before the latest, which the kubelet keeps.
	prev := &kubeletv1.ContainerLogsRequest{NodeName: "w1", Namespace: "default", Pod: "web", PodUid: "uid-1", Container: "app", Previous: true}
	if got, err := readLogs(ctx, c, prev); err != nil || !strings.Contains(got, "first run\n") || strings.Contains(got, "second run") {
		t.Fatalf("previous logs = %q, %v; want the first run's only", got, err)
	}
	if err := w1.Remove(ctx, old); err != nil {
		t.Fatal(err)
	}
	if _, err := readLogs(ctx, c, prev); status.Code(err) != codes.FailedPrecondition ||
		status.Convert(err).Message() != `previous terminated container "app" in pod "web" not found` {
		t.Errorf("previous logs without a previous run: %v", err)
	}

	for _, tc := range []struct {
		name string
		req  *kubeletv1.ContainerLogsRequest
		code codes.Code
		msg  string
	}{
		{"unknown node", &kubeletv1.ContainerLogsRequest{NodeName: "w3", Namespace: "default", Pod: "web", Container: "app"},
			codes.NotFound, `node "w3" is not served by this kubelet (it serves w1, w2)`},
		{"container of another node", &kubeletv1.ContainerLogsRequest{NodeName: "w2", Namespace: "default", Pod: "web", Container: "app"},
			codes.FailedPrecondition, `container "app" in pod default/web has not started on node w2`},
		{"unknown container", &kubeletv1.ContainerLogsRequest{NodeName: "w1", Namespace: "default", Pod: "web", Container: "db"},
			codes.FailedPrecondition, `container "db" in pod default/web has not started on node w1`},
		{"pod recreated under the same name", &kubeletv1.ContainerLogsRequest{NodeName: "w1", Namespace: "default", Pod: "web", PodUid: "uid-2", Container: "app"},
			codes.FailedPrecondition, `has not started`},
	} {
		_, err := readLogs(ctx, c, tc.req)
		if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
			t.Errorf("%s: got %v, want %v containing %q", tc.name, err, tc.code, tc.msg)
		}
	}

	// Tails: the last lines so far, then, following, what comes after them.
	start(t, ctx, w1, "abc", "uid-4", "main", 0, "sh", "-c", "echo a; echo b; echo c; sleep 3600")
	tail := func(n int64) *kubeletv1.ContainerLogsRequest {
		return &kubeletv1.ContainerLogsRequest{NodeName: "w1", Namespace: "default", Pod: "abc", Container: "main", TailLines: &n}
	}
	for n, want := range map[int64]string{0: "", 2: "b\nc\n", 3: "a\nb\nc\n"} {
		if got, err := readLogs(ctx, c, tail(n)); err != nil || got != want {
			t.Errorf("tail %d = %q, %v; want %q", n, got, err, want)
		}
	}
	if got, err := readLogs(ctx, c, tail(100)); err != nil || !strings.HasPrefix(got, "sim: container main started") || !strings.HasSuffix(got, "a\nb\nc\n") {
		t.Errorf("tail 100 = %q, %v; want everything", got, err)
	}

	// Following streams lines as they are written and ends when the container exits.
	id := start(t, ctx, w2, "job", "uid-3", "main", 0, "sleep", "3600")
	freq := &kubeletv1.ContainerLogsRequest{NodeName: "w2", Namespace: "default", Pod: "job", Container: "main", Follow: true}
	s, err := c.ContainerLogs(ctx, freq)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var followed bytes.Buffer
	done := make(chan error, 1)
	go func() {
		for {
			chunk, err := s.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					err = nil
				}
				done <- err
				return
			}
			mu.Lock()
			followed.Write(chunk.GetData())
			mu.Unlock()
		}
	}()
	if err := w2.Write(id, "working 1", "working 2"); err != nil {
		t.Fatal(err)
	}
	waitText := func(want string) {
		t.Helper()
		for {
			mu.Lock()
			got := followed.String()
			mu.Unlock()
			if strings.Contains(got, want) {
				return
			}
			select {
			case err := <-done:
				t.Fatalf("follow ended early (%v) with %q, want %q", err, got, want)
			case <-ctx.Done():
				t.Fatalf("follow has %q, want %q", got, want)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	waitText("working 1\nworking 2\n")
	if err := w2.Exit(id, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("follow: %v", err)
	}
	waitText("working 2\nsim: container main exited with code 0\n")

	// A tailed follow: the last line so far, then the new ones, nothing twice.
	id = start(t, ctx, w2, "tailed", "uid-5", "main", 0, "sh", "-c", "echo one; echo two; sleep 3600")
	if err := w2.Write(id, "three"); err != nil {
		t.Fatal(err)
	}
	one := int64(1)
	ts, err := c.ContainerLogs(ctx, &kubeletv1.ContainerLogsRequest{NodeName: "w2", Namespace: "default", Pod: "tailed", Container: "main", Follow: true, TailLines: &one})
	if err != nil {
		t.Fatal(err)
	}
	chunk, err := ts.Recv()
	if err != nil || string(chunk.GetData()) != "three\n" {
		t.Fatalf("tail 1 sent %q, %v; want the last line", chunk.GetData(), err)
	}
	if err := w2.Write(id, "four"); err != nil {
		t.Fatal(err)
	}
	if err := w2.Exit(id, 0); err != nil {
		t.Fatal(err)
	}
	var rest bytes.Buffer
	for {
		chunk, err := ts.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		rest.Write(chunk.GetData())
	}
	if rest.String() != "four\nsim: container main exited with code 0\n" {
		t.Fatalf("follow after tail 1 sent %q", rest.String())
	}
}

// TestLogServerTLS: a kubelet's log server accepts only API servers' certificates, and
// an API server accepts only the node's own kubelet certificate.
func TestLogServerTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	dir := apicluster.Certs(t, "w1", "w2")
	reloader := func(name string) *pki.Reloader {
		r, err := pki.NewReloader(filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key"), filepath.Join(dir, pki.CACertFile))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	rt := sim.New(sim.Config{Present: []string{"busybox"}})
	start(t, ctx, rt, "web", "uid-1", "app", 0, "sh", "-c", "echo hello; sleep 3600")
	ls := kubelet.NewLogServer(nil)
	ls.Register("w1", rt)
	addr := serveLogs(t, ls, reloader("kubelet-w1").KubeletServerTLS())
	req := &kubeletv1.ContainerLogsRequest{NodeName: "w1", Namespace: "default", Pod: "web", Container: "app"}

	api := reloader("apiserver")
	got, err := readLogs(ctx, logsClient(t, addr, credentials.NewTLS(api.KubeletClientTLS("w1"))), req)
	if err != nil || !strings.Contains(got, "hello\n") {
		t.Fatalf("API server reading node w1's logs: %q, %v", got, err)
	}
	// The API server refuses a kubelet that presents another node's certificate.
	if _, err := readLogs(ctx, logsClient(t, addr, credentials.NewTLS(api.KubeletClientTLS("w2"))), req); err == nil ||
		!strings.Contains(err.Error(), `kubelet certificate of node w2: it is`) {
		t.Fatalf("API server dialing w2 and meeting w1's certificate: %v", err)
	}
	// Only API servers may call a kubelet: not an admin, not another kubelet.
	for _, name := range []string{"admin", "kubelet-w2"} {
		tc := reloader(name).ClientTLS()
		tc.VerifyConnection = nil // this test is about the server's check
		if _, err := readLogs(ctx, logsClient(t, addr, credentials.NewTLS(tc)), req); err == nil {
			t.Errorf("%s read a kubelet's logs directly", name)
		} else {
			t.Logf("%s refused: %v", name, err)
		}
	}
}

// TestStreamServer calls the kubelet's KubeletStreams directly, on simulated nodes:
// exec's output and exit code, and the refusals, which name the node, pod and container.
func TestStreamServer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w1 := sim.New(sim.Config{Present: []string{"busybox"}})
	ls := kubelet.NewLogServer(nil)
	ls.Register("w1", w1)
	addr := serveLogs(t, ls, nil)
	cc, err := grpc.NewClient("passthrough:///"+addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	c := kubeletv1.NewKubeletStreamsClient(cc)
	start(t, ctx, w1, "web", "uid-1", "app", 0, "sleep", "3600")
	start(t, ctx, w1, "done", "uid-2", "app", 0, "sh", "-c", "exit 0")

	// exec runs start's command: output, then the exit code, then the end.
	exec := func(in ...*kubeletv1.ExecInput) ([]*kubeletv1.ExecOutput, error) {
		s, err := c.Exec(ctx)
		if err != nil {
			return nil, err
		}
		for _, m := range in {
			if err := s.Send(m); err != nil {
				break
			}
		}
		s.CloseSend()
		var out []*kubeletv1.ExecOutput
		for {
			m, err := s.Recv()
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			if err != nil {
				return out, err
			}
			out = append(out, m)
		}
	}
	startMsg := func(node, pod, container string, command ...string) *kubeletv1.ExecInput {
		return &kubeletv1.ExecInput{Msg: &kubeletv1.ExecInput_Start{Start: &kubeletv1.ExecStart{
			NodeName: node, Namespace: "default", Pod: pod, Container: container, Command: command}}}
	}
	out, err := exec(startMsg("w1", "web", "app", "sh", "-c", "echo hi; exit 2"))
	if err != nil || len(out) != 3 || !out[0].GetStarted() || string(out[1].GetStdout()) != "hi\n" || out[2].GetExitCode() != 2 {
		t.Errorf("exec: %v, %v; want started, stdout hi, exit code 2", out, err)
	}
	for _, tc := range []struct {
		name string
		in   *kubeletv1.ExecInput
		code codes.Code
		msg  string
	}{
		{"no start", &kubeletv1.ExecInput{Msg: &kubeletv1.ExecInput_Stdin{Stdin: []byte("x")}}, codes.InvalidArgument, "the first message must be start"},
		{"unknown node", startMsg("w9", "web", "app", "true"), codes.NotFound, `node "w9" is not served by this kubelet (it serves w1)`},
		{"no command", startMsg("w1", "web", "app"), codes.InvalidArgument, "start.command: Required value"},
		{"unknown container", startMsg("w1", "web", "db", "true"), codes.FailedPrecondition, `container "db" in pod default/web has not started on node w1`},
		{"an exited container", startMsg("w1", "done", "app", "true"), codes.FailedPrecondition, `container "app" in pod default/done is not running on node w1 (it is exited)`},
	} {
		_, err := exec(tc.in)
		if status.Code(err) != tc.code || !strings.Contains(status.Convert(err).Message(), tc.msg) {
			t.Errorf("%s: got %v, want %v containing %q", tc.name, err, tc.code, tc.msg)
		}
	}

	testAttachStreams(t, ctx, c, w1)

	pf, err := c.PortForward(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pf.Send(&kubeletv1.PortForwardInput{Msg: &kubeletv1.PortForwardInput_Start{Start: &kubeletv1.PortForwardStart{
		NodeName: "w1", Namespace: "default", Pod: "done", Port: 80}}})
	if _, err := pf.Recv(); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "pod default/done on node w1 has no running container") {
		t.Errorf("port-forward to a pod without a running container: %v", err)
	}
}

// testAttachStreams attaches to a container without a terminal that writes on both
// streams: each stream's lines come as its own messages, from the attach on, until the
// container exits.
func testAttachStreams(t *testing.T, ctx context.Context, c kubeletv1.KubeletStreamsClient, w1 *sim.Runtime) {
	id := start(t, ctx, w1, "both", "uid-3", "app", 0, "sleep", "3600")
	if err := w1.WriteErr(id, "before the attach"); err != nil {
		t.Fatal(err)
	}
	s, err := c.Attach(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.Send(&kubeletv1.ExecInput{Msg: &kubeletv1.ExecInput_Start{Start: &kubeletv1.ExecStart{
		NodeName: "w1", Namespace: "default", Pod: "both", Container: "app"}}})
	s.CloseSend()
	var stdout, stderr lockedBuffer
	ended := make(chan error, 1)
	go func() {
		for {
			m, err := s.Recv()
			if err != nil {
				ended <- err
				return
			}
			stdout.Write(m.GetStdout())
			stderr.Write(m.GetStderr())
		}
	}()
	// The attach follows from when it read the log: a line written before may not come.
	waitfor.Condition(t, 10*time.Second, "the attach following the output", func() (bool, string) {
		if err := w1.Write(id, "tick"); err != nil {
			t.Fatal(err)
		}
		return strings.Contains(stdout.String(), "tick\n"), stdout.String()
	})
	if err := w1.WriteErr(id, "oops on stderr"); err != nil {
		t.Fatal(err)
	}
	if err := w1.Write(id, "fine on stdout"); err != nil {
		t.Fatal(err)
	}
	if err := w1.WriteErr(id, "oops again"); err != nil {
		t.Fatal(err)
	}
	if err := w1.Exit(id, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-ended; !errors.Is(err, io.EOF) {
		t.Errorf("attach: %v, want its end when the container exited", err)
	}
	out := stdout.String()
	if !strings.HasSuffix(out, "tick\nfine on stdout\nsim: container app exited with code 0\n") || strings.Contains(out, "oops") {
		t.Errorf("attach's stdout: %q; want the ticks, the stdout line and the exit, and none of stderr's", out)
	}
	if got := stderr.String(); got != "oops on stderr\noops again\n" {
		t.Errorf("attach's stderr: %q, want the two lines written on stderr since it attached", got)
	}
}
