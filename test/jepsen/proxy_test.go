package jepsen

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// netFaults cuts and heals links between nodes: the partition nemeses' tool. Two kinds:
// iptables (root; the firewall) and a fault-injecting proxy (anyone).
type netFaults interface {
	kind() string
	cut(a, b *node) error // nothing passes between a and b, either way
	heal() error          // every link passes again
}

func (f *firewall) kind() string { return "iptables" }

// proxyNet is a fault-injecting TCP proxy in front of each node's peer port, for runs
// without root. A node listens for peers on one port and advertises another
// (--raft-advertise), where the proxy listens and forwards to it; every Raft RPC and every
// forwarded write or read index between members therefore passes through the proxy.
// Members dial each other from their own loopback address (the store binds the source
// to its listen address), so the proxy tells who dials by the source address.
//
// A cut link black-holes its traffic, as iptables' DROP does: open connections stay open
// but what is sent on them vanishes, and new connections are accepted and go nowhere.
// The other side sees silence and times out, not a reset. At heal, connections that lost
// bytes are closed (their streams are broken); untouched ones carry on.
type proxyNet struct {
	mu      sync.Mutex
	cuts    map[[2]string]bool // by the two nodes' addresses, smaller first
	nodes   map[string]bool    // node addresses
	conns   map[*proxyConn]bool
	lns     []net.Listener
	closed  bool
	unknown atomic.Int64 // connections from an address that is no node's
	wg      sync.WaitGroup
}

func newProxyNet() *proxyNet {
	return &proxyNet{cuts: map[[2]string]bool{}, nodes: map[string]bool{}, conns: map[*proxyConn]bool{}}
}

func (p *proxyNet) kind() string { return "proxy" }

// front starts forwarding from a new port on ip to backend, the node's real peer
// address, and returns the address the node should advertise.
func (p *proxyNet) front(ip, backend string) (string, error) {
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		return "", err
	}
	p.mu.Lock()
	p.nodes[ip] = true
	p.lns = append(p.lns, ln)
	p.mu.Unlock()
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			p.wg.Add(1)
			go func() { defer p.wg.Done(); p.forward(in, ip, backend) }()
		}
	}()
	return ln.Addr().String(), nil
}

func link(a, b string) [2]string {
	if a > b {
		a, b = b, a
	}
	return [2]string{a, b}
}

func (p *proxyNet) isCut(l [2]string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cuts[l]
}

// proxyConn is one proxied connection: in from the dialing node, out to the target.
type proxyConn struct {
	link    [2]string
	in, out net.Conn
	lost    atomic.Bool // bytes were dropped: the stream is broken
	once    sync.Once
}

func (pc *proxyConn) close() {
	pc.once.Do(func() { pc.in.Close(); pc.out.Close() })
}

func (p *proxyNet) forward(in net.Conn, dstIP, backend string) {
	src := in.RemoteAddr().(*net.TCPAddr).IP.String()
	p.mu.Lock()
	known := p.nodes[src]
	p.mu.Unlock()
	if !known {
		p.unknown.Add(1)
	}
	out, err := net.DialTimeout("tcp", backend, 5*time.Second)
	if err != nil { // the node is down: the dialer sees its connection close
		in.Close()
		return
	}
	pc := &proxyConn{link: link(src, dstIP), in: in, out: out}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		pc.close()
		return
	}
	p.conns[pc] = true
	p.mu.Unlock()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pipe(pc, in, out) }()
	go func() { defer wg.Done(); p.pipe(pc, out, in) }()
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, pc)
	p.mu.Unlock()
}

