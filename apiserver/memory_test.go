package apiserver_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
	benchfig "github.com/skiffhq/skiff/test/bench"
	"github.com/skiffhq/skiff/test/waitfor"
)

// The outside probe of issue 27: write large ConfigMaps, delete them, and watch what the
// members hold. The members run in this process, so the figures are the process's: heap
// in use (live objects after a collection, from runtime/metrics) and RSS.

// rss returns the process's resident set size, and how much of it is anonymous memory
// (the heap, stacks) rather than pages of mapped files (bbolt's files).
func rss(t testing.TB) (total, anon int64) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		name, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || (name != "VmRSS" && name != "RssAnon") {
			continue
		}
		kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		if err != nil {
			t.Fatalf("%s %q: %v", name, v, err)
		}
		if name == "VmRSS" {
			total = kb << 10
		} else {
			anon = kb << 10
		}
	}
	if total == 0 {
		t.Fatal("no VmRSS in /proc/self/status")
	}
	return total, anon
}

// memoryProbe is one run of the probe's sequence: its figures, in bytes.
type memoryProbe struct {
	live                 int64 // the objects' bytes, all written
	start, peak, deleted int64 // heap in use before, once all are written, once all are deleted
	maxRSS, maxAnon      int64 // the largest RSS (and anonymous RSS) seen along the way
	startRSS, deletedRSS int64
}

// runMemoryProbe writes n ConfigMaps of size bytes through conn, then deletes them,
// measuring the heap and RSS as it goes.
func runMemoryProbe(t testing.TB, conn *client.Conn, n, size int) memoryProbe {
	t.Helper()
	cms := client.For[*corev1.ConfigMap](conn)
	ctx := context.Background()
	var p memoryProbe
	p.start = benchfig.HeapInUse()
	p.startRSS, _ = rss(t)
	sample := func() {
		r, anon := rss(t)
		p.maxRSS, p.maxAnon = max(p.maxRSS, r), max(p.maxAnon, anon)
	}
	data := strings.Repeat("x", size)
	for i := 0; i < n; i++ {
		cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("big-%d", i)}, Data: map[string]string{"data": data}}
		retryUncertain(t, fmt.Sprintf("create %d", i), func(retried bool) error {
			_, err := cms.Create(ctx, cm)
			if retried && client.IsAlreadyExists(err) {
				return nil // the write whose outcome was lost went through
			}
			return err
		})
		sample()
	}
	p.live = int64(n * size)
	p.peak = benchfig.HeapInUse()

	for i := 0; i < n; i++ {
		retryUncertain(t, fmt.Sprintf("delete %d", i), func(retried bool) error {
			_, err := cms.Delete(ctx, "default", fmt.Sprintf("big-%d", i), client.DeleteOptions{})
			if retried && client.IsNotFound(err) {
				return nil
			}
			return err
		})
		sample()
	}
	p.deleted = benchfig.HeapInUse()
	p.deletedRSS, _ = rss(t)
	return p
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// retryUncertain runs write until it succeeds, again while its outcome is unknown or
// the cluster has no leader (a leadership change on a loaded machine), for up to a
// minute; retried tells write that an earlier call may have gone through.
func retryUncertain(t testing.TB, what string, write func(retried bool) error) {
	t.Helper()
	retried := false
	waitfor.ConditionErr(t, time.Minute, what, func() (bool, error) {
		err := write(retried)
		if err != nil && (client.IsUnknownOutcome(err) || client.IsUnavailable(err)) {
			retried = true
			return false, nil
		}
		return err == nil, err
	})
}

