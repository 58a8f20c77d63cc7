package containerd

import (
	"bytes"
	"context"
	"fmt"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/containerd/containerd/containers"
	"github.com/containerd/containerd/contrib/seccomp"
	"github.com/containerd/containerd/oci"
	"github.com/containerd/containerd/pkg/cap"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/selinux/go-selinux"

	"github.com/skiffhq/skiff/kubelet"
)

// selinuxEnabled says whether this node runs SELinux; the tests fake it.
var selinuxEnabled = selinux.GetEnabled

// mountOpts binds the kubelet's mounts into the spec; the host's /etc/hosts and
// /etc/resolv.conf stand in for those it does not give.
func mountOpts(mounts []kubelet.Mount) []oci.SpecOpts {
	var ms []specs.Mount
	hosts, resolv := false, false
	for _, m := range mounts {
		opts := []string{"rbind", "rprivate", "rw"}
		if m.ReadOnly {
			opts[2] = "ro"
		}
		ms = append(ms, specs.Mount{Destination: m.ContainerPath, Type: "bind", Source: m.HostPath, Options: opts})
		hosts = hosts || m.ContainerPath == "/etc/hosts"
		resolv = resolv || m.ContainerPath == "/etc/resolv.conf"
	}
	var out []oci.SpecOpts
	if !hosts {
		out = append(out, oci.WithHostHostsFile)
	}
	if !resolv {
		out = append(out, oci.WithHostResolvconf)
	}
	if len(ms) > 0 {
		out = append(out, oci.WithMounts(ms))
	}
	return out
}

// cgroupMountOpts mounts the container's own cgroups at /sys/fs/cgroup, read-only (a
// privileged container's writable), as containerd's CRI plugin does for Kubernetes'
// pods: tools and tests in the container read their limits there (Kubernetes' in-place
// resize tests read cpu.max, or cpu/cpu.cfs_quota_us on cgroup v1). On a cgroup v2 host
// the container also gets a cgroup namespace of its own (not a privileged one, as the
// CRI plugin), so the cgroup2 filesystem runc mounts is rooted at the container's
// cgroup; on v1 (and hybrid) hosts runc binds each hierarchy's container cgroup there.
// A mount of the pod's own at /sys/fs/cgroup takes its place.
func cgroupMountOpts(mounts []kubelet.Mount, privileged, unified bool) []oci.SpecOpts {
	if slices.ContainsFunc(mounts, func(m kubelet.Mount) bool { return path.Clean(m.ContainerPath) == cgroupMountPoint }) {
		return nil
	}
	opts := []string{"nosuid", "noexec", "nodev", "relatime", "ro"}
	if privileged {
		opts = opts[:len(opts)-1]
	}
	out := []oci.SpecOpts{func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: cgroupMountPoint, Type: "cgroup", Source: "cgroup", Options: opts})
		return nil
	}}
	if unified && !privileged {
		out = append(out, oci.WithLinuxNamespace(specs.LinuxNamespace{Type: specs.CgroupNamespace}))
	}
	return out
}

// cgroupMountPoint is where a container finds its cgroups.
const cgroupMountPoint = "/sys/fs/cgroup"

