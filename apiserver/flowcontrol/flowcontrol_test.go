package flowcontrol

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/waitfor"
)

func TestClassify(t *testing.T) {
	user := func(name, group string) auth.User { return auth.User{Name: name, Groups: []string{group}} }
	node := user("system:node:w1", pki.GroupNodes)
	cm := user("system:controller-manager", pki.GroupControllerManager)
	for _, tc := range []struct {
		req  Request
		want string
	}{
		{Request{User: user("system:apiserver", pki.GroupAPIServers), Resource: "pods"}, Exempt},
		{Request{User: node, Resource: "leases", Namespace: "kube-node-lease"}, NodeHigh},
		{Request{User: node, Resource: "nodes"}, NodeHigh},
		{Request{User: node, Resource: "pods", Namespace: "default"}, System},
		{Request{User: node, Resource: "events", Namespace: "default"}, System},
		{Request{User: cm, Resource: "leases", Namespace: "kube-system"}, LeaderElection},
		{Request{User: user("system:scheduler", pki.GroupScheduler), Resource: "leases", Namespace: "kube-system"}, LeaderElection},
		{Request{User: cm, Resource: "leases", Namespace: "kube-node-lease"}, WorkloadHigh},
		{Request{User: cm, Resource: "pods", Namespace: "default"}, WorkloadHigh},
		{Request{User: user("system:scheduler", pki.GroupScheduler), Resource: "pods"}, WorkloadHigh},
		{Request{User: user("admin", pki.GroupAdmin), Resource: "pods"}, GlobalDefault},
		{Request{User: user("ci", "ci"), Resource: "pods"}, GlobalDefault},
	} {
		if got := Classify(tc.req); got != tc.want {
			t.Errorf("Classify(%+v) = %s, want %s", tc.req, got, tc.want)
		}
	}
}

