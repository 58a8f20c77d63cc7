// Package apicluster runs API servers inside a test process: a real cluster on
// loopback (real Raft, real gRPC) whose members a test can stop and restart on the same
// addresses. Every component's integration tests build on it.
package apicluster

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/pki/serviceaccount"
	"github.com/skiffhq/skiff/store"
)

// Options tune a test cluster.
type Options struct {
	// HistorySize is each node's watch history (default 10,000).
	HistorySize int
	// LogLevel for the servers' logs, which go to t.Log (default Warn).
	LogLevel hclog.Level
	// Configure, when set, adjusts each member's config before it starts.
	Configure func(*apiserver.Config)
	// Certs, when set, is a directory made by pki.InitDir (see Certs): the members serve
	// the API over TLS with apiserver.crt, authenticate clients against ca.crt, and run
	// their peer port over mutual TLS, and call kubelets (logs) with apiserver.crt. Without
	// it the cluster is insecure.
	Certs string
	// Tokens, when set, are the bearer tokens the members accept.
	Tokens *auth.Tokens
	// Hosts, when set, are the loopback addresses member i listens on (127.0.0.x), for a
	// cluster on other "machines" than another; default 127.0.0.1 for every member.
	Hosts []string
	// ServiceAccountAdmission runs the ServiceAccount admission, which gives a pod its
	// namespace's "default" ServiceAccount and refuses a pod whose account does not
	// exist: the test (or a controller-manager it runs) makes the accounts. Without it,
	// as in Kubernetes' own integration tests of the API server, a pod keeps the
	// account it names, none by default.
	ServiceAccountAdmission bool
}

// Certs makes a certificate directory for Options.Certs: a CA, and certificates for the
// API servers, controller-manager, scheduler, admin and a kubelet per node.
func Certs(t testing.TB, nodes ...string) string {
	t.Helper()
	dir := t.TempDir()
	if _, err := pki.InitDir(dir, pki.InitOptions{Nodes: nodes}); err != nil {
		t.Fatal(err)
	}
	return dir
}

