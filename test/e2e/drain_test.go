package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestDrainRespectsDisruptionBudget: three API servers, a controller-manager, a scheduler
// and two simulated nodes. A Deployment of three runs on sim-0 with a
// PodDisruptionBudget of minAvailable 2; skiffctl drain sim-0 moves them to sim-1 one at
// a time — the budget refuses the others until each replacement is Ready — and never
// leaves fewer than two ready. A bare pod needs --force; a DaemonSet's pod stays.
func TestDrainRespectsDisruptionBudget(t *testing.T) {
	t.Parallel() // a cluster of its own, mostly waiting: see harness_test.go
	c := startAPIServers(t)
	s := c.servers()
	start(t, "controller-manager", "controller-manager", "--server", s, "--identity", "cm", "--log-level", "warn")
	start(t, "scheduler", "scheduler", "--server", s, "--identity", "sched", "--log-level", "warn")
	start(t, "kubelets", "kubelet", "--server", s, "--runtime", "sim", "--sim-nodes", "2", "--node-name", "sim",
		"--kubelet-listen", "127.0.0.1:0", "--log-level", "warn")
	waitfor.Condition(t, 60*time.Second, "two Ready nodes", func() (bool, string) {
		out, _, err := ctl(s, "get", "nodes", "--no-headers")
		return err == nil && strings.Count(out, " Ready ") == 2, out
	})
	conn, err := client.Dial(c.apis, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	// An empty node drains at once; cordoned, it keeps the workload on sim-0.
	if out := mustCtl(t, s, "drain", "sim-1"); out != "node/sim-1 cordoned\nnode/sim-1 drained\n" {
		t.Fatalf("drain of an empty node: %q", out)
	}
	if _, errs, err := ctlIn(s, `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: busybox:1.36}]
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata: {name: web}
spec:
  minAvailable: 2
  selector: {matchLabels: {app: web}}
---
apiVersion: v1
kind: Pod
metadata: {name: bare}
spec:
  nodeName: sim-0
  containers: [{name: c, image: busybox:1.36}]
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: agent}
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      nodeSelector: {kubernetes.io/hostname: sim-0}
      containers: [{name: c, image: busybox:1.36}]
`, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply: %v: %s", err, errs)
	}
	webOn := func(node string) func() (bool, string) {
		return func() (bool, string) {
			l, err := cs.Pods.List(ctx, "default", client.ListOptions{LabelSelector: "app=web"})
			if err != nil {
				return false, err.Error()
			}
			n := 0
			for _, p := range l.Items {
				if p.Spec.NodeName == node && p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil && ready(p) {
					n++
				}
			}
			return n == 3 && len(l.Items) == 3, fmt.Sprintf("%d of %d web pods ready on %s", n, len(l.Items), node)
		}
	}
	waitfor.Condition(t, time.Minute, "three web pods ready on sim-0", webOn("sim-0"))
	// The DaemonSet's pod on sim-0, which drain leaves where it is.
	var agent string
	waitfor.Condition(t, time.Minute, "the DaemonSet's pod on sim-0", func() (bool, string) {
		l, err := cs.Pods.List(ctx, "default", client.ListOptions{LabelSelector: "app=agent"})
		if err != nil {
			return false, err.Error()
		}
		if len(l.Items) != 1 || l.Items[0].Spec.NodeName != "sim-0" {
			return false, fmt.Sprintf("%d agent pods", len(l.Items))
		}
		agent = l.Items[0].Name
		return true, ""
	})
	waitfor.Condition(t, time.Minute, "the budget allows one disruption", func() (bool, string) {
		out, errs, err := ctl(s, "get", "pdb", "web", "--no-headers")
		return err == nil && len(strings.Fields(out)) == 5 && strings.Fields(out)[3] == "1", out + errs
	})

	// sim-1 takes pods again.
	for {
		n, err := cs.Nodes.Get(ctx, "", "sim-1")
		if err != nil {
			t.Fatal(err)
		}
		n.Spec.Unschedulable = false
		if _, err = cs.Nodes.Update(ctx, n); !client.IsConflict(err) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}

	// Count ready web pods at every revision from here on: never fewer than two.
	l, err := cs.Pods.List(ctx, "default", client.ListOptions{LabelSelector: "app=web"})
	if err != nil {
		t.Fatal(err)
	}
	m := newReadyMonitor(l.Items)
	w, err := cs.Pods.Watch(ctx, "default", client.WatchOptions{ListOptions: client.ListOptions{LabelSelector: "app=web"}, ResourceVersion: l.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	var monitor sync.WaitGroup
	monitor.Go(func() {
		for {
			evs, err := w.Next()
			if err != nil {
				return
			}
			m.apply(evs)
		}
	})

	_, errs, err := ctl(s, "drain", "sim-0", "--ignore-daemonsets", "--timeout", "50s")
	if err == nil || !strings.Contains(errs, "cannot delete cannot delete Pods that declare no controller (use --force to override): default/bare") {
		t.Fatalf("drain without --force: %v: %s", err, errs)
	}
	out, errs, err := ctl(s, "drain", "sim-0", "--ignore-daemonsets", "--force", "--timeout", "50s")
	if err != nil {
		t.Fatalf("drain sim-0: %v\nstdout:\n%s\nstderr:\n%s", err, out, errs)
	}
	t.Logf("drain sim-0:\nstdout:\n%s\nstderr:\n%s", out, errs)
	evicted := regexp.MustCompile(`(?m)^pod/web-[a-z0-9-]+ evicted$`).FindAllString(out, -1)
	if len(evicted) != 3 || !strings.HasPrefix(out, "node/sim-0 already cordoned\n") || !strings.HasSuffix(out, "node/sim-0 drained\n") ||
		!strings.Contains(out, "pod/bare evicted\n") || strings.Contains(out, "agent") {
		t.Fatalf("drain sim-0 stdout:\n%s", out)
	}
	if !strings.Contains(errs, "Warning: deleting Pods that declare no controller: default/bare; ignoring DaemonSet-managed Pods: default/"+agent+"\n") ||
		!regexp.MustCompile(`error when evicting pods/"web-[a-z0-9-]+" -n "default" \(will retry after 5s\): Cannot evict pod as it would violate the pod's disruption budget\.`).MatchString(errs) {
		t.Fatalf("drain sim-0 stderr:\n%s", errs)
	}
	waitfor.Condition(t, time.Minute, "three web pods ready on sim-1", webOn("sim-1"))
	w.Stop()
	monitor.Wait()
	if low := m.lowest(); low < 2 {
		t.Fatalf("the drain left %d web pods ready at %s; the budget says 2", low, m.lowAt)
	}
	if p, err := cs.Pods.Get(ctx, "default", agent); err != nil || p.DeletionTimestamp != nil || p.Spec.NodeName != "sim-0" {
		t.Fatalf("the DaemonSet's pod: %v %v", p, err)
	}
	if out := mustCtl(t, s, "get", "nodes", "sim-0", "--no-headers"); !strings.Contains(out, "Ready,SchedulingDisabled") {
		t.Fatalf("sim-0 after the drain: %s", out)
	}
}

func ready(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// readyMonitor follows the web pods through a watch and remembers the fewest ready (and
// not being deleted) at any revision.
type readyMonitor struct {
	mu    sync.Mutex
	pods  map[string]*corev1.Pod
	low   int
	lowAt string
}

func newReadyMonitor(pods []*corev1.Pod) *readyMonitor {
	m := &readyMonitor{pods: map[string]*corev1.Pod{}}
	for _, p := range pods {
		m.pods[p.Name] = p
	}
	m.low = m.count()
	return m
}

func (m *readyMonitor) count() int {
	n := 0
	for _, p := range m.pods {
		if p.DeletionTimestamp == nil && ready(p) {
			n++
		}
	}
	return n
}

// apply takes the events of one revision.
func (m *readyMonitor) apply(evs []client.Event[*corev1.Pod]) {
	m.mu.Lock()
	defer m.mu.Unlock()
	rv := ""
	for _, ev := range evs {
		switch ev.Type {
		case client.Added, client.Modified:
			m.pods[ev.Object.Name] = ev.Object
		case client.Deleted:
			delete(m.pods, ev.Object.Name)
		default:
			continue
		}
		rv = ev.Object.ResourceVersion
	}
	if n := m.count(); rv != "" && n < m.low {
		m.low, m.lowAt = n, "resourceVersion "+rv
	}
}

func (m *readyMonitor) lowest() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.low
}
