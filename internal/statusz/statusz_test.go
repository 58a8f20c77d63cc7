package statusz

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
)

func TestHandler(t *testing.T) {
	extra := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "test_things_total", Help: "Things."})
	extra.MustRegister(c)
	c.Add(3)
	srv := httptest.NewServer(Handler(extra))
	defer srv.Close()
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, string(b)
	}
	for _, path := range []string{"/healthz", "/livez"} {
		if code, body := get(path); code != http.StatusOK || body != "ok\n" {
			t.Errorf("%s: %d %q", path, code, body)
		}
	}
	code, body := get("/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	// The runtime's, the process's and the given gatherer's.
	for _, want := range []string{"go_goroutines ", "process_resident_memory_bytes ", "test_things_total 3"} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q:\n%s", want, body)
		}
	}
	if code, _ := get("/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing: %d, want 404", code)
	}
}

func TestServeOff(t *testing.T) {
	wait, err := Serve(context.Background(), "", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	wait() // returns at once: nothing served
}

func TestServeStopsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	wait, err := Serve(ctx, "127.0.0.1:0", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	wait()
	// Plain HTTP without authentication: never on an address other hosts reach.
	if _, err := Serve(context.Background(), "0.0.0.0:0", hclog.NewNullLogger()); err == nil || !strings.Contains(err.Error(), "not a loopback address") {
		t.Errorf("0.0.0.0:0 taken: %v", err)
	}
}

func TestLoopback(t *testing.T) {
	for addr, want := range map[string]bool{
		"127.0.0.1:10257": true, "[::1]:10257": true, "localhost:10257": true, "127.0.0.2:1": true,
		"0.0.0.0:10257": false, ":10257": false, "10.0.0.1:10257": false, "example.com:1": false, "127.0.0.1": false,
	} {
		if got := Loopback(addr); got != want {
			t.Errorf("Loopback(%q) = %v, want %v", addr, got, want)
		}
	}
}
