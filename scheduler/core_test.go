package scheduler

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/kinds"
)

func TestConfigValidate(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("default config: %v", err)
	}
	cfg.PercentageOfNodesToScore = 101
	cfg.Parallelism = 0
	cfg.PodMaxBackoff = time.Millisecond
	err := cfg.Validate()
	if err == nil {
		t.Fatal("invalid config accepted")
	}
	for _, field := range []string{"percentageOfNodesToScore", "parallelism", "podMaxBackoff"} {
		if !strings.Contains(err.Error(), field) {
			t.Errorf("error %q does not name %s", err, field)
		}
	}
}

// scriptedBinder fails binds with the errors it is given, then succeeds.
type scriptedBinder struct {
	mu    sync.Mutex
	errs  []error
	calls chan string
}

func (b *scriptedBinder) Bind(_ context.Context, pod *corev1.Pod, node string) error {
	b.mu.Lock()
	var err error
	if len(b.errs) > 0 {
		err, b.errs = b.errs[0], b.errs[1:]
	}
	b.mu.Unlock()
	b.calls <- node
	return err
}

type eventLog struct {
	mu     sync.Mutex
	events []string
}

func (l *eventLog) Eventf(_ kinds.Object, typ, reason, format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, typ+" "+reason)
}

func (l *eventLog) has(e string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.events {
		if x == e {
			return true
		}
	}
	return false
}

func newCoreScheduler(t *testing.T, errs ...error) (*Scheduler, *scriptedBinder, *eventLog) {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Seed = 1
	cfg.PodInitialBackoff = time.Millisecond
	cfg.PodMaxBackoff = time.Millisecond
	s, err := newScheduler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	b := &scriptedBinder{errs: errs, calls: make(chan string, 10)}
	ev := &eventLog{}
	s.binder, s.events = b, ev
	s.cache.AddNode(makeNode("n1", "2", "2Gi"))
	return s, b, ev
}

// cycle pops and schedules one pod and waits for its bind to return.
func cycle(t *testing.T, s *Scheduler, b *scriptedBinder) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	qp, err := s.queue.Pop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.scheduleOne(ctx, qp)
	select {
	case <-b.calls:
	case <-ctx.Done():
		t.Fatal("no bind")
	}
	s.wg.Wait()
}

func TestBindFailureRetriesAfterBackoff(t *testing.T) {
	s, b, ev := newCoreScheduler(t, status.Error(codes.Unavailable, "no leader"))
	s.queue.Add(makePod("p", "1", ""))
	cycle(t, s, b)
	if s.cache.IsAssumed("default/p") {
		t.Fatal("failed bind left the pod assumed")
	}
	if !ev.has("Warning FailedScheduling") {
		t.Fatal("no FailedScheduling event")
	}
	if _, backoff, _ := s.queue.Lens(); backoff != 1 {
		t.Fatalf("pod not in back-off")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.queue.Run(ctx)
	cycle(t, s, b) // the retry binds
	if !s.cache.IsAssumed("default/p") || !ev.has("Normal Scheduled") {
		t.Fatal("retry did not bind")
	}
}

func TestBindAlreadyBoundDrops(t *testing.T) {
	s, b, ev := newCoreScheduler(t, status.Error(codes.FailedPrecondition, "pod default/p is already assigned to node n2"))
	s.queue.Add(makePod("p", "1", ""))
	cycle(t, s, b)
	if _, _, counted := s.cache.Counted("default/p"); counted {
		t.Fatal("lost bind left the pod counted")
	}
	if a, bo, u := s.queue.Lens(); a+bo+u != 0 {
		t.Fatal("lost bind requeued the pod")
	}
	if ev.has("Normal Scheduled") || ev.has("Warning FailedScheduling") {
		t.Fatalf("events for a pod another scheduler bound: %v", ev.events)
	}
}
