// Package expectations remembers, per controller object, the pod creations and
// deletions it has asked for and not yet seen in its cache (Kubernetes'
// ControllerExpectations), so that a sync acting on a stale cache does not create or
// delete twice. Every controller that makes pods (ReplicaSet, DaemonSet, Job) keeps one.
package expectations

import (
	"sync"
	"time"
)

// Expectations remember, per key, the pod creations and deletions asked for and not yet
// seen. They expire, in case an event is never seen.
type Expectations struct {
	mu  sync.Mutex
	m   map[string]*expectation
	ttl time.Duration
	now func() time.Time
}

type expectation struct {
	add, del int
	deleting map[string]bool // pod keys expected to go
	at       time.Time
}

// New makes expectations that expire after ttl on the clock now.
func New(ttl time.Duration, now func() time.Time) *Expectations {
	return &Expectations{m: map[string]*expectation{}, ttl: ttl, now: now}
}

// Satisfied says whether key may sync: nothing outstanding, or the expectations expired.
func (e *Expectations) Satisfied(key string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return true
	}
	if (x.add <= 0 && x.del <= 0) || e.now().Sub(x.at) > e.ttl {
		delete(e.m, key)
		return true
	}
	return false
}

// ExpectCreations records n creations asked for key.
func (e *Expectations) ExpectCreations(key string, n int) { e.Expect(key, n, nil) }

// ExpectDeletions records the deletions of pods (their keys) asked for key.
func (e *Expectations) ExpectDeletions(key string, pods []string) { e.Expect(key, 0, pods) }

// Expect records, for key, n creations and the deletions of pods (their keys), replacing
// what it expected before.
func (e *Expectations) Expect(key string, n int, pods []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{add: n, del: len(pods), deleting: map[string]bool{}, at: e.now()}
	for _, p := range pods {
		x.deleting[p] = true
	}
	e.m[key] = x
}

// CreationObserved counts a pod of key seen in the cache (or a create that failed).
func (e *Expectations) CreationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add--
	}
}

// DeletionObserved counts the disappearance of pod (or a delete that failed).
func (e *Expectations) DeletionObserved(key, pod string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.deleting[pod] {
		delete(x.deleting, pod)
		x.del--
	}
}

// Forget drops what key expected (its object is gone).
func (e *Expectations) Forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}

// Pending returns the creations and deletions key still waits to see: zero for both
// once Satisfied would say so (an expired record is dropped).
func (e *Expectations) Pending(key string) (creations, deletions int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok {
		return 0, 0
	}
	if (x.add <= 0 && x.del <= 0) || e.now().Sub(x.at) > e.ttl {
		delete(e.m, key)
		return 0, 0
	}
	return max(x.add, 0), max(x.del, 0)
}

// AddCreations records n more creations asked for key, on top of those it still
// expects (ExpectCreations replaces them): for a controller that creates again before
// its earlier creations are all seen.
func (e *Expectations) AddCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x, ok := e.m[key]
	if !ok || e.now().Sub(x.at) > e.ttl {
		x = &expectation{deleting: map[string]bool{}}
		e.m[key] = x
	}
	x.add = max(x.add, 0) + n
	x.at = e.now()
}
