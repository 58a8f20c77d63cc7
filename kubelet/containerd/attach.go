package containerd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"

	"github.com/containerd/containerd"
	"github.com/containerd/containerd/cio"
	"golang.org/x/sys/unix"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd/logger"
)

// A tty container's terminal and input belong to its shim, as its output's logging
// program does, so that they outlive the kubelet: the shim holds the terminal, copies
// what it prints to the logging program (as stdout) and what the container's input
// FIFO gives to it. Attach writes to that FIFO and resizes the terminal; the output
// reaches an attached client through the log. The shim keeps the FIFO open for writing
// itself, so an attach that ends (closing its end) does not end the container's input,
// and the next one writes where the last one left off; for a container with stdinOnce
// and no terminal Attach then has the shim close its end (CloseIO), so the process
// reads the end of its input, as CRI's attach does.
//
// Without a terminal the shim's binary logging cannot give the process an input (it
// has none to give: containerd's pkg/process binaryIO), so a container with stdin and
// no tty has its streams as FIFOs instead, the shim copying between them and the
// process: its input from LOGDIR/<id>.stdin, its output to <id>.stdout and <id>.stderr,
// which the same logging program reads, started by the runtime rather than the shim,
// in a session of its own so that it outlives the kubelet as the shim's do. It ends
// when the shim closes the FIFOs, once the container's process and whatever it started
// holding its output have exited.

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

// pipedIO starts the logging program of container id on FIFOs for its stdout and
// stderr, and returns the task's IO: those and the input FIFO stdin. release, once the
// task exists (or failed to), lets the program see the end of the streams when the
// shim closes them: until then the runtime holds them open, so that it does not read
// their end before the shim has opened them.
func (r *Runtime) pipedIO(id, stdin string) (_ cio.Creator, release func(), err error) {
	var open []*os.File
	closeAll := func() {
		for _, f := range open {
			f.Close()
		}
	}
	var readers []*os.File
	for _, path := range []string{r.outputPath(id, "stdout"), r.outputPath(id, "stderr")} {
		if err := makeFIFO(path); err != nil {
			closeAll()
			return nil, nil, err
		}
		// Non-blocking: no writer yet. The writer opened next keeps a read from
		// ending at once.
		rd, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("open %s: %w", path, err)
		}
		open = append(open, rd)
		wr, err := os.OpenFile(path, os.O_WRONLY|syscall.O_NONBLOCK, 0)
		if err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("open %s: %w", path, err)
		}
		open, readers = append(open, wr), append(readers, rd)
	}
	ready, signal, err := os.Pipe()
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	defer ready.Close()
	cmd := exec.Command(r.logger, logger.Arg, r.logPath(id))
	cmd.Env = []string{"CONTAINER_ID=" + id, "CONTAINER_NAMESPACE=" + r.cfg.Namespace}
	cmd.ExtraFiles = []*os.File{readers[0], readers[1], signal} // fds 3, 4 and 5, as the shim gives them
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	err = cmd.Start()
	signal.Close()
	for _, rd := range readers {
		rd.Close() // the program's now
	}
	if err != nil {
		closeAll()
		return nil, nil, fmt.Errorf("start the logging program of container %s: %w", id, err)
	}
	go cmd.Wait()                     // reaps it when the container's output ends; it outlives the kubelet otherwise
	_, _ = io.Copy(io.Discard, ready) // it closes fd 5 once its log is open (or it died)
	cfg := cio.Config{Stdin: stdin, Stdout: r.outputPath(id, "stdout"), Stderr: r.outputPath(id, "stderr")}
	return func(string) (cio.IO, error) {
		i, err := cio.NullIO("")
		if err != nil {
			return nil, err
		}
		return configIO{cfg: cfg, IO: i}, nil
	}, closeAll, nil
}

// outputPath is the FIFO of container id's stdout or stderr (a container with stdin
// and no tty), beside its log.
func (r *Runtime) outputPath(id, stream string) string {
	return filepath.Join(r.cfg.LogDir, id+"."+stream)
}

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
		if labels[labelStdin] != "true" {
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
			if !tty && labels[labelStdinOnce] == "true" {
				if err := task.CloseIO(ctx, containerd.WithStdinCloser); err != nil && ctx.Err() == nil {
					return fmt.Errorf("attach to container %s: close input: %w", id, err)
				}
			}
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}
