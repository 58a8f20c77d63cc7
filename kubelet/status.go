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

// computePodStatus is the pod's status as Kubernetes would write it, from its spec,
// its containers in the runtime (grouped by byName), the reasons the kubelet holds
// containers waiting (ErrImagePull, CrashLoopBackOff, ...), and the previous status
// (whose transition times and start time it keeps). Its times are whole seconds, as
// the API keeps them (wireTime): a status computed again from the same state equals
// the one read back, and is not written again.
func computePodStatus(spec *corev1.PodSpec, old *corev1.PodStatus, containers map[string][]Container, waiting map[string]*corev1.ContainerStateWaiting, scheme, hostIP, podIP string, now time.Time) *corev1.PodStatus {
	st := &corev1.PodStatus{HostIP: hostIP, PodIP: podIP, StartTime: old.StartTime}
	if podIP != "" {
		st.PodIPs = []corev1.PodIP{{IP: podIP}}
	}
	if st.StartTime == nil {
		st.StartTime = ptr.To(wireTime(now))
	}
	st.ContainerStatuses = make([]corev1.ContainerStatus, 0, len(spec.Containers))
	for i := range spec.Containers {
		c := &spec.Containers[i]
		st.ContainerStatuses = append(st.ContainerStatuses, containerStatus(c, containers[c.Name], waiting[c.Name], scheme))
	}
	st.Phase = podPhase(restartPolicy(spec), st.ContainerStatuses)
	if podTerminal(old.Phase) {
		st.Phase = old.Phase // terminal is forever, whatever the runtime forgets
	}

	var unready []string
	for _, cs := range st.ContainerStatuses {
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
	st.Conditions = make([]corev1.PodCondition, 0, 4)
	for _, c := range []struct {
		typ corev1.PodConditionType
		c   corev1.PodCondition
	}{
		{corev1.PodInitialized, cond(corev1.ConditionTrue, "", "")},
		{corev1.PodReady, ready},
		{corev1.ContainersReady, ready},
		{corev1.PodScheduled, cond(corev1.ConditionTrue, "", "")},
	} {
		c.c.Type = c.typ
		c.c.LastTransitionTime = wireTime(now)
		for _, o := range old.Conditions {
			if o.Type == c.typ && o.Status == c.c.Status && !o.LastTransitionTime.IsZero() {
				c.c.LastTransitionTime = o.LastTransitionTime
			}
		}
		st.Conditions = append(st.Conditions, c.c)
	}
	// Conditions others own (DisruptionTarget, written by the eviction and the pod
	// garbage collector) are kept, as Kubernetes' kubelet keeps them.
	for _, o := range old.Conditions {
		if !slices.ContainsFunc(st.Conditions, func(c corev1.PodCondition) bool { return c.Type == o.Type }) {
			st.Conditions = append(st.Conditions, o)
		}
	}
	return st
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

func containerStatus(spec *corev1.Container, hist []Container, waiting *corev1.ContainerStateWaiting, scheme string) corev1.ContainerStatus {
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
	cs.ContainerID = scheme + "://" + last.ID
	var previous *Container
	if len(hist) > 1 {
		previous = &hist[1]
	}
	switch {
	case last.State == StateRunning:
		cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: wireTime(last.StartedAt)}}
		cs.Ready, cs.Started = true, ptr.To(true)
	case waiting != nil:
		// Exited, and held back before its restart: the exit is the last state.
		cs.State = corev1.ContainerState{Waiting: waiting}
		previous = &last
	default:
		cs.State = terminated(last, scheme)
	}
	if previous != nil {
		cs.LastTerminationState = terminated(*previous, scheme)
	}
	return cs
}

func terminated(c Container, scheme string) corev1.ContainerState {
	reason := c.Reason
	if reason == "" {
		reason = "Error"
		if c.ExitCode == 0 && c.State == StateExited {
			reason = "Completed"
		}
	}
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: int32(c.ExitCode), Reason: reason, ContainerID: scheme + "://" + c.ID,
		StartedAt: wireTime(c.StartedAt), FinishedAt: wireTime(c.FinishedAt),
	}}
}

// podPhase follows Kubernetes' getPhase: Pending while a container has not started
// yet; Running while one runs or will run again; Succeeded or Failed when all have
// stopped for good.
func podPhase(policy corev1.RestartPolicy, statuses []corev1.ContainerStatus) corev1.PodPhase {
	var waiting, running, stopped, succeeded int
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
