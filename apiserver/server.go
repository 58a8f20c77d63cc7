package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/keepalive"

	"github.com/skiffhq/skiff/apiserver/flowcontrol"
	"github.com/skiffhq/skiff/apiserver/openapi"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/connlimit"
	"github.com/skiffhq/skiff/internal/statusz"
	"github.com/skiffhq/skiff/internal/workers"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
)

// streamWorkers is how many goroutines gRPC keeps to serve calls and streams; more
// arrive in goroutines of their own. A watch holds one for its life, so in a cluster
// of many clients they serve watches: the unary calls' interceptors and handlers run on
// the server's workers (internal/workers) instead, where a watch never goes.
const streamWorkers = 128

// maxWorkers bounds the server's workers (their stacks: a few MiB at most), which run
// the REST API's writes and the gRPC API's unary calls; workerIdle is how long one
// waits for work before it ends.
const (
	maxWorkers = 256
	workerIdle = 30 * time.Second
)

// onWorker runs a unary call's interceptors and handler on one of pool's workers, whose
// stack has grown to the depth of a write's path already (internal/workers).
func onWorker(pool *workers.Pool) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
		pool.Do(func() { resp, err = handler(ctx, req) })
		return resp, err
	}
}

// Server is one API server: the gRPC API and Kubernetes' REST API, on one port, over
// an embedded store node.
type Server struct {
	cfg   Config
	log   hclog.Logger
	store *store.Store
	// storeRef is store, for the store's own goroutines (snapshotFailed) that may run
	// before New has set it.
	storeRef atomic.Pointer[store.Store]
	// certs is what the last check of the certificates found (certs.go).
	certs     certState
	grpc      *grpc.Server
	rest      *http.Server
	split     *splitter
	http      *http.Server
	ln, hln   net.Listener
	metrics   *metrics
	resources *resources
	openapi   *openapi.Handler // the REST API's OpenAPI documents, which the crdController updates
	keyFile   *keyFile         // nil: no encryption key file
	reencrypt *reencryptor
	nodeGraph *nodeGraph              // nil: no authentication, so no nodes
	rbac      *rbacFollower           // nil: no authentication, so no RBAC
	flows     *flowcontrol.Controller // nil: no flow control
	members   *memberAddrs
	agg       *aggregator
	settled   chan struct{}
	// stopREST ends the REST API's requests (watches, followed logs) at shutdown.
	stopREST context.CancelFunc
}

