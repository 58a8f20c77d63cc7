package main

import (
	"fmt"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/apiserver/flowcontrol"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/pki/serviceaccount"
	"github.com/skiffhq/skiff/store"
)

func apiserverCmd(logger func(string) hclog.Logger) *cobra.Command {
	cfg := apiserver.DefaultConfig()
	var initial, join string
	var sec securityFlags
	var s3 s3Flags
	cmd := &cobra.Command{
		Use:   "apiserver",
		Short: "Run an API server and its store node",
		Long: `Run an API server with its embedded, Raft-replicated store node.

Three servers started with the same --initial-cluster form a new cluster; restarting a
node with the same flags and data directory rejoins it. A new member starts with --join
and an empty data directory.`,
		Example: `  skiff apiserver --name n1 --data-dir /var/lib/skiff --listen 127.0.0.1:7001 --raft-listen 127.0.0.1:7101 \
      --initial-cluster n1=127.0.0.1:7101,n2=127.0.0.1:7102,n3=127.0.0.1:7103
  skiff apiserver --name n4 --data-dir /var/lib/skiff --listen 127.0.0.1:7004 --raft-listen 127.0.0.1:7104 --join 127.0.0.1:7001`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var err error
			if cfg.InitialCluster, err = apiserver.ParseInitialCluster(initial); err != nil {
				return err
			}
			cfg.Join = splitList(join)
			if len(cfg.InitialCluster) == 0 && len(cfg.Join) == 0 {
				// A lone node: a cluster of one, bootstrapped on its first start.
				cfg.InitialCluster = []store.Server{{ID: cfg.Name, Address: firstNonEmpty(cfg.RaftAdvertise, cfg.RaftListen)}}
			}
			cfg.Logger = logger("skiff")
			if err := sec.apply(&cfg); err != nil {
				return err
			}
			if s3.bucket != "" {
				if cfg.Store.Backups.Interval == 0 {
					return fmt.Errorf("--snapshot-s3-bucket: the uploads need scheduled snapshots (--snapshot-interval is 0)")
				}
				if cfg.Store.Backups.Remote, err = s3.remote("snapshot-s3-", s3.bucket, s3.prefix); err != nil {
					return err
				}
			} else if s3.endpoint != "" {
				return fmt.Errorf("--snapshot-s3-endpoint: --snapshot-s3-bucket is required too")
			}
			s, err := apiserver.New(cfg)
			if err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			return s.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Name, "name", "", "this member's name, unique in the cluster (required)")
	f.StringVar(&cfg.DataDir, "data-dir", "", "directory for the Raft log, snapshots and state (required)")
	f.StringVar(&cfg.Listen, "listen", "127.0.0.1:7443", "gRPC API address")
	f.StringVar(&cfg.Advertise, "advertise", "", "API address to give other members and clients (default --listen)")
	f.StringVar(&cfg.RaftListen, "raft-listen", "127.0.0.1:7444", "peer (Raft) address")
	f.StringVar(&cfg.RaftAdvertise, "raft-advertise", "", "peer address other members dial (default --raft-listen)")
	f.StringVar(&cfg.HTTPListen, "http-listen", "", "address for /healthz, /readyz and /metrics (default: off)")
	f.DurationVar(&cfg.EventTTL, "event-ttl", cfg.EventTTL, "how long an event is kept after it last happened")
	f.Float64Var(&cfg.EventRateLimit.NodeQPS, "event-rate-limit-node-qps", cfg.EventRateLimit.NodeQPS, "events each node's kubelet may write per second, on average (0: no per-node limit)")
	f.IntVar(&cfg.EventRateLimit.NodeBurst, "event-rate-limit-node-burst", cfg.EventRateLimit.NodeBurst, "events a node's kubelet may write at once")
	f.Float64Var(&cfg.EventRateLimit.NamespaceQPS, "event-rate-limit-namespace-qps", cfg.EventRateLimit.NamespaceQPS, "events all writers together may write per second in one namespace, on average (0: no per-namespace limit)")
	f.IntVar(&cfg.EventRateLimit.NamespaceBurst, "event-rate-limit-namespace-burst", cfg.EventRateLimit.NamespaceBurst, "events all writers may write at once in one namespace")
	f.StringVar(&initial, "initial-cluster", "", "the new cluster's members: name=raft-address,... (bootstrapped once)")
	f.StringVar(&join, "join", "", "API addresses of existing members to join through (first start only)")
	f.StringVar(&cfg.Networking.ClusterCIDR, "cluster-cidr", "", "pods' addresses, a slice of it per node; set once, at bootstrap (default "+apiserver.DefaultClusterCIDR+")")
	f.StringVar(&cfg.Networking.ServiceCIDR, "service-cidr", "", "Services' cluster IPs; set once, at bootstrap (default "+apiserver.DefaultServiceCIDR+")")
	f.StringVar(&cfg.Networking.ClusterDomain, "cluster-domain", "", "DNS domain of Services and pods; set once, at bootstrap (default "+apiserver.DefaultClusterDomain+")")
	f.DurationVar(&cfg.Store.HeartbeatTimeout, "raft-heartbeat-timeout", cfg.Store.HeartbeatTimeout, "time without a leader's heartbeat before a follower stands for election")
	f.DurationVar(&cfg.Store.ElectionTimeout, "raft-election-timeout", cfg.Store.ElectionTimeout, "time a candidate waits for votes")
	f.DurationVar(&cfg.Store.LeaderLeaseTimeout, "raft-leader-lease-timeout", cfg.Store.LeaderLeaseTimeout, "time a leader keeps leading without hearing from a quorum")
	f.Uint64Var(&cfg.Store.SnapshotThreshold, "snapshot-threshold", cfg.Store.SnapshotThreshold, "log entries after a snapshot that trigger the next")
	f.Int64Var(&cfg.Store.SnapshotLogBytes, "snapshot-log-bytes", cfg.Store.SnapshotLogBytes, "bytes of log entries beyond --trailing-log-bytes that trigger a snapshot, whatever their number (0: by --snapshot-threshold only)")
	f.Int64Var(&cfg.Store.TrailingLogBytes, "trailing-log-bytes", cfg.Store.TrailingLogBytes, "bytes of the newest log entries a compaction by size keeps for followers to catch up from (0: by count only)")
	f.Int64Var(&cfg.Store.DefragFreeBytes, "defrag-free-bytes", cfg.Store.DefragFreeBytes, "free bytes of the state file, once deletes stop and it has more free than in use, at which the member defragments it by itself (0: only skiffctl cluster defrag)")
	f.Int64Var(&cfg.Store.QuotaBytes, "quota-backend-bytes", cfg.Store.QuotaBytes, "size of the state file past which creates and updates are refused and the NOSPACE alarm raised (as etcd's)")
	f.DurationVar(&cfg.Store.Backups.Interval, "snapshot-interval", cfg.Store.Backups.Interval, "how often the leader writes a snapshot to --snapshot-dir (0: never)")
	f.IntVar(&cfg.Store.Backups.Retention, "snapshot-retention", cfg.Store.Backups.Retention, "how many of this cluster's snapshots each member's --snapshot-dir keeps (the newest)")
	f.StringVar(&cfg.Store.Backups.Dir, "snapshot-dir", "", "directory of the scheduled snapshots (default DATA-DIR/backups)")
	s3.register(f, "snapshot-s3-", true)
	f.IntVar(&cfg.Store.HistorySize, "watch-history", cfg.Store.HistorySize, "events kept in memory for watches to resume from")
	f.Int64Var(&cfg.Store.HistoryBytes, "watch-history-bytes", cfg.Store.HistoryBytes, "bytes of objects the watch history holds at most; the oldest events go first (0: no byte bound)")
	f.DurationVar(&cfg.Store.HistoryTTL, "watch-history-ttl", cfg.Store.HistoryTTL, "how long an event stays in the watch history at most (0: until count or bytes push it out)")
	f.DurationVar(&cfg.BookmarkInterval, "watch-bookmark-interval", cfg.BookmarkInterval, "how long a watch that allows bookmarks waits without events before it gets one (a progress notification: every event up to its revision was sent)")
	sec.register(f, &cfg)
	return cmd
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

// securityFlags are the apiserver's TLS and authentication flags.
type securityFlags struct {
	tlsCert, tlsKey, clientCA string
	peerCert, peerKey, peerCA string
	tokenFile                 string
	// Service-account tokens, as kube-apiserver's flags.
	saSigningKey      string
	saKeys, saIssuers []string
	// Flow control: the two in-flight limits add up to the server's concurrency limit,
	// as in Kubernetes with API Priority and Fairness.
	maxInflight, maxMutatingInflight int
	levelShares, levelQueueLength    string
}

func (s *securityFlags) register(f *pflag.FlagSet, cfg *apiserver.Config) {
	f.StringVar(&s.tlsCert, "tls-cert-file", "", "the API's serving certificate, also presented to kubelets to read logs (reloaded when the file changes)")
	f.StringVar(&s.tlsKey, "tls-key-file", "", "the serving certificate's key")
	f.StringVar(&s.clientCA, "client-ca-file", "", "CA that signs client and kubelet certificates; a certificate's CN is the user, its O the groups")
	f.StringVar(&s.peerCert, "peer-cert-file", "", "certificate for Raft peer traffic and joins, in group skiff:apiservers (mutual TLS)")
	f.StringVar(&s.peerKey, "peer-key-file", "", "the peer certificate's key")
	f.StringVar(&s.peerCA, "peer-ca-file", "", "CA that signs every member's peer certificate")
	f.StringVar(&cfg.Aggregator.ProxyClientCertFile, "proxy-client-cert-file", "", "the front-proxy client certificate (skiff certs init's front-proxy-client.crt) presented to extension API servers when proxying an APIService's requests (reloaded when the file changes)")
	f.StringVar(&cfg.Aggregator.ProxyClientKeyFile, "proxy-client-key-file", "", "the front-proxy client certificate's key")
	f.StringVar(&cfg.Aggregator.RequestHeaderCAFile, "requestheader-client-ca-file", "", "the front-proxy CA (front-proxy-ca.crt), published in kube-system/extension-apiserver-authentication for extension API servers to verify --proxy-client-cert-file by")
	f.StringVar(&cfg.SigningCertFile, "cluster-signing-cert-file", "", "the cluster CA's certificate (ca.crt): with --cluster-signing-key-file, the API server renews its --tls-cert-file and --peer-cert-file from it at two thirds of their life")
	f.StringVar(&cfg.SigningKeyFile, "cluster-signing-key-file", "", "the cluster CA's key (ca.key)")
	f.StringVar(&s.tokenFile, "token-file", "", "bearer tokens, one \"sha256hex,user,group\" per line")
	f.StringVar(&s.saSigningKey, "service-account-signing-key-file", "", "the private key that signs service-account tokens (TokenRequests, the tokens mounted in pods; skiff certs init makes sa.key): without it no token is issued or mounted")
	f.StringSliceVar(&s.saKeys, "service-account-key-file", nil, "files of public keys (or certificates, or private keys) that verify service-account tokens, repeatable (sa.pub; default: the signing key's)")
	f.StringSliceVar(&s.saIssuers, "service-account-issuer", nil, "the issuer (iss) of service-account tokens, repeatable: the first is the one issued, every one is accepted (default "+serviceaccount.DefaultIssuer+")")
	f.StringSliceVar(&cfg.ServiceAccounts.Audiences, "api-audiences", nil, "the API's audiences: a service-account token must be for one of them, and a TokenRequest naming none is for them (default: the issuers)")
	f.DurationVar(&cfg.ServiceAccounts.MaxExpiration, "service-account-max-token-expiration", 0, "the longest life a TokenRequest's token gets: a request for longer gets this long (0: no cap; else 1h to 2^32 s)")
	f.StringVar(&cfg.ServiceAccounts.JWKSURI, "service-account-jwks-uri", "", "the jwks_uri of OIDC discovery (/.well-known/openid-configuration; default ISSUER/openid/v1/jwks)")
	f.BoolVar(&cfg.Insecure, "insecure", false, "allow a cluster of several members without TLS, authentication or authorization")
	f.IntVar(&cfg.MaxRequestBytes, "max-request-bytes", cfg.MaxRequestBytes, "largest request accepted")
	f.IntVar(&cfg.HTTP2MaxStreamsPerConnection, "http2-max-streams-per-connection", cfg.HTTP2MaxStreamsPerConnection, "the most requests and watches at once on one HTTP/2 connection of the REST API: a client with more opens another connection")
	f.BoolVar(&cfg.PriorityAndFairness, "enable-priority-and-fairness", cfg.PriorityAndFairness, "limit the requests executing at once by priority level, with fair queuing among each level's identities (docs/operations.md)")
	f.IntVar(&s.maxInflight, "max-requests-inflight", 2000, "with --max-mutating-requests-inflight, the requests executing at once in all non-exempt priority levels together (their sum)")
	f.IntVar(&s.maxMutatingInflight, "max-mutating-requests-inflight", 1000, "see --max-requests-inflight")
	f.StringVar(&s.levelShares, "priority-level-shares", "", "priority levels' shares of the concurrency limit, level=N,... (defaults node-high=40,system=30,leader-election=10,workload-high=40,global-default=20)")
	f.StringVar(&s.levelQueueLength, "priority-level-queue-length", "", "requests one identity may have waiting per priority level, level=N,... (defaults node-high=300,system=300,leader-election=200,workload-high=5000,global-default=300)")
	f.DurationVar(&cfg.FlowControl.WaitLimit, "priority-level-wait-limit", cfg.FlowControl.WaitLimit, "longest a request waits for a seat before it is refused with a retry delay")
	f.Float64Var(&cfg.RateLimit, "rate-limit", cfg.RateLimit, "requests per second each user of the global-default priority level may sustain (0: no limit; the cluster's components are never rate-limited)")
	f.IntVar(&cfg.RateBurst, "rate-burst", cfg.RateBurst, "requests each such user may send at once above --rate-limit")
	f.IntVar(&cfg.MaxWatchesPerUser, "max-watches-per-user", cfg.MaxWatchesPerUser, "open watches each identity may hold (0: no limit)")
	f.StringSliceVar(&cfg.DisableAdmissionPlugins, "disable-admission-plugins", nil, "admission plugins not to run: ServiceAccount (which needs the controller-manager to make each namespace's default account)")
	f.StringVar(&cfg.EncryptionKeyFile, "encryption-key-file", "", "keys that encrypt Secrets at rest: Kubernetes' EncryptionConfiguration, the same on every member (skiff certs init and skiff certs encryption-key make one); without it Secrets are stored unencrypted")
	f.DurationVar(&cfg.EncryptionKeyReload, "encryption-key-reload", cfg.EncryptionKeyReload, "how often the encryption key file is read again for a change of keys")
}

// apply loads the files named by the flags into cfg.
func (s *securityFlags) apply(cfg *apiserver.Config) error {
	fc := &cfg.FlowControl
	fc.ConcurrencyLimit = s.maxInflight + s.maxMutatingInflight
	if err := flowcontrol.ParseLevels(fc.Levels, "--priority-level-shares", s.levelShares, func(l *flowcontrol.Level, n int) { l.Shares = n }); err != nil {
		return err
	}
	if err := flowcontrol.ParseLevels(fc.Levels, "--priority-level-queue-length", s.levelQueueLength, func(l *flowcontrol.Level, n int) { l.QueueLengthLimit = n }); err != nil {
		return err
	}
	if s.tlsCert != "" || s.tlsKey != "" {
		r, err := pki.NewReloader(s.tlsCert, s.tlsKey, s.clientCA)
		if err != nil {
			return fmt.Errorf("--tls-cert-file: %w", err)
		}
		cfg.TLS = r.ServerTLS()
		if s.clientCA != "" {
			cfg.Aggregator.ClientCAFile = s.clientCA // published for extension API servers
			// Kubelets (logs) are called with the serving certificate, which skiff
			// certs init issues for client use too, and verified against the client CA.
			cfg.ClientRoots, cfg.KubeletTLS = r.Pool, r.KubeletClientTLS
		}
	} else if s.clientCA != "" {
		return fmt.Errorf("--client-ca-file needs --tls-cert-file and --tls-key-file")
	}
	if s.peerCert != "" || s.peerKey != "" || s.peerCA != "" {
		if s.peerCert == "" || s.peerKey == "" || s.peerCA == "" {
			return fmt.Errorf("--peer-cert-file, --peer-key-file and --peer-ca-file go together")
		}
		r, err := pki.NewReloader(s.peerCert, s.peerKey, s.peerCA)
		if err != nil {
			return fmt.Errorf("--peer-cert-file: %w", err)
		}
		cfg.Store.PeerTLS, cfg.JoinTLS = r.PeerTLS(), r.ClientTLS()
		if cfg.KubeletTLS == nil {
			cfg.KubeletTLS = r.KubeletClientTLS
		}
	}
	if s.tlsCert != "" {
		cfg.Certificates = append(cfg.Certificates, apiserver.CertFile{Name: "serving", CertFile: s.tlsCert, KeyFile: s.tlsKey})
	}
	if s.peerCert != "" && s.peerCert != s.tlsCert {
		cfg.Certificates = append(cfg.Certificates, apiserver.CertFile{Name: "peer", CertFile: s.peerCert, KeyFile: s.peerKey})
	}
	if cfg.SigningCertFile != "" && len(cfg.Certificates) == 0 {
		return fmt.Errorf("--cluster-signing-cert-file renews --tls-cert-file and --peer-cert-file: give them")
	}
	if err := s.serviceAccounts(cfg); err != nil {
		return err
	}
	if s.tokenFile != "" {
		if cfg.TLS == nil {
			return fmt.Errorf("--token-file needs TLS (--tls-cert-file): tokens must not cross the network in clear")
		}
		toks, err := auth.LoadTokens(s.tokenFile)
		if err != nil {
			return err
		}
		cfg.Tokens = toks
	}
	return nil
}

// serviceAccounts loads the service-account keys named by the flags into cfg.
func (s *securityFlags) serviceAccounts(cfg *apiserver.Config) error {
	sa := &cfg.ServiceAccounts
	sa.Issuers = s.saIssuers
	if s.saSigningKey != "" {
		key, err := serviceaccount.LoadSigningKey(s.saSigningKey)
		if err != nil {
			return fmt.Errorf("--service-account-signing-key-file: %w", err)
		}
		sa.SigningKey = key
	}
	if len(s.saKeys) > 0 {
		keys, err := serviceaccount.LoadPublicKeys(s.saKeys...)
		if err != nil {
			return fmt.Errorf("--service-account-key-file: %w", err)
		}
		sa.Keys = keys
	}
	if (sa.SigningKey != nil || len(sa.Keys) > 0) && cfg.TLS == nil && !cfg.Insecure {
		return fmt.Errorf("service-account tokens need TLS (--tls-cert-file): tokens must not cross the network in clear")
	}
	return nil
}
