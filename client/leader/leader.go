// Package leader elects one leader among replicas of a component through a Lease object,
// as client-go's leaderelection does, with compare-and-swap writes on the Lease.
//
// Safety: a candidate takes the Lease only after observing, on its own clock, that the
// holder has not renewed it for LeaseDuration. The holder stops acting (its context is
// cancelled and OnStoppedLeading runs) once it has failed to renew for RenewDeadline, which
// is shorter: so it stops before anyone else can start, given clocks that run at roughly
// the same rate (no synchronised clocks are needed).
package leader

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/go-hclog"
	coordinationv1 "k8s.io/api/coordination/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
)

// Config configures an elector. Start from DefaultConfig.
type Config struct {
	// Namespace and Name of the Lease.
	Namespace, Name string
	// Identity names this candidate (unique: e.g. hostname plus a random suffix).
	Identity string
	// LeaseDuration: how long others wait after the last renewal they saw (15s).
	// RenewDeadline: how long the leader keeps trying to renew before it gives up (10s).
	// RetryPeriod: how often candidates try, and the leader renews (2s).
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// OnStartedLeading runs, in its own goroutine, when this candidate becomes leader; ctx
	// ends when it stops leading. OnStoppedLeading runs after that ctx ends.
	OnStartedLeading func(ctx context.Context)
	OnStoppedLeading func()
	// OnNewLeader, when set, is told each time the observed holder changes.
	OnNewLeader func(identity string)
	// ReleaseOnCancel gives the Lease up when Run's ctx ends, so a successor need not wait
	// for it to expire.
	ReleaseOnCancel bool
	Logger          hclog.Logger
	Now             func() time.Time
}

// DefaultConfig has Kubernetes' timings.
func DefaultConfig() Config {
	return Config{LeaseDuration: 15 * time.Second, RenewDeadline: 10 * time.Second, RetryPeriod: 2 * time.Second, ReleaseOnCancel: true}
}

func (c *Config) validate() error {
	switch {
	case c.Name == "" || c.Identity == "":
		return fmt.Errorf("leader election: lease name and identity are required")
	case c.LeaseDuration <= c.RenewDeadline:
		return fmt.Errorf("leader election %s: LeaseDuration %v must exceed RenewDeadline %v", c.Name, c.LeaseDuration, c.RenewDeadline)
	case c.RenewDeadline <= c.RetryPeriod:
		return fmt.Errorf("leader election %s: RenewDeadline %v must exceed RetryPeriod %v", c.Name, c.RenewDeadline, c.RetryPeriod)
	case c.OnStartedLeading == nil:
		return fmt.Errorf("leader election %s: OnStartedLeading is required", c.Name)
	}
	if c.Namespace == "" {
		c.Namespace = "default"
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return nil
}

// Elector runs one candidate.
type Elector struct {
	cfg    Config
	leases *client.Client[*coordinationv1.Lease]
	log    hclog.Logger

	observed     *coordinationv1.Lease // last lease read or written
	observedTime time.Time             // local time it was last seen to change
}

// New makes an elector.
func New(leases *client.Client[*coordinationv1.Lease], cfg Config) (*Elector, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	return &Elector{cfg: cfg, leases: leases, log: cfg.Logger.Named("leader").With("lease", cfg.Namespace+"/"+cfg.Name, "identity", cfg.Identity)}, nil
}

// Run campaigns until ctx ends: it acquires the Lease, leads while it can renew it, and
// campaigns again after losing it.
func (e *Elector) Run(ctx context.Context) {
	for ctx.Err() == nil {
		err := e.leases.Conn().EnsureNamespace(ctx, e.cfg.Namespace)
		if err == nil {
			break
		}
		e.log.Warn("cannot create the lease's namespace; retrying", "error", err)
		select {
		case <-ctx.Done():
		case <-time.After(e.cfg.RetryPeriod):
		}
	}
	for ctx.Err() == nil {
		acquired, ok := e.acquire(ctx)
		if !ok {
			return
		}
		e.lead(ctx, acquired)
	}
}

// acquire tries every RetryPeriod until it holds the Lease or ctx ends. It returns when
// the successful attempt started: the lease runs from no later than that.
func (e *Elector) acquire(ctx context.Context) (time.Time, bool) {
	for {
		start := e.cfg.Now()
		if e.tryAcquireOrRenew(ctx) {
			e.log.Info("became leader")
			return start, true
		}
		select {
		case <-ctx.Done():
			return time.Time{}, false
		case <-time.After(e.cfg.RetryPeriod):
		}
	}
}

// lead runs OnStartedLeading and renews until renewal fails for RenewDeadline or ctx ends.
// Renewals count from when they started, not when their reply came: the write may have
// committed at any moment in between, and others time the lease from the commit.
func (e *Elector) lead(ctx context.Context, lastRenew time.Time) {
	leadCtx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		e.cfg.OnStartedLeading(leadCtx)
	}()
	for {
		select {
		case <-ctx.Done():
		case <-time.After(e.cfg.RetryPeriod):
			start := e.cfg.Now()
			rctx, rcancel := context.WithTimeout(ctx, e.cfg.RenewDeadline-start.Sub(lastRenew))
			ok := e.tryAcquireOrRenew(rctx)
			rcancel()
			if ok {
				lastRenew = start
				continue
			}
			if e.cfg.Now().Sub(lastRenew) < e.cfg.RenewDeadline && ctx.Err() == nil {
				continue
			}
			e.log.Warn("failed to renew the lease within the renew deadline; stepping down", "last_renewal", lastRenew)
		}
		break
	}
	cancel()
	<-done
	if ctx.Err() != nil && e.cfg.ReleaseOnCancel {
		e.release()
	}
	if e.cfg.OnStoppedLeading != nil {
		e.cfg.OnStoppedLeading()
	}
	e.log.Info("stopped leading")
}

