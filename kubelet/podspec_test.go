package kubelet_test

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/sim"
	"github.com/skiffhq/skiff/test/waitfor"
)

// The pod spec's fields on the simulated runtime, each as Kubernetes' kubelet acts on
// it. (test/e2e TestPodSpecManifests runs documentation-style manifests through skiff up
// on both runtimes.)

// configMap creates the ConfigMap name of data in the test's namespace.
func (e *env) configMap(name string, data map[string]string) {
	e.t.Helper()
	if _, err := e.cs.ConfigMaps.Create(e.ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name}, Data: data}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) create(p *corev1.Pod) *corev1.Pod {
	e.t.Helper()
	p.Namespace = e.ns
	if p.Spec.NodeName == "" {
		p.Spec.NodeName = e.node
	}
	out, err := e.cs.Pods.Create(e.ctx, p)
	if err != nil {
		e.t.Fatalf("create pod %s: %v", p.Name, err)
	}
	return out
}

// boundClaim makes claim name in e's namespace and a hostPath volume at path bound to
// it, as the local-path provisioner and the volume binder leave them.
func (e *env) boundClaim(name, path string) *corev1.PersistentVolume {
	e.t.Helper()
	claim, err := e.cs.PersistentVolumeClaims.Create(e.ctx, &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: name},
		Spec: corev1.PersistentVolumeClaimSpec{AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: new(""),
			Resources: corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")}}}})
	if err != nil {
		e.t.Fatal(err)
	}
	pv, err := e.cs.PersistentVolumes.Create(e.ctx, &corev1.PersistentVolume{ObjectMeta: metav1.ObjectMeta{Name: "pv-" + e.ns + "-" + name},
		Spec: corev1.PersistentVolumeSpec{Capacity: corev1.ResourceList{corev1.ResourceStorage: resource.MustParse("1Gi")},
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce}, StorageClassName: "",
			PersistentVolumeSource: corev1.PersistentVolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: path, Type: new(corev1.HostPathDirectoryOrCreate)}},
			ClaimRef:               &corev1.ObjectReference{Kind: "PersistentVolumeClaim", APIVersion: "v1", Namespace: e.ns, Name: name, UID: claim.UID}}})
	if err != nil {
		e.t.Fatal(err)
	}
	claim.Spec.VolumeName = pv.Name
	if claim, err = e.cs.PersistentVolumeClaims.Update(e.ctx, claim); err != nil {
		e.t.Fatal(err)
	}
	claim.Status.Phase = corev1.ClaimBound
	if _, err := e.cs.PersistentVolumeClaims.UpdateStatus(e.ctx, claim); err != nil {
		e.t.Fatal(err)
	}
	return pv
}

func container(name string, command ...string) corev1.Container {
	return corev1.Container{Name: name, Image: "busybox:1.36", Command: command}
}

func statusOf(statuses []corev1.ContainerStatus, name string) corev1.ContainerStatus {
	for _, cs := range statuses {
		if cs.Name == name {
			return cs
		}
	}
	return corev1.ContainerStatus{}
}

