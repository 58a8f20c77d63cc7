package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/skiffhq/skiff/test/waitfor"
)

// TestQuotaRaisesNoSpace: writes past the quota are refused on every member, the alarm
// is raised in the replicated state, deletes still go through; once space is freed
// (deletes, defragmentation) and the alarm disarmed, writes are accepted again.
func TestQuotaRaisesNoSpace(t *testing.T) {
	const quota = 512 << 10
	c := newCluster(t, 3, func(cfg *Config) { cfg.QuotaBytes = quota })
	ctx := ctxT(t, 120*time.Second)
	l := c.leader()
	follower := c.nodes[(l+1)%3]
	value := bytes.Repeat([]byte("x"), 8<<10)
	var written int
	var refusal error
	for i := 0; i < 200; i++ {
		_, err := follower.Txn(ctx, Op{Type: Create, Key: key(fmt.Sprint("big-", i)), Value: value})
		if err != nil {
			refusal = err
			break
		}
		written++
	}
	if !errors.Is(refusal, ErrNoSpace) || !strings.Contains(refusal.Error(), "quota") {
		t.Fatalf("after %d writes of 8 KiB with a quota of %d: %v; want ErrNoSpace naming the quota", written, quota, refusal)
	}
	if written == 0 {
		t.Fatal("the first write was refused: the quota test says nothing")
	}
	waitfor.Condition(t, 30*time.Second, "NOSPACE raised on every member", func() (bool, string) {
		for _, s := range c.liveNodes() {
			if len(s.Alarms()) == 0 {
				return false, s.cfg.ID + " has no alarm"
			}
		}
		return true, ""
	})
	// Every member refuses, at its door and (whatever reaches it) at apply; the alarm
	// names what to do.
	for _, s := range c.liveNodes() {
		_, err := s.Txn(ctx, Op{Type: Create, Key: key("small-" + s.cfg.ID), Value: []byte("x")})
		if !errors.Is(err, ErrNoSpace) || !strings.Contains(err.Error(), "disarm") {
			t.Fatalf("write through %s under the alarm: %v", s.cfg.ID, err)
		}
		if st, _ := s.Status(); len(st.Alarms) != 1 || st.Alarms[0] != "NOSPACE" {
			t.Fatalf("%s's status alarms: %v", s.cfg.ID, st.Alarms)
		}
	}
	// Deletes go through.
	for i := 0; i < written; i++ {
		if _, err := follower.Txn(ctx, Op{Type: Delete, Key: key(fmt.Sprint("big-", i))}); err != nil {
			t.Fatalf("delete under the alarm: %v", err)
		}
	}
	for _, s := range c.liveNodes() {
		if _, err := c.nodes[l].Defragment(ctx, s.cfg.ID); err != nil {
			t.Fatalf("defragment %s: %v", s.cfg.ID, err)
		}
		u, err := c.nodes[l].MemberUsage(ctx, s.cfg.ID)
		if err != nil || u.Size >= quota/2 {
			t.Fatalf("%s after deletes and defragmentation: %+v %v", s.cfg.ID, u, err)
		}
	}
	if err := follower.DisarmAlarm(ctx); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the alarm disarmed on every member", func() (bool, string) {
		for _, s := range c.liveNodes() {
			if len(s.Alarms()) != 0 {
				return false, s.cfg.ID + " still has it"
			}
		}
		return true, ""
	})
	if _, err := follower.Txn(ctx, Op{Type: Create, Key: key("after"), Value: value}); err != nil {
		t.Fatalf("write after the alarm was disarmed: %v", err)
	}
}

// TestNoSpaceAtApply: under the alarm, the state machine itself refuses creates and
// updates, whichever member proposed them, and applies deletes.
func TestNoSpaceAtApply(t *testing.T) {
	tf := newTestFSM(t, 10)
	if _, err := tf.one(Op{Type: Create, Key: key("a"), Value: []byte("1")}); err != nil {
		t.Fatal(err)
	}
	alarm := func(raise bool) {
		tf.f.ApplyBatch([]*raft.Log{{Index: tf.next, Type: raft.LogCommand, Data: encodeAlarm(raise, "n1")}})
		tf.next++
	}
	alarm(true)
	if p := tf.f.noSpace.Load(); p == nil || *p != "n1" {
		t.Fatalf("alarm raised by %v, want n1", p)
	}
	for _, op := range []Op{
		{Type: Create, Key: key("b"), Value: []byte("1")},
		{Type: Update, Key: key("a"), Value: []byte("2")},
	} {
		if _, err := tf.one(op); !errors.Is(err, ErrNoSpace) {
			t.Fatalf("%s under the alarm: %v", op.Type, err)
		}
	}
	if _, err := tf.one(Op{Type: Delete, Key: key("a")}); err != nil {
		t.Fatalf("delete under the alarm: %v", err)
	}
	alarm(false)
	if _, err := tf.one(Op{Type: Create, Key: key("b"), Value: []byte("1")}); err != nil {
		t.Fatalf("create after disarm: %v", err)
	}
}

