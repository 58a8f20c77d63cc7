package flowcontrol

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/pki"
)

// The priority levels, by Kubernetes' names.
const (
	Exempt         = "exempt"
	NodeHigh       = "node-high"
	System         = "system"
	LeaderElection = "leader-election"
	WorkloadHigh   = "workload-high"
	GlobalDefault  = "global-default"
)

// Level is one priority level.
type Level struct {
	Name string
	// Exempt requests are never queued or refused, and take no seat.
	Exempt bool
	// Shares is the level's nominal share of the server's concurrency limit: it gets
	// ConcurrencyLimit × Shares / (sum of the non-exempt levels' shares) seats, at least one.
	Shares int
	// QueueLengthLimit is how many requests one flow (identity) may have waiting at this
	// level; more are refused.
	QueueLengthLimit int
}

// Config configures flow control. Start from DefaultConfig.
type Config struct {
	// ConcurrencyLimit is how many requests of the non-exempt levels execute at once, all
	// levels together. Default 3,000: five times Kubernetes' 600 (its
	// --max-requests-inflight 400 plus --max-mutating-requests-inflight 200). A write
	// holds its seat while three members commit it, and Raft commits the writes waiting
	// together in one round: at 600, a 10,000-pod rollout's writes queued for seats (the
	// controller-manager's level alone had up to 3,000 requests at once on the leader)
	// and were committed in smaller rounds, at more CPU per write.
	ConcurrencyLimit int
	// Levels are the priority levels; every level Classify names must be there.
	Levels []Level
	// WaitLimit is the longest a request waits in its queue before it is refused.
	// Default 15 s (Kubernetes: a quarter of the request timeout).
	WaitLimit time.Duration
	// Now is the clock of the retry delays (default time.Now).
	Now func() time.Time
}

// DefaultLevels are the levels of Kubernetes' suggested configuration that Skiff's
// identities use, with its shares. A flow may have as many requests waiting as
// Kubernetes' shuffle sharding lets one flow queue (hand size × queue length limit: 6 ×
// 50, leader-election 4 × 50), except at workload-high: Skiff's controllers have no
// client-side rate limit (Kubernetes' have 20/s), and a ReplicaSet's burst of creates
// (up to 5,000 at once) is one flow, which must wait, not be refused.
func DefaultLevels() []Level {
	return []Level{
		{Name: Exempt, Exempt: true},
		{Name: NodeHigh, Shares: 40, QueueLengthLimit: 300},
		{Name: System, Shares: 30, QueueLengthLimit: 300},
		{Name: LeaderElection, Shares: 10, QueueLengthLimit: 200},
		{Name: WorkloadHigh, Shares: 40, QueueLengthLimit: 5000},
		{Name: GlobalDefault, Shares: 20, QueueLengthLimit: 300},
	}
}

// DefaultConfig is Kubernetes' defaults, for Skiff's identities.
func DefaultConfig() Config {
	return Config{ConcurrencyLimit: 3000, Levels: DefaultLevels(), WaitLimit: 15 * time.Second}
}

// Validate checks the configuration and fills the defaults of unset fields.
func (c *Config) Validate() error {
	if c.ConcurrencyLimit <= 0 {
		return fmt.Errorf("flow control: the concurrency limit must be positive, not %d", c.ConcurrencyLimit)
	}
	if c.WaitLimit <= 0 {
		c.WaitLimit = 15 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	seen := map[string]bool{}
	for _, l := range c.Levels {
		if seen[l.Name] {
			return fmt.Errorf("flow control: priority level %q given twice", l.Name)
		}
		seen[l.Name] = true
		if !l.Exempt && (l.Shares <= 0 || l.QueueLengthLimit < 0) {
			return fmt.Errorf("flow control: priority level %q: shares must be positive and the queue length not negative", l.Name)
		}
	}
	for _, name := range []string{Exempt, NodeHigh, System, LeaderElection, WorkloadHigh, GlobalDefault} {
		if !seen[name] {
			return fmt.Errorf("flow control: priority level %q is missing", name)
		}
	}
	return nil
}

// Request is what classification looks at.
type Request struct {
	User auth.User
	// Resource is the kind's plural ("pods", "leases") and Namespace the object's.
	Resource, Namespace string
}

// Classify is the flow schemas: the priority level of a request.
func Classify(r Request) string {
	u := r.User
	switch {
	case u.InGroup(pki.GroupAPIServers):
		return Exempt
	case u.InGroup(pki.GroupNodes):
		if r.Resource == "nodes" || r.Resource == "leases" {
			return NodeHigh
		}
		return System
	case u.InGroup(pki.GroupControllerManager), u.InGroup(pki.GroupScheduler):
		if r.Resource == "leases" && r.Namespace == auth.NamespaceSystem {
			return LeaderElection
		}
		return WorkloadHigh
	}
	return GlobalDefault
}

// Rejected is a refused request: who, at which level, why, and when to come back.
type Rejected struct {
	Level, Flow string
	Reason      string
	RetryAfter  time.Duration
}

func (r *Rejected) Error() string {
	return fmt.Sprintf("too many requests: user %q at priority level %q: %s; retry after %v", r.Flow, r.Level, r.Reason, r.RetryAfter)
}

// Controller admits requests.
type Controller struct {
	cfg    Config
	levels map[string]*level
}

// New builds a controller; cfg is validated.
func New(cfg Config) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	total := 0
	for _, l := range cfg.Levels {
		if !l.Exempt {
			total += l.Shares
		}
	}
	c := &Controller{cfg: cfg, levels: map[string]*level{}}
	for _, l := range cfg.Levels {
		lv := &level{Level: l, waitLimit: cfg.WaitLimit, queues: map[string]*queue{}, drops: dropTracker{now: cfg.Now, retryAfter: 1}}
		if !l.Exempt {
			lv.limit = max(1, int(math.Ceil(float64(cfg.ConcurrencyLimit)*float64(l.Shares)/float64(total))))
		}
		c.levels[l.Name] = lv
	}
	return c, nil
}

