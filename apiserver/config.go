package apiserver

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/apiserver/flowcontrol"
	"github.com/skiffhq/skiff/internal/statusz"
	"github.com/skiffhq/skiff/store"
	"github.com/skiffhq/skiff/version"
)

// Config configures one API server and the store node it embeds. Start from
// DefaultConfig.
type Config struct {
	// Name is the node's name, unique in the cluster and stable across restarts.
	Name string
	// DataDir holds the store's files.
	DataDir string
	// Listen is the gRPC API address; Advertise is the address other members and clients
	// are told (default Listen).
	Listen, Advertise string
	// HTTPListen serves /healthz, /readyz and /metrics; empty disables it.
	HTTPListen string
	// EventTTL is how long an Event is kept after it last happened (Kubernetes'
	// --event-ttl): the leader deletes older ones.
	EventTTL time.Duration
	// Certificates are this member's certificate files (serving, peer): each one's expiry
	// is exported as a metric and, within CertExpiryWarning of it, recorded as a Warning
	// event (certs.go).
	Certificates []CertFile
	// SigningCertFile and SigningKeyFile, when set, are the cluster CA that signed
	// Certificates (Kubernetes' --cluster-signing-cert-file and -key-file): the server
	// renews each certificate at two thirds of its life, and running servers and clients
	// pick the new files up for new connections.
	SigningCertFile, SigningKeyFile string
	// CertCheckInterval is how often the certificates are checked (default 1 min);
	// CertExpiryWarning how long before expiry the warning starts (default 30 days).
	CertCheckInterval, CertExpiryWarning time.Duration
	// EventRateLimit budgets the Events each node and each namespace may write.
	EventRateLimit EventRateLimit
	// EventSweepInterval is how often the leader looks for expired events (default a
	// tenth of EventTTL, at most a minute).
	EventSweepInterval time.Duration
	// BuiltinsInterval is how often the leader restores the objects the API server keeps
	// (builtins.go: the mandatory FlowSchemas and priority levels, the default
	// ServiceCIDR, the local APIServices) when they were deleted or changed (default
	// 10 s, as Kubernetes' default ServiceCIDR controller).
	BuiltinsInterval time.Duration
	// RaftListen is the peer address (Raft and the store's peer service); RaftAdvertise is
	// what peers dial (default RaftListen).
	RaftListen, RaftAdvertise string
	// InitialCluster bootstraps a new cluster on the first start of its members.
	InitialCluster []store.Server
	// Join lists API addresses of existing members; on its first start the node asks
	// them to add it. Ignored when the node has state.
	Join []string

	// Networking is the cluster's address plan (--cluster-cidr, --service-cidr,
	// --cluster-domain): recorded at bootstrap, checked against the record afterwards.
	// Empty fields take the recorded values, or the defaults at bootstrap.
	Networking Networking

	// Store tunes the embedded store (Raft timing, history size, limits). Its identity and
	// addresses are filled from the fields above.
	Store store.Config

	// BookmarkInterval is how often idle watches that allow bookmarks receive one.
	BookmarkInterval time.Duration
	// MaxRequestBytes caps one request's size. Default 2 MiB (objects are at most 1.5 MiB).
	MaxRequestBytes int
	// HTTP2MaxStreamsPerConnection is the most streams (requests and watches at once) the
	// REST API's HTTP/2 server allows a connection, kube-apiserver's
	// --http2-max-streams-per-connection. Default 32: a client with more requests in
	// flight opens another connection (client-go, Go's HTTP/2 transports do), so one busy
	// client's requests are read, served and answered on several connections at once
	// rather than through one connection's single reader and writer (docs/performance.md,
	// h2streams: 100 client-go callers create pods 1.7x as fast as over one connection).
	HTTP2MaxStreamsPerConnection int

	// TLS, when set, serves the API over TLS (see pki.Reloader.ServerTLS). Client
	// certificates are checked by the server against ClientRoots, not by the handshake.
	TLS *tls.Config
	// ClientRoots returns the CA bundle client certificates must chain to; nil refuses
	// client certificates.
	ClientRoots func() (*x509.CertPool, error)
	// Tokens are the bearer tokens accepted; nil refuses tokens.
	Tokens *auth.Tokens
	// ServiceAccounts are the service-account tokens' keys, issuers and audiences
	// (kube-apiserver's --service-account-* flags): without keys the server issues and
	// accepts none, and mounts none in pods.
	ServiceAccounts ServiceAccountTokens
	// JoinTLS secures this node's calls to other members' APIs when it joins (see
	// pki.Reloader.ClientTLS; its certificate must be in group skiff:apiservers).
	JoinTLS *tls.Config
	// KubeletTLS, when set, secures the API server's calls to node's kubelet for logs (see
	// pki.Reloader.KubeletClientTLS: it presents a certificate in group skiff:apiservers
	// and accepts only the node's own). Without it a secure server reads no logs and an
	// insecure one dials kubelets in plaintext.
	KubeletTLS func(node string) *tls.Config
	// Aggregator configures the aggregation layer (aggregator.go).
	Aggregator Aggregator
	// Insecure allows a cluster of several members without TLS. A server without
	// ClientRoots and Tokens authenticates nobody: every request is an administrator.
	Insecure bool
	// PriorityAndFairness limits what requests execute at once by priority level, with
	// fair queuing among the identities of a level (package flowcontrol), as FlowControl
	// says. Default on; an insecure server (no authentication) limits nothing.
	PriorityAndFairness bool
	FlowControl         flowcontrol.Config
	// RateLimit is each user's sustained requests per second, RateBurst its burst
	// (0: no limit; burst default twice the rate). It applies to the identities of the
	// global-default priority level only: the cluster's own components are never
	// rate-limited. Default 0: flow control alone protects the server. A CreateBatch is
	// one request, whatever the number of its objects.
	RateLimit float64
	RateBurst int
	// MaxWatchesPerUser caps each identity's open watches (0: no cap). Default 1000.
	MaxWatchesPerUser int

	// DisableAdmissionPlugins names admission plugins not to run (Kubernetes'
	// --disable-admission-plugins): AdmissionServiceAccount, which needs the
	// controller-manager to make each namespace's default account, may be left out where
	// no controller-manager runs (tests of the API server alone, as Kubernetes' own
	// integration tests do).
	DisableAdmissionPlugins []string

	// EncryptionKeyFile, when set, is the encryption key file (Kubernetes'
	// EncryptionConfiguration; see package encryption): Secrets are stored encrypted
	// with its primary key, and read with any of its keys. Every member of a cluster
	// needs the keys of every stored value. Without it Secrets are stored unencrypted.
	EncryptionKeyFile string
	// EncryptionKeyReload is how often the key file is read again; a change of keys
	// takes effect then, and the leader re-encrypts what is not under the new primary.
	// Default 10s.
	EncryptionKeyReload time.Duration

	// Listener and HTTPListener, when set, are used instead of listening on Listen and
	// HTTPListen (embedding, and tests that pick ports first).
	Listener, HTTPListener net.Listener
	// RaftListener likewise replaces listening on RaftListen.
	RaftListener net.Listener

	Logger hclog.Logger
	// Now is the clock (tests). Default time.Now.
	Now func() time.Time
}

