package e2e

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestThousandSimulatedNodes runs 1,000 simulated nodes in one `skiff kubelet` process
// against three API servers: every node registers Ready, every node has its Lease, and
// every Lease is renewed (the heartbeat the node lifecycle controller reads).
func TestThousandSimulatedNodes(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 simulated nodes: not in -short")
	}
	const nodes = 1000
	c := startAPIServers(t)
	s := c.servers()
	start(t, "kubelets", "kubelet", "--server", s, "--runtime", "sim", "--sim-nodes", fmt.Sprint(nodes), "--node-name", "sim",
		"--node-lease-renew-interval", "2s", "--kubelet-listen", "127.0.0.1:0", "--log-level", "warn")
	conn, err := client.Dial(c.apis, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	waitfor.Condition(t, 2*time.Minute, "1,000 nodes registered and Ready", func() (bool, string) {
		l, err := cs.Nodes.List(ctx, "", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		ready := map[string]bool{}
		for _, n := range l.Items {
			for _, cond := range n.Status.Conditions {
				if cond.Type == corev1.NodeReady && cond.Status == corev1.ConditionTrue {
					ready[n.Name] = true
				}
			}
		}
		for i := 0; i < nodes; i++ {
			if name := fmt.Sprintf("sim-%d", i); !ready[name] {
				return false, fmt.Sprintf("%d of %d nodes Ready; %s is not", len(ready), nodes, name)
			}
		}
		return len(l.Items) == nodes, fmt.Sprintf("%d nodes", len(l.Items))
	})

	renewed := func() (map[string]time.Time, error) {
		l, err := cs.Leases.List(ctx, "kube-node-lease", client.ListOptions{})
		if err != nil {
			return nil, err
		}
		out := map[string]time.Time{}
		for _, lease := range l.Items {
			var at time.Time
			if lease.Spec.RenewTime != nil {
				at = lease.Spec.RenewTime.Time
			}
			out[lease.Name] = at
		}
		return out, nil
	}
	var first map[string]time.Time
	waitfor.Condition(t, time.Minute, "a Lease for every node", func() (bool, string) {
		first, err = renewed()
		if err != nil {
			return false, err.Error()
		}
		for i := 0; i < nodes; i++ {
			if _, ok := first[fmt.Sprintf("sim-%d", i)]; !ok {
				return false, fmt.Sprintf("%d leases; none for sim-%d", len(first), i)
			}
		}
		return true, ""
	})
	waitfor.Condition(t, time.Minute, "every Lease renewed", func() (bool, string) {
		now, err := renewed()
		if err != nil {
			return false, err.Error()
		}
		stale := 0
		for name, at := range first {
			if !now[name].After(at) {
				stale++
			}
		}
		return stale == 0, fmt.Sprintf("%d of %d leases not renewed yet", stale, nodes)
	})
}
