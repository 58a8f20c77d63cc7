package e2e

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// podStages records, as a watcher sees them, when each pod of a benchmark passed each
// stage of its life: where a benchmark's time goes between the controller, the
// scheduler and the kubelet, to the millisecond (the objects' own timestamps are
// whole seconds). The times are those of the watch's delivery to the benchmark, so
// each includes the store's commit and the fan-out, as every component sees them.
type podStages struct {
	mu    sync.Mutex
	start time.Time
	pods  map[types.UID]*[numStages]time.Time
}

type stage int

const (
	stageCreated  stage = iota // added to the watcher's cache
	stageBound                 // spec.nodeName set
	stageStarted               // Running (a container started)
	stageReady                 // Ready condition true
	stageFinished              // Succeeded or Failed
	stageReleased              // the Job's tracking finalizer removed
	stageDeleting              // deletionTimestamp set
	stageGone                  // deleted from the store
	numStages
)

var stageNames = [numStages]string{"created", "bound", "started", "ready", "finished", "released", "deleting", "gone"}

func newPodStages(start time.Time) *podStages {
	return &podStages{start: start, pods: map[types.UID]*[numStages]time.Time{}}
}

// observe notes the stages p has reached. Pods made before this record began (a
// second phase's old pods) are followed only to their deletion: their earlier stages
// would read as instant.
func (s *podStages) observe(p *corev1.Pod, added bool) {
	now := time.Now()
	if added {
		s.mark(p.UID, stageCreated, now)
	}
	s.mu.Lock()
	_, known := s.pods[p.UID]
	s.mu.Unlock()
	if p.DeletionTimestamp != nil {
		s.mark(p.UID, stageDeleting, now)
	}
	if !known {
		return
	}
	if p.Spec.NodeName != "" {
		s.mark(p.UID, stageBound, now)
	}
	if p.Status.Phase == corev1.PodRunning {
		s.mark(p.UID, stageStarted, now)
	}
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			s.mark(p.UID, stageReady, now)
		}
	}
	if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
		s.mark(p.UID, stageFinished, now)
		held := false
		for _, f := range p.Finalizers {
			held = held || f == batchv1.JobTrackingFinalizer
		}
		if ref := metav1.GetControllerOfNoCopy(p); !held && ref != nil && ref.Kind == "Job" {
			s.mark(p.UID, stageReleased, now)
		}
	}
}

func (s *podStages) mark(uid types.UID, st stage, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ts := s.pods[uid]
	if ts == nil {
		ts = &[numStages]time.Time{}
		s.pods[uid] = ts
	}
	if ts[st].IsZero() {
		ts[st] = at
	}
}

// Counts says how many pods have reached each stage so far (for progress lines).
func (s *podStages) Counts() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n [numStages]int
	for _, ts := range s.pods {
		for i, t := range ts {
			if !t.IsZero() {
				n[i]++
			}
		}
	}
	parts := make([]string, 0, numStages)
	for i, c := range n {
		if c > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", stageNames[i], c))
		}
	}
	return fmt.Sprintf("%6.1fs %s", time.Since(s.start).Seconds(), strings.Join(parts, ", "))
}

// Report writes, for each step from one stage to the next that pods took, the p50,
// p99 and max of its duration, and when the first and the last pod reached the later
// stage (seconds since the start): the steps with the long tails are where the time went.
func (s *podStages) Report(w io.Writer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reportCreated(w)
	steps := []struct{ from, to stage }{{stageCreated, stageBound}, {stageBound, stageStarted}, {stageStarted, stageReady},
		{stageBound, stageFinished}, {stageFinished, stageReleased}, {stageDeleting, stageGone}}
	for _, st := range steps {
		var d []time.Duration
		var first, last time.Time
		for _, ts := range s.pods {
			if ts[st.from].IsZero() || ts[st.to].IsZero() {
				continue
			}
			d = append(d, ts[st.to].Sub(ts[st.from]))
			if first.IsZero() || ts[st.to].Before(first) {
				first = ts[st.to]
			}
			if ts[st.to].After(last) {
				last = ts[st.to]
			}
		}
		if len(d) == 0 {
			continue
		}
		fmt.Fprintf(w, "stage %-8s -> %-8s pods %5d  p50 %6.0f ms  p99 %6.0f ms  max %6.0f ms  reached %.1f-%.1fs\n",
			stageNames[st.from], stageNames[st.to], len(d), benchfig.Percentile(d, 0.5), benchfig.Percentile(d, 0.99),
			benchfig.Percentile(d, 1), first.Sub(s.start).Seconds(), last.Sub(s.start).Seconds())
	}
}

// reportCreated writes when the pods were created (seconds since the start), in the
// bursts a watcher saw them arrive (a gap of 20 ms or more between two creations
// starts a new one): a controller's slow-start batches show as bursts of 1, 2, 4 …
// pods, and the gaps between them are what each round waited for.
func (s *podStages) reportCreated(w io.Writer) {
	var at []time.Time
	for _, ts := range s.pods {
		if !ts[stageCreated].IsZero() && !ts[stageCreated].Before(s.start) {
			at = append(at, ts[stageCreated])
		}
	}
	if len(at) == 0 {
		return
	}
	slices.SortFunc(at, func(a, b time.Time) int { return a.Compare(b) })
	var bursts []string
	first := 0
	for i := 1; i <= len(at); i++ {
		if i == len(at) || at[i].Sub(at[i-1]) >= 20*time.Millisecond {
			bursts = append(bursts, fmt.Sprintf("%d@%.2f", i-first, at[first].Sub(s.start).Seconds()))
			first = i
		}
	}
	fmt.Fprintf(w, "stage created pods %5d  reached %.2f-%.2fs  in %d bursts (pods@s): %s\n", len(at),
		at[0].Sub(s.start).Seconds(), at[len(at)-1].Sub(s.start).Seconds(), len(bursts), strings.Join(bursts, " "))
}

// Last is when the last pod reached st (zero if none has).
func (s *podStages) Last(st stage) time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	var last time.Time
	for _, ts := range s.pods {
		if ts[st].After(last) {
			last = ts[st]
		}
	}
	return last
}

// watchStages records the stages of the pods in namespace on f's pod informer (which
// the caller starts), and prints a progress line to stderr every 10 s until ctx ends,
// so a long run shows where it stands while it runs. reset starts a new record (for a
// benchmark's second phase) and returns the one it replaces.
func watchStages(ctx context.Context, f *cache.Factory, namespace string, extra func() string) (reset func() *podStages) {
	var cur atomic.Pointer[podStages]
	cur.Store(newPodStages(time.Now()))
	inf := cache.InformerFor[*corev1.Pod](f, namespace, client.ListOptions{})
	inf.AddHandler(cache.Handler[*corev1.Pod]{
		OnAdd:    func(p *corev1.Pod) { cur.Load().observe(p, true) },
		OnUpdate: func(_, p *corev1.Pod) { cur.Load().observe(p, false) },
		OnDelete: func(p *corev1.Pod) { cur.Load().mark(p.UID, stageGone, time.Now()) },
	})
	go func() {
		t := time.NewTicker(10 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				line := cur.Load().Counts()
				if extra != nil {
					line += "; " + extra()
				}
				fmt.Fprintln(os.Stderr, "progress", line)
			}
		}
	}()
	return func() *podStages { return cur.Swap(newPodStages(time.Now())) }
}
