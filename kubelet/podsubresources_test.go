package kubelet_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/kubelet/crilog"
	"github.com/skiffhq/skiff/kubelet/sim"
)

// patchPod writes a strategic merge patch to a subresource of pod name
// (ephemeralcontainers, resize) through the API server's REST API, as kubectl sends it.
func (e *env) patchPod(name, subresource, patch string) *corev1.Pod {
	e.t.Helper()
	url := "http://" + e.api + "/api/v1/namespaces/" + e.ns + "/pods/" + name + "/" + subresource
	req, err := http.NewRequestWithContext(e.ctx, http.MethodPatch, url, strings.NewReader(patch))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/strategic-merge-patch+json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("patch %s/%s: %v", name, subresource, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("patch %s/%s: HTTP %d: %s", name, subresource, resp.StatusCode, body)
	}
	var p corev1.Pod
	if err := json.Unmarshal(body, &p); err != nil {
		e.t.Fatal(err)
	}
	return &p
}

// qty is a list's amount of name, as a string ("" if absent).
func qty(l corev1.ResourceList, name corev1.ResourceName) string {
	q, ok := l[name]
	if !ok {
		return ""
	}
	return q.String()
}

func conditionOf(p *corev1.Pod, typ corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == typ {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// resourcesPod is a running pod of one container "app" with cpu and memory requests and
// limits.
func resourcesPod(name, image string, command ...string) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(1)),
		Containers: []corev1.Container{{Name: "app", Image: image, ImagePullPolicy: corev1.PullIfNotPresent, Command: command,
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
				Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("200m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}}}}
}

// Ephemeral containers on the simulated runtime: one added to a running pod starts and
// shows in ephemeralContainerStatuses, never ready; once it exits it is not started
// again, as a second one added later shows.
func testEphemeralContainers(e *env) {
	rt := sim.New(sim.Config{Images: []string{"busybox:1.36"}})
	e.start(rt, testConfig(e.node))
	e.createPod("target", e.node, "Always", "busybox:1.36", "sleep", "infinity")
	e.waitPod("target", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	p := e.patchPod("target", "ephemeralcontainers", `{"spec":{"ephemeralContainers":[{"name":"debugger","image":"busybox:1.36","command":["sleep","infinity"],"targetContainerName":"main"}]}}`)
	if p.Generation != 2 {
		e.t.Errorf("generation %d after adding an ephemeral container, want 2", p.Generation)
	}
	p = e.waitPod("target", "its ephemeral container running", func(p *corev1.Pod) bool {
		s := p.Status.EphemeralContainerStatuses
		return len(s) == 1 && s[0].State.Running != nil
	})
	s := p.Status.EphemeralContainerStatuses[0]
	if s.Name != "debugger" || s.Ready || s.Image != "busybox:1.36" || !strings.HasPrefix(s.ContainerID, "sim://") {
		e.t.Errorf("ephemeral status %+v", s)
	}
	id := strings.TrimPrefix(s.ContainerID, "sim://")
	if cfg, _ := rt.Config(id); cfg.TargetID != strings.TrimPrefix(mainStatus(p).ContainerID, "sim://") {
		e.t.Errorf("the ephemeral container's target %q, want the app container's %s", cfg.TargetID, mainStatus(p).ContainerID)
	}
	if err := rt.Exit(id, 3); err != nil {
		e.t.Fatal(err)
	}
	e.waitPod("target", "its ephemeral container exited", func(p *corev1.Pod) bool {
		s := p.Status.EphemeralContainerStatuses
		return len(s) == 1 && s[0].State.Terminated != nil && s[0].State.Terminated.ExitCode == 3
	})
	e.patchPod("target", "ephemeralcontainers", `{"spec":{"ephemeralContainers":[{"name":"second","image":"busybox:1.36","command":["sleep","infinity"]}]}}`)
	p = e.waitPod("target", "the second one running", func(p *corev1.Pod) bool {
		return len(p.Status.EphemeralContainerStatuses) == 2 && statusOf(p.Status.EphemeralContainerStatuses, "second").State.Running != nil
	})
	if s := statusOf(p.Status.EphemeralContainerStatuses, "debugger"); s.State.Terminated == nil || s.RestartCount != 0 {
		e.t.Errorf("the exited ephemeral container was restarted: %+v", s)
	}
	if p.Status.Phase != corev1.PodRunning || condition(p, corev1.PodReady) != corev1.ConditionTrue {
		e.t.Errorf("pod %s, Ready %s: ephemeral containers count for neither", p.Status.Phase, condition(p, corev1.PodReady))
	}
}

// In-place resize on the simulated runtime: a cpu change is applied to the running
// container (same container, its runtime's resources updated) and the status reports it
// (resources, allocatedResources, observedGeneration, no resize condition left); a
// memory change with resizePolicy RestartContainer restarts the container; a resize
// beyond the node's capacity is Infeasible, one the other pods leave no room for is
// Deferred, and the container keeps what it has.
func testResize(e *env) {
	rt := sim.New(sim.Config{Images: []string{"busybox:1.36"}})
	e.start(rt, testConfig(e.node)) // 4 cpus, 8Gi
	e.create(resourcesPod("r", "busybox:1.36", "sleep", "infinity"))
	p := e.waitPod("r", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	id := mainStatus(p).ContainerID
	if r := mainStatus(p).Resources; r == nil || qty(r.Limits, "cpu") != "200m" || qty(mainStatus(p).AllocatedResources, "cpu") != "100m" {
		e.t.Errorf("before resize: resources %+v, allocated %v", r, mainStatus(p).AllocatedResources)
	}
	e.patchPod("r", "resize", `{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"150m"},"limits":{"cpu":"300m"}}}]}}`)
	p = e.waitPod("r", "resized in place", func(p *corev1.Pod) bool {
		r := mainStatus(p).Resources
		return r != nil && qty(r.Limits, "cpu") == "300m" && p.Status.ObservedGeneration == 2 && conditionOf(p, corev1.PodResizeInProgress) == nil
	})
	cs := mainStatus(p)
	if cs.ContainerID != id || cs.RestartCount != 0 || qty(cs.AllocatedResources, "cpu") != "150m" || qty(cs.Resources.Requests, "cpu") != "150m" {
		e.t.Errorf("after an in-place resize: %+v", cs)
	}
	if cfg, _ := rt.Config(strings.TrimPrefix(id, "sim://")); cfg.CPUMillis != 300 || cfg.CPURequestMillis != 150 || cfg.Pod.CPUMillis != 300 {
		e.t.Errorf("the runtime's resources %+v, pod %+v", cfg.Resources, cfg.Pod)
	}

	e.patchPod("r", "resize", `{"spec":{"containers":[{"name":"app","resizePolicy":[{"resourceName":"memory","restartPolicy":"RestartContainer"}],"resources":{"limits":{"memory":"128Mi"}}}]}}`)
	p = e.waitPod("r", "restarted with more memory", func(p *corev1.Pod) bool {
		cs := mainStatus(p)
		return cs.RestartCount == 1 && cs.State.Running != nil && cs.Resources != nil && qty(cs.Resources.Limits, "memory") == "128Mi"
	})
	if cfg, _ := rt.Config(strings.TrimPrefix(mainStatus(p).ContainerID, "sim://")); cfg.MemoryBytes != 128<<20 {
		e.t.Errorf("the new attempt's memory limit %d", cfg.MemoryBytes)
	}

	e.patchPod("r", "resize", `{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"5"},"limits":{"cpu":"6"}}}]}}`)
	p = e.waitPod("r", "an infeasible resize pending", func(p *corev1.Pod) bool {
		c := conditionOf(p, corev1.PodResizePending)
		return c != nil && c.Reason == "Infeasible"
	})
	if c := conditionOf(p, corev1.PodResizePending); c.Message != "Node didn't have enough capacity: cpu, requested: 5000, capacity: 4000" {
		e.t.Errorf("infeasible: %q", c.Message)
	}
	if cs := mainStatus(p); qty(cs.AllocatedResources, "cpu") != "150m" || qty(cs.Resources.Limits, "cpu") != "300m" {
		e.t.Errorf("a pending resize changed the container: %+v", cs)
	}
	other := resourcesPod("other", "busybox:1.36", "sleep", "infinity")
	other.Spec.Containers[0].Resources.Requests[corev1.ResourceCPU] = resource.MustParse("3")
	other.Spec.Containers[0].Resources.Limits[corev1.ResourceCPU] = resource.MustParse("3")
	e.create(other)
	e.waitPod("other", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	e.patchPod("r", "resize", `{"spec":{"containers":[{"name":"app","resources":{"requests":{"cpu":"2"},"limits":{"cpu":"2"}}}]}}`)
	p = e.waitPod("r", "a deferred resize pending", func(p *corev1.Pod) bool {
		c := conditionOf(p, corev1.PodResizePending)
		return c != nil && c.Reason == "Deferred"
	})
	if c := conditionOf(p, corev1.PodResizePending); !strings.HasPrefix(c.Message, "Node didn't have enough resource: cpu, requested: 2000, used: 3") {
		e.t.Errorf("deferred: %q", c.Message)
	}
	// Room made: the deferred resize goes through.
	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "other", clientDelete()); err != nil {
		e.t.Fatal(err)
	}
	e.waitPod("r", "the deferred resize done", func(p *corev1.Pod) bool {
		r := mainStatus(p).Resources
		return conditionOf(p, corev1.PodResizePending) == nil && r != nil && qty(r.Limits, "cpu") == "2"
	})
}

// ephemeralLogs is what ephemeral container name of p wrote.
func (e *env) ephemeralLogs(rt kubelet.Runtime, p *corev1.Pod, name string) string {
	id := strings.TrimPrefix(statusOf(p.Status.EphemeralContainerStatuses, name).ContainerID, "containerd://")
	if id == "" {
		return ""
	}
	var b bytes.Buffer
	rt.Logs(e.ctx, id, crilog.NewDecoder(crilog.NewPrinter(&b, crilog.Options{})), false)
	return b.String()
}

// An ephemeral container in a live pod on containerd: it runs in the pod's sandbox and,
// with targetContainerName, in its target's process namespace (its ps sees the
// target's sleep); its status and output show; it is never restarted.
func testContainerdEphemeral(e *env, rt *containerd.Runtime) {
	e.start(rt, ctrdConfig(e))
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "target"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(1)),
		Containers: []corev1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "10007"}}}}})
	e.waitPod("target", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	e.patchPod("target", "ephemeralcontainers", `{"spec":{"ephemeralContainers":[{"name":"debugger","image":"`+busyboxImage+`",`+
		`"command":["sh","-c","ps; echo polo; exit 4"],"targetContainerName":"app","stdin":true,"tty":true}]}}`)
	p := e.waitPod("target", "its ephemeral container done", func(p *corev1.Pod) bool {
		s := statusOf(p.Status.EphemeralContainerStatuses, "debugger")
		return s.State.Terminated != nil && strings.Contains(e.ephemeralLogs(rt, p, "debugger"), "polo")
	})
	out := e.ephemeralLogs(rt, p, "debugger")
	if !strings.Contains(out, "sleep 10007") {
		e.t.Errorf("the ephemeral container does not see its target's processes: %q", out)
	}
	if s := statusOf(p.Status.EphemeralContainerStatuses, "debugger"); s.State.Terminated.ExitCode != 4 || s.RestartCount != 0 || s.Ready {
		e.t.Errorf("ephemeral status %+v", s)
	}
	if p.Status.Phase != corev1.PodRunning || mainStatus(p).RestartCount != 0 {
		e.t.Errorf("the pod: %s, app restarts %d", p.Status.Phase, mainStatus(p).RestartCount)
	}
	// Never restarted: the kubelet's next syncs (a second one added) leave it exited.
	e.patchPod("target", "ephemeralcontainers", `{"spec":{"ephemeralContainers":[{"name":"second","image":"`+busyboxImage+`","command":["sleep","3600"]}]}}`)
	p = e.waitPod("target", "the second one running", func(p *corev1.Pod) bool {
		return statusOf(p.Status.EphemeralContainerStatuses, "second").State.Running != nil
	})
	if s := statusOf(p.Status.EphemeralContainerStatuses, "debugger"); s.State.Terminated == nil || s.RestartCount != 0 {
		e.t.Errorf("the exited ephemeral container was restarted: %+v", s)
	}
}

