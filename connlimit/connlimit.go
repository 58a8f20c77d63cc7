// Package connlimit keeps a server's listener from being exhausted by connections that
// never identify themselves. A connection is pending from its accept until the server
// says it is established (its client authenticated, by its TLS handshake or its first
// request): pending connections are closed after PendingTimeout, and capped per source
// address and in all, so that a flood of idle connections from a few sources is refused
// at once rather than holding file descriptors, while the established connections of
// the cluster's own clients (thousands, from one address in a test or a benchmark) are
// not counted against a per-source cap. All connections together are capped below the
// process's file limit, leaving room for the files a server needs.
package connlimit

import (
	"container/list"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"
	"google.golang.org/grpc/credentials"
)

// Limits of one listener.
type Limits struct {
	// MaxPendingPerSource caps the connections of one source IP not yet established.
	// Loopback sources are not capped one by one: they are the machine's own processes
	// (a thousand simulated kubelets connecting at once share 127.0.0.1), and MaxPending
	// still bounds them.
	MaxPendingPerSource int
	// MaxPending caps all connections not yet established: past it, the oldest pending
	// connection is closed to make room for the new one (a flood of idle connections
	// is pushed out by clients that go on to authenticate within milliseconds). It is
	// at most half of MaxConns, so that established clients always have room.
	MaxPending int
	// MaxConns caps all connections; 0: the process's file limit less Reserve.
	MaxConns int
	// PendingTimeout closes a connection still pending after it (default 10 s).
	PendingTimeout time.Duration
	// CapLoopback applies MaxPendingPerSource to loopback sources too (tests).
	CapLoopback bool
}

// DefaultLimits suit an API or peer port: 64 pending connections per source, 4,096 in
// all, and as many connections as the file limit allows with 1,024 files to spare.
func DefaultLimits() Limits {
	return Limits{MaxPendingPerSource: 64, MaxPending: 4096, PendingTimeout: 10 * time.Second}
}

// Reserve is how many of the process's files MaxConns leaves for everything else.
const Reserve = 1024

// Guard applies Limits to the connections of a listener.
type Guard struct {
	lim      Limits
	log      hclog.Logger
	what     string
	refusals rate.Sometimes

	mu       sync.Mutex
	pending  map[string]int   // per source IP
	byAddr   map[string]*conn // pending connections by remote address
	queue    list.List        // pending connections, the oldest first
	npending int
	nconns   int
	refused  uint64
	evicted  uint64
}

// New guards the listener of what ("API", "peer", "kubelet").
func New(what string, lim Limits, log hclog.Logger) *Guard {
	if lim.MaxConns <= 0 {
		lim.MaxConns = fileLimit() - Reserve
	}
	if lim.PendingTimeout <= 0 {
		lim.PendingTimeout = 10 * time.Second
	}
	lim.MaxPending = max(1, min(lim.MaxPending, lim.MaxConns/2))
	if log == nil {
		log = hclog.NewNullLogger()
	}
	return &Guard{lim: lim, log: log, what: what, pending: map[string]int{}, byAddr: map[string]*conn{}, refusals: rate.Sometimes{Interval: time.Second}}
}

// fileLimit is the process's soft limit on open files (Go raises it to the hard limit
// at start), at least 2*Reserve.
func fileLimit() int {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil || r.Cur > 1<<30 {
		return 1 << 20
	}
	return max(int(r.Cur), 2*Reserve)
}

// Listener wraps ln: what it accepts beyond the limits it closes at once.
func (g *Guard) Listener(ln net.Listener) net.Listener { return &listener{Listener: ln, g: g} }

// Established marks c (a connection the guarded listener accepted, possibly wrapped by
// TLS) as authenticated: it no longer counts as pending.
func (g *Guard) Established(c net.Conn) {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if gc, ok := c.(*conn); ok {
		gc.established()
	}
}

// EstablishedAddr is Established for the pending connection from remote address addr
// (a gRPC handler knows its peer's address, not its connection).
func (g *Guard) EstablishedAddr(addr string) {
	g.mu.Lock()
	c := g.byAddr[addr]
	g.mu.Unlock()
	if c != nil {
		c.established()
	}
}

// Evicted is how many pending connections the guard closed to admit newer ones.
func (g *Guard) Evicted() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.evicted
}

// Refused is how many connections the guard closed at accept.
func (g *Guard) Refused() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.refused
}

