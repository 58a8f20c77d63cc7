package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestThreeApiservers runs three `skiff apiserver` processes, writes through skiffctl,
// kills the leader with SIGKILL, keeps writing through the survivors, and restarts the
// killed node with its data: it rejoins and serves everything written meanwhile.
func TestThreeApiservers(t *testing.T) {
	ports := freePorts(t, 6)
	var initial, apis []string
	for i := 0; i < 3; i++ {
		initial = append(initial, fmt.Sprintf("n%d=127.0.0.1:%d", i+1, ports[3+i]))
		apis = append(apis, fmt.Sprintf("127.0.0.1:%d", ports[i]))
	}
	dirs := []string{t.TempDir(), t.TempDir(), t.TempDir()}
	args := func(i int) []string {
		return []string{"apiserver", "--name", fmt.Sprintf("n%d", i+1), "--data-dir", dirs[i], "--listen", apis[i],
			"--raft-listen", fmt.Sprintf("127.0.0.1:%d", ports[3+i]), "--initial-cluster", strings.Join(initial, ","), "--log-level", "warn"}
	}
	procs := make([]*proc, 3)
	for i := range procs {
		procs[i] = start(t, fmt.Sprintf("n%d", i+1), args(i)...)
	}
	all := strings.Join(apis, ",")
	leaderRe := regexp.MustCompile(`leader: (n\d)`)
	var leader string
	eventually(t, "a leader", 60*time.Second, func() (bool, string) {
		out, errs, err := ctl(all, "cluster", "status")
		m := leaderRe.FindStringSubmatch(out)
		if err != nil || m == nil {
			return false, out + errs
		}
		leader = m[1]
		return strings.Count(out, "follower") == 2, out
	})

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
		eventually(t, "write after the leader died", 60*time.Second, func() (bool, string) {
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
	eventually(t, "restarted node serves the new writes", 60*time.Second, func() (bool, string) {
		out, errs, err := ctl(apis[li], "get", "cm", "after-4", "-o", "name")
		return err == nil && strings.Contains(out, "configmap/after-4"), out + errs
	})
	status := mustCtl(t, all, "cluster", "status")
	if strings.Count(status, "follower") != 2 || strings.Count(status, "leader ") < 1 {
		t.Fatalf("cluster status after the restart:\n%s", status)
	}
	for _, p := range procs {
		p.stop(t)
	}
}
