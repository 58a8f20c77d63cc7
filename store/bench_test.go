package store

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/skiffhq/skiff/pki"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// The store's benchmarks print `BENCH <name> <value> <unit>` lines (see INTERFACE.md) and
// run once each: `make bench BENCH=store_` or `go test -run '^$' -bench . -benchtime 1x`.
// They use a three-node cluster in this process with the default configuration and 1 KiB
// values, writing through the leader as etcd's benchmark tool does. As in a real
// cluster, the members' peer traffic (Raft) is mutual TLS with certificates of the
// cluster's CA; a figure whose name ends in _insecure runs without it.

func benchCluster(b *testing.B) (*cluster, *Store) { return benchClusterTLS(b, true) }

func benchClusterTLS(b *testing.B, secure bool) (*cluster, *Store) {
	var peerTLS *tls.Config
	if secure {
		dir := b.TempDir()
		if _, err := pki.InitDir(dir, pki.InitOptions{}); err != nil {
			b.Fatal(err)
		}
		r, err := pki.NewReloader(filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key"), filepath.Join(dir, pki.CACertFile))
		if err != nil {
			b.Fatal(err)
		}
		peerTLS = r.PeerTLS()
	}
	c := newCluster(b, 3, func(cfg *Config) {
		d := DefaultConfig()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout
		cfg.HistorySize = d.HistorySize
		cfg.MmapSize = 256 << 20
		cfg.PeerTLS = peerTLS
	})
	return c, c.nodes[c.leader()]
}

var bench, percentile = benchfig.Report, benchfig.Percentile

// load runs clients concurrent loops of op until total calls are done; it returns ops/s
// and every call's latency.
func load(b *testing.B, clients, total int, op func(client, i int) error) (float64, []time.Duration) {
	b.Helper()
	lat := make([]time.Duration, total)
	var next atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Value
	start := time.Now()
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= total {
					return
				}
				t0 := time.Now()
				if err := op(c, i); err != nil {
					failed.Store(err)
					return
				}
				lat[i] = time.Since(t0)
			}
		}(c)
	}
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		b.Fatal(err)
	}
	return float64(total) / time.Since(start).Seconds(), lat
}

var value1k = func() []byte {
	v := make([]byte, 1024)
	for i := range v {
		v[i] = byte('a' + i%26)
	}
	return v
}()

func BenchmarkStoreCreate(b *testing.B) {
	for _, run := range []struct {
		clients int
		secure  bool
	}{{1, true}, {100, true}, {100, false}} {
		clients := run.clients
		name := fmt.Sprintf("store_create_1k_c%d", clients)
		if !run.secure {
			name += "_insecure" // what peer TLS costs
		}
		b.Run(strings.TrimPrefix(name, "store_create_1k_"), func(b *testing.B) {
			benchfig.Want(b, name, name+"_p50", name+"_p99")
			_, leader := benchClusterTLS(b, run.secure)
			ctx := context.Background()
			total := 3000
			if clients > 1 {
				total = 40000
			}
			rate, lat := load(b, clients, total, func(c, i int) error {
				_, err := leader.Txn(ctx, Op{Type: Create, Key: Key{Kind: "ConfigMap", Namespace: "bench", Name: "o" + strconv.Itoa(i)}, Value: value1k})
				return err
			})
			bench(name, rate, "ops/s")
			bench(name+"_p50", percentile(lat, 0.50), "ms")
			bench(name+"_p99", percentile(lat, 0.99), "ms")
		})
	}
}

