// Package agent runs what a node runs for Skiff, as `skiff kubelet` and `skiff up` do:
// a kubelet over a container runtime it connects and prepares (containerd, with images
// imported from archives and the host's busybox; or simulated containers, as many
// simulated nodes as asked in one process), and the log server through which the API
// servers read the containers' output. The kubelet itself is package kubelet; this
// package only picks, prepares and runs.
package agent

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/clusterdns"
	"github.com/skiffhq/skiff/internal/workers"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/cni"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/kubelet/routes"
	"github.com/skiffhq/skiff/kubelet/sim"
	"github.com/skiffhq/skiff/proxy"
)

// The runtimes an agent runs pods with.
const (
	RuntimeContainerd = "containerd"
	RuntimeSim        = "sim"
)

// NoLogServer, as LogListen, serves no logs.
const NoLogServer = "none"

// Config configures an agent. Start from DefaultConfig; Run validates it.
type Config struct {
	// Kubelet configures the kubelet (with SimNodes, every simulated node's). Its
	// Logger is set from Logger, and its LogPort from the log server's listener.
	Kubelet kubelet.Config
	// Runtime runs the pods' containers: RuntimeContainerd (the default) or RuntimeSim.
	Runtime string
	// Containerd connects the containerd runtime (containerd.DefaultConfig()).
	Containerd containerd.Config
	// Connected, when set, is a containerd runtime already connected and prepared (skiff
	// up probes containerd before it starts the kubelet), used instead of connecting.
	Connected kubelet.Runtime
	// Preload is a directory of OCI image archives (*.tar) imported into containerd at
	// start ("": none).
	Preload string
	// Busybox is an image name provided from the host's static /bin/busybox when
	// containerd lacks it ("": none), so that examples run without a registry.
	Busybox string
	// SimNodes, with RuntimeSim, runs that many simulated nodes named
	// Kubelet.NodeName-0 … -(N-1); 0 runs one, named Kubelet.NodeName.
	SimNodes int
	// SimStartDelay is how long a simulated container takes to start.
	SimStartDelay time.Duration
	// SimPodNetwork, with RuntimeSim, gives each simulated node's pods addresses of the
	// node's podCIDR (sim.Network); without it they have the node's address. The
	// controller-manager's node IPAM gives the nodes their ranges.
	SimPodNetwork bool
	// CNI, with RuntimeContainerd, gives pods network namespaces and addresses of the
	// node's podCIDR through CNI (package kubelet/cni, the reference plugins); without
	// it pods run in the node's network namespace. CNIConfig configures it.
	CNI       bool
	CNIConfig cni.Config
	// Zones are the zones (label topology.kubernetes.io/zone) the nodes are in: one for
	// a node, or, with SimNodes, several that the simulated nodes take in turn, so
	// that one process can stand for a cluster spread over zones. None: no zone label
	// (beyond any in Kubelet.Labels).
	Zones []string
	// NodeClient, when set, gives each simulated node its own connection, as its own
	// identity (system:node:NAME), so that the API servers' node authorizer confines
	// each to its node as it would a real kubelet. Unset, every node shares Run's.
	NodeClient func(node string) (*client.Clientset, error)
	// LogListen is the log server's address (port 0: any free port; NoLogServer: none),
	// ":10250" by default. LogTLS is its TLS (nil: plaintext, in an insecure cluster).
	LogListen string
	LogTLS    *tls.Config
	// ClusterDNSListen, when set, runs the cluster DNS (package clusterdns) on this
	// address, UDP and TCP, for Kubelet.ClusterDomain (the kubelet's --cluster-domain,
	// which must be the cluster's), forwarding other names to the resolvers of the
	// host's /etc/resolv.conf. With ServiceProxy, the kube-dns Service's cluster IP
	// leads to it (LocalDNS), so that pods resolve through 10.43.0.10.
	ClusterDNSListen string
	// ServiceProxy runs the node's service proxy (package proxy): nftables rules in
	// the host's network namespace translating Services' cluster IPs and node ports to
	// their endpoints. ClusterCIDR is the cluster's pod range (the API servers'
	// --cluster-cidr, as kube-proxy's --cluster-cidr): connections to a cluster IP from
	// outside it are masqueraded; empty, none is. ServiceCIDR is the Services' range
	// (the API servers' --service-cidr): connections to an address of it that no
	// Service has are dropped; empty, none is.
	ServiceProxy bool
	ClusterCIDR  string
	ServiceCIDR  string
	// NodeRoutes keeps the node's routes to the other nodes' pods (package
	// kubelet/routes): each other Node's podCIDR via its InternalIP.
	NodeRoutes bool
	// NodeRoutesNetNS, when not 0, is a file descriptor of the network namespace the
	// routes are kept in instead of the host's (tests).
	NodeRoutesNetNS int
	// ServiceProxyNetNS, when not 0, is a file descriptor of the network namespace the
	// service proxy programs instead of the host's (tests).
	ServiceProxyNetNS int
	// Logger receives the agent's and the kubelets' logs. Default: discarded.
	Logger hclog.Logger
}