// Aggregator configures the aggregation layer: requests for an APIService naming a
// Service are proxied to that Service's extension API server (aggregator.go).
type Aggregator struct {
	// ProxyClientCertFile and ProxyClientKeyFile are the front-proxy client certificate
	// the API server presents to extension API servers (kube-apiserver's
	// --proxy-client-cert-file and -key-file; skiff certs init's front-proxy-client),
	// read again when the files change. Without them requests are proxied with no client
	// certificate, which extension servers refuse.
	ProxyClientCertFile, ProxyClientKeyFile string
	// RequestHeaderCAFile is the CA that signed it (--requestheader-client-ca-file;
	// front-proxy-ca.crt), and ClientCAFile the cluster's client CA (--client-ca-file):
	// both are published in kube-system/extension-apiserver-authentication for extension
	// servers to authenticate requests by.
	RequestHeaderCAFile, ClientCAFile string
	// AvailabilityInterval is how often the leader checks each APIService naming a
	// Service and writes its Available condition (default 10 s; kube-aggregator checks
	// every 30 s and on changes).
	AvailabilityInterval time.Duration
	// DiscoveryTTL is how long a backend's resource list is kept for aggregated
	// discovery (default 10 s).
	DiscoveryTTL time.Duration
}

// DefaultHTTP2MaxStreams is HTTP2MaxStreamsPerConnection's default.
const DefaultHTTP2MaxStreams = 32

