package apiserver_test

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestTLSConnectionsHoldNoReadBuffer: neither a member nor a client holds a read buffer
// of gRPC's for a TLS connection's life (32 KiB each side, over the TLS connection's own
// buffer), nor a member the splitter's (4 KiB): the connections of thousands of
// simulated nodes held them for nothing (issue 26). Every allocation made while the
// connections open is sampled, and none that those buffered readers made is still live.
func TestTLSConnectionsHoldNoReadBuffer(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{Certs: apicluster.Certs(t)})
	rate := runtime.MemProfileRate
	runtime.MemProfileRate = 1
	for range 3 {
		cs := client.NewClientset(c.Dial(t, "admin", client.Options{}))
		if _, err := cs.Namespaces.List(context.Background(), "", client.ListOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	runtime.MemProfileRate = rate
	if n, where := liveBytes("grpc/internal/transport.bufferedReader"); n > 0 {
		t.Fatalf("%d bytes of gRPC's read buffers live, made at\n%s", n, where)
	}
	// Nor the splitter's, which read the connection's first request through one (4 KiB
	// a connection before).
	if n, where := liveBytes("bufio.NewReader", "apiserver.(*splitter).split"); n > 0 {
		t.Fatalf("%d bytes of the splitter's read buffers live, made at\n%s", n, where)
	}
}

// liveBytes is what is live, as of a collection now, of the sampled allocations made
// under functions whose names contain each of fns, and one such allocation's stack.
func liveBytes(fns ...string) (int64, string) {
	runtime.GC()
	runtime.GC() // the profile is as of the last collection completed before this one
	var records []runtime.MemProfileRecord
	for {
		n, ok := runtime.MemProfile(records, false)
		if ok {
			records = records[:n]
			break
		}
		records = make([]runtime.MemProfileRecord, n+100)
	}
	var live int64
	var where string
	for _, r := range records {
		frames := runtime.CallersFrames(r.Stack())
		var stack []string
		for {
			f, more := frames.Next()
			stack = append(stack, f.Function)
			if !more {
				break
			}
		}
		under := true
		for _, fn := range fns {
			under = under && slices.ContainsFunc(stack, func(f string) bool { return strings.Contains(f, fn) })
		}
		if under && r.InUseBytes() > 0 {
			live += r.InUseBytes()
			where = strings.Join(stack, "\n")
		}
	}
	return live, where
}