// DefaultConfig is a kubelet for this machine over the machine's containerd, serving
// logs on :10250.
func DefaultConfig() Config {
	return Config{Kubelet: kubelet.DefaultConfig(), Runtime: RuntimeContainerd, Containerd: containerd.DefaultConfig(),
		LogListen: ":10250", Logger: hclog.NewNullLogger()}
}

// Validate reports every invalid field. The kubelet's config is checked by kubelet.New.
func (c Config) Validate() error {
	var errs []error
	if c.Runtime != RuntimeContainerd && c.Runtime != RuntimeSim {
		errs = append(errs, fmt.Errorf("--runtime: Unsupported value: %q: supported values: containerd, sim", c.Runtime))
	}
	if c.SimNodes < 0 {
		errs = append(errs, fmt.Errorf("--sim-nodes: %d must not be negative", c.SimNodes))
	}
	if c.CNI && c.Runtime != RuntimeContainerd {
		errs = append(errs, errors.New("--cni: the CNI pod network is for the containerd runtime (--runtime sim has --sim-pod-network)"))
	}
	if len(c.Zones) > 1 && (c.Runtime != RuntimeSim || c.SimNodes <= 1) {
		errs = append(errs, fmt.Errorf("--zone: a node is in one zone; %d are for several simulated nodes (--sim-nodes)", len(c.Zones)))
	}
	for _, z := range c.Zones {
		for _, msg := range validation.IsValidLabelValue(z) {
			errs = append(errs, fmt.Errorf("--zone %q: %s", z, msg))
		}
		if z == "" {
			errs = append(errs, errors.New("--zone: must not be empty"))
		}
	}
	if c.LogListen == "" {
		errs = append(errs, errors.New("--kubelet-listen: must be set (none: no log server)"))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	return errors.Join(errs...)
}

// simSyncTurns is how many pod syncs a process's simulated nodes run at once
// (kubelet.Config.SyncTurns). A sync is mostly waits on the API servers, and holds its
// turn through them: the syncs a second are at most the turns over a sync's length, so
// the bound must allow for the calls' latency under load. At 150,000 pods on two cores,
// with a sync's calls taking a second or more, 64 turns let 40–100 pods a second start,
// the syncs themselves 0.17% of the fleet's CPU (issue 26). 512 keep the goroutines
// runnable at once an order below the thousands that starved the nodes' Lease renewals.
const simSyncTurns = 512

// Run runs the kubelet (or the simulated kubelets) and the log server until ctx ends.
// The first of them to fail stops the others, and Run returns its error.
func Run(ctx context.Context, cs *client.Clientset, cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	log := cfg.Logger
	kcfg := cfg.Kubelet
	kcfg.Logger = log
	logs := kubelet.NewLogServer(log)
	ln, err := listenLogs(cfg.LogListen, kcfg.NodeIP, log)
	if err != nil {
		return err
	}
	if ln != nil {
		kcfg.LogPort = ln.Addr().(*net.TCPAddr).Port
	}
	// Simulated nodes share one informer of Services (for their pods' service
	// variables), as they share this process, and their pods' templates.
	var services *cache.Informer[*corev1.Service]
	if cfg.Runtime == RuntimeSim && cfg.SimNodes > 1 {
		services = cache.NewInformer(cs.Services, "", client.ListOptions{}, log)
		kcfg.Services = services
		kcfg.PodParts = cache.NewPodParts()
		kcfg.SyncTurns = kubelet.NewTurns(simSyncTurns)
	}
	kubelets, err := newKubelets(ctx, cs, cfg, kcfg, logs)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	// The first failure while running stops the others; failures once stopping are
	// the stop's doing.
	g, gctx := errgroup.WithContext(ctx)
	goRun := func(f func(context.Context) error) {
		g.Go(func() error {
			if err := f(gctx); err != nil && gctx.Err() == nil {
				return err
			}
			return nil
		})
	}
	if ln != nil {
		goRun(func(ctx context.Context) error { return logs.Serve(ctx, ln, cfg.LogTLS) })
	}
	if services != nil {
		goRun(func(ctx context.Context) error { services.Run(ctx); return nil })
	}
	for _, k := range kubelets {
		goRun(k.Run)
	}
	if cfg.ClusterDNSListen != "" {
		goRun(func(ctx context.Context) error {
			return runClusterDNS(ctx, cs, cfg.ClusterDNSListen, cfg.Kubelet.ClusterDomain, log)
		})
	}
	if cfg.NodeRoutes {
		goRun(func(ctx context.Context) error {
			return runNodeRoutes(ctx, cs, kcfg.NodeName, cfg.NodeRoutesNetNS, log)
		})
	}
	if cfg.ServiceProxy {
		var local netip.AddrPort
		if cfg.ClusterDNSListen != "" {
			if local, err = LocalDNS(cfg.ClusterDNSListen, kcfg.NodeIP); err != nil {
				log.Warn("the kube-dns Service's cluster IP does not lead to this node's cluster DNS", "error", err)
			}
		}
		goRun(func(ctx context.Context) error {
			return runServiceProxy(ctx, cs, proxy.Config{ClusterCIDR: cfg.ClusterCIDR, ServiceCIDR: cfg.ServiceCIDR, NetNS: cfg.ServiceProxyNetNS, LocalDNS: local, NodeName: kcfg.NodeName}, log)
		})
	}
	return g.Wait()
}

// runNodeRoutes keeps the routes to the other nodes' pods until ctx ends.
func runNodeRoutes(ctx context.Context, cs *client.Clientset, node string, netns int, log hclog.Logger) error {
	c, err := routes.New(routes.Config{NodeName: node, NetNS: netns, Logger: log})
	if err != nil {
		return err
	}
	defer c.Close()
	f := cache.NewFactory(cs, log)
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); f.Wait() }()
	f.Start(ctx)
	return c.Run(ctx, f)
}

