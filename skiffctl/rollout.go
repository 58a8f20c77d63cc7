package skiffctl

import (
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/skiffctl/printers"
)

// The rollout verbs of DaemonSets and StatefulSets, whose revisions are ControllerRevisions
// holding a strategic merge patch of the object's pod template, as kubectl treats them
// (its DaemonSetHistoryViewer, DaemonSetRollbacker and the StatefulSet ones).

// rolloutArg resolves "KIND/NAME", "KIND NAME" or NAME (a deployment) to a kind the
// verb serves.
func rolloutArg(args []string, allowed ...string) (*kinds.Info, string, error) {
	if len(args) == 1 && !strings.Contains(args[0], "/") {
		return kinds.MustLookup(kinds.Deployment), args[0], nil
	}
	info, name, err := kindAndName(args)
	if err != nil {
		return nil, "", err
	}
	for _, k := range allowed {
		if info.Kind == k {
			return info, name, nil
		}
	}
	return nil, "", fmt.Errorf("no rollout support for %s", info.Plural)
}

// rolloutCommand is a rollout verb about one object of the kinds given.
func rolloutCommand(use, short string, allowed []string, run func(cmd *cobra.Command, info *kinds.Info, name string) error) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, name, err := rolloutArg(args, allowed...)
			if err != nil {
				return err
			}
			return run(cmd, info, name)
		},
	}
}

// rollable are the kinds rollout status, history, undo and restart serve.
var rollable = []string{kinds.Deployment, kinds.DaemonSet, kinds.StatefulSet}

// DaemonSetProgress says where a DaemonSet's rollout stands, in kubectl's words.
func DaemonSetProgress(ds *appsv1.DaemonSet) (msg string, done bool, err error) {
	if ds.Spec.UpdateStrategy.Type != appsv1.RollingUpdateDaemonSetStrategyType {
		return "", true, fmt.Errorf("rollout status is only available for %s strategy type", appsv1.RollingUpdateDaemonSetStrategyType)
	}
	st := &ds.Status
	switch {
	case ds.Generation > st.ObservedGeneration:
		return "Waiting for daemon set spec update to be observed...\n", false, nil
	case st.UpdatedNumberScheduled < st.DesiredNumberScheduled:
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d out of %d new pods have been updated...\n", ds.Name,
			st.UpdatedNumberScheduled, st.DesiredNumberScheduled), false, nil
	case st.NumberAvailable < st.DesiredNumberScheduled:
		return fmt.Sprintf("Waiting for daemon set %q rollout to finish: %d of %d updated pods are available...\n", ds.Name,
			st.NumberAvailable, st.DesiredNumberScheduled), false, nil
	}
	return fmt.Sprintf("daemon set %q successfully rolled out\n", ds.Name), true, nil
}

// StatefulSetProgress says where a StatefulSet's rollout stands, in kubectl's words.
func StatefulSetProgress(s *appsv1.StatefulSet) (msg string, done bool, err error) {
	if s.Spec.UpdateStrategy.Type != appsv1.RollingUpdateStatefulSetStrategyType {
		return "", true, fmt.Errorf("rollout status is only available for %s strategy type", appsv1.RollingUpdateStatefulSetStrategyType)
	}
	st := &s.Status
	if st.ObservedGeneration == 0 || s.Generation > st.ObservedGeneration {
		return "Waiting for statefulset spec update to be observed...\n", false, nil
	}
	if s.Spec.Replicas != nil && st.ReadyReplicas < *s.Spec.Replicas {
		return fmt.Sprintf("Waiting for %d pods to be ready...\n", *s.Spec.Replicas-st.ReadyReplicas), false, nil
	}
	if ru := s.Spec.UpdateStrategy.RollingUpdate; ru != nil && ru.Partition != nil && *ru.Partition > 0 && s.Spec.Replicas != nil {
		if st.UpdatedReplicas < *s.Spec.Replicas-*ru.Partition {
			return fmt.Sprintf("Waiting for partitioned roll out to finish: %d out of %d new pods have been updated...\n",
				st.UpdatedReplicas, *s.Spec.Replicas-*ru.Partition), false, nil
		}
		return fmt.Sprintf("partitioned roll out complete: %d new pods have been updated...\n", st.UpdatedReplicas), true, nil
	}
	if st.UpdateRevision != st.CurrentRevision {
		return fmt.Sprintf("waiting for statefulset rolling update to complete %d pods at revision %s...\n", st.UpdatedReplicas,
			st.UpdateRevision), false, nil
	}
	return fmt.Sprintf("statefulset rolling update complete %d pods at revision %s...\n", st.CurrentReplicas, st.CurrentRevision), true, nil
}

// progress is the rollout progress of any rollable object.
func progress(obj kinds.Object) (string, bool, error) {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		return RolloutProgress(o)
	case *appsv1.DaemonSet:
		return DaemonSetProgress(o)
	case *appsv1.StatefulSet:
		return StatefulSetProgress(o)
	}
	return "", true, fmt.Errorf("no rollout support for %s", kinds.Of(obj).Plural)
}

