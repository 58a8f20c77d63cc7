package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/skiffhq/skiff/test/waitfor"
)

// testLog sends a node's logs to t.Log, and drops them once the test is over.
type testLog struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (l *testLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.done {
		l.t.Log(string(p[:len(p)-1]))
	}
	return len(p), nil
}

// cluster is n store nodes in this process, on loopback.
type cluster struct {
	t    testing.TB
	cfgs []Config
	log  *testLog
	mu   sync.Mutex // guards nodes for the test's writer goroutines
	// nodes[i] is nil while node i is stopped.
	nodes []*Store
}

func testConfig(id, dir string) Config {
	cfg := DefaultConfig()
	cfg.ID, cfg.Dir = id, dir
	// Generous enough that a loaded 2-core machine running -race does not flap.
	cfg.HeartbeatTimeout = time.Second
	cfg.ElectionTimeout = time.Second
	cfg.LeaderLeaseTimeout = 500 * time.Millisecond
	cfg.MmapSize = 16 << 20
	cfg.HistorySize = 10_000
	return cfg
}

func newCluster(t testing.TB, n int, mod func(*Config)) *cluster {
	t.Helper()
	c := &cluster{t: t, log: &testLog{t: t}}
	var servers []Server
	var listeners []net.Listener
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		listeners = append(listeners, ln)
		servers = append(servers, Server{ID: fmt.Sprintf("n%d", i+1), Address: ln.Addr().String()})
	}
	for i := 0; i < n; i++ {
		cfg := testConfig(servers[i].ID, t.TempDir())
		cfg.InitialCluster = servers
		cfg.Listener = listeners[i]
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: servers[i].ID, Output: c.log, Level: hclog.Warn})
		if mod != nil {
			mod(&cfg)
		}
		c.cfgs = append(c.cfgs, cfg)
		c.nodes = append(c.nodes, nil)
		c.start(i)
	}
	t.Cleanup(func() {
		for i := range c.nodes {
			c.stop(i)
		}
		c.log.mu.Lock()
		c.log.done = true
		c.log.mu.Unlock()
	})
	return c
}

func (c *cluster) start(i int) *Store {
	c.t.Helper()
	cfg := c.cfgs[i]
	if cfg.Listener == nil {
		cfg.Listen = c.cfgs[i].Advertise
	}
	s, err := Open(cfg)
	if err != nil {
		c.t.Fatalf("open %s: %v", cfg.ID, err)
	}
	c.cfgs[i].Listener = nil // the store owns it now; a restart listens anew
	c.cfgs[i].Advertise = s.PeerAddress()
	c.mu.Lock()
	c.nodes[i] = s
	c.mu.Unlock()
	return s
}

func (c *cluster) stop(i int) {
	c.mu.Lock()
	s := c.nodes[i]
	c.nodes[i] = nil
	c.mu.Unlock()
	if s != nil {
		if err := s.Close(); err != nil {
			c.t.Errorf("close %s: %v", c.cfgs[i].ID, err)
		}
	}
}

// leader waits for a leader that serves reads and returns its index.
func (c *cluster) leader() int {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for {
		for i, s := range c.nodes {
			if s != nil && s.raft.State() == raft.Leader && s.fsm.appliedTerm.Load() == s.raft.CurrentTerm() {
				return i
			}
		}
		for _, s := range c.nodes {
			if s != nil {
				s.WaitLeader(ctx)
				break
			}
		}
		if ctx.Err() != nil {
			c.t.Fatal("no leader within 30s")
		}
	}
}

func (c *cluster) any() *Store {
	for _, s := range c.nodes {
		if s != nil {
			return s
		}
	}
	c.t.Fatal("no node running")
	return nil
}

func ctxT(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// retry runs a write until it succeeds or fails for a reason other than a missing leader.
// An indeterminate outcome is returned to the caller, which must know how to resolve it.
func retry(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		if err == nil || !errors.Is(err, ErrNoLeader) || ctx.Err() != nil {
			return err
		}
	}
}

