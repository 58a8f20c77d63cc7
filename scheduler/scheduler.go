package scheduler

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/kinds"
)

// eventRecorder is the part of *record.Recorder the scheduler uses.
type eventRecorder interface {
	Eventf(obj kinds.Object, eventType, reason, format string, args ...any)
}

// Scheduler assigns pending pods to nodes. See the package documentation.
type Scheduler struct {
	cfg    Config
	log    hclog.Logger
	fw     *Framework
	cache  *Cache
	queue  *Queue
	binder binder
	// batches is the binder that sends the API servers' calls, which Run runs; nil in
	// benchmarks.
	batches *batchBinder
	events  eventRecorder
	// pods writes the PodScheduled condition; nil in benchmarks.
	pods *client.Client[*corev1.Pod]
	// lookup reads a pod's current state from the informer; nil in benchmarks.
	lookup func(namespace, name string) (*corev1.Pod, bool)

	factory     *cache.Factory // set when the scheduler runs it
	recorder    *record.Recorder
	podInformer *cache.Informer[*corev1.Pod]
	nodeInf     *cache.Informer[*corev1.Node]
	nsInf       *cache.Informer[*corev1.Namespace]
	// vols and claims are the claims, volumes and classes the volume binding reads, and
	// the client that names a claim's node; nil in benchmarks.
	vols   *Volumes
	claims *client.Client[*corev1.PersistentVolumeClaim]

	// volumeSynced waits for the volume informers; nil without them.
	volumeSynced func(ctx context.Context) bool
	// pdbs reads the PodDisruptionBudgets preemption respects; nil in benchmarks.
	pdbs   PDBLister
	pdbInf *cache.Informer[*policyv1.PodDisruptionBudget]

	sem chan struct{} // bounds binds and status writes in flight
	wg  sync.WaitGroup
}

// New makes a scheduler over the API servers cs reaches. Run starts it.
func New(cs *client.Clientset, cfg Config) (*Scheduler, error) {
	s, err := newScheduler(cfg)
	if err != nil {
		return nil, err
	}
	s.batches = newBatchBinder(cs.Conn, s.cfg)
	s.binder = s.batches
	s.pods = cs.Pods
	if s.cfg.Recorder == nil {
		s.recorder = record.New(cs.Events, record.Config{Component: s.cfg.Name, Host: s.cfg.Host, Logger: s.cfg.Logger})
		s.events = s.recorder
	} else {
		s.events = s.cfg.Recorder
	}
	f := s.cfg.Informers
	if f == nil {
		f = cache.NewFactory(cs, s.cfg.Logger)
		s.factory = f
	}
	// On its own factory, as Kubernetes' scheduler: no finished pod (it holds nothing on
	// its node), so that a pod's finish arrives as its deletion and the writes after it
	// (a Job releasing its tracking finalizer) not at all. A factory shared with the
	// controllers (skiff up) has every pod decoded already: a second watch would cost
	// more than it saves, and the handlers take a finished pod as gone either way.
	pods := client.ListOptions{}
	if s.factory != nil {
		pods.FieldSelector = unfinishedPods
	}
	s.podInformer = cache.InformerFor[*corev1.Pod](f, "", pods)
	if s.factory != nil {
		// The factory is the scheduler's alone; the pods of one controller hold their
		// template's parts once between them (issue 26).
		parts := cache.NewPodParts()
		s.podInformer.SetTransform(func(p *corev1.Pod) *corev1.Pod { return parts.Share(schedulingFields(p)) })
	}
	s.nodeInf = cache.InformerFor[*corev1.Node](f, "", client.ListOptions{})
	s.nsInf = cache.InformerFor[*corev1.Namespace](f, "", client.ListOptions{})
	lister := s.podInformer.Lister()
	s.lookup = lister.Get
	s.podInformer.AddHandler(cache.Handler[*corev1.Pod]{OnAdd: s.podAdded, OnUpdate: s.podUpdated, OnDelete: s.podDeleted})
	s.nodeInf.AddHandler(cache.Handler[*corev1.Node]{OnAdd: s.nodeAdded, OnUpdate: s.nodeUpdated, OnDelete: s.nodeDeleted})
	s.nsInf.AddHandler(cache.Handler[*corev1.Namespace]{OnAdd: s.namespaceAdded, OnUpdate: s.namespaceUpdated, OnDelete: s.namespaceDeleted})
	s.watchVolumes(cs, f)
	s.pdbInf = cache.InformerFor[*policyv1.PodDisruptionBudget](f, "", client.ListOptions{})
	pdbs := s.pdbInf.Lister()
	s.pdbs = func() []*policyv1.PodDisruptionBudget { return pdbs.List(labels.Everything()) }
	return s, nil
}

// unfinishedPods selects the pods the scheduler watches: those neither Succeeded nor
// Failed (Kubernetes' scheduler's pod informer selects the same).
const unfinishedPods = "status.phase!=" + string(corev1.PodSucceeded) + ",status.phase!=" + string(corev1.PodFailed)

