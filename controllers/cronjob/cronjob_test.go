package cronjob

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/robfig/cron/v3"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func TestMostRecentScheduleTime(t *testing.T) {
	created := time.Date(2026, 3, 1, 10, 0, 30, 0, time.UTC)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name     string
		schedule string
		last     *time.Time
		sds      *int64
		now      time.Time
		want     time.Time
		missed   int64
	}{
		{"not yet", "* * * * *", nil, nil, created.Add(20 * time.Second), time.Time{}, 0},
		{"first minute", "* * * * *", nil, nil, created.Add(40 * time.Second), time.Date(2026, 3, 1, 10, 1, 0, 0, time.UTC), 1},
		{"after the last", "*/5 * * * *", ptr.To(time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC)), nil, time.Date(2026, 3, 1, 10, 12, 0, 0, time.UTC),
			time.Date(2026, 3, 1, 10, 10, 0, 0, time.UTC), 1},
		{"three missed", "*/5 * * * *", ptr.To(time.Date(2026, 3, 1, 10, 5, 0, 0, time.UTC)), nil, time.Date(2026, 3, 1, 10, 21, 0, 0, time.UTC),
			time.Date(2026, 3, 1, 10, 20, 0, 0, time.UTC), 3},
		{"a day of minutes", "* * * * *", nil, nil, created.Add(24 * time.Hour), time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), 1440},
		{"deadline hides the old ones", "* * * * *", nil, ptr.To[int64](90), created.Add(24 * time.Hour), time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), 1},
		{"deadline passed", "0 * * * *", nil, ptr.To[int64](60), time.Date(2026, 3, 1, 11, 2, 0, 0, time.UTC), time.Time{}, 0},
		{"time zone", "0 9 * * *", nil, nil, time.Date(2026, 3, 2, 0, 30, 0, 0, time.UTC).In(tokyo), time.Date(2026, 3, 2, 9, 0, 0, 0, tokyo), 1},
	} {
		cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{CreationTimestamp: metav1.NewTime(created)}, Spec: batchv1.CronJobSpec{StartingDeadlineSeconds: c.sds}}
		if c.last != nil {
			cj.Status.LastScheduleTime = ptr.To(metav1.NewTime(*c.last))
		}
		sched, err := cron.ParseStandard(c.schedule)
		if err != nil {
			t.Fatal(err)
		}
		got, missed := MostRecentScheduleTime(cj, c.now, sched)
		if !got.Equal(c.want) || missed != c.missed {
			t.Errorf("%s: %v (%d missed), want %v (%d)", c.name, got, missed, c.want, c.missed)
		}
	}
}

func TestNewJob(t *testing.T) {
	cj := &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: "nightly", Namespace: "ns", UID: "u"},
		Spec: batchv1.CronJobSpec{JobTemplate: batchv1.JobTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"a": "b"}}}}}
	tokyo, _ := time.LoadLocation("Asia/Tokyo")
	at := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	j := NewJob(cj, at, tokyo)
	if j.Name != "nightly-29540160" || j.Labels["a"] != "b" || !metav1.IsControlledBy(j, cj) ||
		j.Annotations[batchv1.CronJobScheduledTimestampAnnotation] != "2026-03-02T09:00:00+09:00" {
		t.Fatalf("job %+v", j.ObjectMeta)
	}
}

// clock is the controller's fake clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

type env struct {
	t     *testing.T
	cs    *client.Clientset
	ctx   context.Context
	c     *Controller
	clock *clock
}