// securityOpts applies a container's securityContext to its spec, as containerd's CRI
// plugin does: after the image's user, the pod's and container's user and groups; then
// privileges.
func securityOpts(cfg kubelet.ContainerConfig) []oci.SpecOpts {
	sec := cfg.Security
	var out []oci.SpecOpts
	if sec.SELinuxLabel {
		out = append(out, func(context.Context, oci.Client, *containers.Container, *oci.Spec) error {
			if selinuxEnabled() {
				return fmt.Errorf("seLinuxOptions of %s/%s: this node runs SELinux, whose labels Skiff's kubelet does not apply: %w",
					cfg.Namespace, cfg.PodName, kubelet.ErrContainerConfig)
			}
			return nil // no SELinux: nothing to label, as Kubernetes' kubelet and containerd do
		})
	}
	if sec.RunAsUser != nil {
		out = append(out, oci.WithUserID(uint32(*sec.RunAsUser)))
	}
	if sec.RunAsUser != nil || sec.RunAsGroup != nil || len(sec.SupplementalGroups) > 0 {
		out = append(out, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			u := &s.Process.User
			if sec.RunAsGroup != nil {
				u.GID = uint32(*sec.RunAsGroup)
			}
			// The image's groups were its own user's: with another user or group, the
			// process is in its group and the pod's, as the CRI plugin makes it.
			if sec.RunAsUser != nil || sec.RunAsGroup != nil {
				u.AdditionalGids = []uint32{u.GID}
			}
			for _, g := range sec.SupplementalGroups {
				u.AdditionalGids = append(u.AdditionalGids, uint32(g))
			}
			slices.Sort(u.AdditionalGids)
			u.AdditionalGids = slices.Compact(u.AdditionalGids)
			return nil
		})
	}
	if sec.Privileged {
		out = append(out, oci.WithPrivileged, oci.WithAllDevicesAllowed, oci.WithHostDevices,
			oci.WithMaskedPaths(nil), oci.WithReadonlyPaths(nil), func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
				// /sys writable, as a privileged container's is.
				for i := range s.Mounts {
					if s.Mounts[i].Destination == "/sys" {
						s.Mounts[i].Options = slices.DeleteFunc(s.Mounts[i].Options, func(o string) bool { return o == "ro" })
					}
				}
				return nil
			})
	}
	if !sec.Privileged && (len(sec.CapAdd) > 0 || len(sec.CapDrop) > 0) {
		out = append(out, capabilityOpt(sec.CapAdd, sec.CapDrop))
	}
	if sec.ReadOnlyRootfs {
		out = append(out, oci.WithRootFSReadonly())
	}
	if sec.NoNewPrivileges {
		out = append(out, oci.WithNoNewPrivileges)
	}
	if len(sec.Sysctls) > 0 {
		out = append(out, func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
			if s.Linux.Sysctl == nil {
				s.Linux.Sysctl = map[string]string{}
			}
			for k, v := range sec.Sysctls {
				s.Linux.Sysctl[k] = v
			}
			return nil
		})
	}
	if sec.SeccompRuntimeDefault && !sec.Privileged {
		// Last, as the CRI plugin applies it: the profile allows what the capabilities do.
		out = append(out, seccomp.WithDefaultProfile())
	}
	return out
}

// capabilityOpt adds and drops capabilities (names without CAP_, or ALL) in every
// capability set, as the CRI plugin does: drops first, then adds.
func capabilityOpt(add, drop []string) oci.SpecOpts {
	return func(_ context.Context, _ oci.Client, _ *containers.Container, s *oci.Spec) error {
		if s.Process.Capabilities == nil {
			s.Process.Capabilities = &specs.LinuxCapabilities{}
		}
		c := s.Process.Capabilities
		sets := []*[]string{&c.Bounding, &c.Effective, &c.Permitted}
		for _, d := range drop {
			for _, set := range sets {
				if d == "ALL" {
					*set = nil
					continue
				}
				*set = slices.DeleteFunc(*set, func(x string) bool { return x == "CAP_"+d })
			}
		}
		for _, a := range add {
			names := []string{"CAP_" + a}
			if a == "ALL" {
				names = cap.Known() // as the CRI plugin: every capability of the kernels it knows
			}
			for _, n := range names {
				for _, set := range sets {
					if !slices.Contains(*set, n) {
						*set = append(*set, n)
					}
				}
			}
		}
		return nil
	}
}

// execOutputLimit is how much of an exec's output is kept (Kubernetes keeps 10 KiB of
// a probe's).
const execOutputLimit = 10 * 1024

// ExecSync implements kubelet.Runtime: Exec, its output kept in a buffer, killed once
// timeout passes.
func (r *Runtime) ExecSync(ctx context.Context, id string, cmd []string, timeout time.Duration) (kubelet.ExecResult, error) {
	run := ctx
	if timeout > 0 {
		var cancel context.CancelFunc
		run, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	var out limitedBuffer
	code, err := r.Exec(run, id, kubelet.ExecOptions{Command: cmd, Stdout: &out, Stderr: &out})
	if err != nil && ctx.Err() == nil && run.Err() != nil {
		return kubelet.ExecResult{}, fmt.Errorf("exec in container %s: %w after %v", id, kubelet.ErrExecTimeout, timeout)
	}
	if err != nil {
		return kubelet.ExecResult{}, err
	}
	return kubelet.ExecResult{ExitCode: code, Output: out.Bytes()}, nil
}

// limitedBuffer keeps the first execOutputLimit bytes written to it, from two writers.
type limitedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if room := execOutputLimit - b.buf.Len(); room > 0 {
		b.buf.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (b *limitedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.buf.Bytes())
}
