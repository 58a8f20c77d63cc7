package trace

import (
	"context"
	"fmt"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
)

// The chain of a Job, and of a CronJob, which starts one step earlier.
//
// A Job's chain is a Deployment's with the Job controller at steps 2–5: it sees the Job
// and starts it (2–3: the Job's status.startTime, to the second), then makes its pods
// (4–5: its SuccessfulCreate events). A CronJob's chain is that of the newest Job it
// made, preceded by step 0, the scheduled time (the Job's
// batch.kubernetes.io/cronjob-scheduled-timestamp), with step 1 the CronJob controller
// creating the Job (the Job's Stored event, or the CronJob's SuccessfulCreate).

// FetchJob reads what the trace of a Job or a CronJob (kind) needs from the API
// servers and assembles it.
func FetchJob(ctx context.Context, cs *client.Clientset, kind, namespace, name string) (*Trace, error) {
	var cj *batchv1.CronJob
	var job *batchv1.Job
	var err error
	if kind == kinds.CronJob {
		if cj, err = cs.CronJobs.Get(ctx, namespace, name); client.IsNotFound(err) {
			return nil, fmt.Errorf("cronjob %q not found", name)
		} else if err != nil {
			return nil, err
		}
		jobs, err := cs.Jobs.List(ctx, namespace, client.ListOptions{})
		if err != nil {
			return nil, err
		}
		job = NewestJob(cj, jobs.Items)
	} else if job, err = cs.Jobs.Get(ctx, namespace, name); client.IsNotFound(err) {
		return nil, fmt.Errorf("job %q not found", name)
	} else if err != nil {
		return nil, err
	}
	pods, err := cs.Pods.List(ctx, namespace, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	events, err := cs.Events.List(ctx, namespace, client.ListOptions{})
	if err != nil {
		return nil, err
	}
	return AssembleJob(cj, job, pods.Items, events.Items), nil
}

// NewestJob is the Job of cj scheduled last (by its scheduled time, then its name), nil
// when cj made none (or none is left).
func NewestJob(cj *batchv1.CronJob, jobs []*batchv1.Job) *batchv1.Job {
	var job *batchv1.Job
	for _, j := range jobs {
		if owned(j, cj.UID) && (job == nil || scheduledAt(job).Before(scheduledAt(j)) ||
			(scheduledAt(job).Equal(scheduledAt(j)) && job.Name < j.Name)) {
			job = j
		}
	}
	return job
}

// scheduledAt is when a CronJob's Job was due (its annotation), else its creation.
func scheduledAt(j *batchv1.Job) time.Time {
	if t, err := time.Parse(time.RFC3339, j.Annotations[batchv1.CronJobScheduledTimestampAnnotation]); err == nil {
		return t
	}
	return j.CreationTimestamp.Time
}

// AssembleJob builds the trace of job, or of cj's newest Job (job, nil if none yet),
// from the objects and events.
func AssembleJob(cj *batchv1.CronJob, job *batchv1.Job, pods []*corev1.Pod, events []*corev1.Event) *Trace {
	byUID := eventsByObject(events)
	var t *Trace
	var steps []Step
	if cj != nil {
		t = &Trace{Kind: kinds.CronJob, Name: cj.Name, Namespace: cj.Namespace, Start: cj.CreationTimestamp.Time}
		if job == nil {
			t.Steps = []Step{missing([]int{0}, "Schedule due"), missing([]int{1}, "Job created")}
			return finish(t)
		}
		t.Job = job.Name
		t.Start = scheduledAt(job)
		steps = append(steps, Step{Steps: []int{0}, Title: "Schedule due", Component: "controller-manager",
			Object: "cronjob/" + cj.Name, ResourceVersion: cj.ResourceVersion, Time: t.Start})
	} else {
		t = &Trace{Kind: kinds.Job, Name: job.Name, Namespace: job.Namespace, Job: job.Name, Start: job.CreationTimestamp.Time}
	}
	stored := Step{Steps: []int{1}, Title: "Job stored", Component: "apiserver", Object: "job/" + job.Name,
		ResourceVersion: job.ResourceVersion, Time: job.CreationTimestamp.Time}
	if e := find(byUID[job.UID], StoredReason, ""); e != nil {
		stored.Time = evTime(e)
	}
	if cj != nil {
		stored.Title, stored.Component = "Job created", "controller-manager"
		if e := find(byUID[cj.UID], "SuccessfulCreate", job.Name); e != nil {
			stored.Node = e.Source.Host
			if find(byUID[job.UID], StoredReason, "") == nil {
				stored.Time = evTime(e)
			}
		}
		stored.Time = notBefore(stored.Time, t.Start)
	} else {
		t.Start = stored.Time
	}
	started := missing([]int{2, 3}, "Job started")
	if st := job.Status.StartTime; st != nil {
		started = Step{Steps: []int{2, 3}, Title: "Job started", Component: "controller-manager", Object: "job/" + job.Name,
			ResourceVersion: job.ResourceVersion, Time: notBefore(st.Time, stored.Time)}
		if e := find(byUID[job.UID], "SuccessfulCreate", ""); e != nil {
			// The pods come right after the start: the first create tells the node, and
			// bounds a start time cut down to its second.
			started.Node = e.Source.Host
			if evTime(e).Before(started.Time) {
				started.Time = notBefore(evTime(e), stored.Time)
			}
		}
	}
	t.Steps = append(steps, stored, started)
	if started.Missing {
		t.Steps = append(t.Steps, missing([]int{4, 5}, "Pods created"))
		return finish(t)
	}
	summarise(t, started.Time, pods, func(p *corev1.Pod) bool { return owned(p, job.UID) }, byUID[job.UID], byUID)
	return finish(t)
}