func TestSingleNodeRestartKeepsData(t *testing.T) {
	c := newCluster(t, 1, nil)
	ctx := ctxT(t, 60*time.Second)
	c.leader()
	s := c.nodes[0]
	for i := 0; i < 20; i++ {
		if _, err := s.Txn(ctx, Op{Type: Create, Key: key(strconv.Itoa(i)), Value: []byte("v" + strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	rev := s.Revision()
	c.stop(0)
	s = c.start(0)
	c.leader()
	objs, lrev, err := s.List(ctx, "ConfigMap", ListOptions{})
	if err != nil || len(objs) != 20 || lrev < rev {
		t.Fatalf("after restart: %d objects, revision %d (was %d), %v", len(objs), lrev, rev, err)
	}
	obj, err := s.Get(ctx, key("7"), ReadOptions{})
	if err != nil || string(obj.Value) != "v7" {
		t.Fatalf("get after restart: %+v %v", obj, err)
	}
}

func TestObjectTooLarge(t *testing.T) {
	c := newCluster(t, 1, nil)
	ctx := ctxT(t, 30*time.Second)
	c.leader()
	_, err := c.nodes[0].Txn(ctx, Op{Type: Create, Key: key("big"), Value: make([]byte, 3<<19+1)})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("err = %v, want ErrTooLarge", err)
	}
	if _, err := c.nodes[0].Get(ctx, key("big"), ReadOptions{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("oversized object stored: %v", err)
	}
	if _, err := c.nodes[0].Txn(ctx, Op{Type: Create, Key: key("ok"), Value: make([]byte, 3<<19)}); err != nil {
		t.Fatalf("object at the limit: %v", err)
	}
}

// TestLateWriteNotProposed: a write whose caller's context has ended by the time it
// would be proposed (its deadline passed while it waited) is refused with the context's
// error and never written, on the leader and through a follower.
func TestLateWriteNotProposed(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 60*time.Second)
	l := c.leader()
	late, cancel := context.WithDeadline(ctx, time.Now().Add(-time.Second))
	defer cancel()
	for _, n := range []*Store{c.nodes[l], c.nodes[(l+1)%3]} {
		_, err := n.Txn(late, Op{Type: Create, Key: key("late"), Value: []byte("v")})
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrIndeterminate) {
			t.Errorf("a write past its deadline = %v, want the deadline's error, not indeterminate", err)
		}
		if got := n.LateWrites(); got != 1 {
			t.Errorf("late writes counted by %s = %d, want 1", n.cfg.ID, got)
		}
	}
	// A write after them commits after anything they proposed (the log is ordered).
	if _, err := c.nodes[l].Txn(ctx, Op{Type: Create, Key: key("after"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if obj, err := c.nodes[l].Get(ctx, key("late"), ReadOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("the late write was stored: %+v %v", obj, err)
	}
}

func TestFollowerWritesAndReadsAreLinearizable(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 60*time.Second)
	l := c.leader()
	f1, f2 := c.nodes[(l+1)%3], c.nodes[(l+2)%3]
	for i := 0; i < 100; i++ {
		k := key("k" + strconv.Itoa(i))
		// Written through one follower (forwarded), read at once through the other: the
		// read must see the acknowledged write, with no waiting in between.
		res, err := f1.Txn(ctx, Op{Type: Create, Key: k, Value: []byte{byte(i)}})
		if err != nil {
			t.Fatalf("write %d via follower: %v", i, err)
		}
		obj, err := f2.Get(ctx, k, ReadOptions{})
		if err != nil || obj.ModRevision != res.Revision {
			t.Fatalf("read %d via other follower: %+v %v (wrote at %d)", i, obj, err, res.Revision)
		}
		_, rev, err := c.nodes[l].List(ctx, "ConfigMap", ListOptions{})
		if err != nil || rev < res.Revision {
			t.Fatalf("list on leader at %d after write at %d: %v", rev, res.Revision, err)
		}
	}
	// Typed errors cross the forwarding link intact.
	_, err := f2.Txn(ctx, Op{Type: Create, Key: key("k1"), Value: []byte("again")})
	var pe *PreconditionError
	if !errors.As(err, &pe) || !errors.Is(err, ErrAlreadyExists) || pe.CurrentRevision == 0 || pe.Key != key("k1") {
		t.Fatalf("forwarded conflict = %#v", err)
	}
}

func TestRacingCompareAndSwap(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 120*time.Second)
	c.leader()
	counter := key("counter")
	if _, err := c.any().Txn(ctx, Op{Type: Create, Key: counter, Value: []byte("0")}); err != nil {
		t.Fatal(err)
	}
	const workers, perWorker = 8, 15
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := map[int64]int{} // revision read -> successful increments from it
	errc := make(chan error, workers)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			node := c.nodes[w%3]
			for done := 0; done < perWorker; {
				obj, err := node.Get(ctx, counter, ReadOptions{})
				if err != nil {
					errc <- err
					return
				}
				n, _ := strconv.Atoi(string(obj.Value))
				_, err = node.Txn(ctx, Op{Type: Update, Key: counter, Value: []byte(strconv.Itoa(n + 1)), IfRevision: obj.ModRevision})
				switch {
				case err == nil:
					mu.Lock()
					wins[obj.ModRevision]++
					mu.Unlock()
					done++
				case errors.Is(err, ErrConflict):
				default:
					errc <- err
					return
				}
			}
		}(w)
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		t.Fatal(err)
	}
	for rev, n := range wins {
		if n != 1 {
			t.Errorf("%d writers won from revision %d", n, rev)
		}
	}
	obj, err := c.any().Get(ctx, counter, ReadOptions{})
	if err != nil || string(obj.Value) != strconv.Itoa(workers*perWorker) {
		t.Fatalf("counter = %q %v, want %d", obj.Value, err, workers*perWorker)
	}
}

// watchLog follows a watch, resuming on another node when its node goes away.
type watchLog struct {
	events []Event
	seen   map[int64]bool // revisions of Added events seen
}

func TestLeaderKillMidLoadLosesNothing(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 180*time.Second)
	l := c.leader()
	watchNode := l // watch on the node about to die, then resume elsewhere
	w, err := c.nodes[watchNode].Watch(WatchOptions{Kind: "ConfigMap", After: 0})
	if err != nil {
		t.Fatal(err)
	}
	start := w.Revision()

	var mu sync.Mutex
	acked := map[string]int64{}
	var wg sync.WaitGroup
	stopWriters := make(chan struct{})
	for wr := 0; wr < 6; wr++ {
		wg.Add(1)
		go func(wr int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stopWriters:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", wr, i)
				for _, s := range c.liveNodes() {
					res, err := s.Txn(ctx, Op{Type: Create, Key: key(name), Value: []byte(name)})
					if err == nil {
						mu.Lock()
						acked[name] = res.Revision
						mu.Unlock()
						break
					}
					if errors.Is(err, ErrIndeterminate) || errors.Is(err, ErrAlreadyExists) {
						break // may or may not exist; not acknowledged
					}
				}
			}
		}(wr)
	}
	waitfor.Condition(t, time.Minute, "200 writes acknowledged", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= 200, fmt.Sprintf("%d acknowledged", len(acked))
	})

	// Drain the watch on the leader up to now, then kill the leader.
	var got []Event
	drain := func(w *Watcher, until int64) error {
		for w.Revision() < until {
			evs, err := w.Next(ctx)
			if err != nil {
				return err
			}
			got = append(got, evs...)
		}
		return nil
	}
	if err := drain(w, c.nodes[watchNode].Revision()); err != nil {
		t.Fatal(err)
	}
	last := w.Revision()
	c.stop(l)
	mu.Lock()
	before := len(acked)
	mu.Unlock()
	waitfor.Condition(t, time.Minute, "200 more writes acknowledged after the leader died", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(acked) >= before+200, fmt.Sprintf("%d acknowledged after", len(acked)-before)
	})
	close(stopWriters)
	wg.Wait()

	// Resume the watch on a survivor from the last revision seen.
	s := c.liveNodes()[0]
	c.leader()
	final, rev, err := s.List(ctx, "ConfigMap", ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w2, err := s.Watch(WatchOptions{Kind: "ConfigMap", After: last})
	if err != nil {
		t.Fatalf("resume watch after %d on %s: %v", last, s.ID(), err)
	}
	if err := drain(w2, rev); err != nil {
		t.Fatal(err)
	}

	present := map[string]bool{}
	for _, o := range final {
		present[o.Name] = true
	}
	mu.Lock()
	defer mu.Unlock()
	for name, r := range acked {
		if !present[name] {
			t.Errorf("acknowledged write %s (revision %d) lost", name, r)
		}
	}
	// The watch, across the failover, is ordered, has no duplicate and no gap: it holds
	// exactly one Added per object that exists now.
	var prev int64 = start
	added := map[string]bool{}
	for _, ev := range got {
		if ev.Revision <= prev {
			t.Fatalf("watch out of order: %d after %d", ev.Revision, prev)
		}
		prev = ev.Revision
		if ev.Type != Added || added[ev.Object.Name] {
			t.Fatalf("unexpected event %v %s", ev.Type, ev.Object.Name)
		}
		added[ev.Object.Name] = true
	}
	if len(added) != len(final) {
		t.Fatalf("watch saw %d creates, the store holds %d objects", len(added), len(final))
	}
	t.Logf("%d acknowledged writes, %d objects, %d before the kill", len(acked), len(final), before)

	// The old leader rejoins and converges on the same state and the same history.
	c.start(l)
	waitfor.Condition(t, time.Minute, "the old leader caught up", func() (bool, string) {
		return c.nodes[l].Revision() >= rev, fmt.Sprintf("at revision %d of %d", c.nodes[l].Revision(), rev)
	})
	objs, _, err := c.nodes[l].List(ctx, "ConfigMap", ListOptions{Stale: true})
	if err != nil || len(objs) != len(final) {
		t.Fatalf("rejoined node holds %d objects, want %d (%v)", len(objs), len(final), err)
	}
}

