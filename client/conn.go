package client

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"k8s.io/utils/clock"
)

// DefaultServer is where clients look when given no server: the address `skiff up`
// listens on.
const DefaultServer = "127.0.0.1:7443"

// Servers resolves the API server list: the flag's value, else $SKIFF_SERVER, else
// DefaultServer. Lists are comma-separated.
func Servers(flag string) []string {
	s := flag
	if s == "" {
		s = os.Getenv("SKIFF_SERVER")
	}
	if s == "" {
		s = DefaultServer
	}
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// Options configures a Conn.
type Options struct {
	// TLS secures the connections; nil means plaintext.
	TLS *tls.Config
	// PerRPCCredentials authenticates calls (e.g. a bearer token).
	PerRPCCredentials credentials.PerRPCCredentials
	// Backoff bounds retries: the first wait and the cap. Defaults 50ms and 2s.
	BackoffBase, BackoffMax time.Duration
	// AttemptTimeout bounds one attempt of a unary call, so that a hung server (paused,
	// cut off) makes the call move on. Default 10s.
	AttemptTimeout time.Duration
	// ThrottleRetries is how many times a call the server refused as too many requests
	// (ResourceExhausted with a retry delay) is repeated, each after the delay the
	// server asked for, before its error is returned. Default 10 (client-go's).
	ThrottleRetries int
	// Clock times the waits between attempts (tests). Default the real clock.
	Clock clock.Clock
	// UserAgent names the component in the servers' logs.
	UserAgent string
	// Certificate, when set, is the client certificate TLS presents (Resolve sets it
	// from the certificate files, which are reloaded when they change). A server
	// authenticates each call by its connection's certificate, so a connection must not
	// outlive the certificate it was opened with: Conn looks at it at most once a second
	// as calls are made, and when it changed (renewed, or re-issued by a new CA), new
	// calls go over new connections and the old ones are closed RetireAfter later (the
	// calls on them finish; their watches end and resume on the new ones).
	Certificate func() (*tls.Certificate, error)
	// RetireAfter is how long connections opened with a replaced certificate stay open
	// (default three AttemptTimeouts).
	RetireAfter time.Duration
	// KeepaliveTime and KeepaliveTimeout are the connections' health check: after
	// KeepaliveTime without reading from a server the client pings it, and closes the
	// connection when nothing arrives within KeepaliveTimeout; its watches then resume
	// elsewhere. Defaults 30s and 15s, client-go's HTTP/2 health check (ReadIdleTimeout,
	// PingTimeout). A hung server fails unary calls sooner, by AttemptTimeout; this is for
	// watches, which have no deadline. A short timeout does harm: on a saturated machine a
	// live server's answer, or this process's reading of it, can take seconds, and the
	// connections it closes come back through TLS handshakes that load the machine
	// further. At 5s, 2,500 simulated nodes' connections were closed and reopened
	// faster than they could be used, and their Leases went unrenewed (issue 26).
	KeepaliveTime, KeepaliveTimeout time.Duration
	// OneServer sends every call to the server in use, writes and linearizable reads
	// included (it forwards them to the leader), instead of writes straight to the
	// leader: a client whose watches are on a follower then holds one connection, not
	// two, as Kubernetes' kubelet talks to one API server. No component sets it: it
	// saved a simulated node's second connection (gRPC's goroutines, buffers and a TLS
	// state on both sides) but made the 10,000-pod scale run 30-60% slower, two of three
	// nodes' writes costing a follower's API work and a peer hop (docs/performance.md).
	OneServer bool
	// IdleTimeout closes a connection that has carried no call and no stream for so
	// long; the next call to its server opens it again. Default 90s, client-go's
	// (IdleConnTimeout). gRPC's own, 30 minutes, kept the connection to a server a
	// client had moved away from (it failed or refused a call) for that long: on a
	// loaded machine most of a thousand simulated nodes held two or three connections,
	// each gRPC's goroutines, buffers and a TLS state in both processes (issue 26). A
	// connection in use is never idle: a watch holds its own open, and a kubelet's
	// Lease renewals (every 10s) hold the one its calls go to.
	IdleTimeout time.Duration
	Logger      hclog.Logger
}

// DefaultKeepaliveTime, DefaultKeepaliveTimeout and DefaultIdleTimeout are Options'
// defaults.
const (
	DefaultKeepaliveTime    = 30 * time.Second
	DefaultKeepaliveTimeout = 15 * time.Second
	DefaultIdleTimeout      = 90 * time.Second
)

// Conn is a connection to a set of API servers. Calls go to one server until it fails;
// then they move to the next. Writes and linearizable reads go to the Raft leader when a
// server has named it (LeaderHeader) and it is one of the servers: any server
// would forward them there, and going straight saves a hop. Watches and stale reads
// stay on the current server, spreading them over the members. Calls the server refused
// (Unavailable: no leader) are retried on every server with capped, jittered
// exponential back-off until the context ends. Calls refused as too many requests
// (ResourceExhausted with a retry delay: the server's API Priority and Fairness) are
// repeated on the same server once the delay has passed, up to ThrottleRetries times. Calls whose reply was lost are retried only when repeating them is safe (see
// each method); a create is retried only when it names its object, and then an
// AlreadyExists says the object may be its own (IsRetriedCreate).
type Conn struct {
	servers []string
	opts    Options
	log     hclog.Logger
	mu      sync.Mutex
	conns   map[string]*grpc.ClientConn
	current int
	leader  string // where the servers last said the leader serves, if one of servers
	// tlsOnly are the servers found to speak only TLS while this Conn has none.
	tlsOnly map[string]bool
	// cert is the client certificate conns were opened with, as of certChecked;
	// retiring are connections opened with an earlier one, closed at their time.
	cert        *tls.Certificate
	certChecked time.Time
	retiring    map[*grpc.ClientConn]bool
	// handed is when conns[addr] was last handed to a call (see closeIdle).
	handed map[string]time.Time
	// watches are the ends of the watches open on each server (see watchOn).
	watches map[string]map[*context.CancelFunc]bool
	// noBatch: the servers answered CreateBatch as unimplemented (older than the call);
	// noBindBatch: BindBatch; noUpdateBatch: UpdateBatch.
	noBatch, noBindBatch, noUpdateBatch atomic.Bool
}

// Dial prepares a connection to servers (host:port each). It does not block: servers are
// reached on first use.
func Dial(servers []string, opts Options) (*Conn, error) {
	if len(servers) == 0 {
		return nil, fmt.Errorf("dial: no API server given")
	}
	if opts.BackoffBase <= 0 {
		opts.BackoffBase = 50 * time.Millisecond
	}
	if opts.BackoffMax <= 0 {
		opts.BackoffMax = 2 * time.Second
	}
	if opts.AttemptTimeout <= 0 {
		opts.AttemptTimeout = 10 * time.Second
	}
	if opts.ThrottleRetries <= 0 {
		opts.ThrottleRetries = 10
	}
	if opts.Clock == nil {
		opts.Clock = clock.RealClock{}
	}
	if opts.Logger == nil {
		opts.Logger = hclog.NewNullLogger()
	}
	if opts.RetireAfter <= 0 {
		opts.RetireAfter = 3 * opts.AttemptTimeout
	}
	if opts.KeepaliveTime <= 0 {
		opts.KeepaliveTime = DefaultKeepaliveTime
	}
	if opts.KeepaliveTimeout <= 0 {
		opts.KeepaliveTimeout = DefaultKeepaliveTimeout
	}
	if opts.IdleTimeout <= 0 {
		opts.IdleTimeout = DefaultIdleTimeout
	}
	c := &Conn{servers: append([]string(nil), servers...), opts: opts, log: opts.Logger.Named("client"), conns: map[string]*grpc.ClientConn{}}
	c.current = rand.IntN(len(servers))
	return c, nil
}

// OwnThrottling returns a context whose calls are not repeated when the server refuses
// them as too many requests: the refusal is the call's error at once, for a caller that
// backs off on its own terms (the event recorder, which holds and batches what it could
// not write) rather than holding a call through ThrottleRetries more refusals.
func OwnThrottling(ctx context.Context) context.Context {
	return context.WithValue(ctx, ownThrottlingKey{}, true)
}

type ownThrottlingKey struct{}

func ownThrottling(ctx context.Context) bool {
	own, _ := ctx.Value(ownThrottlingKey{}).(bool)
	return own
}

// waitOut is the delay a too-many-requests refusal err asked for, when the connection
// waits it out itself: not past ThrottleRetries refusals or the caller's end, nor for a
// caller throttling itself (OwnThrottling), which reads the delay itself (reading it
// decodes the status's details: a recorder refused a thousand times need not pay it
// twice).
func (c *Conn) waitOut(ctx context.Context, err error, throttled int) (time.Duration, bool) {
	if throttled >= c.opts.ThrottleRetries || ctx.Err() != nil || ownThrottling(ctx) {
		return 0, false
	}
	return retryDelay(err)
}

// Servers lists the API servers this connection uses.
func (c *Conn) Servers() []string { return c.servers }

// Close closes every connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for addr, cc := range c.conns {
		cc.Close()
		delete(c.conns, addr)
	}
	for cc := range c.retiring {
		cc.Close()
		delete(c.retiring, cc)
	}
	return nil
}

