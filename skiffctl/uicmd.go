package skiffctl

import (
	"fmt"
	"net"
	"strconv"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/skiffctl/ui"
)

func uiCmd(g *globals) *cobra.Command {
	var address string
	var port int
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve a live web view of the cluster and of each workload's chain, on loopback",
		Long: `Start a web server on loopback that shows the cluster live, and print its URL: the API
servers (leader, term, commit index, health), the nodes with their pods and capacity use,
the workloads with their rollout state, the Services and the events; for a Deployment,
DaemonSet, StatefulSet, Job or CronJob, its chain map: the ten steps from the API server
storing it to the kubelets reporting its pods Ready, who did each and how long it took,
pods by state and node, the old ReplicaSets draining, and why a step is stuck (the
Warning event that says so); and for a Service, its endpoints (ready, serving,
terminating) and the pods and workloads behind it.

The server talks to the cluster with your client config (as every skiffctl command does),
with one watch per kind however many pages are open, and updates the page with
server-sent events. It serves on loopback only, and runs until interrupted.`,
		Example: `  skiffctl ui
  skiffctl ui --port 0     # any free port`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			listen := net.JoinHostPort(address, strconv.Itoa(port))
			if err := ui.CheckLoopback(listen); err != nil {
				return fmt.Errorf("--address: Invalid value: %q: %v", address, err)
			}
			s := g.settings
			s.UseDefaultConfig = true
			servers, opts, err := client.Resolve(s, client.Options{UserAgent: "skiffctl-ui", Logger: hclog.NewNullLogger()})
			if err != nil {
				return err
			}
			srv, err := ui.New(ui.Config{Listen: listen, Servers: servers, Options: opts})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "Serving the Skiff UI on %s\n", srv.URL())
			return srv.Run(cmd.Context())
		},
	}
	cmd.Flags().StringVar(&address, "address", "127.0.0.1", "the loopback address to serve on")
	cmd.Flags().IntVar(&port, "port", 7480, "the port to serve on (0: any free port)")
	return cmd
}
