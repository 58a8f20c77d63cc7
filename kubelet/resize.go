package kubelet

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/labels"
	resourcehelper "k8s.io/component-helpers/resource"

	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
)

// In-place resize (pods/resize), as Kubernetes' kubelet does it. A pod's containers run
// with the resources the kubelet allocated them: the spec's when it admitted the pod,
// and a resized spec's once the node fits it (else the resize is pending: Infeasible
// when the node could never fit it, Deferred when other pods use the room now). The
// allocation is then actuated: each running container whose cgroup differs is updated
// in place (resizePolicy NotRequired, the default) or restarted (RestartContainer). The
// status says where a resize is: the PodResizePending and PodResizeInProgress
// conditions, and each container's allocatedResources and the resources it runs with.
//
// The allocation lives in the pod's memory: a restarted kubelet allocates a pod's
// spec again, as Kubernetes' kubelet without its checkpoint would.

// Kubernetes' reasons of a pending resize.
const (
	ReasonResizeInfeasible = "Infeasible"
	ReasonResizeDeferred   = "Deferred"
	ReasonResizeError      = "Error"
)

// resizable are the containers whose resources a resize changes: the app containers
// and sidecars, in the spec's order.
func resizable(spec *corev1.PodSpec) []*corev1.Container {
	out := make([]*corev1.Container, 0, len(spec.InitContainers)+len(spec.Containers))
	for i := range spec.InitContainers {
		if isSidecar(&spec.InitContainers[i]) {
			out = append(out, &spec.InitContainers[i])
		}
	}
	for i := range spec.Containers {
		out = append(out, &spec.Containers[i])
	}
	return out
}

// allocate decides the pod's allocation for this sync and returns the pod as it is to
// run: pod itself when its spec is allocated, else a copy with the allocated resources;
// and the PodResizePending condition when a resize waits (nil if none).
func (k *Kubelet) allocate(pod *corev1.Pod, mem *podMemory) (*corev1.Pod, *corev1.PodCondition) {
	cs := resizable(&pod.Spec)
	if mem.allocated == nil {
		k.setAllocated(mem, allocationOf(cs), &pod.Spec)
		return pod, nil
	}
	if mem.allocated.is(cs) {
		return pod, nil
	}
	desired := allocationOf(cs)
	if reason, msg := k.fits(pod); reason != "" {
		run := withResources(pod, mem.allocated)
		if mem.pendingMsg != msg {
			mem.pendingMsg = msg
			k.rec.Eventf(pod, record.Warning, "ResizeInfeasible", "Pod resize %s: %s", strings.ToLower(reason), msg)
		}
		return run, &corev1.PodCondition{Type: corev1.PodResizePending, Status: corev1.ConditionTrue, Reason: reason, Message: msg}
	}
	mem.pendingMsg = ""
	k.setAllocated(mem, desired, &pod.Spec)
	return pod, nil
}

// allocation is what the kubelet allocated a pod's app containers and sidecars, in the
// spec's order (resizable), which a pod's updates keep (they add and remove no
// container): a slice, where a map of one container's requirements was 700 bytes a
// pod, 103 MB of the simulated nodes' heap at 150,000 pods (issue 26).
type allocation []allocated

type allocated struct {
	name      string
	resources corev1.ResourceRequirements
}

// allocationOf is cs' resources as they are in the spec (shared with it).
func allocationOf(cs []*corev1.Container) allocation {
	out := make(allocation, len(cs))
	for i, c := range cs {
		out[i] = allocated{name: c.Name, resources: c.Resources}
	}
	return out
}

// of is the container's allocation, if it has one.
func (a allocation) of(name string) (corev1.ResourceRequirements, bool) {
	for _, c := range a {
		if c.name == name {
			return c.resources, true
		}
	}
	return corev1.ResourceRequirements{}, false
}

// is says whether a allocates cs what they ask, container for container.
func (a allocation) is(cs []*corev1.Container) bool {
	if len(a) != len(cs) {
		return false
	}
	for i, c := range cs {
		r := &a[i].resources
		if a[i].name != c.Name || !sameList(r.Limits, c.Resources.Limits) || !sameList(r.Requests, c.Resources.Requests) ||
			!slices.Equal(r.Claims, c.Resources.Claims) {
			return false
		}
	}
	return true
}

// sameList says whether a and b hold the same quantities (equality.Semantic's
// comparison, without its reflection's allocations at every sync of every pod).
func sameList(a, b corev1.ResourceList) bool {
	if len(a) != len(b) {
		return false
	}
	for name, q := range a {
		if v, ok := b[name]; !ok || q.Cmp(v) != 0 {
			return false
		}
	}
	return true
}

