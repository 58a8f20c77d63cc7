package job

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/record"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/kinds/indexes"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func TestBackoffDelay(t *testing.T) {
	for _, c := range []struct {
		failures int
		want     time.Duration
	}{{0, 0}, {1, 10 * time.Second}, {2, 20 * time.Second}, {4, 80 * time.Second}, {6, 320 * time.Second}, {7, 6 * time.Minute}, {50, 6 * time.Minute}} {
		if got := backoffDelay(c.failures, 10*time.Second, 6*time.Minute); got != c.want {
			t.Errorf("backoffDelay(%d) = %v, want %v", c.failures, got, c.want)
		}
	}
}

func exited(name string, code int32) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: name, State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code}}}
}

func TestMatchFailurePolicy(t *testing.T) {
	pfp := &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnPodConditions: []batchv1.PodFailurePolicyOnPodConditionsPattern{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}},
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{ContainerName: ptr.To("main"), Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
		{Action: batchv1.PodFailurePolicyActionCount, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpNotIn, Values: []int32{1, 2}}},
	}}
	pod := func(cond bool, statuses ...corev1.ContainerStatus) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}, Status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: statuses}}
		if cond {
			p.Status.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue}}
		}
		return p
	}
	for _, c := range []struct {
		name string
		pod  *corev1.Pod
		want string // "" no match
		msg  string
	}{
		{"disrupted", pod(true, exited("main", 42)), "Ignore", "Pod ns/p has condition DisruptionTarget matching Ignore rule at index 0"},
		{"42 in main", pod(false, exited("side", 0), exited("main", 42)), "FailJob", "Container main for pod ns/p failed with exit code 42 matching FailJob rule at index 1"},
		{"42 in side: NotIn 1,2", pod(false, exited("side", 42)), "Count", ""},
		{"exit 1: no rule", pod(false, exited("main", 1)), "", ""},
		{"exit 0 is no NotIn match", pod(false, exited("main", 0)), "", ""},
	} {
		a, msg := matchFailurePolicy(pfp, c.pod)
		got := ""
		if a != nil {
			got = string(*a)
		}
		if got != c.want || (c.msg != "" && msg != c.msg) {
			t.Errorf("%s: action %q (%q), want %q (%q)", c.name, got, msg, c.want, c.msg)
		}
	}
}

func TestMatchSuccessPolicy(t *testing.T) {
	set := func(s string) indexes.Set { x, _ := indexes.Parse(s, 10); return x }
	sp := &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{
		{SucceededIndexes: ptr.To("0-2")},
		{SucceededIndexes: ptr.To("5-9"), SucceededCount: ptr.To[int32](2)},
		{SucceededCount: ptr.To[int32](6)},
	}}
	for _, c := range []struct {
		done string
		want int
	}{{"", -1}, {"0,1", -1}, {"0-2", 0}, {"5,7", 1}, {"1,3,4,5", -1}, {"1,3-4,6,8", 1}, {"0-1,3-4,6", -1}, {"0-1,3-4,6,8", 1}, {"1,3,4,6,8", 1}} {
		if got := matchSuccessPolicy(sp, 10, set(c.done)); got != c.want {
			t.Errorf("succeeded %q: rule %d, want %d", c.done, got, c.want)
		}
	}
	sp = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededCount: ptr.To[int32](3)}}}
	if matchSuccessPolicy(sp, 10, set("0,4")) != -1 || matchSuccessPolicy(sp, 10, set("0,4,9")) != 0 {
		t.Error("succeededCount alone counts any indexes")
	}
}

func TestNewPod(t *testing.T) {
	job := newJob("work", 10, 3, true)
	job.UID = "u1"
	job.Spec.BackoffLimitPerIndex = ptr.To[int32](2)
	p := NewPod(job, 7, 1)
	if p.GenerateName != "work-7-" || p.Annotations[batchv1.JobCompletionIndexAnnotation] != "7" || p.Labels[batchv1.JobCompletionIndexAnnotation] != "7" ||
		p.Annotations[batchv1.JobIndexFailureCountAnnotation] != "1" || p.Spec.Hostname != "work-7" {
		t.Fatalf("pod %+v, hostname %q", p.ObjectMeta, p.Spec.Hostname)
	}
	if env := p.Spec.Containers[0].Env; len(env) != 1 || env[0] != (corev1.EnvVar{Name: CompletionIndexEnv, Value: "7"}) {
		t.Errorf("env %v", env)
	}
	if !hasTrackingFinalizer(p) || !metav1.IsControlledBy(p, job) {
		t.Errorf("finalizers %v, owners %v", p.Finalizers, p.OwnerReferences)
	}
	if len(job.Spec.Template.Spec.Containers[0].Env) != 0 {
		t.Error("the template changed")
	}
}

// outcome says how a pod ends: its phase and its container's exit code; "" leaves it
// running.
type outcome func(p *corev1.Pod) (corev1.PodPhase, int32)

// runPods stands in for the kubelets: it ends every pod that appears as outcome says,
// and deletes pods being deleted (grace 0) as a kubelet does.
func runPods(ctx context.Context, cs *client.Clientset, out outcome) {
	settle := func(p *corev1.Pod) {
		if p.DeletionTimestamp != nil {
			if ptr.Deref(p.DeletionGracePeriodSeconds, 0) > 0 {
				cs.Pods.Delete(ctx, p.Namespace, p.Name, client.DeleteOptions{UID: string(p.UID), GracePeriodSeconds: ptr.To[int64](0)})
			}
			return
		}
		if p.Status.Phase == corev1.PodSucceeded || p.Status.Phase == corev1.PodFailed {
			return
		}
		phase, code := out(p)
		if phase == "" {
			if p.Status.Phase != corev1.PodRunning {
				p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
				cs.Pods.UpdateStatus(ctx, p)
			}
			return
		}
		p.Status = corev1.PodStatus{Phase: phase, ContainerStatuses: []corev1.ContainerStatus{exited("c", code)}}
		p.Status.ContainerStatuses[0].State.Terminated.FinishedAt = metav1.Now()
		cs.Pods.UpdateStatus(ctx, p)
	}
	for ctx.Err() == nil {
		l, err := cs.Pods.List(ctx, "", client.ListOptions{})
		if err != nil {
			continue
		}
		for _, p := range l.Items {
			settle(p)
		}
		w, err := cs.Pods.Watch(ctx, "", client.WatchOptions{ResourceVersion: l.ResourceVersion})
		for err == nil {
			var evs []client.Event[*corev1.Pod]
			if evs, err = w.Next(); err == nil {
				for _, ev := range evs {
					if ev.Type != client.Deleted {
						go settle(ev.Object) // pods run side by side
					}
				}
			}
		}
	}
}

func succeed(*corev1.Pod) (corev1.PodPhase, int32) { return corev1.PodSucceeded, 0 }

