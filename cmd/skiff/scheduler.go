package main

import (
	"fmt"
	"os"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/leader"
	"github.com/skiffhq/skiff/scheduler"
)

func schedulerCmd(logger func(string) hclog.Logger) *cobra.Command {
	cfg := scheduler.DefaultConfig()
	lc := leader.DefaultConfig()
	var identity string
	var servers string
	leaderElect := true
	cmd := &cobra.Command{
		Use:   "scheduler",
		Short: "Run the scheduler: bind pending pods to nodes",
		Long: `Run the scheduler. Several replicas may run: one leads (Lease kube-system/skiff-scheduler)
and only the leader schedules.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg.Logger = logger("skiff")
			if identity == "" {
				host, _ := os.Hostname()
				identity = fmt.Sprintf("%s-%d", host, os.Getpid())
			}
			conn, err := client.Dial(client.Servers(servers), client.Options{UserAgent: "skiff-scheduler", Logger: cfg.Logger})
			if err != nil {
				return err
			}
			defer conn.Close()
			ctx, cancel := signalContext()
			defer cancel()
			cs := client.NewClientset(conn)
			if !leaderElect {
				s, err := scheduler.New(cs, cfg)
				if err != nil {
					return err
				}
				return s.Run(ctx)
			}
			return scheduler.RunElected(ctx, cs, cfg, lc, identity)
		},
	}
	f := cmd.Flags()
	f.StringVar(&servers, "server", "", "API servers, comma-separated (default $SKIFF_SERVER or 127.0.0.1:7443)")
	f.StringVar(&identity, "identity", "", "this replica's name in leader election and events (default: host name and pid)")
	f.BoolVar(&leaderElect, "leader-elect", true, "schedule only while holding the leader Lease")
	f.IntVar(&cfg.PercentageOfNodesToScore, "percentage-of-nodes-to-score", cfg.PercentageOfNodesToScore, "share of nodes to find feasible before scoring (0: adaptive)")
	return cmd
}
