package containerd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups"
	cgroupsv2 "github.com/containerd/cgroups/v2"
	"github.com/containerd/containerd"
	"github.com/containerd/containerd/oci"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/skiffhq/skiff/kubelet"
)

// Pods' cgroups are laid out as Kubernetes' kubelet lays them out with the cgroupfs
// driver, under Config.CgroupRoot (/<namespace>): Guaranteed pods at ROOT/pod<uid>,
// Burstable ones at ROOT/burstable/pod<uid>, BestEffort ones at ROOT/besteffort/pod<uid>,
// and each container in its pod's, at POD/<container id>. The pod's cgroup carries the
// pod's budget (the sum of its containers' limits, its cpu requests as shares), so its
// containers share it; each container's carries its own limits (runc writes them).
//
// On cgroup v1 (and hybrid machines, whose unified hierarchy has no controllers) the
// pod cgroup is made in every v1 hierarchy; on v2 in the unified one, with the cpu,
// memory and pids controllers enabled down to it.

// Kubernetes' conversions of cpu amounts.
const (
	cfsPeriod      = 100000 // µs
	minShares      = 2
	sharesPerCPU   = 1024
	milliCPUPerCPU = 1000
)

// milliCPUToShares is Kubernetes' MilliCPUToShares: a request as cpu.shares.
func milliCPUToShares(milli int64) uint64 {
	if milli <= 0 {
		return minShares
	}
	return uint64(max(milli*sharesPerCPU/milliCPUPerCPU, minShares))
}

// milliCPUToQuota is Kubernetes' MilliCPUToQuota over a 100ms period (minimum 1ms).
func milliCPUToQuota(milli int64) int64 {
	if milli <= 0 {
		return 0
	}
	return max(milli*cfsPeriod/milliCPUPerCPU, 1000)
}

// podCgroup is the cgroup path of a pod of a QoS class.
func (r *Runtime) podCgroup(uid, qos string) string {
	switch qos {
	case "Burstable":
		return path.Join(r.cfg.CgroupRoot, "burstable", "pod"+uid)
	case "BestEffort":
		return path.Join(r.cfg.CgroupRoot, "besteffort", "pod"+uid)
	}
	return path.Join(r.cfg.CgroupRoot, "pod"+uid)
}

// podResources is a pod's budget as a cgroup's resources.
func podResources(p kubelet.PodResources) *specs.LinuxResources {
	shares := milliCPUToShares(p.CPURequestMillis)
	res := &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares}}
	if q := milliCPUToQuota(p.CPUMillis); q > 0 {
		period := uint64(cfsPeriod)
		res.CPU.Quota, res.CPU.Period = &q, &period
	}
	if p.MemoryBytes > 0 {
		res.Memory = &specs.LinuxMemory{Limit: &p.MemoryBytes}
	}
	return res
}

// resourceOpts put a container's limits in its OCI spec (linux.resources), which runc
// writes to its cgroup: on v1 memory.limit_in_bytes, cpu.cfs_quota_us and cpu.shares;
// on v2 memory.max, cpu.max and cpu.weight (runc converting shares to a weight as
// cgroupsv2.ToResources does).
func resourceOpts(cfg kubelet.ContainerConfig) []oci.SpecOpts {
	var opts []oci.SpecOpts
	if cfg.MemoryBytes > 0 {
		opts = append(opts, oci.WithMemoryLimit(uint64(cfg.MemoryBytes)))
	}
	if q := milliCPUToQuota(cfg.CPUMillis); q > 0 {
		opts = append(opts, oci.WithCPUCFS(q, cfsPeriod))
	}
	return append(opts, oci.WithCPUShares(milliCPUToShares(cfg.CPURequestMillis)))
}

// ensurePodCgroup makes the pod's cgroup, or updates it, with the pod's budget.
func (r *Runtime) ensurePodCgroup(cfg kubelet.ContainerConfig) (string, error) {
	p := r.podCgroup(cfg.PodUID, cfg.Pod.QOSClass)
	res := podResources(cfg.Pod)
	if r.unified() {
		m, err := cgroupsv2.NewManager(r.cfg.CgroupMount, p, cgroupsv2.ToResources(res))
		if err != nil {
			return "", fmt.Errorf("pod cgroup %s: %w", p, err)
		}
		if err := m.ToggleControllers([]string{"cpu", "memory", "pids"}, cgroupsv2.Enable); err != nil {
			return "", fmt.Errorf("pod cgroup %s: enable controllers: %w", p, err)
		}
		return p, nil
	}
	cg, err := cgroups.Load(cgroups.V1, cgroups.StaticPath(p))
	switch {
	case errors.Is(err, cgroups.ErrCgroupDeleted):
		if _, err := cgroups.New(cgroups.V1, cgroups.StaticPath(p), res); err != nil {
			return "", fmt.Errorf("pod cgroup %s: %w", p, err)
		}
	case err != nil:
		return "", fmt.Errorf("pod cgroup %s: %w", p, err)
	default:
		if err := cg.Update(res); err != nil {
			return "", fmt.Errorf("pod cgroup %s: update: %w", p, err)
		}
	}
	return p, nil
}

