package connlimit

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/waitfor"
)

// serve accepts on a guarded loopback listener and hands each connection to conns.
func serve(t *testing.T, lim Limits) (*Guard, string, chan net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := New("test", lim, nil)
	gl := g.Listener(ln)
	conns := make(chan net.Conn, 1024)
	go func() {
		for {
			c, err := gl.Accept()
			if err != nil {
				return
			}
			conns <- c
		}
	}()
	t.Cleanup(func() {
		gl.Close()
		for {
			select {
			case c := <-conns:
				c.Close()
			default:
				return
			}
		}
	})
	return g, ln.Addr().String(), conns
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c (a read ends at once).
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := c.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || errors.Is(err, net.ErrClosed) || (err != nil && !isTimeout(err))
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// TestPendingPerSource: past the cap of one source's pending connections, more are
// closed at once; established ones do not count, and a closed one frees its place.
func TestPendingPerSource(t *testing.T) {
	g, addr, conns := serve(t, Limits{MaxPendingPerSource: 3, MaxPending: 100, MaxConns: 100, CapLoopback: true})
	var server []net.Conn
	for range 3 {
		dial(t, addr)
		server = append(server, <-conns)
	}
	extra := dial(t, addr)
	waitfor.Condition(t, 10*time.Second, "the fourth connection refused", func() (bool, string) {
		return g.Refused() == 1, fmt.Sprintf("refused %d", g.Refused())
	})
	if !closedByServer(extra) {
		t.Fatal("the connection over the cap is still open")
	}
	// Established connections leave the pending count: three more are welcome.
	for _, c := range server {
		g.Established(c)
	}
	for range 3 {
		dial(t, addr)
		server = append(server, <-conns)
	}
	// A pending one closed frees a place.
	server[len(server)-1].Close()
	dial(t, addr)
	<-conns
	if g.Refused() != 1 {
		t.Fatalf("refused %d, want 1", g.Refused())
	}
}

// TestMaxConns: established or not, no more than MaxConns at once.
func TestMaxConns(t *testing.T) {
	g, addr, conns := serve(t, Limits{MaxPendingPerSource: 100, MaxPending: 100, MaxConns: 2})
	for range 2 {
		dial(t, addr)
		g.Established(<-conns)
	}
	extra := dial(t, addr)
	waitfor.Condition(t, 10*time.Second, "the third connection refused", func() (bool, string) {
		return g.Refused() == 1, fmt.Sprintf("refused %d", g.Refused())
	})
	if !closedByServer(extra) {
		t.Fatal("the connection over the cap is still open")
	}
}

// TestIdleFloodLeavesRoomForClients: a gRPC server over TLS, flooded from one address
// by many more idle raw connections than its caps, still answers real clients from
// another: the flood is refused at accept, and established connections are not capped
// per source.
func TestIdleFloodLeavesRoomForClients(t *testing.T) {
	dir := t.TempDir()
	if _, err := pki.InitDir(dir, pki.InitOptions{Hosts: []string{"127.0.0.1"}}); err != nil {
		t.Fatal(err)
	}
	r, err := pki.NewReloader(filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key"), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := New("test", Limits{MaxPendingPerSource: 16, MaxPending: 64, CapLoopback: true}, nil)
	// As the API server: the handshake does not verify the client; its first
	// authenticated request does (here, any request).
	srv := grpc.NewServer(grpc.Creds(g.Credentials(credentials.NewTLS(r.ServerTLS()), false)),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			if p, ok := peer.FromContext(ctx); ok {
				g.EstablishedAddr(p.Addr.String())
			}
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	go srv.Serve(g.Listener(ln))
	t.Cleanup(srv.Stop)

	const flood = 500
	attacker := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}} // loopback, another address
	for range flood {
		c, err := attacker.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	waitfor.Condition(t, 30*time.Second, "the flood refused", func() (bool, string) {
		return g.Refused() >= flood-16, fmt.Sprintf("refused %d of %d", g.Refused(), flood)
	})
	var clients []*grpc.ClientConn
	for i := range 40 { // more clients than the per-source cap, all established
		cc, err := grpc.NewClient("passthrough:///"+ln.Addr().String(), grpc.WithTransportCredentials(credentials.NewTLS(clientTLS(t, dir))))
		if err != nil {
			t.Fatal(err)
		}
		clients = append(clients, cc)
		defer cc.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = healthpb.NewHealthClient(cc).Check(ctx, &healthpb.HealthCheckRequest{})
		cancel()
		if err != nil {
			t.Fatalf("client %d during the flood: %v", i, err)
		}
	}
}

func clientTLS(t *testing.T, dir string) *tls.Config {
	r, err := pki.NewReloader(filepath.Join(dir, "admin.crt"), filepath.Join(dir, "admin.key"), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return r.ClientTLS()
}

// TestPendingTimeout: a connection that never identifies itself is closed after
// PendingTimeout; an established one stays.
func TestPendingTimeout(t *testing.T) {
	g, addr, conns := serve(t, Limits{MaxPendingPerSource: 10, MaxPending: 10, MaxConns: 10, PendingTimeout: 100 * time.Millisecond})
	idle := dial(t, addr)
	<-conns
	kept := dial(t, addr)
	g.Established(<-conns)
	waitfor.Condition(t, 10*time.Second, "the idle connection closed", func() (bool, string) {
		return closedByServer(idle), "still open"
	})
	if closedByServer(kept) {
		t.Fatal("an established connection was closed")
	}
}

// TestFloodPushesOutOldestPending: with every pending place taken, a new connection is
// admitted in place of the oldest pending one, so that idle connections cannot keep a
// client that will authenticate out; an established connection is never pushed out.
func TestFloodPushesOutOldestPending(t *testing.T) {
	g, addr, conns := serve(t, Limits{MaxPendingPerSource: 100, MaxPending: 3, MaxConns: 100})
	est := dial(t, addr)
	g.Established(<-conns)
	var idle []net.Conn
	for range 3 {
		idle = append(idle, dial(t, addr))
		<-conns
	}
	fresh := dial(t, addr)
	select {
	case <-conns:
	case <-time.After(30 * time.Second):
		t.Fatal("the newest connection was not admitted")
	}
	waitfor.Condition(t, 10*time.Second, "the oldest idle connection pushed out", func() (bool, string) {
		return g.Evicted() == 1 && closedByServer(idle[0]), fmt.Sprintf("evicted %d", g.Evicted())
	})
	for _, c := range []net.Conn{idle[1], idle[2], fresh, est} {
		if closedByServer(c) {
			t.Fatalf("%v was closed; only the oldest pending connection should be", c.LocalAddr())
		}
	}
	if g.Refused() != 0 {
		t.Fatalf("refused %d connections; none should be", g.Refused())
	}
}

// TestPendingAtMostHalfTheConnections: however MaxPending is set, connections in their
// handshake never take more than half of MaxConns (from the file limit when unset).
func TestPendingAtMostHalfTheConnections(t *testing.T) {
	for _, c := range []struct{ maxPending, maxConns, want int }{
		{4096, 1024, 512},
		{10, 1024, 10},
		{4096, 1, 1},
	} {
		if g := New("test", Limits{MaxPending: c.maxPending, MaxConns: c.maxConns}, nil); g.lim.MaxPending != c.want {
			t.Errorf("MaxPending %d, MaxConns %d: pending capped at %d, want %d", c.maxPending, c.maxConns, g.lim.MaxPending, c.want)
		}
	}
}
