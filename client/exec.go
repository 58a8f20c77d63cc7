package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"

	"google.golang.org/grpc"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// streamChunk bounds one message of input sent to a command or a port.
const streamChunk = 32 << 10

// TerminalSize is a terminal's size in characters.
type TerminalSize struct {
	Width, Height uint16
}

// ExecOptions say what to run in a container and where its input and output go.
type ExecOptions struct {
	// Container names the container; empty means the pod's only one.
	Container string
	// Command is the executable and its arguments, run without a shell (Exec only).
	Command []string
	// Stdin is sent to the command until it ends (then the command's input is closed);
	// nil sends none. A Read still blocked when the call ends is abandoned: the
	// goroutine making it ends when it returns.
	Stdin io.Reader
	// Stdout and Stderr receive the output (nil: discarded); with TTY, all of it goes
	// to Stdout.
	Stdout, Stderr io.Writer
	// TTY runs the command in a terminal of Size, resized to each size Resize sends.
	TTY    bool
	Size   TerminalSize
	Resize <-chan TerminalSize
}

// ExitError is a command that ran and exited with a non-zero code.
type ExitError struct{ Code int }

func (e *ExitError) Error() string {
	return fmt.Sprintf("command terminated with exit code %d", e.Code)
}

// Exec runs a command in a container of pod namespace/name, through the API server and
// the kubelet of the pod's node, as kubectl exec does. It returns when the command has
// exited and its output is copied: nil for exit code 0, an *ExitError otherwise. It is
// tried again elsewhere only when refused before the command started (never twice).
func (c *Conn) Exec(ctx context.Context, namespace, name string, opts ExecOptions) error {
	code, exited, err := c.execStream(ctx, namespace, name, opts, false)
	switch {
	case err != nil:
		return err
	case !exited:
		return fmt.Errorf("exec in pod %s/%s: the stream ended without the command's exit code", namespace, name)
	case code != 0:
		return &ExitError{Code: code}
	}
	return nil
}

// Attach copies the output of a running container of pod namespace/name from now on,
// until the container exits or ctx ends, as kubectl attach does: what it writes on
// stdout to opts.Stdout and on stderr to opts.Stderr, or its terminal's to opts.Stdout
// (a container with tty). opts.Stdin goes to the input of a container with stdin
// (refused for others); opts.Command must be empty.
func (c *Conn) Attach(ctx context.Context, namespace, name string, opts ExecOptions) error {
	_, _, err := c.execStream(ctx, namespace, name, opts, true)
	return err
}

// execStream runs an Exec or Attach call: the start (retried only while nothing
// started), then input and output until the server ends the stream.
func (c *Conn) execStream(ctx context.Context, namespace, name string, opts ExecOptions, attach bool) (code int, exited bool, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := &apiv1.ExecStart{Namespace: namespace, Name: name, Container: opts.Container, Command: opts.Command,
		Stdin: opts.Stdin != nil, Tty: opts.TTY}
	if opts.TTY {
		start.Size = &apiv1.TerminalSize{Width: uint32(opts.Size.Width), Height: uint32(opts.Size.Height)}
	}
	var stream grpc.BidiStreamingClient[apiv1.ExecRequest, apiv1.ExecResponse]
	var first *apiv1.ExecResponse
	err = c.invoke(ctx, once, 0, func(ctx context.Context, cc *grpc.ClientConn) error {
		pc := apiv1.NewPodsClient(cc)
		open := pc.Exec
		if attach {
			open = pc.Attach
		}
		s, err := open(ctx)
		if err != nil {
			return err
		}
		// A failed Send is io.EOF; Recv says why the stream ended.
		if err := s.Send(&apiv1.ExecRequest{Msg: &apiv1.ExecRequest_Start{Start: start}}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		m, err := s.Recv()
		if err != nil {
			return err
		}
		stream, first = s, m
		return nil
	})
	if err != nil {
		return 0, false, err
	}
	// One goroutine sends input and resizes, in the order it takes them: a resize
	// handed over before the input ends reaches the command before the input's end.
	var chunks chan []byte
	if opts.Stdin != nil {
		chunks = make(chan []byte)
		go readChunks(ctx, opts.Stdin, chunks)
	}
	sending := make(chan struct{})
	go func() {
		defer close(sending)
		for {
			var r apiv1.ExecRequest
			select {
			case b, ok := <-chunks:
				if !ok {
					r.Msg, chunks = &apiv1.ExecRequest_StdinEof{StdinEof: true}, nil
				} else {
					r.Msg = &apiv1.ExecRequest_Stdin{Stdin: b}
				}
			case s, ok := <-opts.Resize:
				if !ok {
					opts.Resize = nil
					continue
				}
				r.Msg = &apiv1.ExecRequest_Resize{Resize: &apiv1.TerminalSize{Width: uint32(s.Width), Height: uint32(s.Height)}}
			case <-ctx.Done():
				return
			}
			if stream.Send(&r) != nil {
				return // Recv says why
			}
		}
	}()
	defer func() { cancel(); <-sending }()
	write := func(w io.Writer, b []byte) error {
		if w == nil {
			return nil
		}
		if _, err := w.Write(b); err != nil {
			return fmt.Errorf("pod %s/%s: write output: %w", namespace, name, err)
		}
		return nil
	}
	for m := first; ; {
		switch x := m.GetMsg().(type) {
		case *apiv1.ExecResponse_Stdout:
			err = write(opts.Stdout, x.Stdout)
		case *apiv1.ExecResponse_Stderr:
			err = write(opts.Stderr, x.Stderr)
		case *apiv1.ExecResponse_ExitCode:
			code, exited = int(x.ExitCode), true
		}
		if err != nil {
			return 0, false, err
		}
		if m, err = stream.Recv(); errors.Is(err, io.EOF) {
			return code, exited, nil
		} else if err != nil {
			return 0, false, err
		}
	}
}

// readChunks sends what r reads to chunks, and closes chunks at r's end (io.EOF); it
// stops without closing on a read error or when ctx ends.
func readChunks(ctx context.Context, r io.Reader, chunks chan<- []byte) {
	buf := make([]byte, streamChunk)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			select {
			case chunks <- append([]byte(nil), buf[:n]...):
			case <-ctx.Done():
				return
			}
		}
		if errors.Is(err, io.EOF) {
			close(chunks)
			return
		}
		if err != nil || ctx.Err() != nil {
			return
		}
	}
}