// LocalDNS is where the node's service proxy sends the kube-dns Service's cluster IP:
// the cluster DNS this node runs, listening on listen (--cluster-dns-listen), on the
// node's address nodeIP when it listens on every address. An error says why pods
// could not reach it there (a loopback address, a port chosen at random).
func LocalDNS(listen, nodeIP string) (netip.AddrPort, error) {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("--cluster-dns-listen %q: %w", listen, err)
	}
	if host == "" {
		host = "0.0.0.0"
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("--cluster-dns-listen %q: not an IP address and port", listen)
	}
	if addr.IsUnspecified() {
		if addr, err = netip.ParseAddr(nodeIP); err != nil {
			return netip.AddrPort{}, fmt.Errorf("--node-ip %q: not an IP address", nodeIP)
		}
	}
	p, err := strconv.ParseUint(port, 10, 16)
	switch {
	case err != nil || p == 0:
		return netip.AddrPort{}, fmt.Errorf("--cluster-dns-listen %q: the cluster DNS needs a port of its own (53) for pods to reach it through the kube-dns Service", listen)
	case !addr.Is4() || addr.IsLoopback():
		return netip.AddrPort{}, fmt.Errorf("--cluster-dns-listen %q: pods cannot reach %s: listen on the node's IPv4 address (or on every address)", listen, addr)
	}
	return netip.AddrPortFrom(addr, uint16(p)), nil
}

