package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"syscall"

	"github.com/containerd/containerd/cio"
	"golang.org/x/sys/unix"

	"github.com/skiffhq/skiff/kubelet"
)

// A tty container's terminal and input belong to its shim, as its output's logging
// program does, so that they outlive the kubelet: the shim holds the terminal, copies
// what it prints to the logging program (as stdout) and what the container's input
// FIFO gives to it. Attach writes to that FIFO and resizes the terminal; the output
// reaches an attached client through the log. The shim keeps the FIFO open for writing
// itself, so an attach that ends (closing its end) does not end the container's input,
// and the next one writes where the last one left off.

// stdinPath is the FIFO of container id's input, beside its log.
func (r *Runtime) stdinPath(id string) string { return filepath.Join(r.cfg.LogDir, id+".stdin") }

// makeFIFO makes the FIFO at path, replacing what a container of the same id left.
func makeFIFO(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := unix.Mkfifo(path, 0o600); err != nil {
		return fmt.Errorf("mkfifo %s: %w", path, err)
	}
	return nil
}

// taskIO is the output of logs (binary logging) with the input at FIFO stdin ("":
// none) and, with tty, a terminal.
func taskIO(logs cio.Creator, stdin string, tty bool) cio.Creator {
	if stdin == "" && !tty {
		return logs
	}
	return func(id string) (cio.IO, error) {
		i, err := logs(id)
		if err != nil {
			return nil, err
		}
		cfg := i.Config()
		cfg.Stdin, cfg.Terminal = stdin, tty
		return configIO{cfg: cfg, IO: i}, nil
	}
}

// configIO is an IO whose Config says more than its own.
type configIO struct {
	cio.IO
	cfg cio.Config
}

func (c configIO) Config() cio.Config { return c.cfg }

// Attach implements kubelet.Runtime.
func (r *Runtime) Attach(ctx context.Context, id string, opts kubelet.AttachOptions) error {
	ctx = r.ns(ctx)
	ctr, task, err := r.runningTask(ctx, "attach to", id)
	if err != nil {
		return err
	}
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return notFound("attach to", id, err)
	}
	tty := labels[labelTTY] == "true"
	copied := make(chan error, 1)
	if opts.Stdin != nil {
		if labels[labelStdin] != "true" || !tty {
			return fmt.Errorf("attach to container %s: %w", id, kubelet.ErrNoInput)
		}
		// Non-blocking: with nobody reading (the task exiting) the open fails rather
		// than wait. Writes still wait, in the runtime's poller.
		in, err := os.OpenFile(r.stdinPath(id), os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if errors.Is(err, syscall.ENXIO) {
			return fmt.Errorf("attach to container %s: %w", id, kubelet.ErrNotRunning)
		}
		if err != nil {
			return fmt.Errorf("attach to container %s: input: %w", id, err)
		}
		defer in.Close() // also ends a write the container is not reading
		go func() {
			_, err := io.Copy(in, opts.Stdin)
			copied <- err
		}()
	}
	for {
		select {
		case s := <-opts.Resize:
			if tty {
				_ = task.Resize(ctx, uint32(s.Width), uint32(s.Height)) // one racing the exit may fail: harmless
			}
		case err := <-copied:
			if err != nil && ctx.Err() == nil {
				return fmt.Errorf("attach to container %s: input: %w", id, err)
			}
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
