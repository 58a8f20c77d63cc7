package skiffctl

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/printers"
)

// Annotations and labels the Deployment controller writes, as Kubernetes names them.
const (
	RevisionAnnotation    = "deployment.kubernetes.io/revision"
	ChangeCauseAnnotation = "kubernetes.io/change-cause"
	PodTemplateHashLabel  = "pod-template-hash"
)

// deploymentArg resolves "deployment/NAME", "deployment NAME" or "NAME".
func deploymentArg(args []string) (string, error) {
	if len(args) == 1 && !strings.Contains(args[0], "/") {
		return args[0], nil
	}
	info, name, err := kindAndName(args)
	if err != nil {
		return "", err
	}
	if info.Kind != kinds.Deployment {
		return "", fmt.Errorf("only deployments are supported, not %s", info.Plural)
	}
	return name, nil
}

// mutateDeployment reads, changes and writes a deployment, retrying on conflicts.
func (g *globals) mutateDeployment(cmd *cobra.Command, name string, change func(*appsv1.Deployment) error) (*appsv1.Deployment, error) {
	conn, ctx, cancel, err := g.connect(cmd, g.timeout)
	if err != nil {
		return nil, err
	}
	defer cancel()
	info := kinds.MustLookup(kinds.Deployment)
	out, _, err := g.mutate(ctx, conn, target{info, g.ns(), name}, dryRunNone, func(obj kinds.Object) (kinds.Object, error) {
		return obj, change(obj.(*appsv1.Deployment))
	})
	if err != nil {
		return nil, err
	}
	return out.(*appsv1.Deployment), nil
}

func scaleCmd(g *globals) *cobra.Command {
	var replicas int32
	cmd := &cobra.Command{
		Use:   "scale (deployment|replicaset|statefulset|replicationcontroller) NAME --replicas N",
		Short: "Set a deployment's, replica set's, stateful set's or replication controller's number of replicas",
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !cmd.Flags().Changed("replicas") {
				return fmt.Errorf("--replicas is required")
			}
			if replicas < 0 {
				return fmt.Errorf("--replicas: Invalid value: %d: must be greater than or equal to 0", replicas)
			}
			info, name, err := kindAndName(args)
			if err != nil {
				return err
			}
			switch info.Kind {
			case kinds.Deployment:
				_, err = g.mutateDeployment(cmd, name, func(d *appsv1.Deployment) error {
					d.Spec.Replicas = ptr.To(replicas)
					return nil
				})
			case kinds.ReplicaSet, kinds.StatefulSet, kinds.ReplicationController:
				err = g.scaleReplicas(cmd, info, name, replicas)
			default:
				return fmt.Errorf("cannot scale %s: only deployments, replicasets, statefulsets and replicationcontrollers", info.Plural)
			}
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "%s scaled\n", ref(info, name))
			return nil
		},
	}
	cmd.Flags().Int32Var(&replicas, "replicas", 0, "the new number of replicas")
	return cmd
}

// scaleReplicas sets spec.replicas of a ReplicaSet, StatefulSet or ReplicationController.
func (g *globals) scaleReplicas(cmd *cobra.Command, info *kinds.Info, name string, replicas int32) error {
	conn, ctx, cancel, err := g.connect(cmd, g.timeout)
	if err != nil {
		return err
	}
	defer cancel()
	_, _, err = g.mutate(ctx, conn, target{info, g.ns(), name}, dryRunNone, func(obj kinds.Object) (kinds.Object, error) {
		switch o := obj.(type) {
		case *appsv1.ReplicaSet:
			o.Spec.Replicas = ptr.To(replicas)
		case *appsv1.StatefulSet:
			o.Spec.Replicas = ptr.To(replicas)
		case *corev1.ReplicationController:
			o.Spec.Replicas = ptr.To(replicas)
		}
		return obj, nil
	})
	return err
}

