package apiserver

import (
	"bytes"
	"io"
	"net"
	"sync"
	"testing"
	"time"
	"unsafe"

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

// TestWriteBatcherReusesItsBuffers: a large answer streamed through the batcher (16 KiB
// frames, as the HTTP/2 server writes a list's pages) grows the connection's two
// buffers once and reuses them, not a new progression of them for each batch past
// writeBatchMax. The queue's backing arrays are counted after each write (the
// process's allocation counters would count other tests' goroutines too): growing from
// 4 KiB to writeBatchMax by doubling is seven arrays a buffer; before, every batch past
// the bound was dropped and grown again (64 MiB allocated 289 MB).
func TestWriteBatcherReusesItsBuffers(t *testing.T) {
	server, client := net.Pipe()
	b := newWriteBatcher(server)
	readDone := make(chan int64)
	go func() {
		n, _ := io.CopyBuffer(io.Discard, client, make([]byte, 64<<10))
		readDone <- n
	}()
	frame := bytes.Repeat([]byte("f"), 16<<10+9)
	const frames = 4096 // 64 MiB
	arrays := map[*byte]bool{}
	for range frames {
		if _, err := b.Write(frame); err != nil {
			t.Fatal(err)
		}
		b.mu.Lock()
		if cap(b.queue) > writeBatchMax {
			t.Errorf("the queue's capacity is %d, past writeBatchMax %d", cap(b.queue), writeBatchMax)
		}
		arrays[unsafe.SliceData(b.queue)] = true
		b.mu.Unlock()
	}
	if err := b.close(); err != nil {
		t.Fatal(err)
	}
	client.Close()
	if n := <-readDone; n != frames*int64(len(frame)) {
		t.Fatalf("read %d bytes, want %d", n, frames*len(frame))
	}
	if len(arrays) > 16 {
		t.Errorf("streaming %d MiB the queue had %d backing arrays; want at most 16 (two buffers grown once, then reused)",
			frames*len(frame)>>20, len(arrays))
	}
}

func TestAppendBounded(t *testing.T) {
	var q []byte
	for i := 0; len(q)+16<<10 <= writeBatchMax; i++ {
		q = appendBounded(q, make([]byte, 16<<10))
		if cap(q) > writeBatchMax {
			t.Fatalf("after %d appends of 16 KiB (%d bytes) the queue's capacity is %d, past writeBatchMax %d", i+1, len(q), cap(q), writeBatchMax)
		}
	}
	// One write larger than writeBatchMax, to an empty queue, is taken whole.
	big := appendBounded(nil, make([]byte, writeBatchMax+1))
	if len(big) != writeBatchMax+1 {
		t.Fatalf("a write past writeBatchMax: len %d", len(big))
	}
	// Contents kept in order across growth.
	q = appendBounded(appendBounded(nil, []byte("ab")), bytes.Repeat([]byte("c"), 5000))
	if string(q[:3]) != "abc" || len(q) != 5002 {
		t.Fatalf("contents: %q… len %d", q[:3], len(q))
	}
}