type env struct {
	cs   *client.Clientset
	ctx  context.Context
	conn *client.Conn
}

func cluster(t *testing.T, out outcome) *env {
	t.Helper()
	c := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(c.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	done := make(chan struct{})
	go func() { defer close(done); runPods(ctx, cs, out) }()
	t.Cleanup(func() { cancel(); <-done })
	return &env{cs: cs, ctx: ctx, conn: conn}
}

// startController runs a Job controller until the returned stop is called (or the
// test ends).
func (e *env) startController(t *testing.T, cfg Config) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	f := cache.NewFactory(e.cs, hclog.NewNullLogger())
	rec := record.New(e.cs.Events, record.Config{Component: "job-controller"})
	ctrl, err := New(e.cs, f, rec, cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { rec.Run(ctx) })
	wg.Go(func() { ctrl.Run(ctx) })
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); f.Wait(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

func fastConfig() Config {
	cfg := DefaultConfig()
	cfg.Logger = hclog.New(&hclog.LoggerOptions{Level: hclog.Warn})
	cfg.BackoffBase, cfg.BackoffMax = 10*time.Millisecond, 40*time.Millisecond
	return cfg
}

func newJob(name string, completions, parallelism int32, isIndexed bool) *batchv1.Job {
	mode := batchv1.NonIndexedCompletion
	if isIndexed {
		mode = batchv1.IndexedCompletion
	}
	return &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
		Spec: batchv1.JobSpec{Completions: ptr.To(completions), Parallelism: ptr.To(parallelism), CompletionMode: &mode,
			Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever,
				Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}}
}

func (e *env) waitCondition(t *testing.T, name string, ct batchv1.JobConditionType) *batchv1.Job {
	t.Helper()
	var job *batchv1.Job
	waitfor.Condition(t, 60*time.Second, fmt.Sprintf("job %s %s", name, ct), func() (bool, string) {
		var err error
		if job, err = e.cs.Jobs.Get(e.ctx, "default", name); err != nil {
			return false, err.Error()
		}
		return isTrue(job, ct), fmt.Sprintf("status %+v, %d pods", job.Status, len(e.jobPods(t, job)))
	})
	return job
}