// removePodCgroups deletes pod uid's cgroup, whatever its QoS class was. Its containers'
// cgroups are gone with them (runc deletes them).
func (r *Runtime) removePodCgroups(uid string) error {
	var errs []error
	for _, qos := range []string{"Guaranteed", "Burstable", "BestEffort"} {
		p := r.podCgroup(uid, qos)
		if r.unified() {
			dir := filepath.Join(r.cfg.CgroupMount, p)
			if _, err := os.Stat(dir); err != nil {
				continue
			}
			m, err := cgroupsv2.LoadManager(r.cfg.CgroupMount, p)
			if err == nil {
				err = m.Delete()
			}
			if err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("delete cgroup %s: %w", p, err))
			}
			continue
		}
		cg, err := cgroups.Load(cgroups.V1, cgroups.StaticPath(p))
		if err != nil {
			continue // not there in any hierarchy
		}
		if err := cg.Delete(); err != nil {
			errs = append(errs, fmt.Errorf("delete cgroup %s: %w", p, err))
		}
	}
	return errors.Join(errs...)
}

// oomKilled tells whether the kernel's OOM killer killed a process of the cgroup at p
// (a container's, read after it exited and before it is removed, while runc keeps it).
func (r *Runtime) oomKilled(p string) bool {
	var file string
	if r.unified() {
		file = filepath.Join(r.cfg.CgroupMount, p, "memory.events")
	} else {
		file = filepath.Join(r.cfg.CgroupMount, "memory", p, "memory.oom_control")
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(data), "\n") {
		if k, v, ok := strings.Cut(line, " "); ok && k == "oom_kill" {
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n > 0
		}
	}
	return false
}

// UpdateResources implements kubelet.Runtime: the pod's cgroup takes the pod's new
// budget and the container's task its own limits, which the shim writes to its cgroup
// (memory.max, cpu.max, cpu.weight on v2), as CRI's UpdateContainerResources does. The
// pod goes first, so that a container's limit raised is not above its pod's; when that
// fails (cgroup v1 refuses a pod's cfs quota below a container's), the container goes
// first, as for a decrease. The container's label records its limits.
func (r *Runtime) UpdateResources(ctx context.Context, id string, res kubelet.Resources, pod kubelet.PodResources) error {
	ctx = r.ns(ctx)
	ctr, task, err := r.runningTask(ctx, "update resources of", id)
	if err != nil {
		return err
	}
	labels, err := ctr.Labels(ctx)
	if err != nil {
		return fmt.Errorf("update resources of container %s: %w", id, err)
	}
	updatePod := func() error {
		_, err := r.ensurePodCgroup(kubelet.ContainerConfig{PodUID: labels[kubelet.LabelPodUID], Pod: pod})
		return err
	}
	updateContainer := func() error { return task.Update(ctx, containerd.WithResources(containerResources(res))) }
	if err := updatePod(); err != nil {
		if err := updateContainer(); err != nil {
			return fmt.Errorf("update resources of container %s: %w", id, err)
		}
		if err := updatePod(); err != nil {
			return fmt.Errorf("update resources of container %s: %w", id, err)
		}
	} else if err := updateContainer(); err != nil {
		return fmt.Errorf("update resources of container %s: %w", id, err)
	}
	if _, err := ctr.SetLabels(ctx, map[string]string{labelResources: resourcesLabel(res)}); err != nil {
		return fmt.Errorf("update resources of container %s: label: %w", id, err)
	}
	return nil
}

// containerResources are a container's limits as its cgroup's resources, as
// resourceOpts puts them in its spec. An absent limit is written as none (max), so that
// a limit a resize removes goes.
func containerResources(res kubelet.Resources) *specs.LinuxResources {
	shares := milliCPUToShares(res.CPURequestMillis)
	quota, period := milliCPUToQuota(res.CPUMillis), uint64(cfsPeriod)
	if quota == 0 {
		quota = -1
	}
	mem := res.MemoryBytes
	if mem == 0 {
		mem = -1
	}
	return &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: &shares, Quota: &quota, Period: &period}, Memory: &specs.LinuxMemory{Limit: &mem}}
}

// resourcesLabel is the value of a container's labelResources: "cpu/cpuRequest/memory".
func resourcesLabel(res kubelet.Resources) string {
	return fmt.Sprintf("%d/%d/%d", res.CPUMillis, res.CPURequestMillis, res.MemoryBytes)
}

// parseResourcesLabel reads resourcesLabel's value; nil when there is none (a container
// made before the label was).
func parseResourcesLabel(v string) *kubelet.Resources {
	var res kubelet.Resources
	if _, err := fmt.Sscanf(v, "%d/%d/%d", &res.CPUMillis, &res.CPURequestMillis, &res.MemoryBytes); err != nil {
		return nil
	}
	return &res
}

// pidNamespace is the process namespace of running container id, by its task's
// process.
func (r *Runtime) pidNamespace(ctx context.Context, id string) (string, error) {
	_, task, err := r.runningTask(ctx, "share the process namespace of", id)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("/proc/%d/ns/pid", task.Pid()), nil
}
