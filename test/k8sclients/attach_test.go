package k8sclients

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

// ttyPod is a shell with stdin and a terminal, for kubectl attach -it, and debuggee a
// pod for kubectl debug to add its ephemeral containers to.
const ttyPod = `apiVersion: v1
kind: Pod
metadata: {name: tty}
spec:
  containers:
  - {name: tty, image: docker.io/library/busybox:latest, imagePullPolicy: IfNotPresent, command: [sh], stdin: true, tty: true}
---
apiVersion: v1
kind: Pod
metadata: {name: debuggee}
spec:
  containers:
  - {name: app, image: docker.io/library/busybox:latest, imagePullPolicy: IfNotPresent, command: [sleep, "3600"]}
`

// stdinPod has an input and no terminal: what it reads it prints, on stdout and stderr.
const stdinPod = `apiVersion: v1
kind: Pod
metadata: {name: stdin}
spec:
  containers:
  - name: echo
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: [sh, -c, 'while read l; do echo "got:$l"; echo "err:$l" >&2; done']
    stdin: true
`

// session is kubectl running with its input a pipe the test types into, as a user's
// typing would reach it, without a terminal (kubectl says "Unable to use a TTY" and
// goes on: the container's terminal echoes and answers all the same).
type session struct {
	t           *testing.T
	cmd         *exec.Cmd
	stdin       io.WriteCloser
	out, errOut lockedBuffer
	done        chan struct{}
	err         error
}

// interactive starts kubectl with args; it is killed at the test's end if still running.
func (s *skiff) interactive(t *testing.T, env []string, args ...string) *session {
	t.Helper()
	x := &session{t: t, cmd: exec.Command(s.kubectl, args...), done: make(chan struct{})}
	x.cmd.Env = s.env(env)
	x.cmd.Stdout, x.cmd.Stderr = &x.out, &x.errOut
	var err error
	if x.stdin, err = x.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	if err := x.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { x.err = x.cmd.Wait(); close(x.done) }()
	t.Cleanup(func() {
		x.cmd.Process.Kill()
		<-x.done
	})
	return x
}

// typeUntil types line (again at each poll: what kubectl reads before it is attached
// is typed ahead) until the output holds want.
func (x *session) typeUntil(want, line string) {
	x.t.Helper()
	waitfor.Condition(x.t, 2*time.Minute, fmt.Sprintf("%q in the output of kubectl %s", want, strings.Join(x.cmd.Args[1:], " ")), func() (bool, string) {
		if strings.Contains(x.out.String(), want) {
			return true, ""
		}
		select {
		case <-x.done:
			x.t.Fatalf("kubectl %s ended: %v; stdout %q, stderr %q", strings.Join(x.cmd.Args[1:], " "), x.err, x.out.String(), x.errOut.String())
		default:
		}
		io.WriteString(x.stdin, line)
		return false, fmt.Sprintf("stdout %q, stderr %q", x.out.String(), x.errOut.String())
	})
}

// wait closes kubectl's input and returns its exit code once it has ended.
func (x *session) wait() int {
	x.t.Helper()
	x.stdin.Close()
	select {
	case <-x.done:
	case <-time.After(2 * time.Minute):
		x.t.Fatalf("kubectl %s did not end; stdout %q, stderr %q", strings.Join(x.cmd.Args[1:], " "), x.out.String(), x.errOut.String())
	}
	var exit *exec.ExitError
	switch {
	case errors.As(x.err, &exit):
		return exit.ExitCode()
	case x.err != nil:
		x.t.Fatalf("kubectl %s: %v", strings.Join(x.cmd.Args[1:], " "), x.err)
	}
	return 0
}

