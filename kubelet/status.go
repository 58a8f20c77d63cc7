package kubelet

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/quota"
)

// The pure core of pod handling: what the pod's status is, given its containers in the
// runtime, and what to do next. No I/O; time is a parameter.

// Waiting reasons and event reasons, as Kubernetes names them.
const (
	ReasonContainerCreating = "ContainerCreating"
	ReasonErrImagePull      = "ErrImagePull"
	ReasonImagePullBackOff  = "ImagePullBackOff"
	ReasonErrImageNeverPull = "ErrImageNeverPull"
	ReasonCrashLoopBackOff  = "CrashLoopBackOff"
	ReasonCreateError       = "CreateContainerError"
	ReasonCreateConfigError = "CreateContainerConfigError"
	ReasonPostStartHook     = "PostStartHookError"
)

func restartPolicy(spec *corev1.PodSpec) corev1.RestartPolicy {
	if p := spec.RestartPolicy; p != "" {
		return p
	}
	return corev1.RestartPolicyAlways
}

// pullPolicy defaults as Kubernetes does: Always for ":latest" or untagged images,
// else IfNotPresent.
func pullPolicy(c *corev1.Container) string {
	if p := c.ImagePullPolicy; p != "" {
		return string(p)
	}
	img := c.Image
	if strings.Contains(img, "@") {
		return PullIfNotPresent
	}
	i := strings.LastIndex(img, ":")
	if i < 0 || strings.Contains(img[i:], "/") || img[i+1:] == "latest" {
		return PullAlways
	}
	return PullIfNotPresent
}

// gracePeriod is how long a deleted pod's containers get between SIGTERM and SIGKILL.
func gracePeriod(pod *corev1.Pod) time.Duration {
	if g := pod.DeletionGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	if g := pod.Spec.TerminationGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	return 30 * time.Second
}

// byName groups a pod's containers by container name, newest attempt first.
func byName(cs []Container) map[string][]Container {
	m := map[string][]Container{}
	for _, c := range cs {
		m[c.Name] = append(m[c.Name], c)
	}
	for _, h := range m {
		slices.SortFunc(h, func(a, b Container) int {
			return cmp.Or(cmp.Compare(b.Attempt, a.Attempt), b.CreatedAt.Compare(a.CreatedAt))
		})
	}
	return m
}

// shouldRestart says whether an exited container runs again under policy.
func shouldRestart(policy corev1.RestartPolicy, exitCode int) bool {
	switch policy {
	case corev1.RestartPolicyNever:
		return false
	case corev1.RestartPolicyOnFailure:
		return exitCode != 0
	}
	return true
}

// backoff is one container's (or image pull's) restart back-off, kept in memory: a
// restarted kubelet starts crashing containers after BackoffInitial again.
type backoff struct {
	delay   time.Duration
	updated time.Time
}

type backoffPolicy struct{ initial, max, reset time.Duration }

// stale: the back-off no longer applies, because there is none, it was last used long
// ago (twice the maximum, as client-go's flowcontrol has it), or the container it holds
// back ran long enough to count as healthy.
func (p backoffPolicy) stale(b *backoff, last *Container, now time.Time) bool {
	return b == nil || now.Sub(b.updated) > 2*p.max ||
		(last != nil && !last.StartedAt.IsZero() && last.FinishedAt.Sub(last.StartedAt) >= p.reset)
}

// next is the back-off after an attempt (a restart or a failed pull) at now.
func (p backoffPolicy) next(b *backoff, last *Container, now time.Time) *backoff {
	if p.stale(b, last, now) {
		return &backoff{delay: p.initial, updated: now}
	}
	return &backoff{delay: min(2*b.delay, p.max), updated: now}
}

// action is what a container needs.
type action int

const (
	// actNone: it runs, or it is done for good.
	actNone action = iota
	// actStart: create and start attempt decision.attempt.
	actStart
	// actWait: restart once decision.wait has passed (CrashLoopBackOff).
	actWait
)

func (a action) String() string { return [...]string{"none", "start", "wait"}[a] }

type decision struct {
	action  action
	attempt int
	wait    time.Duration
}

