package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/skiffhq/skiff/version"
)

// A nemesis injects one fault and returns how to heal it. Faults are injected on a
// schedule: a quiet period, the fault, a hold, the heal, and again.
type nemesis struct {
	name string
	// partitions: the nemesis cuts links between nodes (with the cluster's netFaults).
	partitions bool
	// group: in the default run of `go test` (neither -short nor -jepsen.long nor
	// JEPSEN_NEMESES), the nemeses of one group run as one, each fault in turn, on one
	// cluster: the group costs `make test` one short run, not one per nemesis.
	group string
	// args: flags every server of the run gets.
	args []string
	// root: the nemesis needs root (it mounts); skipped otherwise.
	root bool
	// turns: a grouped nemesis (grouped) injects this many kinds of fault in turn.
	turns  int
	inject func(ctx context.Context, c *cluster, r *rand.Rand) (targets []string, note string, heal func(context.Context) error, err error)
	// from, when set, gives the skiff the cluster starts with (the previous release,
	// which the nemesis upgrades); nil: this build.
	from func(t *testing.T) string
	// rolling: a planned change, one fault per member, and the run lasts until each
	// member has had its own (whatever the run's duration). Clients must not notice
	// beyond a leader change: the failover client's writes fail only in a leader-change
	// window, and no watch loses events to a compaction.
	rolling bool
}

// fault is one injected fault, as the report lists it.
type fault struct {
	Kind    string   `json:"kind"`
	Targets []string `json:"targets"`
	Note    string   `json:"note,omitempty"`
	Start   int64    `json:"startNs"`
	Healed  int64    `json:"healedNs"`
	HealErr string   `json:"healError,omitempty"`
	// UnavailableMs is the longest window without a successful write from the fault's
	// start to the next fault (or the end of the workload).
	UnavailableMs float64 `json:"writeUnavailableMs"`
	// FirstWriteMs is how long after the fault the first write succeeded.
	FirstWriteMs float64 `json:"firstWriteAfterMs"`
}

var nemeses = append([]nemesis{
	{name: "kill-leader", inject: func(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
		l := c.leader(ctx)
		if l == "" {
			return nil, "", nil, fmt.Errorf("no leader to kill")
		}
		return killNode(c, l)
	}},
	{name: "kill-random", inject: func(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
		return killNode(c, c.randomRunning(r))
	}},
	{name: "pause-leader", inject: func(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
		l := c.leader(ctx)
		if l == "" {
			return nil, "", nil, fmt.Errorf("no leader to pause")
		}
		nd := c.node(l)
		c.signal(nd, syscall.SIGSTOP)
		return []string{l}, "SIGSTOP", func(context.Context) error { c.signal(nd, syscall.SIGCONT); return nil }, nil
	}},
	{name: "partition-leader", partitions: true, inject: func(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
		l := c.leader(ctx)
		if l == "" {
			return nil, "", nil, fmt.Errorf("no leader to isolate")
		}
		return isolate(c, l)
	}},
	{name: "partition-random", partitions: true, inject: func(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
		// Majority/minority: a random minority is cut off from the rest.
		names := c.membersNow()
		r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		minority := names[:(len(names)-1)/2]
		return partition(c, minority, names[len(minority):])
	}},
	{name: "partition-bridge", partitions: true, inject: func(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
		// Two halves that cannot talk, and one node (the bridge) that sees both.
		names := c.membersNow()
		r.Shuffle(len(names), func(i, j int) { names[i], names[j] = names[j], names[i] })
		bridge, rest := names[0], names[1:]
		half := len(rest) / 2
		targets, _, heal, err := partition(c, rest[:half], rest[half:])
		return targets, "bridge " + bridge, heal, err
	}},
	{name: "restart-all", inject: func(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
		names := c.membersNow()
		var wg sync.WaitGroup
		for _, name := range names {
			wg.Add(1)
			go func() { defer wg.Done(); c.kill(c.node(name)) }()
		}
		wg.Wait()
		return names, "kill -9 all", func(context.Context) error {
			for _, name := range names {
				c.start(c.node(name))
			}
			return nil
		}, nil
	}},
	{name: "membership", inject: func(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
		// Remove a random member, stop it, and (at heal) add a fresh one that joins.
		victim := c.randomRunning(r)
		if err := c.remove(victim); err != nil {
			return nil, "", nil, err
		}
		return []string{victim}, "removed", func(ctx context.Context) error {
			nd := c.newNode()
			var join []string
			for _, name := range c.membersNow() {
				if name != nd.name {
					join = append(join, c.node(name).api)
				}
			}
			nd.args = append(nd.args, "--join", strings.Join(join, ","))
			c.start(nd)
			_, err := c.waitHealthy(ctx)
			if err != nil {
				return fmt.Errorf("add %s: %w", nd.name, err)
			}
			return nil
		}, nil
	}},
	{name: "member-replace", inject: replaceMember},
	{name: "upgrade", from: previousRelease, rolling: true, inject: upgradeNext},
}, diskNemeses...)

