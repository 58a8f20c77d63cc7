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
	var conn connFlags
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
			cc, err := conn.dial(client.Options{UserAgent: "skiff-scheduler", Logger: cfg.Logger})
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
			cs := client.NewClientset(cc)
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
	conn.register(f)
	f.StringVar(&identity, "identity", "", "this replica's name in leader election and events (default: host name and pid)")
	f.BoolVar(&leaderElect, "leader-elect", true, "schedule only while holding the leader Lease")
	f.IntVar(&cfg.PercentageOfNodesToScore, "percentage-of-nodes-to-score", cfg.PercentageOfNodesToScore, "share of nodes to find feasible before scoring (0: adaptive)")
	return cmd
}