// Env from a ConfigMap, a Secret, the pod's fields and its resources; a missing key
// holds the container in CreateContainerConfigError until the key is there.
func testEnvFrom(e *env) {
	t := e.t
	rt := sim.New(sim.Config{})
	e.start(rt, testConfig(e.node))
	e.configMap("cfg", map[string]string{"LEVEL": "very", "MODE": "fast", "1bad": "x"})
	if _, err := e.cs.Secrets.Create(e.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "creds"},
		Data: map[string][]byte{"password": []byte("hunter2")}}); err != nil {
		t.Fatal(err)
	}
	c := container("app", "sh", "-c", "echo $(LEVEL) $(PASSWORD); sleep 3600")
	c.Resources.Limits = corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("64Mi")}
	c.EnvFrom = []corev1.EnvFromSource{{Prefix: "CFG_", ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}},
		{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}}}} // 1bad is a name too (Kubernetes' relaxed rule: printable ASCII but '=')
	c.Env = []corev1.EnvVar{
		{Name: "LEVEL", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "LEVEL"}}},
		{Name: "PASSWORD", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "creds"}, Key: "password"}}},
		{Name: "POD", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}},
		{Name: "APP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels['app']"}}},
		{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
		{Name: "IP", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "status.podIP"}}},
		{Name: "MEM", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.memory", Divisor: resource.MustParse("1Mi")}}},
		{Name: "CPU", ValueFrom: &corev1.EnvVarSource{ResourceFieldRef: &corev1.ResourceFieldSelector{Resource: "limits.cpu"}}},
		{Name: "GREETING", Value: "level $(LEVEL), $$(LEVEL) and $(UNDEFINED)"},
		{Name: "OPTIONAL", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: "none"}, Key: "k", Optional: new(true)}}},
	}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "env", Labels: map[string]string{"app": "web"}}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}})
	p := e.waitPod("env", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	id := strings.TrimPrefix(mainStatus(p).ContainerID, "sim://")
	cfg, ok := rt.Config(id)
	if !ok {
		t.Fatalf("no container %s", id)
	}
	want := []string{"CFG_1bad=x", "CFG_LEVEL=very", "CFG_MODE=fast", "1bad=x", "LEVEL=very", "MODE=fast", "PASSWORD=hunter2", "POD=env", "APP=web", "NODE=" + e.node,
		"IP=10.1.2.3", "MEM=64", "CPU=4", "GREETING=level very, $(LEVEL) and $(UNDEFINED)"}
	// The API servers' kubernetes Service's variables follow (testServiceLinks).
	if got := slices.DeleteFunc(slices.Clone(cfg.Env), func(v string) bool { return strings.HasPrefix(v, "KUBERNETES_") }); !slices.Equal(got, want) {
		t.Errorf("env\n%q\nwant\n%q", got, want)
	}
	if got := strings.Join(cfg.Command, " "); got != "sh -c echo very hunter2; sleep 3600" {
		t.Errorf("command expanded to %q", got)
	}

	bad := container("app", "sleep", "3600")
	bad.Env = []corev1.EnvVar{{Name: "X", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{
		LocalObjectReference: corev1.LocalObjectReference{Name: "cfg"}, Key: "later"}}}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "missing"}, Spec: corev1.PodSpec{Containers: []corev1.Container{bad}}})
	e.waitPod("missing", "in CreateContainerConfigError", func(p *corev1.Pod) bool {
		w := waiting(mainStatus(p))
		return w.Reason == "CreateContainerConfigError" && w.Message == "couldn't find key later in ConfigMap "+e.ns+"/cfg" && p.Status.Phase == corev1.PodPending
	})
	e.waitEvents("missing", "Failed")
	cm, err := e.cs.ConfigMaps.Get(e.ctx, e.ns, "cfg")
	if err != nil {
		t.Fatal(err)
	}
	cm.Data["later"] = "now"
	if _, err := e.cs.ConfigMaps.Update(e.ctx, cm); err != nil {
		t.Fatal(err)
	}
	e.waitPod("missing", "Running once the key exists", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
}

