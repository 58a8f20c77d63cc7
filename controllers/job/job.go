// Package job is the Job controller: it runs a Job's pods to completion, as Kubernetes'
// does. It keeps up to parallelism pods running until completions of them succeed (for
// an Indexed Job, one per completion index, which each pod finds in its annotation,
// label and JOB_COMPLETION_INDEX); it replaces failed pods after an exponential back-off
// until backoffLimit (or, per index, backoffLimitPerIndex) is passed, applying the pod
// failure policy's rules first; it fails a Job active longer than activeDeadlineSeconds,
// deletes the pods of a suspended Job, ends a Job early when its success policy is met,
// and writes the status: counts, startTime, completionTime, the completed and failed
// indexes, and the conditions SuccessCriteriaMet or FailureTarget, then Complete or
// Failed once no pod is left running. It claims its pods as Kubernetes' does: a
// matching orphan is adopted with the tracking finalizer, a pod whose labels no longer
// match is released without it.
//
// Every pod it makes carries the finalizer batch.kubernetes.io/job-tracking, so that
// no finished pod goes away uncounted. A finished pod is counted in three steps, each
// durable before the next, which is what keeps a count exact across a controller-manager
// failover: its uid goes into status.uncountedTerminatedPods (an Indexed Job's success
// straight into status.completedIndexes, a set), then its finalizer is removed, then the
// uid moves from the uncounted list to the succeeded or failed count. A pod without
// the finalizer is never counted again; a pod whose finalizer turns out to be gone
// already when the controller removes it was counted before, from an older cache.
package job

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/controllers/internal/controllerref"
	"github.com/skiffhq/skiff/controllers/internal/expectations"
	"github.com/skiffhq/skiff/controllers/internal/slowstart"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/kinds/indexes"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers reconcile different Jobs concurrently. Default 5.
	Workers int
	// BurstPods caps the pods one sync creates or deletes, and MaxUncountedPods the
	// finished pods one sync counts (Kubernetes: 500 and 500).
	BurstPods, MaxUncountedPods int
	// ExpectationsTimeout: after this long, unseen creations and deletions are given up
	// on. Default 5 minutes.
	ExpectationsTimeout time.Duration
	// BackoffBase and BackoffMax: the n-th failed pod in a row delays the next by
	// BackoffBase·2^(n-1), at most BackoffMax (Kubernetes: 10 s and 6 min).
	BackoffBase, BackoffMax time.Duration
	// Logger receives the controller's logs, named "job". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Workers: 5, BurstPods: 500, MaxUncountedPods: 500, ExpectationsTimeout: 5 * time.Minute,
		BackoffBase: 10 * time.Second, BackoffMax: 6 * time.Minute, Logger: hclog.NewNullLogger(), Now: time.Now}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.BurstPods < 1 || c.MaxUncountedPods < 1 {
		errs = append(errs, fmt.Errorf("burstPods (%d) and maxUncountedPods (%d) must be at least 1", c.BurstPods, c.MaxUncountedPods))
	}
	if c.ExpectationsTimeout <= 0 {
		errs = append(errs, fmt.Errorf("expectationsTimeout: %v must be positive", c.ExpectationsTimeout))
	}
	if c.BackoffBase < 0 || c.BackoffMax < c.BackoffBase {
		errs = append(errs, fmt.Errorf("backoff: base %v must not be negative nor above max %v", c.BackoffBase, c.BackoffMax))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("now: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("job controller config: %w", err)
	}
	return nil
}

// Controller is the Job controller.
type Controller struct {
	cfg    Config
	cs     *client.Clientset
	jobInf *cache.Informer[*batchv1.Job]
	podInf *cache.Informer[*corev1.Pod]
	jobs   *cache.Lister[*batchv1.Job]
	pods   *cache.Lister[*corev1.Pod]
	queue  *workqueue.Queue
	exp    *expectations.Expectations
	rec    *record.Recorder
	log    hclog.Logger

	mu sync.Mutex
	// released: per Job, the pods whose finalizer this controller removed and whose
	// cache entry still shows it (Kubernetes' finalizer expectations).
	released map[string]map[types.UID]bool
	// backoff: per Job, the failures in a row and when the last one happened.
	backoff map[string]backoffRecord
	// unseen: per Indexed Job, the pods this controller made that its cache has not
	// shown yet, by name, with their index. A sync that waits only on these counts them
	// active, their indexes taken, and makes the pods of other indexes: Kubernetes'
	// controller waits for them instead, and that left every other sync making none.
	unseen map[string]map[string]int
	// batch: per Job, the slow-start batch its creations begin with: the largest that
	// succeeded in full so far, back to 1 after a failure. A Job replaces its pods
	// sync after sync, and paying the doubling's rounds (each a commit) every time
	// made the creations the longest part of each sync.
	batch map[string]int
	// written: per Job, the Job as this controller's last status write returned it. A
	// sync whose cache shows an older Job syncs this one instead: acting on the older
	// status would only fail its own write with a conflict, and waiting for the cache
	// to show the write (as the syncs did until 2026-12-05) put a watch delivery
	// between every two syncs of a Job, which run back to back while its pods finish.
	written map[string]*batchv1.Job
	// releasing: per Job, the pods whose finalizer a sync that has ended is removing
	// still (releaseLater): the syncs after it neither wait for it nor count those
	// pods until it ends. lost: per Job, the uids such a sync recorded whose finalizer
	// was gone already (counted before): the next sync drops them from the uncounted
	// list, uncounted; each is forgotten once the status no longer lists it.
	releasing, lost map[string]map[types.UID]bool
	// background: the releases running after their sync, which Run waits for.
	background sync.WaitGroup
	// claimer adopts a Job's matching orphans (owner reference and tracking finalizer)
	// and releases its pods that no longer match; orphans queues the Jobs that match an
	// orphan.
	claimer controllerref.Claimer[*corev1.Pod]
	orphans expectations.PodEvents[*batchv1.Job]
	// unmatched: per Job, its pods that the pod events have not seen match its selector
	// (their labels changed, or the Job was not cached when they came), by key, as
	// cached then. A sync claims these and the namespace's orphans, not every pod of the
	// Job: a Job keeps its finished pods, and matching all of them in every sync cost
	// as much as the rest of the sync's work on them.
	unmatched map[string]map[string]*corev1.Pod
}

