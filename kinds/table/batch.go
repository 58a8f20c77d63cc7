package table

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"

	"github.com/skiffhq/skiff/kinds"
)

// The columns of Jobs, CronJobs, ResourceQuotas and LimitRanges, as Kubernetes' printers
// define them.
func init() {
	job := func(f func(*batchv1.Job, time.Time) any) func(kinds.Object, time.Time) any {
		return func(o kinds.Object, now time.Time) any { return f(o.(*batchv1.Job), now) }
	}
	cronJob := func(f func(*batchv1.CronJob, time.Time) any) func(kinds.Object, time.Time) any {
		return func(o kinds.Object, now time.Time) any { return f(o.(*batchv1.CronJob), now) }
	}
	jobStatus, cronSpec, cronStatus := batchv1.JobStatus{}.SwaggerDoc(), batchv1.CronJobSpec{}.SwaggerDoc(), batchv1.CronJobStatus{}.SwaggerDoc()
	columns[kinds.Job] = append([]Column{nameCol,
		col("Status", "string", 0, "Status of the job.", job(func(j *batchv1.Job, _ time.Time) any { return JobStatus(j) })),
		col("Completions", "string", 0, jobStatus["succeeded"], job(func(j *batchv1.Job, _ time.Time) any { return jobCompletions(j) })),
		col("Duration", "string", 0, "Time required to complete the job.", job(func(j *batchv1.Job, now time.Time) any { return jobDuration(j, now) })),
		ageCol},
		templateCols(func(o kinds.Object) *corev1.PodSpec { return &o.(*batchv1.Job).Spec.Template.Spec },
			func(o kinds.Object) *metav1.LabelSelector { return o.(*batchv1.Job).Spec.Selector })...)
	columns[kinds.CronJob] = append([]Column{nameCol,
		col("Schedule", "string", 0, cronSpec["schedule"], cronJob(func(c *batchv1.CronJob, _ time.Time) any { return c.Spec.Schedule })),
		col("Timezone", "string", 0, cronSpec["timeZone"], cronJob(func(c *batchv1.CronJob, _ time.Time) any {
			if c.Spec.TimeZone == nil {
				return "<none>"
			}
			return orNone(*c.Spec.TimeZone)
		})),
		col("Suspend", "boolean", 0, cronSpec["suspend"], cronJob(func(c *batchv1.CronJob, _ time.Time) any {
			return strconv.FormatBool(c.Spec.Suspend != nil && *c.Spec.Suspend)
		})),
		col("Active", "integer", 0, cronStatus["active"], cronJob(func(c *batchv1.CronJob, _ time.Time) any { return int64(len(c.Status.Active)) })),
		col("Last Schedule", "string", 0, cronStatus["lastScheduleTime"], cronJob(func(c *batchv1.CronJob, now time.Time) any {
			if t := c.Status.LastScheduleTime; t != nil {
				return Age(t.Time, now)
			}
			return "<none>"
		})),
		ageCol},
		templateCols(func(o kinds.Object) *corev1.PodSpec { return &o.(*batchv1.CronJob).Spec.JobTemplate.Spec.Template.Spec },
			func(o kinds.Object) *metav1.LabelSelector { return o.(*batchv1.CronJob).Spec.JobTemplate.Spec.Selector })...)
	columns[kinds.ResourceQuota] = []Column{nameCol, ageCol,
		col("Request", "string", 0, "Request represents a minimum amount of cpu/memory that a container may consume.", func(o kinds.Object, _ time.Time) any {
			return quotaColumn(o.(*corev1.ResourceQuota), false)
		}),
		col("Limit", "string", 0, "Limits control the maximum amount of cpu/memory that a container may use independent of contention on the node.", func(o kinds.Object, _ time.Time) any {
			return quotaColumn(o.(*corev1.ResourceQuota), true)
		})}
	columns[kinds.LimitRange] = defaultColumns
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

// quotaColumn is kubectl's REQUEST (limits false) or LIMIT column of a quota: each
// resource of status.hard as "name: used/hard", the limits.* ones in LIMIT.
func quotaColumn(q *corev1.ResourceQuota, limits bool) string {
	names := make([]string, 0, len(q.Status.Hard))
	for name := range q.Status.Hard {
		names = append(names, string(name))
	}
	sort.Strings(names)
	var parts []string
	for _, name := range names {
		if strings.HasPrefix(name, "limits.") != limits {
			continue
		}
		used, hard := q.Status.Used[corev1.ResourceName(name)], q.Status.Hard[corev1.ResourceName(name)]
		parts = append(parts, fmt.Sprintf("%s: %s/%s", name, used.String(), hard.String()))
	}
	return strings.Join(parts, ", ")
}