// testInteractive: kubectl attach -i, run -it --rm and debug -it (an ephemeral
// container attached to), and kubectl cp, over the protocol env chooses.
func testInteractive(t *testing.T, s *skiff, proto string, env []string) {
	t.Run("kubectl attach -i over "+proto, func(t *testing.T) {
		// The tty pod's shell answers; the end of kubectl's input detaches it, and the
		// shell goes on for the next attach.
		for i := range 2 {
			x := s.interactive(t, env, "attach", "-i", "tty")
			x.typeUntil(fmt.Sprintf("attach=%d\r\n", 40+i), fmt.Sprintf("echo attach=$((40+%d))\n", i))
			if code := x.wait(); code != 0 {
				t.Fatalf("kubectl attach -i %d after its input ended: exit %d; stderr %q", i, code, x.errOut.String())
			}
		}
	})
	t.Run("kubectl attach -i without a terminal over "+proto, func(t *testing.T) {
		// The stdin pod reads what kubectl sends and answers on both streams, which
		// reach kubectl's stdout and stderr each on its own channel; the end of
		// kubectl's input detaches it (no stdinOnce), and the shell reads on for the
		// next attach.
		for i := range 2 {
			x := s.interactive(t, env, "attach", "-i", "stdin")
			x.typeUntil(fmt.Sprintf("got:line %d\n", i), fmt.Sprintf("line %d\n", i))
			waitfor.Condition(t, time.Minute, "the stdin pod's stderr on kubectl's", func() (bool, string) {
				return strings.Contains(x.errOut.String(), fmt.Sprintf("err:line %d\n", i)), x.errOut.String()
			})
			if out := x.out.String(); strings.Contains(out, "err:") {
				t.Fatalf("kubectl attach -i %d: the container's stderr on kubectl's stdout: %q", i, out)
			}
			if code := x.wait(); code != 0 {
				t.Fatalf("kubectl attach -i %d after its input ended: exit %d; stderr %q", i, code, x.errOut.String())
			}
		}
		s.wantOut(`err:line 1`, "logs", "stdin")
	})
	t.Run("kubectl run -i --rm over "+proto, func(t *testing.T) {
		// No terminal: what is piped in reaches cat, whose input ends with kubectl's
		// (stdinOnce), and the pod's exit code is kubectl's.
		name := "run-i-" + proto
		stdout, stderr, code := s.exec(env, "piped in\nand more\n", "run", name, "-i", "--rm", "--restart=Never",
			"--image=docker.io/library/busybox:latest", "--image-pull-policy=IfNotPresent", "--", "sh", "-c", "cat; exit 5")
		if code != 5 || !strings.Contains(stdout, "piped in\nand more\n") || !strings.Contains(stdout, fmt.Sprintf("pod %q deleted", name)) {
			t.Fatalf("kubectl run -i --rm, cat, exit 5: exit code %d; stdout %q, stderr %q", code, stdout, stderr)
		}
		s.wantOut(`^$`, "get", "pod", name, "--ignore-not-found", "-o", "name")
	})
	t.Run("kubectl run -it --rm over "+proto, func(t *testing.T) {
		name := "run-" + proto
		x := s.interactive(t, env, "run", name, "-it", "--rm", "--restart=Never", "--image=docker.io/library/busybox:latest",
			"--image-pull-policy=IfNotPresent", "--", "sh")
		x.typeUntil("sum=42\r\n", "echo sum=$((40+2))\n")
		io.WriteString(x.stdin, "exit 3\n")
		if code := x.wait(); code != 3 || !strings.Contains(x.out.String(), fmt.Sprintf("pod %q deleted", name)) {
			t.Fatalf("kubectl run -it --rm, exit 3: exit code %d; stdout %q, stderr %q", code, x.out.String(), x.errOut.String())
		}
		s.wantOut(`^$`, "get", "pod", name, "--ignore-not-found", "-o", "name")
	})
	t.Run("kubectl debug -it over "+proto, func(t *testing.T) {
		// The ephemeral container shares the target's process namespace: its ps shows
		// the target's sleep.
		x := s.interactive(t, env, "debug", "-it", "debuggee", "--image=docker.io/library/busybox:latest", "--image-pull-policy=IfNotPresent",
			"--target=app", "-c", "debug-"+proto, "--", "sh")
		x.typeUntil("seen=1\r\n", "ps | grep -c '[s]leep 3600' | sed s/^/seen=/\n")
		io.WriteString(x.stdin, "exit\n")
		if code := x.wait(); code != 0 {
			t.Fatalf("kubectl debug -it: exit code %d; stdout %q, stderr %q", code, x.out.String(), x.errOut.String())
		}
	})
	t.Run("kubectl cp over "+proto, func(t *testing.T) {
		dir := t.TempDir()
		src, back := filepath.Join(dir, "src"), filepath.Join(dir, "back")
		data := strings.Repeat("copied through exec and tar\n", 10_000)
		if err := os.WriteFile(src, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
		dest := "/tmp/cp-" + proto
		if out, err := s.runEnv(env, "", "cp", src, "shell:"+dest); err != nil {
			t.Fatalf("kubectl cp to the pod: %v: %s", err, out)
		}
		if out, err := s.runEnv(env, "", "cp", "shell:"+dest, back); err != nil {
			t.Fatalf("kubectl cp from the pod: %v: %s", err, out)
		}
		if got, err := os.ReadFile(back); err != nil || string(got) != data {
			t.Fatalf("copied back %d bytes (%v), want %d", len(got), err, len(data))
		}
	})
}

// testAttachTerminal: kubectl attach -it in a terminal (script(1)'s, of 24 rows and 80
// columns) sends the terminal's size, which the container's shell sees; the shell
// waits for it, as the size arrives after the attach. It ends the tty pod's shell.
func testAttachTerminal(t *testing.T, s *skiff) {
	script, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no script(1) to give kubectl a terminal")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, script, "-q", "-e", "-c", "stty rows 24 cols 80; "+s.kubectl+" attach -it tty", "/dev/null")
	cmd.Env = s.env(nil)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out lockedBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cancel()
	waitfor.Condition(t, time.Minute, "the terminal's size in the attached shell", func() (bool, string) {
		io.WriteString(stdin, "stty size\n")
		return strings.Contains(out.String(), "24 80\r\n"), out.String()
	})
	io.WriteString(stdin, "exit 0\n")
}

// testNodeDebug: kubectl debug node/NAME -it runs a pod on the node in its process,
// IPC and network namespaces, with the node's root at /host: the shell there sees a
// file the test writes, the test's own process and the node's host name.
func testNodeDebug(t *testing.T, s *skiff, node string) {
	f, err := os.CreateTemp("", "skiff-node-debug-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.Remove(f.Name())
	fmt.Fprintln(f, "written on the node")
	f.Close()
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.run("delete", "pod", "-l", "app.kubernetes.io/managed-by=kubectl-debug", "--grace-period=0") })
	x := s.interactive(t, nil, "debug", "node/"+node, "-it", "--image=docker.io/library/busybox:latest", "--image-pull-policy=IfNotPresent", "--", "sh")
	want := fmt.Sprintf("file=written on the node pid=yes host=%s\r\n", host)
	x.typeUntil(want, fmt.Sprintf("echo \"file=$(cat /host%s) pid=$([ -d /proc/%d ] && echo yes) host=$(hostname)\"\n", f.Name(), os.Getpid()))
	io.WriteString(x.stdin, "exit\n")
	if code := x.wait(); code != 0 {
		t.Fatalf("kubectl debug node/%s -it: exit code %d; stdout %q, stderr %q", node, code, x.out.String(), x.errOut.String())
	}
	out := s.must("get", "pod", "-l", "app.kubernetes.io/managed-by=kubectl-debug", "-o", "jsonpath={.items[0].spec.hostPID} {.items[0].spec.hostIPC} {.items[0].spec.hostNetwork}")
	if out != "true true true" {
		t.Errorf("the node debug pod's hostPID, hostIPC and hostNetwork: %q", out)
	}
}
