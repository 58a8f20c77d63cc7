package skiffctl

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// drain is kubectl's (k8s.io/kubectl/pkg/drain and cmd/drain): cordon the node, then
// evict every pod on it through the eviction subresource, which respects
// PodDisruptionBudgets — a refused eviction is retried every 5 seconds until the
// timeout — and wait for each pod to be gone. Pods kubectl would not remove without a
// flag stop the drain before anything is evicted: DaemonSet pods
// (--ignore-daemonsets skips them), pods with emptyDir volumes
// (--delete-emptydir-data), pods without a controller (--force). Its output lines are
// kubectl's.

// Messages of kubectl's pod filters.
const (
	daemonSetFatal      = "DaemonSet-managed Pods (use --ignore-daemonsets to ignore)"
	daemonSetWarning    = "ignoring DaemonSet-managed Pods"
	localStorageFatal   = "Pods with local storage (use --delete-emptydir-data to override)"
	localStorageWarning = "deleting Pods with local storage"
	unmanagedFatal      = "cannot delete Pods that declare no controller (use --force to override)"
	unmanagedWarning    = "deleting Pods that declare no controller"
)

// drainer holds a drain's options and its outputs, which the pods' goroutines share.
type drainer struct {
	conn                     *client.Conn
	force, ignoreDaemonSets  bool
	deleteEmptyDirData       bool
	disableEviction          bool
	gracePeriod              int
	timeout                  time.Duration
	podSelector              string
	skipWaitForDeleteTimeout int
	dryRun                   string // none, client, server
	// retryInterval is the wait after a refused eviction, pollInterval between looks at
	// a pod that is going (kubectl's 5s and 1s).
	retryInterval, pollInterval time.Duration
	now                         func() time.Time
	// getDaemonSet reads the DaemonSet of a pod (nil: through conn).
	getDaemonSet func(ctx context.Context, namespace, name string) error

	mu          sync.Mutex
	out, errOut io.Writer
}

func (d *drainer) printf(w io.Writer, format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(w, format, args...)
}

func drainCmd(g *globals) *cobra.Command {
	d := &drainer{retryInterval: 5 * time.Second, pollInterval: time.Second, now: g.now}
	var nodeSelector string
	cmd := &cobra.Command{
		Use:   "drain NODE",
		Short: "Drain a node in preparation for maintenance",
		Long: `Drain a node in preparation for maintenance, as kubectl drain does.

The node is cordoned (marked unschedulable), then every pod on it is evicted through the
eviction API, which respects PodDisruptionBudgets: an eviction the budget refuses is
retried every 5 seconds until --timeout. The command returns once every pod is gone.

Some pods are not removed without a flag, and stop the drain before anything is
evicted: pods of a DaemonSet (--ignore-daemonsets leaves them running), pods with
emptyDir volumes (--delete-emptydir-data deletes their data), and pods that no
controller owns, which nothing would recreate (--force).`,
		Example: `  skiffctl drain w1 --ignore-daemonsets
  skiffctl drain w1 --ignore-daemonsets --delete-emptydir-data --force --timeout 5m`,
		Args: cobra.RangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case len(args) == 0 && nodeSelector == "":
				return errors.New("USAGE: drain NODE [flags]")
			case len(args) == 1 && nodeSelector != "":
				return errors.New("error: cannot specify both a node name and a --selector option")
			}
			switch d.dryRun {
			case "none", "client", "server":
			default:
				return fmt.Errorf(`Invalid dry-run value (%s). Must be "none", "server", or "client".`, d.dryRun)
			}
			if d.timeout < 0 {
				return fmt.Errorf("--timeout: Invalid value: %v: must not be negative", d.timeout)
			}
			conn, ctx, cancel, err := g.connect(cmd, noTimeout)
			if err != nil {
				return err
			}
			defer cancel()
			d.conn, d.out, d.errOut = conn, g.streams.Out, g.streams.Err
			nodes, err := d.nodes(ctx, args, nodeSelector)
			if err != nil {
				return err
			}
			return d.run(ctx, nodes)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&d.force, "force", false, "Continue even if there are pods that do not declare a controller.")
	f.BoolVar(&d.ignoreDaemonSets, "ignore-daemonsets", false, "Ignore DaemonSet-managed pods.")
	f.BoolVar(&d.deleteEmptyDirData, "delete-emptydir-data", false, "Continue even if there are pods using emptyDir (local data that will be deleted when the node is drained).")
	f.BoolVar(&d.disableEviction, "disable-eviction", false, "Force drain to use delete, even if eviction is supported. This will bypass checking PodDisruptionBudgets, use with caution.")
	f.IntVar(&d.gracePeriod, "grace-period", -1, "Period of time in seconds given to each pod to terminate gracefully. If negative, the default value specified in the pod will be used.")
	f.DurationVar(&d.timeout, "timeout", 0, "The length of time to wait before giving up, zero means infinite")
	f.StringVar(&d.podSelector, "pod-selector", "", "Label selector to filter pods on the node")
	f.StringVarP(&nodeSelector, "selector", "l", "", "Selector (label query) to filter on")
	f.IntVar(&d.skipWaitForDeleteTimeout, "skip-wait-for-delete-timeout", 0, "If pod DeletionTimestamp older than N seconds, skip waiting for the pod.  Seconds must be greater than 0 to skip.")
	f.StringVar(&d.dryRun, "dry-run", "none", `Must be "none", "server", or "client". If client strategy, only print the object that would be sent, without sending it. If server strategy, submit server-side request without persisting the resource.`)
	f.Lookup("dry-run").NoOptDefVal = "client"
	return cmd
}

