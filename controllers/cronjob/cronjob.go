// Package cronjob is the CronJob controller: it makes a CronJob's Jobs on its schedule,
// as Kubernetes' (its second version) does. The schedule is cron syntax read by
// robfig/cron/v3, Kubernetes' own parser, in the CronJob's timeZone. At each scheduled
// time it makes one Job, named after the CronJob and the time in minutes (so that a
// repeated sync never makes a second), unless the CronJob is suspended, the time is
// older than startingDeadlineSeconds, or concurrencyPolicy says no: Forbid skips the
// time while a Job runs, Replace deletes the running Jobs first. After an outage it
// makes one Job, for the most recent missed time, and reports more than 100 missed
// times as an event rather than making them. It keeps status.active and the last
// schedule and success times, and deletes finished Jobs beyond the history limits.
package cronjob

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/client/workqueue"
	"github.com/skiffhq/skiff/kinds"
)

// tooManyMissed is how many missed times Kubernetes reports as too many.
const tooManyMissed = 100

// nextSyncDelay is added to the wait for the next scheduled time (Kubernetes: 100 ms),
// so that the sync comes after it.
const nextSyncDelay = 100 * time.Millisecond

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers reconcile different CronJobs concurrently. Default 5.
	Workers int
	// Logger receives the controller's logs, named "cronjob". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock, against which schedules are read. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the defaults documented on Config.
func DefaultConfig() Config {
	return Config{Workers: 5, Logger: hclog.NewNullLogger(), Now: time.Now}
}

// Validate reports every invalid field.
func (c Config) Validate() error {
	var errs []error
	if c.Workers < 1 {
		errs = append(errs, fmt.Errorf("workers: %d must be at least 1", c.Workers))
	}
	if c.Logger == nil {
		errs = append(errs, errors.New("logger: must be set"))
	}
	if c.Now == nil {
		errs = append(errs, errors.New("now: must be set"))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cronjob controller config: %w", err)
	}
	return nil
}

// Controller is the CronJob controller.
type Controller struct {
	cfg    Config
	cs     *client.Clientset
	cjInf  *cache.Informer[*batchv1.CronJob]
	jobInf *cache.Informer[*batchv1.Job]
	cjs    *cache.Lister[*batchv1.CronJob]
	jobs   *cache.Lister[*batchv1.Job]
	queue  *workqueue.Queue
	rec    *record.Recorder
	log    hclog.Logger
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, rec *record.Recorder, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cjInf := cache.InformerFor[*batchv1.CronJob](f, "", client.ListOptions{})
	jobInf := cache.InformerFor[*batchv1.Job](f, "", client.ListOptions{})
	jobInf.AddIndexer(cache.IndexOwner, cache.ByOwner[*batchv1.Job])
	c := &Controller{cfg: cfg, cs: cs, cjInf: cjInf, jobInf: jobInf, cjs: cjInf.Lister(), jobs: jobInf.Lister(),
		queue: workqueue.New(workqueue.Config{}), rec: rec, log: cfg.Logger.Named("cronjob")}
	cjInf.AddHandler(cache.Handler[*batchv1.CronJob]{
		OnAdd:    func(cj *batchv1.CronJob) { c.queue.Add(cache.Key(cj)) },
		OnUpdate: func(_, cj *batchv1.CronJob) { c.queue.Add(cache.Key(cj)) },
		OnDelete: func(cj *batchv1.CronJob) { c.queue.Add(cache.Key(cj)) },
	})
	byOwner := func(j *batchv1.Job) {
		if ref := metav1.GetControllerOfNoCopy(j); ref != nil && ref.Kind == kinds.CronJob {
			c.queue.Add(j.Namespace + "/" + ref.Name)
		}
	}
	jobInf.AddHandler(cache.Handler[*batchv1.Job]{OnAdd: byOwner, OnUpdate: func(_, j *batchv1.Job) { byOwner(j) }, OnDelete: byOwner})
	return c, nil
}

