package skiffctl

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/trace"
)

func traceCmd(g *globals) *cobra.Command {
	var format string
	var width int
	cmd := &cobra.Command{
		Use:   "trace (deployment|daemonset|statefulset|job|cronjob) NAME",
		Short: "Show the chain of events behind a workload: who did each step, when, and how long it took",
		Long: `Show the ten steps from the API server storing a Deployment to the kubelets reporting its
pods Running, for the Deployment's newest ReplicaSet: for each step the component and node
that did it, the object it wrote, and the time since the previous step. Pods are summarised
(first, median, slowest ready); steps 4-10 show the slowest pod.

A DaemonSet's or StatefulSet's chain is the same with its own controller at steps 2-5: it
writes a ControllerRevision of the template (2-3, timed by the revision's creationTimestamp,
to the second) and makes the pods of that revision itself (4-5, its SuccessfulCreate events).

A Job's chain is the same with the Job controller at steps 2-5: it starts the Job (2-3, its
status.startTime, to the second, or its first SuccessfulCreate if earlier) and makes its
pods (4-5). A CronJob's chain is its newest Job's, one step earlier: step 0 is the
scheduled time, step 1 the CronJob controller creating the Job.

Each step is timed from its most precise record. Kubernetes keeps object times (a
creationTimestamp, a condition's lastTransitionTime) to the second, and an Event's
eventTime to the microsecond: steps 2-3, 4-5, 6-7, 8 and 9 are timed by their Events
(ScalingReplicaSet, SuccessfulCreate, Scheduled, Pulled, Started), step 1 by the
Deployment's creationTimestamp (the new ReplicaSet's for a rollout) and step 10 by the
pod's Ready condition. No step is shown before the one ahead of it: a time to the second
that falls earlier is shown at the previous step's time (taking 0).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, name, err := traceArg(args)
			if err != nil {
				return err
			}
			switch format {
			case "", "text", "json", "svg", "html":
			default:
				return fmt.Errorf("--output: Unsupported value: %q: supported values: text, json, svg, html", format)
			}
			conn, ctx, cancel, err := g.connect(cmd, g.timeout)
			if err != nil {
				return err
			}
			defer cancel()
			var t *trace.Trace
			if info.Kind == kinds.Deployment {
				t, err = trace.Fetch(ctx, client.NewClientset(conn), g.ns(), name)
			} else if info.Kind == kinds.Job || info.Kind == kinds.CronJob {
				t, err = trace.FetchJob(ctx, client.NewClientset(conn), info.Kind, g.ns(), name)
			} else {
				t, err = trace.FetchWorkload(ctx, client.NewClientset(conn), info.Kind, g.ns(), name)
			}
			if err != nil {
				return err
			}
			switch format {
			case "json":
				return trace.WriteJSON(g.streams.Out, t)
			case "svg":
				return trace.WriteSVG(g.streams.Out, t)
			case "html":
				return trace.WriteHTML(g.streams.Out, t)
			}
			return trace.WriteText(g.streams.Out, t, width)
		},
	}
	cmd.Flags().StringVarP(&format, "output", "o", "", "output format: text (default), json, or a self-contained diagram: svg or html (redirect to a file)")
	cmd.Flags().IntVar(&width, "width", 80, "columns of the text timeline")
	return cmd
}

// traceArg reads what to trace: NAME (a deployment), or KIND NAME or KIND/NAME of a
// deployment, daemonset, statefulset, job or cronjob.
func traceArg(args []string) (*kinds.Info, string, error) {
	if len(args) == 1 && !strings.Contains(args[0], "/") {
		return kinds.MustLookup(kinds.Deployment), args[0], nil
	}
	info, name, err := kindAndName(args)
	if err != nil {
		return nil, "", err
	}
	switch info.Kind {
	case kinds.Deployment, kinds.DaemonSet, kinds.StatefulSet, kinds.Job, kinds.CronJob:
		return info, name, nil
	}
	return nil, "", fmt.Errorf("only deployments, daemonsets, statefulsets, jobs and cronjobs are supported, not %s", info.Plural)
}
