package kubelet

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

// The pure core of pod handling: what the pod's status is, given its containers in the
// runtime, and what to do next. No I/O; time is a parameter.

// Restart policies.
const (
	RestartAlways    = "Always"
	RestartOnFailure = "OnFailure"
	RestartNever     = "Never"
)

// Pod phases.
const (
	PhasePending   = "Pending"
	PhaseRunning   = "Running"
	PhaseSucceeded = "Succeeded"
	PhaseFailed    = "Failed"
)

// Waiting reasons and event reasons, as Kubernetes names them.
const (
	ReasonContainerCreating = "ContainerCreating"
	ReasonErrImagePull      = "ErrImagePull"
	ReasonImagePullBackOff  = "ImagePullBackOff"
	ReasonErrImageNeverPull = "ErrImageNeverPull"
	ReasonCrashLoopBackOff  = "CrashLoopBackOff"
	ReasonCreateError       = "CreateContainerError"
	ReasonConfigError       = "CreateContainerConfigError"
)

func restartPolicy(pod *corev1.Pod) string {
	if p := pod.GetSpec().GetRestartPolicy(); p != "" {
		return p
	}
	return RestartAlways
}

// pullPolicy defaults as Kubernetes does: Always for ":latest" or untagged images,
// else IfNotPresent.
func pullPolicy(c *corev1.Container) string {
	if p := c.GetImagePullPolicy(); p != "" {
		return p
	}
	img := c.GetImage()
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
	if g := pod.GetMetadata().DeletionGracePeriodSeconds; g != nil {
		return time.Duration(*g) * time.Second
	}
	if g := pod.GetSpec().TerminationGracePeriodSeconds; g != nil {
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
func shouldRestart(policy string, exitCode int) bool {
	switch policy {
	case RestartNever:
		return false
	case RestartOnFailure:
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
func decideContainer(policy string, hist []Container, b *backoff, now time.Time, p backoffPolicy) decision {
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
func podTerminal(phase string) bool { return phase == PhaseSucceeded || phase == PhaseFailed }

// computePodStatus is the pod's status as Kubernetes would write it, from its
// containers in the runtime (grouped by byName), the reasons the kubelet holds
// containers waiting (ErrImagePull, CrashLoopBackOff, ...), and the previous status
// (whose transition times and start time it keeps).
func computePodStatus(pod *corev1.Pod, containers map[string][]Container, waiting map[string]*corev1.ContainerStateWaiting, scheme, hostIP string, now time.Time) *corev1.PodStatus {
	old := pod.GetStatus()
	st := &corev1.PodStatus{HostIp: hostIP, PodIp: hostIP, StartTime: old.GetStartTime()}
	if st.StartTime == nil {
		st.StartTime = timestamppb.New(now)
	}
	for _, spec := range pod.GetSpec().GetContainers() {
		st.ContainerStatuses = append(st.ContainerStatuses, containerStatus(spec, containers[spec.GetName()], waiting[spec.GetName()], scheme))
	}
	st.Phase = podPhase(restartPolicy(pod), st.ContainerStatuses)
	if podTerminal(old.GetPhase()) {
		st.Phase = old.GetPhase() // terminal is forever, whatever the runtime forgets
	}

	var unready []string
	for _, cs := range st.ContainerStatuses {
		if !cs.GetReady() {
			unready = append(unready, cs.GetName())
		}
	}
	ready := cond("True", "", "")
	switch {
	case podTerminal(st.Phase):
		ready = cond("False", "PodCompleted", "")
	case len(unready) > 0:
		ready = cond("False", "ContainersNotReady", fmt.Sprintf("containers with unready status: [%s]", strings.Join(unready, " ")))
	}
	for _, c := range []struct {
		typ string
		c   *corev1.PodCondition
	}{
		{"Initialized", cond("True", "", "")},
		{"Ready", ready},
		{"ContainersReady", proto.Clone(ready).(*corev1.PodCondition)},
		{"PodScheduled", cond("True", "", "")},
	} {
		c.c.Type = c.typ
		c.c.LastTransitionTime = timestamppb.New(now)
		for _, o := range old.GetConditions() {
			if o.GetType() == c.typ && o.GetStatus() == c.c.GetStatus() && o.GetLastTransitionTime() != nil {
				c.c.LastTransitionTime = o.GetLastTransitionTime()
			}
		}
		st.Conditions = append(st.Conditions, c.c)
	}
	return st
}

func cond(status, reason, message string) *corev1.PodCondition {
	return &corev1.PodCondition{Status: status, Reason: reason, Message: message}
}

func containerStatus(spec *corev1.Container, hist []Container, waiting *corev1.ContainerStateWaiting, scheme string) *corev1.ContainerStatus {
	cs := &corev1.ContainerStatus{Name: spec.GetName(), Image: spec.GetImage(), Started: proto.Bool(false)}
	if len(hist) == 0 {
		if waiting == nil {
			waiting = &corev1.ContainerStateWaiting{Reason: ReasonContainerCreating}
		}
		cs.State = &corev1.ContainerState{Waiting: waiting}
		return cs
	}
	last := hist[0]
	cs.RestartCount = int32(last.Attempt)
	cs.ImageId = last.ImageID
	cs.ContainerId = scheme + "://" + last.ID
	var previous *Container
	if len(hist) > 1 {
		previous = &hist[1]
	}
	switch {
	case last.State == StateRunning:
		cs.State = &corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: timestamppb.New(last.StartedAt)}}
		cs.Ready, cs.Started = true, proto.Bool(true)
	case waiting != nil:
		// Exited, and held back before its restart: the exit is the last state.
		cs.State = &corev1.ContainerState{Waiting: waiting}
		previous = &last
	default:
		cs.State = terminated(last, scheme)
	}
	if previous != nil {
		cs.LastState = terminated(*previous, scheme)
	} else {
		cs.LastState = &corev1.ContainerState{}
	}
	return cs
}

func terminated(c Container, scheme string) *corev1.ContainerState {
	reason := c.Reason
	if reason == "" {
		reason = "Error"
		if c.ExitCode == 0 && c.State == StateExited {
			reason = "Completed"
		}
	}
	t := &corev1.ContainerStateTerminated{ExitCode: int32(c.ExitCode), Reason: reason, ContainerId: scheme + "://" + c.ID}
	if !c.StartedAt.IsZero() {
		t.StartedAt = timestamppb.New(c.StartedAt)
	}
	if !c.FinishedAt.IsZero() {
		t.FinishedAt = timestamppb.New(c.FinishedAt)
	}
	return &corev1.ContainerState{Terminated: t}
}

// podPhase follows Kubernetes' getPhase: Pending while a container has not started
// yet; Running while one runs or will run again; Succeeded or Failed when all have
// stopped for good.
func podPhase(policy string, statuses []*corev1.ContainerStatus) string {
	var waiting, running, stopped, succeeded int
	for _, cs := range statuses {
		switch st := cs.GetState(); {
		case st.GetRunning() != nil:
			running++
		case st.GetTerminated() != nil:
			stopped++
			if st.GetTerminated().GetExitCode() == 0 {
				succeeded++
			}
		case cs.GetLastState().GetTerminated() != nil:
			stopped++ // waiting to restart
		default:
			waiting++
		}
	}
	switch {
	case waiting > 0:
		return PhasePending
	case running > 0:
		return PhaseRunning
	case stopped > 0:
		if policy == RestartAlways {
			return PhaseRunning
		}
		if stopped == succeeded {
			return PhaseSucceeded
		}
		if policy == RestartNever {
			return PhaseFailed
		}
		return PhaseRunning
	}
	return PhasePending
}