func setCmd(g *globals) *cobra.Command {
	set := &cobra.Command{Use: "set", Short: "Change one field of an object"}
	set.AddCommand(&cobra.Command{
		Use:   "image deployment/NAME CONTAINER=IMAGE...",
		Short: "Change the image of a deployment's containers (starts a rollout)",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args[:1])
			if err != nil {
				return err
			}
			images := map[string]string{}
			for _, a := range args[1:] {
				c, img, ok := strings.Cut(a, "=")
				if !ok || c == "" || img == "" {
					return fmt.Errorf("expected CONTAINER=IMAGE, got %q", a)
				}
				images[c] = img
			}
			_, err = g.mutateDeployment(cmd, name, func(d *appsv1.Deployment) error {
				found := map[string]bool{}
				containers := d.Spec.Template.Spec.Containers
				for i := range containers {
					c := &containers[i]
					if img, ok := images[c.Name]; ok {
						c.Image = img
						found[c.Name] = true
					} else if img, ok := images["*"]; ok {
						c.Image = img
						found["*"] = true
					}
				}
				for c := range images {
					if !found[c] {
						return fmt.Errorf("deployment %q has no container %q", name, c)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "%s image updated\n", ref(kinds.MustLookup(kinds.Deployment), name))
			return nil
		},
	})
	return set
}

func rolloutCmd(g *globals) *cobra.Command {
	r := &cobra.Command{Use: "rollout", Short: "Follow and manage the rollouts of deployments, daemonsets and statefulsets"}
	r.AddCommand(rolloutStatusCmd(g), rolloutHistoryCmd(g), rolloutUndoCmd(g), rolloutPauseCmd(g), rolloutResumeCmd(g), rolloutRestartCmd(g))
	return r
}

// deploymentCmd is a command about one deployment, named as deployment/NAME, "deployment
// NAME" or NAME.
func deploymentCmd(use, short string, run func(cmd *cobra.Command, name string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentArg(args)
			if err != nil {
				return err
			}
			return run(cmd, name)
		},
	}
}

func rolloutStatusCmd(g *globals) *cobra.Command {
	var timeout time.Duration
	status := rolloutCommand("status (deployment|daemonset|statefulset)/NAME", "Wait until a rollout is done, showing its progress", rollable,
		func(cmd *cobra.Command, info *kinds.Info, name string) error {
			return g.rolloutStatus(cmd, info, name, timeout)
		})
	status.Flags().DurationVar(&timeout, "timeout", 0, "give up after this long (0: wait until done or the progress deadline passes)")
	return status
}

func rolloutHistoryCmd(g *globals) *cobra.Command {
	var revision int64
	history := rolloutCommand("history (deployment|daemonset|statefulset)/NAME [--revision N]", "List the revisions of a rollout, or show one", rollable,
		func(cmd *cobra.Command, info *kinds.Info, name string) error {
			if info.Kind != kinds.Deployment {
				return g.revisionHistory(cmd, info, name, revision)
			}
			return g.rolloutHistory(cmd, name, revision)
		})
	history.Flags().Int64Var(&revision, "revision", 0, "show the pod template of this revision")
	return history
}

// RestartedAtAnnotation is what rollout restart sets on the pod template, as kubectl does.
const RestartedAtAnnotation = "kubectl.kubernetes.io/restartedAt"

func rolloutRestartCmd(g *globals) *cobra.Command {
	return rolloutCommand("restart (deployment|daemonset|statefulset)/NAME", "Restart the pods of a workload with a rollout", rollable,
		func(cmd *cobra.Command, info *kinds.Info, name string) error {
			if info.Kind != kinds.Deployment {
				return g.restartTemplate(cmd, info, name)
			}
			_, err := g.mutateDeployment(cmd, name, func(d *appsv1.Deployment) error {
				if d.Spec.Paused {
					return fmt.Errorf("can't restart paused deployment (run rollout resume first)")
				}
				if d.Spec.Template.Annotations == nil {
					d.Spec.Template.Annotations = map[string]string{}
				}
				d.Spec.Template.Annotations[RestartedAtAnnotation] = g.now().Format(time.RFC3339)
				return nil
			})
			if err != nil {
				return err
			}
			fmt.Fprintf(g.streams.Out, "%s restarted\n", ref(kinds.MustLookup(kinds.Deployment), name))
			return nil
		})
}

