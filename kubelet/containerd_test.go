package kubelet_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/containerdtest"
	"github.com/skiffhq/skiff/test/registrytest"
)

// busyboxImage is the image the containerd tests run: the host's static busybox, imported.
const busyboxImage = "docker.io/library/busybox:skiff-test"

// TestKubeletContainerd runs the kubelet on a private containerd (root and the
// containerd binaries, else it skips): restarts with back-off, adoption across a kubelet
// restart, graceful stops and image pull failures, on real containers. Each subtest has
// its namespace, node and containerd namespace: a kubelet removes what it finds in its
// containerd namespace that belongs to no pod of its node.
func TestKubeletContainerd(t *testing.T) {
	socket := containerdtest.Start(t)
	data, err := containerd.BusyboxArchive("/bin/busybox", busyboxImage)
	if err != nil {
		t.Skipf("no static busybox to build a test image from: %v", err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)
	for _, tc := range []struct {
		name string
		f    func(e *env, rt *containerd.Runtime)
	}{
		{"crashloop", testContainerdCrashLoop},
		{"restart", testContainerdRestartAdopts},
		{"stop", testContainerdGracefulStop},
		{"pullbackoff", testContainerdImagePullBackOff},
		{"probes", testContainerdProbes},
		{"resources", testContainerdResources},
		{"security", testContainerdSecurity},
		{"pullsecret", testContainerdPullSecret},
		{"hooks", testContainerdHooks},
		{"streams", testContainerdStreams},
		{"podnetwork", testContainerdPodNetwork},
		{"hostslinks", testContainerdHostsAndServiceLinks},
		{"sidecars", testContainerdSidecars},
		{"subpathexpr", testContainerdSubPathExpr},
		{"runtimehandler", testContainerdRuntimeHandler},
		{"ephemeral", testContainerdEphemeral},
		{"resize", testContainerdResize},
		{"imagevolume", testContainerdImageVolume},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
			defer cancel()
			rt, err := containerd.New(ctx, containerd.Config{Socket: socket, Namespace: "skiff-" + tc.name, LogDir: t.TempDir(),
				RuntimeHandlers: map[string]string{kubelet.DefaultRuntimeHandler: "", "runc-v2": "io.containerd.runc.v2"}})
			if err != nil {
				t.Fatal(err)
			}
			containerdtest.RemoveCgroups(t, "/skiff-"+tc.name)
			t.Cleanup(func() { rt.Close() })
			if _, err := rt.Import(ctx, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			e := &env{t: t, ctx: ctx, cs: cs, ns: tc.name, node: "ctrd-" + tc.name, api: c.Addr(0)}
			if _, err := cs.Namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: e.ns}}); err != nil {
				t.Fatal(err)
			}
			tc.f(e, rt)
			// Leave no container running: delete the pods and wait for the kubelet (still
			// running until the subtest's cleanup) to remove their containers.
			if l, err := cs.Pods.List(ctx, e.ns, client.ListOptions{}); err == nil {
				for _, p := range l.Items {
					cs.Pods.Delete(ctx, e.ns, p.Name, client.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
				}
			}
			if e.started {
				e.waitContainers(rt, "no container left", func(l []kubelet.Container) bool { return len(l) == 0 })
			}
		})
	}
}

func testContainerdCrashLoop(e *env, rt *containerd.Runtime) {
	t := e.t
	e.start(rt, testConfig(e.node))
	e.createPod("crash", e.node, "Always", busyboxImage, "sh", "-c", "echo crashing; exit 1")
	e.waitPod("crash", "in CrashLoopBackOff", func(p *corev1.Pod) bool {
		cs := mainStatus(p)
		return waiting(cs).Reason == "CrashLoopBackOff" && lastTerminated(cs).ExitCode == 1 &&
			lastTerminated(cs).Reason == "Error" && p.Status.Phase == corev1.PodRunning
	})
	// Between a restart and the next exit the container runs and the pod is Ready, as in
	// Kubernetes: judge readiness while the kubelet holds the container back.
	p := e.waitPod("crash", "restarted 3 times and backing off", func(p *corev1.Pod) bool {
		cs := mainStatus(p)
		return cs.RestartCount >= 3 && waiting(cs).Reason == "CrashLoopBackOff"
	})
	if condition(p, corev1.PodReady) != corev1.ConditionFalse {
		t.Errorf("a crash-looping pod waiting in CrashLoopBackOff is Ready")
	}
	e.waitEvents("crash", "BackOff", "Started", "Created")
	// Each restart is a new container (attempt); the runtime keeps the last two at most.
	l := e.waitContainers(rt, "kept the newest attempts", func(l []kubelet.Container) bool { return len(l) > 0 && len(l) <= 2 })
	for _, c := range l {
		if c.PodName != "crash" || c.Attempt < 1 {
			t.Errorf("container %+v", c)
		}
	}
}