// setAllocated records an allocation and the pod's requests with it, which other pods'
// fits read (under k.mu).
func (k *Kubelet) setAllocated(mem *podMemory, alloc allocation, spec *corev1.PodSpec) {
	// A pod of one container (most pods) asks what its container asks: that map, which
	// the cached pods of one template share (cache.PodParts), not a copy a pod, and not
	// summed again (resourcehelper.PodRequests was 1.3% of the simulated nodes' CPU at
	// 50,000 pods, issue 26).
	var reqs corev1.ResourceList
	if cs := spec.Containers; len(cs) == 1 && len(spec.InitContainers) == 0 && spec.Overhead == nil && spec.Resources == nil {
		reqs = cs[0].Resources.Requests
	} else {
		reqs = resourcehelper.PodRequests(&corev1.Pod{Spec: *spec}, resourcehelper.PodResourcesOptions{})
		if len(cs) == 1 && equality.Semantic.DeepEqual(reqs, cs[0].Resources.Requests) {
			reqs = cs[0].Resources.Requests
		}
	}
	k.mu.Lock()
	mem.allocated, mem.allocatedRequests = alloc, reqs
	k.mu.Unlock()
}

// withResources is a copy of pod whose resizable containers have alloc's resources.
func withResources(pod *corev1.Pod, alloc allocation) *corev1.Pod {
	out := pod.DeepCopy()
	for _, c := range resizable(&out.Spec) {
		if r, ok := alloc.of(c.Name); ok {
			c.Resources = *r.DeepCopy()
		}
	}
	return out
}

// fits says why the node cannot give pod its spec's requests: Infeasible when they are
// beyond its allocatable, Deferred when the other pods' requests (the larger of their
// spec's and their allocation, as Kubernetes counts a pod being resized) leave too
// little now; "" when it fits.
func (k *Kubelet) fits(pod *corev1.Pod) (reason, message string) {
	want := resourcehelper.PodRequests(pod, resourcehelper.PodResourcesOptions{})
	used := corev1.ResourceList{}
	for _, p := range k.pods.Lister().List(labels.Everything()) {
		if p.UID == pod.UID || podTerminal(p.Status.Phase) || p.DeletionTimestamp != nil {
			continue
		}
		reqs := resourcehelper.PodRequests(p, resourcehelper.PodResourcesOptions{})
		k.mu.Lock()
		if m := k.memory[cache.Key(p)]; m != nil && m.uid == p.UID {
			for name, q := range m.allocatedRequests {
				if cur, ok := reqs[name]; !ok || q.Cmp(cur) > 0 {
					reqs[name] = q
				}
			}
		}
		k.mu.Unlock()
		for name, q := range reqs {
			sum := used[name]
			sum.Add(q)
			used[name] = sum
		}
	}
	for _, name := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		w, capacity := want[name], k.capacity[name]
		if capacity.IsZero() {
			continue
		}
		if w.Cmp(capacity) > 0 {
			return ReasonResizeInfeasible, fmt.Sprintf("Node didn't have enough capacity: %s, requested: %s, capacity: %s", name, quantity(name, w), quantity(name, capacity))
		}
		u := used[name]
		free := capacity.DeepCopy()
		free.Sub(u)
		if w.Cmp(free) > 0 {
			return ReasonResizeDeferred, fmt.Sprintf("Node didn't have enough resource: %s, requested: %d, used: %d, capacity: %d",
				name, amount(name, w), amount(name, u), amount(name, capacity))
		}
	}
	return "", ""
}

// amount is a quantity as Kubernetes' messages print it: cpu in millicores, memory in
// bytes.
func amount(name corev1.ResourceName, q resource.Quantity) int64 {
	if name == corev1.ResourceCPU {
		return q.MilliValue()
	}
	return q.Value()
}

func quantity(name corev1.ResourceName, q resource.Quantity) string {
	return fmt.Sprint(amount(name, q))
}

// containerResources are what a container's cgroup is to have for its resources.
func containerResources(r *corev1.ResourceRequirements) Resources {
	var out Resources
	if q, ok := r.Limits[corev1.ResourceCPU]; ok {
		out.CPUMillis = q.MilliValue()
	}
	if q, ok := r.Limits[corev1.ResourceMemory]; ok {
		out.MemoryBytes = q.Value()
	}
	if q, ok := r.Requests[corev1.ResourceCPU]; ok {
		out.CPURequestMillis = q.MilliValue()
	}
	return out
}

