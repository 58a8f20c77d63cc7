package proxy

import (
	"fmt"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"
)

// healthChecks serves the health check node ports of the LoadBalancer Services with
// externalTrafficPolicy Local, as kube-proxy does: an HTTP server on each such port
// (every address of the node) answering 200 when the node has a ready endpoint of
// the Service, 503 when it has none, with kube-proxy's JSON body. A load balancer in
// front of the nodes then sends the Service's traffic only to nodes that serve it.
type healthChecks struct {
	netns int // as Config.NetNS
	log   hclog.Logger

	mu      sync.Mutex
	servers map[uint16]*healthServer // by port
}

// healthServer is one health check node port's server.
type healthServer struct {
	namespace, name string
	srv             *http.Server

	mu    sync.Mutex
	local int // ready endpoints on the node
}

// healthCheck is what a Service's health check node port says.
type healthCheck struct {
	namespace, name string
	local           int
}

// sync serves exactly want's ports: new ones start, gone ones stop, the others
// answer with their new counts. A port that cannot be listened on (taken by another
// program) is logged and tried again at the next sync.
func (h *healthChecks) sync(want map[uint16]healthCheck) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.servers == nil {
		h.servers = map[uint16]*healthServer{}
	}
	for port, s := range h.servers {
		if w, ok := want[port]; !ok || w.namespace != s.namespace || w.name != s.name {
			s.srv.Close()
			delete(h.servers, port)
		}
	}
	for port, w := range want {
		if s := h.servers[port]; s != nil {
			s.mu.Lock()
			s.local = w.local
			s.mu.Unlock()
			continue
		}
		ln, err := h.listen(port)
		if err != nil {
			h.log.Warn("health check node port: not served", "service", w.namespace+"/"+w.name, "port", port, "error", err)
			continue
		}
		s := &healthServer{namespace: w.namespace, name: w.name, local: w.local}
		s.srv = &http.Server{Handler: s}
		go s.srv.Serve(ln)
		h.servers[port] = s
	}
}

// close stops every server.
func (h *healthChecks) close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for port, s := range h.servers {
		s.srv.Close()
		delete(h.servers, port)
	}
}

// listen listens on port, in the proxy's network namespace.
func (h *healthChecks) listen(port uint16) (net.Listener, error) {
	addr := ":" + strconv.Itoa(int(port))
	if h.netns == 0 {
		return net.Listen("tcp", addr)
	}
	type result struct {
		ln  net.Listener
		err error
	}
	rc := make(chan result, 1)
	go func() {
		// Never unlocked: the thread, in the other namespace, ends with the goroutine.
		runtime.LockOSThread()
		if err := unix.Setns(h.netns, unix.CLONE_NEWNET); err != nil {
			rc <- result{err: fmt.Errorf("enter the network namespace: %w", err)}
			return
		}
		ln, err := net.Listen("tcp", addr)
		rc <- result{ln, err}
	}()
	r := <-rc
	return r.ln, r.err
}

// ServeHTTP answers as kube-proxy's health check server does.
func (s *healthServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	n := s.local
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Load-Balancing-Endpoint-Weight", strconv.Itoa(n))
	if n > 0 {
		w.WriteHeader(http.StatusOK)
	} else {
		w.WriteHeader(http.StatusServiceUnavailable)
	}
	fmt.Fprintf(w, "{\n\t\"service\": {\n\t\t\"namespace\": %q,\n\t\t\"name\": %q\n\t},\n\t\"localEndpoints\": %d,\n\t\"serviceProxyHealthy\": true\n}",
		s.namespace, s.name, n)
}

// healthChecksOf are the health check node ports of want's Services: a Service's
// local endpoints are the most any of its ports has.
func healthChecksOf(want map[string]*servicePort) map[uint16]healthCheck {
	out := map[uint16]healthCheck{}
	keys := make([]string, 0)
	for k, sp := range want {
		if sp.healthCheckNodePort != 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		sp := want[k]
		svc, _, _ := strings.Cut(sp.key, ":")
		ns, name, _ := strings.Cut(svc, "/")
		hc := out[sp.healthCheckNodePort]
		if hc.name != "" && (hc.namespace != ns || hc.name != name) {
			continue // two Services with one port: the API server never allows it
		}
		out[sp.healthCheckNodePort] = healthCheck{namespace: ns, name: name, local: max(hc.local, sp.localReady)}
	}
	return out
}
