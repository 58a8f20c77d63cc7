package kubelet_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/sim"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// env is one subtest's corner of the shared cluster: its own namespace and node.
type env struct {
	t    *testing.T
	ctx  context.Context
	cs   *client.Clientset
	ns   string
	node string
	// started: a kubelet runs for this subtest (until its cleanup).
	started bool
	// rootDir is the kubelet's root directory, when the test chose it (ctrdConfig).
	rootDir string
	// api is the API server's address, for its REST API (patchPod).
	api string
}

// TestKubelet runs the integration tests against one API server, started once: each
// subtest has a namespace and a node of its own.
func TestKubelet(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)
	for _, tc := range []struct {
		name string
		f    func(e *env)
	}{
		{"run", testPodRunsAndBecomesReady},
		{"complete", testPodsRunToCompletion},
		{"crashloop", testCrashLoopBackOff},
		{"pullbackoff", testImagePullBackOff},
		{"delete", testDeletePod},
		{"restart", testRestartAdoptsAndCleansUp},
		{"node", testNodeRegistrationAndLease},
		{"nodestatus", testNodeStatusWrittenWhenChanged},
		{"env", testEnvFrom},
		{"servicelinks", testServiceLinks},
		{"init", testInitContainers},
		{"probes", testProbesAndHooks},
		{"volumes", testVolumes},
		{"simvolumes", testSimulatedNodeVolumes},
		{"deadline", testDeadlineAndPullSecrets},
		{"hostports", testHostPortAdmission},
		{"extended", testExtendedResources},
		{"podnetwork", testPodNetwork},
		{"podnetworksweep", testPodNetworkSweep},
		{"finishednetwork", testFinishedPodNetwork},
		{"runtimehandler", testRuntimeHandler},
		{"ephemeral", testEphemeralContainers},
		{"resize", testResize},
		{"ownctx", testCallsUnderTheNodesContext},
		{"relistquiet", testRelistListsOnlyAfterChanges},
		{"syncturns", testSyncTurnsBoundTheFleetsSyncs},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			e := &env{t: t, ctx: ctx, cs: cs, ns: tc.name, node: "node-" + tc.name, api: c.Addr(0)}
			if _, err := cs.Namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}); err != nil {
				t.Fatal(err)
			}
			tc.f(e)
		})
	}
}

// testConfig is a kubelet config with short periods, so that tests wait little.
func testConfig(node string) kubelet.Config {
	cfg := kubelet.DefaultConfig()
	cfg.NodeName, cfg.NodeIP = node, "10.1.2.3"
	cfg.Capacity = map[string]string{"cpu": "4", "memory": "8Gi", "pods": "110"}
	cfg.LeaseDuration, cfg.LeaseRenewInterval, cfg.NodeStatusInterval = 2*time.Second, 100*time.Millisecond, 200*time.Millisecond
	cfg.NodeStatusReportInterval = 400 * time.Millisecond
	cfg.RelistPeriod = 50 * time.Millisecond
	cfg.BackoffInitial, cfg.BackoffMax = 300*time.Millisecond, time.Second
	cfg.Workers = 2
	cfg.ObjectCacheTTL = 100 * time.Millisecond
	// Simulated containers read no files; their volumes are plain directories.
	cfg.ContainerFiles, cfg.Tmpfs = false, false
	cfg.LocalPathRoot = "" // not the host's: a test that reclaims volumes sets its own
	return cfg
}

// start runs a kubelet until the returned stop is called (or the test ends).
func (e *env) start(rt kubelet.Runtime, cfg kubelet.Config) (stop func()) {
	e.t.Helper()
	return e.startWith(nil, rt, cfg)
}

// startWith is start with Run given wrap(its context) instead (wrap nil: the context).
func (e *env) startWith(wrap func(context.Context) context.Context, rt kubelet.Runtime, cfg kubelet.Config) (stop func()) {
	e.t.Helper()
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "kubelet", Level: hclog.Debug, Output: testWriter{e.t}})
	if cfg.RootDir == kubelet.DefaultConfig().RootDir {
		cfg.RootDir = e.t.TempDir()
	}
	k, err := kubelet.New(e.cs, rt, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(e.ctx)
	run := context.Context(ctx)
	if wrap != nil {
		run = wrap(ctx)
	}
	done := make(chan error, 1)
	go func() { done <- k.Run(run) }()
	stopped := false
	e.started = true
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		e.started = false
		cancel()
		if err := <-done; err != nil {
			e.t.Errorf("kubelet Run: %v", err)
		}
	}
	e.t.Cleanup(stop)
	return stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func (e *env) createPod(name, node string, policy corev1.RestartPolicy, image string, command ...string) *corev1.Pod {
	e.t.Helper()
	p, err := e.cs.Pods.Create(e.ctx, &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
		Spec: corev1.PodSpec{NodeName: node, RestartPolicy: policy, HostNetwork: true,
			Containers: []corev1.Container{{Name: "main", Image: image, Command: command}}},
	})
	if err != nil {
		e.t.Fatalf("create pod %s: %v", name, err)
	}
	return p
}

// timeout is how long a wait may last: until e's context ends.
func (e *env) timeout() time.Duration {
	if d, ok := e.ctx.Deadline(); ok {
		return time.Until(d)
	}
	return time.Minute
}

