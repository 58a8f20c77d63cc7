package client_test

import (
	"context"
	"fmt"
	"net"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/waitfor"
)

// countingListener counts the connections its server accepted and has open.
type countingListener struct {
	net.Listener
	accepted, open atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.accepted.Add(1)
	l.open.Add(1)
	return &countedConn{Conn: c, l: l}, nil
}

type countedConn struct {
	net.Conn
	l    *countingListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// switchServer creates while serving and refuses (no leader) while refusing; it holds
// every watch open.
type switchServer struct {
	apiv1.UnimplementedResourcesServer
	refusing atomic.Bool
	creates  atomic.Int64
	ln       *countingListener
}

func (f *switchServer) Create(ctx context.Context, req *apiv1.CreateRequest) (*apiv1.Object, error) {
	if f.refusing.Load() {
		return nil, refused()
	}
	f.creates.Add(1)
	return req.GetObject(), nil
}

func (f *switchServer) Watch(req *apiv1.WatchRequest, s apiv1.Resources_WatchServer) error {
	if err := s.SendHeader(nil); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

func startSwitch(t *testing.T) (*switchServer, string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &switchServer{ln: &countingListener{Listener: ln}}
	s := grpc.NewServer()
	apiv1.RegisterResourcesServer(s, f)
	go s.Serve(f.ln)
	t.Cleanup(s.Stop)
	return f, ln.Addr().String()
}

// switchPair is two switch servers and a client of both (IdleTimeout 200 ms) that has
// created one ConfigMap: left is the server it created it on, where its calls are, used
// the other.
type switchPair struct {
	conn               *client.Conn
	create             func(name string)
	left, used         *switchServer
	leftAddr, usedAddr string
}

func startPair(t *testing.T, ctx context.Context) switchPair {
	t.Helper()
	a, aAddr := startSwitch(t)
	b, bAddr := startSwitch(t)
	conn, err := client.Dial([]string{aAddr, bAddr}, client.Options{BackoffBase: time.Millisecond, IdleTimeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cms := client.For[*corev1.ConfigMap](conn)
	create := func(name string) {
		t.Helper()
		if _, err := cms.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"}}); err != nil {
			t.Fatal(err)
		}
	}
	create("first")
	if b.creates.Load() == 1 { // the client starts at either server
		return switchPair{conn, create, b, a, bAddr, aAddr}
	}
	return switchPair{conn, create, a, b, aAddr, bAddr}
}

// TestConnectionLeftBehindIsClosed: once a client's calls have moved from a server (it
// refused them), its connection to that server is closed when it has carried nothing
// for IdleTimeout, while the connection to the server it uses stays open under a
// watch. gRPC's own idle timeout, 30 minutes, kept it: after failovers on a loaded
// machine most simulated nodes held two or three connections (issue 26).
func TestConnectionLeftBehindIsClosed(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := startPair(t, ctx)
	conn, create, left, used := p.conn, p.create, p.left, p.used
	a, b := left, used
	left.refusing.Store(true)
	create("second") // refused by the server it used, created by the other
	if used.creates.Load() != 1 {
		t.Fatalf("the second create did not move to the other server (creates %d, %d)", a.creates.Load(), b.creates.Load())
	}
	w, err := client.For[*corev1.Pod](conn).Watch(ctx, "", client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()

	waitfor.Condition(t, 30*time.Second, "the connection left behind closed", func() (bool, string) {
		return left.ln.open.Load() == 0, fmt.Sprintf("%d open", left.ln.open.Load())
	})
	if n := used.ln.open.Load(); n != 1 {
		t.Fatalf("%d connections open to the server in use, want 1 (its watch's)", n)
	}
	before := goroutinesIn("grpcsync.(*CallbackSerializer).run")
	create("third")
	if n := used.ln.accepted.Load(); n != 1 {
		t.Fatalf("the server in use accepted %d connections, want 1: the watch's connection closed as idle", n)
	}
	// The idle channel itself is closed by the next call: gRPC's idle mode keeps its
	// callback serializers' goroutines.
	waitfor.Condition(t, 30*time.Second, "the idle channel's goroutines gone", func() (bool, string) {
		n := goroutinesIn("grpcsync.(*CallbackSerializer).run")
		return n < before, fmt.Sprintf("%d of gRPC's channel serializers, %d before the call", n, before)
	})
}

// goroutinesIn counts the goroutines whose stacks hold fn.
func goroutinesIn(fn string) int {
	var buf strings.Builder
	pprof.Lookup("goroutine").WriteTo(&buf, 1)
	_, stacks, _ := strings.Cut(buf.String(), "\n") // after "goroutine profile: total N"
	n := 0
	for _, g := range strings.Split(stacks, "\n\n") {
		if strings.Contains(g, fn) {
			var count int
			fmt.Sscan(g, &count)
			n += count
		}
	}
	return n
}

// TestWatchFollowsTheCalls: a watch open on the server a client's calls move away from
// ends, so that its owner resumes it where the calls go, and the connection left behind
// then carries nothing and is closed: the client holds one connection, not two (a
// simulated node's pod watch kept the member it had left, issue 26).
func TestWatchFollowsTheCalls(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p := startPair(t, ctx)
	conn, create, left, leftAddr, used, usedAddr := p.conn, p.create, p.left, p.leftAddr, p.used, p.usedAddr
	pods := client.For[*corev1.Pod](conn)
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	w, err := pods.Watch(wctx, "", client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if !strings.HasSuffix(w.Server(), leftAddr) {
		t.Fatalf("the watch is on %s, want the server in use %s", w.Server(), leftAddr)
	}
	left.refusing.Store(true)
	create("second") // refused by the server the watch is on, created by the other
	if _, err := w.Next(); err == nil || wctx.Err() != nil {
		t.Fatalf("the watch on the server the calls left: Next = %v, %v; want it ended when they moved", err, wctx.Err())
	}
	w2, err := pods.Watch(ctx, "", client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Stop()
	if !strings.HasSuffix(w2.Server(), usedAddr) {
		t.Fatalf("the resumed watch is on %s, want %s", w2.Server(), usedAddr)
	}
	waitfor.Condition(t, 30*time.Second, "the connection left behind closed", func() (bool, string) {
		return left.ln.open.Load() == 0, fmt.Sprintf("%d open", left.ln.open.Load())
	})
	if n := used.ln.open.Load(); n != 1 {
		t.Fatalf("%d connections open to the server in use, want 1", n)
	}
}