// decideContainer decides the next step for one container of a live pod, from its
// containers in the runtime (newest attempt first) and its restart back-off.
func decideContainer(policy corev1.RestartPolicy, hist []Container, b *backoff, now time.Time, p backoffPolicy) decision {
	if len(hist) == 0 {
		return decision{action: actStart}
	}
	last := hist[0]
	if last.State == StateRunning {
		return decision{action: actNone}
	}
	exitCode := last.ExitCode
	if last.State != StateExited {
		exitCode = -1 // created but never started, or unknown: it did not succeed
	}
	if !shouldRestart(policy, exitCode) {
		return decision{action: actNone}
	}
	next := decision{action: actStart, attempt: last.Attempt + 1}
	if p.stale(b, &last, now) {
		return next
	}
	finished := last.FinishedAt
	if finished.IsZero() {
		finished = b.updated
	}
	if wait := b.delay - now.Sub(finished); wait > 0 {
		return decision{action: actWait, attempt: next.attempt, wait: wait}
	}
	return next
}

// podTerminal: a pod in a terminal phase never runs a container again.
func podTerminal(phase corev1.PodPhase) bool {
	return phase == corev1.PodSucceeded || phase == corev1.PodFailed
}

// podState is what a pod's status is computed from.
type podState struct {
	spec *corev1.PodSpec
	// old is the previous status, whose transition times and start time are kept.
	old *corev1.PodStatus
	// containers are the pod's containers in the runtime, grouped by byName.
	containers map[string][]Container
	// waiting are the reasons the kubelet holds containers waiting (ErrImagePull,
	// CrashLoopBackOff, CreateContainerConfigError, ...), by name.
	waiting        map[string]*corev1.ContainerStateWaiting
	scheme, hostIP string
	// podIP is the pod's address: hostIP's without a pod network or for a hostNetwork
	// pod, else the one its network gave it ("": none yet).
	podIP string
	now   time.Time
	// probe is a running container's probe result (nil: no probes).
	probe func(c Container, typ probeType) result
	// messages are exited containers' termination messages, by container ID.
	messages map[string]string
	// failed is a failure of the whole pod (the active deadline passed, an emptyDir
	// over its sizeLimit); nil if none.
	failed *podFailure
	// unmounted says which volumes are not set up yet, and why ("" when all are).
	unmounted string
	// generation is the pod's metadata.generation: the status and the kubelet's
	// conditions say they observed it (observedGeneration), as Kubernetes' kubelet does.
	generation int64
	// allocated are the resources the kubelet allocated the app containers and
	// sidecars, by name (resize.go); resize are the PodResizePending and
	// PodResizeInProgress conditions that hold now.
	allocated allocation
	resize    []corev1.PodCondition
}

// podFailure is why a pod failed as a whole; grace, when set, overrides the pod's
// grace period for its containers (an eviction's 0).
type podFailure struct {
	reason, message string
	grace           *time.Duration
	// rejected: refused at admission, before anything of the pod was made (its
	// sandbox, its network) — and nothing is made after.
	rejected bool
}

