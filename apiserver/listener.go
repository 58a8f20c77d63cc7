package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"google.golang.org/grpc/credentials"
)

// One port serves both APIs. gRPC is HTTP/2 whose requests have content-type
// application/grpc; kubectl and client-go speak HTTP/1.1 or HTTP/2 with other content
// types. The API listener's connections are split by their first request: after the TLS
// handshake (which offers h2 and http/1.1), an HTTP/2 connection's preface and frames are
// read up to its first HEADERS frame, whose content-type decides; anything else is
// HTTP/1.1, which gRPC never uses. The bytes read are replayed to the server that takes
// the connection, gRPC's own transport (its fast path, unchanged) or net/http's server.
//
// gRPC-Go clients wait for the server's SETTINGS frame before they send a request, so the
// splitter sends an empty one first, as cmux does. A gRPC server ignores the client's
// extra acknowledgement of it; net/http's would hang up on it, so a REST connection's
// first SETTINGS acknowledgement is dropped on the way in.

// sniffTimeout bounds the handshake and the wait for a connection's first request.
const sniffTimeout = 10 * time.Second

// splitter accepts the API listener's connections and hands each to one of two listeners.
type splitter struct {
	ln   net.Listener
	tls  *tls.Config // nil: plaintext (h2c for gRPC)
	grpc *connQueue
	rest *connQueue
	wg   sync.WaitGroup
	// established, when set, is called with each connection once it has been split (the
	// listener's guard, when requests are not authenticated: the handshake is all).
	established func(net.Conn)
}

func newSplitter(ln net.Listener, cfg *tls.Config) *splitter {
	if cfg != nil {
		cfg = cfg.Clone()
		cfg.NextProtos = []string{http2.NextProtoTLS, "http/1.1"}
	}
	return &splitter{ln: ln, tls: cfg, grpc: newConnQueue(ln.Addr()), rest: newConnQueue(ln.Addr())}
}

// run accepts until the listener is closed. The servers close the queues when they
// stop, which ends the hand-over of connections still being split.
func (s *splitter) run() {
	defer s.wg.Wait()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.split(c)
		}()
	}
}

func (s *splitter) close() error { return s.ln.Close() }

// split reads the start of one connection and queues it where it belongs.
func (s *splitter) split(raw net.Conn) {
	raw.SetDeadline(time.Now().Add(sniffTimeout))
	var conn net.Conn = raw
	var state *tls.ConnectionState
	if s.tls != nil {
		tc := tls.Server(raw, s.tls)
		if err := tc.Handshake(); err != nil {
			raw.Close()
			return
		}
		cs := tc.ConnectionState()
		conn, state = tc, &cs
	}
	br := bufio.NewReader(conn)
	h2 := false
	if state != nil {
		h2 = state.NegotiatedProtocol == http2.NextProtoTLS
	} else {
		head, _ := br.Peek(len(http2.ClientPreface))
		h2 = string(head) == http2.ClientPreface
	}
	sc := &splitConn{Conn: conn, in: br, state: state}
	if !h2 {
		raw.SetDeadline(time.Time{})
		s.establish(raw)
		s.rest.put(sc)
		return
	}
	contentType, read, err := firstContentType(br, conn)
	if err != nil {
		raw.Close()
		return
	}
	raw.SetDeadline(time.Time{})
	s.establish(raw)
	sc.in = io.MultiReader(bytes.NewReader(read), br)
	if state != nil {
		// The TLS connection reads whole records and serves their decrypted bytes from
		// its own buffer: a bufio.Reader over it only held 4 KiB a connection for the
		// connection's life (5,000 simulated nodes' connections, issue 26). What it has
		// buffered beyond the first request is replayed, then reads go to the TLS
		// connection. A plaintext connection keeps it: gRPC's server reads through it
		// with no buffer of its own (grpc.ReadBufferSize(0) in server.go).
		rest, _ := br.Peek(br.Buffered())
		sc.in = io.MultiReader(bytes.NewReader(slices.Concat(read, rest)), conn)
	}
	if strings.HasPrefix(contentType, "application/grpc") {
		s.grpc.put(sc)
		return
	}
	sc.in = &settingsAckFilter{r: sc.in}
	sc.out = newWriteBatcher(conn)
	s.rest.put(sc)
}

func (s *splitter) establish(c net.Conn) {
	if s.established != nil {
		s.established(c)
	}
}

// firstContentType reads an HTTP/2 client's preface and frames up to its first request's
// headers, after sending an empty SETTINGS frame, and returns the request's content-type
// and every byte read.
func firstContentType(r io.Reader, w io.Writer) (string, []byte, error) {
	var read bytes.Buffer
	tee := io.TeeReader(r, &read)
	preface := make([]byte, len(http2.ClientPreface))
	if _, err := io.ReadFull(tee, preface); err != nil || string(preface) != http2.ClientPreface {
		return "", nil, fmt.Errorf("not an HTTP/2 client preface")
	}
	if err := http2.NewFramer(w, nil).WriteSettings(); err != nil {
		return "", nil, err
	}
	fr := http2.NewFramer(nil, tee)
	contentType := ""
	dec := hpack.NewDecoder(4096, func(f hpack.HeaderField) {
		if f.Name == "content-type" {
			contentType = f.Value
		}
	})
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return "", nil, err
		}
		var block []byte
		end := false
		switch f := f.(type) {
		case *http2.HeadersFrame:
			block, end = f.HeaderBlockFragment(), f.HeadersEnded()
		case *http2.ContinuationFrame:
			block, end = f.HeaderBlockFragment(), f.HeadersEnded()
		default:
			continue
		}
		if _, err := dec.Write(block); err != nil {
			return "", nil, err
		}
		if end {
			return contentType, read.Bytes(), nil
		}
	}
}

