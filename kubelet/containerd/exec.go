package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiffhq/skiff/kubelet"
)

// runningTask is the task of a running container, or an error wrapping kubelet's
// ErrNotFound or ErrNotRunning.
func (r *Runtime) runningTask(ctx context.Context, op, id string) (containerd.Container, containerd.Task, error) {
	ctr, err := r.client.LoadContainer(ctx, id)
	if err != nil {
		return nil, nil, notFound(op, id, err)
	}
	task, err := ctr.Task(ctx, nil)
	if errdefs.IsNotFound(err) {
		return nil, nil, fmt.Errorf("%s container %s: %w", op, id, kubelet.ErrNotRunning)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%s container %s: %w", op, id, err)
	}
	st, err := task.Status(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("%s container %s: %w", op, id, err)
	}
	if st.Status != containerd.Running {
		return nil, nil, fmt.Errorf("%s container %s (%s): %w", op, id, st.Status, kubelet.ErrNotRunning)
	}
	return ctr, task, nil
}

// Exec implements kubelet.Runtime: a process in the container's task, with the
// container's own process settings (user, environment, working directory,
// capabilities) and the given command, in a terminal when asked. The process is killed
// when ctx ends, and deleted when it has exited.
func (r *Runtime) Exec(ctx context.Context, id string, opts kubelet.ExecOptions) (int, error) {
	ctx = r.ns(ctx)
	if len(opts.Command) == 0 {
		return 0, fmt.Errorf("exec in container %s: no command given", id)
	}
	ctr, task, err := r.runningTask(ctx, "exec in", id)
	if err != nil {
		return 0, err
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return 0, fmt.Errorf("exec in container %s: spec: %w", id, err)
	}
	pspec := *spec.Process
	pspec.Args = opts.Command
	pspec.Terminal = opts.TTY
	pspec.ConsoleSize = nil
	if opts.TTY && opts.Size.Width > 0 && opts.Size.Height > 0 {
		pspec.ConsoleSize = &specs.Box{Width: uint(opts.Size.Width), Height: uint(opts.Size.Height)}
	}
	// The shim holds the stdin FIFO open itself (so that a client may come back):
	// the input's end reaches the process only when the shim is told (CloseIO), as
	// containerd's CRI does.
	var stdin io.Reader
	stdinDone := make(chan struct{})
	if opts.Stdin != nil {
		stdin = &eofReader{r: opts.Stdin, eof: stdinDone}
	}
	ioOpts := []cio.Opt{cio.WithStreams(stdin, opts.Stdout, opts.Stderr)}
	if opts.TTY {
		ioOpts = append(ioOpts, cio.WithTerminal)
	}
	execID := "exec-" + randomHex(8)
	proc, err := task.Exec(ctx, execID, &pspec, cio.NewCreator(ioOpts...))
	if err != nil {
		return 0, fmt.Errorf("exec in container %s: %w", id, err)
	}
	// Deleting the process also closes its streams (the FIFOs and their copies).
	defer proc.Delete(context.WithoutCancel(ctx), containerd.WithProcessKill)
	exited, err := proc.Wait(ctx)
	if err != nil {
		return 0, fmt.Errorf("exec in container %s: wait: %w", id, err)
	}
	if err := proc.Start(ctx); err != nil {
		return 0, fmt.Errorf("exec in container %s: %w", id, err)
	}
	if opts.Started != nil {
		opts.Started()
	}
	// One goroutine passes resizes and the input's end on to the process until it is done.
	relayed := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(relayed)
		eof := stdinDone
		for {
			select {
			case s := <-opts.Resize:
				if opts.TTY {
					_ = proc.Resize(ctx, uint32(s.Width), uint32(s.Height)) // a resize racing the exit may fail: harmless
				}
			case <-eof:
				eof = nil
				_ = proc.CloseIO(ctx, containerd.WithStdinCloser) // one racing the exit may fail: harmless
			case <-finished:
				return
			}
		}
	}()
	defer func() { close(finished); <-relayed }()
	var st containerd.ExitStatus
	select {
	case st = <-exited:
	case <-ctx.Done():
		return 0, ctx.Err() // the deferred Delete kills it
	}
	if err := st.Error(); err != nil {
		return 0, fmt.Errorf("exec in container %s: wait: %w", id, err)
	}
	// The output copies end when the process's end of the FIFOs closes, after the exit.
	proc.IO().Wait()
	return int(st.ExitCode()), nil
}

// PodDialer implements kubelet.Runtime. Containers run in the host's network namespace
// (see the package comment), so a pod's ports are the node's: it dials the loopback.
// Once pods have their own namespace, this is where the dialer enters it (the
// container's task's /proc/PID/ns/net).
func (r *Runtime) PodDialer(ctx context.Context, id string) (kubelet.Dialer, error) {
	if _, _, err := r.runningTask(r.ns(ctx), "port-forward to", id); err != nil {
		return nil, err
	}
	return kubelet.HostDialer, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read does not fail
	return hex.EncodeToString(b)
}

// eofReader closes eof when r ends.
type eofReader struct {
	r    io.Reader
	eof  chan struct{}
	once sync.Once
}

func (e *eofReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if errors.Is(err, io.EOF) {
		e.once.Do(func() { close(e.eof) })
	}
	return n, err
}