// computePodStatus is the pod's status as Kubernetes would write it. Its times are whole
// seconds, as the API keeps them (wireTime): a status computed again from the same state
// equals the one read back, and is not written again.
func computePodStatus(in podState) *corev1.PodStatus {
	spec, old, now := in.spec, in.old, in.now
	st := &corev1.PodStatus{HostIP: in.hostIP, PodIP: in.podIP, StartTime: old.StartTime,
		QOSClass: quota.QOSClass(spec), ObservedGeneration: in.generation}
	if in.hostIP != "" {
		st.HostIPs = []corev1.HostIP{{IP: in.hostIP}}
	}
	if in.podIP != "" {
		st.PodIPs = []corev1.PodIP{{IP: in.podIP}}
	}
	if st.StartTime == nil {
		st.StartTime = ptr.To(wireTime(now))
	}
	initDone, initFailed, pendingInit := initProgress(spec, in.containers, in.probe)
	var sidecars []corev1.ContainerStatus
	if len(spec.InitContainers) > 0 {
		st.InitContainerStatuses = make([]corev1.ContainerStatus, 0, len(spec.InitContainers))
		for i := range spec.InitContainers {
			c := &spec.InitContainers[i]
			cs := containerStatus(c, in.containers[c.Name], in.waiting[c.Name], in, !isSidecar(c))
			if isSidecar(c) {
				resizeStatus(&cs, c, in)
			}
			if !initDone && cs.State.Waiting != nil && cs.State.Waiting.Reason == ReasonContainerCreating && i > 0 {
				cs.State.Waiting.Reason = "PodInitializing"
			}
			st.InitContainerStatuses = append(st.InitContainerStatuses, cs)
			if isSidecar(c) {
				sidecars = append(sidecars, cs)
			}
		}
	}
	st.ContainerStatuses = make([]corev1.ContainerStatus, 0, len(spec.Containers))
	for i := range spec.Containers {
		c := &spec.Containers[i]
		cs := containerStatus(c, in.containers[c.Name], in.waiting[c.Name], in, false)
		if !initDone && cs.State.Waiting != nil && cs.State.Waiting.Reason == ReasonContainerCreating {
			cs.State.Waiting.Reason = "PodInitializing"
		}
		resizeStatus(&cs, c, in)
		st.ContainerStatuses = append(st.ContainerStatuses, cs)
	}
	// Ephemeral containers: as they run, never ready (Kubernetes'); those not made
	// yet wait, as the others do.
	for i := range spec.EphemeralContainers {
		c := (*corev1.Container)(&spec.EphemeralContainers[i].EphemeralContainerCommon)
		cs := containerStatus(c, in.containers[c.Name], in.waiting[c.Name], in, false)
		cs.Ready = false
		st.EphemeralContainerStatuses = append(st.EphemeralContainerStatuses, cs)
	}
	switch {
	case initFailed && restartPolicy(spec) == corev1.RestartPolicyNever:
		st.Phase = corev1.PodFailed
	case !initDone:
		st.Phase = corev1.PodPending
	default:
		st.Phase = podPhase(restartPolicy(spec), st.ContainerStatuses, sidecars)
	}
	if podTerminal(old.Phase) {
		st.Phase = old.Phase // terminal is forever, whatever the runtime forgets
		st.Reason, st.Message = old.Reason, old.Message
	}
	if f := in.failed; f != nil {
		st.Phase, st.Reason, st.Message = corev1.PodFailed, f.reason, f.message
	}

	var unready []string
	for _, cs := range slices.Concat(sidecars, st.ContainerStatuses) {
		if !cs.Ready {
			unready = append(unready, cs.Name)
		}
	}
	ready := cond(corev1.ConditionTrue, "", "")
	switch {
	case podTerminal(st.Phase):
		ready = cond(corev1.ConditionFalse, "PodCompleted", "")
	case len(unready) > 0:
		ready = cond(corev1.ConditionFalse, "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " ")))
	}
	initialized := cond(corev1.ConditionTrue, "", "")
	if !initDone {
		initialized = cond(corev1.ConditionFalse, "ContainersNotInitialized", fmt.Sprintf("containers with incomplete status: [%s]", strings.Join(pendingInit, " ")))
	}
	started := cond(corev1.ConditionTrue, "", "")
	if in.unmounted != "" {
		started = cond(corev1.ConditionFalse, "VolumesNotReady", in.unmounted)
	}
	st.Conditions = make([]corev1.PodCondition, 0, 5)
	for _, c := range []struct {
		typ corev1.PodConditionType
		c   corev1.PodCondition
	}{
		{corev1.PodInitialized, initialized},
		{corev1.PodReady, ready},
		{corev1.ContainersReady, ready},
		{corev1.PodScheduled, cond(corev1.ConditionTrue, "", "")},
		{corev1.PodReadyToStartContainers, started},
	} {
		c.c.Type = c.typ
		c.c.ObservedGeneration = in.generation
		c.c.LastTransitionTime = wireTime(now)
		for _, o := range old.Conditions {
			if o.Type == c.typ && o.Status == c.c.Status && !o.LastTransitionTime.IsZero() {
				c.c.LastTransitionTime = o.LastTransitionTime
			}
		}
		st.Conditions = append(st.Conditions, c.c)
	}
	for _, c := range in.resize {
		c.ObservedGeneration = in.generation
		c.LastTransitionTime, c.LastProbeTime = wireTime(now), wireTime(now)
		for _, o := range old.Conditions {
			if o.Type == c.Type && o.Status == c.Status && o.Reason == c.Reason && !o.LastTransitionTime.IsZero() {
				c.LastTransitionTime, c.LastProbeTime = o.LastTransitionTime, o.LastProbeTime
			}
		}
		st.Conditions = append(st.Conditions, c)
	}
	// Conditions others own (DisruptionTarget, written by the eviction and the pod
	// garbage collector) are kept, as Kubernetes' kubelet keeps them; the resize's are
	// the kubelet's, there while they hold.
	for _, o := range old.Conditions {
		if o.Type == corev1.PodResizePending || o.Type == corev1.PodResizeInProgress {
			continue
		}
		if !slices.ContainsFunc(st.Conditions, func(c corev1.PodCondition) bool { return c.Type == o.Type }) {
			st.Conditions = append(st.Conditions, o)
		}
	}
	return st
}

// isSidecar: an init container with restartPolicy Always (Kubernetes' restartable init
// container) starts in order with the others but keeps running beside the app
// containers, restarted whenever it stops, until they are done.
func isSidecar(c *corev1.Container) bool {
	return c.RestartPolicy != nil && *c.RestartPolicy == corev1.ContainerRestartPolicyAlways
}

// isStarted: a running container counts as started once its startup probe, if it has
// one, succeeded (probe nil: no probes run); its postStart hook ran before it was seen
// running.
func isStarted(spec *corev1.Container, c Container, probe func(Container, probeType) result) bool {
	return c.State == StateRunning && (spec.StartupProbe == nil || probe == nil || probe(c, startup) == resultSuccess)
}

// initProgress reads a pod's init containers: done when each exited 0 in order, or,
// for a sidecar, runs and has started (or an app container has started, which means
// they did); failed when the first one not done is no sidecar and exited with an
// error; and the names of those not done.
func initProgress(spec *corev1.PodSpec, containers map[string][]Container, probe func(Container, probeType) result) (done, failed bool, pending []string) {
	for i := range spec.Containers {
		if len(containers[spec.Containers[i].Name]) > 0 {
			return true, false, nil
		}
	}
	for i := range spec.InitContainers {
		c := &spec.InitContainers[i]
		name := c.Name
		h := containers[name]
		if isSidecar(c) {
			if len(h) == 0 || !isStarted(c, h[0], probe) {
				pending = append(pending, name)
			}
			continue
		}
		if len(h) > 0 && h[0].State == StateExited && h[0].ExitCode == 0 {
			continue
		}
		if len(pending) == 0 && len(h) > 0 && (h[0].State == StateExited || h[0].State == StateUnknown) {
			failed = true
		}
		pending = append(pending, name)
	}
	return len(pending) == 0, failed, pending
}

// wireTime is t as the API keeps a metav1.Time: in whole seconds (Kubernetes' kubelet
// likewise truncates its status' times before comparing and writing them).
func wireTime(t time.Time) metav1.Time {
	if t.IsZero() {
		return metav1.Time{}
	}
	return metav1.NewTime(t.Truncate(time.Second))
}

func cond(status corev1.ConditionStatus, reason, message string) corev1.PodCondition {
	return corev1.PodCondition{Status: status, Reason: reason, Message: message}
}

func containerStatus(spec *corev1.Container, hist []Container, waiting *corev1.ContainerStateWaiting, in podState, init bool) corev1.ContainerStatus {
	cs := corev1.ContainerStatus{Name: spec.Name, Image: spec.Image, Started: ptr.To(false)}
	if len(hist) == 0 {
		if waiting == nil {
			waiting = &corev1.ContainerStateWaiting{Reason: ReasonContainerCreating}
		}
		cs.State = corev1.ContainerState{Waiting: waiting}
		return cs
	}
	last := hist[0]
	cs.RestartCount = int32(last.Attempt)
	cs.ImageID = last.ImageID
	cs.ContainerID = in.scheme + "://" + last.ID
	var previous *Container
	if len(hist) > 1 {
		previous = &hist[1]
	}
	switch {
	case last.State == StateRunning:
		cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: wireTime(last.StartedAt)}}
		started := spec.StartupProbe == nil || in.probe == nil || in.probe(last, startup) == resultSuccess
		cs.Started = ptr.To(started)
		cs.Ready = !init && started && (spec.ReadinessProbe == nil || in.probe == nil || in.probe(last, readiness) == resultSuccess)
	case waiting != nil:
		// Exited, and held back before its restart: the exit is the last state.
		cs.State = corev1.ContainerState{Waiting: waiting}
		previous = &last
	default:
		cs.State = terminated(last, in)
		// An init container that completed is ready, as Kubernetes reports it.
		cs.Ready = init && last.State == StateExited && last.ExitCode == 0
	}
	if previous != nil {
		cs.LastTerminationState = terminated(*previous, in)
	}
	return cs
}