// schedulingFields keeps of a bound pod what the scheduler reads: its spec (requests,
// ports, node), its labels, owners and deletion, and its phase. The scheduler caches
// every pod of the cluster and writes the status only of pods it has not bound, so a
// bound pod's conditions, container statuses and annotations are dropped: at 10,000
// running pods that is about a tenth of the scheduler's heap.
func schedulingFields(pod *corev1.Pod) *corev1.Pod {
	if pod.Spec.NodeName == "" {
		return pod
	}
	pod.Annotations = nil
	pod.ManagedFields = nil
	pod.Status = corev1.PodStatus{Phase: pod.Status.Phase}
	return pod
}

// newScheduler makes the scheduler's core: no informers, no binder.
func newScheduler(cfg Config) (*Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	fw, err := NewFramework(cfg.Registry, cfg.Profile, FrameworkOptions{
		PercentageOfNodesToScore: cfg.PercentageOfNodesToScore, Parallelism: cfg.Parallelism,
		Rand: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
	})
	if err != nil {
		return nil, fmt.Errorf("scheduler config: %w", err)
	}
	return &Scheduler{
		cfg: cfg, log: cfg.Logger.Named("scheduler"), fw: fw, cache: NewCache(),
		queue: NewQueue(QueueConfig{InitialBackoff: cfg.PodInitialBackoff, MaxBackoff: cfg.PodMaxBackoff,
			MaxUnschedulable: cfg.PodMaxUnschedulableDuration, Now: cfg.Now}),
		sem: make(chan struct{}, cfg.MaxConcurrentBinds),
	}, nil
}

// Cache is the scheduler's node and pod accounting (for inspection and tests).
func (s *Scheduler) Cache() *Cache { return s.cache }

// Queue is the scheduler's queue of pending pods (for inspection and tests).
func (s *Scheduler) Queue() *Queue { return s.queue }

// Run schedules pods until ctx ends, then waits for the binds and status writes in
// flight and returns. Run it once per Scheduler, and only while leading: two schedulers
// never bind a pod twice (Bind is a compare-and-swap), but they do not see each other's
// assumptions.
func (s *Scheduler) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	var bg sync.WaitGroup
	defer func() {
		cancel()
		s.wg.Wait()
		bg.Wait()
		if s.factory != nil {
			s.factory.Wait()
		}
	}()
	if s.factory != nil {
		s.factory.Start(ctx)
	}
	if s.recorder != nil {
		bg.Go(func() { s.recorder.Run(ctx) })
	}
	if s.batches != nil {
		bg.Go(func() { s.batches.run(ctx) })
	}
	if s.podInformer != nil && !cache.WaitForSync(ctx, s.podInformer, s.nodeInf, s.nsInf, s.pdbInf) {
		return nil
	}
	if s.volumeSynced != nil && !s.volumeSynced(ctx) {
		return nil
	}
	s.log.Info("caches synced; scheduling", "nodes", s.cache.NumNodes())
	bg.Go(func() { s.queue.Run(ctx) })
	s.loop(ctx)
	return nil
}

// loop schedules one pod at a time until ctx ends.
func (s *Scheduler) loop(ctx context.Context) {
	for {
		qp, err := s.queue.Pop(ctx)
		if err != nil {
			return
		}
		s.scheduleOne(ctx, qp)
	}
}

// scheduleOne runs one scheduling cycle: pick a node, assume the pod there, and bind
// in the background.
func (s *Scheduler) scheduleOne(ctx context.Context, qp *QueuedPod) {
	pod := qp.Pod
	if s.lookup != nil {
		cur, ok := s.lookup(pod.Namespace, pod.Name)
		if !ok || cur.Spec.NodeName != "" || cur.DeletionTimestamp != nil {
			s.queue.Done(qp.Key) // gone, bound or going: nothing to do
			return
		}
		pod = cur
	}
	if s.cache.IsAssumed(qp.Key) {
		s.queue.Done(qp.Key) // its binding is under way
		return
	}
	res, err := s.cache.scheduleAndAssume(s.fw, NewPodInfo(pod))
	if err != nil {
		var fit *FitError
		if errors.As(err, &fit) {
			qp.RetryOnPodAdded = s.fw.RetriesOnPodAdded(fit.Plugins)
			msg, res, preempting := s.preempt(pod, fit)
			s.queue.AddUnschedulable(qp)
			if !preempting {
				s.reportUnschedulable(ctx, pod, msg)
				return
			}
			s.events.Eventf(pod, record.Warning, "FailedScheduling", "%s", msg)
			if s.acquire(ctx) {
				s.wg.Go(func() {
					defer s.release()
					s.evictAll(ctx, pod, msg, res)
				})
			}
			return
		}
		s.log.Error("scheduling cycle failed", "pod", qp.Key, "error", err)
		s.queue.AddBackoff(qp)
		return
	}
	s.queue.Done(qp.Key)
	if !s.acquire(ctx) {
		s.cache.Forget(qp.Key)
		return
	}
	s.wg.Go(func() {
		defer s.release()
		s.bind(ctx, qp, pod, res.Node)
	})
}

