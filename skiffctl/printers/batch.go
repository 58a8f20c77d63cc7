package printers

import (
	"fmt"
	"strconv"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/skiffhq/skiff/kinds"
)

// The tables of Jobs and CronJobs, as kubectl prints them.
func init() {
	columns[kinds.Job] = []column{nameColumn,
		{header: "STATUS", cell: func(o kinds.Object, _ time.Time) string { return JobStatus(o.(*batchv1.Job)) }},
		{header: "COMPLETIONS", cell: func(o kinds.Object, _ time.Time) string { return jobCompletions(o.(*batchv1.Job)) }},
		{header: "DURATION", cell: func(o kinds.Object, now time.Time) string { return jobDuration(o.(*batchv1.Job), now) }},
		ageColumn,
		{header: "CONTAINERS", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerNames(&o.(*batchv1.Job).Spec.Template.Spec)
		}},
		{header: "IMAGES", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerImages(&o.(*batchv1.Job).Spec.Template.Spec)
		}},
		{header: "SELECTOR", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return metav1.FormatLabelSelector(o.(*batchv1.Job).Spec.Selector)
		}},
	}
	columns[kinds.CronJob] = []column{nameColumn,
		{header: "SCHEDULE", cell: func(o kinds.Object, _ time.Time) string { return o.(*batchv1.CronJob).Spec.Schedule }},
		{header: "TIMEZONE", cell: func(o kinds.Object, _ time.Time) string { return orNone(deref(o.(*batchv1.CronJob).Spec.TimeZone)) }},
		{header: "SUSPEND", cell: func(o kinds.Object, _ time.Time) string {
			return strconv.FormatBool(deref(o.(*batchv1.CronJob).Spec.Suspend))
		}},
		{header: "ACTIVE", cell: func(o kinds.Object, _ time.Time) string { return strconv.Itoa(len(o.(*batchv1.CronJob).Status.Active)) }},
		{header: "LAST SCHEDULE", cell: func(o kinds.Object, now time.Time) string {
			if t := o.(*batchv1.CronJob).Status.LastScheduleTime; t != nil {
				return Age(t.Time, now)
			}
			return "<none>"
		}},
		ageColumn,
		{header: "CONTAINERS", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerNames(&o.(*batchv1.CronJob).Spec.JobTemplate.Spec.Template.Spec)
		}},
		{header: "IMAGES", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return containerImages(&o.(*batchv1.CronJob).Spec.JobTemplate.Spec.Template.Spec)
		}},
		{header: "SELECTOR", wide: true, cell: func(o kinds.Object, _ time.Time) string {
			return orNone(metav1.FormatLabelSelector(o.(*batchv1.CronJob).Spec.JobTemplate.Spec.Selector))
		}},
	}
}

// JobStatus is kubectl's STATUS of a Job: Complete, Failed, Terminating,
// FailureTarget, Suspended, SuccessCriteriaMet or Running.
func JobStatus(j *batchv1.Job) string {
	has := func(t batchv1.JobConditionType) bool {
		for _, c := range j.Status.Conditions {
			if c.Type == t && c.Status == corev1.ConditionTrue {
				return true
			}
		}
		return false
	}
	switch {
	case has(batchv1.JobComplete):
		return "Complete"
	case has(batchv1.JobFailed):
		return "Failed"
	case j.DeletionTimestamp != nil:
		return "Terminating"
	case has(batchv1.JobFailureTarget):
		return "FailureTarget"
	case has(batchv1.JobSuspended):
		return "Suspended"
	case has(batchv1.JobSuccessCriteriaMet):
		return "SuccessCriteriaMet"
	}
	return "Running"
}

func jobCompletions(j *batchv1.Job) string {
	switch {
	case j.Spec.Completions != nil:
		return fmt.Sprintf("%d/%d", j.Status.Succeeded, *j.Spec.Completions)
	case j.Spec.Parallelism != nil && *j.Spec.Parallelism > 1:
		return fmt.Sprintf("%d/1 of %d", j.Status.Succeeded, *j.Spec.Parallelism)
	}
	return fmt.Sprintf("%d/1", j.Status.Succeeded)
}

func jobDuration(j *batchv1.Job, now time.Time) string {
	switch {
	case j.Status.StartTime == nil:
		return ""
	case j.Status.CompletionTime == nil:
		return duration.HumanDuration(now.Sub(j.Status.StartTime.Time))
	}
	return duration.HumanDuration(j.Status.CompletionTime.Sub(j.Status.StartTime.Time))
}