// waitPod waits until the pod satisfies cond, which says what it saw otherwise. cond
// must hold of a state that lasts, or recurs often: a state the kubelet writes and
// replaces at once can fall between two polls (waitSeen sees every one).
func (e *env) waitPod(name, what string, cond func(p *corev1.Pod) bool) *corev1.Pod {
	e.t.Helper()
	var last *corev1.Pod
	waitfor.Condition(e.t, e.timeout(), fmt.Sprintf("pod %s %s", name, what), func() (bool, string) {
		p, err := e.cs.Pods.Get(e.ctx, e.ns, name)
		switch {
		case client.IsNotFound(err):
			return false, fmt.Sprintf("not found; last seen: %v", last)
		case err != nil:
			e.t.Fatalf("get pod %s: %v", name, err)
		}
		last = p
		return cond(p), fmt.Sprintf("last seen: %v", p)
	})
	return last
}

// waitSeen waits until the pod created as created has been written, in order, in a
// state that satisfies each of conds (together, what), and returns it as it was at the
// last. It watches every write from the pod's creation on, so a state that lasted no
// longer than the kubelet's next write is seen all the same.
func (e *env) waitSeen(created *corev1.Pod, what string, conds ...func(p *corev1.Pod) bool) *corev1.Pod {
	e.t.Helper()
	rv := created.ResourceVersion
	var seen []string // the waiting reasons of the main container, for the failure
	for len(conds) > 0 {
		w, err := e.cs.Pods.Watch(e.ctx, e.ns, client.WatchOptions{ResourceVersion: rv})
		if err != nil {
			e.t.Fatalf("watch pod %s: %v", created.Name, err)
		}
		for len(conds) > 0 {
			evs, err := w.Next()
			if err != nil {
				w.Stop()
				if e.ctx.Err() != nil {
					e.t.Fatalf("pod %s never %s (%d steps to go); its main container's waiting reasons, write by write: %q",
						created.Name, what, len(conds), seen)
				}
				break // resume from rv
			}
			for _, ev := range evs {
				rv = ev.ResourceVersion
				p := ev.Object
				if ev.Type == client.Bookmark || p.Name != created.Name || p.UID != created.UID {
					continue
				}
				seen = append(seen, waiting(mainStatus(p)).Reason)
				if conds[0](p) {
					if len(conds) == 1 {
						w.Stop()
						return p
					}
					conds = conds[1:]
				}
			}
		}
	}
	return nil
}

func clientDelete() client.DeleteOptions { return client.DeleteOptions{} }

func (e *env) waitGone(name string) {
	e.t.Helper()
	waitfor.Condition(e.t, e.timeout(), fmt.Sprintf("pod %s gone", name), func() (bool, string) {
		_, err := e.cs.Pods.Get(e.ctx, e.ns, name)
		return client.IsNotFound(err), fmt.Sprintf("get: %v", err)
	})
}

func (e *env) waitContainers(rt kubelet.Runtime, what string, cond func([]kubelet.Container) bool) []kubelet.Container {
	e.t.Helper()
	var l []kubelet.Container
	waitfor.Condition(e.t, e.timeout(), "runtime "+what, func() (bool, string) {
		var err error
		if l, err = rt.List(e.ctx); err != nil {
			e.t.Fatal(err)
		}
		return cond(l), fmt.Sprintf("%+v", l)
	})
	return l
}

// waitVolumesGone waits until the kubelet has torn down every pod's volumes under its
// root (a deleted pod's containers go first, its tmpfs mounts after): a test that ends
// before would leave them mounted under its TempDir.
func (e *env) waitVolumesGone() {
	e.t.Helper()
	waitfor.Condition(e.t, 30*time.Second, "every pod's volumes torn down", func() (bool, string) {
		uids, err := os.ReadDir(filepath.Join(e.rootDir, "pods"))
		if err != nil && !os.IsNotExist(err) {
			return false, err.Error()
		}
		return len(uids) == 0, fmt.Sprintf("%d pod directories left", len(uids))
	})
}