func (e *env) jobPods(t *testing.T, job *batchv1.Job) []*corev1.Pod {
	t.Helper()
	l, err := e.cs.Pods.List(e.ctx, "default", client.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var out []*corev1.Pod
	for _, p := range l.Items {
		if metav1.IsControlledBy(p, job) {
			out = append(out, p)
		}
	}
	return out
}

// followPods calls f, under the returned lock, with each event of the namespace's pods
// from a watch started now, until the test ends.
func (e *env) followPods(t *testing.T, f func(ev client.Event[*corev1.Pod])) *sync.Mutex {
	w, err := e.cs.Pods.Watch(e.ctx, "default", client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	go func() {
		for {
			evs, err := w.Next()
			if err != nil {
				return
			}
			mu.Lock()
			for _, ev := range evs {
				f(ev)
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(w.Stop)
	return &mu
}

// watchActive follows the Job's pods and reports the most that ran at once.
func (e *env) watchActive(t *testing.T) func() int {
	running := map[string]bool{}
	most := 0
	mu := e.followPods(t, func(ev client.Event[*corev1.Pod]) {
		p := ev.Object
		if ev.Type == client.Deleted || !isActive(p) {
			delete(running, p.Name)
		} else {
			running[p.Name] = true
		}
		most = max(most, len(running))
	})
	return func() int { mu.Lock(); defer mu.Unlock(); return most }
}

// TestIndexedJobEachIndexOnce: an Indexed Job of 10 completions, parallelism 3, runs
// each index once and never more than 3 pods, even when its controller is replaced in
// the middle (a new one with an empty cache and no memory, as after a failover).
func TestIndexedJobEachIndexOnce(t *testing.T) {
	var mu sync.Mutex
	release := make(chan struct{})
	started := 0
	e := cluster(t, func(p *corev1.Pod) (corev1.PodPhase, int32) {
		mu.Lock()
		started++
		n := started
		mu.Unlock()
		if n > 4 {
			<-release // the later pods finish only after the failover
		}
		return succeed(p)
	})
	most := e.watchActive(t)
	stop := e.startController(t, fastConfig())
	job, err := e.cs.Jobs.Create(e.ctx, newJob("idx", 10, 3, true))
	if err != nil {
		t.Fatal(err)
	}
	waitfor.ConditionErr(t, 30*time.Second, "4 indexes done", func() (bool, error) {
		cur, err := e.cs.Jobs.Get(e.ctx, "default", "idx")
		return err == nil && cur.Status.Succeeded >= 4, err
	})
	stop()
	close(release)
	e.startController(t, fastConfig())
	job = e.waitCondition(t, "idx", batchv1.JobComplete)
	st := job.Status
	if st.Succeeded != 10 || st.CompletedIndexes != "0-9" || st.Failed != 0 || st.Active != 0 || st.StartTime == nil || st.CompletionTime == nil {
		t.Fatalf("status %+v", st)
	}
	if !isTrue(job, batchv1.JobSuccessCriteriaMet) {
		t.Errorf("conditions %+v, want SuccessCriteriaMet too", st.Conditions)
	}
	perIndex := map[string]int{}
	for _, p := range e.jobPods(t, job) {
		perIndex[p.Annotations[batchv1.JobCompletionIndexAnnotation]]++
		if hasTrackingFinalizer(p) {
			t.Errorf("pod %s still holds the finalizer", p.Name)
		}
	}
	for ix := range 10 {
		if n := perIndex[fmt.Sprint(ix)]; n != 1 {
			t.Errorf("index %d ran %d times", ix, n)
		}
	}
	if m := most(); m > 3 {
		t.Errorf("%d pods ran at once, parallelism 3", m)
	}
}

func TestNonIndexedCompletions(t *testing.T) {
	e := cluster(t, succeed)
	e.startController(t, fastConfig())
	most := e.watchActive(t)
	if _, err := e.cs.Jobs.Create(e.ctx, newJob("plain", 5, 2, false)); err != nil {
		t.Fatal(err)
	}
	job := e.waitCondition(t, "plain", batchv1.JobComplete)
	if job.Status.Succeeded != 5 || job.Status.UncountedTerminatedPods == nil || len(job.Status.UncountedTerminatedPods.Succeeded) != 0 {
		var pods []string
		for _, p := range e.jobPods(t, job) {
			pods = append(pods, fmt.Sprintf("%s %s %s %v", p.Name, p.UID, p.Status.Phase, p.Finalizers))
		}
		t.Fatalf("status %+v; pods %q", job.Status, pods)
	}
	if n := len(e.jobPods(t, job)); n != 5 {
		t.Errorf("%d pods for 5 completions", n)
	}
	if m := most(); m > 2 {
		t.Errorf("%d pods at once, parallelism 2", m)
	}
}

// TestBackoffLimit: failing pods are replaced after a back-off until backoffLimit is
// passed; the Job then fails with BackoffLimitExceeded, having counted each failure once.
func TestBackoffLimit(t *testing.T) {
	e := cluster(t, func(*corev1.Pod) (corev1.PodPhase, int32) { return corev1.PodFailed, 1 })
	e.startController(t, fastConfig())
	j := newJob("fails", 1, 1, false)
	j.Spec.BackoffLimit = ptr.To[int32](2)
	if _, err := e.cs.Jobs.Create(e.ctx, j); err != nil {
		t.Fatal(err)
	}
	job := e.waitCondition(t, "fails", batchv1.JobFailed)
	c := condition(job, batchv1.JobFailed)
	if c.Reason != batchv1.JobReasonBackoffLimitExceeded || job.Status.Failed != 3 || job.Status.Succeeded != 0 || job.Status.CompletionTime != nil {
		t.Fatalf("condition %+v, status %+v", c, job.Status)
	}
	if n := len(e.jobPods(t, job)); n != 3 {
		t.Errorf("%d pods, want 3 (backoffLimit 2)", n)
	}
}

// TestPodFailurePolicy: an ignored failure is replaced without counting; a FailJob rule
// ends the Job at once, with Kubernetes' reason and message.
func TestPodFailurePolicy(t *testing.T) {
	var mu sync.Mutex
	n := 0
	e := cluster(t, func(*corev1.Pod) (corev1.PodPhase, int32) {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n <= 2 {
			return corev1.PodFailed, 137 // ignored
		}
		return corev1.PodFailed, 42
	})
	e.startController(t, fastConfig())
	j := newJob("pfp", 1, 1, false)
	j.Spec.BackoffLimit = ptr.To[int32](0)
	j.Spec.PodFailurePolicy = &batchv1.PodFailurePolicy{Rules: []batchv1.PodFailurePolicyRule{
		{Action: batchv1.PodFailurePolicyActionIgnore, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{137}}},
		{Action: batchv1.PodFailurePolicyActionFailJob, OnExitCodes: &batchv1.PodFailurePolicyOnExitCodesRequirement{Operator: batchv1.PodFailurePolicyOnExitCodesOpIn, Values: []int32{42}}},
	}}
	if _, err := e.cs.Jobs.Create(e.ctx, j); err != nil {
		t.Fatal(err)
	}
	job := e.waitCondition(t, "pfp", batchv1.JobFailed)
	c := condition(job, batchv1.JobFailed)
	if c.Reason != batchv1.JobReasonPodFailurePolicy || job.Status.Failed != 1 {
		t.Fatalf("condition %+v, failed %d; want PodFailurePolicy and 1 failure counted (2 ignored)", c, job.Status.Failed)
	}
	if len(e.jobPods(t, job)) != 3 {
		t.Errorf("%d pods, want 3", len(e.jobPods(t, job)))
	}
}

func TestActiveDeadline(t *testing.T) {
	e := cluster(t, func(*corev1.Pod) (corev1.PodPhase, int32) { return "", 0 })
	e.startController(t, fastConfig())
	j := newJob("slow", 1, 1, false)
	j.Spec.ActiveDeadlineSeconds = ptr.To[int64](1)
	if _, err := e.cs.Jobs.Create(e.ctx, j); err != nil {
		t.Fatal(err)
	}
	job := e.waitCondition(t, "slow", batchv1.JobFailed)
	if c := condition(job, batchv1.JobFailed); c.Reason != batchv1.JobReasonDeadlineExceeded || c.Message != "Job was active longer than specified deadline" {
		t.Fatalf("condition %+v", c)
	}
	for _, p := range e.jobPods(t, job) {
		if p.DeletionTimestamp == nil {
			t.Errorf("pod %s still runs", p.Name)
		}
	}
	if job.Status.Failed != 0 {
		t.Errorf("failed %d: the pods the Job ends are no failures", job.Status.Failed)
	}
}

// TestSuspend: a suspended Job makes no pods and says so; resumed, it runs.
func TestSuspend(t *testing.T) {
	e := cluster(t, succeed)
	e.startController(t, fastConfig())
	j := newJob("later", 2, 2, false)
	j.Spec.Suspend = ptr.To(true)
	if _, err := e.cs.Jobs.Create(e.ctx, j); err != nil {
		t.Fatal(err)
	}
	job := e.waitCondition(t, "later", batchv1.JobSuspended)
	if len(e.jobPods(t, job)) != 0 || job.Status.StartTime != nil {
		t.Fatalf("a suspended Job made pods or started: %+v", job.Status)
	}
	job.Spec.Suspend = ptr.To(false)
	if _, err := e.cs.Jobs.Update(e.ctx, job); err != nil {
		t.Fatal(err)
	}
	job = e.waitCondition(t, "later", batchv1.JobComplete)
	if c := condition(job, batchv1.JobSuspended); c.Status != corev1.ConditionFalse || c.Reason != "JobResumed" || job.Status.Succeeded != 2 {
		t.Fatalf("suspended condition %+v, status %+v", c, job.Status)
	}
}

// TestSuccessPolicy: index 0 succeeding is enough; the other pods are stopped.
func TestSuccessPolicy(t *testing.T) {
	e := cluster(t, func(p *corev1.Pod) (corev1.PodPhase, int32) {
		if podIndex(p) == 0 {
			return corev1.PodSucceeded, 0
		}
		return "", 0
	})
	e.startController(t, fastConfig())
	j := newJob("leader", 4, 4, true)
	j.Spec.SuccessPolicy = &batchv1.SuccessPolicy{Rules: []batchv1.SuccessPolicyRule{{SucceededIndexes: ptr.To("0")}}}
	if _, err := e.cs.Jobs.Create(e.ctx, j); err != nil {
		t.Fatal(err)
	}
	job := e.waitCondition(t, "leader", batchv1.JobComplete)
	if c := condition(job, batchv1.JobSuccessCriteriaMet); c == nil || c.Reason != batchv1.JobReasonSuccessPolicy {
		t.Fatalf("conditions %+v", job.Status.Conditions)
	}
	if job.Status.CompletedIndexes != "0" || job.Status.Succeeded != 1 || job.Status.Active != 0 {
		t.Errorf("status %+v", job.Status)
	}
}

// TestBackoffLimitPerIndex: index 1 always fails; after backoffLimitPerIndex retries it
// is a failed index, the others complete, and the Job fails with FailedIndexes.
func TestBackoffLimitPerIndex(t *testing.T) {
	e := cluster(t, func(p *corev1.Pod) (corev1.PodPhase, int32) {
		if podIndex(p) == 1 {
			return corev1.PodFailed, 1
		}
		return corev1.PodSucceeded, 0
	})
	e.startController(t, fastConfig())
	j := newJob("per", 3, 3, true)
	j.Spec.BackoffLimitPerIndex = ptr.To[int32](1)
	j.Spec.BackoffLimit = nil
	if _, err := e.cs.Jobs.Create(e.ctx, j); err != nil {
		t.Fatal(err)
	}
	job := e.waitCondition(t, "per", batchv1.JobFailed)
	if c := condition(job, batchv1.JobFailed); c.Reason != batchv1.JobReasonFailedIndexes {
		t.Fatalf("condition %+v", c)
	}
	if ptr.Deref(job.Status.FailedIndexes, "") != "1" || job.Status.CompletedIndexes != "0,2" || job.Status.Failed != 2 {
		t.Errorf("status %+v", job.Status)
	}
	counts := map[string]bool{}
	for _, p := range e.jobPods(t, job) {
		if podIndex(p) == 1 {
			counts[p.Annotations[batchv1.JobIndexFailureCountAnnotation]] = true
		}
	}
	if len(counts) != 2 || !counts["0"] || !counts["1"] {
		t.Errorf("index 1's pods carry failure counts %v, want 0 and 1", counts)
	}
}

// newSynced makes a controller whose caches follow the cluster but that reconciles only
// when the test calls Reconcile.
func (e *env) newSynced(t *testing.T) *Controller {
	t.Helper()
	ctx, cancel := context.WithCancel(e.ctx)
	f := cache.NewFactory(e.cs, hclog.NewNullLogger())
	rec := record.New(e.cs.Events, record.Config{Component: "job-controller"})
	ctrl, err := New(e.cs, f, rec, fastConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { rec.Run(ctx) })
	t.Cleanup(func() { cancel(); f.Wait(); wg.Wait() })
	if !cache.WaitForSync(ctx, ctrl.jobInf, ctrl.podInf) {
		t.Fatal("caches never synced")
	}
	return ctrl
}

// TestUnseenCreations: a sync of an Indexed Job that waits only on pods it made and
// has not seen yet counts them active and their indexes taken, and makes the pods of
// the other indexes (it made none before: a whole sync lost per batch of pods); once
// the unseen pod is given up on, its index gets a pod. Each index runs once.
func TestUnseenCreations(t *testing.T) {
	e := cluster(t, func(*corev1.Pod) (corev1.PodPhase, int32) { return "", 0 })
	c := e.newSynced(t)
	const key = "default/idx"
	if _, err := e.cs.Jobs.Create(e.ctx, newJob("idx", 5, 3, true)); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the job in the cache", func() (bool, string) {
		_, ok := c.jobs.Get("default", "idx")
		return ok, "not yet"
	})
	// A pod of index 0 made by an earlier sync and not seen yet.
	c.exp.AddCreations(key, 1)
	c.made(key, "idx-0-unseen", 0)
	reconcile := func() {
		t.Helper()
		if _, err := c.Reconcile(e.ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	reconcile()
	indexes := func() map[int]int {
		job, err := e.cs.Jobs.Get(e.ctx, "default", "idx")
		if err != nil {
			t.Fatal(err)
		}
		out := map[int]int{}
		for _, p := range e.jobPods(t, job) {
			out[podIndex(p)]++
		}
		return out
	}
	if got := indexes(); len(got) != 2 || got[1] != 1 || got[2] != 1 {
		t.Fatalf("pods per index %v, want one each for 1 and 2 (0 is unseen, parallelism 3)", got)
	}
	job, err := e.cs.Jobs.Get(e.ctx, "default", "idx")
	if err != nil {
		t.Fatal(err)
	}
	if job.Status.Active != 3 {
		t.Errorf("active %d, want 3 (the unseen pod counts)", job.Status.Active)
	}
	// The cache shows the two pods and the status; the unseen one still holds index 0.
	waitfor.Condition(t, 30*time.Second, "the cache shows the sync", func() (bool, string) {
		cur, _ := c.jobs.Get("default", "idx")
		n := len(c.ownedPods(cur))
		return n == 2 && !c.behind(key, cur), fmt.Sprintf("%d pods", n)
	})
	reconcile()
	if got := indexes(); len(got) != 2 {
		t.Fatalf("pods per index %v: index 0 was made again while unseen", got)
	}
	// Given up on (as after a failed create or the expectations' timeout): index 0
	// gets its pod.
	c.exp.CreationObserved(key)
	// The sync before may have written the status (its pods became ready meanwhile): a
	// sync waits for the cache to show that.
	waitfor.Condition(t, 30*time.Second, "the cache shows the last status", func() (bool, string) {
		cur, _ := c.jobs.Get("default", "idx")
		return !c.behind(key, cur), "behind"
	})
	reconcile()
	if got := indexes(); len(got) != 3 || got[0] != 1 || got[1] != 1 || got[2] != 1 {
		t.Fatalf("pods per index %v, want one each for 0, 1 and 2", got)
	}
}

// TestCreationBatchRemembered: a Job's creations begin with the largest slow-start
// batch that succeeded for it before, not with 1 again.
func TestCreationBatchRemembered(t *testing.T) {
	e := cluster(t, func(*corev1.Pod) (corev1.PodPhase, int32) { return "", 0 })
	c := e.newSynced(t)
	const key = "default/wide"
	if _, err := e.cs.Jobs.Create(e.ctx, newJob("wide", 20, 4, true)); err != nil {
		t.Fatal(err)
	}
	settled := func(pods int) {
		t.Helper()
		waitfor.Condition(t, 30*time.Second, fmt.Sprintf("the cache shows %d pods and the status", pods), func() (bool, string) {
			cur, ok := c.jobs.Get("default", "wide")
			if !ok {
				return false, "no job"
			}
			n := len(c.ownedPods(cur))
			sat, _, _ := c.inflight(key)
			return n == pods && sat && !c.behind(key, cur), fmt.Sprintf("%d pods, satisfied %v", n, sat)
		})
	}
	settled(0)
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	// 4 pods: batches of 1, 2 and 1.
	if got := c.batch[key]; got != 2 {
		t.Fatalf("remembered batch %d after 4 creations, want 2", got)
	}
	settled(4)
	job, err := e.cs.Jobs.Get(e.ctx, "default", "wide")
	if err != nil {
		t.Fatal(err)
	}
	job.Spec.Parallelism = ptr.To[int32](10)
	if _, err := e.cs.Jobs.Update(e.ctx, job); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the cache shows parallelism 10", func() (bool, string) {
		cur, _ := c.jobs.Get("default", "wide")
		return *cur.Spec.Parallelism == 10, "not yet"
	})
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	// 6 more from 2: batches of 2 and 4 (from 1 they would be 1, 2 and 3).
	if got := c.batch[key]; got != 4 {
		t.Fatalf("remembered batch %d after 6 more creations, want 4", got)
	}
	settled(10)
}

// releasingPod says whether a release of the pod's finalizer is still running.
func (c *Controller) releasingPod(key string, uid types.UID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.releasing[key][uid]
}

// TestOneStatusWritePerSync: a sync that records finished pods, removes their
// finalizers and makes their replacements writes the Job's status once (it was twice
// in a row: the counts moved in a second write); the next sync counts the released
// pods in its own first write, each once.
func TestOneStatusWritePerSync(t *testing.T) {
	e := cluster(t, succeed)
	c := e.newSynced(t)
	const key = "default/once"
	if _, err := e.cs.Jobs.Create(e.ctx, newJob("once", 4, 2, false)); err != nil {
		t.Fatal(err)
	}
	settled := func(what string, ok func(cur *batchv1.Job, pods []*corev1.Pod) bool) {
		t.Helper()
		waitfor.Condition(t, 30*time.Second, "the cache shows "+what, func() (bool, string) {
			cur, found := c.jobs.Get("default", "once")
			if !found {
				return false, "no job"
			}
			pods := c.ownedPods(cur)
			sat, _, _ := c.inflight(key)
			return sat && !c.behind(key, cur) && ok(cur, pods), fmt.Sprintf("%d pods, satisfied %v", len(pods), sat)
		})
	}
	settled("the job", func(*batchv1.Job, []*corev1.Pod) bool { return true })
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	var first []types.UID
	settled("2 pods succeeded", func(_ *batchv1.Job, pods []*corev1.Pod) bool {
		first = nil
		for _, p := range pods {
			if p.Status.Phase == corev1.PodSucceeded {
				first = append(first, p.UID)
			}
		}
		return len(pods) == 2 && len(first) == 2
	})
	before, err := e.cs.Jobs.Get(e.ctx, "default", "once")
	if err != nil {
		t.Fatal(err)
	}
	w, err := e.cs.Jobs.Watch(e.ctx, "default", client.WatchOptions{ResourceVersion: before.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	after, err := e.cs.Jobs.Get(e.ctx, "default", "once")
	if err != nil {
		t.Fatal(err)
	}
	writes := 0
	for rv := before.ResourceVersion; rv != after.ResourceVersion; {
		evs, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			writes++
			rv = ev.Object.ResourceVersion
		}
	}
	if writes != 1 {
		t.Errorf("the sync wrote the job's status %d times, want 1", writes)
	}
	if st := after.Status; len(st.UncountedTerminatedPods.Succeeded) != 2 || st.Succeeded != 0 || st.Active != 2 {
		t.Fatalf("after the sync: %+v, want the 2 finished uncounted and their 2 replacements active", st)
	}
	// Released as the controller knows it: the cache can show the finalizers gone while
	// the release that removed them is still running (another pod's retry), and a sync
	// counts no pod its release still holds (make test, 2026-12-07 18:00).
	settled("the first pods released and their replacements", func(_ *batchv1.Job, pods []*corev1.Pod) bool {
		holding := 0
		for _, p := range pods {
			if slices.Contains(first, p.UID) && (hasTrackingFinalizer(p) || c.releasingPod(key, p.UID)) {
				holding++
			}
		}
		return len(pods) == 4 && holding == 0
	})
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	job, err := e.cs.Jobs.Get(e.ctx, "default", "once")
	if err != nil {
		t.Fatal(err)
	}
	st := job.Status
	if st.Succeeded < 2 || int(st.Succeeded)+len(st.UncountedTerminatedPods.Succeeded) > 4 {
		t.Fatalf("after the next sync: %+v, want the first 2 counted, none twice", st)
	}
	for _, uid := range first {
		if slices.Contains(st.UncountedTerminatedPods.Succeeded, uid) {
			t.Errorf("pod %s still uncounted", uid)
		}
	}
}

// TestCreationsBatched: the pods of one slow-start round are made in one CreateBatch
// call, so the store commits them in one entry: they share a resourceVersion.
func TestCreationsBatched(t *testing.T) {
	e := cluster(t, func(*corev1.Pod) (corev1.PodPhase, int32) { return "", 0 })
	c := e.newSynced(t)
	const key = "default/wide"
	w, err := e.cs.Pods.Watch(e.ctx, "default", client.WatchOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := e.cs.Jobs.Create(e.ctx, newJob("wide", 20, 10, true)); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the job in the cache", func() (bool, string) {
		_, ok := c.jobs.Get("default", "wide")
		return ok, "not yet"
	})
	c.batch[key] = 16 // one round
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	revisions := map[string]int{}
	for added := 0; added < 10; {
		evs, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Type == client.Added {
				added++
				revisions[ev.Object.ResourceVersion]++
			}
		}
	}
	if len(revisions) != 1 {
		t.Errorf("10 pods made at revisions %v, want one", revisions)
	}
}

// TestFinalizersReleasedInBatches: the finished pods one sync counts lose their tracking
// finalizer in one UpdateBatch call, so the store commits the removals in one entry:
// they share a resourceVersion.
func TestFinalizersReleasedInBatches(t *testing.T) {
	e := cluster(t, succeed)
	c := e.newSynced(t)
	const key = "default/release"
	if _, err := e.cs.Jobs.Create(e.ctx, newJob("release", 10, 10, false)); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the job in the cache", func() (bool, string) {
		_, ok := c.jobs.Get("default", "release")
		return ok, "not yet"
	})
	c.batch[key] = 16 // the pods in one round
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	var rv string
	waitfor.Condition(t, 30*time.Second, "the cache shows 10 pods succeeded", func() (bool, string) {
		cur, _ := c.jobs.Get("default", "release")
		done := 0
		for _, p := range c.ownedPods(cur) {
			if p.Status.Phase == corev1.PodSucceeded && hasTrackingFinalizer(p) {
				done++
			}
		}
		l, err := e.cs.Pods.List(e.ctx, "default", client.ListOptions{})
		if err == nil {
			rv = l.ResourceVersion
		}
		return done == 10 && !c.behind(key, cur) && err == nil, fmt.Sprintf("%d succeeded", done)
	})
	w, err := e.cs.Pods.Watch(e.ctx, "default", client.WatchOptions{ResourceVersion: rv})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	revisions := map[string]int{}
	for released := 0; released < 10; {
		evs, err := w.Next()
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Type == client.Modified && !hasTrackingFinalizer(ev.Object) {
				released++
				revisions[ev.Object.ResourceVersion]++
			}
		}
	}
	if len(revisions) != 1 {
		t.Errorf("10 finalizers removed at revisions %v, want one", revisions)
	}
}

