package client_test

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// slowLink is a TCP proxy to a server whose every byte back to the client arrives
// delay late, as from a server (or to a client) too busy to answer sooner. Once armed,
// it tells when the client next writes (pinged: on an idle connection, only the
// keepalive's PING) and when the proxy has delivered what the server sent after that
// (acked: the PING's ACK).
type slowLink struct {
	delay  time.Duration
	ln     net.Listener
	target string

	mu              sync.Mutex
	armed           bool
	pinged, acked   chan struct{}
	pingAt          time.Time
	pingedO, ackedO sync.Once
}

func newSlowLink(t *testing.T, target string, delay time.Duration) *slowLink {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := &slowLink{delay: delay, ln: ln, target: target, pinged: make(chan struct{}), acked: make(chan struct{})}
	t.Cleanup(func() { ln.Close() })
	go l.serve()
	return l
}

func (l *slowLink) addr() string { return l.ln.Addr().String() }

func (l *slowLink) arm() { l.mu.Lock(); l.armed = true; l.mu.Unlock() }

func (l *slowLink) serve() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", l.target)
		if err != nil {
			c.Close()
			continue
		}
		go l.up(c, s)
		go l.down(s, c)
	}
}

// up copies the client's bytes to the server at once.
func (l *slowLink) up(c, s net.Conn) {
	defer s.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := c.Read(buf)
		if n > 0 {
			l.mu.Lock()
			if l.armed {
				l.pingedO.Do(func() { l.pingAt = time.Now(); close(l.pinged) })
			}
			l.mu.Unlock()
			if _, err := s.Write(buf[:n]); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// down copies the server's bytes to the client, each chunk delay after it came.
func (l *slowLink) down(s, c net.Conn) {
	type chunk struct {
		b  []byte
		at time.Time
	}
	chunks := make(chan chunk, 1024)
	go func() {
		defer close(chunks)
		for {
			buf := make([]byte, 32<<10)
			n, err := s.Read(buf)
			if n > 0 {
				chunks <- chunk{buf[:n], time.Now()}
			}
			if err != nil {
				return
			}
		}
	}()
	defer c.Close()
	for ch := range chunks {
		time.Sleep(time.Until(ch.at.Add(l.delay))) // the link's latency, not synchronisation
		_, err := c.Write(ch.b)
		l.mu.Lock()
		if !l.pingAt.IsZero() && ch.at.After(l.pingAt) {
			l.ackedO.Do(func() { close(l.acked) })
		}
		l.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// idleWatchServer holds every watch open, silent, and sends one event on send.
type idleWatchServer struct {
	apiv1.UnimplementedResourcesServer
	send chan struct{}
}

func (w *idleWatchServer) Watch(req *apiv1.WatchRequest, s apiv1.Resources_WatchServer) error {
	if err := s.SendHeader(nil); err != nil {
		return err
	}
	select {
	case <-w.send:
	case <-s.Context().Done():
		return nil
	}
	obj, err := kinds.Wrap(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", ResourceVersion: "2"}})
	if err != nil {
		return err
	}
	if err := s.Send(&apiv1.WatchResponse{Events: []*apiv1.WatchEvent{{Type: "ADDED", Object: obj}}}); err != nil {
		return err
	}
	<-s.Context().Done()
	return nil
}

// TestKeepaliveKeepsASlowServer: a watch over a connection whose server answers 7s late
// (alive, on a saturated machine) outlives the connection's health check with the
// default options: the keepalive's PING is answered within its timeout, so the
// connection stays and the watch's next event arrives. With the 5s timeout of before,
// every connection of 2,500 simulated nodes on a loaded machine was closed this way and
// reopened, TLS handshake and all, until their Leases went unrenewed (issue 26).
func TestKeepaliveKeepsASlowServer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out a keepalive period (30s) on a 7s link: not in -short")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ws := &idleWatchServer{send: make(chan struct{})}
	s := grpc.NewServer()
	apiv1.RegisterResourcesServer(s, ws)
	go s.Serve(ln)
	defer s.Stop()
	link := newSlowLink(t, ln.Addr().String(), 7*time.Second)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	conn, err := client.Dial([]string{link.addr()}, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	w, err := client.For[*corev1.Pod](conn).Watch(ctx, "", client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	// The watch has started (its headers came back): from here on the connection is
	// idle but for the health check.
	link.arm()
	for _, step := range []struct {
		what string
		ch   chan struct{}
	}{{"the keepalive's PING", link.pinged}, {"the PING's ACK delivered", link.acked}} {
		select {
		case <-step.ch:
		case <-ctx.Done():
			t.Fatalf("no %s", step.what)
		}
	}
	close(ws.send)
	evs, err := w.Next()
	if err != nil {
		t.Fatalf("the watch ended: %v (the connection was closed by its health check)", err)
	}
	if len(evs) != 1 || evs[0].Object.Name != "p" {
		t.Fatalf("events %v, want p ADDED", evs)
	}
}