// tryAcquireOrRenew makes one attempt to take or renew the Lease.
func (e *Elector) tryAcquireOrRenew(ctx context.Context) bool {
	now := e.cfg.Now()
	if holderOf(e.observed) == e.cfg.Identity {
		// The holder renews the Lease it last wrote, as client-go's fast path does: one
		// compare-and-swap, not a linearizable read and then one. Under a write storm
		// each waits its turn in the same Raft log, and the renewal must land within
		// RenewDeadline. A conflict (someone else wrote it) or its absence (deleted)
		// falls back to reading it.
		next := e.observed.DeepCopy()
		next.Spec = e.spec(&e.observed.Spec, now)
		if updated, err := e.leases.Update(ctx, next); err == nil {
			e.observe(updated, now)
			return true
		} else if !client.IsConflict(err) && !client.IsNotFound(err) {
			e.log.Debug("renew lease failed", "error", err)
			return false
		}
	}
	cur, err := e.leases.Get(ctx, e.cfg.Namespace, e.cfg.Name)
	if client.IsNotFound(err) {
		lease := &coordinationv1.Lease{
			ObjectMeta: metav1.ObjectMeta{Namespace: e.cfg.Namespace, Name: e.cfg.Name},
			Spec:       e.spec(nil, now),
		}
		created, err := e.leases.Create(ctx, lease)
		if err != nil {
			e.log.Debug("create lease failed", "error", err)
			return false
		}
		e.observe(created, now)
		return true
	}
	if err != nil {
		e.log.Debug("read lease failed", "error", err)
		return false
	}
	if e.observed == nil || e.observed.ResourceVersion != cur.ResourceVersion {
		e.observe(cur, now)
	}
	holder := holderOf(cur)
	duration := time.Duration(ptr.Deref(cur.Spec.LeaseDurationSeconds, 0)) * time.Second
	if holder != "" && holder != e.cfg.Identity && e.observedTime.Add(duration).After(now) {
		return false // held by another, not yet expired by our clock
	}
	next := cur.DeepCopy()
	next.Spec = e.spec(&cur.Spec, now)
	updated, err := e.leases.Update(ctx, next) // compare-and-swap on cur's resourceVersion
	if err != nil {
		e.log.Debug("update lease failed", "error", err)
		return false
	}
	e.observe(updated, now)
	return true
}

// spec is the Lease held by this candidate from now.
func (e *Elector) spec(prev *coordinationv1.LeaseSpec, now time.Time) coordinationv1.LeaseSpec {
	secs := int32(e.cfg.LeaseDuration / time.Second)
	renew := metav1.NewMicroTime(now)
	s := coordinationv1.LeaseSpec{HolderIdentity: ptr.To(e.cfg.Identity), LeaseDurationSeconds: &secs, RenewTime: &renew}
	var transitions int32
	if prev != nil {
		transitions = ptr.Deref(prev.LeaseTransitions, 0)
	}
	if prev != nil && ptr.Deref(prev.HolderIdentity, "") == e.cfg.Identity {
		s.AcquireTime = prev.AcquireTime
	} else {
		s.AcquireTime = &renew
		if prev != nil {
			transitions++
		}
	}
	s.LeaseTransitions = &transitions
	return s
}

// holderOf is the identity holding l ("" for none; nil l is none).
func holderOf(l *coordinationv1.Lease) string {
	if l == nil {
		return ""
	}
	return ptr.Deref(l.Spec.HolderIdentity, "")
}

func (e *Elector) observe(l *coordinationv1.Lease, now time.Time) {
	prevHolder := holderOf(e.observed)
	e.observed, e.observedTime = l, now
	if h := holderOf(l); h != prevHolder && e.cfg.OnNewLeader != nil {
		e.cfg.OnNewLeader(h)
	}
}

// release gives the Lease up if this candidate still holds it.
func (e *Elector) release() {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.RenewDeadline)
	defer cancel()
	if holderOf(e.observed) != e.cfg.Identity {
		return
	}
	next := e.observed.DeepCopy()
	renew := metav1.NewMicroTime(e.cfg.Now())
	next.Spec.HolderIdentity = ptr.To("")
	next.Spec.LeaseDurationSeconds = ptr.To[int32](1)
	next.Spec.RenewTime = &renew
	if _, err := e.leases.Update(ctx, next); err != nil {
		e.log.Warn("release lease failed", "error", err)
	}
}