// testController has one seat in every non-exempt level.
func testController(t *testing.T, mutate func(*Config)) *Controller {
	t.Helper()
	cfg := DefaultConfig()
	cfg.ConcurrencyLimit = 1
	if mutate != nil {
		mutate(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestSeatsFollowShares(t *testing.T) {
	c := testController(t, func(c *Config) { c.ConcurrencyLimit = 600 })
	// 600 seats over 140 shares.
	for level, want := range map[string]int{NodeHigh: 172, System: 129, LeaderElection: 43, WorkloadHigh: 172, GlobalDefault: 86, Exempt: 0} {
		if got := c.Limit(level); got != want {
			t.Errorf("%s: %d seats, want %d", level, got, want)
		}
	}
}

// TestFlowsTakeTurns: a flow with many waiting requests does not delay another flow's
// one request behind all of them.
func TestFlowsTakeTurns(t *testing.T) {
	c := testController(t, nil)
	ctx := context.Background()
	hold, err := c.Admit(ctx, GlobalDefault, "flood")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	queue := func(flow string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			done, err := c.Admit(ctx, GlobalDefault, flow)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, flow)
			mu.Unlock()
			done()
		}()
	}
	waiting := func(n int) {
		waitfor.Condition(t, 10*time.Second, "requests queued", func() (bool, string) {
			l := c.levels[GlobalDefault]
			l.mu.Lock()
			defer l.mu.Unlock()
			return l.waiting == n, ""
		})
	}
	for i := 0; i < 5; i++ {
		queue("flood")
	}
	waiting(5)
	queue("quiet")
	waiting(6)
	hold()
	wg.Wait()
	// The flood's first queued request was served first; then the quiet flow's turn.
	if strings.Join(order, ",") != "flood,quiet,flood,flood,flood,flood" {
		t.Fatalf("served in order %v", order)
	}
	for _, st := range c.Stats() {
		want := LevelStats{Name: st.Name, Limit: st.Limit}
		if st.Name == GlobalDefault {
			want.Dispatched, want.Queued, want.PeakDemand = 7, 6, 7
		}
		if st != want {
			t.Errorf("stats %+v, want %+v", st, want)
		}
	}
}

func TestRefusals(t *testing.T) {
	oneWaiting := func(c *Controller) *Controller {
		for _, l := range c.levels {
			l.QueueLengthLimit = 1
		}
		return c
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var r *Rejected

	// One waits; the wait limit refuses it.
	c := oneWaiting(testController(t, func(c *Config) { c.WaitLimit = 50 * time.Millisecond }))
	hold, err := c.Admit(ctx, GlobalDefault, "u")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Admit(ctx, GlobalDefault, "u")
	if !errors.As(err, &r) || r.RetryAfter != time.Second || !strings.Contains(r.Reason, "waited") {
		t.Fatalf("after the wait limit: %v", err)
	}
	hold()

	// A full queue refuses at once.
	c = oneWaiting(testController(t, nil))
	hold, err = c.Admit(ctx, GlobalDefault, "u")
	if err != nil {
		t.Fatal(err)
	}
	queued := make(chan error, 1)
	go func() {
		done, err := c.Admit(ctx, GlobalDefault, "u")
		if err == nil {
			done()
		}
		queued <- err
	}()
	waitfor.Condition(t, 10*time.Second, "one request queued", func() (bool, string) {
		l := c.levels[GlobalDefault]
		l.mu.Lock()
		defer l.mu.Unlock()
		return l.waiting == 1, ""
	})
	_, err = c.Admit(ctx, GlobalDefault, "u")
	if !errors.As(err, &r) || !strings.Contains(r.Reason, "queue length limit") || r.Flow != "u" || r.Level != GlobalDefault {
		t.Fatalf("with the queue full: %v", err)
	}
	// Another level is not affected; exempt requests never wait.
	done, err := c.Admit(ctx, WorkloadHigh, "system:controller-manager")
	if err != nil {
		t.Fatal(err)
	}
	done()
	for i := 0; i < 10; i++ {
		if _, err := c.Admit(ctx, Exempt, "system:apiserver"); err != nil {
			t.Fatal(err)
		}
	}
	hold()
	if err := <-queued; err != nil {
		t.Fatalf("the queued request: %v", err)
	}
	if _, err := c.Admit(ctx, "none", "x"); err == nil {
		t.Fatal("unknown level admitted")
	}

	// A caller that gives up leaves the queue.
	hold, _ = c.Admit(ctx, System, "a")
	cctx, cancelWait := context.WithCancel(ctx)
	cancelWait()
	if _, err := c.Admit(cctx, System, "b"); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled wait: %v", err)
	}
	hold()
	for _, l := range c.levels {
		if l.waiting != 0 || len(l.ring) != 0 || l.executing != 0 {
			t.Fatalf("%s left with %d waiting, %d flows, %d executing", l.Name, l.waiting, len(l.ring), l.executing)
		}
	}
}

// TestRetryAfterGrows is Kubernetes' rule: the delay doubles under sustained refusals
// (three per second of delay) and shrinks when they stop.
func TestRetryAfterGrows(t *testing.T) {
	now := time.Unix(1000, 0)
	d := dropTracker{now: func() time.Time { return now }, retryAfter: 1}
	drop := func(n int) time.Duration {
		var got time.Duration
		for i := 0; i < n; i++ {
			got = d.record()
		}
		return got
	}
	if got := drop(3); got != time.Second {
		t.Fatalf("first second: %v", got)
	}
	now = now.Add(time.Second)
	if got := drop(1); got != 2*time.Second {
		t.Fatalf("after three refusals in a second: %v, want 2s", got)
	}
	drop(5)
	now = now.Add(2 * time.Second)
	if got := drop(1); got != 4*time.Second {
		t.Fatalf("after six refusals in two seconds: %v, want 4s", got)
	}
	for i := 0; i < 3; i++ {
		now = now.Add(10 * time.Second)
		drop(1)
	}
	if got := drop(0); d.retryAfter != 1 || got != 0 {
		t.Fatalf("quiet again: retry after %ds", d.retryAfter)
	}
}

func TestConfig(t *testing.T) {
	cfg := DefaultConfig()
	if err := ParseLevels(cfg.Levels, "--priority-level-shares", "global-default=5, workload-high=80", func(l *Level, n int) { l.Shares = n }); err != nil {
		t.Fatal(err)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	// 3000 × 5 / 165 and 3000 × 80 / 165, rounded up.
	if c.Limit(GlobalDefault) != 91 || c.Limit(WorkloadHigh) != 1455 {
		t.Fatalf("seats %d and %d", c.Limit(GlobalDefault), c.Limit(WorkloadHigh))
	}
	for value, want := range map[string]string{
		"exempt=3":    `"exempt" is not a priority level (global-default, leader-election, node-high, system, workload-high)`,
		"system":      `"system" is not level=number`,
		"system=many": `"system=many" is not level=number`,
	} {
		err := ParseLevels(cfg.Levels, "--priority-level-shares", value, func(l *Level, n int) {})
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: %v, want %q", value, err, want)
		}
	}
	bad := DefaultConfig()
	bad.Levels = bad.Levels[1:]
	if _, err := New(bad); err == nil || !strings.Contains(err.Error(), `"exempt" is missing`) {
		t.Fatalf("missing level: %v", err)
	}
	bad = DefaultConfig()
	bad.Levels[1].Shares = 0
	if _, err := New(bad); err == nil {
		t.Fatal("zero shares accepted")
	}
}
