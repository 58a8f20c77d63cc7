package containerd

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	cgroupsv2 "github.com/containerd/cgroups/v2"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiffhq/skiff/kubelet"
)

// What the kubelet writes on a cgroup v2 host (these machines are v1/hybrid: the v2
// path is taken through Runtime.unified, on a directory standing for
// /sys/fs/cgroup): the pod's cgroup, where Kubernetes' cgroupfs driver puts it, with
// the pod's budget as memory.max, cpu.max and cpu.weight and the controllers enabled
// down to it; the container's limits in its OCI spec, as runc writes them on v2; an
// OOM kill read from memory.events. (On v1 the same is tested on real containerd:
// kubelet TestKubeletContainerd/resources.)
func TestCgroupV2(t *testing.T) {
	mount := t.TempDir()
	// cgroup.subtree_control exists in every cgroup of a real hierarchy.
	for _, d := range []string{"", "skiff-t", "skiff-t/burstable", "skiff-t/besteffort", "skiff-t/burstable/podu1"} {
		if err := os.MkdirAll(filepath.Join(mount, d), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(mount, d, "cgroup.subtree_control"), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	r := &Runtime{cfg: Config{CgroupRoot: "/skiff-t", CgroupMount: mount}, unified: func() bool { return true }}
	// 250m requested, 500m and 64Mi the limit: Burstable.
	cfg := kubelet.ContainerConfig{PodUID: "u1", Name: "app", Resources: kubelet.Resources{CPUMillis: 500, CPURequestMillis: 250, MemoryBytes: 64 << 20},
		Pod: kubelet.PodResources{QOSClass: "Burstable", CPUMillis: 500, CPURequestMillis: 250, MemoryBytes: 64 << 20}}
	pod, err := r.ensurePodCgroup(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if pod != "/skiff-t/burstable/podu1" {
		t.Errorf("pod cgroup %s", pod)
	}
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(mount, p))
		if err != nil {
			return "(" + err.Error() + ")"
		}
		return strings.TrimSpace(string(b))
	}
	// 256 shares are weight 1+(256-2)*9999/262142 = 10, as Kubernetes' kubelet on v2.
	want := map[string]string{
		pod + "/memory.max": strconv.Itoa(64 << 20), pod + "/cpu.max": "50000 100000", pod + "/cpu.weight": "10",
	}
	for p, w := range want {
		if got := read(p); got != w {
			t.Errorf("%s = %s, want %s", p, got, w)
		}
	}
	// The controllers enabled in each ancestor, so the pod's cgroup has them.
	for _, d := range []string{"", "skiff-t", "skiff-t/burstable"} {
		got := read(d + "/cgroup.subtree_control")
		for _, c := range []string{"+cpu", "+memory", "+pids"} {
			if !strings.Contains(got, c) {
				t.Errorf("%s/cgroup.subtree_control = %q, want %s", d, got, c)
			}
		}
	}
	// A pod without limits: no cpu.max nor memory.max, the minimum weight (2 shares).
	be, err := r.ensurePodCgroup(kubelet.ContainerConfig{PodUID: "u2", Pod: kubelet.PodResources{QOSClass: "BestEffort"}})
	if err != nil {
		t.Fatal(err)
	}
	if be != "/skiff-t/besteffort/podu2" || read(be+"/cpu.weight") != "1" {
		t.Errorf("best-effort pod %s: cpu.weight %s", be, read(be+"/cpu.weight"))
	}
	for _, f := range []string{"/cpu.max", "/memory.max"} {
		if _, err := os.Stat(filepath.Join(mount, be+f)); err == nil {
			t.Errorf("best-effort pod has %s: %s", f, read(be+f))
		}
	}

	// The container's limits in its spec, written as runc writes them on v2.
	var spec oci.Spec
	spec.Linux = &specs.Linux{}
	for _, o := range resourceOpts(cfg) {
		if err := o(context.Background(), nil, nil, &spec); err != nil {
			t.Fatal(err)
		}
	}
	ctr := pod + "/ctr"
	if _, err := cgroupsv2.NewManager(mount, ctr, cgroupsv2.ToResources(spec.Linux.Resources)); err != nil {
		t.Fatal(err)
	}
	for p, w := range map[string]string{ctr + "/memory.max": strconv.Itoa(64 << 20), ctr + "/cpu.max": "50000 100000", ctr + "/cpu.weight": "10"} {
		if got := read(p); got != w {
			t.Errorf("%s = %s, want %s", p, got, w)
		}
	}

	// OOM kills: memory.events' oom_kill.
	if err := os.WriteFile(filepath.Join(mount, ctr, "memory.events"), []byte("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if !r.oomKilled(ctr) {
		t.Error("oom_kill 1 is no OOM kill")
	}
	if err := os.WriteFile(filepath.Join(mount, ctr, "memory.events"), []byte("low 0\nhigh 0\nmax 0\noom 0\noom_kill 0\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r.oomKilled(ctr) {
		t.Error("oom_kill 0 is an OOM kill")
	}
}