// resizeStatus reports what the kubelet allocated container c (allocatedResources, its
// requests) and what it runs with (resources), as Kubernetes' kubelet does.
func resizeStatus(cs *corev1.ContainerStatus, c *corev1.Container, in podState) {
	alloc, ok := in.allocated.of(c.Name)
	if !ok {
		alloc = c.Resources
	}
	if r := cpuMemory(alloc.Requests); r != nil {
		cs.AllocatedResources = r
	}
	if h := in.containers[c.Name]; len(h) > 0 {
		cs.Resources = statusResources(alloc, h[0])
	}
}

func terminated(c Container, in podState) corev1.ContainerState {
	scheme := in.scheme
	reason := c.Reason
	if reason == "" {
		reason = "Error"
		if c.ExitCode == 0 && c.State == StateExited {
			reason = "Completed"
		}
	}
	msg := c.Message
	if m, ok := in.messages[c.ID]; ok {
		msg = m
	}
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: int32(c.ExitCode), Reason: reason, ContainerID: scheme + "://" + c.ID, Message: msg,
		StartedAt: wireTime(c.StartedAt), FinishedAt: wireTime(c.FinishedAt),
	}}
}

// podPhase follows Kubernetes' getPhase: Pending while a container has not started
// yet; Running while one runs or will run again; Succeeded or Failed when all have
// stopped for good. A sidecar counts while it runs or has never run: one that stopped
// (the kubelet stops them once the app containers are done) does not.
func podPhase(policy corev1.RestartPolicy, statuses, sidecars []corev1.ContainerStatus) corev1.PodPhase {
	var waiting, running, stopped, succeeded int
	for _, cs := range sidecars {
		switch st := cs.State; {
		case st.Running != nil:
			running++
		case st.Waiting != nil && cs.LastTerminationState.Terminated == nil:
			waiting++
		}
	}
	for _, cs := range statuses {
		switch st := cs.State; {
		case st.Running != nil:
			running++
		case st.Terminated != nil:
			stopped++
			if st.Terminated.ExitCode == 0 {
				succeeded++
			}
		case cs.LastTerminationState.Terminated != nil:
			stopped++ // waiting to restart
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return corev1.PodPending
	case running > 0:
		return corev1.PodRunning
	case stopped > 0:
		if policy == corev1.RestartPolicyAlways {
			return corev1.PodRunning
		}
		if stopped == succeeded {
			return corev1.PodSucceeded
		}
		if policy == corev1.RestartPolicyNever {
			return corev1.PodFailed
		}
		return corev1.PodRunning
	}
	return corev1.PodPending
}

// podDone: the pod's containers will run no more, but for its sidecars, which the
// kubelet then stops (Kubernetes' completion of a pod with sidecars): its app containers
// have all exited and restartPolicy restarts none of them, or an init container failed
// under restartPolicy Never.
func podDone(spec *corev1.PodSpec, containers map[string][]Container, probe func(Container, probeType) result) bool {
	policy := restartPolicy(spec)
	if policy == corev1.RestartPolicyAlways {
		return false
	}
	initDone, initFailed, _ := initProgress(spec, containers, probe)
	if !initDone {
		return initFailed && policy == corev1.RestartPolicyNever
	}
	for i := range spec.Containers {
		h := containers[spec.Containers[i].Name]
		if len(h) == 0 || h[0].State == StateRunning {
			return false
		}
		exitCode := h[0].ExitCode
		if h[0].State != StateExited {
			exitCode = -1
		}
		if shouldRestart(policy, exitCode) {
			return false
		}
	}
	return true
}
