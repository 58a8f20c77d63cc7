package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"golang.org/x/time/rate"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/skiffhq/skiff/connlimit"
)

// The peer port carries two protocols, told apart by the first byte of each connection:
// Raft's own RPCs, and the store's peer gRPC service (write forwarding, read index,
// membership). One port, one TLS setup, and a follower reaches the leader at the address
// Raft already knows.
const (
	protoRaft byte = 'R'
	protoPeer byte = 'P'
)

// peerMux accepts connections on the peer port and hands each to Raft or to the peer
// gRPC server.
type peerMux struct {
	ln      net.Listener
	tls     *tls.Config
	log     hclog.Logger
	raft    *subListener
	peer    *subListener
	wg      sync.WaitGroup
	closing chan struct{}
	once    sync.Once
	// refusals rate-limits the log lines of refused connections.
	refusals rate.Sometimes
	guard    *connlimit.Guard
	// hello says who this member is; check accepts or refuses a peer by what it says of
	// itself (see identity.go). nil: anonymous, and every peer accepted.
	hello func() peerHello
	check func(peerHello) error
}

func newPeerMux(ln net.Listener, tlsConf *tls.Config, log hclog.Logger, hello func() peerHello, check func(peerHello) error) *peerMux {
	// Only members connect: connections that have not finished their handshake (which
	// verifies the member's certificate) and sent their protocol byte and hello are
	// capped, and closed after 10 s.
	m := &peerMux{tls: tlsConf, log: log, closing: make(chan struct{}), refusals: rate.Sometimes{Interval: time.Second}, hello: hello, check: check}
	m.guard = connlimit.New("peer", connlimit.DefaultLimits(), log)
	m.ln = m.guard.Listener(ln)
	m.raft = newSubListener(m)
	m.peer = newSubListener(m)
	m.wg.Add(1)
	go m.serve()
	return m
}

func (m *peerMux) serve() {
	defer m.wg.Done()
	for {
		conn, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.closing:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.log.Error("peer listener failed", "error", err)
			return
		}
		m.wg.Add(1)
		go func() {
			defer m.wg.Done()
			m.route(conn)
		}()
	}
}

// route reads the protocol byte (after the TLS handshake, when TLS is on) and the peer's
// hello, answers it (accepting or refusing the peer), and passes the connection on.
func (m *peerMux) route(conn net.Conn) {
	if m.tls != nil {
		conn = tls.Server(conn, m.tls)
	}
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil {
		// A refused TLS handshake (a certificate of another CA, an expired one, plain
		// text) is worth an operator's attention; a connection that just closed is not.
		if _, isTLS := conn.(*tls.Conn); isTLS && !errors.Is(err, io.EOF) {
			m.refused(conn.RemoteAddr(), err)
		} else {
			m.log.Debug("peer connection closed before its protocol byte", "remote", conn.RemoteAddr(), "error", err)
		}
		conn.Close()
		return
	}
	var dst *subListener
	switch b[0] {
	case protoRaft:
		dst = m.raft
	case protoPeer:
		dst = m.peer
	default:
		m.log.Warn("peer connection with unknown protocol byte", "remote", conn.RemoteAddr(), "byte", b[0])
		conn.Close()
		return
	}
	h, err := readHello(conn)
	if err != nil {
		m.log.Debug("peer connection closed before its hello", "remote", conn.RemoteAddr(), "error", err)
		conn.Close()
		return
	}
	reply := m.self()
	if err := m.accept(h); err != nil {
		reply.Refused = err.Error()
		m.refused(conn.RemoteAddr(), err)
		writeHello(conn, reply)
		conn.Close()
		return
	}
	if err := writeHello(conn, reply); err != nil {
		conn.Close()
		return
	}
	conn.SetReadDeadline(time.Time{})
	m.guard.Established(conn)
	select {
	case dst.conns <- conn:
	case <-dst.closed:
		conn.Close()
	case <-m.closing:
		conn.Close()
	}
}

func (m *peerMux) close() {
	m.once.Do(func() {
		close(m.closing)
		m.ln.Close()
	})
	m.wg.Wait()
}

// dial opens a connection to a peer for one protocol, from the address the mux listens
// on (see sourceFor).
func (m *peerMux) dial(ctx context.Context, addr string, proto byte) (net.Conn, error) {
	d := net.Dialer{LocalAddr: sourceFor(m.ln.Addr(), addr)}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if m.tls != nil {
		tc := tls.Client(conn, m.tls)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, fmt.Errorf("tls handshake with %s: %w", addr, err)
		}
		conn = tc
	}
	if _, err := conn.Write([]byte{proto}); err != nil {
		conn.Close()
		return nil, err
	}
	if err := m.greet(ctx, conn, addr); err != nil {
		conn.Close()
		return nil, err
	}
	return conn, nil
}