func testContainerdRestartAdopts(e *env, rt *containerd.Runtime) {
	t := e.t
	stop := e.start(rt, testConfig(e.node))
	e.createPod("keep", e.node, "", busyboxImage, "sleep", "3600")
	e.createPod("drop", e.node, "", busyboxImage, "sleep", "3600")
	for _, name := range []string{"keep", "drop"} {
		e.waitPod(name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	}
	before := e.waitContainers(rt, "runs both", func(l []kubelet.Container) bool { return len(l) == 2 })
	stop()

	// While the kubelet is down, one pod is force-deleted; containers keep running.
	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "drop", client.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)}); err != nil {
		t.Fatal(err)
	}
	if l, err := rt.List(e.ctx); err != nil || len(l) != 2 || l[0].State != kubelet.StateRunning || l[1].State != kubelet.StateRunning {
		t.Fatalf("containers after the kubelet stopped: %+v, %v", l, err)
	}
	e.start(rt, testConfig(e.node))
	after := e.waitContainers(rt, "removed the deleted pod's container", func(l []kubelet.Container) bool { return len(l) == 1 })
	var kept kubelet.Container
	for _, c := range before {
		if c.PodName == "keep" {
			kept = c
		}
	}
	if a := after[0]; a.ID != kept.ID || a.State != kubelet.StateRunning || !a.StartedAt.Equal(kept.StartedAt) {
		t.Fatalf("after restart the runtime has %+v, want the adopted %+v", a, kept)
	}
	p := e.waitPod("keep", "Ready", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue })
	if cs := mainStatus(p); cs.ContainerID != "containerd://"+kept.ID || cs.RestartCount != 0 {
		t.Fatalf("container status after the restart: %v", cs)
	}
}

func testContainerdGracefulStop(e *env, rt *containerd.Runtime) {
	t := e.t
	e.start(rt, testConfig(e.node))
	create := func(name string, grace int64, script string) {
		_, err := e.cs.Pods.Create(e.ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
			Spec: corev1.PodSpec{NodeName: e.node, HostNetwork: true, TerminationGracePeriodSeconds: ptr.To(grace),
				Containers: []corev1.Container{{Name: "main", Image: busyboxImage, Command: []string{"sh", "-c", script}}}},
		})
		if err != nil {
			t.Fatal(err)
		}
		e.waitPod(name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	}
	// One exits on SIGTERM: its pod goes long before its 10-minute grace period ends
	// (the subtest's deadline is shorter). One ignores SIGTERM (the shell is PID 1 and
	// installs no handler): it is killed once its 1 s is up.
	create("term", 600, `trap "exit 0" TERM; while true; do sleep 0.1; done`)
	create("ignore", 1, `trap "" TERM; while true; do sleep 0.1; done`)
	for _, name := range []string{"term", "ignore"} {
		if _, err := e.cs.Pods.Delete(e.ctx, e.ns, name, client.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	e.waitGone("term")
	e.waitGone("ignore")
	e.waitContainers(rt, "removed both containers", func(l []kubelet.Container) bool { return len(l) == 0 })
	e.waitEvents("term", "Killing")
}

func testContainerdImagePullBackOff(e *env, rt *containerd.Runtime) {
	t := e.t
	reg := registrytest.Start(t)
	e.start(rt, testConfig(e.node))
	image := reg + "/busybox:no-such-tag"
	created := e.createPod("missing", e.node, "", image)
	p := e.waitSeen(created, "in ErrImagePull, then ImagePullBackOff", func(p *corev1.Pod) bool {
		w := waiting(mainStatus(p))
		return w.Reason == "ErrImagePull" && strings.Contains(w.Message, image)
	}, func(p *corev1.Pod) bool {
		return waiting(mainStatus(p)).Reason == "ImagePullBackOff"
	})
	if p.Status.Phase != corev1.PodPending {
		t.Errorf("phase %s", p.Status.Phase)
	}
	e.waitEvents("missing", "Pulling", "Failed", "BackOff")
	if l, err := rt.List(e.ctx); err != nil || len(l) != 0 {
		t.Errorf("containers of a pod without its image: %+v, %v", l, err)
	}
}

// testContainerdRuntimeHandler: a handler the runtime maps to containerd's runc shim by
// name runs its pod (containerd made the container with that runtime); a handler it has
// not leaves its pod Pending.
func testContainerdRuntimeHandler(e *env, rt *containerd.Runtime) {
	e.start(rt, testConfig(e.node))
	runtimeHandlerPods(e, rt, "runc-v2")
}
