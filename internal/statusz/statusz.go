// Package statusz serves a component's /healthz, /livez and /metrics over plain HTTP, as
// Kubernetes' components serve theirs (kube-proxy's and the kubelet's health ports):
// what a load balancer, a supervisor's probe or Prometheus reads. The controller-manager,
// the scheduler and the kubelet serve it on --http-listen; the API server has its own,
// with /readyz and TLS off loopback.
package statusz

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/skiffhq/skiff/client/record"
)

// Handler serves /healthz and /livez ("ok" while the process runs) and /metrics: the Go
// runtime's and the process's collectors, the recorders' counters (record.Registry) and
// gatherers.
func Handler(gatherers ...prometheus.Gatherer) http.Handler {
	own := prometheus.NewRegistry()
	own.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	all := append(prometheus.Gatherers{own, record.Registry}, gatherers...)
	mux := http.NewServeMux()
	ok := func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") }
	mux.HandleFunc("/healthz", ok)
	mux.HandleFunc("/livez", ok)
	mux.Handle("/metrics", promhttp.HandlerFor(all, promhttp.HandlerOpts{}))
	return mux
}

// Loopback tells whether addr (host:port) is on a loopback address only, which other
// hosts cannot reach.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Serve listens on addr and serves Handler until ctx ends; wait returns once the
// server has stopped. An empty addr serves nothing. addr must be a loopback address:
// this is plain HTTP without authentication, for a scraper or a supervisor on the same
// host (the API servers' /metrics is the one served to other hosts, over TLS).
func Serve(ctx context.Context, addr string, log hclog.Logger, gatherers ...prometheus.Gatherer) (wait func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	if !Loopback(addr) {
		return nil, fmt.Errorf("--http-listen %s: not a loopback address (127.0.0.1:PORT, [::1]:PORT, localhost:PORT): /healthz and /metrics are served over plain HTTP without authentication", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on HTTP address %s: %w", addr, err)
	}
	srv := &http.Server{Handler: Handler(gatherers...), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("HTTP server stopped", "address", addr, "error", err)
		}
	}()
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	log.Info("serving /healthz, /livez and /metrics", "address", ln.Addr().String())
	return func() { <-done }, nil
}