func rolloutUndoCmd(g *globals) *cobra.Command {
	var toRevision int64
	undo := rolloutCommand("undo (deployment|daemonset|statefulset)/NAME [--to-revision N]", "Roll a workload back to its previous (or a given) revision", rollable,
		func(cmd *cobra.Command, info *kinds.Info, name string) error {
			if info.Kind != kinds.Deployment {
				return g.revisionUndo(cmd, info, name, toRevision)
			}
			return g.rolloutUndo(cmd, name, toRevision)
		})
	undo.Flags().Int64Var(&toRevision, "to-revision", 0, "the revision to go back to (default: the previous one)")
	return undo
}

func rolloutPauseCmd(g *globals) *cobra.Command {
	return deploymentCmd("pause deployment/NAME", "Stop rolling out changes to a deployment",
		func(cmd *cobra.Command, name string) error { return g.setPaused(cmd, name, true) })
}

func rolloutResumeCmd(g *globals) *cobra.Command {
	return deploymentCmd("resume deployment/NAME", "Roll out a paused deployment's changes again",
		func(cmd *cobra.Command, name string) error { return g.setPaused(cmd, name, false) })
}

func (g *globals) rolloutHistory(cmd *cobra.Command, name string, revision int64) error {
	revs, _, err := g.revisions(cmd, name)
	if err != nil {
		return err
	}
	if revision > 0 {
		for _, rv := range revs {
			if rv.n == revision {
				fmt.Fprintf(g.streams.Out, "%s with revision #%d\n", ref(kinds.MustLookup(kinds.Deployment), name), revision)
				return printers.PodTemplate(g.streams.Out, &rv.rs.Spec.Template)
			}
		}
		return fmt.Errorf("unable to find the specified revision")
	}
	fmt.Fprintf(g.streams.Out, "%s\n", ref(kinds.MustLookup(kinds.Deployment), name))
	tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tCHANGE-CAUSE")
	for _, rv := range revs {
		cause := rv.rs.Annotations[ChangeCauseAnnotation]
		if cause == "" {
			cause = "<none>"
		}
		fmt.Fprintf(tw, "%d\t%s\n", rv.n, cause)
	}
	return tw.Flush()
}

// setPaused is rollout pause (paused) and rollout resume (not paused).
func (g *globals) setPaused(cmd *cobra.Command, name string, paused bool) error {
	_, err := g.mutateDeployment(cmd, name, func(d *appsv1.Deployment) error {
		d.Spec.Paused = paused
		return nil
	})
	if err != nil {
		return err
	}
	verb := "resumed"
	if paused {
		verb = "paused"
	}
	fmt.Fprintf(g.streams.Out, "%s %s\n", ref(kinds.MustLookup(kinds.Deployment), name), verb)
	return nil
}

// RolloutProgress says where a rollout stands, in kubectl's words; done when complete.
func RolloutProgress(d *appsv1.Deployment) (msg string, done bool, err error) {
	name := d.Name
	st := &d.Status
	if d.Generation > st.ObservedGeneration {
		return "Waiting for deployment spec update to be observed...\n", false, nil
	}
	for _, c := range st.Conditions {
		if c.Type == appsv1.DeploymentProgressing && c.Reason == "ProgressDeadlineExceeded" {
			return "", false, fmt.Errorf("deployment %q exceeded its progress deadline", name)
		}
	}
	switch {
	case d.Spec.Replicas != nil && st.UpdatedReplicas < *d.Spec.Replicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d out of %d new replicas have been updated...\n", name, st.UpdatedReplicas, *d.Spec.Replicas), false, nil
	case st.Replicas > st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d old replicas are pending termination...\n", name, st.Replicas-st.UpdatedReplicas), false, nil
	case st.AvailableReplicas < st.UpdatedReplicas:
		return fmt.Sprintf("Waiting for deployment %q rollout to finish: %d of %d updated replicas are available...\n", name, st.AvailableReplicas, st.UpdatedReplicas), false, nil
	}
	return fmt.Sprintf("deployment %q successfully rolled out\n", name), true, nil
}