// checkCertificate retires the connections when the client certificate changed (see
// Options.Certificate). c.mu is held.
func (c *Conn) checkCertificate() {
	if c.opts.Certificate == nil {
		return
	}
	now := c.opts.Clock.Now()
	if now.Sub(c.certChecked) < time.Second {
		return
	}
	c.certChecked = now
	cert, err := c.opts.Certificate()
	if err != nil || cert == c.cert {
		return
	}
	first := c.cert == nil
	c.cert = cert
	if first || len(c.conns) == 0 {
		return
	}
	c.log.Info("client certificate changed; new calls use new connections", "retire_after", c.opts.RetireAfter)
	if c.retiring == nil {
		c.retiring = map[*grpc.ClientConn]bool{}
	}
	old := make([]*grpc.ClientConn, 0, len(c.conns))
	for addr, cc := range c.conns {
		old = append(old, cc)
		c.retiring[cc] = true
		delete(c.conns, addr)
	}
	time.AfterFunc(c.opts.RetireAfter, func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, cc := range old {
			if c.retiring[cc] { // not closed by Close already
				cc.Close()
				delete(c.retiring, cc)
			}
		}
	})
}

// tlsReadBuffer: a connection over TLS has no read buffer of gRPC's. gRPC takes a plain
// TCP connection's read buffer from a pool for each read, but would hold a TLS
// connection's, 32 KiB, for the connection's life, while the TLS connection under it
// already reads the network in whole records and hands out their decrypted bytes from
// its own buffer. A process of thousands of simulated nodes, each connected as itself,
// held 32 KiB a node's connection for nothing (issue 26).
const tlsReadBuffer = 0