// nodes resolves the nodes to drain: the one named, or those the selector picks.
func (d *drainer) nodes(ctx context.Context, args []string, selector string) ([]*corev1.Node, error) {
	nodes := client.For[*corev1.Node](d.conn)
	if len(args) == 1 {
		n, err := nodes.Get(ctx, "", args[0])
		if err != nil {
			return nil, notFound(kinds.MustLookup(kinds.Node), args[0], err)
		}
		return []*corev1.Node{n}, nil
	}
	l, err := nodes.List(ctx, "", client.ListOptions{LabelSelector: selector})
	if err != nil {
		return nil, err
	}
	if len(l.Items) == 0 {
		return nil, errors.New("No resources found")
	}
	return l.Items, nil
}

// dryRunSuffix is what kubectl appends to a line that did nothing.
func (d *drainer) dryRunSuffix() string {
	switch d.dryRun {
	case "client":
		return " (dry run)"
	case "server":
		return " (server dry run)"
	}
	return ""
}

// run cordons every node, then drains them one by one, as kubectl's RunDrain.
func (d *drainer) run(ctx context.Context, nodes []*corev1.Node) error {
	for _, n := range nodes {
		already, err := d.cordon(ctx, n.Name)
		if err != nil {
			return err
		}
		verb := "cordoned"
		if already {
			verb = "already cordoned"
		}
		d.printf(d.out, "node/%s %s%s\n", n.Name, verb, d.dryRunSuffix())
	}
	var fatal []error
	var remaining []string
	for _, n := range nodes {
		if err := d.drain(ctx, n.Name); err != nil {
			d.printf(d.errOut, "error: unable to drain node %q due to error: %s, continuing command...\n", n.Name, err)
			fatal = append(fatal, err)
			remaining = append(remaining, n.Name)
			continue
		}
		d.printf(d.out, "node/%s drained%s\n", n.Name, d.dryRunSuffix())
	}
	if len(remaining) > 0 {
		d.printf(d.errOut, "There are pending nodes to be drained:\n")
		for _, n := range remaining {
			d.printf(d.errOut, " %s\n", n)
		}
	}
	return utilerrors.NewAggregate(fatal)
}

