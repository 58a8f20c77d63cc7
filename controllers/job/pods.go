package job

import (
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"
)

// What a pod of a Job is, in Kubernetes' terms: active, terminated (succeeded or
// failed), and which completion index it runs.

// CompletionIndexEnv is the environment variable that tells an Indexed Job's container
// its index (Kubernetes' JOB_COMPLETION_INDEX).
const CompletionIndexEnv = "JOB_COMPLETION_INDEX"

// noIndex is the index of a pod that has none (a NonIndexed Job's, or a bad annotation).
const noIndex = -1

func indexed(job *batchv1.Job) bool {
	return job.Spec.CompletionMode != nil && *job.Spec.CompletionMode == batchv1.IndexedCompletion
}

// onlyReplaceFailed says whether a pod being deleted is replaced only once it has
// failed (podReplacementPolicy Failed, which a pod failure policy implies).
func onlyReplaceFailed(job *batchv1.Job) bool {
	return job.Spec.PodFailurePolicy != nil ||
		(job.Spec.PodReplacementPolicy != nil && *job.Spec.PodReplacementPolicy == batchv1.Failed)
}

// podIndex is the pod's completion index, or noIndex.
func podIndex(p *corev1.Pod) int {
	s, ok := p.Annotations[batchv1.JobCompletionIndexAnnotation]
	if !ok {
		return noIndex
	}
	i, err := strconv.Atoi(s)
	if err != nil || i < 0 {
		return noIndex
	}
	return i
}

// indexFailureCount is how many pods of the pod's index failed before it (the
// annotation the controller writes on each pod it makes for an index).
func indexFailureCount(p *corev1.Pod) int {
	n, err := strconv.Atoi(p.Annotations[batchv1.JobIndexFailureCountAnnotation])
	if err != nil || n < 0 {
		return 0
	}
	return n
}

func hasTrackingFinalizer(p *corev1.Pod) bool {
	for _, f := range p.Finalizers {
		if f == batchv1.JobTrackingFinalizer {
			return true
		}
	}
	return false
}

// isActive: the pod runs or will, and is not being deleted.
func isActive(p *corev1.Pod) bool {
	return p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed && p.DeletionTimestamp == nil
}

// isTerminating: being deleted, not finished yet.
func isTerminating(p *corev1.Pod) bool {
	return p.DeletionTimestamp != nil && p.Status.Phase != corev1.PodSucceeded && p.Status.Phase != corev1.PodFailed
}

// isFailed is Kubernetes' isPodFailed: phase Failed, or — unless only failed pods are
// replaced — being deleted without having succeeded (a pod deleted by someone else
// never reaches Failed). With podReplacementPolicy Failed, a pod the kubelet is done
// with (deleted with no grace left) counts as failed too.
func isFailed(job *batchv1.Job, p *corev1.Pod) bool {
	if p.Status.Phase == corev1.PodFailed {
		return true
	}
	if p.DeletionTimestamp == nil || p.Status.Phase == corev1.PodSucceeded {
		return false
	}
	return !onlyReplaceFailed(job) || ptr.Deref(p.DeletionGracePeriodSeconds, 1) == 0
}

// finishedAt is when a terminated pod finished: its last container's end, else its
// deletion, else now.
func finishedAt(p *corev1.Pod, now time.Time) time.Time {
	var at time.Time
	for _, cs := range p.Status.ContainerStatuses {
		if t := cs.State.Terminated; t != nil && t.FinishedAt.After(at) {
			at = t.FinishedAt.Time
		}
	}
	if at.IsZero() && p.DeletionTimestamp != nil {
		at = p.DeletionTimestamp.Time
	}
	if at.IsZero() {
		at = now
	}
	return at
}

// restarts counts the container restarts of a pod (restartPolicy OnFailure: each
// counts toward the backoff limit).
func restarts(p *corev1.Pod) int32 {
	var n int32
	for _, cs := range p.Status.InitContainerStatuses {
		n += cs.RestartCount
	}
	for _, cs := range p.Status.ContainerStatuses {
		n += cs.RestartCount
	}
	return n
}

func isReady(p *corev1.Pod) bool {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}
