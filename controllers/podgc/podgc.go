// Package podgc is the pod garbage collector, as Kubernetes' PodGC: every period it
// force-deletes (grace period 0) the pods no kubelet will ever finish deleting, and
// trims finished pods. Before deleting a pod that has not finished it marks it Failed,
// so that whoever reads its last state knows it did not succeed.
//
//   - Orphaned: pods bound to a node that does not exist. A node missing from the cache
//     is quarantined first (40 s) and then confirmed missing with a live read, so that a
//     node that is being registered, or a cache that lags, costs nothing. This is also
//     how pods on a node that became unreachable end: the node lifecycle controller marks
//     them for deletion, their kubelet cannot confirm it, and once the node is deleted
//     they are orphans. Marked with the DisruptionTarget condition, reason
//     DeletionByPodGC.
//   - Terminating on an out-of-service node: pods being deleted on a node that is not
//     Ready and carries the node.kubernetes.io/out-of-service taint (an administrator's
//     word that its workloads are gone).
//   - Unscheduled terminating: pods being deleted that were never bound to a node.
//   - Terminated: when more than TerminatedPodThreshold pods have finished (Succeeded or
//     Failed), the oldest of them are deleted — evicted ones first — down to the
//     threshold.
package podgc

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
)

// Config tunes the collector. Start from DefaultConfig; New validates it.
type Config struct {
	// TerminatedPodThreshold is how many finished pods may exist before the oldest are
	// deleted; 0 or less keeps them all. Default 12,500 (Kubernetes'
	// --terminated-pod-gc-threshold).
	TerminatedPodThreshold int
	// Period between passes. Default 20s.
	Period time.Duration
	// Quarantine is how long a node missing from the cache is waited for before it is
	// confirmed missing with a live read. Default 40s.
	Quarantine time.Duration
	// Workers delete pods concurrently. Default 10.
	Workers int
	// Logger receives the collector's logs, named "podgc". Default: discarded.
	Logger hclog.Logger
	// Now is the collector's clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig has Kubernetes' values.
func DefaultConfig() Config {
	return Config{TerminatedPodThreshold: 12500, Period: 20 * time.Second, Quarantine: 40 * time.Second, Workers: 10,
		Logger: hclog.NewNullLogger(), Now: time.Now}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Period <= 0 {
		errs = append(errs, fmt.Errorf("period: %v must be positive", c.Period))
	}
	if c.Quarantine < 0 {
		errs = append(errs, fmt.Errorf("quarantine: %v must not be negative", c.Quarantine))
	}
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("now: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("pod garbage collector config: %w", err)
	}
	return nil
}

// Collector is the pod garbage collector.
type Collector struct {
	cfg    Config
	cs     *client.Clientset
	pods   *cache.Lister[*corev1.Pod]
	nodes  *cache.Lister[*corev1.Node]
	synced []interface{ HasSynced() bool }
	log    hclog.Logger
	// missing holds the nodes pods are bound to that the cache does not have, with when
	// they were first found missing (their quarantine). Only GC touches it.
	missing map[string]time.Time
}

// New makes the collector on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Collector, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	podInf := cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{})
	nodeInf := cache.InformerFor[*corev1.Node](f, "", client.ListOptions{})
	return &Collector{cfg: cfg, cs: cs, pods: podInf.Lister(), nodes: nodeInf.Lister(),
		synced: []interface{ HasSynced() bool }{podInf, nodeInf}, log: cfg.Logger.Named("podgc"), missing: map[string]time.Time{}}, nil
}