// actuate brings each running container of run (the pod with its allocation) to its
// allocated resources: in place, or by a restart where the container's resizePolicy
// asks for one for a resource that changed. It returns the PodResizeInProgress
// condition while a container is not there yet (nil when all are), and whether it
// changed a container.
func (k *Kubelet) actuate(ctx context.Context, run *corev1.Pod, hist map[string][]Container, mem *podMemory) (*corev1.PodCondition, bool, error) {
	changed := false
	var failed []string
	for _, c := range resizable(&run.Spec) {
		h := hist[c.Name]
		if len(h) == 0 || h[0].State != StateRunning || h[0].Resources == nil {
			continue
		}
		want, have := containerResources(&c.Resources), *h[0].Resources
		if want == have {
			continue
		}
		if restartFor(c, want, have) {
			k.rec.Eventf(run, record.Normal, "Killing", "Container %s resize requires restart", c.Name)
			if err := k.rt.Stop(ctx, h[0].ID, gracePeriod(run)); err != nil && !errors.Is(err, ErrNotFound) {
				return nil, changed, fmt.Errorf("restart container %s of %s to resize it: %w", c.Name, cache.Key(run), err)
			}
			put(&mem.resizeRestart, c.Name, true)
			changed = true
			continue
		}
		if err := k.rt.UpdateResources(ctx, h[0].ID, want, podResources(&run.Spec)); err != nil {
			if errors.Is(err, ErrNotRunning) || errors.Is(err, ErrNotFound) {
				continue // it exited meanwhile: it starts again with the allocation
			}
			k.log.Warn("resize container", "pod", cache.Key(run), "container", c.Name, "error", err)
			failed = append(failed, fmt.Sprintf("%s: %v", c.Name, err))
			continue
		}
		changed = true
	}
	if len(failed) > 0 {
		return &corev1.PodCondition{Type: corev1.PodResizeInProgress, Status: corev1.ConditionTrue, Reason: ReasonResizeError,
			Message: strings.Join(failed, "; ")}, changed, nil
	}
	if changed {
		return &corev1.PodCondition{Type: corev1.PodResizeInProgress, Status: corev1.ConditionTrue}, true, nil
	}
	return nil, false, nil
}

// restartFor says whether c must restart to go from have to want: a resource that
// changes has resizePolicy RestartContainer.
func restartFor(c *corev1.Container, want, have Resources) bool {
	cpu := want.CPUMillis != have.CPUMillis || want.CPURequestMillis != have.CPURequestMillis
	memory := want.MemoryBytes != have.MemoryBytes
	for _, p := range c.ResizePolicy {
		if p.RestartPolicy != corev1.RestartContainer {
			continue
		}
		if p.ResourceName == corev1.ResourceCPU && cpu || p.ResourceName == corev1.ResourceMemory && memory {
			return true
		}
	}
	return false
}

// statusResources are the resources a container runs with as its status reports them:
// the allocated ones, each as the cgroup has it when that differs (a resize not yet
// actuated); nil when the container does not run.
func statusResources(alloc corev1.ResourceRequirements, c Container) *corev1.ResourceRequirements {
	if c.State != StateRunning {
		return nil
	}
	out := keepCPUMemory(alloc)
	if out == nil || c.Resources == nil {
		return out
	}
	have := *c.Resources
	set := func(l corev1.ResourceList, name corev1.ResourceName, v int64, milli bool) {
		q, ok := l[name]
		if !ok {
			return
		}
		if milli && q.MilliValue() != v {
			l[name] = *resource.NewMilliQuantity(v, resource.DecimalSI)
		} else if !milli && q.Value() != v {
			l[name] = *resource.NewQuantity(v, resource.BinarySI)
		}
	}
	set(out.Limits, corev1.ResourceCPU, have.CPUMillis, true)
	set(out.Limits, corev1.ResourceMemory, have.MemoryBytes, false)
	set(out.Requests, corev1.ResourceCPU, have.CPURequestMillis, true)
	return out
}

// cpuMemory is a copy of l's cpu and memory, the resources a cgroup has (nil when it
// has neither), copying nothing else: built for every container at every status of
// every pod, where copies of the whole requirements, pruned, were 2% of the simulated
// nodes' allocation at 150,000 pods (issue 26).
func cpuMemory(l corev1.ResourceList) corev1.ResourceList {
	cpu, hasCPU := l[corev1.ResourceCPU]
	mem, hasMem := l[corev1.ResourceMemory]
	if !hasCPU && !hasMem {
		return nil
	}
	out := make(corev1.ResourceList, 2)
	if hasCPU {
		out[corev1.ResourceCPU] = cpu.DeepCopy()
	}
	if hasMem {
		out[corev1.ResourceMemory] = mem.DeepCopy()
	}
	return out
}

// keepCPUMemory is r with only its cpu and memory limits and requests (cpuMemory), and
// its claims; nil when it has no cpu or memory.
func keepCPUMemory(r corev1.ResourceRequirements) *corev1.ResourceRequirements {
	out := &corev1.ResourceRequirements{Limits: cpuMemory(r.Limits), Requests: cpuMemory(r.Requests)}
	if out.Limits == nil && out.Requests == nil {
		return nil
	}
	out.Claims = slices.Clone(r.Claims)
	return out
}
