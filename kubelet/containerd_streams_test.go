package kubelet_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/test/waitfor"
)

// lockedBuffer is a bytes.Buffer safe to read while a stream writes it.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// listeningPort is the TCP port the first process of pod's container listens on, read
// from the kernel's socket tables: the pod binds port 0, so that no other process can
// take its port between a choice and the bind (pods use the host's network).
func listeningPort(e *env, pod string) int {
	e.t.Helper()
	// The inodes of pid 1's sockets, then the listening (state 0A) sockets among them;
	// the local address's port is hexadecimal.
	const script = `for f in /proc/1/fd/*; do readlink "$f"; done | sed -n 's/^socket:\[\([0-9]*\)\]$/\1/p' |
awk 'NR == FNR { ino[$1]; next } $4 == "0A" && ($10 in ino) { split($2, a, ":"); print a[2] }' - /proc/net/tcp /proc/net/tcp6`
	var port int64
	waitfor.Condition(e.t, 30*time.Second, "pod "+pod+" listening", func() (bool, string) {
		var out, errb bytes.Buffer
		err := e.cs.Conn.Exec(e.ctx, e.ns, pod, client.ExecOptions{Command: []string{"sh", "-c", script}, Stdout: &out, Stderr: &errb})
		if err != nil {
			return false, fmt.Sprintf("%v: %s", err, errb.String())
		}
		hex, _, _ := strings.Cut(out.String(), "\n")
		port, err = strconv.ParseInt(hex, 16, 32)
		return err == nil && port > 0, fmt.Sprintf("ports %q", out.String())
	})
	return int(port)
}

// closedPort is a loopback TCP port that refuses connections until the test ends: a
// socket bound to it and never listening keeps any other process from listening there.
func closedPort(e *env) int {
	e.t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		e.t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		e.t.Fatal(err)
	}
	return sa.(*unix.SockaddrInet4).Port
}