func (s *Scheduler) acquire(ctx context.Context) bool {
	select {
	case s.sem <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (s *Scheduler) release() { <-s.sem }

// bind binds an assumed pod. When the pod is already bound (another scheduler won),
// gone or replaced, it is dropped: the watch tells the cache where it really is.
// Other failures undo the assumption and retry the pod after its back-off.
func (s *Scheduler) bind(ctx context.Context, qp *QueuedPod, pod *corev1.Pod, node string) {
	bctx, cancel := context.WithTimeout(ctx, s.cfg.BindTimeout)
	var err error
	if s.vols != nil {
		err = selectNode(bctx, s.claims, s.vols, pod, node)
	}
	if err == nil {
		err = s.binder.Bind(bctx, pod, node)
	}
	cancel()
	switch {
	case err == nil:
		s.log.Debug("bound", "pod", qp.Key, "node", node)
		s.events.Eventf(pod, record.Normal, "Scheduled", "Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, node)
	case client.IsForbidden(err) || client.IsNotFound(err) || client.IsConflict(err):
		s.log.Debug("pod no longer needs binding", "pod", qp.Key, "node", node, "error", err)
		s.cache.Forget(qp.Key)
	default:
		s.cache.Forget(qp.Key)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("bind failed; retrying after back-off", "pod", qp.Key, "node", node, "error", err)
		s.events.Eventf(pod, record.Warning, "FailedScheduling", "Binding rejected: %v", err)
		s.queue.AddBackoff(qp)
	}
}

// reportUnschedulable tells the user why a pod waits: a FailedScheduling Event and the
// pod's PodScheduled=False condition, written in the background.
func (s *Scheduler) reportUnschedulable(ctx context.Context, pod *corev1.Pod, msg string) {
	s.log.Debug("pod is unschedulable", "pod", podKey(pod), "reason", msg)
	s.events.Eventf(pod, record.Warning, "FailedScheduling", "%s", msg)
	if s.pods == nil || !s.acquire(ctx) {
		return
	}
	s.wg.Go(func() {
		defer s.release()
		if err := s.setUnschedulable(ctx, pod, msg, ""); err != nil && ctx.Err() == nil {
			s.log.Warn("set PodScheduled condition failed", "pod", podKey(pod), "error", err)
		}
	})
}

// setUnschedulable writes PodScheduled=False with reason Unschedulable (and the
// nominated node, when not ""), as a compare-and-swap so that it never lands on a pod
// bound meanwhile.
func (s *Scheduler) setUnschedulable(ctx context.Context, pod *corev1.Pod, msg, nominated string) error {
	ns, name, uid := pod.Namespace, pod.Name, pod.UID
	for attempt := 0; attempt < 5; attempt++ {
		if pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil || pod.UID != uid {
			return nil // bound, going, or replaced by another pod of the name
		}
		var old *corev1.PodCondition
		for i := range pod.Status.Conditions {
			if pod.Status.Conditions[i].Type == corev1.PodScheduled {
				old = &pod.Status.Conditions[i]
			}
		}
		if old != nil && old.Status == corev1.ConditionFalse && old.Reason == corev1.PodReasonUnschedulable && old.Message == msg &&
			(nominated == "" || pod.Status.NominatedNodeName == nominated) {
			return nil
		}
		next := pod.DeepCopy()
		if nominated != "" {
			next.Status.NominatedNodeName = nominated
		}
		if next.Status.Phase == "" {
			next.Status.Phase = corev1.PodPending
		}
		now := metav1.NewTime(s.cfg.Now())
		cond := corev1.PodCondition{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
			Reason: corev1.PodReasonUnschedulable, Message: msg, LastProbeTime: now, LastTransitionTime: now}
		if old != nil && old.Status == corev1.ConditionFalse {
			cond.LastTransitionTime = old.LastTransitionTime
		}
		replaced := false
		for i := range next.Status.Conditions {
			if next.Status.Conditions[i].Type == corev1.PodScheduled {
				next.Status.Conditions[i], replaced = cond, true
			}
		}
		if !replaced {
			next.Status.Conditions = append(next.Status.Conditions, cond)
		}
		wctx, cancel := context.WithTimeout(ctx, s.cfg.BindTimeout)
		_, err := s.pods.UpdateStatus(wctx, next)
		if client.IsConflict(err) {
			// Changed meanwhile (bound, perhaps): look again at the current pod.
			pod, err = s.pods.Get(wctx, ns, name)
			if err == nil {
				cancel()
				continue
			}
		}
		cancel()
		if err == nil || client.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("update status of pod %s/%s: %w", ns, name, err)
	}
	return fmt.Errorf("update status of pod %s/%s: too many conflicts", ns, name)
}