// TestCountsAcrossFailovers: a Job whose syncs each release more pods than one
// UpdateBatch call carries counts every completion once while its controller is
// replaced again and again in the middle (each new one with an empty cache and no
// memory, as after a failover): the count a new controller reads never goes down nor
// above the pods released, and ends exact.
func TestCountsAcrossFailovers(t *testing.T) {
	e := cluster(t, succeed)
	const completions = 600
	if _, err := e.cs.Jobs.Create(e.ctx, newJob("many", completions, 250, false)); err != nil {
		t.Fatal(err)
	}
	released := func() (succeeded int) {
		l, err := e.cs.Pods.List(e.ctx, "default", client.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range l.Items {
			if p.Status.Phase == corev1.PodSucceeded && !hasTrackingFinalizer(p) {
				succeeded++
			}
		}
		return succeeded
	}
	var last int32
	for round, at := range []int32{100, 250, 400} {
		stop := e.startController(t, fastConfig())
		waitfor.ConditionErr(t, 60*time.Second, fmt.Sprintf("%d counted", at), func() (bool, error) {
			cur, err := e.cs.Jobs.Get(e.ctx, "default", "many")
			return err == nil && cur.Status.Succeeded >= at, err
		})
		stop()
		job, err := e.cs.Jobs.Get(e.ctx, "default", "many")
		if err != nil {
			t.Fatal(err)
		}
		// Read the count before the pods: a pod released after it only adds to them.
		if n := released(); job.Status.Succeeded < last || int(job.Status.Succeeded) > n {
			t.Fatalf("after controller %d: %d succeeded (before %d), %d pods released", round, job.Status.Succeeded, last, n)
		}
		last = job.Status.Succeeded
	}
	e.startController(t, fastConfig())
	job := e.waitCondition(t, "many", batchv1.JobComplete)
	if st := job.Status; st.Succeeded != completions || st.Failed != 0 || len(st.UncountedTerminatedPods.Succeeded) != 0 {
		t.Fatalf("status %+v, want %d succeeded", st, completions)
	}
	pods := e.jobPods(t, job)
	for _, p := range pods {
		if hasTrackingFinalizer(p) {
			t.Errorf("pod %s still holds the finalizer", p.Name)
		}
	}
	if len(pods) < completions {
		t.Errorf("%d pods ran, want at least %d", len(pods), completions)
	}
}

// TestReleaseAfterConflict: a pod that changed since the cache showed it loses the race
// in the batch, and is read again and released alone; a pod already without the
// finalizer is reported gone.
func TestReleaseAfterConflict(t *testing.T) {
	e := cluster(t, func(*corev1.Pod) (corev1.PodPhase, int32) { return "", 0 })
	c := e.newSynced(t)
	var pods []*corev1.Pod
	for _, name := range []string{"stale", "fresh", "free"} {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", Finalizers: []string{batchv1.JobTrackingFinalizer},
			Labels: map[string]string{"app": "j"}}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
		created, err := e.cs.Pods.Create(e.ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		pods = append(pods, created)
	}
	change := func(name string, f func(*corev1.Pod)) { // the pods' runner writes them too
		waitfor.Condition(t, 30*time.Second, "pod "+name+" changed", func() (bool, string) {
			cur, err := e.cs.Pods.Get(e.ctx, "default", name)
			if err == nil {
				f(cur)
				_, err = e.cs.Pods.Update(e.ctx, cur)
			}
			return err == nil, fmt.Sprint(err)
		})
	}
	change("stale", func(p *corev1.Pod) { p.Labels["moved"] = "yes" })
	change("free", func(p *corev1.Pod) { p.Finalizers = nil })
	gone, err := c.releaseAll(e.ctx, "default/j", pods)
	if err != nil {
		t.Fatal(err)
	}
	if len(gone) != 1 || !gone[pods[2].UID] {
		t.Errorf("gone %v, want only the pod whose finalizer was removed already", gone)
	}
	for _, p := range pods[:2] {
		cur, err := e.cs.Pods.Get(e.ctx, "default", p.Name)
		if err != nil || hasTrackingFinalizer(cur) || !c.isReleased("default/j", p.UID) {
			t.Errorf("pod %s: %v, %v; want it released", p.Name, cur, err)
		}
	}
	if cur, err := e.cs.Pods.Get(e.ctx, "default", "stale"); err != nil || cur.Labels["moved"] != "yes" {
		t.Errorf("the stale pod: %v, %v; want the change that raced the release kept", cur, err)
	}
}

// TestLostReleaseNotCounted: a pod a sync recorded whose finalizer turns out to be gone
// when the release after the sync runs was counted before (from an older cache): the
// next sync drops it from the uncounted list without counting it, and does not count a
// pod whose release still runs; once the status no longer lists the lost uid, the
// controller forgets it.
func TestLostReleaseNotCounted(t *testing.T) {
	e := cluster(t, func(*corev1.Pod) (corev1.PodPhase, int32) { return "", 0 })
	c := e.newSynced(t)
	const key = "default/j"
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "counted", Namespace: "default", Finalizers: []string{batchv1.JobTrackingFinalizer}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	seen, err := e.cs.Pods.Create(e.ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the finalizer removed by another", func() (bool, string) {
		cur, err := e.cs.Pods.Get(e.ctx, "default", "counted")
		if err == nil {
			cur.Finalizers = nil
			_, err = e.cs.Pods.Update(e.ctx, cur)
		}
		return err == nil, fmt.Sprint(err)
	})
	c.releaseLater(e.ctx, key, []*corev1.Pod{seen}, map[types.UID]bool{seen.UID: true})
	c.background.Wait()
	const other = types.UID("still-releasing")
	c.mu.Lock()
	lost, releasing := c.lost[key][seen.UID], len(c.releasing[key])
	c.releasing[key][other] = true
	c.mu.Unlock()
	if !lost || releasing != 0 {
		t.Fatalf("after the release: lost %v, %d releasing; want the pod lost, none releasing", lost, releasing)
	}
	s := &sync_{c: c, key: key, job: &batchv1.Job{}, uncS: map[types.UID]bool{seen.UID: true, other: true}, uncF: map[types.UID]bool{}, added: map[types.UID]bool{}}
	if !s.count(nil) || s.uncS[seen.UID] || !s.uncS[other] || s.job.Status.Succeeded != 0 {
		t.Fatalf("the next sync: uncounted %v, succeeded %d; want the lost uid dropped uncounted, the releasing one kept", s.uncS, s.job.Status.Succeeded)
	}
	s = &sync_{c: c, key: key, job: &batchv1.Job{}, uncS: map[types.UID]bool{}, uncF: map[types.UID]bool{}, added: map[types.UID]bool{}}
	s.count(nil)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.lost[key]) != 0 {
		t.Errorf("lost %v once the status no longer lists it, want none", c.lost[key])
	}
}