func (c *Conn) conn(addr string) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.checkCertificate()
	now := c.opts.Clock.Now()
	c.closeIdle(addr, now)
	if c.handed == nil {
		c.handed = map[string]time.Time{}
	}
	c.handed[addr] = now
	if cc, ok := c.conns[addr]; ok {
		return cc, nil
	}
	creds := insecure.NewCredentials()
	if c.opts.TLS != nil {
		creds = credentials.NewTLS(c.opts.TLS)
	}
	dopts := []grpc.DialOption{
		grpc.WithTransportCredentials(creds),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(1 << 30)),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: c.opts.KeepaliveTime, Timeout: c.opts.KeepaliveTimeout, PermitWithoutStream: true}),
		grpc.WithIdleTimeout(c.opts.IdleTimeout),
		// Fail fast when a server is down, so the call moves to the next one.
		grpc.WithConnectParams(grpcConnectParams),
		DialBufferPool(),
		grpc.WithUnaryInterceptor(c.learnLeader),
	}
	if c.opts.TLS != nil {
		dopts = append(dopts, grpc.WithReadBufferSize(tlsReadBuffer))
	}
	if c.opts.PerRPCCredentials != nil {
		dopts = append(dopts, grpc.WithPerRPCCredentials(c.opts.PerRPCCredentials))
	}
	if c.opts.UserAgent != "" {
		dopts = append(dopts, grpc.WithUserAgent(c.opts.UserAgent))
	}
	cc, err := grpc.NewClient("passthrough:///"+addr, dopts...)
	if err != nil {
		return nil, fmt.Errorf("connect to %s: %w", addr, err)
	}
	c.conns[addr] = cc
	return cc, nil
}

// closeIdle closes the channels gRPC has made idle (no call and no stream for
// IdleTimeout: their connections closed) but the one to addr, when none was handed to a
// call for IdleTimeout either (a new channel is idle until its first call). An idle
// channel still holds three goroutines of gRPC's (its callback serializers) and its
// state; the next call to its server makes a new one. c.mu is held.
func (c *Conn) closeIdle(addr string, now time.Time) {
	for a, cc := range c.conns {
		if a != addr && now.Sub(c.handed[a]) > c.opts.IdleTimeout && cc.GetState() == connectivity.Idle {
			cc.Close()
			delete(c.conns, a)
			delete(c.handed, a)
		}
	}
}

