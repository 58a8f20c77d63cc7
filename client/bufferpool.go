package client

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/experimental"
	"google.golang.org/grpc/mem"
)

// bufferPool serves gRPC's message buffers in power-of-two sizes from 256 B to 4 MiB.
// gRPC's default pool jumps from 32 KiB to 1 MiB and clears a whole pooled buffer on
// every Get, so each 40 KiB watch batch cleared 1 MiB: that was a third of a busy API
// server's CPU. With every power of two a buffer is at most twice the message.
var bufferPool = func() mem.BufferPool {
	p, err := mem.NewBinaryTieredBufferPool(8, 10, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22)
	if err != nil {
		panic(err) // the exponents are constants
	}
	return p
}()

// BufferPool is the pool itself, for code that builds gRPC messages in its buffers.
func BufferPool() mem.BufferPool { return bufferPool }

// ServerBufferPool is the server option that makes a server use the pool.
func ServerBufferPool() grpc.ServerOption { return experimental.BufferPool(bufferPool) }

// DialBufferPool is the dial option that makes a client use the pool.
func DialBufferPool() grpc.DialOption { return experimental.WithBufferPool(bufferPool) }
