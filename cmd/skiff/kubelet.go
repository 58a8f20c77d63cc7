package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/apiserver/pki"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/sim"
)

// kubeletOptions are the flags of `skiff kubelet` that `skiff up` shares.
type kubeletOptions struct {
	runtime             string
	containerdAddress   string
	simNodes            int
	preload             string
	containerdNamespace string
	logDir              string
	insecureRegistries  []string
	busybox             string          // an image name to provide from the host's /bin/busybox when missing
	rt                  kubelet.Runtime // already connected (skiff up probes containerd first)
	simStartDelay       time.Duration
	// kubeletListen is the log server's address ("none": no log server); logTLS its
	// TLS (nil: plaintext, in an insecure cluster).
	kubeletListen string
	logTLS        *tls.Config
}

func kubeletCmd(logger func(string) hclog.Logger) *cobra.Command {
	cfg := kubelet.DefaultConfig()
	cfg.NodeName, cfg.NodeIP = "", "" // machine defaults are filled at run time
	opts := kubeletOptions{runtime: "containerd", containerdAddress: defaultContainerdSocket, kubeletListen: defaultKubeletListen}
	var conn connFlags
	var logCert, logKey string
	cmd := &cobra.Command{
		Use:   "kubelet",
		Short: "Run a node agent: register the node and run the pods bound to it",
		Long: `Run a kubelet. With --runtime containerd it runs pods' containers through containerd;
with --runtime sim it simulates them, and --sim-nodes N runs N simulated nodes named
NODE-0 … NODE-(N-1) in this one process (for scale tests).

The kubelet serves its containers' output (skiffctl logs, through the API server) on
--kubelet-listen and publishes the port in its Node's status; the API server dials the
node's --node-ip there. In a TLS cluster (--ca-file) it serves with its certificate
(--cert-file, or --kubelet-tls-cert-file) and accepts only API servers' certificates.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := logger("skiff")
			machineDefaults(&cfg)
			var err error
			if opts.logTLS, err = kubeletLogTLS(conn.s, logCert, logKey, opts.kubeletListen); err != nil {
				return err
			}
			cc, err := conn.dial("skiff-kubelet", log)
			if err != nil {
				return err
			}
			defer cc.Close()
			ctx, cancel := signalContext()
			defer cancel()
			return runKubelets(ctx, client.NewClientset(cc), cfg, opts, log)
		},
	}
	f := cmd.Flags()
	conn.register(f)
	f.StringVar(&cfg.NodeName, "node-name", cfg.NodeName, "the Node to register and run pods for (default: the host name)")
	f.StringVar(&cfg.NodeIP, "node-ip", cfg.NodeIP, "the node's address; pods use the host network (default: the first non-loopback IPv4 address)")
	f.StringVar(&opts.runtime, "runtime", opts.runtime, "container runtime: containerd or sim")
	f.StringVar(&opts.containerdAddress, "containerd-address", opts.containerdAddress, "containerd's socket")
	f.StringArrayVar(&opts.insecureRegistries, "insecure-registry", nil, "with --runtime containerd: a registry (HOST or HOST:PORT) pulled from without TLS verification, falling back to plain HTTP; repeatable (loopback registries always are)")
	f.StringVar(&opts.preload, "preload", "", "directory of OCI image archives (*.tar) to import at start")
	f.StringVar(&opts.containerdNamespace, "containerd-namespace", "skiff", "containerd namespace of this kubelet's containers (one per kubelet)")
	f.StringVar(&opts.logDir, "container-log-dir", "/var/log/skiff/containers", "where containers' output is kept")
	f.IntVar(&opts.simNodes, "sim-nodes", 0, "with --runtime sim: run this many simulated nodes")
	f.DurationVar(&opts.simStartDelay, "sim-start-delay", 0, "with --runtime sim: how long a simulated container takes to start")
	f.StringVar(&opts.kubeletListen, "kubelet-listen", opts.kubeletListen, "address of the kubelet's log server (port 0: any free port; \"none\": serve no logs)")
	f.StringVar(&logCert, "kubelet-tls-cert-file", "", "the log server's certificate, user system:node:NAME with server usage (default --cert-file)")
	f.StringVar(&logKey, "kubelet-tls-key-file", "", "its key (default --key-file)")
	f.DurationVar(&cfg.LeaseRenewInterval, "node-lease-renew-interval", cfg.LeaseRenewInterval, "how often the node's Lease is renewed (the controller-manager's grace period must be longer)")
	f.DurationVar(&cfg.NodeStatusInterval, "node-status-update-frequency", cfg.NodeStatusInterval, "how often the node's status is checked, and written if it changed")
	f.DurationVar(&cfg.NodeStatusReportInterval, "node-status-report-frequency", cfg.NodeStatusReportInterval, "how often the node's status is written when it did not change (the Lease is the heartbeat)")
	return cmd
}

const (
	defaultContainerdSocket = "/run/containerd/containerd.sock"
	defaultKubeletListen    = ":10250"
)

// kubeletLogTLS is the log server's TLS: with the cluster's CA (a TLS cluster), the
// kubelet's certificate; nil in an insecure cluster.
func kubeletLogTLS(s client.Settings, cert, key, listen string) (*tls.Config, error) {
	if listen == "none" {
		return nil, nil
	}
	ca, c, k, err := s.Files()
	if err != nil || ca == "" {
		return nil, err
	}
	cert, key = firstNonEmpty(cert, c), firstNonEmpty(key, k)
	if cert == "" {
		return nil, fmt.Errorf("--kubelet-listen %s: serving logs in a TLS cluster needs the kubelet's certificate: give --cert-file and --key-file (or --kubelet-tls-cert-file and --kubelet-tls-key-file), or --kubelet-listen none", listen)
	}
	r, err := pki.NewReloader(cert, key, ca)
	if err != nil {
		return nil, fmt.Errorf("--kubelet-tls-cert-file: %w", err)
	}
	return r.KubeletServerTLS(), nil
}

// listenLogs opens the log server's listener; nil for "none".
func listenLogs(addr, nodeIP string, log hclog.Logger) (net.Listener, error) {
	if addr == "none" {
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

// runKubelets runs one kubelet, or --sim-nodes simulated ones, and their log server,
// until ctx ends.
func runKubelets(ctx context.Context, cs *client.Clientset, cfg kubelet.Config, opts kubeletOptions, log hclog.Logger) error {
	var kubelets []*kubelet.Kubelet
	logs := kubelet.NewLogServer(log)
	ln, err := listenLogs(opts.kubeletListen, cfg.NodeIP, log)
	if err != nil {
		return err
	}
	if ln != nil {
		cfg.LogPort = ln.Addr().(*net.TCPAddr).Port
	}
	add := func(rt kubelet.Runtime, c kubelet.Config, log hclog.Logger) error {
		c.Logger = log
		k, err := kubelet.New(cs, rt, c)
		if err != nil {
			return err
		}
		logs.Register(c.NodeName, rt)
		kubelets = append(kubelets, k)
		return nil
	}
	switch opts.runtime {
	case "sim":
		for i := 0; i < max(opts.simNodes, 1); i++ {
			c := cfg
			if opts.simNodes > 0 {
				c.NodeName = fmt.Sprintf("%s-%d", cfg.NodeName, i)
			}
			err = add(sim.New(sim.Config{StartDelay: opts.simStartDelay}), c, log.With("node", c.NodeName))
			if err != nil {
				break
			}
		}
	case "containerd":
		rt := opts.rt
		if rt == nil {
			rt, err = newContainerdRuntime(ctx, opts, log)
		}
		if err == nil {
			err = add(rt, cfg, log)
		}
	default:
		err = fmt.Errorf("--runtime: Unsupported value: %q: supported values: containerd, sim", opts.runtime)
	}
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, len(kubelets)+1)
	goRun := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil && ctx.Err() == nil {
				errs <- err
				cancel()
			}
		}()
	}
	if ln != nil {
		goRun(func() error { return logs.Serve(ctx, ln, opts.logTLS) })
	}
	for _, k := range kubelets {
		goRun(func() error { return k.Run(ctx) })
	}
	wg.Wait()
	close(errs)
	return <-errs
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