// pick returns the server to use now.
func (c *Conn) pick() (string, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[c.current], c.current
}

// learnLeader notes the leader a server names in a reply's header.
func (c *Conn) learnLeader(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	var md metadata.MD
	err := invoker(ctx, method, req, reply, cc, append(opts, grpc.Header(&md))...)
	if v := md.Get(LeaderHeader); len(v) > 0 {
		c.mu.Lock()
		if slices.Contains(c.servers, v[0]) {
			c.leader = v[0]
		}
		c.mu.Unlock()
	}
	return err
}

// leaderAddr is where the servers last said the leader serves, or "" when none said so
// or it is not one of servers.
func (c *Conn) leaderAddr() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.leader
}

// leaderFailed forgets the leader at addr after a call to it failed.
func (c *Conn) leaderFailed(addr string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.leader == addr {
		c.leader = ""
	}
}

// failed moves past server i, unless another call already did. The watches open on
// server i end, and their owners resume them on the next server (see watchOn).
func (c *Conn) failed(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.current == i {
		c.current = (i + 1) % len(c.servers)
		for end := range c.watches[c.servers[i]] {
			(*end)()
		}
		delete(c.watches, c.servers[i])
	}
}

// watchOn keeps a watch on the server the client's calls use. A watch open on a server
// the calls have moved away from (it failed or refused them) holds the connection to
// it, gRPC's goroutines, buffers and a TLS state in both processes: most simulated
// nodes of a loaded machine held two or three connections this way (issue 26). So the
// watch is ended when the calls move (end cancels its stream, and its owner resumes
// from its last resourceVersion, as after any watch's end), and the connection left
// carries nothing and is closed after IdleTimeout. watchOn registers end for the
// watch on addr, and returns what unregisters it; a watch that opened on a server the
// calls have already left ends at once.
func (c *Conn) watchOn(addr string, end context.CancelFunc) (unregister func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.servers[c.current] != addr {
		end()
		return func() {}
	}
	if c.watches == nil {
		c.watches = map[string]map[*context.CancelFunc]bool{}
	}
	if c.watches[addr] == nil {
		c.watches[addr] = map[*context.CancelFunc]bool{}
	}
	key := &end
	c.watches[addr][key] = true
	return func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.watches[addr], key)
	}
}

// retryPolicy says which failures a call may repeat.
type retryPolicy int

const (
	// idempotent calls repeat after any server refusal or transport failure.
	idempotent retryPolicy = iota
	// once calls repeat only when the server refused them (nothing happened).
	once
)

// grpcConnectParams: a server that is down refuses the connection at once and is dialed
// again soon (the back-off); one that hangs holds a call only for its attempt timeout.
// A connection attempt itself gets gRPC's default 20 s: it includes the TLS handshake,
// which on a busy machine with thousands of connections opening at once (a thousand
// kubelets finding a new leader) can take seconds, and an attempt abandoned at 3 s was
// started over, handshake and all, until the reconnections were the machine's load.
var grpcConnectParams = grpc.ConnectParams{
	Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 2 * time.Second},
	MinConnectTimeout: 20 * time.Second,
}

// route says which server a call prefers.
type route int

const (
	// anyServer calls (watches, stale reads, cluster calls) use the current server.
	anyServer route = iota
	// toLeader calls (writes, linearizable reads) use the leader when it is known.
	toLeader
)

// readRoute routes a read: a linearizable one is answered with the leader's help anyway.
func readRoute(stale bool) route {
	if stale {
		return anyServer
	}
	return toLeader
}

// invoke runs call on API servers until it succeeds, fails for good, or ctx ends. Each
// attempt of a unary call has its own deadline (AttemptTimeout); streams pass 0.
func (c *Conn) invoke(ctx context.Context, policy retryPolicy, attemptTimeout time.Duration, call func(context.Context, *grpc.ClientConn) error) error {
	return c.invokeVia(ctx, anyServer, policy, attemptTimeout, call)
}

