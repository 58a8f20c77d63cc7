package replicaset

import (
	"sync"
	"time"
)

// expectations remember, per ReplicaSet, the pod creations and deletions it has asked for
// and not yet seen in its cache, so that a sync does not act again on a stale cache and
// over-create (Kubernetes' ControllerExpectations). They expire, in case an event is
// never seen.
type expectations struct {
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

func newExpectations(ttl time.Duration, now func() time.Time) *expectations {
	return &expectations{m: map[string]*expectation{}, ttl: ttl, now: now}
}

// satisfied says whether key may sync: nothing outstanding, or the expectations expired.
func (e *expectations) satisfied(key string) bool {
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

func (e *expectations) expectCreations(key string, n int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.m[key] = &expectation{add: n, at: e.now()}
}

func (e *expectations) expectDeletions(key string, pods []string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	x := &expectation{del: len(pods), deleting: map[string]bool{}, at: e.now()}
	for _, p := range pods {
		x.deleting[p] = true
	}
	e.m[key] = x
}

// creationObserved counts a pod of key seen in the cache (or a create that failed).
func (e *expectations) creationObserved(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok {
		x.add--
	}
}

// deletionObserved counts the disappearance of pod (or a delete that failed).
func (e *expectations) deletionObserved(key, pod string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x, ok := e.m[key]; ok && x.deleting[pod] {
		delete(x.deleting, pod)
		x.del--
	}
}

func (e *expectations) forget(key string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	delete(e.m, key)
}