// ClientTLS is the TLS config of a client using certificate NAME (admin, scheduler,
// kubelet-w1, ...) of a certificate directory; "" for no client certificate.
func ClientTLS(t testing.TB, dir, name string) *tls.Config {
	t.Helper()
	cert, key := "", ""
	if name != "" {
		cert, key = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	}
	r, err := pki.NewReloader(cert, key, filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return r.ClientTLS()
}

// Dial connects a client to every member as cert (a certificate of Options.Certs:
// admin, controller-manager, scheduler, kubelet-NODE), the way that component connects
// in a real cluster; in an insecure cluster cert is ignored. The connection closes when
// the test ends.
func (c *Cluster) Dial(t testing.TB, cert string, opts client.Options) *client.Conn {
	t.Helper()
	if c.opts.Certs != "" {
		opts.TLS = ClientTLS(t, c.opts.Certs, cert)
	}
	conn, err := client.Dial(c.Addrs(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// Secure says whether the members serve TLS and authenticate clients.
func (c *Cluster) Secure() bool { return c.opts.Certs != "" }

// CertsDir is Options.Certs: the certificates of a secure cluster ("" without TLS).
func (c *Cluster) CertsDir() string { return c.opts.Certs }

// secure sets a member's TLS and authentication from a certificate directory.
func secure(t testing.TB, cfg *apiserver.Config, dir string) {
	t.Helper()
	p := func(n string) string { return filepath.Join(dir, n) }
	r, err := pki.NewReloader(p("apiserver.crt"), p("apiserver.key"), p(pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	cfg.TLS, cfg.ClientRoots, cfg.JoinTLS, cfg.Store.PeerTLS = r.ServerTLS(), r.Pool, r.ClientTLS(), r.PeerTLS()
	cfg.KubeletTLS = r.KubeletClientTLS
	// The aggregation layer's front proxy, as skiff certs init makes it.
	cfg.Aggregator.ClientCAFile = p(pki.CACertFile)
	if _, err := os.Stat(p(pki.FrontProxyClient + ".crt")); err == nil {
		cfg.Aggregator.ProxyClientCertFile, cfg.Aggregator.ProxyClientKeyFile = p(pki.FrontProxyClient+".crt"), p(pki.FrontProxyClient+".key")
		cfg.Aggregator.RequestHeaderCAFile = p(pki.FrontProxyCACertFile)
	}
	// Service-account tokens, as skiff certs init's servers sign them.
	if key, err := serviceaccount.LoadSigningKey(p(serviceaccount.SigningKeyFile)); err == nil {
		cfg.ServiceAccounts.SigningKey = key
	} else if !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
}

// Cluster is a running test cluster.
type Cluster struct {
	t      testing.TB
	opts   Options
	log    *testLog
	mu     sync.Mutex
	cfgs   []apiserver.Config
	addrs  []string
	rafts  []string
	run    []*member
	ctx    context.Context
	cancel context.CancelFunc
}

type member struct {
	server *apiserver.Server
	cancel context.CancelFunc
	done   chan error
}

// Start starts n API servers forming one cluster and waits until it serves reads. They
// stop when the test ends.
func Start(t testing.TB, n int, opts Options) *Cluster {
	t.Helper()
	if opts.HistorySize == 0 {
		opts.HistorySize = 10_000
	}
	if opts.LogLevel == hclog.NoLevel {
		opts.LogLevel = hclog.Warn
	}
	c := &Cluster{t: t, opts: opts, log: &testLog{t: t}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var members []store.Server
	var apiLns, raftLns []net.Listener
	for i := 0; i < n; i++ {
		host := "127.0.0.1"
		if i < len(opts.Hosts) {
			host = opts.Hosts[i]
		}
		a, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		r, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		apiLns, raftLns = append(apiLns, a), append(raftLns, r)
		c.addrs, c.rafts = append(c.addrs, a.Addr().String()), append(c.rafts, r.Addr().String())
		members = append(members, store.Server{ID: fmt.Sprintf("n%d", i+1), Address: r.Addr().String()})
	}
	for i := 0; i < n; i++ {
		cfg := apiserver.DefaultConfig()
		cfg.Name, cfg.DataDir = members[i].ID, t.TempDir()
		cfg.InitialCluster = members
		cfg.Listen, cfg.RaftListen = c.addrs[i], c.rafts[i]
		cfg.Listener, cfg.RaftListener = apiLns[i], raftLns[i]
		// Generous timing: tests run on loaded two-core machines, often under -race.
		cfg.Store.HeartbeatTimeout, cfg.Store.ElectionTimeout, cfg.Store.LeaderLeaseTimeout = time.Second, time.Second, 500*time.Millisecond
		cfg.Store.MmapSize = 32 << 20
		cfg.Store.HistorySize = opts.HistorySize
		cfg.BookmarkInterval = time.Second
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: cfg.Name, Output: c.log, Level: opts.LogLevel})
		if opts.Certs != "" {
			secure(t, &cfg, opts.Certs)
		} else {
			cfg.Insecure = true
		}
		cfg.Tokens = opts.Tokens
		if !opts.ServiceAccountAdmission {
			cfg.DisableAdmissionPlugins = []string{apiserver.AdmissionServiceAccount}
		}
		if opts.Configure != nil {
			opts.Configure(&cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		c.run = append(c.run, nil)
	}
	for i := 0; i < n; i++ {
		c.startMember(i)
	}
	t.Cleanup(func() {
		for i := range c.run {
			c.Stop(i)
		}
		c.cancel()
		c.log.close()
	})
	c.WaitReady()
	return c
}

func (c *Cluster) startMember(i int) {
	c.t.Helper()
	cfg := c.cfgs[i]
	s, err := apiserver.New(cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", cfg.Name, err)
	}
	// Later restarts listen on the same addresses anew.
	c.cfgs[i].Listener, c.cfgs[i].RaftListener = nil, nil
	ctx, cancel := context.WithCancel(c.ctx)
	m := &member{server: s, cancel: cancel, done: make(chan error, 1)}
	go func() { m.done <- s.Run(ctx) }()
	c.mu.Lock()
	c.run[i] = m
	c.mu.Unlock()
}

// Addrs are the API addresses of every member, running or not.
func (c *Cluster) Addrs() []string { return append([]string(nil), c.addrs...) }

// DataDir is member i's data directory.
func (c *Cluster) DataDir(i int) string { return c.cfgs[i].DataDir }

// Addr is member i's API address.
func (c *Cluster) Addr(i int) string { return c.addrs[i] }

// Server is member i, or nil while it is stopped.
func (c *Cluster) Server(i int) *apiserver.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.run[i] == nil {
		return nil
	}
	return c.run[i].server
}

// Stop stops member i (its data stays for Restart).
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	m := c.run[i]
	c.run[i] = nil
	c.mu.Unlock()
	if m == nil {
		return
	}
	m.cancel()
	if err := <-m.done; err != nil {
		c.t.Errorf("stop %s: %v", c.cfgs[i].Name, err)
	}
}

// Restart starts a stopped member i again, on the same addresses and data.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if c.Server(i) != nil {
		c.t.Fatalf("restart %s: it is running", c.cfgs[i].Name)
	}
	c.startMember(i)
}

// Leader is the index of the member that leads now, waiting for one.
func (c *Cluster) Leader() int {
	c.t.Helper()
	c.WaitReady()
	for i := range c.run {
		if s := c.Server(i); s != nil {
			if st, err := s.Store().Status(); err == nil && st.State == "Leader" {
				return i
			}
		}
	}
	c.t.Fatal("no member leads")
	return -1
}

// WaitReady waits until every running member serves linearizable reads and has made
// the objects every cluster has (its namespaces and Services), so that a test sees no
// write it did not make.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for i := range c.run {
		if s := c.Server(i); s != nil {
			if err := s.Store().WaitLeader(ctx); err != nil {
				c.t.Fatalf("%s never found a leader: %v", c.cfgs[i].Name, err)
			}
			select {
			case <-s.Settled():
			case <-ctx.Done():
				c.t.Fatalf("%s never settled (namespaces, Services): %v", c.cfgs[i].Name, ctx.Err())
			}
		}
	}
}

// testLog sends the servers' logs to t.Log until the test ends.
type testLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}

func (l *testLog) close() {
	l.mu.Lock()
	l.done = true
	l.mu.Unlock()
}