// eventMessages are the distinct messages of pod's kubelet events of a reason.
func (e *env) eventMessages(pod, reason string) []string {
	e.t.Helper()
	l, err := e.cs.Events.List(e.ctx, e.ns, client.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []string
	for _, ev := range l.Items {
		if ev.InvolvedObject.Name == pod && ev.Source.Component == "kubelet" && ev.Reason == reason && !slices.Contains(out, ev.Message) {
			out = append(out, ev.Message)
		}
	}
	return out
}

func (e *env) eventReasons(pod string) map[string]bool {
	e.t.Helper()
	l, err := e.cs.Events.List(e.ctx, e.ns, client.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	m := map[string]bool{}
	for _, ev := range l.Items {
		if ev.InvolvedObject.Name == pod && ev.Source.Component == "kubelet" {
			m[ev.Reason] = true
		}
	}
	return m
}

func (e *env) waitEvents(pod string, reasons ...string) {
	e.t.Helper()
	waitfor.Condition(e.t, e.timeout(), fmt.Sprintf("pod %s's events %v", pod, reasons), func() (bool, string) {
		got := e.eventReasons(pod)
		missing := []string{}
		for _, r := range reasons {
			if !got[r] {
				missing = append(missing, r)
			}
		}
		return len(missing) == 0, fmt.Sprintf("missing %v (have %v)", missing, got)
	})
}

func condition(p *corev1.Pod, typ corev1.PodConditionType) corev1.ConditionStatus {
	for _, c := range p.Status.Conditions {
		if c.Type == typ {
			return c.Status
		}
	}
	return ""
}

// mainStatus is the status of the pod's (first) container; empty before it has one.
func mainStatus(p *corev1.Pod) corev1.ContainerStatus {
	if cs := p.Status.ContainerStatuses; len(cs) > 0 {
		return cs[0]
	}
	return corev1.ContainerStatus{}
}

// waiting, terminated and lastTerminated read a container's state: empty when it is
// not in it.
func waiting(cs corev1.ContainerStatus) corev1.ContainerStateWaiting {
	return ptr.Deref(cs.State.Waiting, corev1.ContainerStateWaiting{})
}

func terminated(cs corev1.ContainerStatus) corev1.ContainerStateTerminated {
	return ptr.Deref(cs.State.Terminated, corev1.ContainerStateTerminated{})
}

func lastTerminated(cs corev1.ContainerStatus) corev1.ContainerStateTerminated {
	return ptr.Deref(cs.LastTerminationState.Terminated, corev1.ContainerStateTerminated{})
}

func testPodRunsAndBecomesReady(e *env) {
	t := e.t
	rt := sim.New(sim.Config{})
	e.start(rt, testConfig(e.node))
	e.createPod("web", e.node, "", "nginx:1.25")
	e.createPod("elsewhere", "other-node", "", "nginx:1.25")
	p := e.waitPod("web", "Running and Ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && condition(p, corev1.PodReady) == corev1.ConditionTrue
	})
	cs := mainStatus(p)
	if !cs.Ready || cs.State.Running == nil || !strings.HasPrefix(cs.ContainerID, "sim://") ||
		cs.Image != "nginx:1.25" || !strings.HasPrefix(cs.ImageID, "sha256:") || cs.RestartCount != 0 {
		t.Errorf("container status %v", cs)
	}
	st := p.Status
	if st.HostIP != "10.1.2.3" || st.PodIP != "10.1.2.3" || st.StartTime == nil ||
		condition(p, corev1.PodScheduled) != corev1.ConditionTrue || condition(p, corev1.PodInitialized) != corev1.ConditionTrue ||
		condition(p, corev1.ContainersReady) != corev1.ConditionTrue {
		t.Errorf("pod status %v", st)
	}
	e.waitEvents("web", "Pulling", "Pulled", "Created", "Started")
	// Only pods bound to this node run here.
	for _, c := range e.waitContainers(rt, "ran web", func(l []kubelet.Container) bool { return len(l) > 0 }) {
		if c.PodName != "web" {
			t.Errorf("runs a container of %s", c.PodName)
		}
	}
	if p, err := e.cs.Pods.Get(e.ctx, e.ns, "elsewhere"); err != nil || p.Status.Phase != corev1.PodPending || len(p.Status.ContainerStatuses) != 0 {
		t.Errorf("a pod of another node was touched: %v (%v)", p, err)
	}
}

func testPodsRunToCompletion(e *env) {
	t := e.t
	e.start(sim.New(sim.Config{}), testConfig(e.node))
	e.createPod("ok", e.node, "Never", "busybox:1.36", "sh", "-c", "exit 0")
	e.createPod("bad", e.node, "Never", "busybox:1.36", "sh", "-c", "exit 3")
	e.createPod("retry", e.node, "OnFailure", "busybox:1.36", "sh", "-c", "sleep 0.1; exit 0")
	for name, want := range map[string]struct {
		phase  corev1.PodPhase
		reason string
		code   int32
	}{"ok": {corev1.PodSucceeded, "Completed", 0}, "bad": {corev1.PodFailed, "Error", 3}, "retry": {corev1.PodSucceeded, "Completed", 0}} {
		p := e.waitPod(name, string(want.phase), func(p *corev1.Pod) bool { return p.Status.Phase == want.phase })
		term := terminated(mainStatus(p))
		if term.Reason != want.reason || term.ExitCode != want.code || term.FinishedAt.IsZero() || mainStatus(p).RestartCount != 0 {
			t.Errorf("%s: terminated %v (restarts %d)", name, term, mainStatus(p).RestartCount)
		}
		if condition(p, corev1.PodReady) != corev1.ConditionFalse {
			t.Errorf("%s: a finished pod is Ready", name)
		}
	}
}

func testCrashLoopBackOff(e *env) {
	t := e.t
	rt := sim.New(sim.Config{})
	e.start(rt, testConfig(e.node))
	e.createPod("crash", e.node, "Always", "busybox:1.36", "sh", "-c", "exit 1")
	e.waitPod("crash", "in CrashLoopBackOff", func(p *corev1.Pod) bool {
		cs := mainStatus(p)
		return waiting(cs).Reason == "CrashLoopBackOff" && lastTerminated(cs).ExitCode == 1 && p.Status.Phase == corev1.PodRunning
	})
	p := e.waitPod("crash", "restarted 3 times and backing off", func(p *corev1.Pod) bool {
		cs := mainStatus(p)
		return cs.RestartCount >= 3 && waiting(cs).Reason == "CrashLoopBackOff"
	})
	if p.Status.Phase != corev1.PodRunning || condition(p, corev1.PodReady) != corev1.ConditionFalse {
		t.Errorf("crash-looping pod: phase %s, Ready %s", p.Status.Phase, condition(p, corev1.PodReady))
	}
	e.waitEvents("crash", "BackOff", "Started")
	// Old attempts are cleaned up: the runtime keeps the newest two at most.
	if l, _ := rt.List(e.ctx); len(l) > 2 {
		t.Errorf("runtime keeps %d containers of a crashing pod", len(l))
	}
}

func testImagePullBackOff(e *env) {
	t := e.t
	rt := sim.New(sim.Config{Images: []string{"nginx:1.25"}})
	e.start(rt, testConfig(e.node))
	created := e.createPod("typo", e.node, "", "ngnix:1.25")
	// ErrImagePull lasts only until the kubelet's next sync, which its own status write
	// brings about (and which, in back-off, writes ImagePullBackOff): the watch sees
	// every write, where polls may fall on either side of it.
	p := e.waitSeen(created, "in ErrImagePull, then ImagePullBackOff", func(p *corev1.Pod) bool {
		return waiting(mainStatus(p)).Reason == "ErrImagePull"
	}, func(p *corev1.Pod) bool {
		return waiting(mainStatus(p)).Reason == "ImagePullBackOff"
	})
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s", p.Status.Phase)
	}
	e.waitEvents("typo", "Pulling", "Failed", "BackOff")
	if msgs := e.eventMessages("typo", "Failed"); !slices.Contains(msgs, "Error: ErrImagePull") {
		t.Errorf("Failed events %q, want Error: ErrImagePull among them", msgs)
	}
	e.waitContainers(rt, "retried the pull", func([]kubelet.Container) bool { return rt.Pulls() >= 2 })
}