// New opens the store and prepares the listeners; Run serves.
func New(cfg Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	log := cfg.Logger.Named("apiserver")
	s := &Server{cfg: cfg, log: log, settled: make(chan struct{})}
	var err error
	if s.ln = cfg.Listener; s.ln == nil {
		if s.ln, err = net.Listen("tcp", cfg.Listen); err != nil {
			return nil, fmt.Errorf("listen on API address %s: %w", cfg.Listen, err)
		}
	}
	if _, port, err := net.SplitHostPort(s.cfg.Advertise); err == nil && port == "0" && s.cfg.Advertise == s.cfg.Listen {
		// --listen HOST:0 without --advertise: the port the system chose is the one
		// members, clients and the kubernetes Service's endpoints reach.
		s.cfg.Advertise = s.ln.Addr().String()
	}
	if s.hln = cfg.HTTPListener; s.hln == nil && cfg.HTTPListen != "" {
		if s.hln, err = net.Listen("tcp", cfg.HTTPListen); err != nil {
			s.ln.Close()
			return nil, fmt.Errorf("listen on HTTP address %s: %w", cfg.HTTPListen, err)
		}
	}
	at := &atRest{}
	if cfg.EncryptionKeyFile != "" {
		s.keyFile = &keyFile{path: cfg.EncryptionKeyFile, atRest: at, log: log}
		if _, err := s.keyFile.load(); err != nil {
			s.closeListeners()
			return nil, err
		}
		log.Info("secrets are encrypted at rest", "key_file", cfg.EncryptionKeyFile, "primary", at.keys.Load().Primary())
	} else {
		log.Warn("no encryption key file (--encryption-key-file): secrets are stored unencrypted")
	}
	// The store indexes only the fields lists and watches go through an index for; the
	// other selectable fields are stored beside the value and matched by scanning.
	gate, err := newGate(&cfg)
	if err != nil {
		s.closeListeners()
		return nil, err
	}
	var tokens *saTokens
	if sa := cfg.ServiceAccounts; sa.SigningKey != nil || len(sa.Keys) > 0 {
		if tokens, err = newSATokens(sa, cfg.Now); err != nil {
			s.closeListeners()
			return nil, err
		}
	}
	scfg := cfg.Store
	scfg.IndexedFields = indexedFields
	scfg.Backups.OnFailure = s.snapshotFailed
	if s.store, err = store.Open(scfg); err != nil {
		s.closeListeners()
		return nil, err
	}
	s.storeRef.Store(s.store)
	s.metrics = newMetrics(s.store, gate.flows)
	s.metrics.registry.MustRegister(&certCollector{s: s})
	s.flows = gate.flows
	s.reencrypt = newReencryptor(s.store, at, log, s.metrics.reencrypted.Inc, func(n int) { s.metrics.unreadable.Set(float64(n)) })
	s.resources = &resources{store: s.store, log: log, now: cfg.Now, bookmarkInterval: cfg.BookmarkInterval, watches: s.metrics.watchDelta,
		atRest: at, namespaces: newLocalCache(kinds.Namespace, namespacePhase),
		limitRangeLists: newNSLists(kinds.LimitRange), quotaLists: newNSLists(kinds.ResourceQuota),
		priorityClasses:      newNSLists(kinds.PriorityClass),
		serviceAccounts:      newLocalCache(kinds.ServiceAccount, serviceAccountInfo),
		admitServiceAccounts: !slices.Contains(cfg.DisableAdmissionPlugins, AdmissionServiceAccount),
		networking:           &networking{flags: cfg.Networking},
		events:               newEventLimiter(cfg.EventRateLimit, cfg.Now, s.metrics.eventRefused)}
	s.resources.webhooks = newWebhooks(s.store, log.Named("webhooks"))
	s.resources.webhooks.namespaceLabels, s.resources.webhooks.resolve = s.resources.namespaceLabels, s.resources.resolveService
	s.resources.webhooks.attributes = s.resources.celAttributes
	s.resources.webhooks.authorizer = celAuthorizer{s.resources}
	s.resources.policies = newPolicies(s.store, log.Named("policies"))
	if tokens != nil {
		tokens.res, s.resources.tokens = s.resources, tokens
		if gate.authn != nil {
			gate.authn.ServiceAccounts = tokens
		}
	}
	if s.agg, err = newAggregator(cfg.Aggregator, s.resources, log.Named("aggregator"), cfg.Now); err != nil {
		s.store.Close()
		s.closeListeners()
		return nil, err
	}
	members := &memberAddrs{store: s.store}
	s.members = members
	if gate.authn == nil {
		log.Warn("no client CA and no token file: every API request is treated as an administrator")
	} else {
		// Kubelets read the Secrets and ConfigMaps of their pods only.
		s.nodeGraph = newNodeGraph(s.store, log)
		gate.authz.Graph = s.nodeGraph
		s.resources.graph = s.nodeGraph
		s.rbac = newRBACFollower(s.store, log)
		gate.authz.RBAC = s.rbac.index
		s.resources.authz = &gate.authz
	}
	restCtx, stopREST := context.WithCancel(context.Background())
	s.stopREST = stopREST
	pool := workers.New(maxWorkers, workerIdle, restCtx.Done())
	sopts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(cfg.MaxRequestBytes),
		// Serve requests on long-lived workers: a new goroutine per request grows its
		// stack anew each time (several copies for the create path's depth).
		grpc.NumStreamWorkers(streamWorkers),
		client.ServerBufferPool(),
		// No read buffer of gRPC's: the TLS connection's own is under it already (the
		// splitter's, listener.go, on a plaintext one), and gRPC's would hold 32 KiB more
		// a connection for its life: 80 MiB a member for the connections of 2,500 nodes
		// (issue 26).
		grpc.ReadBufferSize(0),
		grpc.ForceServerCodecV2(serverCodec{encoding.GetCodecV2("proto")}),
		grpc.MaxSendMsgSize(1 << 30),
		grpc.ChainUnaryInterceptor(onWorker(pool), s.metrics.unary(log), gate.unary(), members.leaderHint()),
		grpc.ChainStreamInterceptor(s.metrics.stream(log), gate.stream()),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 5 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: 30 * time.Second, Timeout: 10 * time.Second}),
	}
	// A connection is pending until a request on it is authenticated (or, without
	// authentication, until its handshake is done): pending ones are capped per source
	// address and in all, and closed after 10 s, so that idle connections cannot take
	// the file descriptors the cluster's clients need. The guard counts the listener's
	// connections under the splitter, which does the TLS handshake for both APIs and
	// marks a connection established at its end without authentication; with it, the
	// gate does at a request's authentication, a gRPC call's or a REST request's.
	gate.conns = connlimit.New("API", connlimit.DefaultLimits(), log)
	s.ln = gate.conns.Listener(s.ln)
	sopts = append(sopts, grpc.Creds(splitCredentials{}))
	s.split = newSplitter(s.ln, cfg.TLS)
	if gate.authn == nil {
		s.split.established = gate.conns.Established
	}
	s.grpc = grpc.NewServer(sopts...)
	podsAPI := &pods{resources: s.resources, kubeletTLS: cfg.KubeletTLS, secure: cfg.TLS != nil || gate.authn != nil}
	apiv1.RegisterResourcesServer(s.grpc, s.resources)
	apiv1.RegisterClusterServer(s.grpc, &cluster{store: s.store, members: members, certs: s.Certificates, renews: cfg.SigningCertFile != "", sign: s.signCertificateRequest,
		networking: s.resources.networking})
	apiv1.RegisterPodsServer(s.grpc, podsAPI)
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetUnencryptedHTTP2(true) // the splitter has done the TLS handshake
	s.openapi = openAPIHandler()
	s.rest = &http.Server{
		Handler: &restAPI{res: s.resources, gate: gate, pods: podsAPI, metrics: s.metrics, log: log, now: cfg.Now,
			maxBody: int64(cfg.MaxRequestBytes), ready: s.store.WaitLeader, openapi: s.openapi, agg: s.agg,
			workers: pool},
		ReadHeaderTimeout: 10 * time.Second,
		ConnContext:       connContext,
		BaseContext:       func(net.Listener) context.Context { return restCtx },
		Protocols:         &protocols,
		HTTP2:             &http.HTTP2Config{MaxConcurrentStreams: cfg.HTTP2MaxStreamsPerConnection},
		ErrorLog:          log.StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true}),
	}
	if s.hln != nil {
		httpGuard := connlimit.New("HTTP", connlimit.DefaultLimits(), log)
		s.hln = httpGuard.Listener(s.hln)
		mux := http.NewServeMux()
		mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
		mux.HandleFunc("/readyz", s.readyz)
		metrics := promhttp.HandlerFor(prometheus.Gatherers{s.metrics.registry, record.Registry}, promhttp.HandlerOpts{})
		if !statusz.Loopback(s.hln.Addr().String()) && cfg.TLS != nil {
			// Reachable from other hosts: over TLS, and /metrics only for a client of the
			// cluster (a certificate of its CA, or a token); /healthz and /readyz stay
			// open, as Kubernetes' are, for load balancers and probes.
			tc := cfg.TLS.Clone()
			tc.ClientAuth = tls.RequestClientCert
			s.hln = tls.NewListener(s.hln, tc)
			metrics = gate.requireClient(metrics)
		}
		mux.Handle("/metrics", metrics)
		s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second, ConnState: httpGuard.ConnState}
	}
	return s, nil
}

