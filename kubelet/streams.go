package kubelet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	kubeletv1 "github.com/skiffhq/skiff/proto/kubelet/v1"
)

// streamServer serves KubeletStreams (exec, attach, port-forward) for the nodes
// registered with a LogServer, which authorizes nobody: the API server did.
//
// Each call's first message says what to do; a goroutine then reads the API server's
// later messages (input, resizes, half-closes) while the handler runs the command or
// the connection. That goroutine may be blocked in the stream's Recv when the handler
// returns: it ends then, with the stream (gRPC has no other way to interrupt a server
// stream's Recv), and touches nothing the handler owns once it has returned.
type streamServer struct {
	kubeletv1.UnimplementedKubeletStreamsServer
	s *LogServer
}

// running is the running container start names on its node, or a gRPC error.
func (s streamServer) running(ctx context.Context, start *kubeletv1.ExecStart) (Runtime, Container, error) {
	rt, ctrs, err := s.s.containers(ctx, start.GetNodeName())
	if err != nil {
		return nil, Container{}, err
	}
	ref := containerRef{start.GetNamespace(), start.GetPod(), start.GetPodUid(), start.GetContainer()}
	if ref.Container == "" {
		return nil, Container{}, status.Error(codes.InvalidArgument, "start.container: Required value")
	}
	c, ok := pickContainer(ctrs, ref, false)
	switch {
	case !ok:
		return nil, Container{}, status.Errorf(codes.FailedPrecondition, "container %q in pod %s/%s has not started on node %s",
			ref.Container, ref.Namespace, ref.Pod, start.GetNodeName())
	case c.State != StateRunning:
		return nil, Container{}, status.Errorf(codes.FailedPrecondition, "container %q in pod %s/%s is not running on node %s (it is %s)",
			ref.Container, ref.Namespace, ref.Pod, start.GetNodeName(), c.State)
	}
	return rt, c, nil
}

// execStream is the kubelet's end of an Exec or Attach call.
type execStream interface {
	Send(*kubeletv1.ExecOutput) error
	Recv() (*kubeletv1.ExecInput, error)
	Context() context.Context
}

// execSession relays one Exec or Attach call: its input to the command, the command's
// output (started first) to the call.
type execSession struct {
	stream  execStream
	mu      sync.Mutex // Send is not safe for concurrent use; stdout and stderr write at once
	started bool
}

// send sends out, after a started message if none was sent yet.
func (x *execSession) send(out *kubeletv1.ExecOutput) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	if !x.started {
		x.started = true
		if err := x.stream.Send(&kubeletv1.ExecOutput{Msg: &kubeletv1.ExecOutput_Started{Started: true}}); err != nil {
			return err
		}
	}
	if out == nil {
		return nil
	}
	return x.stream.Send(out)
}

func (x *execSession) start() { _ = x.send(nil) } // a failed send fails the next one too

func (x *execSession) stdout() io.Writer {
	return chunkWriter(func(b []byte) error {
		return x.send(&kubeletv1.ExecOutput{Msg: &kubeletv1.ExecOutput_Stdout{Stdout: b}})
	})
}

func (x *execSession) stderr() io.Writer {
	return chunkWriter(func(b []byte) error {
		return x.send(&kubeletv1.ExecOutput{Msg: &kubeletv1.ExecOutput_Stderr{Stderr: b}})
	})
}