func (c *cluster) liveNodes() []*Store {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Store
	for _, s := range c.nodes {
		if s != nil {
			out = append(out, s)
		}
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

func TestEveryNodeHasTheSameHistory(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 60*time.Second)
	c.leader()
	watchers := make([]*Watcher, 3)
	for i, s := range c.nodes {
		var err error
		if watchers[i], err = s.Watch(WatchOptions{Kind: "ConfigMap", After: 1}); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < 3; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for j := 0; j < 30; j++ {
				k := key(fmt.Sprintf("h%d", j%7))
				retry(ctx, func() error {
					_, err := c.nodes[i].Txn(ctx, Op{Type: Create, Key: k, Value: []byte{byte(i)}})
					if errors.Is(err, ErrAlreadyExists) {
						_, err = c.nodes[i].Txn(ctx, Op{Type: Delete, Key: k})
					}
					return err
				})
			}
		}(i)
	}
	wg.Wait()
	// A last write marks the end: the store's own revision may sit on a later leader
	// mark, which no ConfigMap watcher sees.
	var rev int64
	retry(ctx, func() error {
		res, err := c.nodes[0].Txn(ctx, Op{Type: Create, Key: key("end"), Value: []byte{9}})
		if errors.Is(err, ErrAlreadyExists) { // an earlier attempt's outcome was unknown
			obj, gerr := c.nodes[0].Get(ctx, key("end"), ReadOptions{})
			rev = obj.ModRevision
			return gerr
		}
		if err == nil {
			rev = res.Revision
		}
		return err
	})
	var histories [3][]string
	for i, w := range watchers {
		for w.Revision() < rev {
			evs, err := w.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				histories[i] = append(histories[i], fmt.Sprintf("%d %v %s %x", e.Revision, e.Type, e.Object.Name, e.Object.Value))
			}
		}
	}
	for i := 1; i < 3; i++ {
		if fmt.Sprint(histories[i]) != fmt.Sprint(histories[0]) {
			t.Fatalf("node %d history differs:\n%v\nvs\n%v", i, histories[i], histories[0])
		}
	}
	if len(histories[0]) == 0 {
		t.Fatal("no events")
	}
}

