package k8sclients

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/client-go/tools/remotecommand"
	utilexec "k8s.io/client-go/util/exec"

	"github.com/skiffhq/skiff/test/containerdtest"
	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/portforwardtest"
	"github.com/skiffhq/skiff/test/waitfor"
	"github.com/skiffhq/skiff/up"
)

// TestStreamsOnContainerd: kubectl exec, attach and port-forward, and client-go's remotecommand
// executors, into real containers (skiff up on a private containerd, pods in the
// host's network), over each protocol the clients speak: WebSocket (their default) and
// SPDY (their fallback, chosen by kubectl's environment).
func TestStreamsOnContainerd(t *testing.T) {
	socket := containerdtest.Start(t)
	s := startSkiffWith(t, func(cfg *up.Config) {
		cfg.Runtime, cfg.ContainerdAddress = up.RuntimeContainerd, socket
		cfg.Network = up.Network{Off: true}
		cfg.UIListen = ""
	})
	httpPort := freeport.Loopback(t, 1)[0]
	s.runEnv(nil, fmt.Sprintf(`apiVersion: v1
kind: Pod
metadata: {name: shell}
spec:
  containers:
  - {name: shell, image: docker.io/library/busybox:latest, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}
---
apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  containers:
  - name: httpd
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, "mkdir -p /www && echo hello through port-forward > /www/index.html && exec httpd -f -p 127.0.0.1:%d -h /www"]
---
apiVersion: v1
kind: Pod
metadata: {name: ticker}
spec:
  containers:
  - {name: ticker, image: docker.io/library/busybox:latest, imagePullPolicy: IfNotPresent, command: [sh, -c, "while true; do echo tick; sleep 1; done"]}
---
`+ttyPod+"---\n"+stdinPod, httpPort), "apply", "-f", "-")
	// Before the wait: pods that never run still have their volumes to unmount.
	t.Cleanup(func() {
		s.run("delete", "pod", "shell", "web", "ticker", "tty", "debuggee", "stdin", "--grace-period=0")
	})
	waitfor.Condition(t, 2*time.Minute, "pods shell, web, ticker, tty, debuggee and stdin running", func() (bool, string) {
		out, _ := s.run("get", "pods", "--no-headers")
		return strings.Count(out, " Running ") == 6, out
	})

	for _, proto := range []struct {
		name string
		env  []string
	}{
		{"websocket", nil},
		{"spdy", []string{"KUBECTL_REMOTE_COMMAND_WEBSOCKETS=false", "KUBECTL_PORT_FORWARD_WEBSOCKETS=false"}},
	} {
		t.Run("kubectl exec over "+proto.name, func(t *testing.T) {
			out, err := s.runEnv(proto.env, "", "exec", "shell", "--", "echo", "hello", "from", "shell")
			if err != nil || out != "hello from shell\n" {
				t.Fatalf("kubectl exec echo: %q, %v", out, err)
			}
			stdout, stderr, code := s.exec(proto.env, "typed in\n", "exec", "-i", "shell", "--", "sh", "-c", "cat; echo to stderr >&2; exit 3")
			if stdout != "typed in\n" || code != 3 || stderr != "to stderr\ncommand terminated with exit code 3\n" {
				t.Fatalf("kubectl exec -i cat, exit 3: stdout %q, stderr %q, exit code %d", stdout, stderr, code)
			}
			big := strings.Repeat("a long line of input through the channels\n", 20_000)
			if stdout, stderr, code := s.exec(proto.env, big, "exec", "-i", "shell", "--", "wc", "-c"); strings.TrimSpace(stdout) != fmt.Sprint(len(big)) || code != 0 {
				t.Fatalf("kubectl exec -i wc -c of %d bytes: %q, %q, %d", len(big), stdout, stderr, code)
			}
			if _, stderr, code := s.exec(proto.env, "", "exec", "shell", "--", "no-such-command"); code == 0 || !strings.Contains(stderr, "no-such-command") {
				t.Fatalf("kubectl exec of a missing command: %q, %d", stderr, code)
			}
		})
		t.Run("kubectl exec -it over "+proto.name, func(t *testing.T) {
			// A terminal: script(1) gives kubectl one, of 24 rows and 80 columns, whose
			// size kubectl sends, and what the shell prints comes back through it. The
			// size arrives as the first resize, after the command has started (as in
			// Kubernetes), so the shell waits for it, up to 5 s.
			script, err := exec.LookPath("script")
			if err != nil {
				t.Skip("no script(1) to give kubectl a terminal")
			}
			out, stderr, err := s.runStreamsWith(script, proto.env, "", "-q", "-e", "-c",
				"stty rows 24 cols 80; "+s.kubectl+" exec -it shell -- sh -c 'tty; i=0; until s=$(stty size 2>/dev/null) && [ -n \"$s\" ] && [ \"$s\" != \"0 0\" ]; do i=$((i+1)); [ $i -gt 50 ] && break; sleep 0.1; done; echo \"$s\"; exit 6'", "/dev/null")
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 6 || !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "24 80\r\n") {
				t.Fatalf("kubectl exec -it in a 24x80 terminal, exit 6: %v; output %q, stderr %q", err, out, stderr)
			}
		})
		t.Run("kubectl attach over "+proto.name, func(t *testing.T) {
			// The container's output from now on, until kubectl is stopped.
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			cmd := exec.CommandContext(ctx, s.kubectl, "attach", "ticker")
			cmd.Env = s.env(proto.env)
			var out, errOut lockedBuffer
			cmd.Stdout, cmd.Stderr = &out, &errOut
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			waitfor.Condition(t, time.Minute, "ticks through kubectl attach", func() (bool, string) {
				return strings.Count(out.String(), "tick\n") >= 2, out.String() + errOut.String()
			})
			cancel()
			cmd.Wait()
		})
		t.Run("kubectl port-forward over "+proto.name, func(t *testing.T) {
			s.portForward(t, proto.env, "pod/web", httpPort)
		})
		testInteractive(t, s, proto.name, proto.env)
	}
	t.Run("kubectl debug node -it", func(t *testing.T) { testNodeDebug(t, s, "k8sclients-w1") })
	t.Run("kubectl attach -it in a terminal", func(t *testing.T) { testAttachTerminal(t, s) })

	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	if err != nil {
		t.Fatal(err)
	}
	for _, ex := range []struct {
		name string
		new  func(*rest.Config, string, string) (remotecommand.Executor, error)
	}{
		{"spdy", func(c *rest.Config, method, u string) (remotecommand.Executor, error) {
			return remotecommand.NewSPDYExecutor(c, method, mustURL(u))
		}},
		{"websocket", func(c *rest.Config, method, u string) (remotecommand.Executor, error) {
			return remotecommand.NewWebSocketExecutor(c, method, u)
		}},
	} {
		t.Run("client-go remotecommand "+ex.name, func(t *testing.T) {
			run := func(opts corev1.PodExecOptions, streams remotecommand.StreamOptions) error {
				opts.Container = "shell"
				req := restClient(t, cfg).Post().Resource("pods").Namespace("default").Name("shell").SubResource("exec").
					VersionedParams(&opts, scheme.ParameterCodec)
				method := http.MethodPost
				if ex.name == "websocket" {
					method = http.MethodGet // as kubectl's WebSocket executor
				}
				x, err := ex.new(cfg, method, req.URL().String())
				if err != nil {
					t.Fatal(err)
				}
				return x.StreamWithContext(ctxT(t, 2*time.Minute), streams)
			}
			var out, errb bytes.Buffer
			err := run(corev1.PodExecOptions{Command: []string{"sh", "-c", "cat; echo oops >&2; exit 7"}, Stdin: true, Stdout: true, Stderr: true},
				remotecommand.StreamOptions{Stdin: strings.NewReader("in and out\n"), Stdout: &out, Stderr: &errb})
			var exit utilexec.CodeExitError
			if !errors.As(err, &exit) || exit.Code != 7 || out.String() != "in and out\n" || errb.String() != "oops\n" {
				t.Fatalf("exec cat, exit 7: %v; stdout %q, stderr %q", err, out.String(), errb.String())
			}
			// A terminal: its size from the queue, then a resize.
			out.Reset()
			sizes := &sizeQueue{sizes: make(chan *remotecommand.TerminalSize, 2)}
			sizes.sizes <- &remotecommand.TerminalSize{Width: 80, Height: 24}
			stdin, typed := io.Pipe()
			done := make(chan error, 1)
			screen := &lockedBuffer{}
			go func() {
				done <- run(corev1.PodExecOptions{Command: []string{"sh"}, Stdin: true, Stdout: true, TTY: true},
					remotecommand.StreamOptions{Stdin: stdin, Stdout: screen, Tty: true, TerminalSizeQueue: sizes})
			}()
			waitfor.Condition(t, time.Minute, "the terminal's size at start", func() (bool, string) {
				typed.Write([]byte("tty; stty size\n"))
				return strings.Contains(screen.String(), "/dev/pts/") && strings.Contains(screen.String(), "24 80\r\n"), screen.String()
			})
			sizes.sizes <- &remotecommand.TerminalSize{Width: 132, Height: 50}
			waitfor.Condition(t, time.Minute, "the terminal resized", func() (bool, string) {
				typed.Write([]byte("stty size\n"))
				return strings.Contains(screen.String(), "50 132\r\n"), screen.String()
			})
			typed.Write([]byte("exit 5\n"))
			if err := <-done; !errors.As(err, &exit) || exit.Code != 5 {
				t.Fatalf("a terminal session ending with exit 5: %v; screen %q", err, screen.String())
			}
			close(sizes.sizes)
			typed.Close()
		})
	}
}