// controllerRevisions reads the object and the ControllerRevisions it controls, oldest
// first.
func (g *globals) controllerRevisions(cmd *cobra.Command, info *kinds.Info, name string) (kinds.Object, []*appsv1.ControllerRevision, error) {
	conn, ctx, cancel, err := g.connect(cmd, g.timeout)
	if err != nil {
		return nil, nil, err
	}
	defer cancel()
	obj, err := client.ForKind(conn, info).Get(ctx, g.ns(), name)
	if err != nil {
		return nil, nil, notFound(info, name, err)
	}
	l, err := client.For[*appsv1.ControllerRevision](conn).List(ctx, g.ns(), client.ListOptions{})
	if err != nil {
		return nil, nil, err
	}
	var revs []*appsv1.ControllerRevision
	for _, r := range l.Items {
		if metav1.IsControlledBy(r, obj) {
			revs = append(revs, r)
		}
	}
	sort.SliceStable(revs, func(i, j int) bool { return revs[i].Revision < revs[j].Revision })
	return obj, revs, nil
}

// revisionTemplate is the pod template rev holds: its patch applied to obj.
func revisionTemplate(obj kinds.Object, rev *appsv1.ControllerRevision) (*corev1.PodTemplateSpec, error) {
	out, err := kinds.Patch(obj, kinds.StrategicMergePatch, rev.Data.Raw)
	if err != nil {
		return nil, fmt.Errorf("revision %s: %w", rev.Name, err)
	}
	return podTemplate(out), nil
}

func podTemplate(obj kinds.Object) *corev1.PodTemplateSpec {
	switch o := obj.(type) {
	case *appsv1.DaemonSet:
		return &o.Spec.Template
	case *appsv1.StatefulSet:
		return &o.Spec.Template
	case *appsv1.Deployment:
		return &o.Spec.Template
	}
	return nil
}

// revisionHistory is rollout history of a DaemonSet or StatefulSet.
func (g *globals) revisionHistory(cmd *cobra.Command, info *kinds.Info, name string, revision int64) error {
	obj, revs, err := g.controllerRevisions(cmd, info, name)
	if err != nil {
		return err
	}
	if revision > 0 {
		for _, r := range revs {
			if r.Revision == revision {
				tmpl, err := revisionTemplate(obj, r)
				if err != nil {
					return err
				}
				fmt.Fprintf(g.streams.Out, "%s with revision #%d\n", ref(info, name), revision)
				return printers.PodTemplate(g.streams.Out, tmpl)
			}
		}
		return fmt.Errorf("unable to find the specified revision")
	}
	fmt.Fprintf(g.streams.Out, "%s\n", ref(info, name))
	tw := tabwriter.NewWriter(g.streams.Out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tCHANGE-CAUSE")
	for _, r := range revs {
		cause := r.Annotations[ChangeCauseAnnotation]
		if cause == "" {
			cause = "<none>"
		}
		fmt.Fprintf(tw, "%d\t%s\n", r.Revision, cause)
	}
	return tw.Flush()
}

// revisionUndo is rollout undo of a DaemonSet or StatefulSet: the revision's template
// (the previous one by default) becomes the object's again.
func (g *globals) revisionUndo(cmd *cobra.Command, info *kinds.Info, name string, to int64) error {
	obj, revs, err := g.controllerRevisions(cmd, info, name)
	if err != nil {
		return err
	}
	var target *appsv1.ControllerRevision
	switch {
	case to > 0:
		for _, r := range revs {
			if r.Revision == to {
				target = r
			}
		}
		if target == nil {
			return fmt.Errorf("unable to find specified revision %d in history", to)
		}
	case len(revs) < 2:
		return fmt.Errorf("no last revision to roll back to")
	default:
		target = revs[len(revs)-2]
	}
	tmpl, err := revisionTemplate(obj, target)
	if err != nil {
		return err
	}
	if equality.Semantic.DeepEqual(tmpl, podTemplate(obj)) {
		fmt.Fprintf(g.streams.Out, "%s skipped rollback (current template already matches revision %d)\n", ref(info, name), target.Revision)
		return nil
	}
	if err := g.changeTemplate(cmd, info, name, func(t *corev1.PodTemplateSpec) { *t = *tmpl.DeepCopy() }); err != nil {
		return err
	}
	fmt.Fprintf(g.streams.Out, "%s rolled back\n", ref(info, name))
	return nil
}

// changeTemplate changes the pod template of a rollable object, retrying on conflicts.
func (g *globals) changeTemplate(cmd *cobra.Command, info *kinds.Info, name string, change func(*corev1.PodTemplateSpec)) error {
	conn, ctx, cancel, err := g.connect(cmd, g.timeout)
	if err != nil {
		return err
	}
	defer cancel()
	_, _, err = g.mutate(ctx, conn, target{info, g.ns(), name}, dryRunNone, func(obj kinds.Object) (kinds.Object, error) {
		change(podTemplate(obj))
		return obj, nil
	})
	return err
}

// restartTemplate is rollout restart of a DaemonSet or StatefulSet.
func (g *globals) restartTemplate(cmd *cobra.Command, info *kinds.Info, name string) error {
	err := g.changeTemplate(cmd, info, name, func(t *corev1.PodTemplateSpec) {
		if t.Annotations == nil {
			t.Annotations = map[string]string{}
		}
		t.Annotations[RestartedAtAnnotation] = g.now().Format(time.RFC3339)
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(g.streams.Out, "%s restarted\n", ref(info, name))
	return nil
}
