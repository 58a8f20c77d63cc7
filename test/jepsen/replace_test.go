package jepsen

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"time"

	"github.com/skiffhq/skiff/client"
)

// replaceMember is the member-replace nemesis: remove a random member, kill it, wipe its
// data directory, and (at heal) start it again with the same name and addresses, joining
// as a new member (a new incarnation: the cluster refuses the removed one). It is how an
// operator replaces a member whose disk died (docs/operations.md, Members): the member
// comes back empty, receives a snapshot, and its watch history starts there; watchers
// that resume on it from before get "too old" and re-list.
func replaceMember(ctx context.Context, c *cluster, r *rand.Rand) ([]string, string, func(context.Context) error, error) {
	victim := c.randomRunning(r)
	if err := c.remove(victim); err != nil {
		return nil, "", nil, err
	}
	nd := c.node(victim)
	if err := os.RemoveAll(nd.dir); err != nil {
		return nil, "", nil, fmt.Errorf("wipe %s: %w", nd.dir, err)
	}
	return []string{victim}, "removed, data wiped", func(ctx context.Context) error {
		c.rejoin(nd)
		if _, err := c.waitHealthy(ctx); err != nil {
			return fmt.Errorf("re-add %s: %w", nd.name, err)
		}
		return nil
	}, nil
}

// remove takes name out of the cluster's configuration, then kills it and forgets it as
// a member. The removal runs to its end even when the run does: a half-made change would
// leave the harness believing in a member the cluster dropped.
func (c *cluster) remove(name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin := c.admin()
	_, err := admin.RemoveMember(ctx, name)
	admin.Close()
	// The call's own deadline may have passed: whether it happened is asked anew.
	if err != nil && !client.IsNotFound(err) && c.isMember(context.Background(), name) {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	c.retire(name)
	return nil
}

// rejoin makes nd a member again and starts it with --join through the other members,
// in place of the bootstrap or join flag it had.
func (c *cluster) rejoin(nd *node) {
	var join []string
	for _, name := range c.membersNow() {
		if name != nd.name {
			join = append(join, c.node(name).api)
		}
	}
	var args []string
	for i := 0; i < len(nd.args); i++ {
		if a := nd.args[i]; a == "--initial-cluster" || a == "--join" {
			i++ // and its value
			continue
		}
		args = append(args, nd.args[i])
	}
	c.mu.Lock()
	nd.args = append(args, "--join", strings.Join(join, ","))
	c.members = append(c.members, nd.name)
	c.gen++
	c.mu.Unlock()
	c.start(nd)
}