// start makes a controller on a fake clock whose syncs the test drives.
func start(t *testing.T) *env {
	t.Helper()
	cl := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(cl.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	rec := record.New(cs.Events, record.Config{Component: "cronjob-controller"})
	clk := &clock{}
	cfg := DefaultConfig()
	cfg.Now = clk.Now
	c, err := New(cs, f, rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	done := make(chan struct{})
	go func() { defer close(done); rec.Run(ctx) }()
	t.Cleanup(func() { cancel(); f.Wait(); <-done })
	if !f.WaitForSync(ctx) {
		t.Fatal("caches never synced")
	}
	return &env{t: t, cs: cs, ctx: ctx, c: c, clock: clk}
}

func newCronJob(name, schedule string, policy batchv1.ConcurrencyPolicy) *batchv1.CronJob {
	return &batchv1.CronJob{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.CronJobSpec{Schedule: schedule, ConcurrencyPolicy: policy,
			JobTemplate: batchv1.JobTemplateSpec{Spec: batchv1.JobSpec{Template: corev1.PodTemplateSpec{
				Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}}}
}

func (e *env) create(cj *batchv1.CronJob) *batchv1.CronJob {
	e.t.Helper()
	out, err := e.cs.CronJobs.Create(e.ctx, cj)
	if err != nil {
		e.t.Fatal(err)
	}
	e.waitCache(out)
	return out
}

// waitCache waits until the controller's cache shows the CronJob as written.
func (e *env) waitCache(cj *batchv1.CronJob) {
	e.t.Helper()
	waitfor.Condition(e.t, 20*time.Second, "cache shows "+cj.Name, func() (bool, string) {
		got, ok := e.c.cjs.Get(cj.Namespace, cj.Name)
		return ok && got.ResourceVersion == cj.ResourceVersion, ""
	})
}

// sync runs one sync at time now and waits for the cache to show its writes.
func (e *env) sync(name string, now time.Time) {
	e.t.Helper()
	e.clock.Set(now)
	if _, err := e.c.Reconcile(e.ctx, "default/"+name); err != nil {
		e.t.Fatal(err)
	}
	cur, err := e.cs.CronJobs.Get(e.ctx, "default", name)
	if err != nil {
		e.t.Fatal(err)
	}
	e.waitCache(cur)
	jobs := e.jobs()
	waitfor.Condition(e.t, 20*time.Second, "cache shows the jobs", func() (bool, string) {
		return len(e.c.jobs.List(labels.Everything())) == len(jobs), ""
	})
}

func (e *env) jobs() []*batchv1.Job {
	e.t.Helper()
	l, err := e.cs.Jobs.List(e.ctx, "default", client.ListOptions{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []*batchv1.Job
	for _, j := range l.Items {
		if j.DeletionTimestamp == nil {
			out = append(out, j)
		}
	}
	return out
}

func (e *env) finish(j *batchv1.Job, ct batchv1.JobConditionType, at time.Time) {
	e.t.Helper()
	j.Status.StartTime = ptr.To(metav1.NewTime(at.Add(-time.Second)))
	j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: ct, Status: corev1.ConditionTrue})
	if ct == batchv1.JobComplete {
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue})
		j.Status.CompletionTime = ptr.To(metav1.NewTime(at))
	} else {
		j.Status.Conditions = append(j.Status.Conditions, batchv1.JobCondition{Type: batchv1.JobFailureTarget, Status: corev1.ConditionTrue})
	}
	out, err := e.cs.Jobs.UpdateStatus(e.ctx, j)
	if err != nil {
		e.t.Fatal(err)
	}
	waitfor.Condition(e.t, 20*time.Second, "cache shows the finished job", func() (bool, string) {
		got, ok := e.c.jobs.Get(out.Namespace, out.Name)
		return ok && got.ResourceVersion == out.ResourceVersion, ""
	})
}

func (e *env) events(reason string) int {
	e.t.Helper()
	n := 0
	waitfor.Condition(e.t, 20*time.Second, "events written", func() (bool, string) {
		l, err := e.cs.Events.List(e.ctx, "default", client.ListOptions{})
		if err != nil {
			return false, err.Error()
		}
		n = 0
		for _, ev := range l.Items {
			if ev.Reason == reason {
				n += int(max(ev.Count, 1))
			}
		}
		return n > 0, ""
	})
	return n
}

// minute returns the i-th whole minute after t.
func minute(t time.Time, i int) time.Time {
	return t.Truncate(time.Minute).Add(time.Duration(i) * time.Minute)
}

// TestForbidNeverOverlaps: an every-minute CronJob with Forbid makes no Job while the
// last one runs, and makes the next one once it finished — on a fake clock, an hour of
// minutes in no time.
func TestForbidNeverOverlaps(t *testing.T) {
	e := start(t)
	cj := e.create(newCronJob("tick", "* * * * *", batchv1.ForbidConcurrent))
	c0 := cj.CreationTimestamp.Time
	e.sync("tick", minute(c0, 1).Add(5*time.Second))
	jobs := e.jobs()
	if len(jobs) != 1 || jobs[0].Name != JobName("tick", minute(c0, 1)) {
		t.Fatalf("jobs %v after the first minute", names(jobs))
	}
	for i := 2; i <= 5; i++ { // the Job runs for 4 more minutes: nothing new
		e.sync("tick", minute(c0, i).Add(time.Second))
		if jobs := e.jobs(); len(jobs) != 1 {
			t.Fatalf("minute %d: jobs %v while one runs, policy Forbid", i, names(jobs))
		}
	}
	if e.events("JobAlreadyActive") < 1 {
		t.Error("no JobAlreadyActive event")
	}
	e.finish(jobs[0], batchv1.JobComplete, minute(c0, 5).Add(30*time.Second))
	e.sync("tick", minute(c0, 6).Add(time.Second))
	jobs = e.jobs()
	if len(jobs) != 2 {
		t.Fatalf("jobs %v, want a second once the first finished", names(jobs))
	}
	cur, _ := e.cs.CronJobs.Get(e.ctx, "default", "tick")
	if len(cur.Status.Active) != 1 || cur.Status.Active[0].Name != JobName("tick", minute(c0, 6)) ||
		cur.Status.LastSuccessfulTime == nil || !cur.Status.LastScheduleTime.Time.Equal(minute(c0, 6)) {
		t.Fatalf("status %+v", cur.Status)
	}
}

// TestReplace: Replace deletes the running Job before making the next.
func TestReplace(t *testing.T) {
	e := start(t)
	cj := e.create(newCronJob("rep", "* * * * *", batchv1.ReplaceConcurrent))
	c0 := cj.CreationTimestamp.Time
	e.sync("rep", minute(c0, 1))
	e.sync("rep", minute(c0, 2))
	jobs := e.jobs()
	if len(jobs) != 1 || jobs[0].Name != JobName("rep", minute(c0, 2)) {
		t.Fatalf("jobs %v, want only the second minute's", names(jobs))
	}
}

// TestAllowAndHistory: Allow runs Jobs side by side; finished ones beyond the history
// limits go, the oldest first.
func TestAllowAndHistory(t *testing.T) {
	e := start(t)
	cj := newCronJob("many", "* * * * *", batchv1.AllowConcurrent)
	cj.Spec.SuccessfulJobsHistoryLimit, cj.Spec.FailedJobsHistoryLimit = ptr.To[int32](1), ptr.To[int32](0)
	cj = e.create(cj)
	c0 := cj.CreationTimestamp.Time
	for i := 1; i <= 3; i++ {
		e.sync("many", minute(c0, i))
	}
	jobs := e.jobs()
	if len(jobs) != 3 {
		t.Fatalf("jobs %v, want 3 side by side", names(jobs))
	}
	e.finish(jobs[0], batchv1.JobComplete, minute(c0, 3).Add(10*time.Second))
	e.finish(jobs[1], batchv1.JobComplete, minute(c0, 3).Add(20*time.Second))
	e.finish(jobs[2], batchv1.JobFailed, minute(c0, 3).Add(30*time.Second))
	e.sync("many", minute(c0, 3).Add(40*time.Second))
	if jobs := e.jobs(); len(jobs) != 1 || jobs[0].Name != JobName("many", minute(c0, 2)) {
		t.Fatalf("jobs %v, want only the newest success", names(jobs))
	}
}

// TestTooManyMissed: after a long outage, one Job (the latest time) and an event.
func TestTooManyMissed(t *testing.T) {
	e := start(t)
	cj := e.create(newCronJob("late", "* * * * *", batchv1.AllowConcurrent))
	c0 := cj.CreationTimestamp.Time
	e.sync("late", minute(c0, 300).Add(time.Second))
	jobs := e.jobs()
	if len(jobs) != 1 || jobs[0].Name != JobName("late", minute(c0, 300)) {
		t.Fatalf("jobs %v, want one for the latest minute", names(jobs))
	}
	if e.events("TooManyMissedTimes") < 1 {
		t.Error("no TooManyMissedTimes event")
	}
}

// TestStartingDeadlineAndSuspend: a time older than startingDeadlineSeconds is skipped;
// a suspended CronJob makes nothing.
func TestStartingDeadlineAndSuspend(t *testing.T) {
	e := start(t)
	cj := newCronJob("dl", "* * * * *", batchv1.AllowConcurrent)
	cj.Spec.StartingDeadlineSeconds = ptr.To[int64](10)
	cj = e.create(cj)
	c0 := cj.CreationTimestamp.Time
	e.sync("dl", minute(c0, 1).Add(30*time.Second))
	if jobs := e.jobs(); len(jobs) != 0 {
		t.Fatalf("jobs %v 30s after the time, deadline 10s", names(jobs))
	}
	e.sync("dl", minute(c0, 2).Add(5*time.Second))
	if jobs := e.jobs(); len(jobs) != 1 {
		t.Fatalf("jobs %v 5s after the time, deadline 10s", names(jobs))
	}
	cur, _ := e.cs.CronJobs.Get(e.ctx, "default", "dl")
	cur.Spec.Suspend = ptr.To(true)
	cur, err := e.cs.CronJobs.Update(e.ctx, cur)
	if err != nil {
		t.Fatal(err)
	}
	e.waitCache(cur)
	e.sync("dl", minute(c0, 3))
	if jobs := e.jobs(); len(jobs) != 1 {
		t.Fatalf("jobs %v: a suspended CronJob made one", names(jobs))
	}
}

func names(jobs []*batchv1.Job) string {
	var s []string
	for _, j := range jobs {
		s = append(s, j.Name)
	}
	return strings.Join(s, ",")
}
