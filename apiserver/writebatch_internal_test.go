package apiserver

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

// inWrite reports whether b's sender is in its connection's Write with nothing queued.
func (b *writeBatcher) inWrite() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sending && len(b.queue) == 0
}

// TestWriteBatcherCoalesces: writes return before the connection has taken them; while
// one is in the connection, later writes go out together as one write, after it and in
// their order.
func TestWriteBatcherCoalesces(t *testing.T) {
	server, client := net.Pipe() // a Write returns when the peer has read it all
	defer client.Close()
	b := newWriteBatcher(server)

	if n, err := b.Write([]byte("first;")); n != 6 || err != nil {
		t.Fatalf("first write: %d, %v", n, err)
	}
	waitfor.Condition(t, 10*time.Second, "the first write in the connection", func() (bool, string) {
		return b.inWrite(), "not writing"
	})
	// The first write is blocked on the pipe, nobody reading: these must not block.
	for _, s := range []string{"second;", "third;"} {
		if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
			t.Fatalf("queued write %q: %d, %v", s, n, err)
		}
	}
	buf := make([]byte, 64)
	n, err := client.Read(buf)
	if err != nil || string(buf[:n]) != "first;" {
		t.Fatalf("first read: %q, %v", buf[:n], err)
	}
	n, err = client.Read(buf) // one Write on a pipe is read whole by a large enough Read
	if err != nil || string(buf[:n]) != "second;third;" {
		t.Fatalf("second read: %q, %v; want the queued writes as one", buf[:n], err)
	}

	// Many writers: every byte arrives, each write whole.
	var got bytes.Buffer
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		io.Copy(&got, client)
	}()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				b.Write(bytes.Repeat([]byte{byte('a' + i)}, 100))
			}
		}(i)
	}
	wg.Wait()
	if err := b.close(); err != nil {
		t.Fatal(err)
	}
	<-readDone
	if got.Len() != 8*100*100 {
		t.Fatalf("read %d bytes, want %d", got.Len(), 8*100*100)
	}
	for off := 0; off < got.Len(); off += 100 {
		chunk := got.Bytes()[off : off+100]
		if !bytes.Equal(chunk, bytes.Repeat(chunk[:1], 100)) {
			t.Fatalf("a write was split or interleaved at byte %d: %q", off, chunk)
		}
	}
	if _, err := b.Write([]byte("x")); err == nil {
		t.Fatal("a write after close succeeded")
	}
}

// TestWriteBatcherCloseDrains: close sends what was queued before it closes; a peer that
// reads nothing holds close for at most closeDrain.
func TestWriteBatcherCloseDrains(t *testing.T) {
	server, client := net.Pipe()
	defer client.Close()
	b := newWriteBatcher(server)
	b.Write([]byte("response;"))
	waitfor.Condition(t, 10*time.Second, "the first write in the connection", func() (bool, string) {
		return b.inWrite(), "not writing"
	})
	b.Write([]byte("goaway"))
	closed := make(chan error, 1)
	go func() { closed <- b.close() }()
	got, err := io.ReadAll(client)
	if err != nil || string(got) != "response;goaway" {
		t.Fatalf("read %q, %v; want everything written before close", got, err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}

	// Nobody reads: close gives up on the queue after closeDrain.
	server, client = net.Pipe()
	defer client.Close()
	b = newWriteBatcher(server)
	b.Write([]byte("never read"))
	waitfor.Condition(t, 10*time.Second, "the write in the connection", func() (bool, string) {
		return b.inWrite(), "not writing"
	})
	start := time.Now()
	if err := b.close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > closeDrain+10*time.Second {
		t.Fatalf("close took %v with a peer that reads nothing", d)
	}
}