// Run reconciles until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.cjInf, c.jobInf) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// finishedType is Complete or Failed for a finished Job, else "".
func finishedType(j *batchv1.Job) batchv1.JobConditionType {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.Type
		}
	}
	return ""
}

// Reconcile syncs one CronJob by key and says when to look again (its next time).
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	cached, ok := c.cjs.Get(ns, name)
	if !ok {
		return 0, nil
	}
	cj := cached.DeepCopy()
	var jobs []*batchv1.Job
	for _, j := range c.jobs.ByIndex(cache.IndexOwner, string(cj.UID)) {
		if ref := metav1.GetControllerOfNoCopy(j); ref != nil && ref.UID == cj.UID {
			jobs = append(jobs, j)
		}
	}
	now := c.cfg.Now()
	c.trackJobs(cj, jobs)
	var errs []error
	if cj.DeletionTimestamp == nil {
		errs = append(errs, c.cleanup(ctx, cj, jobs))
	}
	requeue, err := c.schedule(ctx, cj, now)
	errs = append(errs, err)
	if !equality.Semantic.DeepEqual(cj.Status, cached.Status) {
		if _, err := c.cs.CronJobs.UpdateStatus(ctx, cj); err != nil && !client.IsNotFound(err) {
			errs = append(errs, fmt.Errorf("update status of cronjob %s: %w", key, err))
		}
	}
	return requeue, errors.Join(errs...)
}

// trackJobs brings status.active up to date with the Jobs: a finished Job leaves it (and
// may be the last success), a running one missing from it joins it, a gone one leaves.
func (c *Controller) trackJobs(cj *batchv1.CronJob, jobs []*batchv1.Job) {
	st := &cj.Status
	inActive := func(j *batchv1.Job) int {
		return slices.IndexFunc(st.Active, func(r corev1.ObjectReference) bool { return r.UID == j.UID })
	}
	seen := map[string]bool{}
	for _, j := range jobs {
		seen[string(j.UID)] = true
		ft := finishedType(j)
		i := inActive(j)
		switch {
		case i < 0 && ft == "":
			st.Active = append(st.Active, jobRef(j))
		case i >= 0 && ft != "":
			st.Active = slices.Delete(st.Active, i, i+1)
			c.rec.Eventf(cj, record.Normal, "SawCompletedJob", "Saw completed job: %s, condition: %v", j.Name, ft)
		}
		if ft == batchv1.JobComplete && j.Status.CompletionTime != nil &&
			(st.LastSuccessfulTime == nil || st.LastSuccessfulTime.Before(j.Status.CompletionTime)) {
			st.LastSuccessfulTime = j.Status.CompletionTime.DeepCopy()
		}
	}
	st.Active = slices.DeleteFunc(st.Active, func(r corev1.ObjectReference) bool {
		if seen[string(r.UID)] {
			return false
		}
		c.rec.Eventf(cj, record.Normal, "MissingJob", "Active job went missing: %v", r.Name)
		return true
	})
	if len(st.Active) == 0 {
		st.Active = nil
	}
}

func jobRef(j *batchv1.Job) corev1.ObjectReference {
	return corev1.ObjectReference{Kind: kinds.Job, APIVersion: "batch/v1", Namespace: j.Namespace, Name: j.Name,
		UID: j.UID, ResourceVersion: j.ResourceVersion}
}

// cleanup deletes the oldest finished Jobs beyond the history limits.
func (c *Controller) cleanup(ctx context.Context, cj *batchv1.CronJob, jobs []*batchv1.Job) error {
	var succeeded, failed []*batchv1.Job
	for _, j := range jobs {
		switch finishedType(j) {
		case batchv1.JobComplete:
			succeeded = append(succeeded, j)
		case batchv1.JobFailed:
			failed = append(failed, j)
		}
	}
	var errs []error
	for _, h := range []struct {
		jobs  []*batchv1.Job
		limit *int32
	}{{succeeded, cj.Spec.SuccessfulJobsHistoryLimit}, {failed, cj.Spec.FailedJobsHistoryLimit}} {
		if h.limit == nil || len(h.jobs) <= int(*h.limit) {
			continue
		}
		sort.Slice(h.jobs, func(i, k int) bool { return startedBefore(h.jobs[i], h.jobs[k]) })
		for _, j := range h.jobs[:len(h.jobs)-int(*h.limit)] {
			errs = append(errs, c.deleteJob(ctx, cj, j))
		}
	}
	return errors.Join(errs...)
}