func (g *globals) rolloutStatus(cmd *cobra.Command, info *kinds.Info, name string, timeout time.Duration) error {
	// Bounded by rollout status's own --timeout: a rollout takes as long as it takes.
	conn, ctx, cancel, err := g.connect(cmd, timeout)
	if err != nil {
		return err
	}
	defer cancel()
	last, seen := "", false
	err = watchObject(ctx, conn, target{info, g.ns(), name}, func(obj kinds.Object) (bool, error) {
		switch {
		case obj == nil && seen:
			return false, fmt.Errorf("%s %q was deleted", info.Singular, name)
		case obj == nil:
			return false, fmt.Errorf("%s %q not found", info.Singular, name)
		}
		seen = true
		msg, done, err := progress(obj)
		if err != nil {
			return false, err
		}
		if msg != last {
			fmt.Fprint(g.streams.Out, msg)
			last = msg
		}
		return done, nil
	})
	return rolloutErr(ctx, info, name, err)
}

func rolloutErr(ctx context.Context, info *kinds.Info, name string, err error) error {
	if ctx.Err() == context.DeadlineExceeded {
		return fmt.Errorf("timed out waiting for the rollout of %s %q", info.Singular, name)
	}
	return err
}

type revision struct {
	n  int64
	rs *appsv1.ReplicaSet
}

// revisions lists the deployment's ReplicaSets by revision, oldest first.
func (g *globals) revisions(cmd *cobra.Command, name string) ([]revision, *appsv1.Deployment, error) {
	conn, ctx, cancel, err := g.connect(cmd, g.timeout)
	if err != nil {
		return nil, nil, err
	}
	defer cancel()
	d, err := client.For[*appsv1.Deployment](conn).Get(ctx, g.ns(), name)
	if err != nil {
		return nil, nil, notFound(kinds.MustLookup(kinds.Deployment), name, err)
	}
	l, err := client.For[*appsv1.ReplicaSet](conn).List(ctx, g.ns(), client.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	var revs []revision
	for _, rs := range l.Items {
		if owner := metav1.GetControllerOfNoCopy(rs); owner == nil || owner.UID != d.UID {
			continue
		}
		n, err := strconv.ParseInt(rs.Annotations[RevisionAnnotation], 10, 64)
		if err != nil {
			continue
		}
		revs = append(revs, revision{n, rs})
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].n < revs[j].n })
	return revs, d, nil
}

func (g *globals) rolloutUndo(cmd *cobra.Command, name string, to int64) error {
	revs, _, err := g.revisions(cmd, name)
	if err != nil {
		return err
	}
	var target *revision
	switch {
	case to > 0:
		for i := range revs {
			if revs[i].n == to {
				target = &revs[i]
			}
		}
		if target == nil {
			return fmt.Errorf("unable to find the specified revision %d of deployment %q", to, name)
		}
	case len(revs) < 2:
		return fmt.Errorf("no rollout history found for deployment %q", name)
	default:
		target = &revs[len(revs)-2]
	}
	tmpl := target.rs.Spec.Template.DeepCopy()
	delete(tmpl.Labels, PodTemplateHashLabel)
	_, err = g.mutateDeployment(cmd, name, func(d *appsv1.Deployment) error {
		d.Spec.Template = *tmpl
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.streams.Out, "%s rolled back\n", ref(kinds.MustLookup(kinds.Deployment), name))
	return nil
}
