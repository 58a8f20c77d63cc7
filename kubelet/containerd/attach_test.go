package containerd

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestAttachTerminal: a container with tty and stdin runs in a terminal whose output
// is its log; Attach writes to its input and resizes its terminal; an attach that ends
// leaves the input open for the next one; the shell's exit code is the container's.
// A container without stdin has no input to attach to.
func TestAttachTerminal(t *testing.T) {
	r, ctx := connect(t)
	const image = "docker.io/library/skiff-busybox:test"
	busybox(t, r, ctx, image)
	id, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "a77a", PodName: "attach", Namespace: "test",
		Name: "sh", Image: image, Command: []string{"sh"}, TTY: true, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Remove(context.Background(), id) })
	l, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range l {
		if c.ID == id && (!c.TTY || !c.Stdin) {
			t.Fatalf("listed without its tty and stdin: %+v", c)
		}
	}
	log := func() string {
		var out strings.Builder
		if err := r.Logs(ctx, id, &out, false); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	// attach writes lines to the container's input, with sizes, then detaches.
	attach := func(sizes []kubelet.TerminalSize, lines ...string) {
		t.Helper()
		in, typed := io.Pipe()
		resize := make(chan kubelet.TerminalSize)
		done := make(chan error, 1)
		go func() { done <- r.Attach(ctx, id, kubelet.AttachOptions{Stdin: in, Resize: resize}) }()
		for _, s := range sizes {
			resize <- s
		}
		for _, l := range lines {
			typed.Write([]byte(l))
		}
		typed.Close()
		if err := <-done; err != nil {
			t.Fatalf("attach: %v", err)
		}
	}
	attach([]kubelet.TerminalSize{{Width: 132, Height: 50}}, "tty; stty size; echo sum=$((40+2))\n")
	waitfor.Condition(t, time.Minute, "the shell's answers in the log", func() (bool, string) {
		l := log()
		return strings.Contains(l, "/dev/pts/") && strings.Contains(l, "50 132\r") && strings.Contains(l, "sum=42\r"), l
	})
	attach(nil, "echo again=$((1+1))\n")
	waitfor.Condition(t, time.Minute, "the second attach's answer", func() (bool, string) {
		l := log()
		return strings.Contains(l, "again=2\r"), l
	})
	attach(nil, "exit 4\n")
	if c := waitExit(t, r, ctx, id); c.ExitCode != 4 {
		t.Fatalf("the shell exited %d, want 4", c.ExitCode)
	}
	if err := r.Attach(ctx, id, kubelet.AttachOptions{Stdin: strings.NewReader("x")}); !errors.Is(err, kubelet.ErrNotRunning) {
		t.Fatalf("attach to an exited container: %v", err)
	}

	plain, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "a77a", PodName: "attach", Namespace: "test",
		Name: "plain", Image: image, Command: []string{"sleep", "3600"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Remove(context.Background(), plain) })
	if err := r.Attach(ctx, plain, kubelet.AttachOptions{Stdin: strings.NewReader("x")}); !errors.Is(err, kubelet.ErrNoInput) {
		t.Fatalf("attach with input to a container without stdin: %v", err)
	}
}

// TestAttachWithoutTerminal: a container with stdin and no tty reads what Attach
// writes, its stdout and stderr still reaching its log as two streams; an attach that
// ends leaves the input open for the next one, but with stdinOnce it closes the input,
// and the process reads its end. Its logging program outlives none of it: the FIFOs go
// with the container.
func TestAttachWithoutTerminal(t *testing.T) {
	r, ctx := connect(t)
	const image = "docker.io/library/skiff-busybox:test"
	busybox(t, r, ctx, image)
	write := func(id string, lines ...string) {
		t.Helper()
		if err := r.Attach(ctx, id, kubelet.AttachOptions{Stdin: strings.NewReader(strings.Join(lines, ""))}); err != nil {
			t.Fatalf("attach: %v", err)
		}
	}
	log := func(id string) string {
		var out strings.Builder
		if err := r.Logs(ctx, id, &out, false); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}

	// Without stdinOnce: each attach adds to the same input.
	echo, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "a77b", PodName: "attach", Namespace: "test", Name: "echo", Image: image,
		Command: []string{"sh", "-c", `while read l; do echo "out:$l"; echo "err:$l" >&2; done; echo eof`}, Stdin: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Remove(context.Background(), echo) })
	write(echo, "one\n")
	write(echo, "two\n")
	waitfor.Condition(t, time.Minute, "both lines on stdout and stderr in the log", func() (bool, string) {
		l := log(echo)
		return strings.Contains(l, " stdout F out:one\n") && strings.Contains(l, " stderr F err:one\n") &&
			strings.Contains(l, " stdout F out:two\n") && strings.Contains(l, " stderr F err:two\n"), l
	})
	if l := log(echo); strings.Contains(l, "eof") {
		t.Fatalf("the input ended with an attach, without stdinOnce: %q", l)
	}

	// With stdinOnce: the first attach's end is the input's.
	once, err := r.CreateAndStart(ctx, kubelet.ContainerConfig{PodUID: "a77b", PodName: "attach", Namespace: "test", Name: "once", Image: image,
		Command: []string{"sh", "-c", "cat; echo done; exit 3"}, Stdin: true, StdinOnce: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Remove(context.Background(), once) })
	l, err := r.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range l {
		if c.ID == once && (c.TTY || !c.Stdin || !c.StdinOnce) {
			t.Fatalf("listed without its stdin and stdinOnce: %+v", c)
		}
	}
	write(once, "hello\n", "world\n")
	if c := waitExit(t, r, ctx, once); c.ExitCode != 3 {
		t.Fatalf("cat's shell exited %d, want 3", c.ExitCode)
	}
	waitfor.Condition(t, time.Minute, "the input and done in the log", func() (bool, string) {
		l := log(once)
		return strings.Contains(l, " stdout F hello\n") && strings.Contains(l, " stdout F world\n") && strings.Contains(l, " stdout F done\n"), l
	})
	if err := r.Remove(ctx, once); err != nil {
		t.Fatal(err)
	}
	if left, _ := filepath.Glob(filepath.Join(r.cfg.LogDir, once+"*")); len(left) > 0 {
		t.Errorf("left behind by the removed container: %v", left)
	}
}