// TestSyncFromOwnWrite: a sync whose cache still shows the Job as it was before this
// controller's last status write syncs the Job as that write left it, rather than
// waiting for the cache (a watch delivery between every two syncs of a busy Job). The
// Job cache is frozen before the second sync's write, so the third sync sees only the
// older Job: it must still count the pods the second released and track their
// replacements, in one write that does not conflict.
func TestSyncFromOwnWrite(t *testing.T) {
	e := cluster(t, succeed)
	c := e.newSynced(t)
	const key = "default/own"
	if _, err := e.cs.Jobs.Create(e.ctx, newJob("own", 6, 2, false)); err != nil {
		t.Fatal(err)
	}
	settled := func(what string, ok func(pods []*corev1.Pod) bool) {
		t.Helper()
		waitfor.Condition(t, 30*time.Second, "the cache shows "+what, func() (bool, string) {
			cur, found := c.jobs.Get("default", "own")
			if !found {
				return false, "no job"
			}
			pods := c.ownedPods(cur)
			sat, _, _ := c.inflight(key)
			return sat && ok(pods), fmt.Sprintf("%d pods, satisfied %v", len(pods), sat)
		})
	}
	// n pods, all succeeded, at least released of them without the finalizer.
	succeeded := func(n, released int) func(pods []*corev1.Pod) bool {
		return func(pods []*corev1.Pod) bool {
			done, free := 0, 0
			for _, p := range pods {
				if p.Status.Phase == corev1.PodSucceeded {
					done++
					if !hasTrackingFinalizer(p) {
						free++
					}
				}
			}
			return len(pods) == n && done == n && free >= released
		}
	}
	settled("the job", func([]*corev1.Pod) bool { return true })
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	settled("2 pods succeeded", succeeded(2, 0))
	waitfor.Condition(t, 30*time.Second, "the cache shows the first write", func() (bool, string) {
		cur, _ := c.jobs.Get("default", "own")
		return !c.behind(key, cur), "behind"
	})
	// Freeze the Job cache here: a second informer, synced, then stopped.
	ctx, cancel := context.WithCancel(e.ctx)
	f := cache.NewFactory(e.cs, hclog.NewNullLogger())
	frozen := cache.InformerFor[*batchv1.Job](f, "", client.ListOptions{})
	f.Start(ctx)
	if !cache.WaitForSync(ctx, frozen) {
		t.Fatal("no sync")
	}
	cancel()
	f.Wait()
	c.jobs = frozen.Lister()
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	c.background.Wait() // the first two released
	settled("the first 2 released and 2 more succeeded", succeeded(4, 2))
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	job, err := e.cs.Jobs.Get(e.ctx, "default", "own")
	if err != nil {
		t.Fatal(err)
	}
	if st := job.Status; st.Succeeded != 2 || len(st.UncountedTerminatedPods.Succeeded) != 2 {
		t.Fatalf("after the third sync: succeeded %d, uncounted %d; want the first 2 counted and the next 2 uncounted", st.Succeeded, len(st.UncountedTerminatedPods.Succeeded))
	}
}