// Services' variables (enableServiceLinks, Kubernetes' Docker-link variables): each
// Service with a cluster IP in the pod's namespace, and default/kubernetes always; a
// variable the container defines itself wins.
func testServiceLinks(e *env) {
	t := e.t
	web, err := e.cs.Services.Create(e.ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "web-front"},
		Spec: corev1.ServiceSpec{Selector: map[string]string{"app": "web"}, Ports: []corev1.ServicePort{
			{Name: "http", Port: 80, TargetPort: intstr.FromInt32(8080)}, {Name: "metrics", Port: 9090, Protocol: corev1.ProtocolUDP}}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.Services.Create(e.ctx, &corev1.Service{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "db"},
		Spec: corev1.ServiceSpec{ClusterIP: corev1.ClusterIPNone, Selector: map[string]string{"app": "db"}, Ports: []corev1.ServicePort{{Port: 5432}}}}); err != nil {
		t.Fatal(err)
	}
	api, err := e.cs.Services.Get(e.ctx, "default", "kubernetes")
	if err != nil {
		t.Fatal(err)
	}
	ip, kip := web.Spec.ClusterIP, api.Spec.ClusterIP
	rt := sim.New(sim.Config{})
	e.start(rt, testConfig(e.node)) // after the Services: its first list holds them
	c := container("app", "sh", "-c", "echo $(WEB_FRONT_SERVICE_HOST); sleep 3600")
	c.Env = []corev1.EnvVar{{Name: "WEB_FRONT_SERVICE_PORT", Value: "mine"}, {Name: "URL", Value: "http://$(WEB_FRONT_SERVICE_HOST):$(WEB_FRONT_SERVICE_PORT_HTTP)"}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "links"}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}})
	c.Env = nil
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "nolinks"}, Spec: corev1.PodSpec{EnableServiceLinks: new(false), Containers: []corev1.Container{c}}})
	kubernetes := []string{"KUBERNETES_PORT=tcp://" + kip + ":443", "KUBERNETES_PORT_443_TCP=tcp://" + kip + ":443",
		"KUBERNETES_PORT_443_TCP_ADDR=" + kip, "KUBERNETES_PORT_443_TCP_PORT=443", "KUBERNETES_PORT_443_TCP_PROTO=tcp",
		"KUBERNETES_SERVICE_HOST=" + kip, "KUBERNETES_SERVICE_PORT=443", "KUBERNETES_SERVICE_PORT_HTTPS=443"}
	for _, tc := range []struct {
		pod  string
		want []string
	}{
		{"links", append(append([]string{"WEB_FRONT_SERVICE_PORT=mine", "URL=http://" + ip + ":80"}, kubernetes...),
			"WEB_FRONT_PORT=tcp://"+ip+":80", "WEB_FRONT_PORT_80_TCP=tcp://"+ip+":80", "WEB_FRONT_PORT_80_TCP_ADDR="+ip,
			"WEB_FRONT_PORT_80_TCP_PORT=80", "WEB_FRONT_PORT_80_TCP_PROTO=tcp",
			"WEB_FRONT_PORT_9090_UDP=udp://"+ip+":9090", "WEB_FRONT_PORT_9090_UDP_ADDR="+ip, "WEB_FRONT_PORT_9090_UDP_PORT=9090",
			"WEB_FRONT_PORT_9090_UDP_PROTO=udp", "WEB_FRONT_SERVICE_HOST="+ip, "WEB_FRONT_SERVICE_PORT_HTTP=80", "WEB_FRONT_SERVICE_PORT_METRICS=9090")},
		{"nolinks", kubernetes},
	} {
		p := e.waitPod(tc.pod, "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
		cfg, ok := rt.Config(strings.TrimPrefix(mainStatus(p).ContainerID, "sim://"))
		if !ok {
			t.Fatalf("%s: no container", tc.pod)
		}
		if !slices.Equal(cfg.Env, tc.want) {
			t.Errorf("%s: env\n%q\nwant\n%q", tc.pod, cfg.Env, tc.want)
		}
	}
}

// Init containers run one at a time, in order, each to completion, before the app
// containers; a failed one runs again (restartPolicy Always), or fails the pod (Never).
func testInitContainers(e *env) {
	t := e.t
	rt := sim.New(sim.Config{})
	e.start(rt, testConfig(e.node))
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "init"}, Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{container("first", "sh", "-c", "sleep 0.3"), container("second", "sh", "-c", "echo done")},
		Containers:     []corev1.Container{container("app", "sleep", "3600")},
	}})
	p := e.waitPod("init", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if condition(p, corev1.PodInitialized) != corev1.ConditionTrue || len(p.Status.InitContainerStatuses) != 2 {
		t.Fatalf("status %+v", p.Status)
	}
	var ctrs []kubelet.Container
	for _, c := range e.waitContainers(rt, "ran three", func(l []kubelet.Container) bool { return len(l) == 3 }) {
		if c.PodName == "init" {
			ctrs = append(ctrs, c)
		}
	}
	slices.SortFunc(ctrs, func(a, b kubelet.Container) int { return a.CreatedAt.Compare(b.CreatedAt) })
	if len(ctrs) != 3 || ctrs[0].Name != "first" || ctrs[1].Name != "second" || ctrs[2].Name != "app" ||
		ctrs[1].CreatedAt.Before(ctrs[0].FinishedAt) || ctrs[2].CreatedAt.Before(ctrs[1].FinishedAt) {
		t.Errorf("order: %+v", ctrs)
	}
	for _, cs := range p.Status.InitContainerStatuses {
		if terminated(cs).Reason != "Completed" || !cs.Ready {
			t.Errorf("init container %s: %+v", cs.Name, cs)
		}
	}

	// Never: the failed init container fails the pod; the app never starts.
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "init-never"}, Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
		InitContainers: []corev1.Container{container("setup", "sh", "-c", "exit 2")},
		Containers:     []corev1.Container{container("app", "sleep", "3600")},
	}})
	p = e.waitPod("init-never", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if cs := statusOf(p.Status.InitContainerStatuses, "setup"); terminated(cs).ExitCode != 2 {
		t.Errorf("init status %+v", cs)
	}
	if cs := statusOf(p.Status.ContainerStatuses, "app"); cs.State.Running != nil || cs.ContainerID != "" {
		t.Errorf("the app container ran: %+v", cs)
	}

	// Always: it runs again, with back-off; the pod stays Pending, not initialized.
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "init-retry"}, Spec: corev1.PodSpec{
		InitContainers: []corev1.Container{container("setup", "sh", "-c", "exit 1")},
		Containers:     []corev1.Container{container("app", "sleep", "3600")},
	}})
	p = e.waitPod("init-retry", "restarting its init container", func(p *corev1.Pod) bool {
		return statusOf(p.Status.InitContainerStatuses, "setup").RestartCount >= 2
	})
	if p.Status.Phase != corev1.PodPending || condition(p, corev1.PodInitialized) != corev1.ConditionFalse {
		t.Errorf("pod %s, Initialized %s", p.Status.Phase, condition(p, corev1.PodInitialized))
	}
}

