package client

import (
	"math/bits"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
)

// bufferPool serves gRPC's message buffers in every power-of-two size from 256 B to
// 4 MiB, so a buffer is at most twice the message, and it does not clear a buffer it
// hands out again. gRPC's default pool jumps from 32 KiB to 1 MiB, and every pool of
// gRPC's clears a whole buffer on each Get: each 40 KiB watch batch cleared 1 MiB, a
// third of a busy API server's CPU; and with every event of a ~1 KiB pod in a 2 KiB
// buffer, clearing was still a tenth of a watch fan-out's CPU. Nobody reads what was not
// written: gRPC reads a frame into exactly the bytes it asks for, and the watch encoder
// writes every byte it asks for.
var bufferPool = newTieredPool(8, 22)

// BufferPool is the pool itself, for code that builds gRPC messages in its buffers.
func BufferPool() mem.BufferPool { return bufferPool }

// ServerBufferPool is the server option that makes a server use the pool.
func ServerBufferPool() grpc.ServerOption { return experimental.BufferPool(bufferPool) }

// DialBufferPool is the dial option that makes a client use the pool.
func DialBufferPool() grpc.DialOption { return experimental.WithBufferPool(bufferPool) }

// tieredPool keeps buffers of sizes 1<<min to 1<<max, one sync.Pool per size; larger
// requests are allocated and dropped.
type tieredPool struct {
	min   int
	tiers []sync.Pool // tiers[i] holds *[]byte of capacity 1<<(min+i)
}

var _ mem.BufferPool = (*tieredPool)(nil)

func newTieredPool(min, max int) *tieredPool {
	return &tieredPool{min: min, tiers: make([]sync.Pool, max-min+1)}
}

// tier is the index of the smallest size holding n bytes, or -1 beyond the largest.
func (p *tieredPool) tier(n int) int {
	t := 0
	if n > 1<<p.min {
		t = bits.Len(uint(n-1)) - p.min
	}
	if t >= len(p.tiers) {
		return -1
	}
	return t
}

// Get returns a buffer of length n; its contents are whatever it last held.
func (p *tieredPool) Get(n int) *[]byte {
	t := p.tier(n)
	if t < 0 {
		b := make([]byte, n)
		return &b
	}
	if bp, ok := p.tiers[t].Get().(*[]byte); ok {
		*bp = (*bp)[:n]
		return bp
	}
	b := make([]byte, n, 1<<(p.min+t))
	return &b
}

// Put takes back a buffer Get handed out (others are dropped).
func (p *tieredPool) Put(bp *[]byte) {
	c := cap(*bp)
	t := p.tier(c)
	if t < 0 || c != 1<<(p.min+t) {
		return
	}
	*bp = (*bp)[:0]
	p.tiers[t].Put(bp)
}
