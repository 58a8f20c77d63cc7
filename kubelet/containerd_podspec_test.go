package kubelet_test

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/kubelet/crilog"
	"github.com/skiffhq/skiff/test/freeport"
	"github.com/skiffhq/skiff/test/registrytest"
)

// ctrdConfig is testConfig for real containers: pods' files written, volumes on tmpfs,
// and the node on loopback, where the kubelet's probes dial.
func ctrdConfig(e *env) kubelet.Config {
	cfg := testConfig(e.node)
	e.rootDir = e.t.TempDir()
	cfg.NodeIP, cfg.RootDir = "127.0.0.1", e.rootDir
	cfg.ContainerFiles, cfg.Tmpfs = true, os.Geteuid() == 0
	return cfg
}

func (e *env) logs(rt kubelet.Runtime, p *corev1.Pod, container string) string {
	e.t.Helper()
	id := strings.TrimPrefix(statusOf(p.Status.ContainerStatuses, container).ContainerID, "containerd://")
	var b bytes.Buffer
	rt.Logs(e.ctx, id, crilog.NewDecoder(crilog.NewPrinter(&b, crilog.Options{})), false) // what the container wrote
	return b.String()
}

// waitLogs waits until a container's output holds want.
func (e *env) waitLogs(rt kubelet.Runtime, name, container, want string) {
	e.t.Helper()
	e.waitPod(name, fmt.Sprintf("%s saying %q", container, want), func(p *corev1.Pod) bool {
		return strings.Contains(e.logs(rt, p, container), want)
	})
}

// Probes against real processes: busybox httpd answers an httpGet readiness probe; a
// tcpSocket liveness probe on a port nothing listens on restarts the container.
func testContainerdProbes(e *env, rt *containerd.Runtime) {
	e.start(rt, ctrdConfig(e))
	port := freeport.Loopback(e.t, 1)[0] // pods use the host's network
	web := corev1.Container{Name: "web", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sh", "-c", fmt.Sprintf("mkdir -p /tmp/www && echo ok > /tmp/www/healthz && httpd -f -p 127.0.0.1:%d -h /tmp/www", port)},
		Ports:   []corev1.ContainerPort{{Name: "http", ContainerPort: int32(port)}},
		ReadinessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
			PeriodSeconds: 1},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(port))}},
			PeriodSeconds: 1},
	}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(1)), Containers: []corev1.Container{web}}})
	e.waitPod("web", "Ready through its httpGet probe", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue })

	dead := corev1.Container{Name: "dead", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"},
		LivenessProbe: &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(int32(closedPort(e)))}},
			PeriodSeconds: 1, FailureThreshold: 1, TerminationGracePeriodSeconds: new(int64(1))}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "dead"}, Spec: corev1.PodSpec{Containers: []corev1.Container{dead}}})
	e.waitPod("dead", "restarted by its liveness probe", func(p *corev1.Pod) bool { return mainStatus(p).RestartCount >= 1 })
	e.waitEvents("dead", "Unhealthy", "Killing")
}