func startedBefore(a, b *batchv1.Job) bool {
	ta, tb := a.CreationTimestamp, b.CreationTimestamp
	if a.Status.StartTime != nil {
		ta = *a.Status.StartTime
	}
	if b.Status.StartTime != nil {
		tb = *b.Status.StartTime
	}
	if !ta.Equal(&tb) {
		return ta.Before(&tb)
	}
	return a.Name < b.Name
}

// deleteJob deletes a Job and its pods (background propagation, as Kubernetes).
func (c *Controller) deleteJob(ctx context.Context, cj *batchv1.CronJob, j *batchv1.Job) error {
	_, err := c.cs.Jobs.Delete(ctx, j.Namespace, j.Name, client.DeleteOptions{UID: string(j.UID), PropagationPolicy: "Background"})
	if err != nil && !client.IsNotFound(err) {
		c.rec.Eventf(cj, record.Warning, "FailedDelete", "Deleted job: %v", err)
		return fmt.Errorf("delete job %s: %w", cache.Key(j), err)
	}
	c.rec.Eventf(cj, record.Normal, "SuccessfulDelete", "Deleted job %v", j.Name)
	return nil
}

// schedule makes the Job of the most recent scheduled time, if it is due and allowed,
// and returns the wait until the next time.
func (c *Controller) schedule(ctx context.Context, cj *batchv1.CronJob, now time.Time) (time.Duration, error) {
	if cj.DeletionTimestamp != nil || ptr.Deref(cj.Spec.Suspend, false) {
		return 0, nil
	}
	loc := time.UTC
	if tz := cj.Spec.TimeZone; tz != nil {
		l, err := time.LoadLocation(*tz)
		if err != nil {
			c.rec.Eventf(cj, record.Warning, "UnknownTimeZone", "invalid timeZone: %q: %s", *tz, err)
			return 0, nil
		}
		loc = l
	}
	sched, err := cron.ParseStandard(cj.Spec.Schedule)
	if err != nil {
		c.rec.Eventf(cj, record.Warning, "UnparseableSchedule", "unparseable schedule: %q : %s", cj.Spec.Schedule, err)
		return 0, nil
	}
	now = now.In(loc)
	next := sched.Next(now).Sub(now) + nextSyncDelay
	scheduled, missed := MostRecentScheduleTime(cj, now, sched)
	if missed > tooManyMissed {
		c.rec.Eventf(cj, record.Warning, "TooManyMissedTimes",
			"too many missed start times: %d. Set or decrease .spec.startingDeadlineSeconds or check clock skew", missed)
	}
	if scheduled.IsZero() {
		return next, nil
	}
	if sds := cj.Spec.StartingDeadlineSeconds; sds != nil && scheduled.Add(time.Duration(*sds)*time.Second).Before(now) {
		c.rec.Eventf(cj, record.Warning, "MissedSchedule", "Missed scheduled time to start a job: %s", scheduled.Format(time.RFC1123Z))
		return next, nil
	}
	name := JobName(cj.Name, scheduled)
	st := &cj.Status
	if slices.ContainsFunc(st.Active, func(r corev1.ObjectReference) bool { return r.Name == name }) ||
		(st.LastScheduleTime != nil && !st.LastScheduleTime.Time.Before(scheduled)) {
		return next, nil // made already
	}
	switch cj.Spec.ConcurrencyPolicy {
	case batchv1.ForbidConcurrent:
		if len(st.Active) > 0 {
			c.rec.Eventf(cj, record.Normal, "JobAlreadyActive", "Not starting job because prior execution is running and concurrency policy is Forbid")
			return next, nil
		}
	case batchv1.ReplaceConcurrent:
		for _, r := range st.Active {
			j, ok := c.jobs.Get(r.Namespace, r.Name)
			if !ok {
				continue
			}
			if err := c.deleteJob(ctx, cj, j); err != nil {
				return 0, err
			}
		}
		st.Active = nil
	}
	job := NewJob(cj, scheduled, loc)
	out, err := c.cs.Jobs.Create(ctx, job)
	switch {
	case client.IsAlreadyExists(err):
		// Made by an earlier sync whose status update was lost: count it as made.
		if existing, gerr := c.cs.Jobs.Get(ctx, cj.Namespace, name); gerr == nil && metav1.IsControlledBy(existing, cj) {
			out, err = existing, nil
		}
	case err != nil:
		c.rec.Eventf(cj, record.Warning, "FailedCreate", "Error creating job: %v", err)
	}
	if err != nil {
		return 0, fmt.Errorf("create job for cronjob %s: %w", cache.Key(cj), err)
	}
	c.rec.Eventf(cj, record.Normal, "SuccessfulCreate", "Created job %v", out.Name)
	if finishedType(out) == "" {
		st.Active = append(st.Active, jobRef(out))
	}
	st.LastScheduleTime = ptr.To(metav1.NewTime(scheduled))
	return next, nil
}

