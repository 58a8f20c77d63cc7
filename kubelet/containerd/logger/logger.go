// Package logger is the logging program of the containerd runtime's containers.
//
// A container's output is kept by a logging program that containerd's shim starts for
// it (containerd's binary logging, cio.BinaryIO): the shim hands it the container's
// stdout and stderr as fds 3 and 4 and waits for it to close fd 5, and it writes them
// to the container's log file in the CRI log format (package crilog), so that each line
// keeps the time it was written. The program belongs to the shim, not to the kubelet:
// the container goes on logging while the kubelet is down or restarting.
//
// The program is the kubelet's own binary (Config.LogProgram), run as
//
//	PROGRAM container-logger LOGFILE
//
// with CONTAINER_ID and CONTAINER_NAMESPACE set by the shim. Any binary that links this
// package serves: it is recognised before main runs (init below), the way containerd's
// shims and Docker's reexec re-run their own binary. That covers the skiff binary and
// the test binaries that start containers alike, with nothing to wire in each.
//
// It is started for every container, so it must start fast: this package depends on
// the standard library and crilog only, so that its init runs among the first, before
// the rest of the binary's packages (Kubernetes' types, gRPC, ...) initialize.
package logger

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/kubelet/crilog"
)

// Arg is the argument that makes a binary linking this package the logging program:
// containerd's shim runs it as `PROGRAM Arg LOGFILE`.
const Arg = "container-logger"

// loggerGrace is how long the logging program goes on copying once the shim asks it to
// stop (SIGTERM): the shim has closed its ends of the streams by then, so what is left
// in them comes at once, unless a process the container started still holds them.
const loggerGrace = 2 * time.Second

// partialIdle is how long output without its newline waits for the rest of its line
// before it is written as a partial record (crilog.CopyStream): the shim keeps the
// streams open after the container's exit, so a last line without a newline would
// otherwise reach the log only when the kubelet deletes the task, after it has read
// the termination message (FallbackToLogsOnError) and answered `logs` without it.
const partialIdle = 10 * time.Millisecond

// Settle is how long after a container's exit its log holds all of its output: the
// last line without a newline is written partialIdle after the output went quiet, which
// was before the exit; the rest is room for a busy machine to run the program.
const Settle = 20 * partialIdle

func init() {
	if len(os.Args) == 3 && os.Args[1] == Arg && os.Getenv("CONTAINER_ID") != "" {
		os.Exit(serve(os.Args[2]))
	}
}

// serve is the program: the shim's fds as containerd's runtime/v2/logging.Run sets them
// up (that package is not used for its dependencies, which would init first), SIGTERM
// as the shim's request to stop.
func serve(path string) int {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	stdout, stderr, wait := os.NewFile(3, "CONTAINER_STDOUT"), os.NewFile(4, "CONTAINER_STDERR"), os.NewFile(5, "CONTAINER_WAIT")
	if err := run(ctx, path, stdout, stderr, wait.Close); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// run copies stdout and stderr to the log file at path until both end (or ctx
// ends, and loggerGrace after it). The kubelet creates the file before the task: when
// it cannot be opened here all the same, the streams are drained, so that the container
// does not block on a full pipe, and the error is returned.
func run(ctx context.Context, path string, stdout, stderr io.Reader, ready func() error) error {
	f, openErr := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	var w io.Writer = io.Discard
	if openErr == nil {
		defer f.Close()
		w = f
	}
	sink := crilog.NewSink(w, nil)
	if err := ready(); err != nil {
		return fmt.Errorf("container-logger %s: signal ready: %w", path, err)
	}
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i, s := range []struct {
		r    io.Reader
		name string
	}{{stdout, crilog.Stdout}, {stderr, crilog.Stderr}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = crilog.CopyStream(sink, s.r, s.name, crilog.MaxLine, partialIdle)
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		select {
		case <-done:
		case <-time.After(loggerGrace):
			return fmt.Errorf("container-logger %s: streams still open %v after the shim asked to stop", path, loggerGrace)
		}
	}
	if openErr != nil {
		return fmt.Errorf("container-logger: %w", openErr)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("container-logger %s: %w", path, err)
	}
	return nil
}
