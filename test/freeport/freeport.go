// Package freeport hands tests TCP ports for the servers they start in other processes,
// or start again: ports free when asked, taken from below the kernel's range of
// ephemeral ports.
//
// A port the kernel picked for a listener on port 0 is an ephemeral port: once the
// listener is closed, any outgoing connection on the machine may be given it as its
// local port, and a server started (or restarted after a kill) on it then fails with
// "address already in use". make test failed so once: a Raft member restarted after a
// crash found its peer port taken. Ports below the ephemeral range are given to no
// connection; only a listener that names one takes it.
package freeport

import (
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// lowest is the first port handed out: below it are the well-known and registered
// ports of the machine's own services (a test's registry, S3 server, and so on) that
// are likelier to be in use.
const lowest = 10000

var (
	mu    sync.Mutex
	given = map[string]bool{} // ip:port handed out by this process
)

// TCP returns n distinct ports on ip that no listener has now and that this process
// has not handed out before. Another process may still take one before the caller's
// server binds it, though not as an ephemeral port.
func TCP(t testing.TB, ip string, n int) []int {
	t.Helper()
	lo, hi := lowest, ephemeralStart()-1
	if hi-lo < 1000 {
		t.Fatalf("freeport: the ephemeral port range starts at %d: no room below it", hi+1)
	}
	mu.Lock()
	defer mu.Unlock()
	var ports []int
	var lastErr error
	span := hi - lo + 1
	start := rand.IntN(span)
	for i := 0; i < span && len(ports) < n; i++ {
		p := lo + (start+i)%span
		addr := net.JoinHostPort(ip, strconv.Itoa(p))
		if given[addr] {
			continue
		}
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			lastErr = err
			continue
		}
		ln.Close()
		given[addr] = true
		ports = append(ports, p)
	}
	if len(ports) < n {
		t.Fatalf("freeport: %d of %d free ports on %s between %d and %d (last: %v)", len(ports), n, ip, lo, hi, lastErr)
	}
	return ports
}

// Spaced returns a port p on ip such that p+o is free for every o of offsets (and not
// handed out before by this process), all below the ephemeral range: the block of
// ports a server lays out from one base (skiff up's members at base+i, their Raft at
// base+100+i).
func Spaced(t testing.TB, ip string, offsets ...int) int {
	t.Helper()
	top := slices.Max(append([]int{0}, offsets...))
	lo, hi := lowest, ephemeralStart()-1-top
	if hi-lo < 1000 {
		t.Fatalf("freeport: no room for a block of %d below the ephemeral range (from %d)", top+1, hi+top+1)
	}
	mu.Lock()
	defer mu.Unlock()
	span := hi - lo + 1
	start := rand.IntN(span)
	var lastErr error
next:
	for i := 0; i < span; i++ {
		p := lo + (start+i)%span
		var lns []net.Listener
		for _, o := range offsets {
			addr := net.JoinHostPort(ip, strconv.Itoa(p+o))
			ln, err := net.Listen("tcp", addr)
			if given[addr] || err != nil {
				if err == nil {
					ln.Close()
				}
				lastErr = err
				for _, l := range lns {
					l.Close()
				}
				continue next
			}
			lns = append(lns, ln)
		}
		for _, l := range lns {
			given[l.Addr().String()] = true
			l.Close()
		}
		return p
	}
	t.Fatalf("freeport: no block %v free on %s between %d and %d (last: %v)", offsets, ip, lo, hi, lastErr)
	return 0
}

// Loopback is TCP on 127.0.0.1.
func Loopback(t testing.TB, n int) []int { return TCP(t, "127.0.0.1", n) }

// ephemeralStart is the first port of the kernel's ephemeral range (Linux's default
// when it cannot be read).
func ephemeralStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err == nil {
		if f := strings.Fields(string(b)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				return v
			}
		}
	}
	return 32768
}