func testDeletePod(e *env) {
	t := e.t
	rt := sim.New(sim.Config{})
	e.start(rt, testConfig(e.node))
	e.createPod("web", e.node, "", "nginx:1.25")
	e.waitPod("web", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	// A graceful delete: the pod stays, marked, until the kubelet has stopped it.
	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "web", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("web")
	e.waitContainers(rt, "removed the container", func(l []kubelet.Container) bool { return len(l) == 0 })
	e.waitEvents("web", "Killing")
}

func testRestartAdoptsAndCleansUp(e *env) {
	t := e.t
	rt := sim.New(sim.Config{})
	stop := e.start(rt, testConfig(e.node))
	e.createPod("keep", e.node, "", "nginx:1.25")
	e.createPod("drop", e.node, "", "nginx:1.25")
	for _, name := range []string{"keep", "drop"} {
		e.waitPod(name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	}
	before := e.waitContainers(rt, "runs both", func(l []kubelet.Container) bool { return len(l) == 2 })
	creates := rt.Creates()
	stop()

	// While the kubelet is down, one pod is force-deleted.
	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "drop", client.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	e.start(rt, testConfig(e.node))
	after := e.waitContainers(rt, "removed the deleted pod's container", func(l []kubelet.Container) bool { return len(l) == 1 })
	var kept kubelet.Container
	for _, c := range before {
		if c.PodName == "keep" {
			kept = c
		}
	}
	if after[0].ID != kept.ID || after[0].State != kubelet.StateRunning {
		t.Fatalf("after restart the runtime has %+v, want the adopted %s", after[0], kept.ID)
	}
	// The adopted pod stays as it was: Running, Ready, the same container, no new one.
	p := e.waitPod("keep", "Ready", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue })
	if !strings.HasSuffix(mainStatus(p).ContainerID, kept.ID) || rt.Creates() != creates {
		t.Fatalf("container %s, %d creates (before the restart %d)", mainStatus(p).ContainerID, rt.Creates(), creates)
	}
}

func testNodeRegistrationAndLease(e *env) {
	t := e.t
	cfg := testConfig(e.node)
	cfg.Labels = map[string]string{"zone": "a"}
	// A node that exists already (registered before, or by an admin) is taken over.
	if _, err := e.cs.Nodes.Create(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: e.node, Labels: map[string]string{"team": "x"}}}); err != nil {
		t.Fatal(err)
	}
	e.start(sim.New(sim.Config{}), cfg)
	var node *corev1.Node
	waitfor.Condition(t, e.timeout(), "the node's status", func() (bool, string) {
		var err error
		if node, err = e.cs.Nodes.Get(e.ctx, "", e.node); err != nil {
			t.Fatal(err)
		}
		return len(node.Status.Conditions) > 0, "no conditions"
	})
	ready := node.Status.Conditions[0]
	if ready.Type != corev1.NodeReady || ready.Status != corev1.ConditionTrue || ready.Reason != "KubeletReady" {
		t.Errorf("Ready condition %v", ready)
	}
	info := node.Status.NodeInfo
	if info.ContainerRuntimeVersion != "sim://0.1.0" || info.KubeletVersion != kubelet.Version || info.Architecture == "" {
		t.Errorf("nodeInfo %v", info)
	}
	is := func(l corev1.ResourceList, name corev1.ResourceName, want string) bool {
		q, ok := l[name]
		return ok && q.Equal(resource.MustParse(want))
	}
	if c := node.Status.Capacity; !is(c, corev1.ResourceCPU, "4") || !is(c, corev1.ResourceMemory, "8Gi") || !is(c, corev1.ResourcePods, "110") ||
		!is(node.Status.Allocatable, corev1.ResourcePods, "110") {
		t.Errorf("capacity %v, allocatable %v", c, node.Status.Allocatable)
	}
	l := node.Labels
	if l["team"] != "x" || l["zone"] != "a" || l["kubernetes.io/hostname"] != e.node {
		t.Errorf("labels %v", l)
	}
	if a := node.Status.Addresses; len(a) != 2 || a[0].Type != corev1.NodeInternalIP || a[0].Address != "10.1.2.3" {
		t.Errorf("addresses %v", a)
	}
	// Its CSINode, as Kubernetes' kubelet makes: no drivers, owned by the Node.
	waitfor.Condition(t, e.timeout(), "the node's CSINode", func() (bool, string) {
		cn, err := client.For[*storagev1.CSINode](e.cs.Conn).Get(e.ctx, "", e.node)
		if err != nil {
			return false, err.Error()
		}
		own := cn.OwnerReferences
		if len(own) != 1 || own[0].Kind != "Node" || own[0].APIVersion != "v1" || own[0].Name != e.node || own[0].UID != node.UID || len(cn.Spec.Drivers) != 0 {
			t.Fatalf("csinode %+v", cn)
		}
		return true, ""
	})

	// The lease is renewed, and the node's heartbeat moves. The heartbeat is a
	// metav1.Time, whole seconds on the wire: it moves once a report (every 400ms) falls
	// in a later second than the first.
	var first *coordinationv1.Lease
	waitfor.Condition(t, e.timeout(), "the lease renewed and the node's heartbeat moved", func() (bool, string) {
		lease, err := e.cs.Leases.Get(e.ctx, kubelet.LeaseNamespace, e.node)
		switch {
		case err == nil && first == nil:
			first = lease
			if ptr.Deref(lease.Spec.HolderIdentity, "") != e.node || ptr.Deref(lease.Spec.LeaseDurationSeconds, 0) != 2 ||
				lease.Spec.RenewTime == nil || lease.Spec.AcquireTime == nil {
				t.Errorf("lease %v", lease.Spec)
			}
		case err == nil && lease.Spec.RenewTime.After(first.Spec.RenewTime.Time):
			n, err := e.cs.Nodes.Get(e.ctx, "", e.node)
			if err != nil {
				t.Fatal(err)
			}
			hb := n.Status.Conditions[0]
			if hb.LastHeartbeatTime.After(ready.LastHeartbeatTime.Time) {
				if !hb.LastTransitionTime.Equal(&ready.LastTransitionTime) {
					t.Errorf("Ready's transition time moved without a transition")
				}
				return true, ""
			}
			return false, fmt.Sprintf("lease renewed; heartbeat %v", hb.LastHeartbeatTime)
		case err != nil && !client.IsNotFound(err):
			t.Fatal(err)
		}
		return false, fmt.Sprintf("lease %v", first)
	})
}

