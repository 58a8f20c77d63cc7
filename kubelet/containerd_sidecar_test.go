package kubelet_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet/containerd"
)

// sidecar is a busybox sidecar (an init container with restartPolicy Always) that
// writes "start NAME" to /out/order when it starts, which its startup probe waits for,
// and "TERM NAME" when it gets SIGTERM, then exits 0; before it starts for good it runs
// the shell of first. The probe's timeouts are generous: a loaded machine must not fail
// it.
func sidecar(name, first string) corev1.Container {
	script := first + "echo start " + name + " >> /out/order; trap 'echo TERM " + name + " >> /out/order; exit 0' TERM; " +
		"while true; do sleep 1 & wait $!; done"
	return corev1.Container{Name: name, Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh", "-c", script},
		RestartPolicy: ptr.To(corev1.ContainerRestartPolicyAlways), VolumeMounts: []corev1.VolumeMount{{Name: "out", MountPath: "/out"}},
		StartupProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"grep", "-q", "start " + name, "/out/order"}}},
			PeriodSeconds: 1, TimeoutSeconds: 30, FailureThreshold: 1000}}
}

// order is what the pod's containers wrote to /out/order, line by line.
func order(out string) []string {
	b, _ := os.ReadFile(filepath.Join(out, "order"))
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

// Sidecars on real containers, as Kubernetes runs them. A Job-like pod (restartPolicy
// Never): the first sidecar's startup probe holds the next init container back until it
// passes; the second sidecar exits at its first run and is restarted all the same; the
// app container runs beside both, and once it is done they get SIGTERM, the last one
// first, and the pod Succeeds. A long-running pod: its sidecar's readiness counts in
// its Ready condition, and when the pod is deleted its app container stops first, then
// its sidecars in reverse order.
func testContainerdSidecars(e *env, rt *containerd.Runtime) {
	e.start(rt, ctrdConfig(e))
	out := e.t.TempDir()
	vol := []corev1.Volume{{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: out, Type: new(corev1.HostPathDirectory)}}}}
	logger := sidecar("logger", "")
	logger.StartupProbe.Exec.Command = []string{"test", "-f", "/out/go"}
	proxy := sidecar("proxy", "if [ ! -f /out/proxy-ran ]; then touch /out/proxy-ran; exit 3; fi; ") // exits at its first run
	sh := func(name, script string) corev1.Container {
		return corev1.Container{Name: name, Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh", "-c", script},
			VolumeMounts: []corev1.VolumeMount{{Name: "out", MountPath: "/out"}}}
	}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "job"}, Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
		TerminationGracePeriodSeconds: new(int64(10)), Volumes: vol,
		InitContainers: []corev1.Container{logger, sh("setup", "echo setup >> /out/order"), proxy},
		Containers:     []corev1.Container{sh("main", "echo main >> /out/order; sleep 1")}}})
	e.waitPod("job", "with its first sidecar running, not started", func(p *corev1.Pod) bool {
		s := statusOf(p.Status.InitContainerStatuses, "logger")
		return s.State.Running != nil && !ptr.Deref(s.Started, true) && len(order(out)) > 0 && order(out)[0] != ""
	})
	if got := order(out); !slices.Equal(got, []string{"start logger"}) {
		e.t.Fatalf("before the startup probe passed: %q", got)
	}
	if err := os.WriteFile(filepath.Join(out, "go"), nil, 0o644); err != nil {
		e.t.Fatal(err)
	}
	p := e.waitPod("job", "Succeeded", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodSucceeded })
	if got, want := order(out), []string{"start logger", "setup", "start proxy", "main", "TERM proxy", "TERM logger"}; !slices.Equal(got, want) {
		e.t.Errorf("order %q, want %q", got, want)
	}
	if s := statusOf(p.Status.InitContainerStatuses, "proxy"); s.RestartCount != 1 || s.State.Terminated == nil || s.State.Terminated.ExitCode != 0 {
		e.t.Errorf("proxy's status: restarts %d, state %+v", s.RestartCount, s.State)
	}
	if len(p.Status.InitContainerStatuses) != 3 || len(p.Status.ContainerStatuses) != 1 || mainStatus(p).State.Terminated == nil {
		e.t.Errorf("statuses: init %+v, app %+v", p.Status.InitContainerStatuses, p.Status.ContainerStatuses)
	}

	// Readiness and the order of a deletion.
	if err := os.Remove(filepath.Join(out, "order")); err != nil {
		e.t.Fatal(err)
	}
	first, second := sidecar("first", ""), sidecar("second", "")
	second.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"test", "-f", "/out/ready"}}}, PeriodSeconds: 1,
		TimeoutSeconds: 30}
	app := sh("app", "trap 'sleep 1; echo TERM app >> /out/order; exit 0' TERM; echo start app >> /out/order; while true; do sleep 1 & wait $!; done")
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(20)), Volumes: vol,
		InitContainers: []corev1.Container{first, second}, Containers: []corev1.Container{app}}})
	e.waitPod("web", "running, not Ready for its sidecar", func(p *corev1.Pod) bool {
		for _, c := range p.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionFalse && c.Message == "containers with unready status: [second]" {
				return mainStatus(p).Ready
			}
		}
		return false
	})
	if err := os.WriteFile(filepath.Join(out, "ready"), nil, 0o644); err != nil {
		e.t.Fatal(err)
	}
	e.waitPod("web", "Ready", func(p *corev1.Pod) bool {
		return condition(p, corev1.PodReady) == corev1.ConditionTrue && statusOf(p.Status.InitContainerStatuses, "second").Ready
	})
	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "web", client.DeleteOptions{}); err != nil {
		e.t.Fatal(err)
	}
	e.waitGone("web")
	if got, want := order(out), []string{"start first", "start second", "start app", "TERM app", "TERM second", "TERM first"}; !slices.Equal(got, want) {
		e.t.Errorf("order %q, want %q", got, want)
	}
}

