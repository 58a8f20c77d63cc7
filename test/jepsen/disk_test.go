package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/skiffhq/skiff/internal/failpoint"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// Disk faults. The suite's server is built with the failpoints tag (TestMain), so a
// member restarted with SKIFF_FAILPOINTS set crashes or slows down at the store's points
// (store/failpoints.go); and a member's data directory can be moved onto a small tmpfs
// that the nemesis fills up.

// diskArgs make snapshots and log compactions frequent (by the log's size), so that the
// snapshot, snapshot install and compaction points are passed within seconds.
var diskArgs = []string{"--trailing-log-bytes=16384", "--snapshot-log-bytes=32768"}

// diskNemeses are appended to nemeses (nemesis_test.go).
var diskNemeses = []nemesis{
	{name: "failpoint-crash", group: "disk", args: diskArgs, inject: crashFailpoints},
	{name: "slow-fsync", group: "disk", args: diskArgs, inject: slowFsync},
	{name: "disk-full", group: "disk", args: diskArgs, root: true, inject: diskFull},
}

// crashSpecs are the crash faults, one picked per fault. A probability below one lets
// the member run a little between crashes (a restart replays its log and snapshot, which
// passes some points again).
var crashSpecs = []string{
	"store/beforeApply=crash@0.05",
	"store/afterCommit=crash@0.05",
	"store/logStore=crash@0.05",
	"store/beforeSnapshotPersist=crash@0.5,store/afterSnapshotPersist=crash@0.5",
	"store/beforeRestore=crash@0.3,store/afterRestore=crash@0.3",
	"store/beforeCompaction=crash@0.5,store/afterCompaction=crash@0.5",
}

// crashFailpoints restarts a member with crash failpoints armed, and again after each
// crash, until the heal.
func crashFailpoints(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
	name := c.randomRunning(r)
	spec := crashSpecs[r.IntN(len(crashSpecs))]
	return []string{name}, spec, c.arm(c.node(name), spec), nil
}

// slowFsyncSpec delays half the Raft log appends (each one fsync) by 100ms and half the
// state file's commits by 20ms.
const slowFsyncSpec = "store/logStore=delay(100ms)@0.5,store/applyCommit=delay(20ms)@0.5"

// slowFsync gives a member a slow disk; half the time it is then made the leader, whose
// disk every write waits on.
func slowFsync(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
	name := c.randomRunning(r)
	disarm := c.arm(c.node(name), slowFsyncSpec)
	return []string{name}, "slow disk" + c.maybeLead(ctx, r, name), disarm, nil
}

// maybeLead makes name the leader half the time, once it follows a leader (Raft catches
// it up before handing over), and says how it went, for the fault's note.
func (c *cluster) maybeLead(ctx context.Context, r *rand.Rand, name string) string {
	if r.IntN(2) == 0 {
		return ""
	}
	tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var err error
	for {
		var st *apiv1.ClusterStatus
		if st, err = c.status(tctx, name); err == nil && st.GetLeader() == "" {
			err = fmt.Errorf("%s follows no leader", name)
		}
		if err == nil || tctx.Err() != nil {
			break
		}
		select {
		case <-tctx.Done():
		case <-time.After(100 * time.Millisecond): // bounded polling
		}
	}
	if err == nil {
		admin := c.admin()
		_, err = admin.TransferLeader(tctx, name)
		admin.Close()
	}
	if err != nil {
		return fmt.Sprintf(", not made leader: %v", err)
	}
	return ", made leader"
}

// arm restarts nd with failpoints armed (spec, as SKIFF_FAILPOINTS) and restarts it,
// armed again, whenever a failpoint crashes it; the returned heal disarms them and
// restarts it without.
func (c *cluster) arm(nd *node, spec string) func(context.Context) error {
	c.kill(nd)
	nd.env = []string{failpoint.EnvVar + "=" + spec}
	c.start(nd)
	stop, done := make(chan struct{}), make(chan struct{})
	crashes := 0
	go func() {
		defer close(done)
		for {
			c.mu.Lock()
			p := nd.proc
			c.mu.Unlock()
			if p == nil {
				return
			}
			select {
			case <-stop:
				return
			case <-p.done:
			}
			if !p.injected.Load() {
				return // killed, or a real crash (an anomaly)
			}
			crashes++
			c.start(nd)
		}
	}()
	return func(context.Context) error {
		close(stop)
		<-done
		c.kill(nd)
		nd.env = nil
		c.start(nd)
		c.t.Logf("%s: %d crashes by failpoints (%s)", nd.name, crashes, spec)
		return nil
	}
}