// ForwardedConn is a connection to a pod's port made by PortForward.
type ForwardedConn struct {
	stream grpc.BidiStreamingClient[apiv1.PortForwardRequest, apiv1.PortForwardResponse]
	cancel context.CancelFunc
	sendMu sync.Mutex
	buf    []byte // received, not yet read
}

// PortForward connects to TCP port of pod namespace/name through the API server and the
// kubelet of the pod's node (in the pod's network namespace), as kubectl port-forward
// does for each connection it accepts. It returns once connected; ctx bounds the
// connection's life. An error before that says why (nothing listens on the port: it
// is FailedPrecondition); only a refusal before the kubelet was reached is retried.
func (c *Conn) PortForward(ctx context.Context, namespace, name string, port int) (*ForwardedConn, error) {
	ctx, cancel := context.WithCancel(ctx)
	var stream grpc.BidiStreamingClient[apiv1.PortForwardRequest, apiv1.PortForwardResponse]
	err := c.invoke(ctx, once, 0, func(ctx context.Context, cc *grpc.ClientConn) error {
		s, err := apiv1.NewPodsClient(cc).PortForward(ctx)
		if err != nil {
			return err
		}
		start := &apiv1.PortForwardStart{Namespace: namespace, Name: name, Port: int32(port)}
		if err := s.Send(&apiv1.PortForwardRequest{Msg: &apiv1.PortForwardRequest_Start{Start: start}}); err != nil && !errors.Is(err, io.EOF) {
			return err
		}
		m, err := s.Recv()
		if err != nil {
			return err
		}
		if !m.GetConnected() {
			return fmt.Errorf("port-forward to pod %s/%s port %d: the server sent data before connecting", namespace, name, port)
		}
		stream = s
		return nil
	})
	if err != nil {
		cancel()
		return nil, err
	}
	return &ForwardedConn{stream: stream, cancel: cancel}, nil
}

// Read reads what the port sent; io.EOF once it closed its end.
func (f *ForwardedConn) Read(p []byte) (int, error) {
	for len(f.buf) == 0 {
		m, err := f.stream.Recv()
		if err != nil {
			return 0, err
		}
		f.buf = m.GetData()
	}
	n := copy(p, f.buf)
	f.buf = f.buf[n:]
	return n, nil
}

// Write sends p to the port.
func (f *ForwardedConn) Write(p []byte) (int, error) {
	f.sendMu.Lock()
	defer f.sendMu.Unlock()
	n := 0
	for len(p) > 0 {
		k := min(len(p), streamChunk)
		if err := f.stream.Send(&apiv1.PortForwardRequest{Msg: &apiv1.PortForwardRequest_Data{Data: p[:k]}}); err != nil {
			return n, err
		}
		n, p = n+k, p[k:]
	}
	return n, nil
}

// CloseWrite says nothing more will be written: the port reads its end.
func (f *ForwardedConn) CloseWrite() error {
	f.sendMu.Lock()
	defer f.sendMu.Unlock()
	return f.stream.CloseSend()
}

// Close ends the connection.
func (f *ForwardedConn) Close() error {
	f.cancel()
	return nil
}