// Between reports, the node's status is written only when it changed: the Lease carries
// the heartbeat.
func testNodeStatusWrittenWhenChanged(e *env) {
	t := e.t
	cfg := testConfig(e.node)
	cfg.NodeStatusReportInterval = time.Hour
	e.start(sim.New(sim.Config{}), cfg)
	poll := func(what string, done func() bool) {
		t.Helper()
		waitfor.Condition(t, e.timeout(), what, func() (bool, string) { return done(), "not yet" })
	}
	var node *corev1.Node
	poll("the node never got a status", func() bool {
		n, err := e.cs.Nodes.Get(e.ctx, "", e.node)
		node = n
		return err == nil && len(n.Status.Conditions) > 0
	})
	// Wait out several status periods, counted in lease renewals (every 100ms; status
	// every 200ms).
	var renewals int
	var last time.Time
	poll("the lease was not renewed", func() bool {
		l, err := e.cs.Leases.Get(e.ctx, kubelet.LeaseNamespace, e.node)
		if err == nil && l.Spec.RenewTime != nil && l.Spec.RenewTime.After(last) {
			last = l.Spec.RenewTime.Time
			renewals++
		}
		return renewals > 8
	})
	n, err := e.cs.Nodes.Get(e.ctx, "", e.node)
	if err != nil {
		t.Fatal(err)
	}
	if n.ResourceVersion != node.ResourceVersion {
		t.Errorf("unchanged node status rewritten: resourceVersion %s -> %s", node.ResourceVersion, n.ResourceVersion)
	}
	// A change (here: someone marking it Unknown, as the node lifecycle controller does)
	// is corrected at the next check.
	n.Status.Conditions[0].Status = corev1.ConditionUnknown
	if _, err := e.cs.Nodes.UpdateStatus(e.ctx, n); err != nil {
		t.Fatal(err)
	}
	poll("Ready never went back to True", func() bool {
		n, err := e.cs.Nodes.Get(e.ctx, "", e.node)
		return err == nil && n.Status.Conditions[0].Status == corev1.ConditionTrue
	})
}

// A node advertises the extended resources of its configuration, and keeps those that
// someone else added to its status (Kubernetes' documented way: a status patch).
func testExtendedResources(e *env) {
	t := e.t
	cfg := testConfig(e.node)
	cfg.Capacity["example.com/dongle"] = "3"
	e.start(sim.New(sim.Config{}), cfg)
	has := func(n *corev1.Node, name, want string) bool {
		c, a := n.Status.Capacity[corev1.ResourceName(name)], n.Status.Allocatable[corev1.ResourceName(name)]
		return c.String() == want && a.String() == want
	}
	var node *corev1.Node
	waitfor.Condition(t, 30*time.Second, "the node advertises 3 dongles", func() (bool, string) {
		n, err := e.cs.Nodes.Get(e.ctx, "", e.node)
		if err != nil {
			return false, err.Error()
		}
		node = n
		return has(n, "example.com/dongle", "3") && len(n.Status.Conditions) > 0, fmt.Sprint(n.Status.Capacity)
	})
	// Someone adds widgets to the capacity; the Ready condition they also change makes
	// the kubelet write its status again.
	node.Status.Capacity["example.com/widget"] = resource.MustParse("2")
	node.Status.Conditions[0].Status = corev1.ConditionUnknown
	if _, err := e.cs.Nodes.UpdateStatus(e.ctx, node); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the status rewritten, widgets kept and allocatable", func() (bool, string) {
		n, err := e.cs.Nodes.Get(e.ctx, "", e.node)
		if err != nil {
			return false, err.Error()
		}
		return n.Status.Conditions[0].Status == corev1.ConditionTrue && has(n, "example.com/widget", "2") && has(n, "example.com/dongle", "3"),
			fmt.Sprintf("ready %s, capacity %v, allocatable %v", n.Status.Conditions[0].Status, n.Status.Capacity, n.Status.Allocatable)
	})
}