// Limit is a level's concurrency limit (0 for an exempt one).
func (c *Controller) Limit(level string) int { return c.levels[level].limit }

// LevelStats are a level's counts since the start, and its state now.
type LevelStats struct {
	Name string
	// Limit is the level's seats (0: exempt).
	Limit int
	// Dispatched requests got a seat; Queued of them waited for it first. Rejected were
	// refused (a full queue or the wait limit).
	Dispatched, Queued, Rejected int64
	// Executing and Waiting are the requests holding a seat and in queues now;
	// PeakDemand the most there have been at once, both together.
	Executing, Waiting, PeakDemand int
}

// Stats reports every level, in the configured order.
func (c *Controller) Stats() []LevelStats {
	var out []LevelStats
	for _, l := range c.cfg.Levels {
		lv := c.levels[l.Name]
		lv.mu.Lock()
		out = append(out, LevelStats{Name: l.Name, Limit: lv.limit, Dispatched: lv.dispatched, Queued: lv.queued,
			Rejected: lv.rejected, Executing: lv.executing, Waiting: lv.waiting, PeakDemand: lv.peak})
		lv.mu.Unlock()
	}
	return out
}

// Admit admits a request of flow at level. It returns at once when the level has a seat
// free and nobody waits; otherwise the request waits in its flow's queue until a seat is
// its, the wait limit passes (*Rejected) or ctx ends (ctx's error). done releases the
// seat: call it when the request ends.
func (c *Controller) Admit(ctx context.Context, levelName, flow string) (done func(), err error) {
	l, ok := c.levels[levelName]
	if !ok {
		return nil, fmt.Errorf("flow control: no priority level %q", levelName)
	}
	if l.Exempt {
		l.mu.Lock()
		l.dispatched++
		l.mu.Unlock()
		return func() {}, nil
	}
	return l.admit(ctx, flow)
}

// level is one priority level's seats and queues.
type level struct {
	Level
	limit     int
	waitLimit time.Duration

	mu        sync.Mutex
	executing int
	waiting   int
	// counts since the start
	dispatched, queued, rejected int64
	peak                         int
	queues                       map[string]*queue // flows with waiting requests
	ring                         []*queue          // the same, in the order they are served
	next                         int
	drops                        dropTracker
}

type queue struct {
	flow    string
	waiters []*waiter
}

type waiter struct {
	ready    chan struct{}
	admitted bool
}