// Probes: readiness gates Ready; a startup probe holds liveness; a failed liveness probe
// restarts the container; hooks run, and a failed postStart kills the container.
func testProbesAndHooks(e *env) {
	t := e.t
	rt := sim.New(sim.Config{})
	e.start(rt, testConfig(e.node))
	ready := container("app", "sh", "-c", "sleep 1; touch /tmp/ready; sleep 3600")
	ready.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}}, PeriodSeconds: 1}
	ready.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}}
	ready.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}}, PeriodSeconds: 1}
	ready.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}}, PeriodSeconds: 1}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "ready"}, Spec: corev1.PodSpec{Containers: []corev1.Container{ready}}})
	p := e.waitPod("ready", "Running, not ready yet", func(p *corev1.Pod) bool { return mainStatus(p).State.Running != nil })
	if mainStatus(p).Ready && time.Since(mainStatus(p).State.Running.StartedAt.Time) < 900*time.Millisecond {
		t.Errorf("ready before its readiness probe could pass: %+v", mainStatus(p))
	}
	p = e.waitPod("ready", "Ready", func(p *corev1.Pod) bool { return condition(p, corev1.PodReady) == corev1.ConditionTrue })
	if cs := mainStatus(p); !cs.Ready || cs.Started == nil || !*cs.Started || cs.RestartCount != 0 {
		t.Errorf("status %+v", cs)
	}

	// A liveness probe on a port the container does not listen on: restarted, again and again.
	sick := container("app", "sleep", "3600")
	sick.LivenessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(9999)}},
		PeriodSeconds: 1, FailureThreshold: 2, TerminationGracePeriodSeconds: new(int64(1))}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "sick"}, Spec: corev1.PodSpec{Containers: []corev1.Container{sick}}})
	e.waitPod("sick", "restarted by its liveness probe", func(p *corev1.Pod) bool { return mainStatus(p).RestartCount >= 1 })
	e.waitEvents("sick", "Unhealthy", "Killing")

	// A startup probe that never passes holds the readiness probe (never ready), and
	// kills the container in the end.
	slow := container("app", "sh", "-c", "touch /tmp/ready; sleep 3600")
	slow.StartupProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/started"}}}, PeriodSeconds: 1, FailureThreshold: 2}
	slow.ReadinessProbe = &corev1.Probe{ProbeHandler: corev1.ProbeHandler{Exec: &corev1.ExecAction{Command: []string{"cat", "/tmp/ready"}}}, PeriodSeconds: 1}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "slow"}, Spec: corev1.PodSpec{Containers: []corev1.Container{slow}}})
	p = e.waitPod("slow", "restarted by its startup probe", func(p *corev1.Pod) bool { return mainStatus(p).RestartCount >= 1 })
	if condition(p, corev1.PodReady) == corev1.ConditionTrue {
		t.Errorf("ready though its startup probe never passed")
	}

	// postStart fails: the container is killed and restarted; preStop runs at deletion.
	hooked := container("app", "sleep", "3600")
	hooked.Lifecycle = &corev1.Lifecycle{
		PostStart: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo password=hunter2; exit 3"}}},
	}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "hooked"}, Spec: corev1.PodSpec{Containers: []corev1.Container{hooked}}})
	e.waitPod("hooked", "restarted after its postStart hook failed", func(p *corev1.Pod) bool { return mainStatus(p).RestartCount >= 1 })
	e.waitEvents("hooked", "FailedPostStartHook")
	// A hook's output may hold secrets: its events say only that it failed, as Kubernetes'.
	if got := e.eventMessages("hooked", "FailedPostStartHook"); !slices.Equal(got, []string{"PostStartHook failed"}) {
		t.Errorf("FailedPostStartHook events: %q", got)
	}

	stopping := container("app", "sleep", "3600")
	stopping.Lifecycle = &corev1.Lifecycle{PreStop: &corev1.LifecycleHandler{Exec: &corev1.ExecAction{Command: []string{"sh", "-c", "echo bye; exit 4"}}}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "stopping"}, Spec: corev1.PodSpec{Containers: []corev1.Container{stopping}}})
	e.waitPod("stopping", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "stopping", clientDelete()); err != nil {
		t.Fatal(err)
	}
	e.waitEvents("stopping", "FailedPreStopHook") // it ran (and failed, saying so)
	if got := e.eventMessages("stopping", "FailedPreStopHook"); !slices.Equal(got, []string{"PreStopHook failed"}) {
		t.Errorf("FailedPreStopHook events: %q", got)
	}
	e.waitGone("stopping")
}

