package store

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

// mappedRSS returns the bytes of path's mappings resident in this process, from
// /proc/self/smaps.
func mappedRSS(t *testing.T, path string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var in bool
	var total int64
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 {
			continue
		}
		if !strings.HasSuffix(fields[0], ":") { // a mapping's first line
			in = len(fields) >= 6 && fields[5] == path
			continue
		}
		if in && fields[0] == "Rss:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			total += kb << 10
		}
	}
	return total
}

// TestDeletesReleaseMappedPages: objects read (each delete reads the previous object, for
// its watch event) leave the state file's pages mapped in the process; once enough are
// deleted the store drops that mapping, and the state reads and writes as before.
func TestDeletesReleaseMappedPages(t *testing.T) {
	const n, size = 16, 512 << 10
	c := newCluster(t, 1, func(cfg *Config) { cfg.ReleaseMappedBytes = 4 << 20 })
	ctx := ctxT(t, 60*time.Second)
	c.leader()
	s := c.nodes[0]
	path := filepath.Join(c.cfgs[0].Dir, "state.db")
	for i := 0; i < n; i++ {
		if _, err := s.Txn(ctx, Op{Type: Create, Key: key(strconv.Itoa(i)), Value: bytes.Repeat([]byte{'x'}, size)}); err != nil {
			t.Fatal(err)
		}
	}
	// The creates' own pages are released once they stop: wait for it, so that it does
	// not release what the reads below map.
	waitfor.Condition(t, 30*time.Second, "the creates' mapped pages released", func() (bool, string) {
		touched := s.fsm.mapped.touched.Load()
		return touched == 0, fmt.Sprintf("%d bytes written since the last release", touched)
	})
	for i := 0; i < n; i++ { // reads map the objects' pages
		if _, err := s.Get(ctx, key(strconv.Itoa(i)), ReadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if r := mappedRSS(t, path); r < n*size/2 {
		t.Fatalf("state.db is %d bytes resident after reading %d bytes of objects: the test reads nothing through the map", r, n*size)
	}
	for i := 0; i < n; i++ {
		if _, err := s.Txn(ctx, Op{Type: Delete, Key: key(strconv.Itoa(i))}); err != nil {
			t.Fatal(err)
		}
	}
	waitfor.Condition(t, 30*time.Second, "the state file's pages released", func() (bool, string) {
		r := mappedRSS(t, path)
		return r < 1<<20, fmt.Sprintf("state.db: %d bytes resident", r)
	})
	// The map still serves: a new object reads back.
	if _, err := s.Txn(ctx, Op{Type: Create, Key: key("after"), Value: []byte("v")}); err != nil {
		t.Fatal(err)
	}
	if obj, err := s.Get(ctx, key("after"), ReadOptions{}); err != nil || string(obj.Value) != "v" {
		t.Fatalf("read after the release: %+v %v", obj, err)
	}
}

// TestWritesReleaseMappedPages: writing objects maps the state file's pages too (each
// write copies its leaf, with the objects beside it, through the map), and so does
// appending them to the Raft log's file; once ReleaseMappedBytes have been written to a
// file the member drops its mapping, so that writes alone keep each file's share of the
// RSS within about the threshold, not the bytes written. Once the writes stop the rest
// is dropped as well.
func TestWritesReleaseMappedPages(t *testing.T) {
	const n, size, threshold = 48, 256 << 10, 1 << 20
	c := newCluster(t, 1, func(cfg *Config) { cfg.ReleaseMappedBytes = threshold })
	ctx := ctxT(t, 2*time.Minute)
	c.leader()
	s := c.nodes[0]
	files := []string{filepath.Join(c.cfgs[0].Dir, "state.db"), filepath.Join(c.cfgs[0].Dir, "raft.db")}
	most := make([]int64, len(files))
	for i := 0; i < n; i++ {
		if _, err := s.Txn(ctx, Op{Type: Create, Key: key(strconv.Itoa(i)), Value: bytes.Repeat([]byte{'x'}, size)}); err != nil {
			t.Fatal(err)
		}
		for f, path := range files {
			most[f] = max(most[f], mappedRSS(t, path))
		}
	}
	for f, path := range files {
		t.Logf("%s: at most %d bytes resident while %d bytes were written", filepath.Base(path), most[f], n*size)
		// Past the threshold, what one write maps: its leaf's other values (three).
		if bound := int64(threshold + 4*size + 1<<20); most[f] > bound {
			t.Errorf("%s was %d bytes resident while %d bytes were written: over %d", filepath.Base(path), most[f], n*size, bound)
		}
		waitfor.Condition(t, 30*time.Second, "the pages released once the writes stop", func() (bool, string) {
			r := mappedRSS(t, path)
			return r < 1<<20, fmt.Sprintf("%s: %d bytes resident", filepath.Base(path), r)
		})
	}
}
