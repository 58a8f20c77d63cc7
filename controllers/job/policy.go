package job

import (
	"fmt"
	"slices"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/kinds/indexes"
)

// matchFailurePolicy is Kubernetes' matchPodFailurePolicy: the first rule that matches a
// failed pod decides what its failure does. It returns the action (nil: no rule
// matched, the failure counts) and, for FailJob, the message of the Job's condition.
func matchFailurePolicy(pfp *batchv1.PodFailurePolicy, p *corev1.Pod) (*batchv1.PodFailurePolicyAction, string) {
	if pfp == nil {
		return nil, ""
	}
	for i := range pfp.Rules {
		r := &pfp.Rules[i]
		if ec := r.OnExitCodes; ec != nil {
			if cs := matchExitCodes(ec, p); cs != nil {
				return &r.Action, fmt.Sprintf("Container %s for pod %s/%s failed with exit code %d matching %s rule at index %d",
					cs.Name, p.Namespace, p.Name, cs.State.Terminated.ExitCode, r.Action, i)
			}
			continue
		}
		for _, pc := range r.OnPodConditions {
			for _, c := range p.Status.Conditions {
				if c.Type == pc.Type && c.Status == pc.Status {
					return &r.Action, fmt.Sprintf("Pod %s/%s has condition %s matching %s rule at index %d",
						p.Namespace, p.Name, c.Type, r.Action, i)
				}
			}
		}
	}
	return nil, ""
}

// matchExitCodes returns the first terminated container whose exit code the
// requirement matches (In: one of the values; NotIn: non-zero and none of them).
func matchExitCodes(ec *batchv1.PodFailurePolicyOnExitCodesRequirement, p *corev1.Pod) *corev1.ContainerStatus {
	for _, list := range [][]corev1.ContainerStatus{p.Status.InitContainerStatuses, p.Status.ContainerStatuses} {
		for i := range list {
			cs := &list[i]
			t := cs.State.Terminated
			if t == nil || (ec.ContainerName != nil && *ec.ContainerName != cs.Name) {
				continue
			}
			in := slices.Contains(ec.Values, t.ExitCode)
			if (ec.Operator == batchv1.PodFailurePolicyOnExitCodesOpIn && in) ||
				(ec.Operator == batchv1.PodFailurePolicyOnExitCodesOpNotIn && !in && t.ExitCode != 0) {
				return cs
			}
		}
	}
	return nil
}

// matchSuccessPolicy is Kubernetes' matchSuccessPolicy: the index of the first rule the
// succeeded indexes satisfy, or -1. A rule with succeededIndexes wants those (all, or
// succeededCount of them); one with only succeededCount wants that many of any.
func matchSuccessPolicy(sp *batchv1.SuccessPolicy, completions int, succeeded indexes.Set) int {
	if sp == nil {
		return -1
	}
	for i, r := range sp.Rules {
		want := succeeded
		if r.SucceededIndexes != nil {
			set, err := indexes.Parse(*r.SucceededIndexes, completions)
			if err != nil {
				continue // validation refuses it
			}
			want = indexes.Set{}
			for ix := range set {
				if succeeded[ix] {
					want[ix] = true
				}
			}
			if r.SucceededCount == nil {
				if want.Len() == set.Len() {
					return i
				}
				continue
			}
		}
		if r.SucceededCount != nil && want.Len() >= int(*r.SucceededCount) {
			return i
		}
	}
	return -1
}

// Back-off of failed pods, as Kubernetes has it: the n-th failure in a row delays the
// next pod by base·2^(n-1), at most max.
func backoffDelay(failures int, base, max time.Duration) time.Duration {
	if failures <= 0 {
		return 0
	}
	d := base
	for i := 1; i < failures && d < max; i++ {
		d *= 2
	}
	return min(d, max)
}
