package apiserver

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// EventRateLimit is Kubernetes' EventRateLimit admission with two of its limit types: a
// token bucket per namespace (type Namespace), and one per node whose kubelet writes
// (Skiff's own type Node: the node a kubelet's credential names, so a node credential
// alone cannot flood the control plane). Every Event created or updated takes a token
// from each bucket it falls in; a write that finds one empty is refused as 429
// (ResourceExhausted) with the delay after which a token is there (RetryInfo, Kubernetes'
// Retry-After). A zero QPS turns that type off.
type EventRateLimit struct {
	// NodeQPS and NodeBurst are each node's budget. Defaults 50 and 100: the kubelet's
	// own --event-qps and --event-burst.
	NodeQPS   float64
	NodeBurst int
	// NamespaceQPS and NamespaceBurst are each namespace's budget, shared by every
	// writer. Defaults 100 and 500: twice the rate of the Namespace limit in Kubernetes'
	// documented EventRateLimit configuration (50 and 100), and room for a rollout's
	// burst, since in Skiff the controllers and the scheduler share it with the nodes.
	NamespaceQPS   float64
	NamespaceBurst int
}

// DefaultEventRateLimit returns the defaults.
func DefaultEventRateLimit() EventRateLimit {
	return EventRateLimit{NodeQPS: 50, NodeBurst: 100, NamespaceQPS: 100, NamespaceBurst: 500}
}

func (l EventRateLimit) validate() error {
	if l.NodeQPS < 0 || l.NamespaceQPS < 0 || (l.NodeQPS > 0 && l.NodeBurst < 1) || (l.NamespaceQPS > 0 && l.NamespaceBurst < 1) {
		return fmt.Errorf("event rate limit %+v: QPS must not be negative, and a burst of at least 1 goes with a positive QPS", l)
	}
	return nil
}

// Event rate limit types, as Kubernetes names them in its refusals.
const (
	eventLimitNamespace = "Namespace"
	eventLimitNode      = "Node"
)

// maxBuckets bounds each type's buckets (Kubernetes' cacheSize defaults to 4096).
const maxBuckets = 4096

// eventLimiter enforces an EventRateLimit.
type eventLimiter struct {
	now        func() time.Time
	namespaces *buckets
	nodes      *buckets
	// refused counts each refused Event by its limit type (the member's metrics).
	refused func(limitType string)
}

func newEventLimiter(l EventRateLimit, now func() time.Time, refused func(limitType string)) *eventLimiter {
	return &eventLimiter{now: now, namespaces: newBuckets(l.NamespaceQPS, l.NamespaceBurst), nodes: newBuckets(l.NodeQPS, l.NodeBurst),
		refused: refused}
}

// admit takes a token for a write of an Event in namespace by u, or refuses it, telling
// the writer when the bucket will have a token for it (buckets.refuse).
func (e *eventLimiter) admit(u auth.User, namespace string) error {
	now := e.now()
	node, wait := e.nodes.take(auth.NodeOf(u), now)
	if wait > 0 {
		e.refused(eventLimitNode)
		return refuseEvents(eventLimitNode, auth.NodeOf(u), e.nodes.refuse(auth.NodeOf(u), now, wait))
	}
	if _, wait := e.namespaces.take(namespace, now); wait > 0 {
		if node != nil {
			node.CancelAt(now) // the write does not happen: give the node its token back
		}
		e.refused(eventLimitNamespace)
		return refuseEvents(eventLimitNamespace, namespace, e.namespaces.refuse(namespace, now, wait))
	}
	return nil
}

// spent refuses, as admit would, a write of an Event in namespace by u when a bucket it
// falls in has no token now, without taking one: a write it lets through goes on to
// admit, after its decoding and validation.
func (e *eventLimiter) spent(u auth.User, namespace string) error {
	now := e.now()
	if wait := e.nodes.empty(auth.NodeOf(u), now); wait > 0 {
		e.refused(eventLimitNode)
		return refuseEvents(eventLimitNode, auth.NodeOf(u), e.nodes.refuse(auth.NodeOf(u), now, wait))
	}
	if wait := e.namespaces.empty(namespace, now); wait > 0 {
		e.refused(eventLimitNamespace)
		return refuseEvents(eventLimitNamespace, namespace, e.namespaces.refuse(namespace, now, wait))
	}
	return nil
}

// refuseSpentEvent refuses a write of o, as admitEventWrite would, when o is an Event
// whose node's or namespace's budget is spent, before o is decoded and validated:
// refused writes are cheap, when a thousand recorders come back for tokens the budget
// does not have. Anything else it leaves to the write's own checks.
func (r *resources) refuseSpentEvent(ctx context.Context, o *apiv1.Object) error {
	if r.events == nil || !strings.EqualFold(o.GetKind(), kinds.Event) {
		return nil
	}
	if info, ok := kinds.Lookup(o.GetKind()); !ok || info.Kind != kinds.Event {
		return nil
	} else if names, err := kinds.ParseNames(o.GetRaw()); err == nil {
		return r.events.spent(requestUser(ctx), namespaceFor(info, names.Namespace))
	}
	return nil
}

