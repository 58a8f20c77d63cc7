package apiserver_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
)

// execOut runs a command in pod web and returns its stdout, stderr and error.
func execOut(ctx context.Context, conn *client.Conn, pod string, opts client.ExecOptions) (string, string, error) {
	var out, errb bytes.Buffer
	opts.Stdout, opts.Stderr = &out, &errb
	err := conn.Exec(ctx, "default", pod, opts)
	return out.String(), errb.String(), err
}

// waitRunning waits until pod's container runs on its simulated node: exec answers.
func waitRunning(t *testing.T, ctx context.Context, conn *client.Conn, pod string) {
	t.Helper()
	for {
		_, _, err := execOut(ctx, conn, pod, client.ExecOptions{Command: []string{"true"}})
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("exec in pod %s: %v", pod, err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestPodExec runs commands in a simulated node's container through the API server and
// the kubelet: output, exit codes, input, a terminal and its resizes, and the errors.
func TestPodExec(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	rt := logsNode(t, cs, "w1", nil)
	createPod(t, ctx, cs, "web", "w1")
	waitRunning(t, ctx, conn, "web")

	out, _, err := execOut(ctx, conn, "web", client.ExecOptions{Command: []string{"echo", "hello", "world"}})
	if err != nil || out != "hello world\n" {
		t.Errorf("exec echo: %q, %v", out, err)
	}
	_, _, err = execOut(ctx, conn, "web", client.ExecOptions{Command: []string{"sh", "-c", "echo failing; exit 3"}})
	var exit *client.ExitError
	if !errors.As(err, &exit) || exit.Code != 3 || err.Error() != "command terminated with exit code 3" {
		t.Errorf("exec exit 3: %v", err)
	}
	// Input: what is sent comes back, and its end ends cat.
	big := strings.Repeat("round trip ", 20_000) // several chunks
	out, _, err = execOut(ctx, conn, "web", client.ExecOptions{Command: []string{"cat"}, Stdin: strings.NewReader(big)})
	if err != nil || out != big {
		t.Errorf("exec cat: %d bytes back of %d, %v", len(out), len(big), err)
	}
	// A terminal: its size at start, then after a resize (sent before the input ends).
	out, _, err = execOut(ctx, conn, "web", client.ExecOptions{Command: []string{"stty", "size"}, TTY: true, Size: client.TerminalSize{Width: 80, Height: 24}})
	if err != nil || out != "24 80\n" {
		t.Errorf("exec stty size in a 80x24 terminal: %q, %v", out, err)
	}
	stdin, input := io.Pipe()
	resize := make(chan client.TerminalSize)
	done := make(chan error, 1)
	var tty syncBuffer
	go func() {
		done <- conn.Exec(ctx, "default", "web", client.ExecOptions{Command: []string{"sh", "-c", "cat; stty size"}, Stdin: stdin,
			Stdout: &tty, TTY: true, Size: client.TerminalSize{Width: 80, Height: 24}, Resize: resize})
	}()
	if _, err := input.Write([]byte("typed\n")); err != nil {
		t.Fatal(err)
	}
	resize <- client.TerminalSize{Width: 132, Height: 50}
	input.Close()
	if err := <-done; err != nil || tty.String() != "typed\n50 132\n" {
		t.Errorf("exec in a resized terminal: %q, %v", tty.String(), err)
	}

	// Attach: the output from now on, until the container exits.
	var attached syncBuffer
	go func() { done <- conn.Attach(ctx, "default", "web", client.ExecOptions{Stdout: &attached}) }()
	ctrs, _ := rt.List(ctx)
	for i := 0; !strings.Contains(attached.String(), "tick"); i++ {
		if err := rt.Write(ctrs[0].ID, "tick"); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			t.Fatalf("attach ended early: %v, %q", err, attached.String())
		case <-ctx.Done():
			t.Fatal("attach shows nothing")
		case <-time.After(10 * time.Millisecond):
		}
	}
	if err := rt.Exit(ctrs[0].ID, 0); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil || strings.Contains(attached.String(), "hello from web") || !strings.HasSuffix(attached.String(), "sim: container app exited with code 0\n") {
		t.Errorf("attach: %q, %v; want the output since it attached, to the exit", attached.String(), err)
	}

	// Errors name the problem.
	createPod(t, ctx, cs, "two", "w1",
		corev1.Container{Name: "a", Image: "busybox"}, corev1.Container{Name: "b", Image: "busybox"})
	createPod(t, ctx, cs, "pending", "")
	createPod(t, ctx, cs, "live", "w1")
	waitRunning(t, ctx, conn, "live")
	echo := []string{"echo", "hi"}
	for _, tc := range []struct {
		what string
		pod  string
		opts client.ExecOptions
		code codes.Code
		msg  string
	}{
		{"no such pod", "nope", client.ExecOptions{Command: echo}, codes.NotFound, `pods "nope" not found`},
		{"a pod without a node", "pending", client.ExecOptions{Command: echo}, codes.FailedPrecondition, `pod "pending" is not scheduled to a node yet: cannot exec into it`},
		{"no command", "live", client.ExecOptions{}, codes.InvalidArgument, "you must specify at least one command for the container"},
		{"no container named", "two", client.ExecOptions{Command: echo}, codes.InvalidArgument, "a container name must be specified for pod two, choose one of: [a b]"},
		{"an exited container", "web", client.ExecOptions{Command: echo}, codes.FailedPrecondition, `container "app" in pod default/web is not running on node w1 (it is exited)`},
		{"a command the simulation does not know", "live", client.ExecOptions{Command: []string{"ls", "/"}}, codes.Internal, `error executing command in container "app" in pod default/live on node w1: exec in simulated container`},
	} {
		_, _, err := execOut(ctx, conn, tc.pod, tc.opts)
		wantDenied(t, tc.what, err, tc.code, tc.msg)
	}
	err = conn.Attach(ctx, "default", "live", client.ExecOptions{Stdin: strings.NewReader("x")})
	wantDenied(t, "attach with stdin", err, codes.FailedPrecondition, `container "app" in pod default/live was not started with stdin`)
	// A simulated container has no input, with a terminal or without.
	sleep := []string{"sleep", "3600"}
	createPod(t, ctx, cs, "stdin", "w1", corev1.Container{Name: "app", Image: "busybox", Command: sleep, Stdin: true})
	createPod(t, ctx, cs, "tty", "w1", corev1.Container{Name: "app", Image: "busybox", Command: sleep, Stdin: true, TTY: true})
	waitRunning(t, ctx, conn, "stdin")
	waitRunning(t, ctx, conn, "tty")
	err = conn.Attach(ctx, "default", "stdin", client.ExecOptions{Stdin: strings.NewReader("x")})
	wantDenied(t, "attach with stdin to a simulated container without a terminal", err, codes.FailedPrecondition,
		`container "app" in pod default/stdin on node w1 has no input to attach to`)
	err = conn.Attach(ctx, "default", "tty", client.ExecOptions{Stdin: strings.NewReader("x")})
	wantDenied(t, "attach with stdin to a simulated terminal", err, codes.FailedPrecondition,
		`container "app" in pod default/tty on node w1 has no input to attach to`)
}

// TestPodPortForward connects to ports of a pod on a simulated node, which shares the
// host's network as real pods do for now: a listener on the loopback is the pod's.
func TestPodPortForward(t *testing.T) {
	_, conn := simPod(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	port := echoUpper(t)
	for i := 0; i < 3; i++ { // one call per connection
		fc, err := conn.PortForward(ctx, "default", "web", port)
		if err != nil {
			t.Fatal(err)
		}
		msg := strings.Repeat("ping ", 10_000)
		if _, err := fc.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if err := fc.CloseWrite(); err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(fc)
		fc.Close()
		if err != nil || string(got) != strings.ToUpper(msg) {
			t.Fatalf("connection %d through port-forward: %d bytes, %v", i, len(got), err)
		}
	}

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadPort := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	_, err = conn.PortForward(ctx, "default", "web", deadPort)
	wantDenied(t, "a port nobody listens on", err, codes.FailedPrecondition, "connection refused")
	_, err = conn.PortForward(ctx, "default", "web", 70000)
	wantDenied(t, "port 70000", err, codes.InvalidArgument, "port: Invalid value: 70000: must be between 1 and 65535, inclusive")
	_, err = conn.PortForward(ctx, "default", "nope", port)
	wantDenied(t, "no such pod", err, codes.NotFound, `pods "nope" not found`)
}

// TestPodStreamsAuthorization: exec, attach and port-forward are an administrator's:
// a node's kubelet may not reach into even its own pods, nor may a user outside
// skiff:admin, nor the controller-manager.
func TestPodStreamsAuthorization(t *testing.T) {
	dir := apicluster.Certs(t, "w1")
	toks, err := auth.ParseTokens(auth.HashToken("dev-token") + ",dev,developers\n" + auth.HashToken("ops-token") + ",ops," + pki.GroupAdmin + "\n")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Tokens: toks})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dial := func(s client.Settings) *client.Conn {
		t.Helper()
		s.Server, s.CAFile = c.Addr(0), filepath.Join(dir, pki.CACertFile)
		servers, opts, err := client.Resolve(s, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		conn, err := client.Dial(servers, opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		return conn
	}
	cert := func(name string) *client.Conn {
		return dial(client.Settings{CertFile: filepath.Join(dir, name+".crt"), KeyFile: filepath.Join(dir, name+".key")})
	}
	kubeletCerts, err := pki.NewReloader(filepath.Join(dir, "kubelet-w1.crt"), filepath.Join(dir, "kubelet-w1.key"), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	node := cert("kubelet-w1")
	logsNode(t, client.NewClientset(node), "w1", kubeletCerts.KubeletServerTLS())
	admin := cert("admin")
	createPod(t, ctx, client.NewClientset(admin), "web", "w1")
	waitRunning(t, ctx, admin, "web") // over mutual TLS to the kubelet
	if out, _, err := execOut(ctx, dial(client.Settings{Token: "ops-token"}), "web", client.ExecOptions{Command: []string{"hostname"}}); err != nil || out != "web\n" {
		t.Errorf("an administrator's token: exec hostname: %q, %v", out, err)
	}

	echo := client.ExecOptions{Command: []string{"echo", "hi"}}
	dev := dial(client.Settings{Token: "dev-token"})
	cm := cert("controller-manager")
	for _, tc := range []struct {
		who  string
		conn *client.Conn
		user string
	}{
		{"the pod's own node", node, "system:node:w1"},
		{"a user outside skiff:admin", dev, "dev"},
		{"the controller-manager", cm, "system:controller-manager"},
	} {
		_, _, err := execOut(ctx, tc.conn, "web", echo)
		wantDenied(t, tc.who+" execs", err, codes.PermissionDenied, `user "`+tc.user+`" cannot create pods/exec "default/web"`)
		err = tc.conn.Attach(ctx, "default", "web", client.ExecOptions{})
		wantDenied(t, tc.who+" attaches", err, codes.PermissionDenied, `user "`+tc.user+`" cannot create pods/attach "default/web"`)
		_, err = tc.conn.PortForward(ctx, "default", "web", 80)
		wantDenied(t, tc.who+" forwards a port", err, codes.PermissionDenied, `user "`+tc.user+`" cannot create pods/portforward "default/web"`)
	}
}