func TestSnapshotRestartAndNewMember(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) {
		cfg.SnapshotThreshold = 50
		cfg.TrailingLogs = 20
		cfg.SnapshotInterval = time.Hour // snapshots taken explicitly below
	})
	ctx := ctxT(t, 120*time.Second)
	c.leader()
	for i := 0; i < 300; i++ {
		if err := retry(ctx, func() error {
			_, err := c.any().Txn(ctx, Op{Type: Create, Key: key(strconv.Itoa(i)), Value: []byte(strconv.Itoa(i))})
			return err
		}); err != nil {
			t.Fatal(err)
		}
	}
	rev := c.any().Revision()
	for i, s := range c.nodes {
		waitfor.Condition(t, time.Minute, fmt.Sprintf("n%d caught up", i+1), func() (bool, string) {
			return s.Revision() >= rev, fmt.Sprintf("at revision %d of %d", s.Revision(), rev)
		})
		if err := s.raft.Snapshot().Error(); err != nil {
			t.Fatalf("snapshot n%d: %v", i+1, err)
		}
	}
	// More writes after the snapshot, then restart a follower: it restores the snapshot
	// and replays only the entries after it.
	for i := 300; i < 320; i++ {
		if _, err := c.any().Txn(ctx, Op{Type: Create, Key: key(strconv.Itoa(i)), Value: []byte("x")}); err != nil {
			t.Fatal(err)
		}
	}
	f := (c.leader() + 1) % 3
	c.stop(f)
	s := c.start(f)
	rev = c.nodes[(f+1)%3].Revision()
	waitfor.Condition(t, time.Minute, "the restarted follower caught up", func() (bool, string) {
		return s.Revision() >= rev, fmt.Sprintf("at revision %d of %d", s.Revision(), rev)
	})
	if n := s.fsm.entries.Load(); n > 60 {
		t.Errorf("restarted node re-applied %d entries; it should replay only those after its snapshot", n)
	}
	if objs, _, err := s.List(ctx, "ConfigMap", ListOptions{}); err != nil || len(objs) != 320 {
		t.Fatalf("restarted node lists %d objects: %v", len(objs), err)
	}

	// A fresh member joins; the log it needs is compacted, so it is sent the snapshot.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig("n4", t.TempDir())
	cfg.Listener = ln
	cfg.Logger = c.cfgs[0].Logger
	c.cfgs = append(c.cfgs, cfg)
	c.nodes = append(c.nodes, nil)
	n4 := c.start(3)
	if err := c.nodes[0].AddVoter(ctx, "n4", n4.PeerAddress()); err != nil {
		t.Fatalf("add n4: %v", err)
	}
	rev = c.nodes[0].Revision()
	waitfor.Condition(t, time.Minute, "the new member caught up", func() (bool, string) {
		return n4.Revision() >= rev, fmt.Sprintf("at revision %d of %d", n4.Revision(), rev)
	})
	if objs, _, err := n4.List(ctx, "ConfigMap", ListOptions{}); err != nil || len(objs) != 320 {
		t.Fatalf("new member lists %d objects: %v", len(objs), err)
	}
	if n := n4.fsm.entries.Load(); n > 60 {
		t.Errorf("new member applied %d entries; it should have started from a snapshot", n)
	}

	// Remove a member through a follower; the cluster of three goes on.
	victim := (c.leader() + 1) % 4
	if victim == 3 {
		victim = (victim + 1) % 4
	}
	via := c.nodes[3]
	if err := via.RemoveServer(ctx, c.cfgs[victim].ID); err != nil {
		t.Fatalf("remove %s: %v", c.cfgs[victim].ID, err)
	}
	c.stop(victim)
	// A follower learns the new configuration when it replicates it: wait for that.
	waitfor.Condition(t, 30*time.Second, "three members after the removal", func() (bool, string) {
		st, err := c.any().Status()
		return err == nil && len(st.Members) == 3, fmt.Sprintf("members %v (%v)", st.Members, err)
	})
	if _, err := n4.Txn(ctx, Op{Type: Create, Key: key("after-removal"), Value: []byte("x")}); err != nil {
		t.Fatalf("write after removal: %v", err)
	}
	if err := via.RemoveServer(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("remove unknown member: %v", err)
	}
}