// DefaultConfig returns a Config with the defaults set.
func DefaultConfig() Config {
	sc := store.DefaultConfig()
	// Scheduled snapshots, as k3s takes them by default: twice a day, the newest five kept.
	sc.Backups.Interval, sc.Backups.Retention = 12*time.Hour, 5
	return Config{
		Store:                        sc,
		BookmarkInterval:             10 * time.Second,
		MaxRequestBytes:              2 << 20,
		PriorityAndFairness:          true,
		HTTP2MaxStreamsPerConnection: DefaultHTTP2MaxStreams,
		FlowControl:                  flowcontrol.DefaultConfig(),
		MaxWatchesPerUser:            1000,
		EventTTL:                     time.Hour,
		EventRateLimit:               DefaultEventRateLimit(),
		EncryptionKeyReload:          10 * time.Second,
	}
}

// ParseInitialCluster reads "n1=host:port,n2=host:port".
func ParseInitialCluster(s string) ([]store.Server, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []store.Server
	for _, part := range strings.Split(s, ",") {
		name, addr, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok || name == "" || addr == "" {
			return nil, fmt.Errorf("initial cluster %q: %q is not name=host:port", s, part)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			return nil, fmt.Errorf("initial cluster %q: member %s: %w", s, name, err)
		}
		out = append(out, store.Server{ID: name, Address: addr})
	}
	return out, nil
}

