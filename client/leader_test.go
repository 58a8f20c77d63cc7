package client

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// member is a fake API server that counts the calls it answers and, like a member that
// is not the leader, may name a leader in its replies.
type member struct {
	apiv1.UnimplementedResourcesServer
	addr string
	srv  *grpc.Server
	mu   sync.Mutex
	// names is the leader address this member puts in its replies ("" for none).
	names string
	// deposed: this member refuses requests sent to it as the leader, as a member that
	// lost the leadership does.
	deposed bool
	calls   map[string]int // by method: "create", "get"; "expecting" counts the requests sent as to the leader
}

func (m *member) answer(ctx context.Context, method string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.names != "" {
		grpc.SetHeader(ctx, metadata.Pairs(LeaderHeader, m.names))
	}
	if md, _ := metadata.FromIncomingContext(ctx); len(md.Get(ExpectLeaderHeader)) > 0 {
		m.calls["expecting"]++
		if m.deposed {
			return refusal()
		}
	}
	m.calls[method]++
	return nil
}

func refusal() error {
	st, _ := status.New(codes.Unavailable, "not the leader").WithDetails(&errdetails.ErrorInfo{Reason: "ServiceUnavailable", Domain: "skiff.dev"})
	return st.Err()
}

func (m *member) Create(ctx context.Context, req *apiv1.CreateRequest) (*apiv1.Object, error) {
	if err := m.answer(ctx, "create"); err != nil {
		return nil, err
	}
	return req.GetObject(), nil
}

func (m *member) Get(ctx context.Context, req *apiv1.GetRequest) (*apiv1.Object, error) {
	if err := m.answer(ctx, "get"); err != nil {
		return nil, err
	}
	return kinds.Wrap(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: req.GetName()}})
}

func (m *member) set(names string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.names = names
}

func (m *member) depose(names string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.names, m.deposed = names, true
}

func (m *member) count(method string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[method]
}

func startMembers(t *testing.T, n int) []*member {
	var ms []*member
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		m := &member{addr: ln.Addr().String(), srv: grpc.NewServer(), calls: map[string]int{}}
		apiv1.RegisterResourcesServer(m.srv, m)
		go m.srv.Serve(ln)
		t.Cleanup(m.srv.Stop)
		ms = append(ms, m)
	}
	return ms
}

