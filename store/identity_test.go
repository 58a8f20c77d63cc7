package store

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	"github.com/skiffhq/skiff/pki"
	storev1 "github.com/skiffhq/skiff/proto/store/v1"
	"github.com/skiffhq/skiff/test/waitfor"
)

func testIdentity(t testing.TB) *identity {
	id, err := loadIdentity(t.TempDir(), "test", hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// sharedCA is the peer TLS of one CA, which every cluster of a test uses.
func sharedCA(t testing.TB) *tls.Config {
	dir := t.TempDir()
	if _, err := pki.InitDir(dir, pki.InitOptions{}); err != nil {
		t.Fatal(err)
	}
	r, err := pki.NewReloader(filepath.Join(dir, "apiserver.crt"), filepath.Join(dir, "apiserver.key"), filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	return r.PeerTLS()
}

// syncBuffer collects a node's logs for a test to read.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// waitClusterID waits until every running node of c knows one cluster ID, and returns it.
func waitClusterID(t *testing.T, c *cluster) string {
	t.Helper()
	var id string
	waitfor.Condition(t, 30*time.Second, "every member knows the cluster ID", func() (bool, string) {
		ids := map[string]bool{}
		for _, s := range c.liveNodes() {
			ids[s.ClusterID()] = true
		}
		for k := range ids {
			id = k
		}
		return len(ids) == 1 && id != "", fmt.Sprint(ids)
	})
	return id
}

func TestClusterIDMadeOnceAndKept(t *testing.T) {
	c := newCluster(t, 3, nil)
	c.leader()
	id := waitClusterID(t, c)
	if len(id) != 16 {
		t.Fatalf("cluster ID %q, want 16 hex digits", id)
	}
	for i := range c.nodes {
		b, err := os.ReadFile(filepath.Join(c.cfgs[i].Dir, identityFile))
		if err != nil || !strings.Contains(string(b), id) {
			t.Fatalf("%s's identity file %q (%v) does not name cluster %s", c.cfgs[i].ID, b, err, id)
		}
		if st, _ := c.nodes[i].Status(); st.ClusterID != id {
			t.Fatalf("%s's status names cluster %q, want %s", c.cfgs[i].ID, st.ClusterID, id)
		}
	}
	// Restarts and new leaders keep it.
	l := c.leader()
	c.stop(l)
	c.start(l)
	c.leader()
	if got := waitClusterID(t, c); got != id {
		t.Fatalf("after a restart the cluster ID is %s, was %s", got, id)
	}
}

// TestMemberOfAnotherClusterRefused: two clusters whose members hold certificates of one
// CA never talk: a connection from one to the other is refused by both sides, with both
// IDs named, and a join of the other cluster's member fails before it changes anything.
func TestMemberOfAnotherClusterRefused(t *testing.T) {
	ca := sharedCA(t)
	var logA syncBuffer
	a := newCluster(t, 1, func(cfg *Config) {
		cfg.PeerTLS = ca
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "a", Output: &logA, Level: hclog.Info})
	})
	b := newCluster(t, 1, func(cfg *Config) { cfg.PeerTLS = ca })
	a.leader()
	b.leader()
	idA, idB := waitClusterID(t, a), waitClusterID(t, b)
	if idA == idB {
		t.Fatalf("two clusters share ID %s", idA)
	}
	ctx := ctxT(t, 30*time.Second)
	na, nb := a.nodes[0], b.nodes[0]

	_, err := nb.mux.dial(ctx, na.PeerAddress(), protoRaft)
	var re *RefusedError
	if !errors.As(err, &re) || !strings.Contains(err.Error(), idA) || !strings.Contains(err.Error(), idB) {
		t.Fatalf("a member of cluster %s dialing cluster %s: %v; want a refusal naming both IDs", idB, idA, err)
	}
	waitfor.Condition(t, 10*time.Second, "the refusal logged at info", func() (bool, string) {
		return strings.Contains(logA.String(), "peer connection refused") && strings.Contains(logA.String(), idB), logA.String()
	})

	err = na.AddVoter(ctx, "n9", nb.PeerAddress())
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), idA) || !strings.Contains(err.Error(), idB) {
		t.Fatalf("join of cluster %s's member into %s: %v; want ErrRefused naming both IDs", idB, idA, err)
	}
	if st, _ := na.Status(); len(st.Members) != 1 {
		t.Fatalf("the refused join changed the members: %+v", st.Members)
	}
}

