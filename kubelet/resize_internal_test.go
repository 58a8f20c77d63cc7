package kubelet

import (
	"reflect"
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
)

func reqs(cpuReq, cpuLim, mem string) corev1.ResourceRequirements {
	r := corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuReq)},
		Limits: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpuLim)}}
	if mem != "" {
		r.Requests[corev1.ResourceMemory] = resource.MustParse(mem)
		r.Limits[corev1.ResourceMemory] = resource.MustParse(mem)
	}
	return r
}

// A resize restarts a container only for a resource that changes and whose
// resizePolicy says RestartContainer.
func TestRestartFor(t *testing.T) {
	memRestart := []corev1.ContainerResizePolicy{{ResourceName: corev1.ResourceMemory, RestartPolicy: corev1.RestartContainer},
		{ResourceName: corev1.ResourceCPU, RestartPolicy: corev1.NotRequired}}
	have := Resources{CPUMillis: 200, CPURequestMillis: 100, MemoryBytes: 64 << 20}
	for _, tc := range []struct {
		name   string
		policy []corev1.ContainerResizePolicy
		want   Resources
		out    bool
	}{
		{"no policy: in place", nil, Resources{CPUMillis: 300, CPURequestMillis: 100, MemoryBytes: 128 << 20}, false},
		{"cpu changes, cpu NotRequired", memRestart, Resources{CPUMillis: 300, CPURequestMillis: 150, MemoryBytes: 64 << 20}, false},
		{"memory changes, memory RestartContainer", memRestart, Resources{CPUMillis: 200, CPURequestMillis: 100, MemoryBytes: 128 << 20}, true},
	} {
		if got := restartFor(&corev1.Container{ResizePolicy: tc.policy}, tc.want, have); got != tc.out {
			t.Errorf("%s: restartFor = %v", tc.name, got)
		}
	}
}

// The status reports what a container was allocated and what its cgroup has: the
// allocation while they agree, the cgroup's value where a resize is not applied yet;
// nothing for a container that does not run; only cpu and memory.
func TestStatusResources(t *testing.T) {
	alloc := reqs("150m", "300m", "64Mi")
	alloc.Limits[corev1.ResourceEphemeralStorage] = resource.MustParse("1Gi")
	applied := Container{State: StateRunning, Resources: &Resources{CPUMillis: 300, CPURequestMillis: 150, MemoryBytes: 64 << 20}}
	got := statusResources(alloc, applied)
	if got == nil || got.Limits.Cpu().String() != "300m" || got.Requests.Cpu().String() != "150m" || got.Limits.Memory().String() != "64Mi" {
		t.Fatalf("applied: %+v", got)
	}
	if _, ok := got.Limits[corev1.ResourceEphemeralStorage]; ok {
		t.Errorf("ephemeral-storage reported: %v", got.Limits)
	}
	behind := applied
	behind.Resources = &Resources{CPUMillis: 200, CPURequestMillis: 100, MemoryBytes: 64 << 20}
	if got := statusResources(alloc, behind); got.Limits.Cpu().String() != "200m" || got.Requests.Cpu().String() != "100m" || got.Limits.Memory().String() != "64Mi" {
		t.Errorf("not applied yet: %+v", got)
	}
	if got := statusResources(alloc, Container{State: StateExited}); got != nil {
		t.Errorf("an exited container: %+v", got)
	}
	if got := statusResources(corev1.ResourceRequirements{}, applied); got != nil {
		t.Errorf("no resources: %+v", got)
	}
}

// prunedCopy is what keepCPUMemory was: the whole requirements copied, then every
// resource but cpu and memory deleted from the copy.
func prunedCopy(r corev1.ResourceRequirements) *corev1.ResourceRequirements {
	out := r.DeepCopy()
	for _, l := range []corev1.ResourceList{out.Limits, out.Requests} {
		for name := range l {
			if name != corev1.ResourceCPU && name != corev1.ResourceMemory {
				delete(l, name)
			}
		}
	}
	if len(out.Limits) == 0 {
		out.Limits = nil
	}
	if len(out.Requests) == 0 {
		out.Requests = nil
	}
	if out.Limits == nil && out.Requests == nil {
		return nil
	}
	return out
}

