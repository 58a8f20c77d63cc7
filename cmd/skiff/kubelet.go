package main

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

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
	busybox             string          // an image name to provide from the host's /bin/busybox when missing
	rt                  kubelet.Runtime // already connected (skiff up probes containerd first)
	simStartDelay       time.Duration
}

func kubeletCmd(logger func(string) hclog.Logger) *cobra.Command {
	cfg := kubelet.DefaultConfig()
	cfg.NodeName, cfg.NodeIP = "", "" // machine defaults are filled at run time
	opts := kubeletOptions{runtime: "containerd", containerdAddress: defaultContainerdSocket}
	var conn connFlags
	cmd := &cobra.Command{
		Use:   "kubelet",
		Short: "Run a node agent: register the node and run the pods bound to it",
		Long: `Run a kubelet. With --runtime containerd it runs pods' containers through containerd;
with --runtime sim it simulates them, and --sim-nodes N runs N simulated nodes named
NODE-0 … NODE-(N-1) in this one process (for scale tests).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			log := logger("skiff")
			machineDefaults(&cfg)
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
	f.StringVar(&opts.preload, "preload", "", "directory of OCI image archives (*.tar) to import at start")
	f.StringVar(&opts.containerdNamespace, "containerd-namespace", "skiff", "containerd namespace of this kubelet's containers (one per kubelet)")
	f.StringVar(&opts.logDir, "container-log-dir", "/var/log/skiff/containers", "where containers' output is kept")
	f.IntVar(&opts.simNodes, "sim-nodes", 0, "with --runtime sim: run this many simulated nodes")
	f.DurationVar(&opts.simStartDelay, "sim-start-delay", 0, "with --runtime sim: how long a simulated container takes to start")
	f.DurationVar(&cfg.LeaseRenewInterval, "node-lease-renew-interval", cfg.LeaseRenewInterval, "how often the node's Lease is renewed (the controller-manager's grace period must be longer)")
	f.DurationVar(&cfg.NodeStatusInterval, "node-status-update-frequency", cfg.NodeStatusInterval, "how often the node's status is checked, and written if it changed")
	f.DurationVar(&cfg.NodeStatusReportInterval, "node-status-report-frequency", cfg.NodeStatusReportInterval, "how often the node's status is written when it did not change (the Lease is the heartbeat)")
	return cmd
}

const defaultContainerdSocket = "/run/containerd/containerd.sock"

// runKubelets runs one kubelet, or --sim-nodes simulated ones, until ctx ends.
func runKubelets(ctx context.Context, cs *client.Clientset, cfg kubelet.Config, opts kubeletOptions, log hclog.Logger) error {
	switch opts.runtime {
	case "sim":
	case "containerd":
		rt := opts.rt
		if rt == nil {
			var err error
			if rt, err = newContainerdRuntime(ctx, opts, log); err != nil {
				return err
			}
		}
		k, err := kubelet.New(cs, rt, cfg, log)
		if err != nil {
			return err
		}
		return k.Run(ctx)
	default:
		return fmt.Errorf("--runtime: Unsupported value: %q: supported values: containerd, sim", opts.runtime)
	}
	n := max(opts.simNodes, 1)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		c := cfg
		if opts.simNodes > 0 {
			c.NodeName = fmt.Sprintf("%s-%d", cfg.NodeName, i)
		}
		k, err := kubelet.New(cs, sim.New(sim.Config{StartDelay: opts.simStartDelay}), c, log.With("node", c.NodeName))
		if err != nil {
			return err
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := k.Run(ctx); err != nil && ctx.Err() == nil {
				errs <- err
			}
		}()
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