// pipe copies from one side to the other, dropping what arrives while the link is cut;
// when either side ends, both do.
func (p *proxyNet) pipe(pc *proxyConn, from, to net.Conn) {
	defer pc.close()
	buf := make([]byte, 32<<10)
	for {
		n, err := from.Read(buf)
		if n > 0 {
			if p.isCut(pc.link) {
				pc.lost.Store(true)
			} else if _, werr := to.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *proxyNet) cut(a, b *node) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cuts[link(a.ip, b.ip)] = true
	return nil
}

func (p *proxyNet) heal() error {
	p.mu.Lock()
	p.cuts = map[[2]string]bool{}
	var broken []*proxyConn
	for pc := range p.conns {
		if pc.lost.Load() {
			broken = append(broken, pc)
		}
	}
	p.mu.Unlock()
	for _, pc := range broken {
		pc.close()
	}
	return nil
}

// check reports connections the proxy could not attribute to a node: partitions would
// not have cut them.
func (p *proxyNet) check() error {
	if n := p.unknown.Load(); n > 0 {
		return fmt.Errorf("%d peer connections came from an address that is no node's: the proxy could not cut them", n)
	}
	return nil
}

func (p *proxyNet) close() {
	p.mu.Lock()
	p.closed = true
	lns := p.lns
	var conns []*proxyConn
	for pc := range p.conns {
		conns = append(conns, pc)
	}
	p.mu.Unlock()
	for _, ln := range lns {
		ln.Close()
	}
	for _, pc := range conns {
		pc.close()
	}
	p.wg.Wait()
}

// TestProxyCutsAndHeals drives the proxy directly: traffic passes, a cut black-holes it
// on open and new connections alike (no reset), and a heal closes what lost bytes and lets
// new connections through.
func TestProxyCutsAndHeals(t *testing.T) {
	a := &node{name: "a", ip: "127.0.0.31"}
	b := &node{name: "b", ip: "127.0.0.32"}
	echo, err := net.Listen("tcp", b.ip+":0") // b's real peer port
	if err != nil {
		t.Skipf("no loopback alias %s here: %v", b.ip, err)
	}
	defer echo.Close()
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	p := newProxyNet()
	defer p.close()
	if _, err := p.front(a.ip, "127.0.0.1:1"); err != nil { // a's front: makes a known
		t.Fatal(err)
	}
	addr, err := p.front(b.ip, echo.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	dial := func() net.Conn {
		t.Helper()
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(a.ip)}, Timeout: 5 * time.Second}
		c, err := d.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	// roundTrip sends msg and says whether it came back within wait.
	roundTrip := func(c net.Conn, msg string, wait time.Duration) error {
		if _, err := c.Write([]byte(msg)); err != nil {
			return err
		}
		c.SetReadDeadline(time.Now().Add(wait))
		buf := make([]byte, len(msg))
		if _, err := io.ReadFull(c, buf); err != nil {
			return err
		}
		if string(buf) != msg {
			return fmt.Errorf("got %q back, want %q", buf, msg)
		}
		return nil
	}
	old := dial()
	defer old.Close()
	idle := dial()
	defer idle.Close()
	if err := roundTrip(old, "before", 10*time.Second); err != nil {
		t.Fatalf("before the cut: %v", err)
	}
	if err := roundTrip(idle, "idle", 10*time.Second); err != nil {
		t.Fatalf("before the cut: %v", err)
	}

	p.cut(a, b)
	var ne net.Error
	if err := roundTrip(old, "during", 300*time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("an open connection across a cut link: %v, want a read timeout (silence)", err)
	}
	fresh := dial() // accepted: a black hole, not a refusal
	defer fresh.Close()
	if err := roundTrip(fresh, "new", 300*time.Millisecond); !errors.As(err, &ne) || !ne.Timeout() {
		t.Fatalf("a new connection across a cut link: %v, want a read timeout (silence)", err)
	}

	p.heal()
	old.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := old.Read(make([]byte, 1)); err == nil {
		t.Fatal("a connection that lost bytes in the cut is still open after the heal")
	}
	if err := roundTrip(idle, "still", 10*time.Second); err != nil {
		t.Fatalf("a connection idle through the cut, after the heal: %v", err)
	}
	if err := roundTrip(dial(), "after", 10*time.Second); err != nil {
		t.Fatalf("after the heal: %v", err)
	}
	if err := p.check(); err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr) // from 127.0.0.1: no node's address
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for p.check() == nil && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond) // bounded polling for the accept
	}
	if p.check() == nil {
		t.Fatal("a connection from 127.0.0.1 was not reported as unattributable")
	}
}