type backoffRecord struct {
	failures int
	last     time.Time
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	jobInf := cache.InformerFor[*batchv1.Job](f, "", client.ListOptions{})
	podInf := cache.InformerFor[*corev1.Pod](f, "", client.ListOptions{})
	podInf.AddIndexer(cache.IndexOwner, cache.ByOwner[*corev1.Pod])
	podInf.AddIndexer(cache.IndexOrphan, cache.ByOrphan[*corev1.Pod])
	c := &Controller{
		cfg: cfg, cs: cs, jobInf: jobInf, podInf: podInf, jobs: jobInf.Lister(), pods: podInf.Lister(),
		queue: workqueue.New(workqueue.Config{}), exp: expectations.New(cfg.ExpectationsTimeout, cfg.Now),
		rec: rec, log: cfg.Logger.Named("job"),
		released: map[string]map[types.UID]bool{}, backoff: map[string]backoffRecord{}, written: map[string]*batchv1.Job{},
		unseen: map[string]map[string]int{}, batch: map[string]int{}, unmatched: map[string]map[string]*corev1.Pod{},
		releasing: map[string]map[types.UID]bool{}, lost: map[string]map[types.UID]bool{},
		claimer: controllerref.Claimer[*corev1.Pod]{Update: cs.Pods.Update, Finalizers: []string{batchv1.JobTrackingFinalizer}},
	}
	c.orphans = expectations.PodEvents[*batchv1.Job]{Add: c.queue.Add,
		Owners:   func(ns string) []*batchv1.Job { return c.jobs.ListNamespace(ns, labels.Everything()) },
		Selector: func(j *batchv1.Job) *metav1.LabelSelector { return j.Spec.Selector }}
	jobInf.AddHandler(cache.Handler[*batchv1.Job]{
		OnAdd:    func(j *batchv1.Job) { c.queue.Add(cache.Key(j)) },
		OnUpdate: func(_, j *batchv1.Job) { c.queue.Add(cache.Key(j)) },
		OnDelete: func(j *batchv1.Job) { c.queue.Add(cache.Key(j)) },
	})
	podInf.AddHandler(cache.Handler[*corev1.Pod]{OnAdd: c.podAdded, OnUpdate: c.podUpdated, OnDelete: c.podDeleted})
	return c, nil
}

// ownerKey is the key of the Job controlling pod, or "".
func ownerKey(pod *corev1.Pod) string {
	ref := metav1.GetControllerOfNoCopy(pod)
	if ref == nil || ref.Kind != kinds.Job {
		return ""
	}
	return pod.Namespace + "/" + ref.Name
}

func (c *Controller) podAdded(pod *corev1.Pod) {
	key := ownerKey(pod)
	if key == "" {
		c.orphans.QueueMatching(pod)
		return
	}
	// Observed first, then no longer unseen: Reconcile reads them the other way
	// round, so a sync never misses a pod both ways (see inflight).
	c.exp.CreationObserved(key)
	c.mu.Lock()
	delete(c.unseen[key], pod.Name)
	c.mu.Unlock()
	c.checkLabels(key, pod)
	c.queue.Add(key)
}

func (c *Controller) podUpdated(old, pod *corev1.Pod) {
	key := ownerKey(pod)
	if oldKey := ownerKey(old); oldKey != key && oldKey != "" {
		c.forgetLabels(oldKey, pod)
		c.queue.Add(oldKey) // released: its Job no longer counts it
	}
	if key == "" {
		c.orphans.QueueMatching(pod)
		return
	}
	if !hasTrackingFinalizer(pod) {
		c.seenReleased(key, pod.UID)
	}
	if pod.DeletionTimestamp != nil && old.DeletionTimestamp == nil {
		c.exp.DeletionObserved(key, cache.Key(pod))
	}
	if !maps.Equal(old.Labels, pod.Labels) || ownerKey(old) != key {
		c.checkLabels(key, pod)
	}
	c.queue.Add(key)
}

func (c *Controller) podDeleted(pod *corev1.Pod) {
	if key := ownerKey(pod); key != "" {
		c.seenReleased(key, pod.UID)
		c.forgetLabels(key, pod)
		c.exp.DeletionObserved(key, cache.Key(pod))
		c.queue.Add(key)
	}
}

// checkLabels notes whether pod, controlled by key's Job, matches the Job's selector:
// one that may not (or whose Job is not cached yet) waits in unmatched for a sync to
// claim it. It runs when a pod comes and when its labels change: once a pod, not once
// a pod and a sync.
func (c *Controller) checkLabels(key string, pod *corev1.Pod) {
	ns, name := cache.SplitKey(key)
	matches := false
	if job, ok := c.jobs.Get(ns, name); ok {
		sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
		// A pod of an earlier Job of the name is none of this one's.
		matches = !metav1.IsControlledBy(pod, job) || err == nil && !sel.Empty() && sel.Matches(labels.Set(pod.Labels))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if matches {
		delete(c.unmatched[key], cache.Key(pod))
		return
	}
	if c.unmatched[key] == nil {
		c.unmatched[key] = map[string]*corev1.Pod{}
	}
	c.unmatched[key][cache.Key(pod)] = pod
}

// forgetLabels forgets pod, which key's Job no longer controls.
func (c *Controller) forgetLabels(key string, pod *corev1.Pod) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.unmatched[key], cache.Key(pod))
}

func (c *Controller) markReleased(key string, uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released[key] == nil {
		c.released[key] = map[types.UID]bool{}
	}
	c.released[key][uid] = true
}

func (c *Controller) seenReleased(key string, uid types.UID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.released[key], uid)
}

func (c *Controller) isReleased(key string, uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.released[key][uid]
}

// handled says whether this controller removed p's finalizer, or is removing it.
func (c *Controller) handled(key string, uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.released[key][uid] || c.releasing[key][uid]
}

func (c *Controller) forget(key string) {
	c.exp.Forget(key)
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.released, key)
	delete(c.backoff, key)
	delete(c.written, key)
	delete(c.unseen, key)
	delete(c.batch, key)
	delete(c.releasing, key)
	delete(c.lost, key)
	delete(c.unmatched, key)
}

// made records a pod made for index ix of key's Indexed Job, until the cache shows it.
func (c *Controller) made(key, name string, ix int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.unseen[key] == nil {
		c.unseen[key] = map[string]int{}
	}
	c.unseen[key][name] = ix
}

// inflight reads what key's sync may act on: whether no creation or deletion asked
// for is unseen (satisfied), and else whether only creations of an Indexed Job's pods
// are, whose indexes it returns (creating). Call it before listing the pods: a pod
// seen in between is in both the list and the indexes (the caller drops it by name).
func (c *Controller) inflight(key string) (satisfied, creating bool, unseen map[string]int) {
	c.mu.Lock()
	unseen = maps.Clone(c.unseen[key])
	c.mu.Unlock()
	adds, dels := c.exp.Pending(key)
	if adds == 0 {
		// Every creation seen, or given up on: what is left was seen before it was
		// recorded, or is never coming.
		c.mu.Lock()
		for name := range unseen {
			delete(c.unseen[key], name)
		}
		c.mu.Unlock()
		return dels == 0, false, nil
	}
	return false, dels == 0 && adds <= len(unseen), unseen
}

