package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"maps"
	"path/filepath"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/agent"
	"github.com/skiffhq/skiff/pki"
)

func kubeletCmd(logger func(string) hclog.Logger) *cobra.Command {
	cfg := agent.DefaultConfig()
	cfg.Kubelet.NodeName, cfg.Kubelet.NodeIP = "", "" // machine defaults are filled at run time
	var conn connFlags
	var logCert, logKey, simCertDir string
	var extended []string
	cmd := &cobra.Command{
		Use:   "kubelet",
		Short: "Run a node agent: register the node and run the pods bound to it",
		Long: `Run a kubelet. With --runtime containerd it runs pods' containers through containerd;
with --runtime sim it simulates them, and --sim-nodes N runs N simulated nodes named
NODE-0 … NODE-(N-1) in this one process (for scale tests).

The node advertises the machine's cpu and memory, and the extended resources given
with --extended-resource (example.com/dongle=4), which pods request in whole units;
--node-labels and --zone label it (topology.kubernetes.io/zone), for node affinity and
topology spread constraints. With --sim-nodes, the simulated nodes take the zones of
--zone in turn.

The kubelet serves its containers' output (skiffctl logs, through the API server) on
--kubelet-listen and publishes the port in its Node's status; the API server dials the
node's --node-ip there. In a TLS cluster (--ca-file) it serves with its serving
certificate (--tls-cert-file, or else --cert-file) and accepts only API servers'
certificates.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = logger("skiff")
			machineDefaults(&cfg.Kubelet)
			if err := addExtendedResources(&cfg.Kubelet, extended); err != nil {
				return err
			}
			var err error
			if cfg.LogTLS, err = kubeletLogTLS(conn.s, logCert, logKey, cfg.LogListen); err != nil {
				return err
			}
			cc, err := conn.dial(client.Options{UserAgent: "skiff-kubelet", Logger: cfg.Logger})
			if err != nil {
				return err
			}
			defer cc.Close()
			ctx, cancel := signalContext()
			defer cancel()
			defer conn.renewCertificates(ctx, conn.s, cc, cfg.Logger)()
			waitStatus, err := conn.serveStatus(ctx, cfg.Logger)
			if err != nil {
				return err
			}
			defer waitStatus()
			defer cancel()
			if logCert != "" && cfg.LogTLS != nil {
				defer conn.renewCertificate(ctx, conn.s, cc, logCert, logKey, cfg.Logger)()
			}
			if simCertDir != "" {
				nodeConns, err := simNodeClients(ctx, &conn, simCertDir, cfg.Logger)
				if err != nil {
					return err
				}
				defer nodeConns.close()
				cfg.NodeClient = nodeConns.dial
			}
			defer cancel()
			return agent.Run(ctx, client.NewClientset(cc), cfg)
		},
	}
	f := cmd.Flags()
	conn.register(f)
	f.StringVar(&cfg.Kubelet.NodeName, "node-name", cfg.Kubelet.NodeName, "the Node to register and run pods for (default: the host name)")
	f.StringVar(&cfg.Kubelet.NodeIP, "node-ip", cfg.Kubelet.NodeIP, "the node's address; pods use the host network without --cni or --sim-pod-network (default: the first non-loopback IPv4 address)")
	f.StringVar(&cfg.Kubelet.RootDir, "root-dir", cfg.Kubelet.RootDir, "the directory of the pods' volumes and files")
	f.StringVar(&cfg.Kubelet.LocalPathRoot, "local-path-root", cfg.Kubelet.LocalPathRoot, "the directory of the local-path provisioner's volumes on this node (the controller manager's): the kubelet removes a Released one's directory whose reclaimPolicy is Delete, then the volume (\"\": never)")
	f.StringVar(&cfg.Kubelet.ClusterDomain, "cluster-domain", cfg.Kubelet.ClusterDomain, "the cluster's DNS domain (the API servers' --cluster-domain): the cluster DNS's, and in the names of pods with a subdomain")
	f.StringSliceVar(&cfg.Kubelet.ClusterDNS, "cluster-dns", nil, "comma-separated list of DNS server IP addresses: the nameservers of pods with dnsPolicy ClusterFirst (and ClusterFirstWithHostNet), such as the kube-dns Service's 10.43.0.10; without it such pods use the node's resolvers, with a MissingClusterDNS event")
	f.StringVar(&cfg.Kubelet.ResolvConf, "resolv-conf", cfg.Kubelet.ResolvConf, "the node's resolver configuration, which pods with dnsPolicy Default start from and whose search path follows the cluster's (\"\": none)")
	f.StringVar(&cfg.Runtime, "runtime", cfg.Runtime, "container runtime: containerd or sim")
	f.StringVar(&cfg.Containerd.Socket, "containerd-address", cfg.Containerd.Socket, "containerd's socket")
	f.StringArrayVar(&cfg.Containerd.InsecureRegistries, "insecure-registry", nil, "with --runtime containerd: a registry (HOST or HOST:PORT) pulled from without TLS verification, falling back to plain HTTP; repeatable (loopback registries always are)")
	f.StringVar(&cfg.Preload, "preload", "", "directory of OCI image archives (*.tar) to import at start")
	f.StringVar(&cfg.Containerd.Namespace, "containerd-namespace", cfg.Containerd.Namespace, "containerd namespace of this kubelet's containers (one per kubelet)")
	f.StringVar(&cfg.Containerd.LogDir, "container-log-dir", cfg.Containerd.LogDir, "where containers' output is kept (CRI log format: a file per container, written by a skiff container-logger process that containerd's shim runs)")
	f.IntVar(&cfg.SimNodes, "sim-nodes", 0, "with --runtime sim: run this many simulated nodes")
	nodeFlags(f, &cfg.Kubelet, &extended)
	f.StringSliceVar(&cfg.Zones, "zone", nil, "the node's zone (label topology.kubernetes.io/zone); with --sim-nodes, a comma-separated list the simulated nodes take in turn")
	f.StringVar(&simCertDir, "sim-cert-dir", "", "with --sim-nodes in a TLS cluster: each simulated node NAME connects as itself, with DIR/kubelet-NAME.crt and .key (skiff certs init --nodes makes them)")
	f.BoolVar(&cfg.CNI, "cni", false, "with --runtime containerd: give pods network namespaces and addresses of the node's podCIDR through CNI (bridge cni0, host-local, loopback, portmap: Debian's containernetworking-plugins); without it pods use the node's network")
	f.StringSliceVar(&cfg.CNIConfig.BinDirs, "cni-bin-dir", []string{"/usr/lib/cni", "/opt/cni/bin"}, "with --cni: where the CNI plugins are")
	f.StringVar(&cfg.CNIConfig.StateDir, "cni-state-dir", "/var/lib/skiff/cni", "with --cni: host-local's reservations and libcni's cached results")
	f.BoolVar(&cfg.SimPodNetwork, "sim-pod-network", false, "with --runtime sim: give pods addresses of their node's podCIDR (set by the controller-manager) instead of the node's address")
	f.StringVar(&cfg.ClusterDNSListen, "cluster-dns-listen", "", "run the cluster DNS on this address, UDP and TCP (e.g. the node's IP:53; default: none)")
	f.BoolVar(&cfg.ServiceProxy, "service-proxy", false, "run the node's service proxy: nftables rules translating Services' cluster IPs and node ports to their ready endpoints (removed when the kubelet stops)")
	f.BoolVar(&cfg.NodeRoutes, "node-routes", false, "route each other node's podCIDR via its InternalIP (host-gateway: the nodes on one L2 network)")
	f.StringVar(&cfg.ClusterCIDR, "cluster-cidr", apiserver.DefaultClusterCIDR, "with --service-proxy: the cluster's pod range (the API servers' --cluster-cidr); connections to a cluster IP from outside it are masqueraded")
	f.StringVar(&cfg.ServiceCIDR, "service-cidr", apiserver.DefaultServiceCIDR, "with --service-proxy: the Services' range (the API servers' --service-cidr); connections to an address of it that no Service has are dropped (empty: none is)")
	f.DurationVar(&cfg.SimStartDelay, "sim-start-delay", 0, "with --runtime sim: how long a simulated container takes to start")
	f.StringVar(&cfg.LogListen, "kubelet-listen", cfg.LogListen, "address of the kubelet's log server (port 0: any free port; \"none\": serve no logs)")
	f.StringVar(&logCert, "tls-cert-file", "", "the kubelet serving certificate of its log and exec server: user system:node:NAME with server usage (skiff certs init's kubelet-NAME-serving.crt; renewed with --rotate-certificates; default --cert-file)")
	f.StringVar(&logKey, "tls-private-key-file", "", "its key (default --key-file)")
	f.StringVar(&logCert, "kubelet-tls-cert-file", "", "")
	f.StringVar(&logKey, "kubelet-tls-key-file", "", "")
	f.MarkDeprecated("kubelet-tls-cert-file", "use --tls-cert-file")
	f.MarkDeprecated("kubelet-tls-key-file", "use --tls-private-key-file")
	f.DurationVar(&cfg.Kubelet.LeaseRenewInterval, "node-lease-renew-interval", cfg.Kubelet.LeaseRenewInterval, "how often the node's Lease is renewed (the controller-manager's grace period must be longer)")
	f.DurationVar(&cfg.Kubelet.NodeStatusInterval, "node-status-update-frequency", cfg.Kubelet.NodeStatusInterval, "how often the node's status is checked, and written if it changed")
	f.DurationVar(&cfg.Kubelet.NodeStatusReportInterval, "node-status-report-frequency", cfg.Kubelet.NodeStatusReportInterval, "how often the node's status is written when it did not change (the Lease is the heartbeat)")
	return cmd
}

// simNodes are the simulated nodes' own connections, each renewing its node's
// certificate (as a kubelet does) while ctx lasts.
type simNodes struct {
	ctx   context.Context
	flags *connFlags
	dir   string
	log   hclog.Logger
	mu    sync.Mutex
	conns []*client.Conn
	waits []func()
}

// simNodeClients connects simulated nodes as themselves: the connection settings of
// the flags with each node's certificate from dir.
func simNodeClients(ctx context.Context, flags *connFlags, dir string, log hclog.Logger) (*simNodes, error) {
	if ca, _, _, err := flags.s.Files(); err != nil || ca == "" {
		return nil, fmt.Errorf("--sim-cert-dir: the simulated nodes' certificates need TLS: give --ca-file (%v)", err)
	}
	return &simNodes{ctx: ctx, flags: flags, dir: dir, log: log}, nil
}

func (n *simNodes) dial(node string) (*client.Clientset, error) {
	s := n.flags.s
	s.CertFile = filepath.Join(n.dir, "kubelet-"+node+".crt")
	s.KeyFile = filepath.Join(n.dir, "kubelet-"+node+".key")
	s.Token = ""
	servers, opts, err := client.Resolve(s, client.Options{UserAgent: "skiff-kubelet", Logger: n.log})
	if err != nil {
		return nil, fmt.Errorf("--sim-cert-dir: %w", err)
	}
	c, err := client.Dial(servers, opts)
	if err != nil {
		return nil, err
	}
	wait := n.flags.renewCertificates(n.ctx, s, c, n.log.With("node", node))
	n.mu.Lock()
	n.conns, n.waits = append(n.conns, c), append(n.waits, wait)
	n.mu.Unlock()
	return client.NewClientset(c), nil
}

// close waits for the renewals (ctx must be done) and closes the connections.
func (n *simNodes) close() {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, wait := range n.waits {
		wait()
	}
	for _, c := range n.conns {
		c.Close()
	}
}

// kubeletLogTLS is the log server's TLS: with the cluster's CA (a TLS cluster), the
// kubelet's certificate; nil in an insecure cluster.
func kubeletLogTLS(s client.Settings, cert, key, listen string) (*tls.Config, error) {
	if listen == agent.NoLogServer {
		return nil, nil
	}
	ca, c, k, err := s.Files()
	if err != nil || ca == "" {
		return nil, err
	}
	cert, key = firstNonEmpty(cert, c), firstNonEmpty(key, k)
	if cert == "" {
		return nil, fmt.Errorf("--kubelet-listen %s: serving logs in a TLS cluster needs the kubelet's certificate: give --tls-cert-file and --tls-private-key-file (or --cert-file and --key-file), or --kubelet-listen none", listen)
	}
	r, err := pki.NewReloader(cert, key, ca)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert-file: %w", err)
	}
	return r.KubeletServerTLS(), nil
}

// nodeFlags registers what a node advertises: its extended resources (collected in
// extended, for addExtendedResources) and its labels.
func nodeFlags(f *pflag.FlagSet, cfg *kubelet.Config, extended *[]string) {
	f.StringArrayVar(extended, "extended-resource", nil, "an extended resource the node advertises, NAME=COUNT (example.com/dongle=4); repeatable")
	f.StringToStringVar(&cfg.Labels, "node-labels", nil, "labels the node registers with, KEY=VALUE,... (disktype=ssd,topology.kubernetes.io/zone=a)")
}

// addExtendedResources adds --extended-resource NAME=COUNT to the node's capacity;
// the kubelet's configuration checks the names and counts.
func addExtendedResources(cfg *kubelet.Config, flags []string) error {
	for _, f := range flags {
		name, count, ok := strings.Cut(f, "=")
		if !ok || name == "" || count == "" {
			return fmt.Errorf("--extended-resource %q: want NAME=COUNT, such as example.com/dongle=4", f)
		}
		capacity := maps.Clone(cfg.Capacity)
		if capacity == nil {
			capacity = map[string]string{}
		}
		capacity[name] = count
		cfg.Capacity = capacity
	}
	return nil
}

// machineDefaults fills the node name and address from this machine when not given.
func machineDefaults(cfg *kubelet.Config) {
	def := kubelet.DefaultConfig()
	if cfg.NodeName == "" {
		cfg.NodeName = def.NodeName
	}
	if cfg.NodeIP == "" {
		cfg.NodeIP = def.NodeIP
	}
}