// invokeVia is invoke with a route. An attempt on the leader that fails forgets it, and
// the call goes on through the servers in turn.
func (c *Conn) invokeVia(ctx context.Context, via route, policy retryPolicy, attemptTimeout time.Duration, call func(context.Context, *grpc.ClientConn) error) error {
	wait := c.opts.BackoffBase
	tried, throttled := 0, 0
	for {
		addr, i := c.pick()
		atLeader := false
		if via == toLeader && !c.opts.OneServer {
			if l := c.leaderAddr(); l != "" {
				addr, atLeader = l, true
			}
		}
		cc, err := c.conn(addr)
		if err == nil {
			actx, cancel := ctx, context.CancelFunc(func() {})
			if attemptTimeout > 0 {
				actx, cancel = context.WithTimeout(ctx, attemptTimeout)
			}
			if atLeader {
				// Refused at once, not held, should it no longer lead.
				actx = metadata.AppendToOutgoingContext(actx, ExpectLeaderHeader, "1")
			}
			err = call(actx, cc)
			cancel()
			if code(err) == codes.DeadlineExceeded && ctx.Err() == nil {
				// Our attempt deadline, not the caller's: the server hung.
				err = status.Errorf(codes.Unavailable, "API server %s did not answer within %v: %v", addr, attemptTimeout, err)
			}
		}
		if err == nil {
			return nil
		}
		if e, ok := tooLarge(err); ok {
			return e
		}
		if e, ok := notUTF8(err); ok {
			return e
		}
		if transportFailed(err) && strings.Contains(err.Error(), "server preface") && c.speaksOnlyTLS(addr) {
			return status.Errorf(codes.FailedPrecondition, "API server %s speaks TLS, and this client connects without it: "+
				"give the cluster's CA (--ca-file) and credentials (--cert-file and --key-file, or --token), or a client config "+
				"(--config; skiff up writes ~/.skiff/config)", addr)
		}
		if delay, ok := c.waitOut(ctx, err, throttled); ok {
			// Nothing happened: any call may be repeated, once the server is ready for it.
			throttled++
			delay = max(delay, min(c.opts.BackoffBase<<min(throttled-1, 20), c.opts.BackoffMax))
			delay += time.Duration(rand.Int64N(int64(delay)/4 + 1)) // spread the refused callers' return
			c.log.Debug("the API server asked to come back later", "server", addr, "error", err, "wait", delay)
			select {
			case <-c.opts.Clock.After(delay):
			case <-ctx.Done():
				return err
			}
			continue
		}
		retry := serverRefused(err) || (policy == idempotent && transportFailed(err))
		if atLeader && code(err) == codes.Unavailable {
			c.leaderFailed(addr)
		}
		if !retry || ctx.Err() != nil {
			return err
		}
		if atLeader {
			continue // on through the servers in turn
		}
		c.failed(i)
		tried++
		if tried%len(c.servers) != 0 {
			continue // try the next server at once
		}
		c.log.Debug("no API server could take the call; backing off", "servers", len(c.servers), "error", err, "wait", wait)
		jittered := wait/2 + time.Duration(rand.Int64N(int64(wait)))
		select {
		case <-c.opts.Clock.After(jittered):
		case <-ctx.Done():
			return err
		}
		wait = min(2*wait, c.opts.BackoffMax)
	}
}

// speaksOnlyTLS says whether the server at addr, which closed a plaintext connection of
// this Conn before HTTP/2 began, answers a TLS handshake instead. A plaintext HTTP/2
// client sees no more than the connection closed ("error reading server preface") and
// would retry until its deadline; this turns a missing --ca-file into an error at once.
// Only that symptom is probed: a server cut off or down fails otherwise, and a probe
// then would only delay the move to the next server.
func (c *Conn) speaksOnlyTLS(addr string) bool {
	if c.opts.TLS != nil {
		return false
	}
	c.mu.Lock()
	known := c.tlsOnly[addr]
	c.mu.Unlock()
	if known {
		return true
	}
	// Only whether a handshake happens: no request is sent, so the certificate need not
	// be trusted. A server that wants a client certificate may refuse the handshake with
	// an alert (TLS 1.2), which crypto/tls reports as a "remote error": TLS too.
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: time.Second}, "tcp", addr, &tls.Config{InsecureSkipVerify: true})
	var remote *net.OpError
	switch {
	case err == nil:
		conn.Close()
	case !errors.As(err, &remote) || remote.Op != "remote error":
		return false
	}
	c.mu.Lock()
	if c.tlsOnly == nil {
		c.tlsOnly = map[string]bool{}
	}
	c.tlsOnly[addr] = true
	c.mu.Unlock()
	return true
}