// cordon marks a node unschedulable, and says whether it was already. A client dry run
// changes nothing; so does a server one, as the API has no dry-run update.
func (d *drainer) cordon(ctx context.Context, name string) (already bool, err error) {
	nodes := client.For[*corev1.Node](d.conn)
	for {
		n, err := nodes.Get(ctx, "", name)
		if err != nil {
			return false, notFound(kinds.MustLookup(kinds.Node), name, err)
		}
		if n.Spec.Unschedulable {
			return true, nil
		}
		if d.dryRun != "none" {
			return false, nil
		}
		n.Spec.Unschedulable = true
		_, err = nodes.Update(ctx, n)
		if client.IsConflict(err) {
			continue
		}
		return false, err
	}
}

// podDelete is a pod on the node and what the filters decided for it.
type podDelete struct {
	pod     *corev1.Pod
	delete  bool
	status  string // "" (okay), "warning", "error" or "skip"
	message string
}

// podsForDeletion lists the node's pods and runs kubectl's filters over each; an error
// is every pod a flag is needed for.
func (d *drainer) podsForDeletion(ctx context.Context, node string) ([]podDelete, error) {
	l, err := client.For[*corev1.Pod](d.conn).List(ctx, "", client.ListOptions{LabelSelector: d.podSelector, FieldSelector: "spec.nodeName=" + node})
	if err != nil {
		return nil, err
	}
	var out []podDelete
	for _, p := range l.Items {
		out = append(out, d.filter(ctx, p))
	}
	var errs []error
	for _, g := range grouped(out, "error") {
		errs = append(errs, fmt.Errorf("cannot delete %s", g))
	}
	return out, utilerrors.NewAggregate(errs)
}

// grouped lists, for the pods whose verdict has status, each message with the pods it
// is about ("msg: ns/a, ns/b"), in the order of the messages.
func grouped(pods []podDelete, status string) []string {
	byMsg := map[string][]string{}
	for _, pd := range pods {
		if pd.status == status {
			byMsg[pd.message] = append(byMsg[pd.message], pd.pod.Namespace+"/"+pd.pod.Name)
		}
	}
	var out []string
	for _, msg := range slices.Sorted(maps.Keys(byMsg)) {
		out = append(out, msg+": "+strings.Join(byMsg[msg], ", "))
	}
	return out
}

// filter runs kubectl's filters over a pod, in kubectl's order, stopping at the first
// that keeps it.
func (d *drainer) filter(ctx context.Context, p *corev1.Pod) podDelete {
	var pd podDelete
	for _, filter := range []func(context.Context, *corev1.Pod) podDelete{d.skipDeletedFilter, d.daemonSetFilter, mirrorPodFilter, d.localStorageFilter, d.unreplicatedFilter} {
		if pd = filter(ctx, p); !pd.delete {
			break
		}
	}
	pd.pod = p
	return pd
}

// The filters' verdicts: delete; delete (or not) with a warning; a flag is needed.
func okay() podDelete { return podDelete{delete: true} }
func withWarning(del bool, msg string) podDelete {
	return podDelete{delete: del, status: "warning", message: msg}
}
func needsFlag(msg string) podDelete { return podDelete{status: "error", message: msg} }

func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed
}

// skipDeleted skips a pod deleted more than --skip-wait-for-delete-timeout seconds ago.
func (d *drainer) skipDeleted(p *corev1.Pod) bool {
	return d.skipWaitForDeleteTimeout > 0 && p.DeletionTimestamp != nil &&
		int(d.now().Sub(p.DeletionTimestamp.Time).Seconds()) > d.skipWaitForDeleteTimeout
}

func (d *drainer) skipDeletedFilter(_ context.Context, p *corev1.Pod) podDelete {
	if d.skipDeleted(p) {
		return podDelete{status: "skip"}
	}
	return okay()
}

