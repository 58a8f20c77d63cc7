package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/waitfor"
)

// apiCluster is three `skiff apiserver` processes.
type apiCluster struct {
	t     *testing.T
	apis  []string
	procs []*proc
	args  func(i int) []string
}

func startAPIServers(t *testing.T) *apiCluster {
	ports := freeport.Loopback(t, 6)
	var initial, apis []string
	for i := 0; i < 3; i++ {
		initial = append(initial, fmt.Sprintf("n%d=127.0.0.1:%d", i+1, ports[3+i]))
		apis = append(apis, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	c := &apiCluster{t: t, apis: apis}
	c.args = func(i int) []string {
		return []string{"apiserver", "--name", fmt.Sprintf("n%d", i+1), "--data-dir", dirs[i], "--listen", apis[i],
			"--raft-listen", fmt.Sprintf("127.0.0.1:%d", ports[3+i]), "--initial-cluster", strings.Join(initial, ","), "--insecure", "--log-level", "warn"}
	}
	for i := 0; i < 3; i++ {
		c.procs = append(c.procs, start(t, fmt.Sprintf("n%d", i+1), c.args(i)...))
	}
	c.leader()
	return c
}

func (c *apiCluster) servers() string { return strings.Join(c.apis, ",") }

var leaderRe = regexp.MustCompile(`leader: (n\d)`)

// leader waits for a leader with two followers and returns its index.
func (c *apiCluster) leader() int {
	var leader string
	waitfor.Condition(c.t, 60*time.Second, "a leader", func() (bool, string) {
		out, errs, err := ctl(c.servers(), "cluster", "status")
		m := leaderRe.FindStringSubmatch(out)
		if err != nil || m == nil {
			return false, out + errs
		}
		leader = m[1]
		return strings.Count(out, "follower") == 2, out
	})
	return int(leader[1] - '1')
}

// leaseHolder returns the holder of a kube-system Lease ("" when none).
func leaseHolder(servers, name string) string {
	out, _, err := ctl(servers, "get", "lease", name, "-n", "kube-system", "--no-headers")
	if f := strings.Fields(out); err == nil && len(f) >= 3 {
		return f[1]
	}
	return ""
}
