package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/test/waitfor"
	"github.com/skiffhq/skiff/up/daemon"
)

// TestPodSpecManifests applies manifests written the way the Kubernetes documentation's
// task pages write them (testdata/podspec) to `skiff up`, unchanged, and checks that each
// behaves as it would on Kubernetes: ConfigMaps and Secrets as env and volumes, a
// ConfigMap update reaching the mounted file, a missing key, init containers, a shared
// emptyDir, a liveness probe restarting a container, readiness holding a rollout, the
// downward API, a security context, a claim's volume, a container over its memory
// limit. It runs on the simulated runtime and on a private containerd (root).
func TestPodSpecManifests(t *testing.T) {
	for _, runtime := range []string{"sim", "containerd"} {
		t.Run(runtime, func(t *testing.T) {
			t.Parallel() // each its own skiff up, mostly waiting on probes and restarts
			testPodSpecManifests(t, runtime)
		})
	}
}

func testPodSpecManifests(t *testing.T, runtime string) {
	real := runtime == "containerd"
	dir, addr, config := upPlaceOwn(t, 1)
	// skiffctl with this skiff up's admin credentials, given as --config rather than
	// $SKIFF_CONFIG, which the other runtime's run beside this one would share. (Each
	// right-hand side still calls the package's function of the same name.)
	withConfig := func(args []string) []string { return append([]string{"--config", config}, args...) }
	ctl := func(addr string, args ...string) (string, string, error) { return ctl(addr, withConfig(args)...) }
	mustCtl := func(t *testing.T, addr string, args ...string) string {
		t.Helper()
		return mustCtl(t, addr, withConfig(args)...)
	}
	mustCtlStdin := func(t *testing.T, addr, stdin string, args ...string) string {
		t.Helper()
		return mustCtlStdin(t, addr, stdin, withConfig(args)...)
	}
	args := []string{"up", "--data-dir", filepath.Join(dir, "up"), "--listen", addr, "--node-name", "podspec-" + runtime,
		"--pod-network=false"} // the host's network stays untouched: nothing here needs pod addresses
	if real {
		if err := daemon.Usable(); err != nil {
			t.Skipf("skiff up's private containerd: %v", err)
		}
		if _, err := os.Stat("/bin/busybox"); err != nil {
			t.Skip("the manifests' image comes from /bin/busybox (busybox-static), which is missing")
		}
		args = append(args, "--containerd-address", staleSocket(t, dir))
	} else {
		args = append(args, "--runtime", "sim")
	}
	cmd := exec.Command(filepath.Join(binDir, "skiff"), args...)
	cmd.Env = append(os.Environ(), "SKIFF_CONFIG="+config)
	up := startCommand(t, "skiff up", cmd)
	if real {
		privateContainerd(t, up)
	}
	waitfor.Condition(t, 60*time.Second, "the node ready", func() (bool, string) {
		out, errs, err := ctl(addr, "get", "nodes")
		return err == nil && strings.Contains(out, " Ready"), out + errs
	})
	pod := func(name string) *corev1.Pod {
		out, _, err := ctl(addr, "get", "pod", name, "-o", "json")
		if err != nil {
			return nil
		}
		p := &corev1.Pod{}
		if json.Unmarshal([]byte(out), p) != nil {
			return nil
		}
		return p
	}
	waitPod := func(name, what string, timeout time.Duration, cond func(p *corev1.Pod) bool) *corev1.Pod {
		t.Helper()
		var last *corev1.Pod
		waitfor.Condition(t, timeout, "pod "+name+" "+what, func() (bool, string) {
			last = pod(name)
			if last == nil {
				return false, "no such pod yet"
			}
			b, _ := json.MarshalIndent(last.Status, "", " ")
			return cond(last), string(b)
		})
		return last
	}
	logsHave := func(name, container, want string) {
		t.Helper()
		waitfor.Condition(t, 60*time.Second, fmt.Sprintf("logs of %s/%s say %q", name, container, want), func() (bool, string) {
			out, errs, err := ctl(addr, "logs", name, "-c", container)
			return err == nil && strings.Contains(out, want), out + errs
		})
	}
	apply := func(file string) { mustCtl(t, addr, "apply", "-f", filepath.Join("testdata", "podspec", file)) }
	volumeFile := func(p *corev1.Pod, plugin, volume, file string) string {
		b, _ := os.ReadFile(filepath.Join(dir, "up", "kubelet", "pods", string(p.UID), "volumes", plugin, volume, file))
		return string(b)
	}

	// A ConfigMap as env and as a volume; an update reaches the file.
	apply("01-configmap.yaml")
	p := waitPod("dapi-test-pod", "Running", 60*time.Second, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	logsHave("dapi-test-pod", "test-container", "level=very type=charm")
	if got := volumeFile(p, "kubernetes.io~configmap", "config-volume", "SPECIAL_LEVEL"); got != "very" {
		t.Errorf("configMap volume file SPECIAL_LEVEL = %q", got)
	}
	mustCtlStdin(t, addr, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: special-config}\ndata: {SPECIAL_LEVEL: extremely, SPECIAL_TYPE: charm}\n", "apply", "-f", "-")
	waitfor.Condition(t, 60*time.Second, "the mounted file updated", func() (bool, string) {
		got := volumeFile(p, "kubernetes.io~configmap", "config-volume", "SPECIAL_LEVEL")
		return got == "extremely", got
	})
	if real {
		logsHave("dapi-test-pod", "test-container", "extremely") // read inside the container
	}

	// A Secret as env and as a volume, on tmpfs.
	apply("02-secret.yaml")
	p = waitPod("secret-test-pod", "Running", 60*time.Second, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	logsHave("secret-test-pod", "test-container", "user=my-app")
	if got := volumeFile(p, "kubernetes.io~secret", "secret-volume", "password"); got != "39528$vdg7Jb" {
		t.Errorf("secret volume file password = %q", got)
	}
	if real {
		logsHave("secret-test-pod", "test-container", "password")
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		if !regexp.MustCompile(regexp.QuoteMeta(string(p.UID)) + `/volumes/kubernetes.io~secret/secret-volume \S+ (.* )?- tmpfs `).Match(mi) {
			t.Errorf("the secret volume is not a tmpfs")
		}
	}

	// A missing key keeps the container waiting, saying which.
	apply("03-missing-key.yaml")
	waitPod("missing-key", "in CreateContainerConfigError", 60*time.Second, func(p *corev1.Pod) bool {
		w := waitingOf(p, "app")
		return w != nil && w.Reason == "CreateContainerConfigError" && w.Message == "couldn't find key no-such-key in ConfigMap default/special-config"
	})

	// Init containers in order, then two app containers sharing an emptyDir.
	apply("04-init-containers.yaml")
	p = waitPod("init-demo", "Running with both containers ready", 90*time.Second, func(p *corev1.Pod) bool {
		return p.Status.Phase == corev1.PodRunning && readyCount(p) == 2
	})
	for _, cs := range p.Status.InitContainerStatuses {
		if cs.State.Terminated == nil || cs.State.Terminated.Reason != "Completed" {
			t.Errorf("init container %s: %+v", cs.Name, cs.State)
		}
	}
	if s := p.Status.InitContainerStatuses; len(s) == 2 && s[0].State.Terminated != nil && s[1].State.Terminated != nil &&
		s[1].State.Terminated.StartedAt.Before(&s[0].State.Terminated.FinishedAt) {
		t.Errorf("init container check started before install finished: %+v", s)
	}
	if real {
		logsHave("init-demo", "web", "installed")
		logsHave("init-demo", "sidecar", "served")
	}

	// A liveness probe that starts failing restarts the container.
	apply("05-liveness.yaml")
	waitPod("liveness-exec", "restarted by its liveness probe", 90*time.Second, func(p *corev1.Pod) bool {
		return len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].RestartCount >= 1
	})
	waitfor.Condition(t, 30*time.Second, "liveness-exec's events say why it restarted", func() (bool, string) {
		out, _, _ := ctl(addr, "describe", "pod", "liveness-exec")
		return strings.Contains(out, "Liveness probe failed") && strings.Contains(out, "failed liveness probe, will be restarted"), out
	})

	// Readiness: ready pods make the Deployment available; a version whose pods never
	// get ready holds the rollout, the old pods serving.
	apply("06-readiness-deployment.yaml")
	if out, errs, err := ctl(addr, "rollout", "status", "deployment/ready-web", "--timeout", "50s"); err != nil || !strings.Contains(out, "successfully rolled out") {
		pods, _, _ := ctl(addr, "get", "pods", "-l", "app=ready-web", "-o", "yaml")
		t.Fatalf("rollout status: %v: %s%s\n%s", err, out, errs, pods)
	}
	broken, err := os.ReadFile(filepath.Join("testdata", "podspec", "06-readiness-deployment.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	mustCtlStdin(t, addr, strings.Replace(string(broken), "touch /tmp/ready; sleep 3600", "sleep 3600", 1), "apply", "-f", "-")
	if out, _, err := ctl(addr, "rollout", "status", "deployment/ready-web", "--timeout", "8s"); err == nil {
		t.Fatalf("a rollout whose pods never get ready finished: %s", out)
	}
	out := mustCtl(t, addr, "get", "deployment", "ready-web", "-o", "json")
	var d struct {
		Status struct{ ReadyReplicas, UpdatedReplicas, AvailableReplicas int }
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || d.Status.AvailableReplicas != 2 || d.Status.UpdatedReplicas != 1 {
		t.Errorf("held rollout: %+v (%v)", d.Status, err)
	}

	// The downward API, as env and as files.
	apply("07-downward-api.yaml")
	p = waitPod("kubernetes-downwardapi-volume-example", "Running", 60*time.Second, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	logsHave(p.Name, "client-container", fmt.Sprintf("node=podspec-%s pod=%s ns=default ip=%s mem=64", runtime, p.Name, p.Status.PodIP))
	if got := volumeFile(p, "kubernetes.io~downward-api", "podinfo", "labels"); got != "cluster=\"test-cluster1\"\nzone=\"us-est-coast\"" {
		t.Errorf("downward API labels file: %q", got)
	}
	// Limits alone request as much: Guaranteed.
	if p.Status.QOSClass != corev1.PodQOSGuaranteed {
		t.Errorf("qosClass %s, want Guaranteed", p.Status.QOSClass)
	}

	// A security context: the user, groups, fsGroup, read-only root.
	apply("08-security-context.yaml")
	waitPod("security-context-demo", "Running", 60*time.Second, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if real {
		logsHave("security-context-demo", "sec-ctx-demo", "uid=1000 gid=3000 groups=2000,3000")
		logsHave("security-context-demo", "sec-ctx-demo", "\n2000\n")
		logsHave("security-context-demo", "sec-ctx-demo", "read-only")
	}

	// A claim of the default class: the local-path provisioner makes its volume on the
	// pod's node (in skiff up's data directory) and the pod runs with it mounted.
	apply("09-pvc.yaml")
	waitPod("pvc-pod", "Running with its claim's volume", 90*time.Second, func(p *corev1.Pod) bool { return p.Status.Phase == corev1.PodRunning })
	if real {
		claimFile := filepath.Join(dir, "up", "local-path", "pvc-*_default_my-claim", "file")
		waitfor.Condition(t, 30*time.Second, "the container's file in its claim's volume", func() (bool, string) {
			m, _ := filepath.Glob(claimFile)
			if len(m) != 1 {
				return false, fmt.Sprint(m)
			}
			b, _ := os.ReadFile(m[0])
			return string(b) == "kept\n", string(b)
		})
	}

	// Over its memory limit: OOM-killed, and restarted.
	if real {
		apply("11-memory-containerd.yaml")
	} else {
		apply("10-memory-sim.yaml")
	}
	name := map[bool]string{true: "memory-hog", false: "memory-demo-2"}[real]
	waitPod(name, "OOM-killed and restarted", 90*time.Second, func(p *corev1.Pod) bool {
		if len(p.Status.ContainerStatuses) != 1 {
			return false
		}
		cs := p.Status.ContainerStatuses[0]
		last := cs.LastTerminationState.Terminated
		return cs.RestartCount >= 1 && last != nil && last.Reason == "OOMKilled" && last.ExitCode == 137
	})

	// A Job with a sidecar: it completes once its container is done, the sidecar stopped.
	apply("12-sidecar-job.yaml")
	var jobPod *corev1.Pod
	waitfor.Condition(t, 90*time.Second, "job myjob complete, its pod Succeeded", func() (bool, string) {
		out, _, err := ctl(addr, "get", "pods", "-l", "job-name=myjob", "-o", "json")
		var l corev1.PodList
		if err != nil || json.Unmarshal([]byte(out), &l) != nil || len(l.Items) != 1 {
			return false, out
		}
		jobPod = &l.Items[0]
		job, _, _ := ctl(addr, "get", "job", "myjob", "-o", "jsonpath={.status.succeeded}")
		return jobPod.Status.Phase == corev1.PodSucceeded && job == "1", "job succeeded: " + job + "\n" + out
	})
	if s := jobPod.Status.InitContainerStatuses; len(s) != 1 || s[0].State.Terminated == nil {
		t.Errorf("the sidecar's status: %+v", s)
	}
	if real {
		logsHave(jobPod.Name, "logshipper", "logging")
	}

	// Deleting the pods unmounts and removes their directories and volumes.
	var dirs []string
	for _, n := range []string{"dapi-test-pod", "secret-test-pod", "init-demo"} {
		q := pod(n)
		if q == nil {
			t.Fatalf("pod %s gone", n)
		}
		d := filepath.Join(dir, "up", "kubelet", "pods", string(q.UID))
		if _, err := os.Stat(d); err != nil {
			t.Errorf("pod %s has no directory: %v", n, err)
		}
		dirs = append(dirs, d)
	}
	mustCtl(t, addr, "delete", "pod", "dapi-test-pod", "secret-test-pod", "init-demo")
	waitfor.Condition(t, 60*time.Second, "the deleted pods' directories removed", func() (bool, string) {
		for _, d := range dirs {
			if _, err := os.Stat(d); err == nil {
				return false, d + " still there"
			}
		}
		mi, _ := os.ReadFile("/proc/self/mountinfo")
		for _, d := range dirs {
			if strings.Contains(string(mi), d) {
				return false, d + " still mounted"
			}
		}
		return true, ""
	})
	// Leave nothing behind: every pod goes, and with it its cgroup.
	mustCtl(t, addr, "delete", "deployment", "ready-web")
	mustCtl(t, addr, "delete", "job", "myjob")
	for _, n := range []string{"missing-key", "liveness-exec", "kubernetes-downwardapi-volume-example", "security-context-demo", "pvc-pod", name} {
		mustCtl(t, addr, "delete", "pod", n)
	}
	waitfor.Condition(t, 90*time.Second, "every pod gone", func() (bool, string) {
		out, _, err := ctl(addr, "get", "pods", "-o", "name")
		return err == nil && out == "", out
	})
	up.stop(t)
}

func mustCtlStdin(t *testing.T, servers, stdin string, args ...string) string {
	t.Helper()
	out, errs, err := ctlIn(servers, stdin, args...)
	if err != nil {
		t.Fatalf("skiffctl %s: %v: %s", strings.Join(args, " "), err, errs)
	}
	return out
}

func waitingOf(p *corev1.Pod, container string) *corev1.ContainerStateWaiting {
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Name == container {
			return cs.State.Waiting
		}
	}
	return nil
}

func readyCount(p *corev1.Pod) int {
	n := 0
	for _, cs := range p.Status.ContainerStatuses {
		if cs.Ready {
			n++
		}
	}
	return n
}