// One of a fleet of simulated nodes (Config.SimulatedFleet) runs a pod whose configMap
// volume's ConfigMap exists, and not one whose ConfigMap is missing (FailedMount, as a
// real node), but writes no volume content under its root: no container reads it.
func testSimulatedNodeVolumes(e *env) {
	t := e.t
	cfg := testConfig(e.node).SimulatedFleet()
	cfg.RootDir = t.TempDir()
	e.start(sim.New(sim.Config{}), cfg)
	e.configMap("conf", map[string]string{"greeting": "hello"})
	withVolume := func(name, cm string) *corev1.Pod {
		app := container("app", "sleep", "3600")
		app.VolumeMounts = []corev1.VolumeMount{{Name: "conf", MountPath: "/etc/conf"}}
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{app},
			Volumes: []corev1.Volume{{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: cm}}}}}}}
	}
	e.create(withVolume("missing", "absent"))
	e.waitEvents("missing", "FailedMount")
	if p, err := e.cs.Pods.Get(e.ctx, e.ns, "missing"); err != nil || p.Status.Phase != corev1.PodPending {
		t.Errorf("the pod whose ConfigMap is missing: %v %v, want Pending", p.Status.Phase, err)
	}
	p := e.create(withVolume("vols", "conf"))
	p = e.waitPod("vols", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	dir := filepath.Join(cfg.RootDir, "pods", string(p.UID), "volumes", "kubernetes.io~configmap", "conf")
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a simulated node wrote its pod's configMap volume %s: %v", dir, err)
	}
}

