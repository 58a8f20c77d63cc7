package leader_test

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/leader"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// term is one candidate's time as leader, by this process's clock.
type term struct {
	who        string
	start, end time.Time
}

type termLog struct {
	mu    sync.Mutex
	terms []term
}

func (l *termLog) candidate(t *testing.T, ctx context.Context, id string, addrs []string) (stop func()) {
	conn, err := client.Dial(addrs, client.Options{AttemptTimeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	cfg := leader.DefaultConfig()
	cfg.Name, cfg.Identity = "test-lease", id
	cfg.LeaseDuration, cfg.RenewDeadline, cfg.RetryPeriod = 3*time.Second, 2*time.Second, 250*time.Millisecond
	cfg.OnStartedLeading = func(ctx context.Context) {
		start := time.Now()
		<-ctx.Done()
		l.mu.Lock()
		l.terms = append(l.terms, term{who: id, start: start, end: time.Now()})
		l.mu.Unlock()
	}
	e, err := leader.New(client.For[*coordinationv1.Lease](conn), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { e.Run(cctx); close(done) }()
	return func() { cancel(); <-done; conn.Close() }
}

func (l *termLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.terms)
}

// current reports who leads according to the lease, waiting for a holder.
func holder(t *testing.T, ctx context.Context, leases *client.Client[*coordinationv1.Lease]) string {
	for {
		l, err := leases.Get(ctx, "default", "test-lease")
		if err == nil && ptr.Deref(l.Spec.HolderIdentity, "") != "" {
			return *l.Spec.HolderIdentity
		}
		select {
		case <-ctx.Done():
			t.Fatal("nobody took the lease")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func TestElectorsNeverOverlap(t *testing.T) {
	c := apicluster.Start(t, 3, apicluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 180*time.Second)
	defer cancel()
	conn, _ := client.Dial(c.Addrs(), client.Options{})
	defer conn.Close()
	leases := client.For[*coordinationv1.Lease](conn)
	log := &termLog{}

	// Candidate "a" reaches only server 0, so stopping server 0 cuts it off while it
	// leads: it must step down before "b" takes over. "b" and "c" reach every server.
	stops := map[string]func(){}
	stops["a"] = log.candidate(t, ctx, "a", []string{c.Addr(0)})
	waitHolder := func(not string) string {
		for {
			h := holder(t, ctx, leases)
			if h != not {
				return h
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if h := waitHolder(""); h != "a" {
		t.Fatalf("first holder %s", h)
	}
	stops["b"] = log.candidate(t, ctx, "b", c.Addrs())
	stops["c"] = log.candidate(t, ctx, "c", c.Addrs())

	c.Stop(0) // a loses its only server: an expired lease, not a released one
	h := waitHolder("a")
	c.Restart(0)
	c.WaitReady()
	// Several more terms: the holder is stopped (releasing the lease) and restarted, and
	// an API server fails over in the middle.
	for i := 0; i < 4; i++ {
		stops[h]()
		if i == 2 {
			c.Stop(c.Leader())
		}
		addrs := c.Addrs()
		if h == "a" {
			addrs = []string{c.Addr(0)}
		}
		next := waitHolder(h)
		stops[h] = log.candidate(t, ctx, h, addrs)
		h = next
	}
	for _, stop := range stops {
		stop()
	}
	log.mu.Lock()
	defer log.mu.Unlock()
	sort.Slice(log.terms, func(i, j int) bool { return log.terms[i].start.Before(log.terms[j].start) })
	if len(log.terms) < 5 {
		t.Fatalf("only %d terms", len(log.terms))
	}
	for i := 1; i < len(log.terms); i++ {
		prev, cur := log.terms[i-1], log.terms[i]
		if cur.start.Before(prev.end) {
			t.Fatalf("%s started leading at %v before %s stopped at %v", cur.who, cur.start.Format(time.StampMicro), prev.who, prev.end.Format(time.StampMicro))
		}
	}
	var s []string
	for _, tm := range log.terms {
		s = append(s, fmt.Sprintf("%s %v", tm.who, tm.end.Sub(tm.start).Round(time.Millisecond)))
	}
	t.Logf("terms: %v", s)
}

// TestLeaderRenewsADeletedLease: the leader renews the Lease it last wrote without
// reading it first; when it was deleted, the renewal reads it, finds none and makes it
// again, and the same term goes on.
func TestLeaderRenewsADeletedLease(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var log termLog
	stop := log.candidate(t, ctx, "a", c.Addrs())
	defer stop()
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	leases := client.For[*coordinationv1.Lease](conn)
	if h := holder(t, ctx, leases); h != "a" {
		t.Fatalf("lease held by %q, want a", h)
	}
	if _, err := leases.Delete(ctx, "default", "test-lease", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "the lease made again by a", func() (bool, error) {
		l, err := leases.Get(ctx, "default", "test-lease")
		if client.IsNotFound(err) {
			return false, nil
		}
		return err == nil && ptr.Deref(l.Spec.HolderIdentity, "") == "a", err
	})
	if n := log.count(); n != 0 {
		t.Fatalf("%d terms ended after the lease was deleted, want none", n)
	}
}