func TestTransferLeadership(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 60*time.Second)
	l := c.leader()
	target := c.cfgs[(l+1)%3].ID
	if err := c.nodes[(l+2)%3].TransferLeadership(ctx, target); err != nil {
		t.Fatalf("transfer to %s: %v", target, err)
	}
	waitfor.Condition(t, 30*time.Second, "leadership with "+target, func() (bool, string) {
		st, _ := c.nodes[0].Status()
		return st.LeaderID == target, "leader " + st.LeaderID
	})
	st, err := c.nodes[(l+1)%3].Status()
	if err != nil || st.State != "Leader" || st.Term == 0 || len(st.Members) != 3 {
		t.Fatalf("status of new leader: %+v %v", st, err)
	}
}

func TestBackupIsAConsistentStateFile(t *testing.T) {
	c := newCluster(t, 1, nil)
	ctx := ctxT(t, 30*time.Second)
	c.leader()
	for i := 0; i < 10; i++ {
		c.nodes[0].Txn(ctx, Op{Type: Create, Key: key(strconv.Itoa(i)), Value: []byte("v")})
	}
	sink := &memSink{}
	rev, err := c.nodes[0].Backup(sink)
	if err != nil || rev == 0 {
		t.Fatalf("backup: rev %d %v", rev, err)
	}
	// The backup restores into a state machine as a snapshot would.
	tf := newTestFSM(t, 10)
	if err := tf.f.Restore(io.NopCloser(&sink.Buffer)); err != nil {
		t.Fatal(err)
	}
	if l, _ := tf.f.list(context.Background(), "ConfigMap", ListOptions{}); len(l.Objects) != 10 || l.Revision != rev {
		t.Fatalf("restored backup: %d objects at %d, want 10 at %d", len(l.Objects), l.Revision, rev)
	}
}

