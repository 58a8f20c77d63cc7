package containerd

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"github.com/containerd/containerd/errdefs"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

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

// PodDialer implements kubelet.Runtime: a container in a network namespace of its
// pod's (the CNI pod network) is reached on the loopback of that namespace (the
// namespace's path in the container's spec, else its task's /proc/PID/ns/net), as
// Kubernetes' kubelet does; one in the node's (hostNetwork, or no pod network) on the
// node's loopback.
func (r *Runtime) PodDialer(ctx context.Context, id string) (kubelet.Dialer, error) {
	ctx = r.ns(ctx)
	ctr, task, err := r.runningTask(ctx, "port-forward to", id)
	if err != nil {
		return nil, err
	}
	spec, err := ctr.Spec(ctx)
	if err != nil {
		return nil, fmt.Errorf("port-forward to container %s: spec: %w", id, err)
	}
	path, own := "", false
	if spec.Linux != nil {
		for _, ns := range spec.Linux.Namespaces {
			if ns.Type == specs.NetworkNamespace {
				path, own = ns.Path, true
			}
		}
	}
	if !own {
		return kubelet.HostDialer, nil
	}
	if path == "" {
		path = fmt.Sprintf("/proc/%d/ns/net", task.Pid())
	}
	return func(ctx context.Context, port int) (net.Conn, error) {
		c, err := dialInNetNS(ctx, path, port)
		if err != nil {
			return nil, fmt.Errorf("port-forward to container %s: %w", id, err)
		}
		return c, nil
	}, nil
}

// dialInNetNS connects to port on the loopback of the network namespace at path. The
// socket is made on a thread that enters the namespace (locked to its goroutine and
// never unlocked, so that it ends with the goroutine rather than serve another one
// in the wrong namespace); once made, the socket is used from any thread.
func dialInNetNS(ctx context.Context, path string, port int) (net.Conn, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("the pod's network namespace: %w", err)
	}
	defer unix.Close(fd)
	type result struct {
		conn net.Conn
		err  error
	}
	rc := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			rc <- result{err: fmt.Errorf("enter the pod's network namespace %s: %w", path, err)}
			return
		}
		c, err := kubelet.HostDialer(ctx, port)
		rc <- result{c, err}
	}()
	r := <-rc
	return r.conn, r.err
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
