package skiffctl_test

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"
	"golang.org/x/sys/unix"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/sim"
	"github.com/skiffhq/skiff/skiffctl"
	"github.com/skiffhq/skiff/test/apicluster"
)

// resizeTap is a simulated runtime that also reports the terminal sizes exec is sent.
type resizeTap struct {
	*sim.Runtime
	sizes chan kubelet.TerminalSize
}

func (r *resizeTap) Exec(ctx context.Context, id string, opts kubelet.ExecOptions) (int, error) {
	if opts.Resize != nil {
		in := opts.Resize
		out := make(chan kubelet.TerminalSize)
		opts.Resize = out
		go func() {
			for {
				select {
				case s := <-in:
					r.sizes <- s
					select {
					case out <- s:
					case <-ctx.Done():
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	return r.Runtime.Exec(ctx, id, opts)
}

// streamsCluster is an API server and a simulated node w1 whose kubelet serves exec and
// port-forward, running pod web (containers app, with port http 8080, and sidecar).
func streamsCluster(t *testing.T) (string, *resizeTap) {
	t.Helper()
	c := apicluster.Start(t, 1, apicluster.Options{})
	s := strings.Join(c.Addrs(), ",")
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rt := &resizeTap{Runtime: sim.New(sim.Config{}), sizes: make(chan kubelet.TerminalSize, 10)}
	cfg := kubelet.DefaultConfig()
	cfg.NodeName, cfg.NodeIP, cfg.LogPort, cfg.RelistPeriod = "w1", "127.0.0.1", ln.Addr().(*net.TCPAddr).Port, 50*time.Millisecond
	cfg.RootDir = t.TempDir() // not the host's /var/lib/skiff/kubelet: termination logs are written there
	k, err := kubelet.New(client.NewClientset(conn), rt, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ls := kubelet.NewLogServer(nil)
	ls.Register("w1", rt)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); k.Run(ctx) }()
	go func() { defer wg.Done(); ls.Serve(ctx, ln, nil) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	if code, _, errs := run(t, s, `apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  nodeName: w1
  containers:
  - {name: app, image: busybox, command: [sleep, "3600"], ports: [{name: http, containerPort: 8080}]}
  - {name: sidecar, image: busybox, command: [sleep, "3600"]}
`, "apply", "-f", "-"); code != 0 {
		t.Fatalf("apply: %s", errs)
	}
	waitFor(t, func() bool {
		code, _, _ := run(t, s, "", "exec", "web", "-c", "sidecar", "--", "true")
		return code == 0
	})
	return s, rt
}

// TestExec runs skiffctl exec against a simulated node: output, the remote exit code as
// skiffctl's, stdin, the default container, and kubectl's argument rules.
func TestExec(t *testing.T) {
	s, _ := streamsCluster(t)

	code, out, errs := run(t, s, "", "exec", "web", "--", "echo", "hello")
	if code != 0 || out != "hello\n" || errs != "Defaulted container \"app\" out of: app, sidecar\n" {
		t.Errorf("exec echo: exit %d, %q, %q", code, out, errs)
	}
	code, out, errs = run(t, s, "", "exec", "pod/web", "-c", "sidecar", "--", "sh", "-c", "echo bye; exit 3")
	if code != 3 || out != "bye\n" || errs != "command terminated with exit code 3\n" {
		t.Errorf("exec exit 3: exit %d, %q, %q; want kubectl's exit code and message", code, out, errs)
	}
	code, out, _ = run(t, s, "typed in\n", "exec", "-i", "web", "-c", "app", "--", "cat")
	if code != 0 || out != "typed in\n" {
		t.Errorf("exec -i cat: exit %d, %q", code, out)
	}
	code, out, _ = run(t, s, "not read\n", "exec", "web", "-c", "app", "--", "cat") // without -i: no input
	if code != 0 || out != "" {
		t.Errorf("exec cat without -i: exit %d, %q", code, out)
	}
	// -t needs a terminal: without one it says so and goes on without (kubectl's words).
	code, out, errs = run(t, s, "x\n", "exec", "-it", "web", "-c", "app", "--", "cat")
	if code != 0 || out != "x\n" || errs != "Unable to use a TTY - input is not a terminal or the right kind of file\n" {
		t.Errorf("exec -it without a terminal: exit %d, %q, %q", code, out, errs)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"exec", "web", "echo", "hi"}, "Error: exec POD COMMAND is not supported anymore: use exec POD -- COMMAND instead\n"},
		{[]string{"exec", "web"}, "Error: you must specify at least one command for the container\n"},
		{[]string{"exec", "nope", "--", "echo"}, "Error: pod \"nope\" not found\n"},
		{[]string{"exec", "deploy/web", "--", "echo"}, "Error: exec: \"deploy/web\": only pods can be named (POD or pod/POD)\n"},
		{[]string{"exec", "web", "-c", "db", "--", "echo"}, "Error: container db not found in pod web (it has: app, sidecar)\n"},
		{[]string{"exec", "web", "-c", "app", "--", "ls"}, "is not simulated"},
		{[]string{"attach", "web", "-c", "app", "-i"}, "was not started with stdin"},
	} {
		code, _, errs := run(t, s, "", tc.args...)
		if code != 1 || !strings.Contains(errs, tc.want) {
			t.Errorf("skiffctl %s: exit %d, %q; want 1 and %q", strings.Join(tc.args, " "), code, errs, tc.want)
		}
	}
}

func echoOff(t *testing.T, f *os.File) bool {
	t.Helper()
	tio, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return tio.Lflag&unix.ECHO == 0
}

// TestExecTerminal runs skiffctl exec -it on a real pseudo-terminal: it is raw while
// the session runs (what is typed reaches the command once, unechoed), the command's
// terminal starts at the window's size and follows its resizes, and the terminal is
// restored afterwards.
func TestExecTerminal(t *testing.T) {
	s, rt := streamsCluster(t)
	ptmx, tty, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 24, Cols: 80}); err != nil {
		t.Fatal(err)
	}
	if echoOff(t, tty) {
		t.Fatal("a new terminal echoes")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var errs bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- skiffctl.Execute(ctx, skiffctl.Streams{In: tty, Out: tty, Err: &errs}, []string{"--server", s, "exec", "-it", "web", "-c", "app", "--", "sh", "-c", "stty size; cat"})
	}()
	screen := bufio.NewReader(ptmx)
	if line, err := screen.ReadString('\n'); err != nil || line != "24 80\n" {
		t.Fatalf("stty size in the remote terminal: %q, %v", line, err)
	}
	if !echoOff(t, tty) {
		t.Error("the terminal is not raw during the session")
	}
	if err := pty.Setsize(ptmx, &pty.Winsize{Rows: 50, Cols: 132}); err != nil {
		t.Fatal(err)
	}
	syscall.Kill(os.Getpid(), syscall.SIGWINCH) // the window's owner is told (the test is not the terminal's session)
	select {
	case sz := <-rt.sizes:
		if sz != (kubelet.TerminalSize{Width: 132, Height: 50}) {
			t.Errorf("resized to %+v, want 132x50", sz)
		}
	case <-ctx.Done():
		t.Fatal("no resize reached the command")
	}
	if _, err := ptmx.Write([]byte("typed\r")); err != nil {
		t.Fatal(err)
	}
	if got, err := io.ReadAtLeast(screen, make([]byte, 6), 6); err != nil || got != 6 {
		t.Fatalf("cat's echo: %d, %v", got, err)
	}
	cancel() // the user's interrupt
	<-done
	if echoOff(t, tty) {
		t.Error("the terminal was not restored")
	}
}

// TestPortForward runs skiffctl port-forward to a simulated pod, which shares the
// host's network: a listener on the loopback is its port.
func TestPortForward(t *testing.T) {
	s, _ := streamsCluster(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				b, _ := io.ReadAll(c)
				c.Write(bytes.ToUpper(b))
			}()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, errs := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- skiffctl.Execute(ctx, skiffctl.Streams{In: strings.NewReader(""), Out: out, Err: errs},
			[]string{"--server", s, "port-forward", "pod/web", ":" + strconv.Itoa(port), "--address", "127.0.0.1"})
	}()
	forwarding := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> ` + strconv.Itoa(port) + `\n`)
	var local string
	waitFor(t, func() bool {
		m := forwarding.FindStringSubmatch(out.String())
		if m != nil {
			local = m[1]
		}
		return m != nil
	})
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", "127.0.0.1:"+local)
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("ping"))
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != "PING" {
			t.Fatalf("through port-forward: %q, %v", got, err)
		}
	}
	if !strings.Contains(out.String(), "Handling connection for "+local+"\n") {
		t.Errorf("port-forward printed %q", out.String())
	}
	cancel()
	if code := <-done; code != 0 {
		t.Errorf("port-forward ended with %d: %s", code, errs.String())
	}

	// A port nobody listens on: the connection is closed and the error said; a named
	// port of the pod's containers is resolved.
	closed, _ := net.Listen("tcp", "127.0.0.1:0")
	dead := closed.Addr().(*net.TCPAddr).Port
	closed.Close()
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out = &syncBuffer{}
	go func() {
		done <- skiffctl.Execute(ctx, skiffctl.Streams{In: strings.NewReader(""), Out: out, Err: errs},
			[]string{"--server", s, "port-forward", "web", ":" + strconv.Itoa(dead), ":http", "--address", "127.0.0.1"})
	}()
	waitFor(t, func() bool { return strings.Contains(out.String(), "-> 8080\n") })
	m := regexp.MustCompile(`Forwarding from 127\.0\.0\.1:(\d+) -> ` + strconv.Itoa(dead) + `\n`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("port-forward printed %q", out.String())
	}
	c, err := net.Dial("tcp", "127.0.0.1:"+m[1])
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := io.ReadAll(c); len(got) != 0 {
		t.Errorf("read %q from a port nobody listens on", got)
	}
	c.Close()
	waitFor(t, func() bool {
		return strings.Contains(errs.String(), "error forwarding port "+strconv.Itoa(dead)+" to pod web: ") && strings.Contains(errs.String(), "connection refused")
	})
	cancel()
	<-done

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"port-forward", "web", "70000"}, `error parsing remote port "70000"`},
		{[]string{"port-forward", "web", "x:80"}, `error parsing local port "x"`},
		{[]string{"port-forward", "web", "grpc"}, `pod web does not have a named port "grpc"`},
		{[]string{"port-forward", "web", "80", "--address", "example.com"}, `--address: "example.com" is not an IP address or localhost`},
		{[]string{"port-forward", "web"}, "expected POD and at least one port"},
	} {
		code, _, errs := run(t, s, "", tc.args...)
		if code != 1 || !strings.Contains(errs, tc.want) {
			t.Errorf("skiffctl %s: exit %d, %q; want %q", strings.Join(tc.args, " "), code, errs, tc.want)
		}
	}
}
