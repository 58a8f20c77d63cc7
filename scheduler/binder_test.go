package scheduler

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestBatchBinderGroupsWaitingBinds: a bind with the calls idle goes at once and alone;
// the binds that queue behind a call in flight go together, at most size a call, each
// with its own outcome; a bind given up while queued is not sent.
func TestBatchBinderGroupsWaitingBinds(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	var calls [][]string
	b := &batchBinder{size: 3, calls: 1, timeout: time.Minute, queue: make(chan *queuedBind, 16),
		bindEach: func(ctx context.Context, bs []client.Binding) ([]*corev1.Pod, []error) {
			mu.Lock()
			var names []string
			for _, b := range bs {
				names = append(names, b.Name)
			}
			calls = append(calls, names)
			first := len(calls) == 1
			mu.Unlock()
			if first {
				<-release // the first call is slow: the others queue behind it
			}
			errs := make([]error, len(bs))
			for i, b := range bs {
				if b.Name == "gone" {
					errs[i] = status.Error(codes.NotFound, `pods "gone" not found`)
				}
			}
			return make([]*corev1.Pod, len(bs)), errs
		}}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() { defer close(ran); b.run(ctx) }()
	defer func() { cancel(); <-ran }()

	var wg sync.WaitGroup
	results := map[string]error{}
	bind := func(ctx context.Context, name string) {
		wg.Go(func() {
			err := b.Bind(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}}, "w1")
			mu.Lock()
			results[name] = err
			mu.Unlock()
		})
	}
	bind(ctx, "first")
	waitfor.Condition(t, time.Minute, "the first call", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(calls) == 1, fmt.Sprint(calls)
	})
	late, giveUp := context.WithCancel(ctx)
	bind(late, "given-up")
	waitfor.Condition(t, time.Minute, "the bind to queue", func() (bool, string) { return len(b.queue) == 1, fmt.Sprint(len(b.queue)) })
	for _, name := range []string{"p1", "p2", "gone", "p4", "p5", "p6"} {
		bind(ctx, name)
	}
	waitfor.Condition(t, time.Minute, "the binds to queue", func() (bool, string) { return len(b.queue) == 7, fmt.Sprint(len(b.queue)) })
	giveUp()
	waitfor.Condition(t, time.Minute, "the given-up bind to return", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		_, ok := results["given-up"]
		return ok, ""
	})
	close(release)
	wg.Wait()

	var sizes []int
	for _, c := range calls {
		sizes = append(sizes, len(c))
		if slices.Contains(c, "given-up") {
			t.Errorf("a given-up bind was sent: %v", calls)
		}
	}
	if !slices.Equal(sizes, []int{1, 3, 3}) || calls[0][0] != "first" {
		t.Errorf("calls %v, want [first] then two of three", calls)
	}
	for name, err := range results {
		switch name {
		case "gone":
			if !client.IsNotFound(err) {
				t.Errorf("%s: %v, want NotFound", name, err)
			}
		case "given-up":
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s: %v, want its context's end", name, err)
			}
		default:
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
		}
	}
}

// TestPendingPodsBoundInBatches: pods pending when the scheduler starts are bound in
// BindBatch calls, a store transaction each (so far fewer resourceVersions than pods),
// each pod with its Scheduled event.
func TestPendingPodsBoundInBatches(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	cs := dial(t, c.Addrs())
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := range 2 { // 110 pods each
		createNode(t, ctx, cs, makeNode(fmt.Sprintf("n%d", i), "64", "64Gi"))
	}
	const n = 150
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		pods[i] = makePod(fmt.Sprintf("p%d", i), "100m", "")
		pods[i].UID, pods[i].CreationTimestamp, pods[i].Status = "", metav1.Time{}, corev1.PodStatus{}
	}
	for start := 0; start < n; start += client.MaxCreateBatch {
		_, errs := cs.Pods.CreateEach(ctx, pods[start:min(start+client.MaxCreateBatch, n)])
		if err := errors.Join(errs...); err != nil {
			t.Fatal(err)
		}
	}
	startScheduler(t, cs, 21)
	revisions := map[string]bool{}
	waitfor.Condition(t, time.Minute, "every pod bound", func() (bool, string) {
		bound := 0
		clear(revisions)
		for _, p := range listPods(t, ctx, cs) {
			if p.Spec.NodeName != "" {
				bound++
				revisions[p.ResourceVersion] = true
			}
		}
		return bound == n, fmt.Sprintf("%d of %d bound", bound, n)
	})
	t.Logf("%d pods bound at %d revisions", n, len(revisions))
	if len(revisions) > n/2 {
		t.Errorf("%d pods bound at %d revisions: want the bindings batched", n, len(revisions))
	}
	waitfor.Condition(t, time.Minute, "a Scheduled event per pod", func() (bool, string) {
		ev := scheduledEvents(t, ctx, cs)
		return len(ev) == n, fmt.Sprintf("%d pods with events", len(ev))
	})
	for uid, count := range scheduledEvents(t, ctx, cs) {
		if count != 1 {
			t.Errorf("pod %s: %d Scheduled events", uid, count)
		}
	}
}