// Run collects every period until ctx ends. The factory must be started.
func (c *Collector) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.synced...) {
		return ctx.Err()
	}
	t := time.NewTicker(c.cfg.Period)
	defer t.Stop()
	for {
		if err := c.GC(ctx); err != nil && ctx.Err() == nil {
			c.log.Warn("pod garbage collection pass failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// GC makes one pass. Pods that cannot be deleted now are tried again on the next one.
func (c *Collector) GC(ctx context.Context) error {
	pods := c.pods.List(labels.Everything())
	var errs []error
	if c.cfg.TerminatedPodThreshold > 0 {
		errs = append(errs, c.deleteAll(ctx, "terminated", TerminatedOverThreshold(pods, c.cfg.TerminatedPodThreshold), nil))
	}
	var terminating, unscheduled []*corev1.Pod
	for _, p := range pods {
		if p.DeletionTimestamp == nil {
			continue
		}
		if p.Spec.NodeName == "" {
			unscheduled = append(unscheduled, p)
		} else if n, ok := c.nodes.Get("", p.Spec.NodeName); ok && outOfService(n) {
			terminating = append(terminating, p)
		}
	}
	sort.Slice(terminating, func(i, j int) bool { return olderFirst(terminating[i], terminating[j]) })
	errs = append(errs, c.deleteAll(ctx, "terminating on an out-of-service node", terminating, nil))
	orphans, err := c.orphans(ctx, pods)
	errs = append(errs, err, c.deleteAll(ctx, "orphaned", orphans, &corev1.PodCondition{Type: corev1.DisruptionTarget,
		Status: corev1.ConditionTrue, Reason: "DeletionByPodGC", Message: "PodGC: node no longer exists"}))
	errs = append(errs, c.deleteAll(ctx, "unscheduled terminating", unscheduled, nil))
	return errors.Join(errs...)
}

// orphans are the pods bound to nodes confirmed missing: absent from the cache for the
// quarantine, and then from the API servers.
func (c *Collector) orphans(ctx context.Context, pods []*corev1.Pod) ([]*corev1.Pod, error) {
	now := c.cfg.Now()
	missing := map[string]bool{}
	for _, p := range pods {
		if n := p.Spec.NodeName; n != "" {
			if _, ok := c.nodes.Get("", n); !ok {
				missing[n] = true
			}
		}
	}
	for n := range c.missing {
		if !missing[n] {
			delete(c.missing, n) // it came, or its pods went
		}
	}
	gone := map[string]bool{}
	var errs []error
	for n := range missing {
		since, ok := c.missing[n]
		if !ok {
			c.missing[n] = now
			since = now
		}
		if now.Sub(since) < c.cfg.Quarantine {
			continue
		}
		_, err := c.cs.Nodes.Get(ctx, "", n)
		switch {
		case client.IsNotFound(err):
			gone[n] = true
		case err == nil:
			delete(c.missing, n) // the cache lags: the node exists
		default:
			errs = append(errs, fmt.Errorf("get node %s: %w", n, err))
		}
	}
	var out []*corev1.Pod
	for _, p := range pods {
		if gone[p.Spec.NodeName] {
			out = append(out, p)
		}
	}
	return out, errors.Join(errs...)
}

// deleteAll force-deletes pods, each marked Failed first (and with condition, if set)
// unless it has finished.
func (c *Collector) deleteAll(ctx context.Context, why string, pods []*corev1.Pod, condition *corev1.PodCondition) error {
	if len(pods) == 0 {
		return nil
	}
	c.log.Info("garbage collecting pods", "reason", why, "pods", len(pods))
	var g errgroup.Group
	g.SetLimit(c.cfg.Workers)
	errs := make([]error, len(pods))
	for i, p := range pods {
		g.Go(func() error {
			errs[i] = c.markFailedAndDelete(ctx, p, condition)
			return nil
		})
	}
	g.Wait()
	return errors.Join(errs...)
}

func (c *Collector) markFailedAndDelete(ctx context.Context, pod *corev1.Pod, condition *corev1.PodCondition) error {
	c.log.Info("force deleting pod", "pod", cache.Key(pod), "node", pod.Spec.NodeName)
	for attempt := 0; pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed; attempt++ {
		next := pod.DeepCopy()
		next.Status.Phase = corev1.PodFailed
		if condition != nil {
			setCondition(&next.Status, *condition, c.cfg.Now())
		}
		_, err := c.cs.Pods.UpdateStatus(ctx, next)
		if err == nil {
			break
		}
		if client.IsNotFound(err) {
			return nil
		}
		if !client.IsConflict(err) || attempt == 2 {
			return fmt.Errorf("mark pod %s failed: %w", cache.Key(pod), err)
		}
		if pod, err = c.cs.Pods.Get(ctx, pod.Namespace, pod.Name); err != nil {
			if client.IsNotFound(err) {
				return nil
			}
			return fmt.Errorf("get pod %s: %w", cache.Key(pod), err)
		}
	}
	_, err := c.cs.Pods.Delete(ctx, pod.Namespace, pod.Name, client.DeleteOptions{UID: string(pod.UID), GracePeriodSeconds: ptr.To[int64](0)})
	if err != nil && !client.IsNotFound(err) && !client.IsConflict(err) {
		return fmt.Errorf("delete pod %s: %w", cache.Key(pod), err)
	}
	return nil
}

func setCondition(st *corev1.PodStatus, c corev1.PodCondition, now time.Time) {
	c.LastTransitionTime = metav1.NewTime(now)
	i := slices.IndexFunc(st.Conditions, func(old corev1.PodCondition) bool { return old.Type == c.Type })
	if i < 0 {
		st.Conditions = append(st.Conditions, c)
		return
	}
	if st.Conditions[i].Status == c.Status {
		c.LastTransitionTime = st.Conditions[i].LastTransitionTime
	}
	st.Conditions[i] = c
}

// TerminatedOverThreshold picks the finished pods to delete so that at most threshold
// remain: evicted ones first, then the oldest (Kubernetes' byEvictionAndCreationTimestamp).
func TerminatedOverThreshold(pods []*corev1.Pod, threshold int) []*corev1.Pod {
	var done []*corev1.Pod
	for _, p := range pods {
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			done = append(done, p)
		}
	}
	if len(done) <= threshold {
		return nil
	}
	sort.Slice(done, func(i, j int) bool { return olderFirst(done[i], done[j]) })
	return done[:len(done)-threshold]
}

// olderFirst orders pods evicted first, then by creation, then by name.
func olderFirst(a, b *corev1.Pod) bool {
	if ea, eb := evicted(a), evicted(b); ea != eb {
		return ea
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// evicted is the kubelet's word for a pod it evicted (Kubernetes' PodIsEvicted).
func evicted(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed && p.Status.Reason == "Evicted"
}

// outOfService says whether a node is not Ready and carries the out-of-service taint.
func outOfService(n *corev1.Node) bool {
	ready := slices.ContainsFunc(n.Status.Conditions, func(c corev1.NodeCondition) bool {
		return c.Type == corev1.NodeReady && c.Status == corev1.ConditionTrue
	})
	tainted := slices.ContainsFunc(n.Spec.Taints, func(t corev1.Taint) bool { return t.Key == corev1.TaintNodeOutOfService })
	return !ready && tainted
}