func BenchmarkStoreCASUpdate(b *testing.B) {
	benchfig.Want(b, "store_cas_update_c100", "store_cas_update_c100_p99")
	_, leader := benchCluster(b)
	ctx := context.Background()
	const clients, keys, total = 100, 1000, 40000
	revs := make([]atomic.Int64, keys)
	for i := 0; i < keys; i++ {
		res, err := leader.Txn(ctx, Op{Type: Create, Key: Key{Kind: "ConfigMap", Namespace: "bench", Name: "k" + strconv.Itoa(i)}, Value: value1k})
		if err != nil {
			b.Fatal(err)
		}
		revs[i].Store(res.Revision)
	}
	var conflicts atomic.Int64
	rate, lat := load(b, clients, total, func(c, i int) error {
		// Each client updates its own keys, compare-and-swap on the last revision it saw.
		k := (c + clients*(i%(keys/clients))) % keys
		for {
			res, err := leader.Txn(ctx, Op{Type: Update, Key: Key{Kind: "ConfigMap", Namespace: "bench", Name: "k" + strconv.Itoa(k)}, Value: value1k, IfRevision: revs[k].Load()})
			var pe *PreconditionError
			if errors.As(err, &pe) && errors.Is(err, ErrConflict) {
				conflicts.Add(1)
				revs[k].Store(pe.CurrentRevision)
				continue
			}
			if err != nil {
				return err
			}
			revs[k].Store(res.Revision)
			return nil
		}
	})
	bench("store_cas_update_c100", rate, "ops/s")
	bench("store_cas_update_c100_p99", percentile(lat, 0.99), "ms")
	if n := conflicts.Load(); n > 0 {
		b.Logf("%d conflicts retried", n)
	}
}

func BenchmarkStoreList10k(b *testing.B) {
	benchfig.Want(b, "store_list_10k")
	_, leader := benchCluster(b)
	ctx := context.Background()
	load(b, 100, 10000, func(c, i int) error {
		_, err := leader.Txn(ctx, Op{Type: Create, Key: Key{Kind: "Pod", Namespace: "bench", Name: "p" + strconv.Itoa(i)}, Value: value1k})
		return err
	})
	var best time.Duration
	for i := 0; i < 5; i++ {
		t0 := time.Now()
		objs, _, err := leader.List(ctx, "Pod", ListOptions{})
		d := time.Since(t0)
		if err != nil || len(objs) != 10000 {
			b.Fatalf("list: %d objects, %v", len(objs), err)
		}
		if best == 0 || d < best {
			best = d
		}
	}
	bench("store_list_10k", float64(best.Microseconds())/1000, "ms")
}

