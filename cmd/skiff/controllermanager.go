package main

import (
	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/controllers"
)

func controllerManagerCmd(logger func(string) hclog.Logger) *cobra.Command {
	cfg := controllers.DefaultConfig()
	var conn connFlags
	var rootCAFile string
	cmd := &cobra.Command{
		Use:   "controller-manager",
		Short: "Run the controllers: Deployment, ReplicaSet (and ReplicationController), garbage collectors, node lifecycle, namespace, disruption, Job, CronJob, TTL-after-finished, CSR signing and cleaning",
		Long: `Run the controllers. Several replicas may run: one leads (Lease
kube-system/skiff-controller-manager) and only the leader acts.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) (err error) {
			cfg.Logger = logger("skiff")
			if cfg.Identity == "" {
				cfg.Identity = controllers.DefaultConfig().Identity
			}
			if rootCAFile == "" {
				// The CA the controller-manager trusts the API servers with.
				if rootCAFile, _, _, err = conn.s.Files(); err != nil {
					return err
				}
			}
			cfg.RootCAFile = rootCAFile
			cc, err := conn.dial(client.Options{UserAgent: "skiff-controller-manager", Logger: cfg.Logger})
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
			return controllers.Run(ctx, cc, cfg)
		},
	}
	f := cmd.Flags()
	conn.register(f)
	f.StringVar(&cfg.Identity, "identity", "", "this replica's name in leader election (default: host name and pid)")
	f.BoolVar(&cfg.LeaderElect, "leader-elect", cfg.LeaderElect, "act only while holding the leader Lease")
	f.DurationVar(&cfg.NodeGracePeriod, "node-monitor-grace-period", cfg.NodeGracePeriod, "time without a kubelet heartbeat before its node is unreachable")
	f.DurationVar(&cfg.NodeStartupGracePeriod, "node-startup-grace-period", cfg.NodeStartupGracePeriod,
		"time a node that has not yet posted a Ready condition may go without a heartbeat before it is unreachable")
	f.DurationVar(&cfg.PodEvictionTimeout, "pod-eviction-timeout", cfg.PodEvictionTimeout, "time a pod without its own toleration stays on an unreachable node")
	f.Float64Var(&cfg.NodeEvictionRate, "node-eviction-rate", cfg.NodeEvictionRate, "unreachable nodes a second tainted (their pods then evicted) in a zone that is healthy or fully disrupted")
	f.Float64Var(&cfg.SecondaryNodeEvictionRate, "secondary-node-eviction-rate", cfg.SecondaryNodeEvictionRate,
		"unreachable nodes a second tainted in a zone in partial disruption (see --unhealthy-zone-threshold); 0 in a zone of --large-cluster-size-threshold nodes or fewer")
	f.Float64Var(&cfg.UnhealthyZoneThreshold, "unhealthy-zone-threshold", cfg.UnhealthyZoneThreshold, "the share of a zone's nodes not Ready (when more than two) at which it is in partial disruption")
	f.IntVar(&cfg.LargeClusterSizeThreshold, "large-cluster-size-threshold", cfg.LargeClusterSizeThreshold, "nodes a zone needs for --secondary-node-eviction-rate to apply (a smaller zone in partial disruption taints none)")
	f.IntVar(&cfg.TerminatedPodGCThreshold, "terminated-pod-gc-threshold", cfg.TerminatedPodGCThreshold,
		"finished (Succeeded or Failed) pods kept before the oldest are deleted; 0 keeps them all")
	f.StringVar(&cfg.ClusterSigningCertFile, "cluster-signing-cert-file", "", "the CA certificate (PEM) that signs approved certificate signing requests of the kubernetes.io signers")
	f.StringVar(&cfg.ClusterSigningKeyFile, "cluster-signing-key-file", "", "the key (PEM) of --cluster-signing-cert-file")
	f.DurationVar(&cfg.ClusterSigningDuration, "cluster-signing-duration", cfg.ClusterSigningDuration, "the longest a signed certificate is valid (a request's expirationSeconds may ask for less)")
	f.StringVar(&cfg.ServiceAccountKeyFile, "service-account-private-key-file", "", "the private key that signs the tokens of legacy service-account token secrets (the API servers' --service-account-signing-key-file, sa.key): without it such secrets get no token")
	f.StringVar(&rootCAFile, "root-ca-file", "", "the CA bundle published in every namespace as the config map kube-root-ca.crt, published again when the file changes (default: --ca-file's)")
	return cmd
}