// input starts the goroutine that reads the call's later messages: stdin into the
// returned reader (nil, and stdin dropped, unless start asked for it), sizes into
// resize. The reader ends with stdin_eof or the end of the API server's messages, and
// fails when the call fails; the caller closes it when done with it.
func (x *execSession) input(ctx context.Context, withStdin bool, resize chan<- TerminalSize) *io.PipeReader {
	var pr *io.PipeReader
	var pw *io.PipeWriter
	if withStdin {
		pr, pw = io.Pipe()
	}
	go func() {
		for {
			in, err := x.stream.Recv()
			if err != nil {
				if pw != nil {
					pw.CloseWithError(err) // io.EOF: a plain end of input
				}
				return
			}
			switch m := in.GetMsg().(type) {
			case *kubeletv1.ExecInput_Stdin:
				if pw == nil {
					continue
				}
				if _, err := pw.Write(m.Stdin); err != nil {
					pw = nil // the command is done reading: drop the rest, still read resizes
				}
			case *kubeletv1.ExecInput_StdinEof:
				if pw != nil {
					pw.Close()
				}
			case *kubeletv1.ExecInput_Resize:
				select {
				case resize <- TerminalSize{Width: uint16(m.Resize.GetWidth()), Height: uint16(m.Resize.GetHeight())}:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return pr
}

// recvStart reads a call's first message, its start.
func recvStart(stream execStream) (*kubeletv1.ExecStart, error) {
	in, err := stream.Recv()
	if err != nil {
		return nil, err
	}
	start := in.GetStart()
	if start == nil {
		return nil, status.Error(codes.InvalidArgument, "the first message must be start")
	}
	return start, nil
}

// Exec implements kubeletv1.KubeletStreamsServer.
func (s streamServer) Exec(stream kubeletv1.KubeletStreams_ExecServer) error {
	ctx := stream.Context()
	start, err := recvStart(stream)
	if err != nil {
		return err
	}
	if len(start.GetCommand()) == 0 {
		return status.Error(codes.InvalidArgument, "start.command: Required value: a command to run")
	}
	rt, c, err := s.running(ctx, start)
	if err != nil {
		return err
	}
	x := &execSession{stream: stream}
	resize := make(chan TerminalSize)
	stdin := x.input(ctx, start.GetStdin(), resize)
	opts := ExecOptions{Command: start.GetCommand(), Stdout: x.stdout(), Stderr: x.stderr(),
		TTY: start.GetTty(), Resize: resize, Started: x.start}
	if stdin != nil {
		opts.Stdin = stdin
		defer stdin.Close() // a runtime still reading it stops
	}
	if sz := start.GetSize(); sz != nil {
		opts.Size = TerminalSize{Width: uint16(sz.GetWidth()), Height: uint16(sz.GetHeight())}
	}
	code, err := rt.Exec(ctx, c.ID, opts)
	if err != nil {
		return s.execError(ctx, start, err)
	}
	return x.send(&kubeletv1.ExecOutput{Msg: &kubeletv1.ExecOutput_ExitCode{ExitCode: int32(code)}})
}

// execError is the gRPC error of a failed exec or attach.
func (s streamServer) execError(ctx context.Context, start *kubeletv1.ExecStart, err error) error {
	where := fmt.Sprintf("container %q in pod %s/%s on node %s", start.GetContainer(), start.GetNamespace(), start.GetPod(), start.GetNodeName())
	switch {
	case ctx.Err() != nil:
		return status.FromContextError(ctx.Err()).Err()
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrNotRunning):
		return status.Errorf(codes.FailedPrecondition, "%s is not running: %v", where, err)
	case errors.Is(err, ErrNoInput):
		return status.Errorf(codes.FailedPrecondition, "%s has no input to attach to: %v", where, err)
	}
	if _, ok := status.FromError(err); ok {
		return err // the stream's own failure
	}
	// Kubernetes' word for a command that could not run, too ("Internal error occurred:
	// error executing command in container: ...").
	return status.Errorf(codes.Internal, "error executing command in %s: %v", where, err)
}

// Attach implements kubeletv1.KubeletStreamsServer: the container's output from now
// until it exits (its log, followed: stdout and stderr each as its own, or the
// terminal's as stdout) and, for a container started with stdin and a terminal, the
// caller's input and terminal sizes. Whether there is a terminal is the
// container's (tty in its spec), not the request's, as in Kubernetes. Input for a
// container without stdin is refused (Kubernetes' runtimes drop it silently); the end
// of the caller's input detaches the caller (the container's input stays open for the
// next one), as CRI's attach does, but for a container with stdinOnce and no terminal:
// its input is closed then, and its output followed until it exits.
func (s streamServer) Attach(stream kubeletv1.KubeletStreams_AttachServer) error {
	ctx := stream.Context()
	start, err := recvStart(stream)
	if err != nil {
		return err
	}
	if len(start.GetCommand()) > 0 {
		return status.Error(codes.InvalidArgument, "start.command: Forbidden: attach runs no command")
	}
	rt, c, err := s.running(ctx, start)
	if err != nil {
		return err
	}
	withStdin := start.GetStdin()
	switch {
	case withStdin && !c.Stdin:
		return status.Errorf(codes.FailedPrecondition, "container %q in pod %s/%s was not started with stdin: it has no input to attach to",
			start.GetContainer(), start.GetNamespace(), start.GetPod())
	}
	x := &execSession{stream: stream}
	resize := make(chan TerminalSize)
	stdin := x.input(ctx, withStdin, resize)
	opts := AttachOptions{Resize: resize}
	if stdin != nil {
		opts.Stdin = stdin
		defer stdin.Close() // the runtime's copy still reading it stops
	}
	ctx, detach := context.WithCancel(ctx)
	defer detach()
	attached := make(chan error, 1)
	// The caller's input ending detaches it, but from a container whose input that
	// closed (stdinOnce, no terminal): its output goes on until it exits, as CRI's.
	closesInput := c.StdinOnce && !c.TTY
	go func() {
		err := rt.Attach(ctx, c.ID, opts)
		if err != nil || (stdin != nil && !closesInput) {
			detach() // it failed, or the caller's input ended
		}
		attached <- err
	}()
	x.start()
	zero := int64(0)
	req := &kubeletv1.ContainerLogsRequest{Follow: true, TailLines: &zero}
	// A terminal has one stream (its shim logs it as stdout); without one, what the
	// container writes on stderr goes out as stderr, as CRI's attach sends it.
	var stderr io.Writer
	if !c.TTY {
		stderr = x.stderr()
	}
	err = s.s.copyLogs(ctx, rt, c.ID, x.stdout(), stderr, req)
	detach()
	aerr := <-attached
	switch {
	case aerr != nil && !errors.Is(aerr, context.Canceled):
		return s.execError(stream.Context(), start, aerr)
	case err != nil && ctx.Err() == nil:
		return s.execError(ctx, start, err)
	case stream.Context().Err() != nil:
		return status.FromContextError(stream.Context().Err()).Err()
	}
	return nil
}

// PortForward implements kubeletv1.KubeletStreamsServer: a connection to a port of the
// pod, through the runtime's dialer for the pod's network namespace. The API server's
// end of sending half-closes the connection; the port's end closing ends the call.
func (s streamServer) PortForward(stream kubeletv1.KubeletStreams_PortForwardServer) error {
	ctx := stream.Context()
	in, err := stream.Recv()
	if err != nil {
		return err
	}
	start := in.GetStart()
	if start == nil {
		return status.Error(codes.InvalidArgument, "the first message must be start")
	}
	port := start.GetPort()
	if port <= 0 || port > 65535 {
		return status.Errorf(codes.InvalidArgument, "start.port: Invalid value: %d: must be between 1 and 65535, inclusive", port)
	}
	rt, ctrs, err := s.s.containers(ctx, start.GetNodeName())
	if err != nil {
		return err
	}
	where := fmt.Sprintf("pod %s/%s on node %s", start.GetNamespace(), start.GetPod(), start.GetNodeName())
	var id string
	for _, c := range ctrs {
		if c.Namespace == start.GetNamespace() && c.PodName == start.GetPod() && (start.GetPodUid() == "" || c.PodUID == start.GetPodUid()) &&
			c.State == StateRunning {
			id = c.ID
			break
		}
	}
	if id == "" {
		return status.Errorf(codes.FailedPrecondition, "%s has no running container: nothing to forward to", where)
	}
	dial, err := rt.PodDialer(ctx, id)
	if err != nil {
		return s.execError(ctx, &kubeletv1.ExecStart{NodeName: start.GetNodeName(), Namespace: start.GetNamespace(), Pod: start.GetPod()}, err)
	}
	conn, err := dial(ctx, int(port))
	if err != nil {
		// Not Unavailable: the kubelet is there, the port's listener is not.
		return status.Errorf(codes.FailedPrecondition, "port %d of %s: %v", port, where, err)
	}
	defer conn.Close() // also ends the input goroutine's writes
	if err := stream.Send(&kubeletv1.PortForwardOutput{Msg: &kubeletv1.PortForwardOutput_Connected{Connected: true}}); err != nil {
		return err
	}
	go func() {
		for {
			in, err := stream.Recv()
			if err != nil {
				if errors.Is(err, io.EOF) {
					closeWrite(conn)
				} else {
					conn.Close()
				}
				return
			}
			if _, err := conn.Write(in.GetData()); err != nil {
				return
			}
		}
	}()
	send := chunkWriter(func(b []byte) error {
		return stream.Send(&kubeletv1.PortForwardOutput{Msg: &kubeletv1.PortForwardOutput_Data{Data: b}})
	})
	if _, err := io.Copy(send, conn); err != nil && ctx.Err() == nil && !errors.Is(err, net.ErrClosed) {
		if _, ok := status.FromError(err); ok {
			return err
		}
		return status.Errorf(codes.Unavailable, "port %d of %s: %v", port, where, err)
	}
	return nil
}

// closeWrite half-closes conn when it can (TCP), else closes it.
func closeWrite(conn net.Conn) {
	if cw, ok := conn.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
		return
	}
	conn.Close()
}