// TestAdoptAndRelease (the conformance test "should adopt matching orphans and release
// non-matching pods"): a pod the Job's selector matches that no controller owns is
// adopted, with the tracking finalizer, also one of its own pods orphaned; a pod whose
// labels no longer match is released, its finalizer removed; a pod another controller
// owns is left alone. What the pods went through is read from a watch: an adopted pod
// beyond parallelism is deleted as surplus right after, as Kubernetes' would be.
func TestAdoptAndRelease(t *testing.T) {
	e := cluster(t, func(*corev1.Pod) (corev1.PodPhase, int32) { return "", 0 })
	var job *batchv1.Job // set once created, under the watch's lock
	owned := func(p *corev1.Pod) bool {
		return job != nil && metav1.IsControlledBy(p, job) && hasTrackingFinalizer(p)
	}
	released := func(p *corev1.Pod) bool {
		return p.Labels["app"] == "elsewhere" && metav1.GetControllerOf(p) == nil && !hasTrackingFinalizer(p)
	}
	orphaned, adopted, freed := map[string]bool{}, map[string]bool{}, map[string]bool{}
	mu := e.followPods(t, func(ev client.Event[*corev1.Pod]) {
		switch p := ev.Object; {
		case owned(p) && orphaned[p.Name]:
			adopted[p.Name] = true
		case released(p):
			freed[p.Name] = true
		case metav1.GetControllerOf(p) == nil:
			orphaned[p.Name] = true
		}
	})
	e.startController(t, fastConfig())
	created, err := e.cs.Jobs.Create(e.ctx, newJob("adopt", 100, 2, false))
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	job = created
	mu.Unlock()
	seen := func(what string, in map[string]bool, name string) {
		t.Helper()
		waitfor.Condition(t, 30*time.Second, "pod "+name+" "+what, func() (bool, string) {
			mu.Lock()
			defer mu.Unlock()
			return in[name], fmt.Sprintf("orphaned %v, adopted %v, released %v", orphaned, adopted, freed)
		})
	}
	// change changes one of the Job's pods not being deleted, and returns its name.
	change := func(f func(p *corev1.Pod)) (name string) {
		t.Helper()
		waitfor.Condition(t, 30*time.Second, "one of the job's pods changed", func() (bool, string) {
			for _, p := range e.jobPods(t, job) {
				if p.DeletionTimestamp == nil && hasTrackingFinalizer(p) {
					f(p)
					_, err := e.cs.Pods.Update(e.ctx, p)
					name = p.Name
					return err == nil, fmt.Sprint(err)
				}
			}
			return false, "none"
		})
		return name
	}
	spec := corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}
	matching := maps.Clone(job.Spec.Selector.MatchLabels)

	// One of the Job's pods whose owner reference is removed, and an orphan made by hand.
	seen("adopted again", adopted, change(func(p *corev1.Pod) { p.OwnerReferences = nil }))
	if _, err := e.cs.Pods.Create(e.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "orphan", Namespace: "default", Labels: matching}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	seen("adopted", adopted, "orphan")

	// Labels that no longer match: released.
	seen("released", freed, change(func(p *corev1.Pod) { p.Labels = map[string]string{"app": "elsewhere"} }))

	// Another controller's pod, matching: left alone (checked once the Job has adopted a
	// pod made after it).
	theirs := kinds.NewControllerRef(&batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: "other", UID: "other-uid"}})
	if _, err := e.cs.Pods.Create(e.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "theirs", Namespace: "default", Labels: matching,
		OwnerReferences: []metav1.OwnerReference{theirs}}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.cs.Pods.Create(e.ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "later", Namespace: "default", Labels: matching}, Spec: spec}); err != nil {
		t.Fatal(err)
	}
	seen("adopted", adopted, "later")
	p, err := e.cs.Pods.Get(e.ctx, "default", "theirs")
	if err != nil || metav1.GetControllerOf(p).UID != "other-uid" || hasTrackingFinalizer(p) {
		t.Errorf("another controller's pod: %v, %v; want it left alone", p, err)
	}
}