// TestDefragmentShrinksAndKeepsEveryObject: after deletes, defragmentation gives the
// freed pages back, keeps every object and revision, and loses no write made while it
// runs.
func TestDefragmentShrinksAndKeepsEveryObject(t *testing.T) {
	c := newCluster(t, 1, nil)
	ctx := ctxT(t, 120*time.Second)
	c.leader()
	s := c.nodes[0]
	value := bytes.Repeat([]byte("v"), 2<<10)
	for i := 0; i < 1000; i += 50 {
		var ops []Op
		for j := i; j < i+50; j++ {
			ops = append(ops, Op{Type: Create, Key: key(fmt.Sprint("o-", j)), Value: value})
		}
		if _, err := s.Txn(ctx, ops...); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < 1000; i += 50 {
		var ops []Op
		for j := i; j < i+50; j++ {
			if j%10 != 0 {
				ops = append(ops, Op{Type: Delete, Key: key(fmt.Sprint("o-", j))})
			}
		}
		if _, err := s.Txn(ctx, ops...); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.Usage()
	if err != nil {
		t.Fatal(err)
	}
	kept, rev, err := s.List(ctx, "ConfigMap", ListOptions{})
	if err != nil || len(kept) != 100 {
		t.Fatalf("list before: %d objects, %v", len(kept), err)
	}

	// Writers keep writing while the file is compacted.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var acked []string
	wctx, stop := context.WithCancel(ctx)
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; wctx.Err() == nil; i++ {
				name := fmt.Sprintf("during-%d-%d", w, i)
				if _, err := s.Txn(ctx, Op{Type: Create, Key: key(name), Value: []byte("d")}); err == nil {
					mu.Lock()
					acked = append(acked, name)
					mu.Unlock()
				}
			}
		}()
	}
	after, err := s.Defragment(ctx, "")
	stop()
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	if after.Size >= before.Size || after.InUse > after.Size {
		t.Fatalf("defragmentation: before %+v, after %+v; want a smaller file", before, after)
	}
	t.Logf("state file %d -> %d bytes (%d in use before)", before.Size, after.Size, before.InUse)
	for _, o := range kept {
		got, err := s.Get(ctx, o.Key, ReadOptions{})
		if err != nil || !bytes.Equal(got.Value, o.Value) || got.ModRevision != o.ModRevision || got.UID != o.UID {
			t.Fatalf("%s after defragmentation: %+v %v, was %+v", o.Key, got, err, o)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, name := range acked {
		if _, err := s.Get(ctx, key(name), ReadOptions{}); err != nil {
			t.Fatalf("write %s acknowledged during defragmentation: %v", name, err)
		}
	}
	if s.Revision() < rev {
		t.Fatalf("revision went back from %d to %d", rev, s.Revision())
	}
	// The store goes on: writes, and a restart from the snapshot and log.
	if _, err := s.Txn(ctx, Op{Type: Create, Key: key("after"), Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
}

// TestDefragWhenMostlyFree: once deletes leave the state file mostly free and have
// stopped for defragQuiet, the member defragments it by itself, giving back the disk and
// the memory bbolt keeps for each free page; not while deletes go on, not when less than
// the threshold is free, not when the file holds more than it has free.
func TestDefragWhenMostlyFree(t *testing.T) {
	const threshold = 2 << 20
	tf := newTestFSM(t, 100)
	now := time.Unix(1000, 0)
	value := bytes.Repeat([]byte("v"), 64<<10)
	for i := 0; i < 64; i++ { // 4 MiB
		tf.one(Op{Type: Create, Key: key(fmt.Sprint(i)), Value: value})
	}
	check := func(step string, after time.Duration, want bool) Usage {
		t.Helper()
		now = now.Add(after)
		done, u, err := tf.f.defragIfFree(threshold, now)
		if err != nil || done != want {
			t.Fatalf("%s: defragmented %v (%v), want %v; state file %+v", step, done, err, want, u)
		}
		return u
	}
	check("after the writes", defragQuiet, false)
	for i := 0; i < 16; i++ { // 1 MiB freed: under the threshold
		tf.one(Op{Type: Delete, Key: key(fmt.Sprint(i))})
	}
	check("deleting", time.Second, false)
	check("1 MiB free", defragQuiet, false)
	for i := 16; i < 40; i++ { // 2.5 MiB freed, 1.5 MiB in use
		tf.one(Op{Type: Delete, Key: key(fmt.Sprint(i))})
		check("deleting", defragQuiet/2, false)
	}
	check("deletes just over", defragQuiet/2, false)
	before := tf.f.db().Stats().FreePageN
	after := check("deletes over", defragQuiet/2, true)
	if free := after.Size - after.InUse; free >= threshold || tf.f.db().Stats().FreePageN >= before/4 {
		t.Fatalf("after defragmentation the state file is %+v, %d pages free (%d before)", after, tf.f.db().Stats().FreePageN, before)
	}
	check("defragmented", defragQuiet, false)
	for i := 40; i < 64; i++ {
		if _, _, err := tf.f.get(key(fmt.Sprint(i))); err != nil {
			t.Fatalf("%d after defragmentation: %v", i, err)
		}
	}
	if _, err := tf.one(Op{Type: Create, Key: key("after"), Value: value}); err != nil {
		t.Fatalf("write after defragmentation: %v", err)
	}
	if done, _, _ := tf.f.defragIfFree(0, now.Add(time.Hour)); done {
		t.Fatal("defragmented with the threshold 0")
	}
}
