package freeport

import (
	"net"
	"strconv"
	"testing"
)

// TestTCP: the ports are distinct, below the ephemeral range, free, never handed out
// twice, and a port a listener holds is not among them.
func TestTCP(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(lowest))
	if err != nil {
		t.Skipf("port %d is in use here: %v", lowest, err)
	}
	defer held.Close()
	seen := map[int]bool{}
	for range 3 {
		for _, p := range Loopback(t, 50) {
			if p < lowest || p >= ephemeralStart() {
				t.Fatalf("port %d outside [%d, %d)", p, lowest, ephemeralStart())
			}
			if p == lowest {
				t.Fatalf("port %d is held by a listener", p)
			}
			if seen[p] {
				t.Fatalf("port %d handed out twice", p)
			}
			seen[p] = true
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				t.Fatalf("port %d not free: %v", p, err)
			}
			ln.Close()
		}
	}
}

// TestSpaced: every port of the block is free and below the ephemeral range, and none
// is handed out again, by Spaced or TCP.
func TestSpaced(t *testing.T) {
	offsets := []int{0, 1, 2, 100, 101, 102}
	seen := map[int]bool{}
	for range 5 {
		base := Spaced(t, "127.0.0.1", offsets...)
		for _, o := range offsets {
			p := base + o
			if p < lowest || p >= ephemeralStart() || seen[p] {
				t.Fatalf("port %d: outside [%d, %d) or handed out twice", p, lowest, ephemeralStart())
			}
			seen[p] = true
			ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
			if err != nil {
				t.Fatalf("port %d not free: %v", p, err)
			}
			ln.Close()
		}
	}
	for _, p := range Loopback(t, 200) {
		if seen[p] {
			t.Fatalf("port %d of a block handed out again", p)
		}
	}
}