// TestClaimOnlyWhatChanged: a sync claims only the pods whose labels the pod events saw
// change (or saw before the Job), not every pod of the Job: the Job's own pods leave
// nothing to claim; a pod relabelled is claimed and released, then forgotten; a
// controller that starts after a pod was relabelled claims it too.
func TestClaimOnlyWhatChanged(t *testing.T) {
	e := cluster(t, func(*corev1.Pod) (corev1.PodPhase, int32) { return "", 0 })
	c := e.newSynced(t)
	const key = "default/few"
	job, err := e.cs.Jobs.Create(e.ctx, newJob("few", 10, 3, true))
	if err != nil {
		t.Fatal(err)
	}
	unmatched := func(c *Controller) []string {
		c.mu.Lock()
		defer c.mu.Unlock()
		return slices.Sorted(maps.Keys(c.unmatched[key]))
	}
	// The informer puts a pod in its cache before its handlers see the change, so what
	// the handlers record is waited for, not read the moment the cache shows the pod.
	unmatchedIs := func(c *Controller, what string, ok func([]string) bool) {
		t.Helper()
		waitfor.Condition(t, 30*time.Second, "unmatched: "+what, func() (bool, string) {
			u := unmatched(c)
			return ok(u), fmt.Sprintf("unmatched %v", u)
		})
	}
	cached := func(c *Controller, what string, ok func(pods []*corev1.Pod) bool) {
		t.Helper()
		waitfor.Condition(t, 30*time.Second, "the cache shows "+what, func() (bool, string) {
			pods := c.pods.ListNamespace("default", labels.Everything())
			_, found := c.jobs.Get("default", "few")
			return found && ok(pods), fmt.Sprintf("%d pods, job cached %v", len(pods), found)
		})
	}
	cached(c, "the job", func([]*corev1.Pod) bool { return true })
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	cached(c, "3 pods", func(pods []*corev1.Pod) bool { return len(pods) == 3 })
	if u := unmatched(c); len(u) != 0 {
		t.Fatalf("unmatched %v; want none: the Job's own pods match", u)
	}
	relabel := func(name string) {
		t.Helper()
		waitfor.Condition(t, 30*time.Second, "pod "+name+" relabelled", func() (bool, string) {
			p, err := e.cs.Pods.Get(e.ctx, "default", name)
			if err == nil {
				p.Labels = map[string]string{"app": "elsewhere"}
				_, err = e.cs.Pods.Update(e.ctx, p)
			}
			return err == nil, fmt.Sprint(err)
		})
	}
	isRelabelled := func(name string) func([]*corev1.Pod) bool {
		return func(pods []*corev1.Pod) bool {
			for _, p := range pods {
				if p.Name == name {
					return p.Labels["app"] == "elsewhere"
				}
			}
			return false
		}
	}
	isReleased := func(name string) func([]*corev1.Pod) bool {
		return func(pods []*corev1.Pod) bool {
			for _, p := range pods {
				if p.Name == name {
					return metav1.GetControllerOf(p) == nil && !hasTrackingFinalizer(p)
				}
			}
			return false
		}
	}
	pods := e.jobPods(t, job)
	first, second := pods[0].Name, pods[1].Name
	relabel(first)
	cached(c, first+" relabelled", isRelabelled(first))
	unmatchedIs(c, first+" alone", func(u []string) bool { return slices.Equal(u, []string{"default/" + first}) })
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	cached(c, first+" released", isReleased(first))
	unmatchedIs(c, "none after the release", func(u []string) bool { return len(u) == 0 })

	// A pod relabelled before a controller starts: seen as it lists, claimed.
	relabel(second)
	c2 := e.newSynced(t)
	cached(c2, second+" relabelled", isRelabelled(second))
	unmatchedIs(c2, "the new controller's, with "+second, func(u []string) bool { return slices.Contains(u, "default/"+second) })
	if _, err := c2.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	cached(c2, second+" released", isReleased(second))
}

