package ttlafterfinished

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/controllers/garbagecollector"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

func TestExpiresIn(t *testing.T) {
	t0 := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	job := func(ttl *int32, cond batchv1.JobConditionType) *batchv1.Job {
		j := &batchv1.Job{Spec: batchv1.JobSpec{TTLSecondsAfterFinished: ttl}}
		if cond != "" {
			j.Status.Conditions = []batchv1.JobCondition{{Type: cond, Status: corev1.ConditionTrue, LastTransitionTime: metav1.NewTime(t0)}}
		}
		return j
	}
	for _, c := range []struct {
		name string
		job  *batchv1.Job
		in   time.Duration
		ok   bool
	}{
		{"no ttl", job(nil, batchv1.JobComplete), 0, false},
		{"running", job(ptr.To[int32](10), ""), 0, false},
		{"suspended is not finished", job(ptr.To[int32](10), batchv1.JobSuspended), 0, false},
		{"complete", job(ptr.To[int32](10), batchv1.JobComplete), 6 * time.Second, true},
		{"failed, due", job(ptr.To[int32](0), batchv1.JobFailed), -4 * time.Second, true},
	} {
		in, ok := expiresIn(c.job, t0.Add(4*time.Second))
		if in != c.in || ok != c.ok {
			t.Errorf("%s: %v %v, want %v %v", c.name, in, ok, c.in, c.ok)
		}
	}
}

// TestDeletesExpiredJobs: a finished Job with ttlSecondsAfterFinished 0 goes, in the
// foreground: Terminating while a pod of its remains; one with a long TTL, or none, stays.
func TestDeletesExpiredJobs(t *testing.T) {
	cl := apicluster.Start(t, 1, apicluster.Options{})
	conn, err := client.Dial(cl.Addrs(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	f := cache.NewFactory(cs, hclog.NewNullLogger())
	c, err := New(cs, f, DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	gc, err := garbagecollector.New(cs, f, nil, garbagecollector.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.Start(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { c.Run(ctx) })
	wg.Go(func() { gc.Run(ctx) })
	t.Cleanup(func() { cancel(); f.Wait(); wg.Wait() })

	// finish makes a Job, calls before with it, and marks it Complete.
	finish := func(name string, ttl *int32, before func(*batchv1.Job)) {
		j, err := cs.Jobs.Create(ctx, &batchv1.Job{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default"},
			Spec: batchv1.JobSpec{TTLSecondsAfterFinished: ttl, Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
				RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}}})
		if err != nil {
			t.Fatal(err)
		}
		if before != nil {
			before(j)
		}
		now := metav1.Now()
		j.Status.StartTime, j.Status.CompletionTime = &now, &now
		j.Status.Conditions = []batchv1.JobCondition{
			{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
			{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now}}
		if _, err := cs.Jobs.UpdateStatus(ctx, j); err != nil {
			t.Fatal(err)
		}
	}
	finish("keep-long", ptr.To[int32](3600), nil)
	finish("keep-none", nil, nil)
	// The pod of the Job to expire is held by a finalizer of its own, so the Job's
	// foreground deletion waits for it.
	finish("expire", ptr.To[int32](0), func(j *batchv1.Job) {
		_, err := cs.Pods.Create(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "expire-x", Namespace: "default",
			Finalizers: []string{"example.com/hold"}, OwnerReferences: []metav1.OwnerReference{kinds.NewControllerRef(j)}},
			Spec: corev1.PodSpec{RestartPolicy: corev1.RestartPolicyNever, Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}})
		if err != nil {
			t.Fatal(err)
		}
	})
	waitfor.ConditionErr(t, 30*time.Second, "expired job terminating, its pod being deleted", func() (bool, error) {
		j, err := cs.Jobs.Get(ctx, "default", "expire")
		if err != nil {
			return false, err
		}
		p, err := cs.Pods.Get(ctx, "default", "expire-x")
		if err != nil {
			return false, err
		}
		return j.DeletionTimestamp != nil && slices.Contains(j.Finalizers, metav1.FinalizerDeleteDependents) && p.DeletionTimestamp != nil, nil
	})
	for {
		p, err := cs.Pods.Get(ctx, "default", "expire-x")
		if err != nil {
			t.Fatal(err)
		}
		p.Finalizers = nil
		if _, err = cs.Pods.Update(ctx, p); !client.IsConflict(err) {
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	waitfor.ConditionErr(t, 30*time.Second, "expired job deleted", func() (bool, error) {
		_, err := cs.Jobs.Get(ctx, "default", "expire")
		if client.IsNotFound(err) {
			return true, nil
		}
		return false, err
	})
	for _, name := range []string{"keep-long", "keep-none"} {
		if _, err := cs.Jobs.Get(ctx, "default", name); err != nil {
			t.Errorf("job %s: %v", name, err)
		}
	}
}