// Volumes on the simulated runtime are real directories: a configMap volume follows its
// ConfigMap, a downwardAPI volume its pod's labels; an emptyDir is shared; a claim leaves the pod Pending, saying why; an
// emptyDir over its sizeLimit, or a pod over its limits.ephemeral-storage, gets the pod
// evicted; the pod's directory goes with it.
func testVolumes(e *env) {
	t := e.t
	rt := sim.New(sim.Config{})
	cfg := testConfig(e.node)
	cfg.RootDir = t.TempDir()
	e.start(rt, cfg)
	e.configMap("conf", map[string]string{"greeting": "hello"})
	app := container("app", "sleep", "3600")
	app.VolumeMounts = []corev1.VolumeMount{{Name: "conf", MountPath: "/etc/conf"}, {Name: "scratch", MountPath: "/scratch", SubPath: "app"}}
	side := container("side", "sleep", "3600")
	side.VolumeMounts = []corev1.VolumeMount{{Name: "scratch", MountPath: "/shared"}}
	p := e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "vols"}, Spec: corev1.PodSpec{
		Containers: []corev1.Container{app, side},
		Volumes: []corev1.Volume{
			{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: "conf"}}}},
			{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
		}}})
	p = e.waitPod("vols", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	podDir := filepath.Join(cfg.RootDir, "pods", string(p.UID))
	file := filepath.Join(podDir, "volumes", "kubernetes.io~configmap", "conf", "greeting")
	if b, err := os.ReadFile(file); err != nil || string(b) != "hello" {
		t.Fatalf("configMap file: %q %v", b, err)
	}
	appCfg, _ := rt.Config(strings.TrimPrefix(statusOf(p.Status.ContainerStatuses, "app").ContainerID, "sim://"))
	sideCfg, _ := rt.Config(strings.TrimPrefix(statusOf(p.Status.ContainerStatuses, "side").ContainerID, "sim://"))
	scratch := filepath.Join(podDir, "volumes", "kubernetes.io~empty-dir", "scratch")
	wantApp := []kubelet.Mount{{HostPath: filepath.Dir(file), ContainerPath: "/etc/conf", ReadOnly: true}, {HostPath: filepath.Join(scratch, "app"), ContainerPath: "/scratch"}}
	if !slices.Equal(appCfg.Mounts, wantApp) || !slices.Equal(sideCfg.Mounts, []kubelet.Mount{{HostPath: scratch, ContainerPath: "/shared"}}) {
		t.Errorf("mounts: app %+v, side %+v", appCfg.Mounts, sideCfg.Mounts)
	}
	cm, _ := e.cs.ConfigMaps.Get(e.ctx, e.ns, "conf")
	cm.Data["greeting"] = "bonjour"
	if _, err := e.cs.ConfigMaps.Update(e.ctx, cm); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 20*time.Second, "the configMap file updated", func() (bool, string) {
		b, _ := os.ReadFile(file)
		return string(b) == "bonjour", string(b)
	})

	// A downwardAPI volume follows the pod's labels.
	labelled := e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "labelled", Labels: map[string]string{"tier": "web"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{container("app", "sleep", "3600")},
			Volumes: []corev1.Volume{{Name: "podinfo", VolumeSource: corev1.VolumeSource{DownwardAPI: &corev1.DownwardAPIVolumeSource{
				Items: []corev1.DownwardAPIVolumeFile{{Path: "labels", FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.labels"}}}}}}}}})
	labels := filepath.Join(cfg.RootDir, "pods", string(labelled.UID), "volumes", "kubernetes.io~downward-api", "podinfo", "labels")
	waitfor.Condition(t, 20*time.Second, "the labels file written", func() (bool, string) {
		b, _ := os.ReadFile(labels)
		return string(b) == `tier="web"`, string(b)
	})
	// The kubelet writes the pod's status meanwhile: retry on a conflict.
	waitfor.ConditionErr(t, 20*time.Second, "the pod's labels updated", func() (bool, error) {
		labelled, err := e.cs.Pods.Get(e.ctx, e.ns, "labelled")
		if err != nil {
			return false, err
		}
		labelled.Labels["tier"] = "db"
		if _, err := e.cs.Pods.Update(e.ctx, labelled); client.IsConflict(err) {
			return false, nil
		} else if err != nil {
			return false, err
		}
		return true, nil
	})
	waitfor.Condition(t, 20*time.Second, "the labels file updated", func() (bool, string) {
		b, _ := os.ReadFile(labels)
		return string(b) == `tier="db"`, string(b)
	})

	claim := container("app", "sleep", "3600")
	claim.VolumeMounts = []corev1.VolumeMount{{Name: "data", MountPath: "/data"}}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "claim"}, Spec: corev1.PodSpec{Containers: []corev1.Container{claim},
		Volumes: []corev1.Volume{{Name: "data", VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data", ReadOnly: true}}}}}})
	e.waitPod("claim", "Pending, its volume not ready", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodPending && condition(p, corev1.PodReadyToStartContainers) == corev1.ConditionFalse &&
			waiting(mainStatus(p)).Reason == "ContainerCreating"
	})
	e.waitEvents("claim", "FailedMount")
	// Once the claim exists and is bound to a volume, the pod runs with the volume's
	// path mounted, read-only as the pod's claim says (on a simulated node, the path is
	// not made on this machine).
	pv := e.boundClaim("data", "/var/lib/skiff/local-path/pvc-sim_data")
	p = e.waitPod("claim", "Running once its claim is bound", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	claimCfg, _ := rt.Config(strings.TrimPrefix(mainStatus(p).ContainerID, "sim://"))
	if want := []kubelet.Mount{{HostPath: pv.Spec.HostPath.Path, ContainerPath: "/data", ReadOnly: true}}; !slices.Equal(claimCfg.Mounts, want) {
		t.Errorf("claim's mounts %+v, want %+v", claimCfg.Mounts, want)
	}
	if _, err := os.Stat(pv.Spec.HostPath.Path); err == nil {
		t.Errorf("a simulated node made %s on this machine", pv.Spec.HostPath.Path)
	}

	// An emptyDir over its sizeLimit gets the pod evicted, as Kubernetes' eviction manager
	// does; the files a simulated container would write, the test writes.
	limit := resource.MustParse("1Mi")
	p2 := e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "filler"}, Spec: corev1.PodSpec{Containers: []corev1.Container{container("app", "sleep", "3600")},
		Volumes: []corev1.Volume{{Name: "cache", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: &limit}}}}}})
	e.waitPod("filler", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	cache := filepath.Join(cfg.RootDir, "pods", string(p2.UID), "volumes", "kubernetes.io~empty-dir", "cache")
	if err := os.WriteFile(filepath.Join(cache, "half"), make([]byte, 512<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	e.waitPod("filler", "still Running, under its limit", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err := os.WriteFile(filepath.Join(cache, "more"), make([]byte, 1<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	p2 = e.waitPod("filler", "evicted, its container stopped", func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodFailed && mainStatus(p).State.Terminated != nil
	})
	if p2.Status.Reason != "Evicted" || p2.Status.Message != `Usage of EmptyDir volume "cache" exceeds the limit "1Mi". ` {
		t.Errorf("evicted pod's status: %q %q", p2.Status.Reason, p2.Status.Message)
	}
	e.waitEvents("filler", "Evicted", "Killing")

	// limits.ephemeral-storage: a container writing more than its own limit gets its pod
	// evicted; so does a pod whose emptyDir and containers together use more than its
	// containers' limits add up to.
	mi := resource.MustParse("1Mi")
	limited := func(name string) corev1.Container {
		c := container(name, "sleep", "3600")
		c.Resources.Limits = corev1.ResourceList{corev1.ResourceEphemeralStorage: mi}
		return c
	}
	p3 := e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "writer"}, Spec: corev1.PodSpec{Containers: []corev1.Container{limited("a"), limited("b")}}})
	p3 = e.waitPod("writer", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err := rt.SetWritten(strings.TrimPrefix(statusOf(p3.Status.ContainerStatuses, "b").ContainerID, "sim://"), 1536<<10); err != nil {
		t.Fatal(err)
	}
	p3 = e.waitPod("writer", "evicted", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if want := `Container b exceeded its local ephemeral storage limit "1Mi". `; p3.Status.Reason != "Evicted" || p3.Status.Message != want {
		t.Errorf("evicted pod's status: %q %q, want Evicted %q", p3.Status.Reason, p3.Status.Message, want)
	}
	p4 := e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "scratcher"}, Spec: corev1.PodSpec{Containers: []corev1.Container{limited("a")},
		Volumes: []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}}})
	e.waitPod("scratcher", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if err := os.WriteFile(filepath.Join(cfg.RootDir, "pods", string(p4.UID), "volumes", "kubernetes.io~empty-dir", "scratch", "big"), make([]byte, 1536<<10), 0o644); err != nil {
		t.Fatal(err)
	}
	p4 = e.waitPod("scratcher", "evicted", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if want := "Pod ephemeral local storage usage exceeds the total limit of containers 1Mi. "; p4.Status.Reason != "Evicted" || p4.Status.Message != want {
		t.Errorf("evicted pod's status: %q %q, want Evicted %q", p4.Status.Reason, p4.Status.Message, want)
	}

	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "vols", clientDelete()); err != nil {
		t.Fatal(err)
	}
	e.waitGone("vols")
	if _, err := os.Stat(podDir); !os.IsNotExist(err) {
		t.Errorf("the pod's directory is still there: %v", err)
	}
}

// A pod asking for a host port another pod of the node holds is refused before anything
// of it runs (Kubernetes' NodePorts admission, which StatefulSet's "Should recreate
// evicted statefulset" counts on); another port, another protocol or another address
// is free, and the port is free again once its holder is gone.
func testHostPortAdmission(e *env) {
	t := e.t
	e.start(sim.New(sim.Config{}), testConfig(e.node))
	withPorts := func(name string, ports ...corev1.ContainerPort) *corev1.Pod {
		c := container("app", "sleep", "3600")
		c.Ports = ports
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{Containers: []corev1.Container{c}}}
	}
	port := corev1.ContainerPort{Name: "conflict", ContainerPort: 21017, HostPort: 21017}
	running := func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning }
	e.create(withPorts("holder", port))
	e.waitPod("holder", "Running", running)

	e.create(withPorts("conflict", port))
	p := e.waitPod("conflict", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if want := "Pod was rejected: Predicate NodePorts failed: node(s) didn't have free ports for the requested pod ports"; p.Status.Reason != "NodePorts" || p.Status.Message != want {
		t.Errorf("conflicting pod's status: %q %q, want NodePorts %q", p.Status.Reason, p.Status.Message, want)
	}
	if cs := mainStatus(p); cs.State.Running != nil || cs.State.Terminated != nil && !cs.State.Terminated.StartedAt.IsZero() {
		t.Errorf("the conflicting pod's container ran: %+v", cs.State)
	}
	e.waitEvents("conflict", "NodePorts")

	udp := port
	udp.Protocol = corev1.ProtocolUDP
	local := port
	local.HostIP = "127.0.0.1"
	other := port
	other.HostPort = 21018
	e.create(withPorts("udp", udp))
	e.create(withPorts("other-port", other))
	e.waitPod("udp", "Running", running)
	e.waitPod("other-port", "Running", running)
	// 127.0.0.1 is one of the addresses the holder's wildcard binds.
	e.create(withPorts("local", local))
	e.waitPod("local", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })

	if _, err := e.cs.Pods.Delete(e.ctx, e.ns, "holder", clientDelete()); err != nil {
		t.Fatal(err)
	}
	e.waitGone("holder")
	e.create(withPorts("after", port))
	e.waitPod("after", "Running", running)
}

// A pod past its activeDeadlineSeconds fails, its containers stopped; an image of a
// private registry is pulled with the pod's imagePullSecrets.
func testDeadlineAndPullSecrets(e *env) {
	t := e.t
	rt := sim.New(sim.Config{Private: map[string]kubelet.RegistryAuth{"registry.example:5000/app:1": {Username: "robot", Password: "s3cret"}}})
	e.start(rt, testConfig(e.node))
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "deadline"}, Spec: corev1.PodSpec{ActiveDeadlineSeconds: new(int64(1)),
		Containers: []corev1.Container{container("app", "sleep", "3600")}}})
	p := e.waitPod("deadline", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if p.Status.Reason != "DeadlineExceeded" || p.Status.Message != "Pod was active on the node longer than the specified deadline" {
		t.Errorf("status %q %q", p.Status.Reason, p.Status.Message)
	}
	e.waitPod("deadline", "its container stopped", func(p *corev1.Pod) bool { return mainStatus(p).State.Terminated != nil })

	// A sysctl outside the safe set, which the API accepts, is the kubelet's to refuse:
	// the pod fails before anything of it runs (Kubernetes' SysctlForbidden).
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "unsafe-sysctl"}, Spec: corev1.PodSpec{
		SecurityContext: &corev1.PodSecurityContext{Sysctls: []corev1.Sysctl{{Name: "kernel.shm_rmid_forced", Value: "1"}, {Name: "kernel.shmmax", Value: "100000000"}}},
		Containers:      []corev1.Container{container("app", "sleep", "3600")}}})
	p = e.waitPod("unsafe-sysctl", "Failed", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodFailed })
	if p.Status.Reason != "SysctlForbidden" || p.Status.Message != `forbidden sysctl: "kernel.shmmax" not allowlisted` {
		t.Errorf("unsafe sysctl: status %q %q", p.Status.Reason, p.Status.Message)
	}
	if cs := mainStatus(p); cs.State.Running != nil || cs.State.Terminated != nil && !cs.State.Terminated.StartedAt.IsZero() {
		t.Errorf("unsafe sysctl: the container ran: %+v", cs.State)
	}

	private := corev1.Container{Name: "app", Image: "registry.example:5000/app:1"}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "nocreds"}, Spec: corev1.PodSpec{Containers: []corev1.Container{private}}})
	e.waitPod("nocreds", "in ErrImagePull", func(p *corev1.Pod) bool {
		r := waiting(mainStatus(p)).Reason
		return r == "ErrImagePull" || r == "ImagePullBackOff"
	})
	if _, err := e.cs.Secrets.Create(e.ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: e.ns, Name: "regcred"}, Type: corev1.SecretTypeDockerConfigJson,
		Data: map[string][]byte{corev1.DockerConfigJsonKey: []byte(`{"auths":{"registry.example:5000":{"auth":"cm9ib3Q6czNjcmV0"}}}`)}}); err != nil {
		t.Fatal(err)
	}
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "creds"}, Spec: corev1.PodSpec{Containers: []corev1.Container{private},
		ImagePullSecrets: []corev1.LocalObjectReference{{Name: "regcred"}, {Name: "absent"}}}})
	e.waitPod("creds", "Running", func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	e.waitEvents("creds", "FailedToRetrieveImagePullSecret")
}