// greet exchanges hellos on a connection this member dialed: the peer may refuse this
// member, and this member refuses a peer of another cluster in turn.
func (m *peerMux) greet(ctx context.Context, conn net.Conn, addr string) error {
	if d, ok := ctx.Deadline(); ok {
		conn.SetDeadline(d)
		defer conn.SetDeadline(time.Time{})
	}
	if err := writeHello(conn, m.self()); err != nil {
		return fmt.Errorf("hello to peer %s: %w", addr, err)
	}
	h, err := readHello(conn)
	if err != nil {
		return fmt.Errorf("hello from peer %s: %w", addr, err)
	}
	if h.Refused != "" {
		return &RefusedError{Reason: fmt.Sprintf("peer %s refused this member: %s", addr, h.Refused)}
	}
	if err := m.accept(h); err != nil {
		m.refused(conn.RemoteAddr(), err)
		return fmt.Errorf("peer %s: %w", addr, err)
	}
	return nil
}

func (m *peerMux) self() peerHello {
	if m.hello == nil {
		return peerHello{}
	}
	return m.hello()
}

func (m *peerMux) accept(h peerHello) error {
	if m.check == nil {
		return nil
	}
	return m.check(h)
}

// refused logs a peer refused for its identity: worth an operator's attention, at most
// once a second.
func (m *peerMux) refused(remote net.Addr, err error) {
	m.refusals.Do(func() {
		m.log.Info("peer connection refused", "remote", remote, "error", err, "note", "at most one such line a second")
	})
}

// sourceFor is the local address to dial peer addr from: the IP this member listens on,
// when it listens on one IP and addr is as local as it (both loopback, or neither). Peers
// then see a member's connections come from the address they know it by, so a firewall
// rule or a fault-injecting proxy can tell members apart by source address even when all
// of them share one host's loopback (where the kernel would otherwise pick 127.0.0.1).
// nil (let the kernel choose) when listening on every address or when addr is not an IP.
func sourceFor(listen net.Addr, addr string) net.Addr {
	la, ok := listen.(*net.TCPAddr)
	if !ok || la.IP == nil || la.IP.IsUnspecified() {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || ip.IsLoopback() != la.IP.IsLoopback() || (ip.To4() == nil) != (la.IP.To4() == nil) {
		return nil
	}
	return &net.TCPAddr{IP: la.IP}
}

// subListener is the net.Listener one protocol sees. Closing it stops its Accept; the
// mux owns the socket.
type subListener struct {
	mux    *peerMux
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newSubListener(m *peerMux) *subListener {
	return &subListener{mux: m, conns: make(chan net.Conn), closed: make(chan struct{})}
}

func (l *subListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	case <-l.mux.closing:
		return nil, net.ErrClosed
	}
}

func (l *subListener) Close() error {
	l.once.Do(func() { close(l.closed) })
	return nil
}

func (l *subListener) Addr() net.Addr { return l.mux.ln.Addr() }

// raftStream is Raft's StreamLayer over the mux.
type raftStream struct {
	*subListener
	advertise net.Addr
}

var _ raft.StreamLayer = (*raftStream)(nil)

func (s *raftStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.mux.dial(ctx, string(addr), protoRaft)
}

func (s *raftStream) Addr() net.Addr { return s.advertise }

// peerClients keeps one gRPC connection per peer address.
type peerClients struct {
	mux   *peerMux
	mu    sync.Mutex
	conns map[string]*grpc.ClientConn
}

func (p *peerClients) get(addr string) (*grpc.ClientConn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if cc, ok := p.conns[addr]; ok {
		return cc, nil
	}
	cc, err := grpc.NewClient("passthrough:///"+addr,
		// The mux carries TLS itself; gRPC sees an already-secured stream.
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, a string) (net.Conn, error) {
			return p.mux.dial(ctx, a, protoPeer)
		}),
	)
	if err != nil {
		return nil, fmt.Errorf("peer client for %s: %w", addr, err)
	}
	p.conns[addr] = cc
	return cc, nil
}

func (p *peerClients) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, cc := range p.conns {
		cc.Close()
		delete(p.conns, addr)
	}
}