func BenchmarkWatchFanout(b *testing.B) {
	benchfig.Want(b, "watch_fanout_1000", "watch_fanout_1000_p99_lag")
	c, leader := benchCluster(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const watchers, events = 1000, 10000
	// Watchers spread over the three nodes, as clients of three API servers would be.
	type result struct {
		n      int
		maxLag time.Duration
		lags   []time.Duration
		err    error
	}
	var written sync.Map // revision -> commit time
	results := make(chan result, watchers)
	var ready sync.WaitGroup
	for w := 0; w < watchers; w++ {
		ready.Add(1)
		go func(w int) {
			wt, err := c.nodes[w%3].Watch(WatchOptions{Kind: "ConfigMap"})
			ready.Done()
			if err != nil {
				results <- result{err: err}
				return
			}
			r := result{lags: make([]time.Duration, 0, events/watchers*4)}
			for r.n < events {
				evs, err := wt.Next(ctx)
				if err != nil {
					r.err = err
					break
				}
				now := time.Now()
				for _, ev := range evs {
					r.n++
					if t0, ok := written.Load(ev.Revision); ok && r.n%10 == 0 {
						r.lags = append(r.lags, now.Sub(t0.(time.Time)))
					}
				}
			}
			results <- r
		}(w)
	}
	ready.Wait()
	start := time.Now()
	load(b, 100, events, func(_, i int) error {
		t0 := time.Now()
		res, err := leader.Txn(ctx, Op{Type: Create, Key: Key{Kind: "ConfigMap", Namespace: "bench", Name: "w" + strconv.Itoa(i)}, Value: value1k})
		if err == nil {
			written.Store(res.Revision, t0)
		}
		return err
	})
	var lags []time.Duration
	delivered := 0
	for w := 0; w < watchers; w++ {
		r := <-results
		if r.err != nil {
			b.Fatalf("watcher: %v after %d events", r.err, r.n)
		}
		delivered += r.n
		lags = append(lags, r.lags...)
	}
	elapsed := time.Since(start)
	bench("watch_fanout_1000", float64(delivered)/elapsed.Seconds(), "events/s")
	bench("watch_fanout_1000_p99_lag", percentile(lags, 0.99), "ms")
}

// BenchmarkStore1MUpdates: 1,000,000 updates of 10,000 pods (1 KiB values, labels and a
// node name field, as a kubelet's status updates) through one member with the default
// bounds, 100 writers. The data directory (Raft log, snapshots, state file) must stay
// flat once every pod exists and the log compaction has come round: its size is printed
// at each 100,000 updates, and the run fails if it ends more than half again above its
// size half way. On a quiet 2-core machine the million takes under two minutes; a
// machine so loaded that it would take more than budget stops there and says so.
func BenchmarkStore1MUpdates(b *testing.B) {
	const budget = 4*time.Minute + 30*time.Second
	const name = "store_1m_updates"
	benchfig.Want(b, name, name+"_dir_mib", name+"_dir_max_mib")
	const pods, total, step = 10_000, 1_000_000, 100_000
	c := newCluster(b, 1, func(cfg *Config) {
		d := DefaultConfig()
		cfg.HeartbeatTimeout, cfg.ElectionTimeout, cfg.LeaderLeaseTimeout = d.HeartbeatTimeout, d.ElectionTimeout, d.LeaderLeaseTimeout
		cfg.HistorySize, cfg.MmapSize = d.HistorySize, d.MmapSize
	})
	leader := c.nodes[c.leader()]
	dir := c.cfgs[c.leader()].Dir
	ctx := context.Background()
	key := func(i int) Key { return Key{Kind: "Pod", Namespace: "bench", Name: "p" + strconv.Itoa(i%pods)} }
	value := func(i int) []byte {
		v := append([]byte(nil), value1k...)
		copy(v, strconv.Itoa(i)) // every update a new value
		return v
	}
	attrs := func(i int) (map[string]string, map[string]string) {
		return map[string]string{"app": "a" + strconv.Itoa(i%pods/100)}, map[string]string{"spec.nodeName": "w" + strconv.Itoa(i%pods%100)}
	}
	load(b, 100, pods, func(_, i int) error {
		l, f := attrs(i)
		_, err := leader.Txn(ctx, Op{Type: Create, Key: key(i), Value: value(i), Labels: l, Fields: f})
		return err
	})
	var sizes []float64
	var elapsed time.Duration
	done := 0
	for ; done < total && elapsed < budget; done += step {
		t0 := time.Now()
		load(b, 100, step, func(_, i int) error {
			l, f := attrs(i)
			_, err := leader.Txn(ctx, Op{Type: Update, Key: key(i), Value: value(done + i), Labels: l, Fields: f})
			return err
		})
		elapsed += time.Since(t0)
		size, files := dirSize(b, dir)
		sizes = append(sizes, float64(size)/(1<<20))
		fmt.Printf("%s: %7d updates, %.0f updates/s so far, data dir %.1f MiB (%s)\n", name, done+step, float64(done+step)/elapsed.Seconds(), sizes[len(sizes)-1], files)
	}
	if done < total {
		b.Logf("stopped after %d updates: %v is over the budget of %v (load average %s)", done, elapsed.Round(time.Second), budget, benchfig.LoadAverage())
	}
	bench(name, float64(done)/elapsed.Seconds(), "updates/s")
	last, most := sizes[len(sizes)-1], 0.0
	for _, s := range sizes {
		most = max(most, s)
	}
	bench(name+"_dir_mib", last, "MiB")
	bench(name+"_dir_max_mib", most, "MiB")
	if half := len(sizes) / 2; half >= 2 && last > 1.5*sizes[half-1] {
		b.Errorf("the data dir grew from %.1f MiB at %d updates to %.1f MiB at %d: not bounded", sizes[half-1], half*step, last, done)
	}
}

// dirSize is the bytes of the files under dir, and the largest of them by name.
func dirSize(b *testing.B, dir string) (int64, string) {
	var total int64
	per := map[string]int64{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil // a snapshot or log segment removed while we walk
		}
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		total += info.Size()
		rel, _ := filepath.Rel(dir, path)
		per[strings.SplitN(rel, string(filepath.Separator), 2)[0]] += info.Size()
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	var parts []string
	for name, n := range per {
		if n >= 1<<20 {
			parts = append(parts, fmt.Sprintf("%s %.1f", name, float64(n)/(1<<20)))
		}
	}
	sort.Strings(parts)
	return total, strings.Join(parts, ", ")
}

// BenchmarkStorePagedList: one member's state machine holding 50,000 pods lists them in
// pages of 500 at the first page's revision, counting what follows as the REST API
// does, while 200 writes (updates and creates, spread over the pods) are applied between
// every two pages, so the last pages undo 20,000 changes: store_paged_list_50k is the
// whole list's time, _cpu the process's CPU time during its pages.
func BenchmarkStorePagedList(b *testing.B) {
	benchfig.Want(b, "store_paged_list_50k")
	const n, perPage, writesBetween = 50_000, 500, 200
	f, err := openFSM(filepath.Join(b.TempDir(), "state.db"), 0, 1<<20, nil, newHistory(100_000, 0), testIdentity(b), hclog.NewNullLogger())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { f.close() })
	next := uint64(1)
	apply := func(ops ...Op) {
		logs := make([]*raft.Log, len(ops))
		for i, op := range ops {
			cmd, err := encodeTxn([]Op{op})
			if err != nil {
				b.Fatal(err)
			}
			logs[i] = &raft.Log{Index: next, Type: raft.LogCommand, Data: cmd}
			next++
		}
		for _, r := range f.ApplyBatch(logs) {
			if o := r.(*txnOutcome); o.err != nil {
				b.Fatal(o.err)
			}
		}
	}
	pod := func(typ OpType, i int) Op {
		return Op{Type: typ, Key: Key{Kind: "Pod", Namespace: "default", Name: fmt.Sprintf("p%06d", i)}, Value: value1k}
	}
	for lo := 0; lo < n; lo += 1000 {
		ops := make([]Op, 0, 1000)
		for i := lo; i < lo+1000; i++ {
			ops = append(ops, pod(Create, i))
		}
		apply(ops...)
	}
	ctx := context.Background()
	var took, cpu time.Duration
	created := n
	for i := 0; i < b.N; i++ {
		opts := ListOptions{Limit: perPage, CountRemaining: true}
		for page := 0; ; page++ {
			t0, cpu0 := time.Now(), benchfig.StartCPU()
			res, err := f.list(ctx, "Pod", opts)
			took, cpu = took+time.Since(t0), cpu+cpu0()
			if err != nil {
				b.Fatal(err)
			}
			if !res.More {
				break
			}
			opts.Revision, opts.After = res.Revision, res.Objects[len(res.Objects)-1].Key
			ops := make([]Op, 0, writesBetween)
			for w := 0; w < writesBetween; w++ {
				if w%4 == 0 {
					ops = append(ops, pod(Create, created))
					created++
				} else {
					ops = append(ops, pod(Update, (page*7919+w*104729)%n))
				}
			}
			apply(ops...)
		}
	}
	bench("store_paged_list_50k", float64(took.Milliseconds())/float64(b.N), "ms")
	bench("store_paged_list_50k_cpu", float64(cpu.Milliseconds())/float64(b.N), "ms")
}