func TestConfigValidate(t *testing.T) {
	cfg := kubelet.DefaultConfig()
	cfg.NodeName = "Bad_Name"
	cfg.LeaseRenewInterval = cfg.LeaseDuration
	cfg.Capacity = map[string]string{"cpu": "lots", "dongle": "1", "example.com/dongle": "1500m", "example.com/widget": "2"}
	cfg.Labels = map[string]string{"bad key!": "v"}
	err := cfg.Validate()
	for _, want := range []string{"nodeName", "leaseRenewInterval", "capacity[cpu]", "capacity[dongle]: not an extended resource name",
		"capacity[example.com/dongle]: 1500m: an extended resource is a whole, non-negative number", "labels: Invalid value: \"bad key!\""} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate() = %v, want it to name %s", err, want)
		}
	}
	if err := testConfig("w1").Validate(); err != nil {
		t.Errorf("test config: %v", err)
	}
	if c := kubelet.MachineCapacity(); c["cpu"] == "" || c["pods"] != "110" {
		t.Errorf("machine capacity %v", c)
	}
}

// testPodNetwork: with a pod network, pods get addresses of the node's podCIDR, each its
// own; a hostNetwork pod keeps the node's; a deleted pod's address is freed.
func testPodNetwork(e *env) {
	t := e.t
	if _, err := e.cs.Nodes.Create(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: e.node},
		Spec: corev1.NodeSpec{PodCIDR: "10.42.7.0/24"}}); err != nil {
		t.Fatal(err)
	}
	net := sim.NewNetwork()
	cfg := testConfig(e.node)
	// Whether each pod still existed when its network was first torn down.
	var mu sync.Mutex
	existed := map[types.UID]bool{}
	cfg.PodNetwork = &tearDownSpy{Network: net, first: func(uid types.UID) {
		l, err := e.cs.Pods.List(e.ctx, e.ns, client.ListOptions{})
		mu.Lock()
		defer mu.Unlock()
		existed[uid] = err == nil && slices.ContainsFunc(l.Items, func(p *corev1.Pod) bool { return p.UID == uid })
	}}
	rt := sim.New(sim.Config{})
	e.start(rt, cfg)
	create := func(name string, hostNetwork bool) {
		t.Helper()
		// The downward API tells the pod's address from the node's.
		env := []corev1.EnvVar{
			{Name: "POD_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
			{Name: "HOST_IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.hostIP"}}},
		}
		if _, err := e.cs.Pods.Create(e.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
			Spec: corev1.PodSpec{NodeName: e.node, HostNetwork: hostNetwork, Containers: []corev1.Container{{Name: "main", Image: "nginx:1.25", Env: env}}}}); err != nil {
			t.Fatal(err)
		}
	}
	running := func(name string) *corev1.Pod {
		t.Helper()
		return e.waitPod(name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	}
	create("a", false)
	create("b", false)
	create("host", true)
	a, b, host := running("a"), running("b"), running("host")
	for _, p := range []*corev1.Pod{a, b} {
		st := p.Status
		if !strings.HasPrefix(st.PodIP, "10.42.7.") || st.PodIP == "10.42.7.0" || st.PodIP == "10.42.7.1" ||
			len(st.PodIPs) != 1 || st.PodIPs[0].IP != st.PodIP || st.HostIP != "10.1.2.3" {
			t.Errorf("pod %s: podIP %q podIPs %v hostIP %q, want a pod address of 10.42.7.0/24", p.Name, st.PodIP, st.PodIPs, st.HostIP)
		}
	}
	for _, p := range []*corev1.Pod{a, b, host} {
		id := strings.TrimPrefix(p.Status.ContainerStatuses[0].ContainerID, "sim://")
		c, ok := rt.Config(id)
		env := c.Env[:min(2, len(c.Env))] // the kubernetes Service's variables follow (testServiceLinks)
		if want := []string{"POD_IP=" + p.Status.PodIP, "HOST_IP=10.1.2.3"}; !ok || !slices.Equal(env, want) {
			t.Errorf("pod %s: env %q, want %q", p.Name, c.Env, want)
		}
	}
	if a.Status.PodIP == b.Status.PodIP {
		t.Errorf("pods a and b both have %s", a.Status.PodIP)
	}
	if host.Status.PodIP != "10.1.2.3" {
		t.Errorf("hostNetwork pod: podIP %s, want the node's 10.1.2.3", host.Status.PodIP)
	}
	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "a", client.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	e.waitGone("a")
	// As Kubernetes' kubelet stops a pod's sandbox before it lets the object go: a
	// pod that is gone holds no address.
	if n := net.Addresses(); n != 1 {
		t.Errorf("pod a is gone, and %d addresses are given, want 1 (b's)", n)
	}
	mu.Lock()
	defer mu.Unlock()
	if ex, ok := existed[a.UID]; !ok || !ex {
		t.Errorf("pod a's network torn down first while the pod object existed: %v (torn down: %v)", ex, ok)
	}
}