// TestKeepCPUMemory: the status's cpu and memory are the pruned copy of the
// requirements they were (claims kept), not shared with the spec; and a running
// container's status takes 7 allocations for them, where copying the whole requirements
// for the allocated requests alone made it 9.
func TestKeepCPUMemory(t *testing.T) {
	full := reqs("150m", "300m", "64Mi")
	full.Limits[corev1.ResourceEphemeralStorage] = resource.MustParse("1Gi")
	full.Claims = []corev1.ResourceClaim{{Name: "gpu"}}
	onlyOther := corev1.ResourceRequirements{Limits: corev1.ResourceList{corev1.ResourceEphemeralStorage: resource.MustParse("1Gi")},
		Claims: []corev1.ResourceClaim{{Name: "gpu"}}}
	for name, r := range map[string]corev1.ResourceRequirements{
		"cpu, memory and more": full, "cpu only": reqs("100m", "200m", ""), "requests only": {Requests: full.Requests},
		"neither cpu nor memory": onlyOther, "nothing": {},
	} {
		got, want := keepCPUMemory(r), prunedCopy(r)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
		if got != nil && got.Limits != nil {
			before := r.Limits.Cpu().String()
			got.Limits[corev1.ResourceCPU] = resource.MustParse("7")
			if r.Limits.Cpu().String() != before {
				t.Errorf("%s: the limits are shared with the spec", name)
			}
		}
	}
	if raceEnabled {
		return
	}
	c := &corev1.Container{Name: "app", Resources: reqs("150m", "300m", "64Mi")}
	in := podState{containers: map[string][]Container{"app": {{State: StateRunning}}}}
	if n := testing.AllocsPerRun(100, func() { resizeStatus(&corev1.ContainerStatus{}, c, in) }); n > 7 {
		t.Errorf("%v allocations a container's status resources, want at most 7", n)
	}
}

// computePodStatus reports ephemeral containers (never ready, not counted in the pod's
// readiness), allocatedResources and resources, and the resize conditions that hold,
// keeping their transition time while they hold and dropping them once they do not.
func TestComputePodStatusEphemeralAndResize(t *testing.T) {
	spec := &corev1.PodSpec{RestartPolicy: corev1.RestartPolicyAlways,
		Containers: []corev1.Container{{Name: "app", Image: "img", Resources: reqs("200m", "400m", "")}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "debug", Image: "busybox"}},
			{EphemeralContainerCommon: corev1.EphemeralContainerCommon{Name: "later", Image: "busybox"}}}}
	app := running("app", 0, 1)
	app.Resources = &Resources{CPUMillis: 300, CPURequestMillis: 150}
	in := podState{spec: spec, old: &corev1.PodStatus{}, now: at(10), scheme: "sim",
		containers: map[string][]Container{"app": {app}, "debug": {running("debug", 0, 5)}},
		allocated:  allocation{{name: "app", resources: reqs("150m", "300m", "")}},
		resize:     []corev1.PodCondition{{Type: corev1.PodResizePending, Status: corev1.ConditionTrue, Reason: ReasonResizeDeferred, Message: "m"}}}
	st := computePodStatus(in)
	if len(st.EphemeralContainerStatuses) != 2 {
		t.Fatalf("ephemeral statuses %+v", st.EphemeralContainerStatuses)
	}
	if d := st.EphemeralContainerStatuses[0]; d.Name != "debug" || d.State.Running == nil || d.Ready {
		t.Errorf("debug: %+v", d)
	}
	if l := st.EphemeralContainerStatuses[1]; l.State.Waiting == nil || l.State.Waiting.Reason != ReasonContainerCreating {
		t.Errorf("later: %+v", l)
	}
	if c := conditionIn(st, corev1.PodReady); c.Status != corev1.ConditionTrue {
		t.Errorf("Ready %s: ephemeral containers do not count", c.Status)
	}
	cs := st.ContainerStatuses[0]
	if cs.AllocatedResources.Cpu().String() != "150m" || cs.Resources == nil || cs.Resources.Limits.Cpu().String() != "300m" {
		t.Errorf("app: allocated %v, resources %+v", cs.AllocatedResources, cs.Resources)
	}
	p := conditionIn(st, corev1.PodResizePending)
	if p.Status != corev1.ConditionTrue || p.Reason != ReasonResizeDeferred || !p.LastTransitionTime.Time.Equal(at(10)) {
		t.Errorf("pending: %+v", p)
	}
	in.old, in.now = st, at(20)
	if p := conditionIn(computePodStatus(in), corev1.PodResizePending); !p.LastTransitionTime.Time.Equal(at(10)) {
		t.Errorf("still pending: transition moved to %v", p.LastTransitionTime)
	}
	in.resize = nil
	if p := conditionIn(computePodStatus(in), corev1.PodResizePending); p.Type != "" {
		t.Errorf("a resize no longer pending keeps its condition: %+v", p)
	}
}

