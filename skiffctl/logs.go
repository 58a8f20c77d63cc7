package skiffctl

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

func logsCmd(g *globals) *cobra.Command {
	var opts client.LogOptions
	var tail int64
	cmd := &cobra.Command{
		Use:   "logs POD [-c CONTAINER] [-f] [--tail N]",
		Short: "Print a container's output",
		Long: `Print the output of a container in a pod, read through the API server from the kubelet
of the pod's node. -c names the container; it may be left out when the pod has one.
With -f, keep printing what the container writes until it exits or you interrupt
(--request-timeout does not apply then).`,
		Example: `  skiffctl logs web-7d4b9c-x2x9k
  skiffctl logs web-7d4b9c-x2x9k -c sidecar -f --tail 20`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) != 1 {
				return fmt.Errorf("expected POD (one pod name), got %d arguments", len(args))
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if tail >= 0 {
				opts.TailLines = &tail
			}
			if k, n, ok := strings.Cut(name, "/"); ok {
				if info, found := kinds.Lookup(k); !found || info.Kind != kinds.Pod {
					return fmt.Errorf("logs: %q: only pods have logs (POD or pod/POD)", name)
				}
				name = n
			}
			timeout := g.timeout
			if opts.Follow {
				timeout = noTimeout
			}
			conn, ctx, cancel, err := g.connect(cmd, timeout)
			if err != nil {
				return err
			}
			defer cancel()
			err = conn.Logs(ctx, g.ns(), name, opts, g.streams.Out)
			if opts.Follow && cmd.Context().Err() != nil {
				return nil // interrupted: the way to stop following
			}
			return notFound(kinds.MustLookup(kinds.Pod), name, err)
		},
	}
	cmd.Flags().StringVarP(&opts.Container, "container", "c", "", "the container (default: the pod's only one)")
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep streaming until the container exits")
	cmd.Flags().Int64Var(&tail, "tail", -1, "lines of recent output to show (-1: all)")
	return cmd
}