// Resources through cgroups: the container's limits (CFS quota, shares, memory) in its
// cgroup, the pod's budget in the pod's cgroup, where Kubernetes puts a Burstable pod;
// emptyDirs sized by their pod's memory, or evicting it when over their sizeLimit; a
// container writing past its limits.ephemeral-storage evicting its pod.
func testContainerdResources(e *env, rt *containerd.Runtime) {
	e.start(rt, ctrdConfig(e))
	c := corev1.Container{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"},
		Resources: corev1.ResourceRequirements{
			Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("250m"), corev1.ResourceMemory: resource.MustParse("32Mi")},
			Limits:   corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m"), corev1.ResourceMemory: resource.MustParse("64Mi")}}}
	p := e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "limited"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(1)), Containers: []corev1.Container{c}}})
	p = e.waitPod("limited", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if p.Status.QOSClass != corev1.PodQOSBurstable {
		e.t.Errorf("qosClass %s", p.Status.QOSClass)
	}
	pod := "/skiff-resources/burstable/pod" + string(p.UID)
	ctr := pod + "/" + strings.TrimPrefix(mainStatus(p).ContainerID, "containerd://")
	read := func(path string) string {
		for _, f := range []string{"/sys/fs/cgroup/" + path, "/sys/fs/cgroup/unified/" + path} {
			if b, err := os.ReadFile(f); err == nil {
				return strings.TrimSpace(string(b))
			}
		}
		return "(missing)"
	}
	if _, err := os.Stat("/sys/fs/cgroup/cpu"); err == nil { // cgroup v1
		for path, want := range map[string]string{
			"cpu" + ctr + "/cpu.cfs_quota_us": "50000", "cpu" + ctr + "/cpu.shares": "256", "memory" + ctr + "/memory.limit_in_bytes": strconv.Itoa(64 << 20),
			"cpu" + pod + "/cpu.cfs_quota_us": "50000", "cpu" + pod + "/cpu.shares": "256", "memory" + pod + "/memory.limit_in_bytes": strconv.Itoa(64 << 20),
		} {
			if got := read(path); got != want {
				e.t.Errorf("%s = %s, want %s", path, got, want)
			}
		}
	} else {
		for path, want := range map[string]string{
			ctr + "/cpu.max": "50000 100000", ctr + "/memory.max": strconv.Itoa(64 << 20),
			pod + "/cpu.max": "50000 100000", pod + "/memory.max": strconv.Itoa(64 << 20),
		} {
			if got := read(path); got != want {
				e.t.Errorf("%s = %s, want %s", path, got, want)
			}
		}
	}
	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "limited", clientDelete()); err != nil {
		e.t.Fatal(err)
	}
	e.waitGone("limited")
	if _, err := os.Stat("/sys/fs/cgroup/memory" + pod); err == nil {
		e.t.Errorf("the pod's cgroup %s outlived it", pod)
	}

	// A memory emptyDir without a sizeLimit is as big as the pod's memory limit; a
	// container writing more than a disk emptyDir's sizeLimit gets its pod evicted.
	limit := resource.MustParse("1Mi")
	filler := corev1.Container{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command:      []string{"sh", "-c", "until [ -e /cache/go ]; do sleep 1; done; dd if=/dev/zero of=/cache/fill bs=1024 count=4096; sleep 3600"},
		VolumeMounts: []corev1.VolumeMount{{Name: "cache", MountPath: "/cache"}, {Name: "mem", MountPath: "/mem"}},
		Resources:    corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("48Mi")}}}
	p = e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "filler"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(30)),
		Containers: []corev1.Container{filler},
		Volumes: []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &limit}}},
			{Name: "mem", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{Medium: corev1.StorageMediumMemory}}}}}})
	e.waitPod("filler", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	vols := e.volumesDir(p)
	var st unix.Statfs_t
	if err := unix.Statfs(vols+"/kubernetes.io~empty-dir/mem", &st); err != nil || st.Type != unix.TMPFS_MAGIC || int64(st.Blocks)*st.Bsize != 48<<20 {
		e.t.Errorf("memory emptyDir: type %x, %d bytes (%v); want a tmpfs of 48Mi", st.Type, int64(st.Blocks)*st.Bsize, err)
	}
	if err := os.WriteFile(vols+"/kubernetes.io~empty-dir/cache/go", nil, 0o644); err != nil {
		e.t.Fatal(err)
	}
	p = e.waitPod("filler", "evicted", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodFailed && mainStatus(p).State.Terminated != nil
	})
	if p.Status.Reason != "Evicted" || p.Status.Message != `Usage of EmptyDir volume "cache" exceeds the limit "1Mi". ` {
		e.t.Errorf("evicted pod's status: %q %q", p.Status.Reason, p.Status.Message)
	}

	// A container writing more than its limits.ephemeral-storage into its own root
	// filesystem (its snapshot's writable layer) gets its pod evicted.
	writer := corev1.Container{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command:   []string{"sh", "-c", "dd if=/dev/zero of=/fill bs=1024 count=4096; sleep 3600"},
		Resources: corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("2Mi")}}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "writer"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(30)),
		Containers: []corev1.Container{writer}}})
	p = e.waitPod("writer", "evicted", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodFailed && mainStatus(p).State.Terminated != nil
	})
	if want := "Pod ephemeral local storage usage exceeds the total limit of containers 2Mi. "; p.Status.Reason != "Evicted" || p.Status.Message != want {
		e.t.Errorf("evicted pod's status: %q %q, want Evicted %q", p.Status.Reason, p.Status.Message, want)
	}
}

// volumesDir is the directory of a pod's volumes on the kubelet's node.
func (e *env) volumesDir(p *corev1.Pod) string {
	return e.rootDir + "/pods/" + string(p.UID) + "/volumes"
}