// behind says whether the cache shows an older status of key's Job than the one this
// controller last wrote.
func (c *Controller) behind(key string, job *batchv1.Job) bool {
	return c.newest(key, job) != job
}

// newest is the newer of job (as cached) and the same Job as this controller's last
// status write left it.
func (c *Controller) newest(key string, job *batchv1.Job) *batchv1.Job {
	c.mu.Lock()
	w := c.written[key]
	c.mu.Unlock()
	if w == nil || w.UID != job.UID || revision(w) <= revision(job) {
		return job
	}
	return w
}

func (c *Controller) wrote(key string, job *batchv1.Job) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if w := c.written[key]; w == nil || w.UID != job.UID || revision(job) > revision(w) {
		c.written[key] = job
	}
}

// revision is an object's resourceVersion as a number (0 if it is none).
func revision(job *batchv1.Job) uint64 {
	rv, _ := strconv.ParseUint(job.ResourceVersion, 10, 64)
	return rv
}

// Run reconciles until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.jobInf, c.podInf) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	c.background.Wait()
	return nil
}

// ownedPods are the pods in job's namespace that job controls.
func (c *Controller) ownedPods(job *batchv1.Job) []*corev1.Pod {
	var out []*corev1.Pod
	for _, p := range c.pods.ByIndex(cache.IndexOwner, string(job.UID)) {
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ref.UID == job.UID {
			out = append(out, p)
		}
	}
	return out
}

// claim returns the pods job controls after adopting its selector's orphans and
// releasing its pods that no longer match (Kubernetes' getPodsForJob). It claims the
// namespace's orphans (from an index) and the Job's pods the pod events saw change
// (unmatched): a Job whose pods all kept their labels pays nothing a pod.
func (c *Controller) claim(ctx context.Context, job *batchv1.Job) ([]*corev1.Pod, error) {
	owned := c.ownedPods(job)
	sel, err := metav1.LabelSelectorAsSelector(job.Spec.Selector)
	if err != nil || sel.Empty() {
		return owned, nil // nothing to match against (validation refuses such a Job)
	}
	key := cache.Key(job)
	c.mu.Lock()
	unmatched := maps.Clone(c.unmatched[key])
	c.mu.Unlock()
	candidates := c.pods.ByIndex(cache.IndexOrphan, job.Namespace)
	for k := range unmatched {
		if p, ok := c.pods.GetByKey(k); ok {
			candidates = append(candidates, p)
		}
	}
	if len(candidates) == 0 {
		return owned, nil
	}
	claimed, err := c.claimer.Claim(ctx, job, sel, candidates)
	if err != nil {
		return nil, fmt.Errorf("claim the pods of job %s: %w", key, err)
	}
	// The claimed replace the candidates among the owned: the adopted come in (at their
	// new version), the released go.
	kept := make(map[types.UID]*corev1.Pod, len(claimed))
	for _, p := range claimed {
		kept[p.UID] = p
	}
	var out []*corev1.Pod
	for _, p := range owned {
		if _, checked := unmatched[cache.Key(p)]; !checked || kept[p.UID] != nil {
			out = append(out, p)
			delete(kept, p.UID)
		}
	}
	for _, p := range claimed {
		if kept[p.UID] != nil {
			out = append(out, p) // adopted
		}
	}
	// Those gone or matching now are done with; one the pod events marked again since
	// the snapshot stays, to be claimed again (they mark every change of labels).
	c.mu.Lock()
	for k, p := range unmatched {
		if cur, ok := c.pods.GetByKey(k); !ok || !metav1.IsControlledBy(cur, job) || sel.Matches(labels.Set(cur.Labels)) {
			if c.unmatched[key][k] == p {
				delete(c.unmatched[key], k)
			}
		}
	}
	c.mu.Unlock()
	return out, nil
}

// Reconcile syncs one Job by key.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	cached, ok := c.jobs.Get(ns, name)
	if !ok {
		c.forget(key)
		return 0, c.releaseOrphans(ctx, ns, name)
	}
	cached = c.newest(key, cached)
	// The expectations are read before the pods, as Kubernetes does: a creation observed
	// after this snapshot must not let this sync make its pod again.
	satisfied, creating, unseen := c.inflight(key)
	if finished(cached) != nil {
		// Counted already: what still holds the finalizer was never counted.
		var holding []*corev1.Pod
		for _, p := range c.ownedPods(cached) {
			if hasTrackingFinalizer(p) && !c.handled(key, p.UID) {
				holding = append(holding, p)
			}
		}
		_, err := c.releaseAll(ctx, key, holding)
		return 0, err
	}
	pods, err := c.claim(ctx, cached)
	if err != nil {
		return 0, err
	}
	s := &sync_{c: c, key: key, job: cached.DeepCopy(), written: cached, pods: pods, satisfied: satisfied, creating: creating, now: c.cfg.Now()}
	if len(unseen) > 0 {
		for _, p := range pods {
			delete(unseen, p.Name)
		}
		s.inflight = slices.Collect(maps.Values(unseen))
	}
	return s.run(ctx)
}

// finished returns the Job's Complete or Failed condition, if true.
func finished(job *batchv1.Job) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		c := &job.Status.Conditions[i]
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c
		}
	}
	return nil
}

func condition(job *batchv1.Job, t batchv1.JobConditionType) *batchv1.JobCondition {
	for i := range job.Status.Conditions {
		if job.Status.Conditions[i].Type == t {
			return &job.Status.Conditions[i]
		}
	}
	return nil
}

func isTrue(job *batchv1.Job, t batchv1.JobConditionType) bool {
	c := condition(job, t)
	return c != nil && c.Status == corev1.ConditionTrue
}

// setCondition sets a condition's status, reason and message; lastTransitionTime moves
// only when the status changes. It reports whether anything changed.
func setCondition(job *batchv1.Job, t batchv1.JobConditionType, status corev1.ConditionStatus, reason, msg string, now time.Time) bool {
	if c := condition(job, t); c != nil {
		if c.Status == status && c.Reason == reason && c.Message == msg {
			return false
		}
		if c.Status != status {
			c.LastTransitionTime = metav1.NewTime(now)
		}
		c.Status, c.Reason, c.Message, c.LastProbeTime = status, reason, msg, metav1.NewTime(now)
		return true
	}
	job.Status.Conditions = append(job.Status.Conditions, batchv1.JobCondition{Type: t, Status: status, Reason: reason, Message: msg,
		LastProbeTime: metav1.NewTime(now), LastTransitionTime: metav1.NewTime(now)})
	return true
}