func (l *level) admit(ctx context.Context, flow string) (func(), error) {
	l.mu.Lock()
	l.peak = max(l.peak, l.executing+l.waiting+1)
	if l.executing < l.limit && l.waiting == 0 {
		l.executing++
		l.dispatched++
		l.mu.Unlock()
		return l.finish, nil
	}
	q := l.queues[flow]
	if q == nil {
		q = &queue{flow: flow}
	}
	if len(q.waiters) >= l.QueueLengthLimit {
		err := l.rejectLocked(flow, fmt.Sprintf("%d requests of this user wait already (the queue length limit)", len(q.waiters)))
		l.mu.Unlock()
		return nil, err
	}
	if len(q.waiters) == 0 {
		l.queues[flow] = q
		l.ring = append(l.ring, q)
	}
	w := &waiter{ready: make(chan struct{})}
	q.waiters = append(q.waiters, w)
	l.waiting++
	l.mu.Unlock()

	timer := time.NewTimer(l.waitLimit)
	defer timer.Stop()
	var err error
	select {
	case <-w.ready:
		return l.finish, nil
	case <-ctx.Done():
		err = ctx.Err()
	case <-timer.C:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if w.admitted { // a seat came with the timeout: give it back
		l.executing--
		l.dispatchLocked()
		if err != nil {
			return nil, err
		}
		return l.finish, nil
	}
	i := slices.Index(q.waiters, w)
	q.waiters = slices.Delete(q.waiters, i, i+1)
	l.waiting--
	if len(q.waiters) == 0 {
		l.removeLocked(q)
	}
	if err != nil {
		return nil, err
	}
	return nil, l.rejectLocked(flow, fmt.Sprintf("waited %v in the queue without a seat", l.waitLimit))
}

func (l *level) rejectLocked(flow, why string) error {
	l.rejected++
	return &Rejected{Level: l.Name, Flow: flow, Reason: why, RetryAfter: l.drops.record()}
}

func (l *level) finish() {
	l.mu.Lock()
	l.executing--
	l.dispatchLocked()
	l.mu.Unlock()
}

// dispatchLocked gives free seats to waiting requests, one flow after another.
func (l *level) dispatchLocked() {
	for l.executing < l.limit && l.waiting > 0 {
		if l.next >= len(l.ring) {
			l.next = 0
		}
		q := l.ring[l.next]
		w := q.waiters[0]
		q.waiters[0] = nil
		q.waiters = q.waiters[1:]
		w.admitted = true
		close(w.ready)
		l.executing++
		l.waiting--
		l.dispatched++
		l.queued++
		if len(q.waiters) == 0 {
			l.removeLocked(q) // the next flow moves into this slot
		} else {
			l.next++
		}
	}
}

func (l *level) removeLocked(q *queue) {
	i := slices.Index(l.ring, q)
	l.ring = slices.Delete(l.ring, i, i+1)
	if i < l.next {
		l.next--
	}
	delete(l.queues, q.flow)
}

// dropTracker is Kubernetes' retry delay for a level's refusals: it starts at 1 s,
// doubles (up to 32 s) once refusals in the last delay's worth of seconds reach three
// per second of delay, and shrinks by a second at a time when they fall below one per
// second. Called with the level's lock held.
type dropTracker struct {
	now        func() time.Time
	retryAfter int64 // seconds
	raisedAt   int64
	seconds    []dropSecond // recent seconds with refusals, oldest first
}

type dropSecond struct{ unix, count int64 }

const maxRetryAfter = 32

// record notes a refusal and returns the delay to send with it.
func (d *dropTracker) record() time.Duration {
	now := d.now().Unix()
	if n := len(d.seconds); n > 0 && d.seconds[n-1].unix == now {
		d.seconds[n-1].count++
		return time.Duration(d.retryAfter) * time.Second
	}
	// A new second: judge the last retryAfter seconds before it.
	var recent int64
	for _, s := range d.seconds {
		if now-s.unix <= d.retryAfter {
			recent += s.count
		}
	}
	switch {
	case now-d.raisedAt >= d.retryAfter && recent >= 3*d.retryAfter:
		d.retryAfter = min(2*d.retryAfter, maxRetryAfter)
		d.raisedAt = now
	case recent < d.retryAfter && d.retryAfter > 1:
		d.retryAfter--
	}
	d.seconds = slices.DeleteFunc(d.seconds, func(s dropSecond) bool { return now-s.unix > maxRetryAfter })
	d.seconds = append(d.seconds, dropSecond{unix: now, count: 1})
	return time.Duration(d.retryAfter) * time.Second
}

// ParseLevels applies "level=N,level=N" (a flag's value) to levels through set, which
// stores N in the named level.
func ParseLevels(levels []Level, flag, value string, set func(*Level, int)) error {
	if strings.TrimSpace(value) == "" {
		return nil
	}
	for _, part := range strings.Split(value, ",") {
		name, num, ok := strings.Cut(strings.TrimSpace(part), "=")
		n, err := strconv.Atoi(num)
		if !ok || err != nil {
			return fmt.Errorf("%s: %q is not level=number", flag, part)
		}
		i := slices.IndexFunc(levels, func(l Level) bool { return l.Name == name })
		if i < 0 || levels[i].Exempt {
			var names []string
			for _, l := range levels {
				if !l.Exempt {
					names = append(names, l.Name)
				}
			}
			sort.Strings(names)
			return fmt.Errorf("%s: %q is not a priority level (%s)", flag, name, strings.Join(names, ", "))
		}
		set(&levels[i], n)
	}
	return nil
}

// IsRejected says err is a flow-control refusal.
func IsRejected(err error) bool {
	var r *Rejected
	return errors.As(err, &r)
}