func (s *Server) closeListeners() {
	if s.stopREST != nil {
		s.stopREST()
	}
	s.ln.Close()
	if s.hln != nil {
		s.hln.Close()
	}
}

// Addr is the API address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// HTTPAddr is the health and metrics address, or "" when disabled.
func (s *Server) HTTPAddr() string {
	if s.hln == nil {
		return ""
	}
	return s.hln.Addr().String()
}

// FlowControl reports API Priority and Fairness per priority level (nil without it).
func (s *Server) FlowControl() []flowcontrol.LevelStats {
	if s.flows == nil {
		return nil
	}
	return s.flows.Stats()
}

// Store is the embedded store node.
func (s *Server) Store() *store.Store { return s.store }

// Settled is closed once the server has done what a starting member owes the cluster
// (joined, recorded its address, checked the networking settings, made the namespaces
// and Services every cluster has): the writes it makes of its own are done.
func (s *Server) Settled() <-chan struct{} { return s.settled }

// readyz answers 200 when this node is part of a cluster with a leader that serves
// reads, 503 otherwise.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	if err := s.store.WaitLeader(ctx); err != nil {
		http.Error(w, "not ready: no leader: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

// Run serves until ctx ends, then stops gracefully (open watches are closed) and closes
// the store. It returns the first serving error, if any.
func (s *Server) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer s.resources.webhooks.close() // the connections kept to webhooks
	defer s.agg.transports.close()     // and to extension API servers
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	wg.Add(3)
	go func() {
		defer wg.Done()
		s.split.run()
	}()
	go func() {
		defer wg.Done()
		if err := s.grpc.Serve(s.split.grpc); err != nil && !errors.Is(err, grpc.ErrServerStopped) {
			errc <- fmt.Errorf("serve API on %s: %w", s.Addr(), err)
			cancel()
		}
	}()
	go func() {
		defer wg.Done()
		if err := s.rest.Serve(s.split.rest); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
			errc <- fmt.Errorf("serve REST API on %s: %w", s.Addr(), err)
			cancel()
		}
	}()
	if s.http != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.http.Serve(s.hln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("serve HTTP on %s: %w", s.HTTPAddr(), err)
				cancel()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := s.settle(ctx, s.members); err != nil && ctx.Err() == nil {
			errc <- err
			cancel()
		} else if err == nil {
			close(s.settled)
		}
	}()
	wg.Go(func() { s.expireEvents(ctx, s.cfg.EventSweepInterval) })
	wg.Go(func() { s.keepBuiltins(ctx, s.cfg.BuiltinsInterval) })
	wg.Go(func() { s.keepAvailable(ctx) })
	wg.Go(func() { (&crdController{s: s}).run(ctx) })
	wg.Go(func() { s.reencrypt.run(ctx) })
	wg.Go(func() { s.watchCertificates(ctx) })
	if s.nodeGraph != nil {
		wg.Go(func() { s.nodeGraph.run(ctx) })
	}
	if s.rbac != nil {
		wg.Go(func() { s.rbac.run(ctx) })
	}
	if s.keyFile != nil {
		wg.Go(func() { s.keyFile.watch(ctx, s.cfg.EncryptionKeyReload, s.reencrypt.keysReloaded) })
	}
	s.log.Info("serving", "name", s.cfg.Name, "api", s.Addr(), "raft", s.store.PeerAddress(), "http", s.HTTPAddr())
	<-ctx.Done()

	s.split.close()
	s.stopREST()
	rctx, rcancel := context.WithTimeout(context.Background(), 5*time.Second)
	if err := s.rest.Shutdown(rctx); err != nil {
		s.rest.Close()
	}
	rcancel()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		s.grpc.Stop()
		<-stopped
	}
	if s.http != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.http.Shutdown(sctx)
		scancel()
	}
	wg.Wait()
	errs := []error{s.store.Close()}
	close(errc)
	for err := range errc {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// settle does what a starting node owes the cluster, retrying until done: join when it
// is new and was told to, record its API address, and make sure the system namespaces,
// the built-in PriorityClasses, the system Services and the objects builtins.go keeps
// exist.
func (s *Server) settle(ctx context.Context, members *memberAddrs) error {
	if len(s.cfg.Join) > 0 && !s.store.HadState() {
		if err := s.join(ctx); err != nil {
			return err
		}
	}
	return retryUntil(ctx, s.log, "register", func() error {
		if err := s.store.WaitLeader(ctx); err != nil {
			return err
		}
		if err := recordMember(ctx, s.store, s.cfg.Name, s.cfg.Advertise); err != nil {
			return fmt.Errorf("record API address: %w", err)
		}
		if err := s.resources.networking.settle(ctx, s.store); err != nil {
			return err
		}
		// The namespaces the system's own components write to (leader election, node
		// leases) exist from the start, as in Kubernetes.
		for _, ns := range []string{"default", "kube-system", "kube-node-lease"} {
			if err := s.resources.ensureNamespace(ctx, ns); err != nil {
				return err
			}
		}
		if err := s.resources.ensureRBACDefaults(ctx); err != nil {
			return err
		}
		if err := s.resources.ensureSystemPriorityClasses(ctx); err != nil {
			return err
		}
		if err := s.resources.ensureSystemServices(ctx, s.cfg.Advertise, members.get()); err != nil {
			return err
		}
		return s.ensureBuiltins(ctx)
	})
}

// join asks the members in cfg.Join to add this node, until one does.
func (s *Server) join(ctx context.Context) error {
	i := 0
	return retryUntil(ctx, s.log, "join", func() error {
		addr := s.cfg.Join[i%len(s.cfg.Join)]
		i++
		creds := insecure.NewCredentials()
		if s.cfg.JoinTLS != nil {
			creds = credentials.NewTLS(s.cfg.JoinTLS)
		}
		cc, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
		if err != nil {
			return fmt.Errorf("join via %s: %w", addr, err)
		}
		defer cc.Close()
		cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		defer cancel()
		_, err = apiv1.NewClusterClient(cc).AddMember(cctx, &apiv1.AddMemberRequest{
			Name: s.cfg.Name, RaftAddress: s.store.PeerAddress(), ApiAddress: s.cfg.Advertise,
		})
		if err != nil {
			return fmt.Errorf("join via %s: %w", addr, err)
		}
		s.log.Info("joined cluster", "via", addr)
		return nil
	})
}

// retryUntil runs fn with capped back-off until it succeeds or ctx ends.
func retryUntil(ctx context.Context, log hclog.Logger, what string, fn func() error) error {
	backoff := 100 * time.Millisecond
	for {
		err := fn()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var fatal *fatalError
		if errors.As(err, &fatal) {
			return err
		}
		log.Debug("retrying", "what", what, "error", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-ctx.Done():
			return ctx.Err()
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}
