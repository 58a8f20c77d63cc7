package main

import (
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/up"
)

func upCmd(logger func(string) hclog.Logger) *cobra.Command {
	cfg := up.DefaultConfig()
	cfg.Kubelet.NodeName, cfg.Kubelet.NodeIP = "", "" // machine defaults are filled at run time
	var extended []string
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run all of Skiff in one process: API server, controllers, scheduler and a kubelet",
		Long: `Run a whole Skiff on this machine: an API server with an embedded single-node store (or
three, with --nodes 3), the controller-manager, the scheduler and a kubelet. The kubelet
uses containerd when it can (--runtime auto): the one at --containerd-address, or when
none answers there and containerd is installed, a private containerd that skiff up runs
itself (images and containers kept in --data-dir, state in /run/skiff); otherwise
simulated containers. Data is kept in --data-dir: starting again continues where it
stopped. Ctrl-C stops everything (with a private containerd, its containers too).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = logger("skiff")
			if !cmd.Flag("log-level").Changed {
				cfg.Logger.SetLevel(hclog.Warn)
			}
			machineDefaults(&cfg.Kubelet)
			if err := addExtendedResources(&cfg.Kubelet, extended); err != nil {
				return err
			}
			ctx, cancel := signalContext()
			defer cancel()
			return up.Run(ctx, cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.DataDir, "data-dir", cfg.DataDir, "where the store keeps its data")
	f.StringVar(&cfg.Listen, "listen", cfg.Listen, "API address (with --nodes 3, the next two ports too; Raft uses port+100 and up)")
	f.IntVar(&cfg.Members, "nodes", cfg.Members, "API servers: 1, or 3 for a local high-availability demo")
	f.StringVar(&cfg.UIListen, "ui-listen", cfg.UIListen, "loopback address of the live map (skiffctl ui's page); \"\" for none")
	f.StringVar(&cfg.Runtime, "runtime", cfg.Runtime, "container runtime: auto (containerd when it can, else simulated), containerd or sim")
	f.StringVar(&cfg.ContainerdAddress, "containerd-address", cfg.ContainerdAddress, "containerd's socket; when none answers there and containerd is installed, skiff up runs a private one")
	f.StringVar(&cfg.Kubelet.NodeName, "node-name", cfg.Kubelet.NodeName, "the kubelet's node name (default: the host name)")
	f.StringArrayVar(&cfg.InsecureRegistries, "insecure-registry", nil, "with --runtime containerd: a registry (HOST or HOST:PORT) pulled from without TLS verification, falling back to plain HTTP; repeatable (loopback registries always are)")
	nodeFlags(f, &cfg.Kubelet, &extended)
	return cmd
}