func conditionIn(st *corev1.PodStatus, typ corev1.PodConditionType) corev1.PodCondition {
	for _, c := range st.Conditions {
		if c.Type == typ {
			return c
		}
	}
	return corev1.PodCondition{}
}

// The pod's requests the kubelet keeps for other pods' fits are its container's own map
// when it has one container and they are the same (no copy a pod), and a sum otherwise.
func TestAllocatedRequestsShareTheContainers(t *testing.T) {
	one := reqs("150m", "300m", "64Mi")
	for _, tc := range []struct {
		name   string
		spec   corev1.PodSpec
		shared bool
		cpu    string
	}{
		{"one container", corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Resources: one}}}, true, "150m"},
		{"two containers", corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Resources: one}, {Name: "b", Resources: reqs("50m", "50m", "")}}}, false, "200m"},
		{"overhead", corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Resources: one}},
			Overhead: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("10m")}}, false, "160m"},
		{"an init container asking more", corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Resources: one}},
			InitContainers: []corev1.Container{{Name: "i", Resources: reqs("400m", "400m", "")}}}, false, "400m"},
		{"pod-level resources", corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Resources: one}},
			Resources: &corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("500m")}}}, false, "500m"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, mem := &Kubelet{}, &podMemory{}
			k.setAllocated(mem, nil, &tc.spec)
			if shared := reflect.ValueOf(mem.allocatedRequests).Pointer() == reflect.ValueOf(one.Requests).Pointer(); shared != tc.shared {
				t.Errorf("the container's map: %v, want %v", shared, tc.shared)
			}
			if got := mem.allocatedRequests.Cpu().String(); got != tc.cpu {
				t.Errorf("cpu %s, want %s", got, tc.cpu)
			}
			if tc.shared && !raceEnabled {
				// The container's map as it is: nothing summed, nothing made.
				if n := testing.AllocsPerRun(100, func() { k.setAllocated(mem, nil, &tc.spec) }); n != 0 {
					t.Errorf("%v allocations to record it, want none", n)
				}
			}
		})
	}
}

// TestAllocationOfAnUnchangedPod: a pod's allocation is recorded once, holding the
// spec's requirements (no copy), and a sync of the pod unchanged reads it without
// building another: one allocation (the list of its containers), where a map of them
// was built at every sync and the first kept for the pod's life (issue 26). A resize
// is told apart.
func TestAllocationOfAnUnchangedPod(t *testing.T) {
	pod := &corev1.Pod{Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "a", Resources: reqs("150m", "300m", "64Mi")},
		{Name: "b", Resources: reqs("50m", "50m", "")}}}}
	k, mem := &Kubelet{}, &podMemory{}
	if run, cond := k.allocate(pod, mem); run != pod || cond != nil {
		t.Fatalf("first allocation: %p %v", run, cond)
	}
	if r, ok := mem.allocated.of("b"); !ok || reflect.ValueOf(r.Requests).Pointer() != reflect.ValueOf(pod.Spec.Containers[1].Resources.Requests).Pointer() {
		t.Errorf("b's allocation %v (%v) is not the spec's", r, ok)
	}
	if !mem.allocated.is(resizable(&pod.Spec)) {
		t.Error("the allocation differs from the spec it was made of")
	}
	resized := pod.DeepCopy()
	resized.Spec.Containers[1].Resources = reqs("60m", "60m", "")
	if mem.allocated.is(resizable(&resized.Spec)) {
		t.Error("a resize is the allocation")
	}
	if raceEnabled {
		return
	}
	if n := testing.AllocsPerRun(100, func() { k.allocate(pod, mem) }); n > 1 {
		t.Errorf("%v allocations a sync of an unchanged pod, want at most 1", n)
	}
}