// sync_ is one sync of one Job.
type sync_ struct {
	c       *Controller
	key     string
	job     *batchv1.Job // the status being computed
	written *batchv1.Job // the Job as last written (or cached)
	pods    []*corev1.Pod
	now     time.Time
	// satisfied: no creation or deletion asked for was unseen when pods were read;
	// creating: only creations of an Indexed Job's pods were, those of indexes
	// inflight, and this sync may make the pods of other indexes (but delete none).
	satisfied, creating bool
	inflight            []int

	completed, failedIndexes indexes.Set
	uncS, uncF               map[types.UID]bool // status.uncountedTerminatedPods
	added                    map[types.UID]bool // uids this sync added to them
	release                  []*corev1.Pod      // finished pods holding the finalizer
	failJob                  string             // the message of a matched FailJob rule
	more                     bool               // finished pods left for the next sync
	finishing, suspended     bool               // FailureTarget or SuccessCriteriaMet is set; spec.suspend
	terminating              int                // pods being deleted, not finished
	total                    int                // spec.completions
	// planned is the Job as planned, before the status writes: what act reads while
	// they run.
	planned *batchv1.Job
	created int
	requeue time.Duration
}

func (s *sync_) completions() int { return s.total }

func (s *sync_) run(ctx context.Context) (time.Duration, error) {
	job := s.job
	st := &job.Status
	s.total = int(ptr.Deref(job.Spec.Completions, 0))
	var err error
	if s.completed, err = indexes.Parse(st.CompletedIndexes, 1<<30); err != nil {
		s.completed = indexes.Set{}
	}
	if s.failedIndexes, err = indexes.Parse(ptr.Deref(st.FailedIndexes, ""), 1<<30); err != nil {
		s.failedIndexes = indexes.Set{}
	}
	s.uncS, s.uncF, s.added = map[types.UID]bool{}, map[types.UID]bool{}, map[types.UID]bool{}
	if u := st.UncountedTerminatedPods; u != nil {
		for _, uid := range u.Succeeded {
			s.uncS[uid] = true
		}
		for _, uid := range u.Failed {
			s.uncF[uid] = true
		}
	}
	// Step 3 of the syncs before: the uncounted whose finalizers they removed move to
	// the counts in this sync's first write, beside step 1 of its own.
	s.count(nil)
	// Step 1: what finished goes into the uncounted list (and the index sets), durably.
	s.track()
	if s.failJob != "" && !isTrue(job, batchv1.JobFailureTarget) {
		setCondition(job, batchv1.JobFailureTarget, corev1.ConditionTrue, batchv1.JobReasonPodFailurePolicy, s.failJob, s.now)
	}
	work := s.manage(s.plan())
	// The first write counts the pods to be made as active already, as Kubernetes'
	// status does: a sync that makes them all writes the status once.
	s.created = work.create
	s.setActive(work.keep)
	s.writeSets()
	// The pods are made or deleted while the status is written and the finalizers
	// removed (Kubernetes' syncJob makes them first, apart from the tracking): each is
	// a chain of API rounds, and neither needs the other's outcome. What it does is
	// done on planned, a copy: the status write replaces the Job being computed.
	s.planned = s.job.DeepCopy()
	var created int
	var manageErr error
	var wg sync.WaitGroup
	began := time.Now()
	var acted time.Duration
	wg.Go(func() { created, manageErr = s.act(ctx, work); acted = time.Since(began) })
	// Step 2: once the uncounted are durable, their finalizers go: after the sync,
	// which the next one does not wait for (it counts them once they are released),
	// but for a finishing Job's, which counts them at once.
	var gone map[types.UID]bool
	ferr := s.flush(ctx)
	written := time.Since(began)
	switch {
	case ferr == nil && s.finishing:
		gone, err = s.c.releaseAll(ctx, s.key, s.release)
	case ferr == nil:
		s.c.releaseLater(ctx, s.key, s.release, s.added)
	}
	wg.Wait()
	// The sync's timeline (what bounds a Job's rate: see docs/performance.md).
	s.c.log.Debug("job synced", "job", s.key, "pods", len(s.pods), "finished", len(s.release), "create", work.create,
		"created", created, "delete", len(work.del), "satisfied", s.satisfied, "inflight", len(s.inflight),
		"status", written, "pods_made", acted)
	if ferr != nil {
		return 0, errors.Join(ferr, manageErr)
	}
	// Step 3: the uids of released pods move to the counts; once none is left
	// uncounted and no pod runs, the Job is finished. Only a finishing Job writes
	// them now: otherwise the next sync's first write does (the released pods'
	// updates bring it), and a sync is one status write, not two in a row. A uid this
	// sync recorded whose finalizer was gone already is the exception: counted before,
	// it must leave the uncounted list before a sync counts it again (the removals
	// after the sync leave it to the next, as lost).
	lost := s.count(gone)
	// A creation not seen yet is a pod that may still run: the sync that sees it
	// deletes it, and finishes the Job.
	if s.finishing && s.satisfied && err == nil && manageErr == nil && len(s.uncS)+len(s.uncF) == 0 && !s.more {
		s.finish()
	}
	if !s.finishing && !lost && created == work.create {
		return s.requeue, errors.Join(err, manageErr)
	}
	s.created = created
	s.setActive(work.keep)
	s.writeSets()
	if ferr := s.flush(ctx); ferr != nil {
		return 0, errors.Join(err, manageErr, ferr)
	}
	return s.requeue, errors.Join(err, manageErr)
}

// track finds the finished pods that hold the finalizer and records those not yet
// recorded.
func (s *sync_) track() {
	job := s.job
	pfp := job.Spec.PodFailurePolicy
	perIndex := job.Spec.BackoffLimitPerIndex
	var newFailures int
	var lastFailure time.Time
	newSuccess := false
	for _, p := range s.pods {
		if !hasTrackingFinalizer(p) || s.c.handled(s.key, p.UID) {
			continue
		}
		succeeded := p.Status.Phase == corev1.PodSucceeded
		if !succeeded && !isFailed(job, p) {
			continue
		}
		if len(s.release) >= s.c.cfg.MaxUncountedPods {
			s.more = true
			s.requeueIn(time.Millisecond) // more to count: sync again soon
			break
		}
		s.release = append(s.release, p)
		if s.uncS[p.UID] || s.uncF[p.UID] {
			continue
		}
		ix := podIndex(p)
		if indexed(job) && (ix == noIndex || ix >= s.completions()) {
			continue // not one of the Job's indexes: released, never counted
		}
		if succeeded {
			newSuccess = true
			if indexed(job) {
				s.completed[ix] = true
			} else {
				s.uncS[p.UID], s.added[p.UID] = true, true
			}
			continue
		}
		action, msg := matchFailurePolicy(pfp, p)
		if action != nil {
			switch *action {
			case batchv1.PodFailurePolicyActionIgnore:
				continue
			case batchv1.PodFailurePolicyActionFailJob:
				if s.failJob == "" {
					s.failJob = msg
				}
			case batchv1.PodFailurePolicyActionFailIndex:
				if indexed(job) {
					s.failedIndexes[ix] = true
				}
			}
		}
		if perIndex != nil && indexed(job) && indexFailureCount(p)+1 > int(*perIndex) {
			s.failedIndexes[ix] = true
		}
		s.uncF[p.UID], s.added[p.UID] = true, true
		newFailures++
		if at := finishedAt(p, s.now); at.After(lastFailure) {
			lastFailure = at
		}
	}
	s.c.mu.Lock()
	defer s.c.mu.Unlock()
	r := s.c.backoff[s.key]
	if newSuccess {
		r = backoffRecord{}
	}
	if newFailures > 0 {
		r.failures += newFailures
		if lastFailure.After(r.last) {
			r.last = lastFailure
		}
	}
	s.c.backoff[s.key] = r
}

