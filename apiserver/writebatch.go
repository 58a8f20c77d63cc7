package apiserver

import (
	"net"
	"sync"
	"time"
)

// writeBatcher coalesces the writes of net/http's HTTP/2 server into fewer TLS records
// and system calls, as gRPC's transport does with its one writer per connection. Go's
// HTTP/2 server flushes a 4 KiB buffer each time its queue of frames empties, on a new
// goroutine, and writes nothing else on the connection until that write returns: under
// load, one TLS record and one write(2) per response or two. Here the first writer
// writes its bytes itself, and writes that arrive meanwhile are copied into a queue and
// return at once; the writing goroutine sends the queue, as one write, before it
// returns. Nothing waits on a goroutine of its own, and bytes keep their order.
//
// A queued write returns before its bytes reach the socket: its error, if any, is
// returned by the writes after it (the server closes the connection on the first).
// Close lets the writing goroutine finish the queue first, for at most closeDrain, so
// that what the server wrote before closing (a GOAWAY, a last response) is sent.
type writeBatcher struct {
	conn net.Conn

	mu      sync.Mutex
	idle    *sync.Cond // signalled when writing ends
	writing bool       // a goroutine is in conn.Write
	queue   []byte     // written while writing, not yet sent
	spare   []byte     // the last queue sent, reused
	err     error      // the first write error: every later write returns it
}

// writeBatchMax bounds the queue: a writer beyond it waits for the writing goroutine,
// so a slow reader holds the server back as it would without the batcher.
const (
	writeBatchMax = 256 << 10
	closeDrain    = time.Second
)

func newWriteBatcher(conn net.Conn) *writeBatcher {
	b := &writeBatcher{conn: conn}
	b.idle = sync.NewCond(&b.mu)
	return b
}

func (b *writeBatcher) Write(p []byte) (int, error) {
	b.mu.Lock()
	for b.writing && b.err == nil && len(b.queue)+len(p) > writeBatchMax {
		b.idle.Wait()
	}
	if b.err != nil {
		err := b.err
		b.mu.Unlock()
		return 0, err
	}
	if b.writing {
		b.queue = append(b.queue, p...)
		b.mu.Unlock()
		return len(p), nil
	}
	b.writing = true
	b.mu.Unlock()

	n, err := b.conn.Write(p)
	for {
		b.mu.Lock()
		if err != nil && b.err == nil {
			b.err = err
		}
		if b.err != nil || len(b.queue) == 0 {
			b.queue = b.queue[:0]
			b.writing = false
			b.idle.Broadcast()
			b.mu.Unlock()
			return n, err
		}
		batch := b.queue
		b.queue, b.spare = b.spare[:0], nil
		b.idle.Broadcast() // writers waiting for room in the queue
		b.mu.Unlock()
		_, err = b.conn.Write(batch)
		b.mu.Lock()
		b.spare = batch[:0]
		b.mu.Unlock()
	}
}

// close waits for the queue to be sent (at most closeDrain: a peer that reads nothing
// does not hold it longer) and closes the connection.
func (b *writeBatcher) close() error {
	b.mu.Lock()
	if b.writing {
		b.conn.SetWriteDeadline(time.Now().Add(closeDrain))
		for b.writing {
			b.idle.Wait()
		}
	}
	if b.err == nil {
		b.err = net.ErrClosed
	}
	b.mu.Unlock()
	return b.conn.Close()
}