// TestWriteDeleteGivesMemoryBack is the probe's sequence, scaled to 64 MiB: while the
// objects are written and deleted the members hold no more than their byte budgets
// (watch history, Raft log cache) beyond the live data, and once the budgets' TTLs pass
// and the deletes have left each state file mostly free, which it then defragments
// (giving back the memory bbolt keeps for each free page), the heap is back within 10%
// of where it started (the target is 20%). The TTLs and the defragmentation's threshold
// are small here (the defaults are 75 s, 10 s and 64 MiB) so the test need not idle
// that long nor write that much.
func TestWriteDeleteGivesMemoryBack(t *testing.T) {
	const (
		n, size      = 64, 1 << 20
		historyBytes = 16 << 20
		logBytes     = 8 << 20
		defragBytes  = 16 << 20
	)
	for _, members := range []int{1, 3} {
		t.Run(fmt.Sprintf("members=%d", members), func(t *testing.T) {
			c := apicluster.Start(t, members, apicluster.Options{HistorySize: 100_000, Configure: func(cfg *apiserver.Config) {
				cfg.Store.HistoryBytes, cfg.Store.LogCacheBytes = historyBytes, logBytes
				cfg.Store.HistoryTTL, cfg.Store.LogCacheTTL = 2*time.Second, time.Second
				cfg.Store.DefragFreeBytes = defragBytes
			}})
			conn := c.Dial(t, "admin", client.Options{})
			p := runMemoryProbe(t, conn, n, size)
			t.Logf("heap: start %.0f MiB, all written %.0f MiB, all deleted %.0f MiB; RSS: start %.0f MiB, max %.0f MiB, all deleted %.0f MiB",
				mib(p.start), mib(p.peak), mib(p.deleted), mib(p.startRSS), mib(p.maxRSS), mib(p.deletedRSS))
			// Each member holds at most its budgets; the data itself lives in bbolt's
			// file, outside the heap. Slack: what is in flight (one request and its
			// copies per member) and the collector's timing.
			bound := p.start + int64(members)*(historyBytes+logBytes+4*size) + 16<<20
			if p.peak > bound || p.deleted > bound {
				t.Errorf("heap all written %.0f MiB, all deleted %.0f MiB: over the budgets' %.0f MiB", mib(p.peak), mib(p.deleted), mib(bound))
			}
			if limit := int64(members) * (2*p.live + 256<<20); p.maxRSS > limit {
				t.Errorf("RSS reached %.0f MiB: over %d × (live data × 2 + 256 MiB) = %.0f MiB", mib(p.maxRSS), members, mib(limit))
			}
			for i := 0; i < members; i++ {
				waitfor.Condition(t, 30*time.Second, "the deletes' free pages given back", func() (bool, string) {
					u, err := c.Server(i).Store().Usage()
					return err == nil && u.Size-u.InUse < defragBytes, fmt.Sprintf("member %d's state file: %+v, %v", i, u, err)
				})
			}
			var now int64
			waitfor.Condition(t, 30*time.Second, "heap back within 10% of its start", func() (bool, string) {
				now = benchfig.HeapInUse()
				return now <= p.start*11/10, fmt.Sprintf("heap %.1f MiB, started at %.1f MiB", mib(now), mib(p.start))
			})
			t.Logf("heap once idle: %.1f MiB", mib(now))
		})
	}
}

// BenchmarkWriteDeleteMemory runs the probe's full sequence on one member with the
// default limits: 300 ConfigMaps of 1 MiB written, then deleted, then idle until the
// heap is back within 20% of its start (the watch history's TTL, 75 s by default).
func BenchmarkWriteDeleteMemory(b *testing.B) {
	benchfig.Want(b, "apiserver_rss_per_live_mib", "apiserver_heap_")
	const n, size = 300, 1 << 20
	// The shipped configuration: TLS, the admin's certificate, authorization.
	c := apicluster.Start(b, 1, apicluster.Options{HistorySize: apiserver.DefaultConfig().Store.HistorySize, Certs: apicluster.Certs(b), Configure: func(cfg *apiserver.Config) {
		cfg.Store.MmapSize = apiserver.DefaultConfig().Store.MmapSize
	}})
	conn := c.Dial(b, "admin", client.Options{})
	b.ResetTimer()
	p := runMemoryProbe(b, conn, n, size)
	began := time.Now()
	var idle int64
	waitfor.Condition(b, 5*time.Minute, "heap back within 20% of its start", func() (bool, string) {
		idle = benchfig.HeapInUse()
		return idle <= p.start*12/10, fmt.Sprintf("heap %.1f MiB, started at %.1f MiB", mib(idle), mib(p.start))
	})
	b.StopTimer()
	benchfig.Report("apiserver_rss_per_live_mib", float64(p.maxRSS)/float64(p.live), "B/B")
	benchfig.Report("apiserver_rss_max_mib", mib(p.maxRSS), "MiB")
	benchfig.Report("apiserver_rss_anon_max_mib", mib(p.maxAnon), "MiB")
	benchfig.Report("apiserver_rss_deleted_mib", mib(p.deletedRSS), "MiB")
	benchfig.Report("apiserver_heap_start_mib", mib(p.start), "MiB")
	benchfig.Report("apiserver_heap_written_mib", mib(p.peak), "MiB")
	benchfig.Report("apiserver_heap_deleted_mib", mib(p.deleted), "MiB")
	benchfig.Report("apiserver_heap_idle_mib", mib(idle), "MiB")
	benchfig.Report("apiserver_heap_return_s", time.Since(began).Seconds(), "s")
}