// writeSets writes the uncounted uids and index sets into the status.
func (s *sync_) writeSets() {
	st := &s.job.Status
	u := &batchv1.UncountedTerminatedPods{}
	for uid := range s.uncS {
		u.Succeeded = append(u.Succeeded, uid)
	}
	for uid := range s.uncF {
		u.Failed = append(u.Failed, uid)
	}
	slices.Sort(u.Succeeded)
	slices.Sort(u.Failed)
	st.UncountedTerminatedPods = u
	if indexed(s.job) {
		st.CompletedIndexes = s.completed.String()
		st.Succeeded = int32(s.completed.Len())
		if s.job.Spec.BackoffLimitPerIndex != nil {
			st.FailedIndexes = ptr.To(s.failedIndexes.String())
		}
	}
}

// flush writes the status if it changed.
func (s *sync_) flush(ctx context.Context) error {
	if equality.Semantic.DeepEqual(s.job.Status, s.written.Status) {
		return nil
	}
	out, err := s.c.cs.Jobs.UpdateStatus(ctx, s.job)
	if err != nil {
		if client.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("update status of job %s: %w", s.key, err)
	}
	s.c.wrote(s.key, out)
	st := s.job.Status
	s.job, s.written = out.DeepCopy(), out
	s.job.Status = st
	return nil
}

// count moves the uncounted uids whose pods no longer hold the finalizer to the counts.
// gone are the uids whose finalizer was already removed when this sync tried: if this
// sync recorded them, an older cache showed them, and they were counted before: count
// drops them and reports whether there were any.
func (s *sync_) count(gone map[types.UID]bool) (lost bool) {
	holding := map[types.UID]bool{}
	for _, p := range s.pods {
		if hasTrackingFinalizer(p) && !s.c.isReleased(s.key, p.UID) {
			holding[p.UID] = true
		}
	}
	// Read in one step: a release that ends marks its pods released or lost before it
	// stops listing them as releasing.
	c := s.c
	c.mu.Lock()
	for uid := range c.lost[s.key] {
		if !s.uncS[uid] && !s.uncF[uid] {
			delete(c.lost[s.key], uid) // the status no longer lists it
		}
	}
	dropped, releasing := maps.Clone(c.lost[s.key]), maps.Clone(c.releasing[s.key])
	c.mu.Unlock()
	st := &s.job.Status
	for _, set := range []struct {
		uids  map[types.UID]bool
		count *int32
	}{{s.uncS, &st.Succeeded}, {s.uncF, &st.Failed}} {
		for uid := range set.uids {
			switch {
			case dropped[uid], gone[uid] && s.added[uid]:
				delete(set.uids, uid)
				lost = true
			case !holding[uid] && !releasing[uid]:
				delete(set.uids, uid)
				*set.count++
			}
		}
	}
	return lost
}

// releaseConcurrency bounds the UpdateBatch calls in flight, each removing the
// finalizers of up to client.MaxUpdateBatch pods in one store transaction.
const releaseConcurrency = 10

// releaseAll removes the tracking finalizer from pods, a hundred in each UpdateBatch
// call (one store entry, where a pod was a call and a commit each), concurrently. It
// returns the uids of the pods whose finalizer someone had removed already (or that
// are gone).
func (c *Controller) releaseAll(ctx context.Context, key string, pods []*corev1.Pod) (map[types.UID]bool, error) {
	gone := map[types.UID]bool{}
	var mu sync.Mutex
	var errs []error
	done := func(p *corev1.Pod, removed bool, err error) {
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			errs = append(errs, err)
		} else if !removed {
			gone[p.UID] = true
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, releaseConcurrency)
	for start := 0; start < len(pods); start += client.MaxUpdateBatch {
		var holding, next []*corev1.Pod
		for _, p := range pods[start:min(start+client.MaxUpdateBatch, len(pods))] {
			if !hasTrackingFinalizer(p) {
				done(p, false, nil)
				continue
			}
			holding, next = append(holding, p), append(next, withoutTracking(p))
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			// Each a compare-and-swap on the cached pod; a pod changed since is read
			// again and tried alone.
			_, uerrs := c.cs.Pods.UpdateEach(ctx, next)
			var retries sync.WaitGroup
			for i, p := range holding {
				removed, conflict, err := c.releaseOutcome(key, p, uerrs[i])
				if !conflict {
					done(p, removed, err)
					continue
				}
				retries.Go(func() {
					removed, err := c.release(ctx, key, p)
					done(p, removed, err)
				})
			}
			retries.Wait()
		}()
	}
	wg.Wait()
	return gone, errors.Join(errs...)
}

// releaseLater removes the tracking finalizer from pods (releaseAll) in the background,
// after the sync that recorded them, so that the Job's next sync need not wait for it:
// that sync counts them as holding the finalizer until it ends. added are the uids the
// sync recorded: one whose finalizer turns out to be gone already was counted before,
// and the next sync drops it (lost). Its end brings the Job's next sync.
func (c *Controller) releaseLater(ctx context.Context, key string, pods []*corev1.Pod, added map[types.UID]bool) {
	if len(pods) == 0 {
		return
	}
	c.mu.Lock()
	if c.releasing[key] == nil {
		c.releasing[key] = map[types.UID]bool{}
	}
	for _, p := range pods {
		c.releasing[key][p.UID] = true
	}
	c.mu.Unlock()
	c.background.Go(func() {
		began := time.Now()
		gone, err := c.releaseAll(ctx, key, pods)
		c.log.Debug("finalizers removed", "job", key, "pods", len(pods), "took", time.Since(began))
		c.mu.Lock()
		if releasing := c.releasing[key]; releasing != nil { // nil: the Job is gone
			for uid := range gone {
				if added[uid] {
					if c.lost[key] == nil {
						c.lost[key] = map[types.UID]bool{}
					}
					c.lost[key][uid] = true
				}
			}
			for _, p := range pods {
				delete(releasing, p.UID)
			}
		}
		c.mu.Unlock()
		if err != nil {
			c.log.Warn("removing tracking finalizers failed", "job", key, "error", err)
			c.queue.AddRateLimited(key)
			return
		}
		c.queue.Add(key)
	})
}