// TestNewLeaderWaitsForAnEntryOfItsTerm: a node that has just become leader knows which
// earlier entries are committed only once it commits one of its own term; until then it
// must not serve a read index, or a read through it could miss a write its predecessor
// acknowledged. The test holds the new leader before it appends its leader mark (Raft's
// own no-op never reaches the state machine) and asks it for a read index.
func TestNewLeaderWaitsForAnEntryOfItsTerm(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 60*time.Second)
	l := c.leader()
	for i := 0; i < 10; i++ {
		if _, err := c.nodes[l].Txn(ctx, Op{Type: Create, Key: key("k" + strconv.Itoa(i)), Value: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	target := (l + 1) % 3
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	defer free()
	hook := func(id string, leader bool) {
		if id == c.cfgs[target].ID && leader {
			<-release
		}
	}
	testHookLeaderNotify.Store(&hook)
	defer testHookLeaderNotify.Store(nil)

	if err := c.nodes[l].TransferLeadership(ctx, c.cfgs[target].ID); err != nil {
		t.Fatalf("transfer to %s: %v", c.cfgs[target].ID, err)
	}
	s := c.nodes[target]
	waitfor.Condition(t, time.Minute, "the target leads", func() (bool, string) {
		return s.raft.State() == raft.Leader, s.raft.State().String()
	})
	if idx, err := s.leaderReadIndex(ctx); err == nil {
		t.Fatalf("a leader with no entry of its term %d applied (applied term %d) served read index %d",
			s.raft.CurrentTerm(), s.fsm.appliedTerm.Load(), idx)
	} else if !errors.Is(err, ErrNoLeader) && s.raft.State() == raft.Leader {
		t.Fatalf("refusal is %v, want ErrNoLeader (retryable)", err)
	}

	free()
	waitfor.Condition(t, time.Minute, "a read index from the new leader", func() (bool, string) {
		_, err := s.leaderReadIndex(ctx)
		return err == nil, fmt.Sprint(err)
	})
	for i := 0; i < 10; i++ {
		if _, err := s.Get(ctx, key("k"+strconv.Itoa(i)), ReadOptions{}); err != nil {
			t.Fatalf("read k%d through the new leader: %v", i, err)
		}
	}
}

// TestFirstPagesThroughALeaderChange: a linearizable read (a list's first page) that
// arrives while leadership moves waits for the new leader's read index, as a write waits
// for a leader, instead of failing with "no leader": a change of leader is not the
// cluster being unavailable. Lists run on every member while leadership is handed on
// three times. WriteTimeout, the longest a read waits for the next leader, is long
// enough that a change slowed by a loaded machine (and -race) still falls within it.
func TestFirstPagesThroughALeaderChange(t *testing.T) {
	c := newCluster(t, 3, func(cfg *Config) { cfg.WriteTimeout = 30 * time.Second })
	ctx := ctxT(t, 2*time.Minute)
	l := c.leader()
	for i := 0; i < 20; i++ {
		if _, err := c.nodes[l].Txn(ctx, Op{Type: Create, Key: key("k" + strconv.Itoa(i)), Value: []byte{byte(i)}}); err != nil {
			t.Fatal(err)
		}
	}
	listCtx, stop := context.WithCancel(ctx)
	var lists sync.WaitGroup
	var mu sync.Mutex
	var failed []error
	reads := 0
	for _, s := range c.nodes {
		lists.Go(func() {
			for listCtx.Err() == nil {
				at := time.Now()
				res, err := s.ListPage(listCtx, "ConfigMap", ListOptions{Limit: 5})
				mu.Lock()
				switch {
				case listCtx.Err() != nil:
				case err != nil:
					failed = append(failed, fmt.Errorf("%s after %v: %w", s.ID(), time.Since(at).Round(time.Millisecond), err))
				case len(res.Objects) != 5:
					failed = append(failed, fmt.Errorf("%s: %d objects, want 5", s.ID(), len(res.Objects)))
				default:
					reads++
				}
				mu.Unlock()
			}
		})
	}
	for range 3 {
		l = c.leader()
		target := c.cfgs[(l+1)%3].ID
		if err := c.nodes[l].TransferLeadership(ctx, target); err != nil {
			t.Fatalf("transfer to %s: %v", target, err)
		}
		waitfor.Condition(t, 30*time.Second, target+" leading and serving reads", func() (bool, string) {
			s := c.nodes[(l+1)%3]
			return s.IsLeader() && s.fsm.appliedTerm.Load() == s.raft.CurrentTerm(), "leader " + s.LeaderID()
		})
	}
	// Reads after the last change, so that each member has read across it.
	mu.Lock()
	after := reads + 30
	mu.Unlock()
	waitfor.Condition(t, 30*time.Second, "reads after the last change", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return reads >= after, fmt.Sprintf("%d reads", reads)
	})
	stop()
	lists.Wait()
	if len(failed) > 0 {
		t.Fatalf("%d of %d first pages failed across the leader changes; first: %v", len(failed), len(failed)+reads, failed[0])
	}
}