// dialAt connects to the members' addresses with the first one current.
func dialAt(t *testing.T, ms []*member) *Conn {
	var addrs []string
	for _, m := range ms {
		addrs = append(addrs, m.addr)
	}
	c, err := Dial(addrs, Options{BackoffBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.current = 0
	t.Cleanup(func() { c.Close() })
	return c
}

// creates returns a function creating config maps of the given names through conn.
func creates(ctx context.Context, t *testing.T, conn *Conn) func(names ...string) {
	return func(names ...string) {
		t.Helper()
		for _, name := range names {
			if _, err := For[*corev1.ConfigMap](conn).Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name}}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

func TestWritesFollowTheNamedLeader(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ms := startMembers(t, 3)
	a, b, l := ms[0], ms[1], ms[2]
	a.set(l.addr)
	b.set(l.addr)
	conn := dialAt(t, ms)
	cms := For[*corev1.ConfigMap](conn)
	create := creates(ctx, t, conn)
	create("c1", "c2", "c3", "c4")
	// The first create went to the current server, which named the leader; the rest
	// went to the leader.
	if a.count("create") != 1 || b.count("create") != 0 || l.count("create") != 3 || conn.leaderAddr() != l.addr {
		t.Fatalf("creates a=%d b=%d leader=%d, conn.leaderAddr()=%q", a.count("create"), b.count("create"), l.count("create"), conn.leaderAddr())
	}
	if l.count("expecting") != 3 || a.count("expecting") != 0 {
		t.Fatalf("requests sent as to the leader: leader=%d a=%d, want 3 and 0", l.count("expecting"), a.count("expecting"))
	}
	// Linearizable reads go to the leader too; stale reads stay on the current server.
	if _, err := cms.Get(ctx, "", "c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := cms.Get(ctx, "", "c1", GetOptions{Stale: true}); err != nil {
		t.Fatal(err)
	}
	if l.count("get") != 1 || a.count("get") != 1 {
		t.Fatalf("gets: leader=%d current=%d, want 1 each", l.count("get"), a.count("get"))
	}

	// The leader goes away and the others name a new one: the next create fails over
	// through the servers in turn and learns the new leader there.
	l.srv.Stop()
	a.set(b.addr)
	b.set("")
	create("c5", "c6")
	if a.count("create") != 2 || b.count("create") != 1 || conn.leaderAddr() != b.addr {
		t.Fatalf("after the leader stopped: creates a=%d b=%d, conn.leaderAddr()=%q", a.count("create"), b.count("create"), conn.leaderAddr())
	}
}

// TestDeposedLeaderRefusesAtOnce: a leader that lost the leadership refuses the request
// sent to it as the leader and names the new one, and the call goes there.
func TestDeposedLeaderRefusesAtOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ms := startMembers(t, 3)
	a, b, l := ms[0], ms[1], ms[2]
	a.set(l.addr)
	conn := dialAt(t, ms)
	create := creates(ctx, t, conn)
	create("c1", "c2")
	l.depose(b.addr)
	create("c3")
	if l.count("create") != 1 || b.count("create") != 1 || a.count("create") != 1 || conn.leaderAddr() != b.addr {
		t.Fatalf("creates a=%d b=%d old leader=%d, conn.leaderAddr()=%q", a.count("create"), b.count("create"), l.count("create"), conn.leaderAddr())
	}
}

func TestLeaderOutsideTheServersIsIgnored(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ms := startMembers(t, 1)
	ms[0].set("192.0.2.1:7443") // a member this client was not told about
	conn := dialAt(t, ms)
	creates(ctx, t, conn)("c1", "c2")
	if ms[0].count("create") != 2 || conn.leaderAddr() != "" {
		t.Fatalf("creates=%d conn.leaderAddr()=%q", ms[0].count("create"), conn.leaderAddr())
	}
}

// TestOneServerKeepsWritesOnIt: a client with OneServer sends its writes
// and linearizable reads to the server it uses, which names another as the leader, and
// so opens no connection to the leader; when that server fails, the calls move on to
// the next, as every client's do.
func TestOneServerKeepsWritesOnIt(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ms := startMembers(t, 3)
	a, b, l := ms[0], ms[1], ms[2]
	a.set(l.addr)
	b.set(l.addr)
	conn, err := Dial([]string{a.addr, b.addr, l.addr}, Options{BackoffBase: time.Millisecond, OneServer: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.current = 0
	creates(ctx, t, conn)("c1", "c2", "c3")
	if _, err := For[*corev1.ConfigMap](conn).Get(ctx, "", "c1"); err != nil {
		t.Fatal(err)
	}
	if a.count("create") != 3 || a.count("get") != 1 || l.count("create")+l.count("get") != 0 || a.count("expecting") != 0 {
		t.Fatalf("creates a=%d leader=%d, gets a=%d leader=%d, sent as to the leader %d: want every call on a, none as to the leader",
			a.count("create"), l.count("create"), a.count("get"), l.count("get"), a.count("expecting"))
	}
	conn.mu.Lock()
	open := len(conn.conns)
	conn.mu.Unlock()
	if open != 1 {
		t.Fatalf("%d connections open, want 1", open)
	}
	a.srv.Stop()
	creates(ctx, t, conn)("c4")
	if b.count("create") != 1 || l.count("create") != 0 {
		t.Fatalf("after the server stopped: creates b=%d leader=%d, want 1 and 0", b.count("create"), l.count("create"))
	}
}