// testFinishedPodNetwork: a pod whose containers have finished lets its address go in
// the sync that writes its phase, not at the resync a minute later: its own status
// write coming back does not sync it again.
func testFinishedPodNetwork(e *env) {
	t := e.t
	if _, err := e.cs.Nodes.Create(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: e.node},
		Spec: corev1.NodeSpec{PodCIDR: "10.42.9.0/24"}}); err != nil {
		t.Fatal(err)
	}
	net := sim.NewNetwork()
	cfg := testConfig(e.node)
	cfg.PodNetwork = net
	e.start(sim.New(sim.Config{}), cfg)
	// It runs a while: the relist sees it exit, and that sync writes Succeeded.
	if _, err := e.cs.Pods.Create(e.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "job"},
		Spec: corev1.PodSpec{NodeName: e.node, RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "work", Image: "busybox", Command: []string{"sh", "-c", "sleep 1; exit 0"}}}}}); err != nil {
		t.Fatal(err)
	}
	e.waitPod("job", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if n := net.Addresses(); n != 1 {
		t.Fatalf("a running pod, %d addresses given, want 1", n)
	}
	e.waitPod("job", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	// Well within the resync (a minute), which would let it go too.
	waitfor.Condition(t, 20*time.Second, "the finished pod's address released", func() (bool, string) {
		n := net.Addresses()
		return n == 0, fmt.Sprintf("%d addresses given", n)
	})
}

// tearDownSpy is a pod network that calls first at the first tear-down of each pod.
type tearDownSpy struct {
	*sim.Network
	first func(types.UID)
	mu    sync.Mutex
	seen  map[types.UID]bool
}

func (n *tearDownSpy) TearDown(ctx context.Context, uid types.UID) error {
	n.mu.Lock()
	first := !n.seen[uid]
	if n.seen == nil {
		n.seen = map[types.UID]bool{}
	}
	n.seen[uid] = true
	n.mu.Unlock()
	if first {
		n.first(uid)
	}
	return n.Network.TearDown(ctx, uid)
}

// testPodNetworkSweep: a kubelet starting on a pod network that still holds the address
// of a pod its node no longer has (deleted while the kubelet was down) releases it, and
// keeps its live pods'.
func testPodNetworkSweep(e *env) {
	t := e.t
	if _, err := e.cs.Nodes.Create(e.ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: e.node},
		Spec: corev1.NodeSpec{PodCIDR: "10.42.8.0/24"}}); err != nil {
		t.Fatal(err)
	}
	net := sim.NewNetwork()
	if _, err := net.SetUp(e.ctx, kubelet.PodRef{UID: "ghost", Namespace: e.ns, Name: "ghost"}, "10.42.8.0/24"); err != nil {
		t.Fatal(err)
	}
	cfg := testConfig(e.node)
	cfg.PodNetwork = net
	e.start(sim.New(sim.Config{}), cfg)
	if _, err := e.cs.Pods.Create(e.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "live"},
		Spec: corev1.PodSpec{NodeName: e.node, Containers: []corev1.Container{{Name: "main", Image: "nginx:1.25"}}}}); err != nil {
		t.Fatal(err)
	}
	e.waitPod("live", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	uids, _ := net.SetUpPods()
	if len(uids) != 1 || uids[0] == "ghost" {
		t.Fatalf("pods with addresses: %v, want only the live pod's (ghost's released)", uids)
	}
}

// TestCSINodeAsTheNode: a kubelet with its node's credentials (the node authorizer's
// limits) creates its CSINode, and a simulated node makes none.
func TestCSINodeAsTheNode(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{Certs: apicluster.Certs(t, "w1", "sim")})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	for _, node := range []struct {
		name string
		cfg  func(kubelet.Config) kubelet.Config
	}{
		{"w1", func(c kubelet.Config) kubelet.Config { return c }},
		{"sim", kubelet.Config.Simulated},
	} {
		e := &env{t: t, ctx: ctx, cs: client.NewClientset(c.Dial(t, "kubelet-"+node.name, client.Options{})), node: node.name, api: c.Addr(0)}
		e.start(sim.New(sim.Config{}), node.cfg(testConfig(node.name)))
	}
	csiNodes := client.For[*storagev1.CSINode](admin.Conn)
	waitfor.Condition(t, time.Minute, "w1's CSINode", func() (bool, string) {
		_, err := csiNodes.Get(ctx, "", "w1")
		return err == nil, fmt.Sprint(err)
	})
	// By then the simulated node has registered too (and would have made its CSINode
	// on the same turn).
	waitfor.Condition(t, time.Minute, "the simulated node registered", func() (bool, string) {
		_, err := admin.Nodes.Get(ctx, "", "sim")
		return err == nil, fmt.Sprint(err)
	})
	if _, err := csiNodes.Get(ctx, "", "sim"); !client.IsNotFound(err) {
		t.Errorf("a simulated node's CSINode: %v, want none", err)
	}
}