// BenchmarkFollowerWatchLag: how long after a lone write returns on the leader a watcher
// on a follower receives it (p50 and p99 over the iterations), with a pause of 50 ms
// between writes, as between the steps of a chain of controllers each waiting for the one
// before; and what the three idle members cost in CPU a second. A follower applies an
// entry once it learns that the entry is committed, which hashicorp/raft tells it with the
// next entry it sends, or, when none follows, after a random wait of one to two
// CommitTimeouts: the last write of a burst reaches the followers' watchers that much late.
func BenchmarkFollowerWatchLag(b *testing.B) {
	benchfig.Want(b, "store_follower_watch_lag")
	for _, ct := range []time.Duration{20 * time.Millisecond, 10 * time.Millisecond, 5 * time.Millisecond} {
		b.Run("commit_timeout_"+ct.String(), func(b *testing.B) {
			c := newCluster(b, 3, func(cfg *Config) { cfg.CommitTimeout = ct })
			ctx := ctxT(b, 5*time.Minute)
			l := c.leader()
			w, err := c.nodes[(l+1)%3].Watch(WatchOptions{Kind: "ConfigMap"})
			if err != nil {
				b.Fatal(err)
			}
			defer w.Close()
			idle := benchfig.StartCPU()
			time.Sleep(2 * time.Second) // the members idle: their heartbeats and commit notices only
			idleCPU := idle()
			lags := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				res, err := c.nodes[l].Txn(ctx, Op{Type: Create, Key: key("lag-" + strconv.Itoa(i)), Value: []byte("v")})
				if err != nil {
					b.Fatal(err)
				}
				returned := time.Now()
				for seen := false; !seen; {
					evs, err := w.Next(ctx)
					if err != nil {
						b.Fatal(err)
					}
					for _, ev := range evs {
						seen = seen || ev.Revision >= res.Revision
					}
				}
				lags = append(lags, time.Since(returned))
				time.Sleep(50 * time.Millisecond) // the pause: no write to carry the commit
			}
			b.StopTimer()
			b.ReportMetric(benchfig.Percentile(lags, 0.5), "p50-ms")
			b.ReportMetric(benchfig.Percentile(lags, 0.99), "p99-ms")
			b.ReportMetric(float64(idleCPU.Milliseconds())/2, "idle-cpu-ms/s")
		})
	}
}