// runServiceProxy runs the service proxy until ctx ends, then removes its rules.
func runServiceProxy(ctx context.Context, cs *client.Clientset, pcfg proxy.Config, log hclog.Logger) error {
	pcfg.Logger = log
	p, err := proxy.New(pcfg)
	if err != nil {
		return fmt.Errorf("--service-proxy: %w", err)
	}
	f := cache.NewFactory(cs, log)
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		f.Wait()
		if err := p.Cleanup(); err != nil {
			log.Warn("service proxy: remove the rules", "error", err)
		}
	}()
	f.Start(ctx)
	return p.Run(ctx, f)
}

// runClusterDNS serves the cluster DNS on addr until ctx ends.
func runClusterDNS(ctx context.Context, cs *client.Clientset, addr, domain string, log hclog.Logger) error {
	dcfg := clusterdns.DefaultConfig()
	dcfg.Logger = log
	if domain != "" {
		dcfg.Domain = domain
	}
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	defer pc.Close()
	ln, err := net.Listen("tcp", pc.LocalAddr().String())
	if err != nil {
		return fmt.Errorf("cluster DNS: %w", err)
	}
	defer ln.Close()
	f := cache.NewFactory(cs, log)
	s, err := clusterdns.New(f, dcfg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer func() { cancel(); f.Wait() }()
	f.Start(ctx)
	return s.Serve(ctx, pc, ln)
}

// Bounds of the pool the process's kubelets share (newKubelets).
const (
	fleetMaxWorkers = 256
	fleetWorkerIdle = 30 * time.Second
)

// newKubelets makes the kubelets of cfg, each registered with the log server.
func newKubelets(ctx context.Context, cs *client.Clientset, cfg Config, kcfg kubelet.Config, logs *kubelet.LogServer) ([]*kubelet.Kubelet, error) {
	var kubelets []*kubelet.Kubelet
	if kcfg.Pool == nil {
		// One pool of warm goroutines (internal/workers) for the process's kubelets:
		// the heartbeats and pod workers of thousands of simulated nodes run on the
		// grown stacks of a few hundred at most.
		kcfg.Pool = workers.New(fleetMaxWorkers, fleetWorkerIdle, ctx.Done())
	}
	add := func(rt kubelet.Runtime, c kubelet.Config) error {
		kcs := cs
		if cfg.NodeClient != nil && cfg.Runtime == RuntimeSim {
			var err error
			if kcs, err = cfg.NodeClient(c.NodeName); err != nil {
				return fmt.Errorf("node %s: %w", c.NodeName, err)
			}
		}
		k, err := kubelet.New(kcs, rt, c)
		if err != nil {
			return err
		}
		logs.Register(c.NodeName, rt)
		kubelets = append(kubelets, k)
		return nil
	}
	if cfg.Runtime == RuntimeSim {
		for i := 0; i < max(cfg.SimNodes, 1); i++ {
			c := kcfg.Simulated()
			if cfg.SimNodes > 0 {
				c = kcfg.SimulatedFleet()
				c.NodeName = fmt.Sprintf("%s-%d", kcfg.NodeName, i)
			}
			c.Labels = withZone(kcfg.Labels, cfg.Zones, i)
			c.Logger = kcfg.Logger.With("node", c.NodeName)
			if cfg.SimNodes > 0 { // one root per node
				c.RootDir = filepath.Join(kcfg.RootDir, "sim", c.NodeName)
			}
			if cfg.SimPodNetwork {
				c.PodNetwork = sim.NewNetwork()
			}
			if err := add(sim.New(sim.Config{StartDelay: cfg.SimStartDelay}), c); err != nil {
				return nil, err
			}
		}
		return kubelets, nil
	}
	rt := cfg.Connected
	if rt == nil {
		var err error
		if rt, err = Containerd(ctx, cfg); err != nil {
			return nil, err
		}
	}
	kcfg.Labels = withZone(kcfg.Labels, cfg.Zones, 0)
	if cfg.CNI {
		ccfg := cfg.CNIConfig
		ccfg.Logger = kcfg.Logger
		nw, err := cni.New(ccfg)
		if err != nil {
			return nil, err
		}
		kcfg.PodNetwork = nw
	}
	if err := add(rt, kcfg); err != nil {
		return nil, err
	}
	return kubelets, nil
}

// withZone returns labels with the zone of the i-th node, when there are zones.
func withZone(labels map[string]string, zones []string, i int) map[string]string {
	if len(zones) == 0 {
		return labels
	}
	out := maps.Clone(labels)
	if out == nil {
		out = map[string]string{}
	}
	out[corev1.LabelTopologyZone] = zones[i%len(zones)]
	return out
}

// listenLogs opens the log server's listener; nil for NoLogServer.
func listenLogs(addr, nodeIP string, log hclog.Logger) (net.Listener, error) {
	if addr == NoLogServer {
		return nil, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--kubelet-listen: %w", err)
	}
	if host, _, _ := net.SplitHostPort(addr); host != "" && host != nodeIP {
		if ip := net.ParseIP(host); ip == nil || !ip.IsUnspecified() {
			log.Warn("the log server does not listen on the node's IP, which the API server dials", "kubelet-listen", addr, "node-ip", nodeIP)
		}
	}
	return ln, nil
}

// Containerd connects to containerd as cfg.Containerd says and prepares it: it imports
// cfg.Preload's archives and provides cfg.Busybox.
func Containerd(ctx context.Context, cfg Config) (*containerd.Runtime, error) {
	rt, err := containerd.New(ctx, cfg.Containerd)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if cfg.Preload != "" {
		archives, err := filepath.Glob(filepath.Join(cfg.Preload, "*.tar"))
		if err != nil {
			return nil, err
		}
		for _, a := range archives {
			f, err := os.Open(a)
			if err != nil {
				return nil, err
			}
			names, err := rt.Import(ctx, f)
			f.Close()
			if err != nil {
				return nil, fmt.Errorf("--preload %s: %w", a, err)
			}
			log.Info("imported images", "archive", a, "images", names)
		}
	}
	if cfg.Busybox != "" {
		if err := ensureBusybox(ctx, rt, cfg.Busybox, log); err != nil {
			log.Warn("cannot provide the busybox image from the host", "error", err)
		}
	}
	return rt, nil
}

// ensureBusybox imports an image built from the host's static busybox as ref, unless the
// image is there: the examples then run on machines without a registry.
func ensureBusybox(ctx context.Context, rt *containerd.Runtime, ref string, log hclog.Logger) error {
	if _, _, err := rt.EnsureImage(ctx, ref, kubelet.PullNever, nil); err == nil {
		return nil
	}
	data, err := containerd.BusyboxArchive("/bin/busybox", ref)
	if err != nil {
		return err
	}
	names, err := rt.Import(ctx, bytes.NewReader(data))
	if err != nil {
		return err
	}
	log.Info("imported the host's busybox", "images", names)
	return nil
}