// securityContext through the OCI spec: capabilities, no_new_privs, privileged,
// sysctls, the hostname, and runAsNonRoot refusing an image that runs as root.
func testContainerdSecurity(e *env, rt *containerd.Runtime) {
	e.start(rt, ctrdConfig(e))
	caps := corev1.Container{Name: "caps", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sh", "-c", "grep CapEff /proc/self/status; sysctl -n kernel.shm_rmid_forced 2>/dev/null || cat /proc/sys/kernel/shm_rmid_forced; hostname; grep NoNewPrivs /proc/self/status; sleep 3600"},
		SecurityContext: &corev1.SecurityContext{Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}, Add: []corev1.Capability{"NET_ADMIN"}},
			AllowPrivilegeEscalation: new(false)}}
	priv := corev1.Container{Name: "priv", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command:         []string{"sh", "-c", "grep CapEff /proc/self/status; sleep 3600"},
		SecurityContext: &corev1.SecurityContext{Privileged: new(true)}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sec"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(1)),
		Hostname:        "box",
		SecurityContext: &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "kernel.shm_rmid_forced", Value: "1"}}},
		Containers:      []corev1.Container{caps, priv}}})
	e.waitLogs(rt, "sec", "caps", "CapEff:\t0000000000001000\n1\nbox\nNoNewPrivs:\t1\n")
	// Privileged: every capability the kubelet itself may hand on (its bounding set).
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		e.t.Fatal(err)
	}
	_, bnd, _ := strings.Cut(string(status), "CapBnd:\t")
	bnd, _, _ = strings.Cut(bnd, "\n")
	e.waitLogs(rt, "sec", "priv", "CapEff:\t"+bnd+"\n")

	root := corev1.Container{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"},
		SecurityContext: &corev1.SecurityContext{RunAsNonRoot: new(true)}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "nonroot"}, Spec: corev1.PodSpec{Containers: []corev1.Container{root}}})
	e.waitPod("nonroot", "refused for running as root", func(p *corev1.Pod) bool {
		w := waiting(mainStatus(p))
		return w.Reason == "CreateContainerConfigError" && strings.HasPrefix(w.Message, "container has runAsNonRoot and image will run as root")
	})
}

// imagePullSecrets: an image in a registry that asks for a login is pulled with the
// pod's kubernetes.io/dockerconfigjson Secret, and not without it.
func testContainerdPullSecret(e *env, rt *containerd.Runtime) {
	reg := registrytest.StartWithAuth(e.t)
	data, err := containerd.BusyboxArchive("/bin/busybox", "docker.io/library/busybox:private")
	if err != nil {
		e.t.Skip(err)
	}
	registrytest.PushArchive(e.t, reg, registrytest.User, registrytest.Password, data, "team/app", "v1")
	image := reg + "/team/app:v1"
	e.start(rt, ctrdConfig(e))
	c := corev1.Container{Name: "app", Image: image, Command: []string{"sleep", "3600"}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "anonymous"}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}})
	e.waitPod("anonymous", "refused by the registry", func(p *corev1.Pod) bool {
		w := waiting(mainStatus(p))
		return (w.Reason == "ErrImagePull" || w.Reason == "ImagePullBackOff") && p.Status.Phase == corev1.PodPending
	})
	auth := fmt.Sprintf(`{"auths":{%q:{"username":%q,"password":%q}}}`, "http://"+reg, registrytest.User, registrytest.Password)
	if _, err := e.cs.Secrets.Create(e.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "regcred"},
		Type: corev1.SecretTypeDockerConfigJson, Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(auth)}}); err != nil {
		e.t.Fatal(err)
	}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "private"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(1)),
		Containers: []corev1.Container{c}, ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}}}})
	e.waitPod("private", "Running, pulled with its secret", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
}

