package jepsen

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/bbolt"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestTornRaftLog: the leader is killed -9 under a write load, and the tail of its Raft
// log (raft.db, a bbolt file) is torn as a disk that lost or garbled its last write would
// leave it: the last page that holds data cut in half, or its bytes flipped. Restarted, the member
// must either refuse to start with a message that says how to recover (remove it, wipe
// its data directory, add it again; the test then does that) or recover by itself; it
// must not crash with a panic. Either way the cluster keeps serving writes throughout, and
// no acknowledged write is lost (the set workload's check, on every member).
func TestTornRaftLog(t *testing.T) {
	if testing.Short() {
		t.Skip("short: starts two clusters")
	}
	for _, tc := range []struct {
		name string
		tear func(path string) (string, error)
	}{
		{"truncated", truncateLastPage},
		{"flipped", flipLastPage},
	} {
		t.Run(tc.name, func(t *testing.T) { tornLog(t, tc.tear) })
	}
}

func tornLog(t *testing.T, tear func(string) (string, error)) {
	c := newCluster(t, binPath, 3, "")
	const ns = "torn"
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	if err := c.failover().EnsureNamespace(ctx, ns); err != nil {
		t.Fatal(err)
	}
	if _, err := c.waitHealthy(ctx); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var acked atomic.Int64
	set := &setWorkload{c: c, ns: ns, clock: func() int64 { return int64(time.Since(start)) }, timeout: 5 * time.Second,
		onWrite: func(int64) { acked.Add(1) }}
	work, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() { defer wg.Done(); set.run(work, i) }()
	}
	defer func() { stop(); wg.Wait() }()
	// servesWrites waits for more acknowledged writes than now.
	servesWrites := func(when string) {
		t.Helper()
		n := acked.Load()
		waitfor.Condition(t, 30*time.Second, "writes acknowledged "+when, func() (bool, string) {
			return acked.Load() > n+20, fmt.Sprintf("%d acknowledged, %d before", acked.Load(), n)
		})
	}
	servesWrites("before the kill")

	victim, err := c.waitLeader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nd := c.node(victim)
	c.kill(nd)
	var log string
	filepath.WalkDir(nd.dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && d.Name() == "raft.db" {
			log = path
		}
		return nil
	})
	if log == "" {
		t.Fatalf("no raft.db under %s", nd.dir)
	}
	what, err := tear(log)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed the leader %s under load; its %s: %s", victim, log, what)
	servesWrites("with the leader down")

	c.start(nd)
	var outcome string
	waitfor.Condition(t, 60*time.Second, victim+" refusing to start or rejoining", func() (bool, string) {
		if crash := c.takeCrash(victim); crash != "" {
			outcome = crash
			return true, ""
		}
		_, why := c.healthy(ctx)
		return why == "", why
	})
	if outcome == "" {
		t.Logf("%s recovered by itself from its torn log", victim)
	} else {
		t.Logf("%s refused to start: %s", victim, outcome)
		for _, bad := range []string{"panic:", "goroutine ", "fatal error", "SIGBUS", "SIGSEGV"} {
			if strings.Contains(outcome, bad) {
				t.Fatalf("%s crashed on its torn log (%q) rather than refusing with advice", victim, bad)
			}
		}
		for _, want := range []string{"is damaged", "skiffctl cluster remove " + victim, "add it again"} {
			if !strings.Contains(outcome, want) {
				t.Fatalf("%s's refusal does not say %q", victim, want)
			}
		}
		// Follow the advice: remove it, wipe its data directory, add it again.
		servesWrites("with the member refusing to start")
		if err := c.remove(victim); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(nd.dir); err != nil {
			t.Fatal(err)
		}
		c.rejoin(nd)
		if _, err := c.waitHealthy(ctx); err != nil {
			t.Fatalf("re-add %s: %v", victim, err)
		}
	}
	servesWrites("after the recovery")
	stop()
	wg.Wait()

	// No acknowledged write lost, on any member (each lists linearizably, through itself).
	for _, name := range c.membersNow() {
		l, err := client.For[*corev1.ConfigMap](c.pinned(name)).List(ctx, ns, client.ListOptions{})
		if err != nil {
			t.Fatalf("list on %s: %v", name, err)
		}
		res, anomalies := set.check(l.Items)
		for _, a := range anomalies {
			t.Errorf("on %s: %s: %s", name, a.Kind, a.Detail)
		}
		t.Logf("%s: %d creates acknowledged, %d objects", name, res.Acknowledged, res.Final)
	}
	if crashes := c.crashed(); len(crashes) > 0 {
		t.Errorf("crashes: %v", crashes)
	}
}

// takeCrash returns (and forgets) what the harness recorded when name's process exited by
// itself: its log's last lines; "" when it did not.
func (c *cluster) takeCrash(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, crash := range c.crashes {
		if strings.HasPrefix(crash, name+" exited by itself") {
			c.crashes = append(c.crashes[:i], c.crashes[i+1:]...)
			return crash
		}
	}
	return ""
}

// lastLivePage finds the last page of a bbolt file that holds data (a branch or a leaf,
// not a free page): the one a torn tail damages for sure.
func lastLivePage(path string) (id int, pageSize int64, err error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, NoFreelistSync: true, FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return 0, 0, err
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		for i := 2; ; i++ {
			p, err := tx.Page(i)
			if err != nil {
				return err
			}
			if p == nil {
				return nil // past the high-water mark
			}
			if p.Type == "leaf" || p.Type == "branch" {
				id = i
			}
			i += p.OverflowCount // a large page's continuation pages have no header
		}
	})
	if err == nil && id == 0 {
		err = fmt.Errorf("%s: no page holds data", path)
	}
	return id, int64(db.Info().PageSize), err
}

// truncateLastPage cuts the file in the middle of its last page of data.
func truncateLastPage(path string) (string, error) {
	id, ps, err := lastLivePage(path)
	if err != nil {
		return "", err
	}
	size := int64(id)*ps + ps/2
	if err := os.Truncate(path, size); err != nil {
		return "", err
	}
	return fmt.Sprintf("truncated to %d bytes, half of its last page of data (page %d of %d bytes)", size, id, ps), nil
}

// flipLastPage inverts the bytes of its last page of data, after the page's header.
func flipLastPage(path string) (string, error) {
	id, ps, err := lastLivePage(path)
	if err != nil {
		return "", err
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b := make([]byte, ps-16)
	off := int64(id)*ps + 16
	if _, err := f.ReadAt(b, off); err != nil {
		return "", err
	}
	for i := range b {
		b[i] ^= 0xff
	}
	if _, err := f.WriteAt(b, off); err != nil {
		return "", err
	}
	return fmt.Sprintf("bytes %d-%d (page %d of data, after its header) inverted", off, off+ps-16, id), nil
}