// admit counts a new connection from src, or says why it is refused. With all pending
// places taken it admits it in place of the oldest pending connection, which it returns
// for the caller to close (outside the guard's lock).
func (g *Guard) admit(src string) (ok bool, why string, evict *conn) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case g.pending[src] >= g.lim.MaxPendingPerSource && (g.lim.CapLoopback || !loopback(src)):
		why = "too many connections in their handshake from this address"
	case g.npending >= g.lim.MaxPending && g.queue.Len() > 0:
		evict = g.queue.Front().Value.(*conn)
		g.queue.Remove(evict.elem)
		evict.elem = nil
		g.evicted++
		fallthrough
	case g.nconns < g.lim.MaxConns:
		g.nconns++
		g.npending++
		g.pending[src]++
		return true, "", evict
	default:
		why = "too many connections"
	}
	g.refused++
	return false, why, nil
}

func (g *Guard) done(c *conn, pending bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.nconns--
	if pending {
		g.unpend(c)
	}
}

func (g *Guard) unpend(c *conn) {
	src := c.src
	if g.byAddr[c.addr] == c {
		delete(g.byAddr, c.addr)
	}
	if c.elem != nil {
		g.queue.Remove(c.elem)
		c.elem = nil
	}
	g.npending--
	if g.pending[src]--; g.pending[src] <= 0 {
		delete(g.pending, src)
	}
}

type listener struct {
	net.Listener
	g *Guard
}

func (l *listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		src := sourceIP(c.RemoteAddr())
		ok, why, evict := l.g.admit(src)
		if evict != nil {
			evict.expire() // closes it unless its handshake completed meanwhile
		}
		if !ok {
			c.Close()
			l.g.refusals.Do(func() {
				l.g.log.Info("connection refused", "port", l.g.what, "remote", c.RemoteAddr().String(), "why", why, "note", "at most one such line a second")
			})
			continue
		}
		gc := &conn{Conn: c, g: l.g, src: src, addr: c.RemoteAddr().String(), isPending: true}
		l.g.mu.Lock()
		l.g.byAddr[gc.addr] = gc
		gc.elem = l.g.queue.PushBack(gc)
		l.g.mu.Unlock()
		gc.mu.Lock() // expire and Close read the timer under it
		gc.timer = time.AfterFunc(l.g.lim.PendingTimeout, gc.expire)
		gc.mu.Unlock()
		return gc, nil
	}
}

func sourceIP(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// conn is a counted connection.
type conn struct {
	net.Conn
	g         *Guard
	src, addr string
	timer     *time.Timer
	elem      *list.Element // in the guard's queue while pending; guarded by g.mu
	mu        sync.Mutex
	isPending bool
	closed    bool
}

func (c *conn) established() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.isPending && !c.closed {
		c.isPending = false
		c.timer.Stop()
		c.g.mu.Lock()
		c.g.unpend(c)
		c.g.mu.Unlock()
	}
}

// expire closes the connection if it is still pending.
func (c *conn) expire() {
	c.mu.Lock()
	pending := c.isPending && !c.closed
	c.mu.Unlock()
	if pending {
		c.Close()
	}
}

func (c *conn) Close() error {
	c.mu.Lock()
	if !c.closed {
		c.closed = true
		c.timer.Stop()
		c.g.done(c, c.isPending)
	}
	c.mu.Unlock()
	return c.Conn.Close()
}

// Credentials wraps a gRPC server's transport credentials. With authenticates (a
// handshake that verifies the client, as mutual TLS), a connection is established once
// its handshake succeeds; without, the server calls EstablishedAddr when a request on
// it is authenticated.
func (g *Guard) Credentials(tc credentials.TransportCredentials, authenticates bool) credentials.TransportCredentials {
	return &guardedCreds{TransportCredentials: tc, g: g, authenticates: authenticates}
}

type guardedCreds struct {
	credentials.TransportCredentials
	g             *Guard
	authenticates bool
}

func (c *guardedCreds) ServerHandshake(raw net.Conn) (net.Conn, credentials.AuthInfo, error) {
	out, info, err := c.TransportCredentials.ServerHandshake(raw)
	if err == nil && c.authenticates {
		c.g.Established(raw)
	}
	return out, info, err
}

func (c *guardedCreds) Clone() credentials.TransportCredentials {
	return &guardedCreds{TransportCredentials: c.TransportCredentials.Clone(), g: c.g, authenticates: c.authenticates}
}

// ConnState is an http.Server's ConnState hook: a connection is established once a
// request arrives on it.
func (g *Guard) ConnState(c net.Conn, st http.ConnState) {
	if st == http.StateActive {
		g.Established(c)
	}
}

func loopback(ip string) bool {
	a := net.ParseIP(ip)
	return a != nil && a.IsLoopback()
}
