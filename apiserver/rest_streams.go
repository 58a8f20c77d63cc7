package apiserver

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/net/websocket"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/httpstream/spdy"
	"k8s.io/apimachinery/pkg/util/httpstream/wsstream"
	"k8s.io/cri-streaming/pkg/streaming/portforward"
	"k8s.io/cri-streaming/pkg/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"

	"github.com/skiffhq/skiff/apiserver/auth"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// The pods' exec, attach and portforward subresources over the REST API, as kubectl
// and client-go speak them: an upgraded connection carrying the streams, over
// WebSocket (kubectl's default since 1.30: channels v5.channel.k8s.io, with the close
// signal, and v4.channel.k8s.io, for exec and attach; SPDY/3.1 tunnelled in WebSocket
// binary messages, SPDY/3.1+portforward.k8s.io, for portforward since 1.31) or SPDY/3.1
// (client-go's fallback and older clients; the kubelet's protocols, whose server side
// is k8s.io/cri-streaming's, the library Kubernetes' kubelet serves them with). Behind
// either, the request goes the gRPC API's way: startExec or startPortForward and relay
// (streams.go), to the kubelet of the pod's node.
//
// The request was authorized as "create pods/exec" (attach, portforward), GET as well
// as POST, as Kubernetes authorizes WebSocket upgrades. Errors up to the upgrade (no
// such pod, container or command) are the HTTP response, a Status; after it, the
// error channel's.

// streamIdleTimeout closes an upgraded connection that carried nothing for so long:
// the kubelet's default (streamingConnectionIdleTimeout).
const streamIdleTimeout = 4 * time.Hour

// WebSocket subprotocols of exec and attach (channel numbers remotecommand.StreamStdIn
// to StreamResize), and of portforward's tunnel.
const (
	protocolV4Base64  = "v4." + wsstream.Base64ChannelWebSocketProtocol
	portForwardTunnel = portforward.WebsocketsSPDYTunnelingPortForwardV1
)

// podStreamSubresource says whether a pod subresource is one of these streams.
func podStreamSubresource(name string) bool {
	return name == auth.SubresourceExec || name == auth.SubresourceAttach || name == auth.SubresourcePortForward
}

// isPodStreamPath says whether a request path is a pod's stream (.../pods/NAME/exec):
// it lasts, so it is not served on a write worker.
func isPodStreamPath(path string) bool {
	segs := strings.Split(strings.TrimSuffix(path, "/"), "/")
	n := len(segs)
	return n >= 3 && segs[n-3] == "pods" && podStreamSubresource(segs[n-1])
}

// upgradeTo says whether a request asks to upgrade its connection to a WebSocket (true)
// or to SPDY (false), or why it cannot be upgraded.
func upgradeTo(r *http.Request) (ws bool, err error) {
	switch {
	case r.ProtoMajor != 1:
		return false, badRequest("Upgrade request required: over HTTP/1.1 (this request is %s)", r.Proto)
	case wsstream.IsWebSocketRequest(r):
		return true, nil
	case httpstream.IsUpgradeRequest(r) && strings.EqualFold(r.Header.Get(httpstream.HeaderUpgrade), spdy.HeaderSpdy31):
		return false, nil
	}
	return false, badRequest("Upgrade request required")
}

// execRequest is an exec's or attach's query (PodExecOptions, PodAttachOptions).
type execRequest struct {
	start                 *apiv1.ExecStart
	stdin, stdout, stderr bool
}

// execRequestOf reads the query of an exec or attach of pod namespace/name.
func execRequestOf(q url.Values, namespace, name string, attach bool) (*execRequest, error) {
	flag := func(key string) (bool, error) {
		v := q.Get(key)
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, badRequest("%s: Invalid value: %q: must be a boolean", key, v)
		}
		return b, nil
	}
	e := &execRequest{start: &apiv1.ExecStart{Namespace: namespace, Name: name, Container: q.Get("container")}}
	var err error
	for _, f := range []struct {
		key string
		p   *bool
	}{{"stdin", &e.stdin}, {"stdout", &e.stdout}, {"stderr", &e.stderr}, {"tty", &e.start.Tty}} {
		if *f.p, err = flag(f.key); err != nil {
			return nil, err
		}
	}
	if !attach {
		e.start.Command = q["command"]
	}
	if !e.stdin && !e.stdout && !e.stderr {
		return nil, badRequest("you must specify at least 1 of stdin, stdout, stderr")
	}
	if e.start.Tty && e.stderr {
		e.stderr = false // one stream, stdout, as Kubernetes does
	}
	e.start.Stdin = e.stdin
	return e, nil
}