// withoutTracking is p, a copy, without the tracking finalizer.
func withoutTracking(p *corev1.Pod) *corev1.Pod {
	next := p.DeepCopy()
	next.Finalizers = slices.DeleteFunc(next.Finalizers, func(f string) bool { return f == batchv1.JobTrackingFinalizer })
	return next
}

// releaseOutcome says what the update that removed p's finalizer did: removed it, or
// found it gone (the pod too), or lost a race (conflict: read the pod again and retry).
func (c *Controller) releaseOutcome(key string, p *corev1.Pod, err error) (removed, conflict bool, _ error) {
	switch {
	case err == nil:
		c.markReleased(key, p.UID)
		return true, false, nil
	case client.IsNotFound(err):
		return false, false, nil
	case client.IsConflict(err):
		return false, true, nil
	}
	return false, false, fmt.Errorf("remove finalizer of pod %s: %w", cache.Key(p), err)
}

// release removes the tracking finalizer from p after an attempt lost a race: it reads
// the pod again and tries its compare-and-swap, again after each conflict. It reports
// whether it removed it (false: already gone).
func (c *Controller) release(ctx context.Context, key string, p *corev1.Pod) (bool, error) {
	for range 5 {
		cur, err := c.cs.Pods.Get(ctx, p.Namespace, p.Name)
		switch {
		case client.IsNotFound(err):
			return false, nil
		case err != nil:
			return false, fmt.Errorf("remove finalizer of pod %s: %w", cache.Key(p), err)
		case cur.UID != p.UID || !hasTrackingFinalizer(cur):
			return false, nil
		}
		_, err = c.cs.Pods.Update(ctx, withoutTracking(cur))
		if removed, conflict, err := c.releaseOutcome(key, p, err); !conflict {
			return removed, err
		}
	}
	return false, fmt.Errorf("remove finalizer of pod %s: it keeps changing", cache.Key(p))
}

// releaseOrphans frees the pods of a Job that is gone.
func (c *Controller) releaseOrphans(ctx context.Context, ns, name string) error {
	var holding []*corev1.Pod
	for _, p := range c.pods.ListNamespace(ns, labels.Everything()) {
		if ref := metav1.GetControllerOfNoCopy(p); ref != nil && ref.Kind == kinds.Job && ref.Name == name && hasTrackingFinalizer(p) {
			holding = append(holding, p)
		}
	}
	_, err := c.releaseAll(ctx, ns+"/"+name, holding)
	return err
}

// plan decides the Job's conditions and counts the pods, before the status write that
// carries them, and returns the active pods.
func (s *sync_) plan() (active []*corev1.Pod) {
	job := s.job
	st := &job.Status
	c := s.c
	for _, p := range s.pods {
		switch {
		case isActive(p):
			active = append(active, p)
		case isTerminating(p):
			s.terminating++
		}
	}
	suspended := ptr.Deref(job.Spec.Suspend, false)
	if suspended {
		if setCondition(job, batchv1.JobSuspended, corev1.ConditionTrue, "JobSuspended", "Job suspended", s.now) {
			c.rec.Eventf(job, record.Normal, "Suspended", "Job suspended")
		}
	} else {
		if condition(job, batchv1.JobSuspended) != nil &&
			setCondition(job, batchv1.JobSuspended, corev1.ConditionFalse, "JobResumed", "Job resumed", s.now) {
			c.rec.Eventf(job, record.Normal, "Resumed", "Job resumed")
			st.StartTime = ptr.To(metav1.NewTime(s.now)) // the deadline counts from the resume
		}
		if st.StartTime == nil {
			st.StartTime = ptr.To(metav1.NewTime(s.now))
		}
	}
	if !isTrue(job, batchv1.JobFailureTarget) && !isTrue(job, batchv1.JobSuccessCriteriaMet) {
		s.decide(active)
	}
	s.finishing = isTrue(job, batchv1.JobFailureTarget) || isTrue(job, batchv1.JobSuccessCriteriaMet)
	s.suspended = suspended
	return active
}

// podWork is what a sync decided to do with the Job's pods: those that stay active,
// those to delete, and how many to make (an Indexed Job's for the pending indexes, in
// order).
type podWork struct {
	keep, del []*corev1.Pod
	create    int
	pending   []int
}

// manage decides which pods to make or delete; act does it.
func (s *sync_) manage(active []*corev1.Pod) podWork {
	switch {
	case s.finishing || s.suspended:
		return podWork{del: active}
	case s.satisfied || s.creating:
		return s.scale(active)
	}
	return podWork{keep: active}
}

// act makes or deletes the pods manage decided on, and returns how many it made. It
// runs beside the status write and the finalizers' removal: it reads planned, and
// writes neither the Job nor the uncounted sets.
func (s *sync_) act(ctx context.Context, w podWork) (int, error) {
	if len(w.del) > 0 {
		return 0, s.deleteAll(ctx, w.del)
	}
	if w.create == 0 {
		return 0, nil
	}
	job := s.planned
	n := w.create
	s.c.mu.Lock()
	first := s.c.batch[s.key]
	s.c.mu.Unlock()
	s.c.exp.AddCreations(s.key, n) // with those still unseen, if creating
	failures := s.indexFailures()
	ixs := w.pending
	if !indexed(job) {
		ixs = slices.Repeat([]int{noIndex}, n)
	}
	// Each round of the slow start is one CreateBatch call per hundred pods: one
	// call and one store entry, where a Create per pod was a call and an admission
	// each.
	created, largest, err := slowstart.RunBatches(n, first, func(start, size int) []error {
		errs := make([]error, size)
		var wg sync.WaitGroup
		for lo := start; lo < start+size; lo += client.MaxCreateBatch {
			hi := min(lo+client.MaxCreateBatch, start+size)
			wg.Go(func() { copy(errs[lo-start:], s.createPods(ctx, ixs[lo:hi], failures)) })
		}
		wg.Wait()
		return errs
	})
	for range n - created {
		s.c.exp.CreationObserved(s.key) // never coming
	}
	s.c.mu.Lock()
	if err != nil {
		delete(s.c.batch, s.key)
	} else {
		s.c.batch[s.key] = max(first, largest)
	}
	s.c.mu.Unlock()
	return created, err
}