// subPathExpr on real containers: expanded from the container's environment, so a
// variable from an annotation that is not there yet holds the container in
// CreateContainerConfigError ("missing value"), until the annotation is set; an
// expansion to an absolute path is refused likewise.
func testContainerdSubPathExpr(e *env, rt *containerd.Runtime) {
	e.start(rt, ctrdConfig(e))
	out := e.t.TempDir()
	c := corev1.Container{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sh", "-c", "echo hello > /sub/file; sleep 3600"},
		Env: []corev1.EnvVar{{Name: "POD_NAME", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
			{Name: "DIR", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.annotations['dir']"}}}},
		VolumeMounts: []corev1.VolumeMount{{Name: "out", MountPath: "/sub", SubPathExpr: "$(DIR)/$(POD_NAME)"}}}
	vol := []corev1.Volume{{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: out, Type: new(corev1.HostPathDirectory)}}}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "expr"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(1)),
		Volumes: vol, Containers: []corev1.Container{c}}})
	p := e.waitPod("expr", "held for its missing variable", func(p *corev1.Pod) bool {
		w := mainStatus(p).State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError" && w.Message == "missing value for DIR"
	})
	p.Annotations = map[string]string{"dir": "logs"}
	if _, err := e.cs.Pods.Update(e.ctx, p); err != nil {
		e.t.Fatal(err)
	}
	e.waitPod("expr", "Running, writing in its subpath", func(p *corev1.Pod) bool {
		b, _ := os.ReadFile(filepath.Join(out, "logs", "expr", "file"))
		return p.Status.Phase == corev1.PodRunning && string(b) == "hello\n"
	})

	abs := c
	abs.Env = []corev1.EnvVar{{Name: "DIR", Value: "/tmp"}}
	abs.VolumeMounts = []corev1.VolumeMount{{Name: "out", MountPath: "/sub", SubPathExpr: "$(DIR)"}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "abs"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(1)),
		Volumes: vol, Containers: []corev1.Container{abs}}})
	e.waitPod("abs", "refused its absolute subpath", func(p *corev1.Pod) bool {
		w := mainStatus(p).State.Waiting
		return w != nil && w.Reason == "CreateContainerConfigError" && w.Message == "error SubPath `/tmp` must not be an absolute path"
	})
}
