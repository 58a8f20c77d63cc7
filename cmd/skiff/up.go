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
	podNetwork := true
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run all of Skiff in one process: API server, controllers, scheduler and a kubelet",
		Long: `Run a whole Skiff on this machine: an API server with an embedded single-node store (or
three, with --nodes 3), the controller-manager, the scheduler and a kubelet. The kubelet
uses containerd when it can (--runtime auto): the one at --containerd-address, or when
none answers there and containerd is installed, a private containerd that skiff up runs
itself (images and containers kept in --data-dir, state in /run/skiff); otherwise
simulated containers. Data is kept in --data-dir: starting again continues where it
stopped. Ctrl-C stops everything (with a private containerd, its containers too).

With containerd, as root, the node also runs the pod network (--pod-network): each pod
gets a network namespace and an address of the node's podCIDR on bridge cni0 (--cni,
Debian's containernetworking-plugins), the service proxy translates Services' cluster
IPs and node ports (--service-proxy), the node routes other nodes' pod ranges
(--node-routes), and the cluster DNS answers on the node's address, port 53
(--cluster-dns-listen), where pods' resolv.conf reaches it through the kube-dns
Service, 10.43.0.10. A part the machine cannot run is left out, and said.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = logger("skiff")
			if !cmd.Flag("log-level").Changed {
				cfg.Logger.SetLevel(hclog.Warn)
			}
			machineDefaults(&cfg.Kubelet)
			cfg.Network.Off = !podNetwork
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
	f.BoolVar(&cfg.Network.CNI, "cni", cfg.Network.CNI, "with containerd as root: give pods network namespaces and addresses of the node's podCIDR (CNI)")
	f.BoolVar(&cfg.Network.ServiceProxy, "service-proxy", cfg.Network.ServiceProxy, "with containerd as root: run the service proxy (nftables rules for Services' cluster IPs and node ports)")
	f.BoolVar(&cfg.Network.NodeRoutes, "node-routes", cfg.Network.NodeRoutes, "with containerd as root: route other nodes' pod ranges via their addresses")
	f.StringVar(&cfg.Network.ClusterDNSListen, "cluster-dns-listen", cfg.Network.ClusterDNSListen, "with containerd as root: where the cluster DNS listens (default: the node's address, port 53; \"none\": no cluster DNS); pods resolve through the kube-dns Service, 10.43.0.10")
	f.BoolVar(&podNetwork, "pod-network", true, "with containerd as root: run the pod network (--cni, --service-proxy, --node-routes, the cluster DNS); false: pods use the node's network")
	nodeFlags(f, &cfg.Kubelet, &extended)
	return cmd
}