// setActive writes the counts of active, terminating and ready pods.
func (s *sync_) setActive(active []*corev1.Pod) {
	st := &s.job.Status
	st.Active = int32(len(active) + len(s.inflight) + s.created)
	st.Terminating = ptr.To(int32(s.terminating))
	var ready int32
	for _, p := range active {
		if isReady(p) {
			ready++
		}
	}
	st.Ready = ptr.To(ready)
}

// decide sets FailureTarget or SuccessCriteriaMet when the Job's end has come, in
// Kubernetes' order: a FailJob rule, the backoff limit, the deadline, the failed
// indexes, then success.
func (s *sync_) decide(active []*corev1.Pod) {
	job := s.job
	st := &job.Status
	failed := st.Failed + int32(len(s.uncF))
	limit := ptr.Deref(job.Spec.BackoffLimit, 6)
	var restartCount int32
	if job.Spec.Template.Spec.RestartPolicy == corev1.RestartPolicyOnFailure {
		for _, p := range active {
			restartCount += restarts(p)
		}
	}
	fail := func(reason, msg string) {
		setCondition(job, batchv1.JobFailureTarget, corev1.ConditionTrue, reason, msg, s.now)
	}
	perIndex := indexed(job) && job.Spec.BackoffLimitPerIndex != nil
	switch {
	case failed > limit || (restartCount > 0 && restartCount >= limit):
		fail(batchv1.JobReasonBackoffLimitExceeded, "Job has reached the specified backoff limit")
		return
	case perIndex && job.Spec.MaxFailedIndexes != nil && s.failedIndexes.Len() > int(*job.Spec.MaxFailedIndexes):
		fail(batchv1.JobReasonMaxFailedIndexesExceeded, "Job has exceeded the specified maximal number of failed indexes")
		return
	}
	if ads := job.Spec.ActiveDeadlineSeconds; ads != nil && st.StartTime != nil && !ptr.Deref(job.Spec.Suspend, false) {
		end := st.StartTime.Add(time.Duration(*ads) * time.Second)
		if !s.now.Before(end) {
			fail(batchv1.JobReasonDeadlineExceeded, "Job was active longer than specified deadline")
			return
		}
		s.requeueIn(end.Sub(s.now))
	}
	succeeded := st.Succeeded + int32(len(s.uncS))
	switch {
	case indexed(job) && matchSuccessPolicy(job.Spec.SuccessPolicy, s.completions(), s.completed) >= 0:
		i := matchSuccessPolicy(job.Spec.SuccessPolicy, s.completions(), s.completed)
		setCondition(job, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, batchv1.JobReasonSuccessPolicy,
			fmt.Sprintf("Matched rules at index %d", i), s.now)
	case indexed(job) && s.completed.Len() >= s.completions(),
		!indexed(job) && job.Spec.Completions != nil && succeeded >= *job.Spec.Completions,
		!indexed(job) && job.Spec.Completions == nil && succeeded > 0 && len(active) == 0:
		setCondition(job, batchv1.JobSuccessCriteriaMet, corev1.ConditionTrue, batchv1.JobReasonCompletionsReached,
			"Reached expected number of succeeded pods", s.now)
	case perIndex && s.failedIndexes.Len() > 0 && s.completed.Len()+s.failedIndexes.Len() >= s.completions():
		fail(batchv1.JobReasonFailedIndexes, "Job has failed indexes")
	}
}

func (s *sync_) requeueIn(d time.Duration) {
	if d > 0 && (s.requeue == 0 || d < s.requeue) {
		s.requeue = d
	}
}

// finish turns FailureTarget into Failed, SuccessCriteriaMet into Complete, once every
// pod is counted and none runs.
func (s *sync_) finish() {
	job := s.job
	if t := condition(job, batchv1.JobFailureTarget); t != nil && t.Status == corev1.ConditionTrue {
		setCondition(job, batchv1.JobFailed, corev1.ConditionTrue, t.Reason, t.Message, s.now)
		s.c.rec.Eventf(job, record.Warning, t.Reason, "%s", t.Message)
		return
	}
	t := condition(job, batchv1.JobSuccessCriteriaMet)
	setCondition(job, batchv1.JobComplete, corev1.ConditionTrue, t.Reason, t.Message, s.now)
	job.Status.CompletionTime = ptr.To(metav1.NewTime(s.now))
	if job.Status.StartTime != nil && job.Status.CompletionTime.Before(job.Status.StartTime) {
		job.Status.CompletionTime = job.Status.StartTime
	}
	s.c.rec.Eventf(job, record.Normal, "Completed", "Job completed")
}

// deleteAll deletes the pods after removing their finalizer: the Job ends them, their
// end is no failure.
func (s *sync_) deleteAll(ctx context.Context, pods []*corev1.Pod) error {
	if len(pods) == 0 {
		return nil
	}
	if _, err := s.c.releaseAll(ctx, s.key, pods); err != nil {
		return err
	}
	keys := make([]string, len(pods))
	for i, p := range pods {
		keys[i] = cache.Key(p)
	}
	s.c.exp.ExpectDeletions(s.key, keys)
	return s.c.exp.DeletePods(ctx, s.key, s.planned, pods, expectations.DeleteWith(s.c.cs.Pods), s.c.rec)
}

