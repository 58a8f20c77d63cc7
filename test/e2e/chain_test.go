package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/test/containerdtest"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestChainOnContainerd: three API servers, two controller-managers, two schedulers and
// two kubelets on a (private) containerd run Kubernetes' nginx-deployment shape with a
// busybox image: all pods run in real containers, the trace has the ten steps in order,
// scaling, a rolling update and a rollback work, and deleting the Deployment stops every
// container and removes every object.
func TestChainOnContainerd(t *testing.T) {
	socket := containerdtest.Start(t)
	c := startAPIServers(t)
	s := c.servers()

	// The images, from the host's static busybox: no registry needed.
	preload := t.TempDir()
	for i, ref := range []string{"docker.io/library/busybox:latest", "docker.io/library/busybox:1.36"} {
		data, err := containerd.BusyboxArchive("/bin/busybox", ref)
		if err != nil {
			t.Skipf("no static busybox to build the test image from: %v", err)
		}
		if err := os.WriteFile(filepath.Join(preload, fmt.Sprintf("busybox-%d.tar", i)), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 2; i++ {
		start(t, fmt.Sprintf("controller-manager-%d", i), "controller-manager", "--server", s, "--identity", fmt.Sprintf("cm%d", i), "--log-level", "warn")
		start(t, fmt.Sprintf("scheduler-%d", i), "scheduler", "--server", s, "--identity", fmt.Sprintf("sched%d", i), "--log-level", "warn")
	}
	logs := t.TempDir()
	// Each kubelet its own root (its pods' directories and mounts): a node's housekeeping
	// removes the pod directories under its root that none of its pods owns, so two
	// sharing the default /var/lib/skiff/kubelet removed each other's pods' files (a
	// container's termination-log, once, before runc mounted it).
	roots, err := os.MkdirTemp("", "skiff-chain-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { // after the kubelets stop (registered before them)
		unmountUnder(t, roots)
		os.RemoveAll(roots)
	})
	for i := 1; i <= 2; i++ {
		start(t, fmt.Sprintf("kubelet-w%d", i), "kubelet", "--server", s, "--node-name", fmt.Sprintf("w%d", i), "--runtime", "containerd",
			"--containerd-address", socket, "--containerd-namespace", fmt.Sprintf("skiff-e2e-w%d", i),
			"--root-dir", filepath.Join(roots, fmt.Sprintf("w%d", i)),
			"--container-log-dir", filepath.Join(logs, fmt.Sprintf("w%d", i)), "--preload", preload, "--log-level", "warn",
			"--node-ip", "127.0.0.1", "--kubelet-listen", "127.0.0.1:0")
	}
	waitfor.Condition(t, 60*time.Second, "two Ready nodes", func() (bool, string) {
		out, _, err := ctl(s, "get", "nodes", "--no-headers")
		return err == nil && strings.Count(out, " Ready ") == 2, out
	})

	mustCtl(t, s, "apply", "-f", "../../examples/nginx-deployment.yaml")
	// A pod that prints and exits, for skiffctl logs: its output comes from the
	// container's log file through the kubelet and the API server.
	if _, errs, err := ctlIn(s, `apiVersion: v1
kind: Pod
metadata: {name: hello}
spec:
  restartPolicy: Never
  containers:
  - {name: hello, image: docker.io/library/busybox:latest, imagePullPolicy: IfNotPresent, command: [sh, -c, "echo hello from skiff; echo bye"]}
`, "apply", "-f", "-"); err != nil {
		t.Fatalf("apply pod hello: %v: %s", err, errs)
	}
	running := func(n int, image string) func() (bool, string) {
		return func() (bool, string) {
			out, _, err := ctl(s, "get", "pods", "-o", "json")
			if err != nil {
				return false, err.Error()
			}
			var list struct {
				Items []struct {
					Metadata struct{ Name, DeletionTimestamp string }
					Spec     struct{ Containers []struct{ Image string } }
					Status   struct {
						Phase             string
						ContainerStatuses []struct {
							ContainerID string
							State       struct{ Running *struct{} }
						}
					}
				}
			}
			if err := json.Unmarshal([]byte(out), &list); err != nil {
				return false, out
			}
			ok, others := 0, 0
			for _, p := range list.Items {
				if p.Metadata.Name == "hello" {
					continue // the logs pod
				}
				others++
				if p.Metadata.DeletionTimestamp != "" {
					return false, out // wait until old pods are gone too
				}
				if p.Status.Phase == "Running" && len(p.Status.ContainerStatuses) == 1 && p.Status.ContainerStatuses[0].State.Running != nil &&
					strings.HasPrefix(p.Status.ContainerStatuses[0].ContainerID, "containerd://") && p.Spec.Containers[0].Image == image {
					ok++
				}
			}
			return ok == n && others == n, out
		}
	}
	waitfor.Condition(t, 120*time.Second, "3 pods running on containerd", running(3, "docker.io/library/busybox:latest"))
	waitfor.Condition(t, 60*time.Second, "skiffctl logs hello", func() (bool, string) {
		out, errs, err := ctl(s, "logs", "hello")
		return err == nil && out == "hello from skiff\nbye\n", out + errs
	})
	if out := mustCtl(t, s, "logs", "hello", "-c", "hello", "-f"); out != "hello from skiff\nbye\n" {
		t.Fatalf("skiffctl logs -f of an exited container: %q", out)
	}
	// --timestamps: each line with the time the container's logging program read it.
	if out := mustCtl(t, s, "logs", "hello", "--timestamps"); !regexp.MustCompile(`\A\S+Z hello from skiff\n\S+Z bye\n\z`).MatchString(out) {
		t.Fatalf("skiffctl logs --timestamps: %q", out)
	}
	mustCtl(t, s, "delete", "pod", "hello")
	waitfor.Condition(t, 60*time.Second, "pod hello and its container gone", func() (bool, string) {
		out, _, err := ctl(s, "get", "pods", "hello", "-o", "name")
		n := containers(t, socket)
		return err != nil && n == 3, fmt.Sprintf("%s%d containers in containerd, want 3", out, n)
	})
	names := strings.Fields(mustCtl(t, s, "get", "pods", "-o", "name"))
	checkStreams(t, s, socket, strings.TrimPrefix(names[0], "pod/"), 3)

	out := mustCtl(t, s, "trace", "deployment", "nginx-deployment", "-o", "json")
	var tr struct {
		Steps []struct {
			Step    any
			Missing bool
			Time    time.Time
		}
	}
	if err := json.Unmarshal([]byte(out), &tr); err != nil {
		t.Fatal(err)
	}
	var labels []string
	var prev time.Time
	for _, st := range tr.Steps {
		labels = append(labels, fmt.Sprint(st.Step))
		if st.Missing || st.Time.Before(prev) {
			t.Fatalf("trace step %v missing or out of order:\n%s", st.Step, out)
		}
		prev = st.Time
	}
	if got := strings.Join(labels, " "); got != "1 [2 3] [4 5] [6 7] 8 9 10" {
		t.Fatalf("trace steps %q", got)
	}
	t.Logf("trace:\n%s", mustCtl(t, s, "trace", "deployment", "nginx-deployment"))

	mustCtl(t, s, "scale", "deployment", "nginx-deployment", "--replicas", "5")
	waitfor.Condition(t, 120*time.Second, "5 pods running", running(5, "docker.io/library/busybox:latest"))
	mustCtl(t, s, "set", "image", "deployment/nginx-deployment", "nginx=docker.io/library/busybox:1.36")
	waitfor.Condition(t, 180*time.Second, "rolled out", running(5, "docker.io/library/busybox:1.36"))
	mustCtl(t, s, "rollout", "undo", "deployment/nginx-deployment")
	waitfor.Condition(t, 180*time.Second, "rolled back", running(5, "docker.io/library/busybox:latest"))

	mustCtl(t, s, "delete", "deployment", "nginx-deployment")
	waitfor.Condition(t, 120*time.Second, "every object gone", func() (bool, string) {
		pods, _, err1 := ctl(s, "get", "pods", "-o", "name")
		rss, _, err2 := ctl(s, "get", "rs", "-o", "name")
		return err1 == nil && err2 == nil && pods == "" && rss == "", pods + rss
	})
	waitfor.Condition(t, 60*time.Second, "every container stopped and removed", func() (bool, string) {
		n := containers(t, socket)
		return n == 0, fmt.Sprintf("%d containers", n)
	})
}

// containers counts the containers in the kubelets' containerd namespaces.
func containers(t *testing.T, socket string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n := 0
	for i := 1; i <= 2; i++ {
		rt, err := containerd.New(ctx, containerd.Config{Socket: socket, Namespace: fmt.Sprintf("skiff-e2e-w%d", i), LogDir: t.TempDir()})
		if err != nil {
			t.Fatal(err)
		}
		list, err := rt.List(ctx)
		rt.Close()
		if err != nil {
			t.Fatal(err)
		}
		n += len(list)
	}
	return n
}