// daemonSetFilter leaves DaemonSet pods alone, with --ignore-daemonsets, or stops the
// drain. A pod whose DaemonSet is gone is deleted with --force.
func (d *drainer) daemonSetFilter(ctx context.Context, p *corev1.Pod) podDelete {
	ref := metav1.GetControllerOfNoCopy(p)
	if ref == nil || ref.Kind != kinds.DaemonSet || finished(p) {
		return okay()
	}
	get := d.getDaemonSet
	if get == nil {
		get = func(ctx context.Context, ns, name string) error {
			_, err := client.For[*appsv1.DaemonSet](d.conn).Get(ctx, ns, name)
			return err
		}
	}
	if err := get(ctx, p.Namespace, ref.Name); err != nil {
		if client.IsNotFound(err) && d.force {
			return withWarning(true, fmt.Sprintf("daemonsets.apps %q not found", ref.Name))
		}
		return needsFlag(Message(err))
	}
	if !d.ignoreDaemonSets {
		return needsFlag(daemonSetFatal)
	}
	return withWarning(false, daemonSetWarning)
}

// mirrorPodFilter skips static pods' mirrors: their kubelet owns them.
func mirrorPodFilter(_ context.Context, p *corev1.Pod) podDelete {
	if _, ok := p.Annotations[corev1.MirrorPodAnnotationKey]; ok {
		return podDelete{status: "skip"}
	}
	return okay()
}

func (d *drainer) localStorageFilter(_ context.Context, p *corev1.Pod) podDelete {
	if !slices.ContainsFunc(p.Spec.Volumes, func(v corev1.Volume) bool { return v.EmptyDir != nil }) || finished(p) {
		return okay()
	}
	if !d.deleteEmptyDirData {
		return needsFlag(localStorageFatal)
	}
	return withWarning(true, localStorageWarning)
}

func (d *drainer) unreplicatedFilter(_ context.Context, p *corev1.Pod) podDelete {
	if finished(p) || metav1.GetControllerOfNoCopy(p) != nil {
		return okay()
	}
	if d.force {
		return withWarning(true, unmanagedWarning)
	}
	return needsFlag(unmanagedFatal)
}

// warnings is kubectl's summary of the pods a flag let through or left alone.
func warnings(pods []podDelete) string { return strings.Join(grouped(pods, "warning"), "; ") }

// drain removes the pods of one node (kubectl's deleteOrEvictPodsSimple).
func (d *drainer) drain(ctx context.Context, node string) error {
	list, err := d.podsForDeletion(ctx, node)
	if err != nil {
		return err
	}
	if w := warnings(list); w != "" {
		d.printf(d.errOut, "Warning: %s\n", w)
	}
	var pods []*corev1.Pod
	for _, pd := range list {
		if pd.delete {
			pods = append(pods, pd.pod)
		}
	}
	if d.dryRun == "client" {
		for _, p := range pods {
			d.printf(d.out, "evicting pod %s/%s (dry run)\n", p.Namespace, p.Name)
		}
		return nil
	}
	if d.disableEviction {
		err = d.deletePods(ctx, pods)
	} else {
		err = d.evictPods(ctx, pods)
	}
	if err == nil {
		return nil
	}
	if pending, _ := d.podsForDeletion(ctx, node); len(pending) > 0 {
		d.printf(d.errOut, "There are pending pods in node %q when an error occurred: %v\n", node, err)
		for _, pd := range pending {
			d.printf(d.errOut, "pod/%s\n", pd.pod.Name)
		}
	}
	return err
}

// globalTimeout is --timeout, 0 meaning none.
func (d *drainer) globalTimeout() time.Duration {
	if d.timeout == 0 {
		return time.Duration(math.MaxInt64)
	}
	return d.timeout
}

// evictPods evicts every pod at once, each retried while its budget refuses, and waits
// for each to be gone.
func (d *drainer) evictPods(ctx context.Context, pods []*corev1.Pod) error {
	ctx, cancel := context.WithTimeout(ctx, d.globalTimeout())
	defer cancel()
	errs := make([]error, len(pods))
	var wg sync.WaitGroup
	for i, p := range pods {
		wg.Go(func() { errs[i] = d.evictPod(ctx, p) })
	}
	wg.Wait()
	return utilerrors.NewAggregate(errs)
}