// podExec serves exec and attach.
func (a *restAPI) podExec(w http.ResponseWriter, r *http.Request, req *restRequest) {
	attach := req.subresource == auth.SubresourceAttach
	e, err := execRequestOf(r.URL.Query(), req.namespace, req.name, attach)
	if err == nil {
		err = a.pods.admitExec(r.Context(), e, attach)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ws, err := upgradeTo(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	k, err := a.pods.startExec(r.Context(), e.start, attach)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer k.close()
	run := func(s execIO) (int32, error) { return runExec(k, s) }
	if ws {
		serveExecWebSocket(w, r, e, run, a.log)
		return
	}
	x := spdyExec{run: run, command: e.start.Command}
	opts := &remotecommand.Options{Stdin: e.stdin, Stdout: e.stdout, Stderr: e.stderr, TTY: e.start.Tty}
	if attach {
		remotecommand.ServeAttach(w, r, x, req.name, "", e.start.Container, opts, streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
		return
	}
	remotecommand.ServeExec(w, r, x, req.name, "", e.start.Container, e.start.Command, opts, streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, remotecommand.SupportedStreamingProtocols)
}

// execIO are an exec's streams on the caller's side (nil: not asked for).
type execIO struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	resize         <-chan remotecommand.TerminalSize // closed when the caller sends no more
}

// runExec relays an exec or attach the kubelet runs between it and the caller's
// streams, and returns the command's exit code.
func runExec(k *execStream, s execIO) (int32, error) {
	c := &execCaller{ctx: k.ctx, in: make(chan *apiv1.ExecRequest), out: s}
	if s.stdin != nil {
		go c.readStdin(s.stdin)
	}
	if s.resize != nil {
		go c.readResizes(s.resize)
	}
	err := relay(k, c, execInput, execOutput)
	return c.exit, err
}

// execCaller is the REST caller's end of an exec's relay: its input as the gRPC API's
// messages, read from the caller's streams by goroutines that end when the
// connection closes (after the relay) or, sending, with the kubelet's stream.
type execCaller struct {
	ctx  context.Context
	in   chan *apiv1.ExecRequest
	out  execIO
	exit int32
}

var _ callerStream[apiv1.ExecRequest, apiv1.ExecResponse] = (*execCaller)(nil)

func (c *execCaller) Recv() (*apiv1.ExecRequest, error) {
	select {
	case m := <-c.in:
		return m, nil
	case <-c.ctx.Done():
		return nil, c.ctx.Err()
	}
}

func (c *execCaller) Send(m *apiv1.ExecResponse) error {
	var err error
	switch m := m.GetMsg().(type) {
	case *apiv1.ExecResponse_Stdout:
		if c.out.stdout != nil {
			_, err = c.out.stdout.Write(m.Stdout)
		}
	case *apiv1.ExecResponse_Stderr:
		if c.out.stderr != nil {
			_, err = c.out.stderr.Write(m.Stderr)
		}
	case *apiv1.ExecResponse_ExitCode:
		c.exit = m.ExitCode
	}
	return err
}

func (c *execCaller) send(m *apiv1.ExecRequest) bool {
	select {
	case c.in <- m:
		return true
	case <-c.ctx.Done():
		return false
	}
}

// readStdin sends the caller's input, and its end (the v5 close signal, or the
// connection's) as stdin_eof.
func (c *execCaller) readStdin(r io.Reader) {
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 && !c.send(&apiv1.ExecRequest{Msg: &apiv1.ExecRequest_Stdin{Stdin: append([]byte(nil), buf[:n]...)}}) {
			return
		}
		if err != nil {
			c.send(&apiv1.ExecRequest{Msg: &apiv1.ExecRequest_StdinEof{StdinEof: true}})
			return
		}
	}
}

func (c *execCaller) readResizes(sizes <-chan remotecommand.TerminalSize) {
	for s := range sizes {
		if !c.send(&apiv1.ExecRequest{Msg: &apiv1.ExecRequest_Resize{Resize: &apiv1.TerminalSize{Width: uint32(s.Width), Height: uint32(s.Height)}}}) {
			return
		}
	}
}

// spdyExec runs cri-streaming's exec and attach over SPDY: a non-zero exit code is its
// ExitError, which it writes as the error stream's NonZeroExitCode.
type spdyExec struct {
	run     func(execIO) (int32, error)
	command []string
}

var (
	_ remotecommand.Executor = spdyExec{}
	_ remotecommand.Attacher = spdyExec{}
)

func (x spdyExec) ExecInContainer(_ context.Context, _, _, _ string, _ []string, in io.Reader, out, errw io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	code, err := x.run(execIO{stdin: in, stdout: out, stderr: errw, resize: resize})
	if err != nil {
		return err
	}
	if code != 0 {
		return utilexec.CodeExitError{Err: exitCodeError(x.command, code), Code: int(code)}
	}
	return nil
}

func (x spdyExec) AttachContainer(ctx context.Context, name, uid, container string, in io.Reader, out, errw io.WriteCloser, tty bool, resize <-chan remotecommand.TerminalSize) error {
	return x.ExecInContainer(ctx, name, uid, container, nil, in, out, errw, tty, resize, 0)
}

func exitCodeError(command []string, code int32) error {
	return fmt.Errorf("error executing command %v, exit code %d", command, code)
}

// serveExecWebSocket upgrades an exec or attach to a WebSocket of channels and runs it.
func serveExecWebSocket(w http.ResponseWriter, r *http.Request, e *execRequest, run func(execIO) (int32, error), log hclog.Logger) {
	channels := make([]wsstream.ChannelType, remotecommand.StreamResize+1)
	channels[remotecommand.StreamStdIn] = channelType(e.stdin, wsstream.ReadChannel)
	channels[remotecommand.StreamStdOut] = channelType(e.stdout, wsstream.WriteChannel)
	channels[remotecommand.StreamStdErr] = channelType(e.stderr, wsstream.WriteChannel)
	channels[remotecommand.StreamErr] = wsstream.WriteChannel
	channels[remotecommand.StreamResize] = wsstream.ReadChannel
	conn := wsstream.NewConn(map[string]wsstream.ChannelProtocolConfig{
		remotecommand.StreamProtocolV5Name:      {Binary: true, Channels: channels},
		remotecommand.StreamProtocolV4Name:      {Binary: true, Channels: channels},
		protocolV4Base64:                        {Binary: false, Channels: channels},
		wsstream.ChannelWebSocketProtocol:       {Binary: true, Channels: channels},
		wsstream.Base64ChannelWebSocketProtocol: {Binary: false, Channels: channels},
	})
	conn.SetIdleTimeout(streamIdleTimeout)
	protocol, streams, err := conn.Open(w, r)
	if err != nil {
		log.Debug("websocket upgrade failed", "path", r.URL.Path, "error", err)
		return
	}
	defer conn.Close()
	// An empty message on the first channel the client reads: the streams are ready.
	switch {
	case e.stdout:
		streams[remotecommand.StreamStdOut].Write(nil)
	case e.stderr:
		streams[remotecommand.StreamStdErr].Write(nil)
	default:
		streams[remotecommand.StreamErr].Write(nil)
	}
	s := execIO{resize: terminalSizes(r.Context(), streams[remotecommand.StreamResize])}
	if e.stdin {
		s.stdin = streams[remotecommand.StreamStdIn]
	}
	if e.stdout {
		s.stdout = streams[remotecommand.StreamStdOut]
	}
	if e.stderr {
		s.stderr = streams[remotecommand.StreamStdErr]
	}
	code, err := run(s)
	// Closing (deferred) ends the client's streams, which client-go waits for after the
	// status: the server closes first, and wsstream's read loop, ended under it, logs
	// "Error on socket receive ... use of closed network connection" through klog.
	writeExecStatus(streams[remotecommand.StreamErr], protocol, execStatus(e.start.GetCommand(), code, err))
}

func channelType(open bool, t wsstream.ChannelType) wsstream.ChannelType {
	if open {
		return t
	}
	return wsstream.IgnoreChannel
}

// terminalSizes decodes the resize channel's JSON sizes ({"Width":80,"Height":24}),
// until it ends or ctx does.
func terminalSizes(ctx context.Context, r io.Reader) <-chan remotecommand.TerminalSize {
	ch := make(chan remotecommand.TerminalSize)
	go func() {
		defer close(ch)
		d := json.NewDecoder(r)
		for {
			var s remotecommand.TerminalSize
			if err := d.Decode(&s); err != nil {
				return
			}
			select {
			case ch <- s:
			case <-ctx.Done():
				return
			}
		}
	}()
	return ch
}

// execStatus is the error channel's report of an exec: Success, the exit code as
// Kubernetes reports it (reason NonZeroExitCode, cause ExitCode), or the error.
func execStatus(command []string, code int32, err error) *metav1.Status {
	st := &metav1.Status{Status: metav1.StatusSuccess}
	switch {
	case err != nil:
		err = fmt.Errorf("error executing command in container: %w", err)
		st = &metav1.Status{Status: metav1.StatusFailure, Reason: metav1.StatusReasonInternalError, Code: http.StatusInternalServerError,
			Message: fmt.Sprintf("Internal error occurred: %v", err)}
	case code != 0:
		st = &metav1.Status{Status: metav1.StatusFailure, Reason: "NonZeroExitCode",
			Message: fmt.Sprintf("command terminated with non-zero exit code: %v", exitCodeError(command, code)),
			Details: &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: "ExitCode", Message: strconv.Itoa(int(code))}}}}
	}
	return st
}