// scale decides the pods to make or delete so that the wanted number run, after the
// back-off of recent failures.
func (s *sync_) scale(active []*corev1.Pod) podWork {
	job := s.job
	parallelism := ptr.Deref(job.Spec.Parallelism, 1)
	succeeded := job.Status.Succeeded + int32(len(s.uncS))
	var want int32
	switch {
	case job.Spec.Completions == nil && succeeded > 0:
		want = int32(len(active))
	case job.Spec.Completions == nil:
		want = parallelism
	default:
		want = max(0, min(parallelism, *job.Spec.Completions-succeeded))
	}
	// An Indexed Job runs one pod per pending index: duplicates and pods of indexes
	// done go first.
	var surplus []*corev1.Pod
	var pending []int
	if indexed(job) {
		byIndex := map[int][]*corev1.Pod{}
		for _, p := range active {
			ix := podIndex(p)
			if ix == noIndex || ix >= s.completions() || s.completed[ix] || s.failedIndexes[ix] {
				surplus = append(surplus, p)
				continue
			}
			byIndex[ix] = append(byIndex[ix], p)
		}
		var keep []*corev1.Pod
		for _, ps := range byIndex {
			sort.Slice(ps, func(i, j int) bool { return deleteFirst(ps[j], ps[i]) })
			keep = append(keep, ps[0])
			surplus = append(surplus, ps[1:]...)
		}
		held := map[int]bool{}
		for ix := range byIndex {
			held[ix] = true
		}
		for _, ix := range s.inflight {
			held[ix] = true
		}
		// A succeeded pod still holding the finalizer has done its index, whether this
		// sync recorded it or left it to the next (MaxUncountedPods): Kubernetes' succeeded
		// indexes are every such pod's.
		for _, p := range s.pods {
			if p.Status.Phase == corev1.PodSucceeded && hasTrackingFinalizer(p) {
				held[podIndex(p)] = true
			}
		}
		if onlyReplaceFailed(job) {
			for _, p := range s.pods {
				if isTerminating(p) && !isFailed(job, p) {
					held[podIndex(p)] = true
				}
			}
		}
		for ix := 0; ix < s.completions(); ix++ {
			if !s.completed[ix] && !s.failedIndexes[ix] && !held[ix] {
				pending = append(pending, ix)
			}
		}
		active = keep
		want = min(want, int32(len(keep)+len(s.inflight)+len(pending)))
	}
	if !s.satisfied {
		if len(surplus) > 0 {
			return podWork{keep: active} // deletions wait for a sync that has seen every creation
		}
	} else if extra := len(active) + len(s.inflight) - int(want); extra > 0 {
		sort.Slice(active, func(i, j int) bool { return deleteFirst(active[i], active[j]) })
		surplus = append(surplus, active[:extra]...)
		active = active[extra:]
	}
	if len(surplus) > 0 {
		return podWork{keep: active, del: surplus[:min(len(surplus), s.c.cfg.BurstPods)]}
	}
	diff := int(want) - len(active) - len(s.inflight)
	if onlyReplaceFailed(job) && !indexed(job) {
		diff -= s.terminating
	}
	if diff <= 0 {
		return podWork{keep: active}
	}
	s.c.mu.Lock()
	r := s.c.backoff[s.key]
	s.c.mu.Unlock()
	if wait := r.last.Add(backoffDelay(r.failures, s.c.cfg.BackoffBase, s.c.cfg.BackoffMax)).Sub(s.now); r.failures > 0 && wait > 0 {
		s.requeueIn(wait)
		return podWork{keep: active}
	}
	n := min(diff, s.c.cfg.BurstPods)
	if indexed(job) {
		n = min(n, len(pending))
		pending = pending[:n]
	}
	return podWork{keep: active, create: n, pending: pending}
}

// deleteFirst orders pods as Kubernetes picks the ones to delete: unscheduled, then
// pending, then not ready, then the newest.
func deleteFirst(a, b *corev1.Pod) bool {
	if (a.Spec.NodeName == "") != (b.Spec.NodeName == "") {
		return a.Spec.NodeName == ""
	}
	if (a.Status.Phase == corev1.PodPending) != (b.Status.Phase == corev1.PodPending) {
		return a.Status.Phase == corev1.PodPending
	}
	if isReady(a) != isReady(b) {
		return !isReady(a)
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return b.CreationTimestamp.Before(&a.CreationTimestamp)
	}
	return a.Name > b.Name
}

// createPods makes the pods of indexes ixs (noIndex each, for a Job without) in one
// CreateBatch call (client.CreateEach), each with its index's failures so far. It
// returns each one's error.
func (s *sync_) createPods(ctx context.Context, ixs []int, failures map[int]int) []error {
	job := s.planned
	pods := make([]*corev1.Pod, len(ixs))
	for i, ix := range ixs {
		pods[i] = NewPod(job, ix, failures[ix])
	}
	out, errs := s.c.cs.Pods.CreateEach(ctx, pods)
	for i, err := range errs {
		if err != nil {
			s.c.rec.Eventf(job, record.Warning, "FailedCreate", "Error creating: %v", err)
			errs[i] = fmt.Errorf("create pod for job %s: %w", s.key, err)
			continue
		}
		if ixs[i] != noIndex {
			s.c.made(s.key, out[i].Name, ixs[i])
		}
		s.c.rec.Eventf(job, record.Normal, "SuccessfulCreate", "Created pod: %s", out[i].Name)
	}
	return errs
}

// indexFailures counts, per index, the failed pods so far (what the next pod of the
// index carries in its annotation, with backoffLimitPerIndex): the most any of its pods
// says, plus one if that pod failed and the failure counts.
func (s *sync_) indexFailures() map[int]int {
	out := map[int]int{}
	job := s.planned
	if job.Spec.BackoffLimitPerIndex == nil {
		return out
	}
	for _, p := range s.pods {
		ix := podIndex(p)
		if ix == noIndex {
			continue
		}
		c := indexFailureCount(p)
		if isFailed(job, p) {
			if a, _ := matchFailurePolicy(job.Spec.PodFailurePolicy, p); a == nil || *a != batchv1.PodFailurePolicyActionIgnore {
				c++
			}
		}
		out[ix] = max(out[ix], c)
	}
	return out
}

// NewPod is the pod a Job makes: its template, named after the Job (and the index),
// controlled by the Job and holding the tracking finalizer. An Indexed Job's pod
// carries its index in an annotation, a label and the environment of every container
// (JOB_COMPLETION_INDEX, a value: Skiff has no downward API yet) and its hostname is
// JOB-INDEX, as Kubernetes does.
func NewPod(job *batchv1.Job, ix, indexFailures int) *corev1.Pod {
	tmpl := job.Spec.Template.DeepCopy()
	pod := &corev1.Pod{ObjectMeta: tmpl.ObjectMeta, Spec: tmpl.Spec}
	pod.Name = ""
	pod.GenerateName = job.Name + "-"
	pod.Namespace = job.Namespace
	pod.OwnerReferences = []metav1.OwnerReference{kinds.NewControllerRef(job)}
	pod.Finalizers = append(pod.Finalizers, batchv1.JobTrackingFinalizer)
	if ix == noIndex {
		return pod
	}
	v := strconv.Itoa(ix)
	pod.GenerateName = job.Name + "-" + v + "-"
	pod.Spec.Hostname = job.Name + "-" + v
	if pod.Annotations == nil {
		pod.Annotations = map[string]string{}
	}
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Annotations[batchv1.JobCompletionIndexAnnotation] = v
	pod.Labels[batchv1.JobCompletionIndexAnnotation] = v
	if job.Spec.BackoffLimitPerIndex != nil {
		pod.Annotations[batchv1.JobIndexFailureCountAnnotation] = strconv.Itoa(indexFailures)
	}
	env := corev1.EnvVar{Name: CompletionIndexEnv, Value: v}
	for i := range pod.Spec.InitContainers {
		pod.Spec.InitContainers[i].Env = append(pod.Spec.InitContainers[i].Env, env)
	}
	for i := range pod.Spec.Containers {
		pod.Spec.Containers[i].Env = append(pod.Spec.Containers[i].Env, env)
	}
	return pod
}