// JobName is the name of a CronJob's Job for a scheduled time (Kubernetes':
// the CronJob's name and the time in minutes since the epoch).
func JobName(cronJob string, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", cronJob, scheduled.Unix()/60)
}

// NewJob is the Job a CronJob makes for a scheduled time: its job template, controlled
// by the CronJob, with the time in the annotation batch.kubernetes.io/cronjob-scheduled-timestamp.
func NewJob(cj *batchv1.CronJob, scheduled time.Time, loc *time.Location) *batchv1.Job {
	t := cj.Spec.JobTemplate.DeepCopy()
	job := &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: JobName(cj.Name, scheduled), Namespace: cj.Namespace,
		Labels: t.Labels, Annotations: t.Annotations, OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(cj)}},
		Spec: t.Spec}
	if job.Annotations == nil {
		job.Annotations = map[string]string{}
	}
	job.Annotations[batchv1.CronJobScheduledTimestampAnnotation] = scheduled.In(loc).Format(time.RFC3339)
	return job
}

// MostRecentScheduleTime is Kubernetes' mostRecentScheduleTime: the latest scheduled
// time at or before now and after the last one acted on (or the CronJob's creation;
// with startingDeadlineSeconds, not before now minus it), or zero; and how many times
// were missed since.
func MostRecentScheduleTime(cj *batchv1.CronJob, now time.Time, sched cron.Schedule) (time.Time, int64) {
	earliest := cj.CreationTimestamp.Time
	if cj.Status.LastScheduleTime != nil {
		earliest = cj.Status.LastScheduleTime.Time
	}
	if sds := cj.Spec.StartingDeadlineSeconds; sds != nil {
		if d := now.Add(-time.Duration(*sds) * time.Second); d.After(earliest) {
			earliest = d
		}
	}
	t := sched.Next(earliest.In(now.Location()))
	if t.IsZero() || now.Before(t) {
		return time.Time{}, 0
	}
	// Walk the times up to now; past too many, jump as Kubernetes does, by the interval
	// of the first two.
	var n int64
	for n < tooManyMissed {
		n++
		next := sched.Next(t)
		if next.IsZero() || next.After(now) {
			return t, n
		}
		t = next
	}
	n++ // t, the first time not walked
	interval := int64(sched.Next(t).Sub(t).Round(time.Second).Seconds())
	if interval < 1 {
		return t, n
	}
	skip := int64(now.Sub(t).Seconds()) / interval
	t = time.Unix(t.Unix()+skip*interval, 0).In(now.Location())
	for next := sched.Next(t); !next.IsZero() && !next.After(now); next = sched.Next(t) {
		t = next
		skip++
	}
	return t, n + skip
}