// An in-place resize on containerd: the running container's cgroup (and its pod's)
// takes the new cpu and memory limits, read from cgroupfs, without a restart.
func testContainerdResize(e *env, rt *containerd.Runtime) {
	e.start(rt, ctrdConfig(e))
	e.create(resourcesPod("r", busyboxImage, "sleep", "3600"))
	p := e.waitPod("r", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	id := mainStatus(p).ContainerID
	pod := "/skiff-resize/burstable/pod" + string(p.UID)
	ctr := pod + "/" + strings.TrimPrefix(id, "containerd://")
	read := func(path string) string {
		for _, f := range []string{"/sys/fs/cgroup/" + path, "/sys/fs/cgroup/unified/" + path} {
			if b, err := os.ReadFile(f); err == nil {
				return strings.TrimSpace(string(b))
			}
		}
		return "(missing)"
	}
	v1 := false
	if _, err := os.Stat("/sys/fs/cgroup/cpu"); err == nil {
		v1 = true
	}
	check := func(cpuQuota int, memory int64) {
		e.t.Helper()
		want := map[string]string{}
		for _, cg := range []string{ctr, pod} {
			if v1 {
				want["cpu"+cg+"/cpu.cfs_quota_us"] = strconv.Itoa(cpuQuota)
				want["memory"+cg+"/memory.limit_in_bytes"] = strconv.FormatInt(memory, 10)
			} else {
				want[cg+"/cpu.max"] = strconv.Itoa(cpuQuota) + " 100000"
				want[cg+"/memory.max"] = strconv.FormatInt(memory, 10)
			}
		}
		for path, w := range want {
			if got := read(path); got != w {
				e.t.Errorf("%s = %s, want %s", path, got, w)
			}
		}
	}
	check(20000, 64<<20)
	e.patchPod("r", "resize", `{"spec":{"containers":[{"name":"app","resources":{"limits":{"cpu":"400m","memory":"96Mi"}}}]}}`)
	p = e.waitPod("r", "resized in place", func(p *corev1.Pod) bool {
		r := mainStatus(p).Resources
		return r != nil && qty(r.Limits, "cpu") == "400m" && qty(r.Limits, "memory") == "96Mi" && conditionOf(p, corev1.PodResizeInProgress) == nil
	})
	if cs := mainStatus(p); cs.ContainerID != id || cs.RestartCount != 0 {
		e.t.Errorf("the container was replaced: %s (was %s), restarts %d", cs.ContainerID, id, cs.RestartCount)
	}
	check(40000, 96<<20)
	// A decrease too.
	e.patchPod("r", "resize", `{"spec":{"containers":[{"name":"app","resources":{"limits":{"cpu":"300m","memory":"80Mi"}}}]}}`)
	e.waitPod("r", "resized down", func(p *corev1.Pod) bool {
		r := mainStatus(p).Resources
		return r != nil && qty(r.Limits, "cpu") == "300m" && conditionOf(p, corev1.PodResizeInProgress) == nil
	})
	check(30000, 80<<20)
}

// An image volume on containerd: the image's root filesystem, mounted read-only, is
// read by the container, whole and through a subPath; the pod's deletion unmounts it
// (its snapshot view removed with the pod).
func testContainerdImageVolume(e *env, rt *containerd.Runtime) {
	e.start(rt, ctrdConfig(e))
	script := "test -f /img/bin/busybox && echo found; test -f /sub/busybox && echo subpath; touch /img/x 2>/dev/null || echo readonly; sleep 3600"
	p := e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "iv"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(1)),
		Volumes: []corev1.Volume{{Name: "img", VolumeSource: corev1.VolumeSource{Image: &corev1.ImageVolumeSource{Reference: busyboxImage, PullPolicy: corev1.PullIfNotPresent}}}},
		Containers: []corev1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh", "-c", script},
			VolumeMounts: []corev1.VolumeMount{{Name: "img", MountPath: "/img"}, {Name: "img", MountPath: "/sub", SubPath: "bin"}}}}}})
	e.waitLogs(rt, "iv", "app", "readonly")
	p = e.waitPod("iv", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if out := e.logs(rt, p, "app"); !strings.Contains(out, "found") || !strings.Contains(out, "subpath") {
		e.t.Errorf("the container's output %q: want found, subpath and readonly", out)
	}
	dir := e.volumesDir(p)
	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "iv", clientDelete()); err != nil {
		e.t.Fatal(err)
	}
	e.waitGone("iv")
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		e.t.Errorf("the pod's volumes %s outlived it: %v", dir, err)
	}
}