func (d *drainer) evictPod(ctx context.Context, pod *corev1.Pod) error {
	opts := client.EvictOptions{DryRun: d.dryRun == "server"}
	if d.gracePeriod >= 0 {
		opts.GracePeriodSeconds = new(int64(d.gracePeriod))
	}
	for {
		d.printf(d.out, "evicting pod %s/%s%s\n", pod.Namespace, pod.Name, d.dryRunSuffix())
		if ctx.Err() != nil {
			return fmt.Errorf("error when evicting pods/%q -n %q: global timeout reached: %v", pod.Name, pod.Namespace, d.timeout)
		}
		_, err := d.conn.Evict(ctx, pod.Namespace, pod.Name, opts)
		switch {
		case err == nil:
		case client.IsNotFound(err):
			return nil
		case client.IsTooManyRequests(err) && ctx.Err() == nil:
			d.printf(d.errOut, "error when evicting pods/%q -n %q (will retry after %v): %s\n", pod.Name, pod.Namespace, d.retryInterval, Message(err))
			select {
			case <-ctx.Done():
			case <-time.After(d.retryInterval):
			}
			continue
		case ctx.Err() != nil:
			return fmt.Errorf("error when evicting pods/%q -n %q: global timeout reached: %v", pod.Name, pod.Namespace, d.timeout)
		default:
			return fmt.Errorf("error when evicting pods/%q -n %q: %s", pod.Name, pod.Namespace, Message(err))
		}
		break
	}
	if d.dryRun == "server" {
		return nil
	}
	if _, err := d.waitForDelete(ctx, []*corev1.Pod{pod}, "evicted"); err != nil {
		return fmt.Errorf("error when waiting for pod %q in namespace %q to terminate: %v", pod.Name, pod.Namespace, err)
	}
	return nil
}

// deletePods deletes every pod (--disable-eviction: no budget is asked) and waits for
// them to be gone.
func (d *drainer) deletePods(ctx context.Context, pods []*corev1.Pod) error {
	ctx, cancel := context.WithTimeout(ctx, d.globalTimeout())
	defer cancel()
	opts := client.DeleteOptions{}
	if d.gracePeriod >= 0 {
		opts.GracePeriodSeconds = new(int64(d.gracePeriod))
	}
	for _, p := range pods {
		if d.dryRun == "server" {
			d.printf(d.out, "delete pod %s/%s (server dry run)\n", p.Namespace, p.Name)
			continue
		}
		if _, err := client.For[*corev1.Pod](d.conn).Delete(ctx, p.Namespace, p.Name, opts); err != nil && !client.IsNotFound(err) {
			return fmt.Errorf("error when deleting pod %q in namespace %q: %s", p.Name, p.Namespace, Message(err))
		}
	}
	if d.dryRun == "server" {
		return nil
	}
	pending, err := d.waitForDelete(ctx, pods, "deleted")
	if err != nil {
		return err
	}
	if len(pending) > 0 {
		return fmt.Errorf("%d pods failed to be deleted", len(pending))
	}
	return nil
}

// waitForDelete waits until every pod is gone (or replaced by another of its name),
// printing "pod/NAME verb" for each, and returns those still there when it stopped.
func (d *drainer) waitForDelete(ctx context.Context, pods []*corev1.Pod, verb string) ([]*corev1.Pod, error) {
	podClient := client.For[*corev1.Pod](d.conn)
	for {
		var pending []*corev1.Pod
		for _, p := range pods {
			cur, err := podClient.Get(ctx, p.Namespace, p.Name)
			switch {
			case client.IsNotFound(err) || err == nil && cur.UID != p.UID:
				d.printf(d.out, "pod/%s %s\n", p.Name, verb)
			case err != nil && ctx.Err() != nil:
				return pods, fmt.Errorf("global timeout reached: %v", d.timeout)
			case err != nil:
				return pods, err
			case d.skipDeleted(cur):
				d.printf(d.out, "Pod %s has DeletionTimestamp older than %v seconds, skipping\n", p.Name, d.skipWaitForDeleteTimeout)
			default:
				pending = append(pending, p)
			}
		}
		pods = pending
		if len(pods) == 0 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return pods, fmt.Errorf("global timeout reached: %v", d.timeout)
		case <-time.After(d.pollInterval):
		}
	}
}