// BenchmarkWatchersOfAQuietKind is the cost of other kinds' events to watches of a
// kind that is quiet, as a thousand kubelets' Service watches are during a rollout:
// 1,000 watchers of Services wait in Next while 20,000 pod events are applied in
// batches of 20. store_quiet_kind_watch_cpu_per_event is the process's CPU per event
// (the watchers' wake-ups and scans, and the applies).
func BenchmarkWatchersOfAQuietKind(b *testing.B) {
	const name = "store_quiet_kind_watch_cpu_per_event"
	benchfig.Want(b, name)
	tf := newTestFSM(b, 100_000)
	perEvent := waitingWatchersCost(b, tf, func(int) WatchOptions { return WatchOptions{Kind: "Service"} }, []byte("v"))
	bench(name, perEvent, "µs")
}

// BenchmarkOneName is the cost of following one object by name (kubectl wait, rollout
// status, an informer of one object: fieldSelector metadata.name=NAME) in a kind of
// many: 1,000 watchers each of one pod's name wait in Next while 20,000 other pods are
// created in batches of 20 (store_name_watch_cpu_per_event: the process's CPU per
// event), then one of those pods is listed by name in their namespace
// (store_list_by_name_us: the best of 20).
func BenchmarkOneName(b *testing.B) {
	benchfig.Want(b, "store_name_watch_cpu_per_event", "store_list_by_name_us")
	tf := newTestFSM(b, 100_000)
	perEvent := waitingWatchersCost(b, tf, func(i int) WatchOptions {
		return WatchOptions{Kind: "Pod", Namespace: "default", Name: fmt.Sprint("waited", i)}
	}, value1k)
	var best time.Duration
	for i := 0; i < 20; i++ {
		t0 := time.Now()
		objs, _, err := tf.list("Pod", ListOptions{Namespace: "default", Name: "p12345"})
		d := time.Since(t0)
		if err != nil || len(objs) != 1 {
			b.Fatalf("list by name: %d objects, %v", len(objs), err)
		}
		if best == 0 || d < best {
			best = d
		}
	}
	bench("store_name_watch_cpu_per_event", perEvent, "µs")
	bench("store_list_by_name_us", float64(best.Nanoseconds())/1000, "µs")
}

// waitingWatchersCost starts 1,000 watchers (the i-th with opts(i)), each waiting in
// Next, creates 20,000 pods (p0, p1, ...: their events) in batches of 20 and returns the
// process's CPU per event in µs, the watchers' wake-ups and reads with the applies.
func waitingWatchersCost(b *testing.B, tf *testFSM, opts func(i int) WatchOptions, value []byte) float64 {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	for i := 0; i < 1000; i++ {
		w, err := tf.f.hist.watch(opts(i), 0)
		if err != nil {
			b.Fatal(err)
		}
		wg.Go(func() {
			defer w.Close()
			for {
				if _, err := w.Next(ctx); err != nil {
					return
				}
			}
		})
	}
	const events, batch = 20_000, 20
	txns := make([][]Op, 0, events/batch)
	for i := 0; i < events; i += batch {
		var ops []Op
		for j := i; j < i+batch; j++ {
			ops = append(ops, Op{Type: Create, Key: podKey(fmt.Sprint("p", j)), Value: value, Fields: onNode("w1")})
		}
		txns = append(txns, ops)
	}
	cpu := benchfig.StartCPU()
	for _, ops := range txns {
		tf.apply(ops)
	}
	return float64(cpu().Nanoseconds()) / 1000 / events
}