// upgradeNext replaces the next member still running the previous release with this
// build, as docs/operations.md "Upgrades" says: leadership transferred away if it leads,
// its service stopped (SIGTERM), the binary replaced, started on the same data directory;
// the heal returns when the member follows, has applied what the leader committed and
// says it runs this release, to itself and to the leader.
func upgradeNext(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
	name := ""
	for _, m := range c.membersNow() {
		if c.binOf(m) != binPath {
			name = m
			break
		}
	}
	if name == "" {
		return nil, "", nil, fmt.Errorf("every member runs this build already")
	}
	note := "stopped"
	if c.leader(ctx) == name {
		admin := c.admin()
		_, err := admin.TransferLeader(ctx, "")
		admin.Close()
		if err != nil {
			return nil, "", nil, fmt.Errorf("transfer leadership away from %s: %w", name, err)
		}
		note = "leadership transferred, stopped"
	}
	nd := c.node(name)
	if !c.stop(nd, 10*time.Second) {
		note += " (SIGKILL: no exit 10s after SIGTERM)"
	}
	return []string{name}, note, func(ctx context.Context) error {
		c.mu.Lock()
		nd.bin = binPath
		nd.args = append(nd.args, bookmarkFlags...)
		c.mu.Unlock()
		c.start(nd)
		return c.waitVersion(ctx, name, version.Version)
	}, nil
}

// binOf is the skiff member name runs.
func (c *cluster) binOf(name string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if nd := c.nodes[name]; nd.bin != "" {
		return nd.bin
	}
	return c.bin
}

// waitVersion polls until the cluster is healthy and member name says it runs v, to
// itself and to the leader (the VERSION column of skiffctl cluster status).
func (c *cluster) waitVersion(ctx context.Context, name, v string) error {
	last := ""
	for {
		leader, why := c.healthy(ctx)
		if why == "" {
			why = c.versionSeen(ctx, name, leader, v)
		}
		if why == "" {
			return nil
		}
		last = why
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not upgraded: %s", name, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}

func (c *cluster) versionSeen(ctx context.Context, name, leader, v string) string {
	st, err := c.status(ctx, name)
	if err != nil {
		return fmt.Sprintf("%s: %v", name, err)
	}
	if got := st.GetSelf().GetVersion(); got != v {
		return fmt.Sprintf("%s runs %q", name, got)
	}
	st, err = c.status(ctx, leader)
	if err != nil {
		return fmt.Sprintf("%s: %v", leader, err)
	}
	for _, m := range st.GetMembers() {
		if m.GetName() == name && m.GetVersion() != v {
			return fmt.Sprintf("leader %s sees %s running %q", leader, name, m.GetVersion())
		}
	}
	return ""
}

func killNode(c *cluster, name string) ([]string, string, func(context.Context) error, error) {
	nd := c.node(name)
	c.kill(nd)
	return []string{name}, "kill -9", func(context.Context) error { c.start(nd); return nil }, nil
}

func isolate(c *cluster, name string) ([]string, string, func(context.Context) error, error) {
	var others []string
	for _, m := range c.membersNow() {
		if m != name {
			others = append(others, m)
		}
	}
	return partition(c, []string{name}, others)
}

// partition cuts every link between a and b.
func partition(c *cluster, a, b []string) ([]string, string, func(context.Context) error, error) {
	heal := func(context.Context) error { return c.net.heal() }
	for _, x := range a {
		for _, y := range b {
			if err := c.net.cut(c.node(x), c.node(y)); err != nil {
				heal(nil)
				return nil, "", nil, err
			}
		}
	}
	return append(append([]string(nil), a...), b...), fmt.Sprintf("%v | %v", a, b), heal, nil
}

// isMember asks the leader whether name is still in the configuration, polling for up
// to 10s for a leader to answer; true when none does.
func (c *cluster) isMember(ctx context.Context, name string) bool {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, other := range c.running() {
			st, err := c.status(ctx, other)
			if other == name || err != nil || st.GetSelf().GetState() != "Leader" {
				continue
			}
			for _, m := range st.GetMembers() {
				if m.GetName() == name {
					return true
				}
			}
			return false
		}
		time.Sleep(100 * time.Millisecond) // bounded polling
	}
	return true
}

// retire kills a removed member and forgets it as a member.
func (c *cluster) retire(name string) {
	c.kill(c.node(name))
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, m := range c.members {
		if m == name {
			c.members = append(c.members[:i], c.members[i+1:]...)
			break
		}
	}
	c.gen++
}

// schedule runs nem until ctx ends: quiet, inject, hold, heal. A heal runs even when ctx
// has ended, with a context of its own.
func schedule(ctx context.Context, c *cluster, nem nemesis, quiet, hold time.Duration, clock func() int64, logf func(string, ...any)) []fault {
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 8))
	var faults []fault
	for {
		select {
		case <-ctx.Done():
			return faults
		case <-time.After(quiet):
		}
		if nem.rolling && len(faults) == len(c.membersNow()) {
			return faults
		}
		f := fault{Kind: nem.name, Start: clock()}
		targets, note, heal, err := nem.inject(ctx, c, r)
		if err != nil {
			logf("nemesis %s: %v", nem.name, err)
			continue
		}
		f.Targets, f.Note = targets, note
		logf("%6.1fs nemesis %s %v %s", float64(f.Start)/1e9, nem.name, targets, note)
		select {
		case <-ctx.Done():
		case <-time.After(hold):
		}
		hctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		if err := heal(hctx); err != nil {
			f.HealErr = err.Error()
			logf("nemesis %s heal: %v", nem.name, err)
		}
		cancel()
		f.Healed = clock()
		logf("%6.1fs nemesis %s healed", float64(f.Healed)/1e9, nem.name)
		faults = append(faults, f)
	}
}
