package printers

import (
	"fmt"
	"strconv"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/duration"
)

// describeJob shows a Job as kubectl's describe does.
func describeJob(d *describer, j *batchv1.Job) {
	s, st := &j.Spec, &j.Status
	d.line(0, "Selector", metav1.FormatLabelSelector(s.Selector))
	d.line(0, "Parallelism", unsetOr(s.Parallelism))
	d.line(0, "Completions", unsetOr(s.Completions))
	if s.CompletionMode != nil {
		d.line(0, "Completion Mode", *s.CompletionMode)
	}
	if s.Suspend != nil {
		d.line(0, "Suspend", *s.Suspend)
	}
	if s.BackoffLimit != nil {
		d.line(0, "Backoff Limit", *s.BackoffLimit)
	}
	if s.BackoffLimitPerIndex != nil {
		d.line(0, "Backoff Limit Per Index", *s.BackoffLimitPerIndex)
	}
	if s.TTLSecondsAfterFinished != nil {
		d.line(0, "TTL Seconds After Finished", *s.TTLSecondsAfterFinished)
	}
	if st.StartTime != nil {
		d.line(0, "Start Time", d.stamp(st.StartTime.Time))
	}
	if st.CompletionTime != nil {
		d.line(0, "Completed At", d.stamp(st.CompletionTime.Time))
	}
	if st.StartTime != nil && st.CompletionTime != nil {
		d.line(0, "Duration", duration.HumanDuration(st.CompletionTime.Sub(st.StartTime.Time)))
	}
	if s.ActiveDeadlineSeconds != nil {
		d.line(0, "Active Deadline Seconds", fmt.Sprintf("%ds", *s.ActiveDeadlineSeconds))
	}
	if st.Ready == nil {
		d.line(0, "Pods Statuses", fmt.Sprintf("%d Active / %d Succeeded / %d Failed", st.Active, st.Succeeded, st.Failed))
	} else {
		d.line(0, "Pods Statuses", fmt.Sprintf("%d Active (%d Ready) / %d Succeeded / %d Failed", st.Active, *st.Ready, st.Succeeded, st.Failed))
	}
	if s.CompletionMode != nil && *s.CompletionMode == batchv1.IndexedCompletion {
		d.line(0, "Completed Indexes", indexesOrNone(st.CompletedIndexes))
	}
	if s.BackoffLimitPerIndex != nil {
		d.line(0, "Failed Indexes", indexesOrNone(deref(st.FailedIndexes)))
	}
	describeTemplate(d, &s.Template)
}

// describeCronJob shows a CronJob as kubectl's describe does, with its time zone.
func describeCronJob(d *describer, cj *batchv1.CronJob) {
	s := &cj.Spec
	d.line(0, "Schedule", s.Schedule)
	if s.TimeZone != nil {
		d.line(0, "Time Zone", *s.TimeZone)
	}
	d.line(0, "Concurrency Policy", s.ConcurrencyPolicy)
	d.line(0, "Suspend", strconv.FormatBool(deref(s.Suspend)))
	d.line(0, "Successful Job History Limit", unsetOr(s.SuccessfulJobsHistoryLimit))
	d.line(0, "Failed Job History Limit", unsetOr(s.FailedJobsHistoryLimit))
	if s.StartingDeadlineSeconds != nil {
		d.line(0, "Starting Deadline Seconds", fmt.Sprintf("%ds", *s.StartingDeadlineSeconds))
	} else {
		d.line(0, "Starting Deadline Seconds", "<unset>")
	}
	js := &s.JobTemplate.Spec
	if js.Selector != nil {
		d.line(0, "Selector", metav1.FormatLabelSelector(js.Selector))
	} else {
		d.line(0, "Selector", "<unset>")
	}
	d.line(0, "Parallelism", unsetOr(js.Parallelism))
	d.line(0, "Completions", unsetOr(js.Completions))
	if js.ActiveDeadlineSeconds != nil {
		d.line(0, "Active Deadline Seconds", fmt.Sprintf("%ds", *js.ActiveDeadlineSeconds))
	}
	describeTemplate(d, &js.Template)
	if t := cj.Status.LastScheduleTime; t != nil {
		d.line(0, "Last Schedule Time", d.stamp(t.Time))
	} else {
		d.line(0, "Last Schedule Time", "<unset>")
	}
	var active []string
	for _, r := range cj.Status.Active {
		active = append(active, r.Name)
	}
	if len(active) == 0 {
		active = []string{"<none>"}
	}
	d.line(0, "Active Jobs", strings.Join(active, ", "))
}

// unsetOr is a number, or <unset>.
func unsetOr(v *int32) string {
	if v == nil {
		return "<unset>"
	}
	return strconv.Itoa(int(*v))
}

// indexesOrNone is a list of indexes, cut to 50 characters as kubectl does, or <none>.
func indexesOrNone(s string) string {
	const most = 50
	switch {
	case s == "":
		return "<none>"
	case len(s) > most:
		return s[:most] + "..."
	}
	return s
}
