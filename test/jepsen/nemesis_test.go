package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"syscall"
	"time"
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
}, diskNemeses...)

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