// admitEventWrite applies the event rate limit to a write of an object of info.
func (r *resources) admitEventWrite(ctx context.Context, info *kinds.Info, namespace string) error {
	if info.Kind != kinds.Event || r.events == nil {
		return nil
	}
	return r.events.admit(requestUser(ctx), namespace)
}

// refuseEvents is the 429 of an empty bucket, in Kubernetes' words.
func refuseEvents(limitType, key string, retryAfter time.Duration) error {
	st := status.New(codes.ResourceExhausted, fmt.Sprintf("limit reached on type %s for key %s", limitType, key))
	info := &errdetails.ErrorInfo{Reason: ReasonTooManyRequests, Domain: errorDomain, Metadata: map[string]string{"limitType": limitType, "key": key}}
	if d, err := st.WithDetails(info, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}); err == nil {
		st = d
	}
	return st.Err()
}

// maxEventWait bounds the delay a refusal hands out, past the moment the bucket next has
// a token: the line of refused writers (buckets.refuse) holds at most this much of the
// bucket's refill, so that writers told a place in it who never come back (a recorder
// that gave up, a process that ended) keep the others waiting at most this long, and
// the writers refused while it is full come back at its end. Half of client-go's
// recorder's patience (12 tries, 10 s apart) in one wait.
const maxEventWait = 30 * time.Second

// buckets are one limit type's token buckets, by key.
type buckets struct {
	qps   rate.Limit
	burst int
	mu    sync.Mutex
	m     map[string]*bucket
}

// bucket is one key's token bucket, and the line of writers it refused.
type bucket struct {
	*rate.Limiter
	// next is the moment the bucket will have a token for the next writer it refuses:
	// each refusal hands out next and moves it one token's refill on (under the
	// buckets' mu).
	next time.Time
}

func newBuckets(qps float64, burst int) *buckets {
	return &buckets{qps: rate.Limit(qps), burst: burst, m: map[string]*bucket{}}
}

// take takes a token from key's bucket, returning the reservation (to cancel if another
// bucket refuses), or how long until a token is there. An empty key, or a type turned
// off, takes nothing.
func (b *buckets) take(key string, now time.Time) (*rate.Reservation, time.Duration) {
	if key == "" || b.qps == 0 {
		return nil, 0
	}
	b.mu.Lock()
	l := b.m[key]
	if l == nil {
		if len(b.m) >= maxBuckets {
			b.prune(now)
		}
		l = &bucket{Limiter: rate.NewLimiter(b.qps, b.burst)}
		b.m[key] = l
	}
	b.mu.Unlock()
	r := l.ReserveN(now, 1)
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return nil, d
	}
	return r, 0
}

// empty says how long until key's bucket has a token, or 0 when it has one now (or no
// bucket: a new one is full), taking nothing.
func (b *buckets) empty(key string, now time.Time) time.Duration {
	if key == "" || b.qps == 0 {
		return 0
	}
	b.mu.Lock()
	l := b.m[key]
	b.mu.Unlock()
	if l == nil {
		return 0
	}
	if t := l.TokensAt(now); t < 1 {
		return time.Duration((1 - t) / float64(b.qps) * float64(time.Second))
	}
	return 0
}

// refuse notes a write refused by key's bucket, whose next token is wait away, and says
// how long the writer should wait: until the bucket will have a token for it, not for
// anyone. The writers refused are a line (a virtual queue, as API Priority and
// Fairness's, without holding the requests): each is handed the next free slot, one
// token's refill after the one before, so that a thousand recorders refused together
// come back one at a time at the bucket's pace, each finding its token, instead of all
// together a token later, to be refused again but one. The line never starts before
// the next token, and holds at most maxEventWait beyond it: a writer refused when it is
// full is told to come back at its end, and takes no place.
func (b *buckets) refuse(key string, now time.Time, wait time.Duration) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.m[key]
	if l == nil { // pruned meanwhile: a new bucket would be full
		return wait
	}
	if first := now.Add(wait); l.next.Before(first) {
		l.next = first
	}
	// A millisecond more: the token must be whole when the writer comes at its slot.
	d := l.next.Sub(now) + time.Millisecond
	if most := wait + maxEventWait; d > most {
		return most
	}
	l.next = l.next.Add(b.interval(1))
	return d
}

// interval is how long the bucket takes to refill n tokens.
func (b *buckets) interval(n int) time.Duration {
	if n == 0 || b.qps == 0 {
		return 0
	}
	return time.Duration(float64(n) / float64(b.qps) * float64(time.Second))
}

// prune forgets the full buckets (a new one is the same: the writers still in a full
// bucket's line find their tokens), or, when none is full, every bucket: a bound on
// memory, not a way around the limit for long. Called with b.mu held.
func (b *buckets) prune(now time.Time) {
	for k, l := range b.m {
		if l.TokensAt(now) >= float64(b.burst) {
			delete(b.m, k)
		}
	}
	if len(b.m) >= maxBuckets {
		clear(b.m)
	}
}