// exec runs kubectl and returns its stdout, its stderr and its exit code.
func (s *skiff) exec(env []string, stdin string, args ...string) (string, string, int) {
	s.t.Helper()
	out, errOut, err := s.runStreams(env, stdin, args...)
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		return out, errOut, exit.ExitCode()
	case err != nil:
		s.t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
	return out, errOut, 0
}

// portForward runs kubectl port-forward to a pod's port and GETs a page through it,
// twice: two connections in one upgraded one.
func (s *skiff) portForward(t *testing.T, env []string, pod string, port int) {
	cmd := exec.Command(s.kubectl, "port-forward", pod, fmt.Sprintf(":%d", port))
	cmd.Env = s.env(env)
	pf := portforwardtest.Start(t, cmd, port)
	for i := range 2 {
		if got := pf.GET(t, "/index.html"); !strings.HasPrefix(got, "HTTP/1.") || !strings.HasSuffix(got, "\r\n\r\nhello through port-forward\n") {
			t.Fatalf("GET %d through kubectl port-forward: %q (stderr %s)", i, got, pf.Stderr())
		}
	}
	if err := pf.Interrupt(t); err != nil {
		t.Errorf("kubectl port-forward after SIGINT: %v: %s", err, pf.Stderr())
	}
}

func restClient(t *testing.T, cfg *rest.Config) *rest.RESTClient {
	c := rest.CopyConfig(cfg)
	c.GroupVersion = &corev1.SchemeGroupVersion
	c.APIPath = "/api"
	c.NegotiatedSerializer = scheme.Codecs.WithoutConversion()
	rc, err := rest.RESTClientFor(c)
	if err != nil {
		t.Fatal(err)
	}
	return rc
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

// sizeQueue is a terminal's sizes, as kubectl's resize queue gives them.
type sizeQueue struct {
	sizes chan *remotecommand.TerminalSize
}

func (q *sizeQueue) Next() *remotecommand.TerminalSize { return <-q.sizes }
