// Package ttlafterfinished is Kubernetes' TTL-after-finished controller: a Job with
// spec.ttlSecondsAfterFinished is deleted that many seconds after it finished — its Complete or Failed condition's time. Before deleting,
// it reads the Job again from the API server, so that a TTL changed or removed
// meanwhile is honoured. As in Kubernetes, the deletion is in the foreground: the Job
// stays, Terminating, until the garbage collector has deleted its pods.
package ttlafterfinished

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/client/workqueue"
)

// Config tunes the controller. Start from DefaultConfig; New validates it.
type Config struct {
	// Workers delete different Jobs concurrently. Default 5.
	Workers int
	// Logger receives the controller's logs, named "ttl-after-finished". Default: discarded.
	Logger hclog.Logger
	// Now is the controller's clock. Default time.Now.
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
		return fmt.Errorf("ttl-after-finished controller config: %w", err)
	}
	return nil
}

// Controller is the TTL-after-finished controller.
type Controller struct {
	cfg    Config
	cs     *client.Clientset
	jobInf *cache.Informer[*batchv1.Job]
	jobs   *cache.Lister[*batchv1.Job]
	queue  *workqueue.Queue
	log    hclog.Logger
}

// New makes the controller on the factory's informers; Run starts it.
func New(cs *client.Clientset, f *cache.Factory, cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	jobInf := cache.InformerFor[*batchv1.Job](f, "", client.ListOptions{})
	c := &Controller{cfg: cfg, cs: cs, jobInf: jobInf, jobs: jobInf.Lister(), queue: workqueue.New(workqueue.Config{}),
		log: cfg.Logger.Named("ttl-after-finished")}
	add := func(j *batchv1.Job) {
		if j.DeletionTimestamp == nil && j.Spec.TTLSecondsAfterFinished != nil && !finishedAt(j).IsZero() {
			c.queue.Add(cache.Key(j))
		}
	}
	jobInf.AddHandler(cache.Handler[*batchv1.Job]{OnAdd: add, OnUpdate: func(_, j *batchv1.Job) { add(j) }})
	return c, nil
}

// Run deletes expired Jobs until ctx ends. The factory must be started.
func (c *Controller) Run(ctx context.Context) error {
	if !cache.WaitForSync(ctx, c.jobInf) {
		return ctx.Err()
	}
	c.queue.Run(ctx, c.cfg.Workers, c.log, c.Reconcile)
	return nil
}

// finishedAt is when the Job finished (its Complete or Failed condition's last
// transition), or zero.
func finishedAt(j *batchv1.Job) time.Time {
	for _, c := range j.Status.Conditions {
		if (c.Type == batchv1.JobComplete || c.Type == batchv1.JobFailed) && c.Status == corev1.ConditionTrue {
			return c.LastTransitionTime.Time
		}
	}
	return time.Time{}
}

// expiresIn is how long until a finished Job with a TTL is due (<= 0: now); ok is false
// if the Job has no TTL or has not finished.
func expiresIn(j *batchv1.Job, now time.Time) (time.Duration, bool) {
	at := finishedAt(j)
	if j.Spec.TTLSecondsAfterFinished == nil || at.IsZero() || j.DeletionTimestamp != nil {
		return 0, false
	}
	return at.Add(time.Duration(*j.Spec.TTLSecondsAfterFinished) * time.Second).Sub(now), true
}

// Reconcile deletes one Job by key if it expired, or says when to look again.
func (c *Controller) Reconcile(ctx context.Context, key string) (time.Duration, error) {
	ns, name := cache.SplitKey(key)
	j, ok := c.jobs.Get(ns, name)
	if !ok {
		return 0, nil
	}
	if in, ok := expiresIn(j, c.cfg.Now()); !ok || in > 0 {
		return in, nil
	}
	// The cache may be old: the TTL may have changed. Read the Job itself.
	fresh, err := c.cs.Jobs.Get(ctx, ns, name)
	if client.IsNotFound(err) {
		return 0, nil
	} else if err != nil {
		return 0, fmt.Errorf("get job %s: %w", key, err)
	}
	if in, ok := expiresIn(fresh, c.cfg.Now()); !ok || in > 0 {
		return in, nil
	}
	_, err = c.cs.Jobs.Delete(ctx, ns, name, client.DeleteOptions{UID: string(fresh.UID), ResourceVersion: fresh.ResourceVersion,
		PropagationPolicy: string(metav1.DeletePropagationForeground)})
	if err != nil && !client.IsNotFound(err) {
		return 0, fmt.Errorf("delete expired job %s: %w", key, err)
	}
	c.log.Debug("deleted expired job", "job", key)
	return 0, nil
}