// writeExecStatus writes a status on the error channel: as JSON from v4 on; before,
// a failure's message alone.
func writeExecStatus(w io.Writer, protocol string, st *metav1.Status) {
	switch protocol {
	case remotecommand.StreamProtocolV5Name, remotecommand.StreamProtocolV4Name, protocolV4Base64:
		b, _ := json.Marshal(st)
		w.Write(b)
	default:
		if st.Status != metav1.StatusSuccess {
			io.WriteString(w, st.Message)
		}
	}
}

// podPortForward serves portforward: one SPDY connection (or one tunnelled in a
// WebSocket) whose stream pairs each connect to a port of the pod, through the kubelet
// of its node (one gRPC connection for them all).
func (a *restAPI) podPortForward(w http.ResponseWriter, r *http.Request, req *restRequest) {
	ports, err := portsOf(r.URL.Query())
	if err == nil {
		ports, err = a.pods.admitPortForward(r.Context(), req.namespace, req.name, ports)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	ws, err := upgradeTo(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	tunnel := wsstream.IsWebSocketRequestWithTunnelingProtocol(r)
	if ws && !tunnel && len(ports) == 0 {
		a.fail(w, r, badRequest("query parameter \"ports\" is required"))
		return
	}
	ctx := r.Context()
	pod, kc, err := a.pods.dialKubelet(ctx, req.namespace, req.name, "cannot forward its ports")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer kc.Close()
	f := forwarder{ctx: ctx, dial: func(ctx context.Context, port int32) (*portForwardStream, error) {
		return startPortForward(ctx, pod, kc, port)
	}}
	if tunnel {
		serveTunnel(w, r, f)
		return
	}
	var opts *portforward.V4Options
	if ws {
		opts, err = portforward.BuildV4Options(ports)
		if err != nil {
			a.fail(w, r, badRequest("%v", err))
			return
		}
	}
	portforward.ServePortForward(w, r, f, req.name, string(pod.UID), opts, streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
}

// portsOf reads PodPortForwardOptions' ports (ports=P, several, or comma lists).
func portsOf(q url.Values) ([]int32, error) {
	var out []int32
	for _, v := range append(q["ports"], q["port"]...) {
		for _, s := range strings.Split(v, ",") {
			p, err := strconv.ParseUint(strings.TrimSpace(s), 10, 16)
			if err != nil || p == 0 {
				return nil, badRequest("ports: Invalid value: %q: must be between 1 and 65535, inclusive", s)
			}
			out = append(out, int32(p))
		}
	}
	return out, nil
}

// forwarder connects cri-streaming's port-forward streams to the pod's ports, each
// through its own relay to the kubelet.
type forwarder struct {
	ctx  context.Context // the request's: its end ends every connection
	dial func(ctx context.Context, port int32) (*portForwardStream, error)
}

var _ portforward.PortForwarder = forwarder{}

func (f forwarder) PortForward(_ context.Context, _, _ string, port int32, stream io.ReadWriteCloser) error {
	k, err := f.dial(f.ctx, port)
	if err != nil {
		return err
	}
	defer k.cancel()
	c := &portForwardCaller{ctx: k.ctx, in: make(chan *apiv1.PortForwardRequest), out: stream}
	go c.read(stream)
	return relay(k, c, portForwardInput, portForwardOutput)
}

// portForwardCaller is a port-forward stream's end of a relay, as execCaller is an
// exec's.
type portForwardCaller struct {
	ctx context.Context
	in  chan *apiv1.PortForwardRequest
	out io.Writer
	eof bool
}

var _ callerStream[apiv1.PortForwardRequest, apiv1.PortForwardResponse] = (*portForwardCaller)(nil)

func (c *portForwardCaller) Recv() (*apiv1.PortForwardRequest, error) {
	select {
	case m, ok := <-c.in:
		if !ok {
			return nil, io.EOF // the caller's end: the connection is half-closed
		}
		return m, nil
	case <-c.ctx.Done():
		return nil, c.ctx.Err()
	}
}

func (c *portForwardCaller) Send(m *apiv1.PortForwardResponse) error {
	if d, ok := m.GetMsg().(*apiv1.PortForwardResponse_Data); ok {
		_, err := c.out.Write(d.Data)
		return err
	}
	return nil
}

// read sends what the caller writes, and closes in at its end.
func (c *portForwardCaller) read(r io.Reader) {
	defer close(c.in)
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if n > 0 {
			select {
			case c.in <- &apiv1.PortForwardRequest{Msg: &apiv1.PortForwardRequest_Data{Data: append([]byte(nil), buf[:n]...)}}:
			case <-c.ctx.Done():
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// serveTunnel serves port-forward's SPDY in a WebSocket's binary messages (kubectl's
// default since 1.31): the WebSocket is the connection cri-streaming upgrades, as
// Kubernetes' API server's tunnelling handler does.
func serveTunnel(w http.ResponseWriter, r *http.Request, f forwarder) {
	websocket.Server{
		Handshake: func(cfg *websocket.Config, _ *http.Request) error {
			for _, p := range cfg.Protocol {
				if p == portForwardTunnel {
					cfg.Protocol = []string{p}
					return nil
				}
			}
			return fmt.Errorf("requested protocol(s) are not supported: %v; supports %v", cfg.Protocol, []string{portForwardTunnel})
		},
		Handler: func(ws *websocket.Conn) {
			ws.PayloadType = websocket.BinaryFrame
			up := r.Clone(r.Context())
			up.Header = http.Header{}
			up.Header.Set(httpstream.HeaderConnection, httpstream.HeaderUpgrade)
			up.Header.Set(httpstream.HeaderUpgrade, spdy.HeaderSpdy31)
			up.Header.Set(httpstream.HeaderProtocolVersion, portforward.ProtocolV1Name)
			portforward.ServePortForward(&tunnelWriter{conn: ws, header: http.Header{}}, up, f, "", "", nil,
				streamIdleTimeout, remotecommand.DefaultStreamCreationTimeout, portforward.SupportedProtocols)
		},
	}.ServeHTTP(w, r)
}

// tunnelWriter is the response of the SPDY upgrade inside a tunnel: its status line
// and headers go nowhere (the WebSocket's were the client's answer), and hijacking it
// returns the WebSocket.
type tunnelWriter struct {
	conn   net.Conn
	header http.Header
	code   int
}

var _ http.Hijacker = (*tunnelWriter)(nil)

func (t *tunnelWriter) Header() http.Header { return t.header }

func (t *tunnelWriter) WriteHeader(code int) { t.code = code }

func (t *tunnelWriter) Write(p []byte) (int, error) {
	if t.code == 0 {
		t.code = http.StatusOK
	}
	return len(p), nil // an error before the upgrade: the WebSocket closes
}

func (t *tunnelWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if t.code != http.StatusSwitchingProtocols {
		return nil, nil, fmt.Errorf("the tunnelled upgrade answered %d", t.code)
	}
	return t.conn, bufio.NewReadWriter(bufio.NewReader(t.conn), bufio.NewWriter(t.conn)), nil
}