// testContainerdStreams: exec, a terminal session and port-forward into real
// containers, through the API server and the kubelet's stream server.
func testContainerdStreams(e *env, rt *containerd.Runtime) {
	t := e.t
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ls := kubelet.NewLogServer(nil)
	ls.Register(e.node, rt)
	done := make(chan error, 1)
	go func() { done <- ls.Serve(e.ctx, ln, nil) }()
	t.Cleanup(func() { <-done })
	cfg := testConfig(e.node)
	cfg.NodeIP, cfg.LogPort = "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
	e.start(rt, cfg)
	e.createPod("shell", e.node, "", busyboxImage, "sleep", "3600")
	e.createPod("nc", e.node, "", busyboxImage, "nc", "-ll", "-p", "0", "-e", "cat")
	e.createPod("httpd", e.node, "", busyboxImage, "sh", "-c",
		"mkdir -p /www && echo hello from httpd > /www/index.html && exec httpd -f -p 127.0.0.1:0 -h /www")
	// Without a terminal, one writing on both streams (binary logging), one with stdin
	// (its streams FIFOs the runtime logs).
	both := `while true; do echo to stdout; echo to stderr >&2; sleep 0.1; done`
	e.createPod("both", e.node, "", busyboxImage, "sh", "-c", both)
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "both-stdin"}, Spec: corev1.PodSpec{HostNetwork: true,
		Containers: []corev1.Container{{Name: "main", Image: busyboxImage, Command: []string{"sh", "-c", both}, Stdin: true}}}})
	for _, name := range []string{"shell", "nc", "httpd", "both", "both-stdin"} {
		e.waitPod(name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	}
	nc, http := listeningPort(e, "nc"), listeningPort(e, "httpd")
	conn := e.cs.Conn
	exec := func(opts client.ExecOptions) (string, string, error) {
		var out, errb bytes.Buffer
		opts.Stdout, opts.Stderr = &out, &errb
		err := conn.Exec(e.ctx, e.ns, "shell", opts)
		return out.String(), errb.String(), err
	}

	if out, _, err := exec(client.ExecOptions{Command: []string{"echo", "hello", "from", "containerd"}}); err != nil || out != "hello from containerd\n" {
		t.Errorf("exec echo: %q, %v", out, err)
	}
	_, errs, err := exec(client.ExecOptions{Command: []string{"sh", "-c", "echo oops >&2; exit 7"}})
	var exit *client.ExitError
	if !errors.As(err, &exit) || exit.Code != 7 || errs != "oops\n" {
		t.Errorf("exec exit 7: %v, stderr %q", err, errs)
	}
	big := strings.Repeat("round trip\n", 30_000)
	if out, _, err := exec(client.ExecOptions{Command: []string{"cat"}, Stdin: strings.NewReader(big)}); err != nil || out != big {
		t.Errorf("exec cat: %d bytes back of %d, %v", len(out), len(big), err)
	}
	// The container's environment and working directory are the exec's.
	if out, _, err := exec(client.ExecOptions{Command: []string{"sh", "-c", "echo $PATH; pwd"}}); err != nil || out != "/bin\n/\n" {
		t.Errorf("exec env and pwd: %q, %v", out, err)
	}
	_, _, err = exec(client.ExecOptions{Command: []string{"no-such-command"}})
	if status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "error executing command in container") || !strings.Contains(err.Error(), "no-such-command") {
		t.Errorf("exec of a missing executable: %v", err)
	}

	// A terminal: its size at start, a resize, input typed, and the exit code.
	stdin, typed := io.Pipe()
	resize := make(chan client.TerminalSize)
	var screen lockedBuffer
	ended := make(chan error, 1)
	go func() {
		ended <- conn.Exec(e.ctx, e.ns, "shell", client.ExecOptions{Command: []string{"sh"}, Stdin: stdin, Stdout: &screen,
			TTY: true, Size: client.TerminalSize{Width: 80, Height: 24}, Resize: resize})
	}()
	typeLine := func(s string) {
		if _, err := typed.Write([]byte(s + "\n")); err != nil {
			t.Fatalf("type %q: %v", s, err)
		}
	}
	typeLine("tty; stty size")
	waitfor.Condition(t, 30*time.Second, "the terminal's size at start", func() (bool, string) {
		return strings.Contains(screen.String(), "/dev/pts/") && strings.Contains(screen.String(), "\r\n24 80\r\n"), screen.String()
	})
	resize <- client.TerminalSize{Width: 132, Height: 50}
	waitfor.Condition(t, 30*time.Second, "the terminal resized", func() (bool, string) {
		typeLine("stty size") // a resize is applied beside the input, not in its order
		return strings.Contains(screen.String(), "\r\n50 132\r\n"), screen.String()
	})
	typeLine("exit 5")
	if err := <-ended; !errors.As(err, &exit) || exit.Code != 5 {
		t.Errorf("a terminal session ending with exit 5: %v; screen %q", err, screen.String())
	}

	// Port-forward: to nc, which echoes until we half-close; to httpd.
	fc, err := conn.PortForward(e.ctx, e.ns, "nc", nc)
	if err != nil {
		t.Fatal(err)
	}
	msg := strings.Repeat("ping\n", 20_000)
	go func() {
		fc.Write([]byte(msg))
		fc.CloseWrite()
	}()
	got, err := io.ReadAll(fc)
	fc.Close()
	if err != nil || string(got) != msg {
		t.Errorf("port-forward to nc: %d bytes back of %d, %v", len(got), len(msg), err)
	}
	fc, err = conn.PortForward(e.ctx, e.ns, "httpd", http)
	if err != nil {
		t.Fatal(err)
	}
	fc.Write([]byte("GET /index.html HTTP/1.0\r\n\r\n"))
	got, err = io.ReadAll(fc)
	fc.Close()
	if err != nil || !strings.HasPrefix(string(got), "HTTP/1.") || !strings.HasSuffix(string(got), "\r\n\r\nhello from httpd\n") {
		t.Errorf("port-forward to httpd: %q, %v", got, err)
	}
	if _, err := conn.PortForward(e.ctx, e.ns, "shell", closedPort(e)); status.Code(err) != codes.FailedPrecondition || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("port-forward to a port nobody listens on: %v", err)
	}

	// Attach without a terminal: each stream's lines on their own, until it detaches.
	for _, pod := range []string{"both", "both-stdin"} {
		var stdout, stderr lockedBuffer
		ctx, detach := context.WithCancel(e.ctx)
		ended := make(chan error, 1)
		go func() { ended <- conn.Attach(ctx, e.ns, pod, client.ExecOptions{Stdout: &stdout, Stderr: &stderr}) }()
		waitfor.Condition(t, 30*time.Second, "attach to "+pod+" showing both streams", func() (bool, string) {
			return strings.Count(stdout.String(), "\n") >= 3 && strings.Count(stderr.String(), "\n") >= 3,
				fmt.Sprintf("stdout %q, stderr %q", stdout.String(), stderr.String())
		})
		detach()
		if err := <-ended; status.Code(err) != codes.Canceled && !errors.Is(err, context.Canceled) {
			t.Errorf("attach to %s, detached: %v", pod, err)
		}
		out, errs := stdout.String(), stderr.String()
		if strings.ReplaceAll(out, "to stdout\n", "") != "" || strings.ReplaceAll(errs, "to stderr\n", "") != "" {
			t.Errorf("attach to %s: stdout %q, stderr %q; want only stdout's lines on stdout and stderr's on stderr", pod, out, errs)
		}
	}
}