// TestRemovedMemberRefused: a member removed from the cluster that comes back with its
// old data is refused; wiped and added again, it joins as a new incarnation.
func TestRemovedMemberRefused(t *testing.T) {
	c := newCluster(t, 3, nil)
	ctx := ctxT(t, 90*time.Second)
	l := c.leader()
	id := waitClusterID(t, c)
	victim := (l + 1) % 3
	name := c.cfgs[victim].ID
	_, uid := c.nodes[victim].ident.get()
	waitfor.Condition(t, 30*time.Second, "the leader recorded "+name+"'s incarnation", func() (bool, string) {
		got := c.nodes[l].fsm.incarnation(name)
		return got == uid, got
	})
	if _, err := c.nodes[l].Txn(ctx, Op{Type: Create, Key: key("before"), Value: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	c.stop(victim)
	if err := c.nodes[l].RemoveServer(ctx, name); err != nil {
		t.Fatalf("remove %s: %v", name, err)
	}
	waitfor.Condition(t, 30*time.Second, "every member applied the removal", func() (bool, string) {
		for _, s := range c.liveNodes() {
			if _, removed := s.fsm.removedIncarnation(uid); !removed {
				return false, s.cfg.ID + " has not"
			}
		}
		return true, ""
	})

	// It comes back with its data: refused, by name, incarnation and cluster.
	back := c.start(victim)
	var re *RefusedError
	leader := c.nodes[c.leader()]
	_, err := back.mux.dial(ctx, leader.PeerAddress(), protoPeer)
	if !errors.As(err, &re) || !strings.Contains(err.Error(), "was removed") {
		t.Fatalf("a removed member dialing the leader: %v; want a refusal", err)
	}
	for _, want := range []string{name, uid, id} {
		if !strings.Contains(err.Error(), want) {
			t.Fatalf("refusal %q does not name %s", err, want)
		}
	}
	if st, _ := leader.Status(); len(st.Members) != 2 {
		t.Fatalf("members after the removed member came back: %+v", st.Members)
	}

	// Wiped and added again, it is a new incarnation and joins.
	c.stop(victim)
	os.RemoveAll(c.cfgs[victim].Dir)
	c.cfgs[victim].InitialCluster = nil
	fresh := c.start(victim)
	if err := leader.AddVoter(ctx, name, fresh.PeerAddress()); err != nil {
		t.Fatalf("add %s again: %v", name, err)
	}
	waitfor.Condition(t, 60*time.Second, "the new incarnation has the data", func() (bool, string) {
		_, _, err := fresh.GetLocal(key("before"))
		return err == nil && fresh.ClusterID() == id, fmt.Sprintf("%v, cluster %q", err, fresh.ClusterID())
	})
}

// TestSnapshotOfAnotherClusterRefused: a member never installs another cluster's state.
func TestSnapshotOfAnotherClusterRefused(t *testing.T) {
	named := func(id string) *testFSM {
		tf := newTestFSM(t, 10)
		cmd, _ := proto.Marshal(&storev1.Command{Command: &storev1.Command_ClusterIdentity{ClusterIdentity: &storev1.ClusterIdentity{Id: id}}})
		tf.f.ApplyBatch([]*raft.Log{{Index: tf.next, Type: raft.LogCommand, Data: cmd}})
		tf.next++
		return tf
	}
	mine, theirs := named("aaaaaaaaaaaaaaaa"), named("bbbbbbbbbbbbbbbb")
	if got := mine.f.clusterID(); got != "aaaaaaaaaaaaaaaa" {
		t.Fatalf("cluster ID %q after applying it", got)
	}
	theirs.one(Op{Type: Create, Key: key("x"), Value: []byte("x")})
	var snap bytes.Buffer
	if _, err := theirs.f.writeTo(&snap); err != nil {
		t.Fatal(err)
	}
	err := mine.f.Restore(io.NopCloser(bytes.NewReader(snap.Bytes())))
	if !errors.Is(err, ErrRefused) || !strings.Contains(err.Error(), "bbbbbbbbbbbbbbbb") || !strings.Contains(err.Error(), "aaaaaaaaaaaaaaaa") {
		t.Fatalf("install of another cluster's snapshot: %v", err)
	}
	if _, _, err := mine.f.get(key("x")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the refused snapshot's object is there: %v", err)
	}
}