// Validate checks the configuration and fills the store's part.
func (c *Config) Validate() error {
	if c.Name == "" {
		return fmt.Errorf("apiserver config: --name is required")
	}
	if len(utilvalidation.IsDNS1123Subdomain(c.Name)) > 0 {
		return fmt.Errorf("apiserver config: name %q must be a lowercase RFC 1123 name", c.Name)
	}
	if c.DataDir == "" {
		return fmt.Errorf("apiserver %s: --data-dir is required", c.Name)
	}
	if c.Listener != nil {
		c.Listen = c.Listener.Addr().String()
	}
	if c.Listen == "" {
		return fmt.Errorf("apiserver %s: --listen is required", c.Name)
	}
	if c.Advertise == "" {
		c.Advertise = c.Listen
	}
	if c.HTTPListener != nil {
		c.HTTPListen = c.HTTPListener.Addr().String()
	}
	if c.RaftListener != nil {
		c.RaftListen = c.RaftListener.Addr().String()
	}
	if c.RaftListen == "" {
		return fmt.Errorf("apiserver %s: --raft-listen is required", c.Name)
	}
	if len(c.InitialCluster) > 0 && len(c.Join) > 0 {
		return fmt.Errorf("apiserver %s: use either --initial-cluster (a new cluster) or --join (an existing one), not both", c.Name)
	}
	if err := c.Networking.Validate(); err != nil {
		return fmt.Errorf("apiserver %s: %w", c.Name, err)
	}
	switch {
	case c.EventRateLimit.validate() != nil:
		return fmt.Errorf("apiserver %s: %w", c.Name, c.EventRateLimit.validate())
	case c.EventTTL < 0:
		return fmt.Errorf("apiserver %s: --event-ttl %v: must be positive", c.Name, c.EventTTL)
	case c.EventTTL == 0:
		c.EventTTL = time.Hour
	}
	if (c.SigningCertFile == "") != (c.SigningKeyFile == "") {
		return fmt.Errorf("apiserver %s: --cluster-signing-cert-file and --cluster-signing-key-file go together", c.Name)
	}
	if c.CertCheckInterval <= 0 {
		c.CertCheckInterval = time.Minute
	}
	if c.CertExpiryWarning <= 0 {
		c.CertExpiryWarning = 30 * 24 * time.Hour
	}
	if c.EventSweepInterval <= 0 {
		c.EventSweepInterval = min(c.EventTTL/10, time.Minute)
	}
	if c.BuiltinsInterval <= 0 {
		c.BuiltinsInterval = 10 * time.Second
	}
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = 2 << 20
	}
	if (c.Aggregator.ProxyClientCertFile == "") != (c.Aggregator.ProxyClientKeyFile == "") {
		return fmt.Errorf("apiserver %s: --proxy-client-cert-file and --proxy-client-key-file go together", c.Name)
	}
	if c.Aggregator.AvailabilityInterval <= 0 {
		c.Aggregator.AvailabilityInterval = 10 * time.Second
	}
	if c.Aggregator.DiscoveryTTL <= 0 {
		c.Aggregator.DiscoveryTTL = 10 * time.Second
	}
	if c.HTTP2MaxStreamsPerConnection <= 0 {
		c.HTTP2MaxStreamsPerConnection = DefaultHTTP2MaxStreams
	}
	for _, p := range c.DisableAdmissionPlugins {
		if !slices.Contains(admissionPlugins, p) {
			return fmt.Errorf("apiserver %s: --disable-admission-plugins: unknown plugin %q (known: %s)", c.Name, p, strings.Join(admissionPlugins, ", "))
		}
	}
	if c.EncryptionKeyReload <= 0 {
		c.EncryptionKeyReload = 10 * time.Second
	}
	if !c.Insecure && len(c.InitialCluster) > 1 && (c.TLS == nil || c.Store.PeerTLS == nil) {
		return fmt.Errorf("apiserver %s: %w", c.Name, ErrInsecureCluster)
	}
	if !c.Insecure && len(c.Join) > 0 && (c.TLS == nil || c.Store.PeerTLS == nil) {
		return fmt.Errorf("apiserver %s: %w", c.Name, ErrInsecureCluster)
	}
	if !c.Insecure && c.TLS == nil && !statusz.Loopback(c.Listen) {
		return fmt.Errorf("apiserver %s: refusing to serve the API on %s without TLS: %w", c.Name, c.Listen, ErrInsecureListen)
	}
	if !c.Insecure && c.Store.PeerTLS == nil && !statusz.Loopback(c.RaftListen) {
		return fmt.Errorf("apiserver %s: refusing to serve Raft on %s without TLS: %w", c.Name, c.RaftListen, ErrInsecureListen)
	}
	if c.HTTPListen != "" && !statusz.Loopback(c.HTTPListen) && c.TLS == nil && !c.Insecure {
		return fmt.Errorf("apiserver %s: refusing to serve /metrics on %s without TLS: %w", c.Name, c.HTTPListen, ErrInsecureListen)
	}
	if !c.Insecure && c.TLS != nil && c.ClientRoots == nil && c.Tokens == nil {
		return fmt.Errorf("apiserver %s: TLS without --client-ca-file or --token-file authenticates nobody and lets everyone in; give one, or --insecure", c.Name)
	}
	if c.PriorityAndFairness {
		if err := c.FlowControl.Validate(); err != nil {
			return fmt.Errorf("apiserver %s: %w", c.Name, err)
		}
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	c.Store.ID = c.Name
	c.Store.Dir = c.DataDir
	c.Store.Listen = c.RaftListen
	c.Store.Advertise = c.RaftAdvertise
	c.Store.Listener = c.RaftListener
	c.Store.InitialCluster = c.InitialCluster
	c.Store.Logger = c.Logger
	if c.Store.Version == "" {
		c.Store.Version = version.Version
	}
	return c.Store.Validate()
}
