package apiserver_test

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptrace"
	"testing"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestRESTHTTP2StreamsPerConnection: the REST API's HTTP/2 server allows a connection
// --http2-max-streams-per-connection streams at once (default 32), so a client holding
// more opens further connections, each at most that full: 40 watches on one HTTP/2
// client end up on two connections at the default, on eight at 5.
func TestRESTHTTP2StreamsPerConnection(t *testing.T) {
	for _, tc := range []struct {
		limit     int // 0: the default
		wantConns int
	}{{0, 2}, {5, 8}} {
		t.Run(fmt.Sprintf("limit=%d", tc.limit), func(t *testing.T) {
			c := apicluster.Start(t, 1, apicluster.Options{Configure: func(cfg *apiserver.Config) {
				cfg.HTTP2MaxStreamsPerConnection = tc.limit
			}})
			rc := newREST(t, c.Addr(0), true)
			streams := map[net.Conn]int{}
			const watches = 40
			for i := range watches {
				var conn net.Conn
				ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
					GotConn: func(info httptrace.GotConnInfo) { conn = info.Conn },
				})
				req, err := http.NewRequestWithContext(ctx, "GET", rc.base+"/api/v1/namespaces/default/configmaps?watch=1", nil)
				if err != nil {
					t.Fatal(err)
				}
				resp, err := rc.c.Do(req)
				if err != nil {
					t.Fatalf("watch %d: %v", i, err)
				}
				defer resp.Body.Close()
				if resp.StatusCode != 200 || resp.ProtoMajor != 2 {
					t.Fatalf("watch %d: %s over %s, want 200 over HTTP/2", i, resp.Status, resp.Proto)
				}
				streams[conn]++
			}
			limit := tc.limit
			if limit == 0 {
				limit = apiserver.DefaultHTTP2MaxStreams
			}
			for _, n := range streams {
				if n > limit {
					t.Errorf("a connection carries %d watches at once, more than the limit %d", n, limit)
				}
			}
			if len(streams) != tc.wantConns {
				t.Errorf("%d watches over %d connections, want %d (limit %d a connection)", watches, len(streams), tc.wantConns, limit)
			}
		})
	}
}
