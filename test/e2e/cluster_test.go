package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/test/waitfor"
)

// TestThreeApiservers runs three `skiff apiserver` processes, writes through skiffctl,
// kills the leader with SIGKILL, keeps writing through the survivors, and restarts the
// killed node with its data: it rejoins and serves everything written meanwhile.
func TestThreeApiservers(t *testing.T) {
	t.Parallel() // a cluster of its own, mostly waiting: see harness_test.go
	c := startAPIServers(t)
	all, procs, apis, args := c.servers(), c.procs, c.apis, c.args
	leader := fmt.Sprintf("n%d", c.leader()+1)
	for i := 0; i < 5; i++ {
		cm := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: before-%d}\ndata: {i: \"%d\"}\n", i, i)
		if _, errs, err := ctlIn(all, cm, "apply", "-f", "-"); err != nil {
			t.Fatalf("apply: %s", errs)
		}
	}
	li := int(leader[1] - '1')
	procs[li].kill()

	// The survivors elect a leader and take writes; skiffctl fails over by itself.
	for i := 0; i < 5; i++ {
		cm := fmt.Sprintf("apiVersion: v1\nkind: ConfigMap\nmetadata: {name: after-%d}\n", i)
		waitfor.Condition(t, 60*time.Second, "write after the leader died", func() (bool, string) {
			out, errs, err := ctlIn(all, cm, "apply", "-f", "-")
			return err == nil, out + errs
		})
	}
	out := mustCtl(t, all, "get", "cm", "-o", "name")
	for _, want := range []string{"before-0", "before-4", "after-0", "after-4"} {
		if !strings.Contains(out, "configmap/"+want) {
			t.Fatalf("%s lost:\n%s", want, out)
		}
	}

	// The killed node comes back with its data and catches up.
	procs[li] = start(t, leader+" again", args(li)...)
	waitfor.Condition(t, 60*time.Second, "restarted node serves the new writes", func() (bool, string) {
		out, errs, err := ctl(apis[li], "get", "cm", "after-4", "-o", "name")
		return err == nil && strings.Contains(out, "configmap/after-4"), out + errs
	})
	status := mustCtl(t, all, "cluster", "status")
	if strings.Count(status, "follower") != 2 || strings.Count(status, "leader ") < 1 {
		t.Fatalf("cluster status after the restart:\n%s", status)
	}

	// kill -9 every member at once, start them all again: nothing acknowledged is lost.
	for _, p := range procs {
		p.kill()
	}
	for i := range procs {
		procs[i] = start(t, fmt.Sprintf("n%d after a full crash", i+1), args(i)...)
	}
	waitfor.Condition(t, 60*time.Second, "every write back after a full crash", func() (bool, string) {
		out, errs, err := ctl(all, "get", "cm", "-o", "name")
		return err == nil && strings.Count(out, "configmap/before-") == 5 && strings.Count(out, "configmap/after-") == 5, out + errs
	})
	for _, p := range procs {
		p.stop(t)
	}
}
