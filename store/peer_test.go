package store

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
)

func TestSourceFor(t *testing.T) {
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	for _, tc := range []struct {
		listen net.Addr
		dial   string
		want   string // "" = let the kernel choose
	}{
		{tcp("127.0.0.11:7101"), "127.0.0.12:7102", "127.0.0.11:0"},
		{tcp("10.0.0.5:7101"), "10.0.0.6:7101", "10.0.0.5:0"},
		{tcp("0.0.0.0:7101"), "10.0.0.6:7101", ""},
		{tcp("[::]:7101"), "[fd00::6]:7101", ""},
		{tcp("127.0.0.1:7101"), "10.0.0.6:7101", ""}, // loopback cannot reach a LAN peer
		{tcp("10.0.0.5:7101"), "127.0.0.1:7102", ""},
		{tcp("10.0.0.5:7101"), "[fd00::6]:7101", ""}, // families differ
		{tcp("10.0.0.5:7101"), "peer-2.example:7101", ""},
		{tcp("10.0.0.5:7101"), "no-port", ""},
	} {
		got := ""
		if a := sourceFor(tc.listen, tc.dial); a != nil {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("sourceFor(%v, %q) = %q, want %q", tc.listen, tc.dial, got, tc.want)
		}
	}
}

// TestPeerDialsFromListenAddress: a member listening on its own loopback address reaches
// a peer from that address, not from 127.0.0.1, so the peer (or a proxy before it) can
// tell who dialed.
func TestPeerDialsFromListenAddress(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.21:0")
	if err != nil {
		t.Skipf("no loopback alias 127.0.0.21 here: %v", err)
	}
	m := newPeerMux(ln, nil, hclog.NewNullLogger(), nil, nil)
	defer m.close()
	peer, err := net.Listen("tcp", "127.0.0.22:0")
	if err != nil {
		t.Fatal(err)
	}
	defer peer.Close()
	accepted := make(chan net.Addr, 1)
	go func() {
		c, err := peer.Accept()
		if err != nil {
			accepted <- nil
			return
		}
		accepted <- c.RemoteAddr()
		c.Close()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The peer closes without a hello: the dial fails, after connecting from the right
	// address.
	if conn, err := m.dial(ctx, peer.Addr().String(), protoRaft); err == nil {
		conn.Close()
	}
	select {
	case from := <-accepted:
		if from == nil {
			t.Fatal("peer's accept failed")
		}
		if ip := from.(*net.TCPAddr).IP.String(); ip != "127.0.0.21" {
			t.Fatalf("peer saw the connection come from %s, want 127.0.0.21", ip)
		}
	case <-ctx.Done():
		t.Fatal("peer accepted nothing")
	}
}