// testCallsUnderTheNodesContext: a node's calls and waits take their deadlines from a
// context of the node's own, not from the one Run is given, which a process's thousands
// of simulated nodes share (each derived context registers with its parent under the
// parent's lock: one lock for every call of every node).
func testCallsUnderTheNodesContext(e *env) {
	t := e.t
	var parent *countingCtx
	e.startWith(func(ctx context.Context) context.Context {
		parent = &countingCtx{Context: ctx}
		return parent
	}, sim.New(sim.Config{}), testConfig(e.node))
	p := e.createPod("p", e.node, corev1.RestartPolicyAlways, "busybox", "sleep", "3600")
	e.waitPod(p.Name, "running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	// Registered, Leases renewed, the pod started and its status written: every call
	// took a deadline from some context, and one context was ever derived from parent.
	if n := parent.registered.Load(); n != 1 {
		t.Errorf("%d contexts derived from the context Run was given, want 1 (the node's own)", n)
	}
}

// countingCtx is a cancelable context that is none of package context's own, so that a
// context derived from it registers through its AfterFunc, which counts them.
type countingCtx struct {
	context.Context
	registered atomic.Int64
}

// Value hides the embedded context's own cancelable context (its values: none).
func (c *countingCtx) Value(any) any { return nil }

func (c *countingCtx) AfterFunc(f func()) (stop func() bool) {
	c.registered.Add(1)
	return context.AfterFunc(c.Context, f)
}

// testRelistListsOnlyAfterChanges: with a runtime that counts its changes, the relist
// lists the containers only when the count moved: a node where nothing changes lists
// nothing however many relists pass, and a container that exits on its own schedule is
// still seen at once.
func testRelistListsOnlyAfterChanges(e *env) {
	t := e.t
	rt := &countingRuntime{Runtime: sim.New(sim.Config{})}
	e.start(rt, testConfig(e.node))
	running := func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }
	e.waitPod(e.createPod("p", e.node, corev1.RestartPolicyAlways, "busybox", "sleep", "3600").Name, "running", running)
	lists, relists := rt.lists.Load(), rt.changes.Load()
	waitfor.Condition(t, e.timeout(), "twenty relists", func() (bool, string) {
		n := rt.changes.Load() - relists
		return n >= 20, fmt.Sprintf("%d relists", n)
	})
	// The pod's own syncs (its status written, seen again) may list; the relists must not.
	if n := rt.lists.Load() - lists; n >= 10 {
		t.Errorf("%d lists of the containers in twenty relists of a node where nothing changed", n)
	}
	e.waitPod(e.createPod("q", e.node, corev1.RestartPolicyNever, "busybox", "sleep", "1").Name, "succeeded", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodSucceeded
	})
}

// countingRuntime counts a runtime's lists and its change counts asked for (relists).
type countingRuntime struct {
	*sim.Runtime
	lists, changes atomic.Int64
}

func (r *countingRuntime) List(ctx context.Context) ([]kubelet.Container, error) {
	r.lists.Add(1)
	return r.Runtime.List(ctx)
}

func (r *countingRuntime) Changes() uint64 {
	r.changes.Add(1)
	return r.Runtime.Changes()
}

// testSyncTurnsBoundTheFleetsSyncs: kubelets sharing SyncTurns (a process's simulated
// nodes) run no more pod syncs at once than it has turns: with one turn, a node's pod
// waits for it while another node's sync holds it, and starts once that sync ends.
func testSyncTurnsBoundTheFleetsSyncs(e *env) {
	t := e.t
	turns := &countedTurns{Turns: kubelet.NewTurns(1)}
	release := make(chan struct{})
	rt := &heldRuntime{Runtime: sim.New(sim.Config{}), release: release, started: make(chan string, 2)}
	other := e.node + "-b"
	for _, node := range []string{e.node, other} {
		cfg := testConfig(node)
		cfg.SyncTurns = turns
		e.start(rt, cfg)
	}
	e.createPod("a", e.node, corev1.RestartPolicyAlways, "busybox", "sleep", "3600")
	select { // a's sync holds the turn, its start held
	case first := <-rt.started:
		if first != "a" {
			t.Fatalf("%s started first", first)
		}
	case <-e.ctx.Done():
		t.Fatal("pod a never started")
	}
	e.createPod("b", other, corev1.RestartPolicyAlways, "busybox", "sleep", "3600")
	waitfor.Condition(t, e.timeout(), "the other node's sync asking for a turn", func() (bool, string) {
		n := turns.asked.Load()
		return n >= 2, fmt.Sprintf("%d asked", n)
	})
	select {
	case second := <-rt.started:
		t.Fatalf("%s started while a's sync held the only turn", second)
	default:
	}
	close(release)
	running := func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }
	e.waitPod("a", "running", running)
	e.waitPod("b", "running", running)
}

// countedTurns counts the turns asked for.
type countedTurns struct {
	kubelet.Turns
	asked atomic.Int64
}

func (c *countedTurns) Take(ctx context.Context) (func(), error) {
	c.asked.Add(1)
	return c.Turns.Take(ctx)
}

// heldRuntime is a runtime whose container starts wait for release, saying which pod
// started on started.
type heldRuntime struct {
	*sim.Runtime
	release chan struct{}
	started chan string
}

func (r *heldRuntime) CreateAndStart(ctx context.Context, cfg kubelet.ContainerConfig) (string, error) {
	select {
	case r.started <- cfg.PodName:
	default: // a start after the test's two (a retry while stopping) is not reported
	}
	select {
	case <-r.release:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return r.Runtime.CreateAndStart(ctx, cfg)
}
