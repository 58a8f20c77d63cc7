package apiserver_test

import (
	"context"
	"net"
	"testing"
	"time"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
)

// TestIdleConnectionFlood: thousands of idle raw connections to the API port (no TLS
// bytes sent), from one address, do not keep an administrator's call from answering,
// over gRPC or the REST API.
func TestIdleConnectionFlood(t *testing.T) {
	dir := apicluster.Certs(t)
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	admin := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	attacker := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}} // loopback, another address
	for range 3000 {
		conn, err := attacker.Dial("tcp", c.Addr(0))
		if err != nil {
			t.Fatalf("flood: %v", err)
		}
		defer conn.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := admin.List(ctx, &apiv1.ListRequest{Kind: "Namespace"}); err != nil {
		t.Fatalf("an administrator's call during the flood: %v", err)
	}
	t.Logf("answered in %v during a flood of 3,000 idle connections", time.Since(start))
	// The REST API, on the same port behind the same guard, answers too.
	rc := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	start = time.Now()
	rc.want(rc.do("GET", "/api/v1/namespaces", "", "", nil), 200, "a REST list during the flood")
	t.Logf("REST answered in %v during the flood", time.Since(start))
}