// settingsAckFilter passes an HTTP/2 client's frames through, but for the first SETTINGS
// acknowledgement: the one of the splitter's SETTINGS frame, which the server receiving
// the connection never sent.
type settingsAckFilter struct {
	r       io.Reader
	dropped bool
	prefix  bool   // the preface has been passed
	pending []byte // bytes of whole frames ready to be read
	skip    int    // frame payload bytes still to pass through unparsed
}

func (f *settingsAckFilter) Read(p []byte) (int, error) {
	if f.dropped && len(f.pending) == 0 {
		return f.r.Read(p)
	}
	for len(f.pending) == 0 {
		if err := f.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, f.pending)
	f.pending = f.pending[n:]
	return n, nil
}

// next stages the next piece of the stream: the preface, a frame, or part of a payload.
func (f *settingsAckFilter) next() error {
	if !f.prefix {
		f.prefix = true
		f.pending = make([]byte, len(http2.ClientPreface))
		_, err := io.ReadFull(f.r, f.pending)
		return err
	}
	if f.skip > 0 {
		buf := make([]byte, min(f.skip, 32<<10))
		n, err := f.r.Read(buf)
		f.skip -= n
		f.pending = buf[:n]
		return err
	}
	var hdr [9]byte
	if _, err := io.ReadFull(f.r, hdr[:]); err != nil {
		return err
	}
	length := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	typ, flags := http2.FrameType(hdr[3]), http2.Flags(hdr[4])
	if typ == http2.FrameSettings && flags.Has(http2.FlagSettingsAck) && length == 0 {
		f.dropped = true
		return nil
	}
	f.pending = append([]byte(nil), hdr[:]...)
	f.skip = length
	return nil
}

// splitConn is a connection whose first bytes were read by the splitter.
type splitConn struct {
	net.Conn
	in    io.Reader
	out   *writeBatcher        // a REST HTTP/2 connection's writes; nil: straight to Conn
	state *tls.ConnectionState // nil: plaintext
}

func (c *splitConn) Read(p []byte) (int, error) { return c.in.Read(p) }

func (c *splitConn) Write(p []byte) (int, error) {
	if c.out != nil {
		return c.out.Write(p)
	}
	return c.Conn.Write(p)
}

func (c *splitConn) Close() error {
	if c.out != nil {
		return c.out.close()
	}
	return c.Conn.Close()
}

// connQueue is a net.Listener fed by the splitter.
type connQueue struct {
	addr   net.Addr
	conns  chan net.Conn
	done   chan struct{}
	closed sync.Once
}

func newConnQueue(addr net.Addr) *connQueue {
	return &connQueue{addr: addr, conns: make(chan net.Conn), done: make(chan struct{})}
}

func (q *connQueue) put(c net.Conn) {
	select {
	case q.conns <- c:
	case <-q.done:
		c.Close()
	}
}

func (q *connQueue) Accept() (net.Conn, error) {
	select {
	case c := <-q.conns:
		return c, nil
	case <-q.done:
		return nil, net.ErrClosed
	}
}

func (q *connQueue) Close() error {
	q.closed.Do(func() { close(q.done) })
	return nil
}

func (q *connQueue) Addr() net.Addr { return q.addr }

// splitCredentials are gRPC's transport credentials for connections the splitter has
// already taken through the TLS handshake: the handshake's state is the peer's AuthInfo.
type splitCredentials struct{}

func (splitCredentials) ClientHandshake(context.Context, string, net.Conn) (net.Conn, credentials.AuthInfo, error) {
	return nil, nil, errors.New("splitCredentials are for servers")
}

func (splitCredentials) ServerHandshake(c net.Conn) (net.Conn, credentials.AuthInfo, error) {
	sc, ok := c.(*splitConn)
	if !ok || sc.state == nil {
		return c, insecureInfo{}, nil
	}
	return c, credentials.TLSInfo{State: *sc.state, CommonAuthInfo: credentials.CommonAuthInfo{SecurityLevel: credentials.PrivacyAndIntegrity}}, nil
}

func (splitCredentials) Info() credentials.ProtocolInfo {
	return credentials.ProtocolInfo{SecurityProtocol: "tls"}
}

func (s splitCredentials) Clone() credentials.TransportCredentials { return s }

func (splitCredentials) OverrideServerName(string) error { return nil }

// insecureInfo is the AuthInfo of a plaintext connection.
type insecureInfo struct{ credentials.CommonAuthInfo }

func (insecureInfo) AuthType() string { return "insecure" }

// connTLS is the TLS state of a REST request's connection, for the HTTP server's
// ConnContext.
type connTLSKey struct{}

func connContext(ctx context.Context, c net.Conn) context.Context {
	if sc, ok := c.(*splitConn); ok && sc.state != nil {
		return context.WithValue(ctx, connTLSKey{}, sc.state)
	}
	return ctx
}

func requestTLS(ctx context.Context) *tls.ConnectionState {
	st, _ := ctx.Value(connTLSKey{}).(*tls.ConnectionState)
	return st
}