// TestIndexesOfUntrackedSuccessesHeld: a sync that finds more finished pods than it may
// record at once (MaxUncountedPods) leaves the rest to the next sync, and makes no pod
// for their indexes meanwhile: a succeeded pod's index is done, counted or not yet (as
// Kubernetes' succeeded indexes are every succeeded pod's). The Job ends with each
// index run once and counted once.
func TestIndexesOfUntrackedSuccessesHeld(t *testing.T) {
	e := cluster(t, succeed)
	c := e.newSynced(t)
	c.cfg.MaxUncountedPods = 3
	const key = "default/held"
	if _, err := e.cs.Jobs.Create(e.ctx, newJob("held", 12, 10, true)); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the job in the cache", func() (bool, string) {
		_, ok := c.jobs.Get("default", "held")
		return ok, "not yet"
	})
	c.batch[key] = 16 // the pods in one round
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 30*time.Second, "the cache shows 10 pods succeeded", func() (bool, string) {
		cur, _ := c.jobs.Get("default", "held")
		done := 0
		for _, p := range c.ownedPods(cur) {
			if p.Status.Phase == corev1.PodSucceeded && hasTrackingFinalizer(p) {
				done++
			}
		}
		return done == 10 && !c.behind(key, cur), fmt.Sprintf("%d succeeded", done)
	})
	// Three of the ten are recorded; the other seven wait, and only the two indexes
	// never started get pods.
	if _, err := c.Reconcile(e.ctx, key); err != nil {
		t.Fatal(err)
	}
	job, err := e.cs.Jobs.Get(e.ctx, "default", "held")
	if err != nil {
		t.Fatal(err)
	}
	perIndex := map[string]int{}
	for _, p := range e.jobPods(t, job) {
		perIndex[p.Annotations[batchv1.JobCompletionIndexAnnotation]]++
	}
	for ix := range 12 {
		if n := perIndex[fmt.Sprint(ix)]; n > 1 {
			t.Errorf("index %d has %d pods after the sync that recorded 3 of 10 successes", ix, n)
		}
	}
	stop := e.startController(t, fastConfig())
	defer stop()
	job = e.waitCondition(t, "held", batchv1.JobComplete)
	if st := job.Status; st.Succeeded != 12 || st.CompletedIndexes != "0-11" {
		t.Errorf("status %+v", st)
	}
	clear(perIndex)
	for _, p := range e.jobPods(t, job) {
		perIndex[p.Annotations[batchv1.JobCompletionIndexAnnotation]]++
	}
	for ix := range 12 {
		if n := perIndex[fmt.Sprint(ix)]; n != 1 {
			t.Errorf("index %d ran %d times", ix, n)
		}
	}
}