// Disk full: the member's data directory is moved onto a tmpfs of tmpfsSize (once; it
// stays there for the rest of the run), and a file fills it up to fillLeave bytes, which
// the member's own writes then use up: it gets ENOSPC mid-write. The heal deletes the
// file. The member must refuse what it cannot write (a leader steps down, a follower
// rejects appends, its state machine waits for space) without damaging its data, the
// others keep serving, and it catches up once space is back.
const (
	tmpfsSize = 64 << 20
	fillLeave = 64 << 10
)

func diskFull(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
	name := c.randomRunning(r)
	nd := c.node(name)
	if err := c.onTmpfs(ctx, nd); err != nil {
		return nil, "", nil, err
	}
	lead := c.maybeLead(ctx, r, name)
	fill := filepath.Join(nd.dir, "jepsen-fill")
	n, err := fillUp(fill, fillLeave)
	if err != nil {
		os.Remove(fill)
		return nil, "", nil, err
	}
	return []string{name}, fmt.Sprintf("data dir full (%d KiB filler)%s", n>>10, lead), func(context.Context) error {
		if err := os.Remove(fill); err != nil {
			return fmt.Errorf("free %s: %w", fill, err)
		}
		if c.exited(nd) { // it crashed (an anomaly, recorded): bring it back for the rest of the run
			c.kill(nd)
			c.start(nd)
		}
		return nil
	}, nil
}

// exited says whether nd's process has ended without the harness killing it.
func (c *cluster) exited(nd *node) bool {
	c.mu.Lock()
	p := nd.proc
	c.mu.Unlock()
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// onTmpfs moves nd's data directory onto a tmpfs of its own, restarting it, and waits
// until the cluster is healthy again. The tmpfs is unmounted when the test ends (after
// nd is killed).
func (c *cluster) onTmpfs(ctx context.Context, nd *node) error {
	if nd.tmpfs {
		return nil
	}
	c.kill(nd)
	moved := nd.dir + ".disk"
	if err := os.Rename(nd.dir, moved); err != nil {
		c.start(nd)
		return err
	}
	if err := os.Mkdir(nd.dir, 0o700); err != nil {
		return err
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0700", tmpfsSize), "skiff-jepsen", nd.dir).CombinedOutput(); err != nil {
		os.Remove(nd.dir)
		os.Rename(moved, nd.dir)
		c.start(nd)
		return fmt.Errorf("mount a tmpfs on %s: %v: %s", nd.dir, err, out)
	}
	nd.tmpfs = true
	c.t.Cleanup(func() {
		c.kill(nd)
		if out, err := exec.Command("umount", nd.dir).CombinedOutput(); err != nil {
			c.t.Errorf("unmount %s: %v: %s", nd.dir, err, out)
			exec.Command("umount", "-l", nd.dir).Run()
		}
	})
	if out, err := exec.Command("cp", "-a", moved+"/.", nd.dir+"/").CombinedOutput(); err != nil {
		return fmt.Errorf("copy %s onto its tmpfs: %v: %s", nd.dir, err, out)
	}
	os.RemoveAll(moved)
	c.start(nd)
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.waitHealthy(wctx); err != nil {
		return fmt.Errorf("%s back on its tmpfs: %w", nd.name, err)
	}
	return nil
}

// fillUp creates path and allocates all the free space of its file system but leave
// bytes; it returns the bytes it took.
func fillUp(path string, leave int64) (int64, error) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(filepath.Dir(path), &st); err != nil {
		return 0, fmt.Errorf("statfs %s: %w", filepath.Dir(path), err)
	}
	n := int64(st.Bavail)*int64(st.Bsize) - leave
	if n <= 0 {
		return 0, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	if err := syscall.Fallocate(int(f.Fd()), 0, 0, n); err != nil {
		return 0, fmt.Errorf("fill %s with %d bytes: %w", path, n, err)
	}
	return n, nil
}

// grouped replaces the nemeses of each group by one that injects each of them in turn
// (those that need root only as root), keeping the list's order.
func grouped(list []nemesis) []nemesis {
	var out []nemesis
	members := map[string][]nemesis{}
	for _, nem := range list {
		if nem.group == "" {
			out = append(out, nem)
			continue
		}
		if nem.root && os.Geteuid() != 0 {
			continue
		}
		if members[nem.group] == nil {
			out = append(out, nemesis{name: nem.group})
		}
		members[nem.group] = append(members[nem.group], nem)
	}
	for i, nem := range out {
		ms := members[nem.name]
		if len(ms) == 0 {
			continue
		}
		for _, m := range ms {
			for _, a := range m.args {
				if !slices.Contains(nem.args, a) {
					nem.args = append(nem.args, a)
				}
			}
		}
		next := 0
		nem.turns = len(ms)
		nem.inject = func(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
			m := ms[next%len(ms)]
			next++
			targets, note, heal, err := m.inject(ctx, c, r)
			return targets, m.name + ": " + note, heal, err
		}
		out[i] = nem
	}
	return out
}