// Lifecycle hooks, a claim's volume and termination messages in real containers:
// postStart runs once the container started, preStop before it is stopped (both write
// to a hostPath the test reads), within the grace period; a claim's hostPath volume is
// made and mounted; a container's message is its terminationMessagePath file (made
// valid UTF-8, which the API requires), or with FallbackToLogsOnError the end of its
// output when it failed, its last line without a newline included (while the shim
// still holds the streams open).
func testContainerdHooks(e *env, rt *containerd.Runtime) {
	e.start(rt, ctrdConfig(e))
	out := e.t.TempDir()
	hook := func(cmd string) *corev1.LifecycleHandler {
		return &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", cmd}}}
	}
	app := corev1.Container{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"},
		VolumeMounts: []corev1.VolumeMount{{Name: "out", MountPath: "/out"}},
		Lifecycle:    &corev1.Lifecycle{PostStart: hook("echo started > /out/poststart"), PreStop: hook("echo stopping > /out/prestop")}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "hooked"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(5)),
		Volumes: []corev1.Volume{{Name: "out", VolumeSource: corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: out,
			Type: new(corev1.HostPathDirectory)}}}},
		Containers: []corev1.Container{app}}})
	e.waitPod("hooked", "Running, its postStart hook run", func(p *corev1.Pod) bool {
		b, _ := os.ReadFile(out + "/poststart")
		return p.Status.Phase == corev1.PodRunning && string(b) == "started\n"
	})
	if _, err := os.Stat(out + "/prestop"); err == nil {
		e.t.Fatal("preStop ran before the pod was deleted")
	}
	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "hooked", clientDelete()); err != nil {
		e.t.Fatal(err)
	}
	e.waitGone("hooked")
	if b, err := os.ReadFile(out + "/prestop"); err != nil || string(b) != "stopping\n" {
		e.t.Errorf("preStop hook's file: %q, %v", b, err)
	}

	// A preStop hook longer than the grace period is cut short by it: the container is
	// stopped within grace (and minStopGrace after it), not after the hook's ten minutes.
	slow := corev1.Container{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sleep", "3600"},
		Lifecycle: &corev1.Lifecycle{PreStop: hook("sleep 600")}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "slowstop"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(2)),
		Containers: []corev1.Container{slow}}})
	e.waitPod("slowstop", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	began := time.Now()
	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "slowstop", clientDelete()); err != nil {
		e.t.Fatal(err)
	}
	e.waitGone("slowstop")
	if took := time.Since(began); took > time.Minute {
		e.t.Errorf("a pod with a 2s grace period and a 600s preStop hook took %v to go", took)
	}

	// A claim's volume: the hostPath its claim is bound to, made (DirectoryOrCreate) and
	// mounted; what the container writes there is on the node.
	data := out + "/claimed"
	e.boundClaim("data", data)
	writer := corev1.Container{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command:      []string{"sh", "-c", "echo kept > /data/file; sleep 3600"},
		VolumeMounts: []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "claimed"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(1)),
		Volumes:    []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}}},
		Containers: []corev1.Container{writer}}})
	e.waitPod("claimed", "Running, its file written to its claim's volume", func(p *corev1.Pod) bool {
		b, _ := os.ReadFile(data + "/file")
		return p.Status.Phase == corev1.PodRunning && string(b) == "kept\n"
	})

	file := corev1.Container{Name: "file", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sh", "-c", "echo 'config missing' > /dev/termination-log; exit 2"}}
	logs := corev1.Container{Name: "logs", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sh", "-c", "echo starting; echo last words; printf DONE; exit 3"}, TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError}
	binary := corev1.Container{Name: "binary", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sh", "-c", `printf '\377bad' > /dev/termination-log; exit 1`}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "messages"}, Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
		Containers: []corev1.Container{file, logs, binary}}})
	p := e.waitPod("messages", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	for name, want := range map[string]string{"file": "config missing\n", "logs": "starting\nlast words\nDONE", "binary": "\uFFFDbad"} {
		if got := terminated(statusOf(p.Status.ContainerStatuses, name)).Message; got != want {
			e.t.Errorf("container %s: termination message %q, want %q", name, got, want)
		}
	}

	// A pod of one such container, as the conformance test's: its exit is seen at once,
	// before the logging program has written the last line (it waits for the line's end
	// a moment), so the kubelet reads the log once it has settled (LogSettler). Without
	// that, the message was empty in most runs.
	for i := range 3 {
		name := fmt.Sprint("lastwords-", i)
		e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
			Containers: []corev1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
				Command: []string{"sh", "-c", "printf DONE; exit 1"}, TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError}}}})
	}
	for i := range 3 {
		name := fmt.Sprint("lastwords-", i)
		p := e.waitPod(name, "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
		if got := terminated(statusOf(p.Status.ContainerStatuses, "app")).Message; got != "DONE" {
			e.t.Errorf("pod %s: termination message %q, want %q", name, got, "DONE")
		}
	}
}

// A StatefulSet-style pod on real containers: its host name (UTS) is spec.hostname,
// its /etc/hosts names it by its fully qualified name hostname.subdomain.ns.svc.DOMAIN,
// and its environment has the Services' variables (enableServiceLinks).
func testContainerdHostsAndServiceLinks(e *env, rt *containerd.Runtime) {
	web, err := e.cs.Services.Create(e.ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "web"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{{Name: "http", Port: 80}}}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.start(rt, ctrdConfig(e))
	ip := web.Spec.ClusterIP
	c := corev1.Container{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent,
		Command: []string{"sh", "-c", "hostname; env | grep -E '^(WEB|KUBERNETES)_SERVICE_(HOST|PORT_HTTP)=' | sort; tail -n 1 /etc/hosts; echo end; sleep 3600"}}
	p := e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web-0"}, Spec: corev1.PodSpec{TerminationGracePeriodSeconds: new(int64(1)),
		Hostname: "web-0", Subdomain: "nginx", Containers: []corev1.Container{c}}})
	p = e.waitPod(p.Name, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning && p.Status.PodIP != "" })
	api, err := e.cs.Services.Get(e.ctx, "default", "kubernetes")
	if err != nil {
		e.t.Fatal(err)
	}
	e.waitLogs(rt, "web-0", "app", "web-0\nKUBERNETES_SERVICE_HOST="+api.Spec.ClusterIP+"\nWEB_SERVICE_HOST="+ip+"\nWEB_SERVICE_PORT_HTTP=80\n"+
		p.Status.PodIP+"\tweb-0.nginx."+e.ns+".svc.cluster.local\tweb-0\nend\n")
}
