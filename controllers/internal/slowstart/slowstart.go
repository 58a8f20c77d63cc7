// Package slowstart makes many calls as Kubernetes' controllers do (slowStartBatch):
// concurrently, in batches that double, stopping after the first batch with a failure.
package slowstart

import (
	"errors"
	"sync"
)

// Run runs n calls in batches of 1, 2, 4, ... concurrently, stopping after the
// first batch with a failure, as Kubernetes does so that a failing create (quota,
// validation) costs a few calls rather than n. It returns how many calls succeeded.
func Run(n int, call func() error) (attempted int, err error) {
	attempted, _, err = RunFrom(n, 1, call)
	return attempted, err
}

// RunFrom is Run with a first batch of first calls (at least 1): a controller that
// remembers how large a batch last succeeded for an object starts its next creations
// there instead of paying the doubling's rounds again. It also returns the largest
// batch that succeeded in full (0: none).
func RunFrom(n, first int, call func() error) (attempted, largest int, err error) {
	return RunBatches(n, first, func(_, size int) []error {
		errs := make([]error, size)
		var wg sync.WaitGroup
		for i := range size {
			wg.Go(func() { errs[i] = call() })
		}
		wg.Wait()
		return errs
	})
}

// RunBatches is RunFrom with each batch made by the caller in one go: batch(start,
// size) makes calls start to start+size-1 (for instance in one batch request) and
// returns each one's error, in order. The batches and the stop at the first one with a
// failure are RunFrom's.
func RunBatches(n, first int, batch func(start, size int) []error) (attempted, largest int, err error) {
	for size := max(first, 1); attempted < n; size *= 2 {
		size := min(size, n-attempted)
		errs := batch(attempted, size)
		attempted += size
		if err := errors.Join(errs...); err != nil {
			failed := 0
			for _, e := range errs {
				if e != nil {
					failed++
				}
			}
			return attempted - failed, largest, err
		}
		largest = max(largest, size)
	}
	return attempted, largest, nil
}

// Memory remembers, per object (a controller's key), the largest slow-start batch that
// succeeded in full, so that the object's next creations begin there instead of paying
// the doubling's rounds again: a DaemonSet's rolling update replaces a tenth of its
// pods at a time, and each wave's replacements began at 1 (seven rounds for a hundred
// pods, each awaited). A failure forgets the size, so the creations after it begin at 1
// again, as Kubernetes' always do. The zero Memory is ready; it is safe for concurrent
// use.
type Memory struct {
	mu    sync.Mutex
	sizes map[string]int
}

// RunBatches is the package's RunBatches for key's creations, beginning with the batch
// remembered for key (1 when none).
func (m *Memory) RunBatches(key string, n int, batch func(start, size int) []error) (attempted int, err error) {
	m.mu.Lock()
	first := m.sizes[key]
	m.mu.Unlock()
	attempted, largest, err := RunBatches(n, first, batch)
	m.mu.Lock()
	defer m.mu.Unlock()
	switch {
	case err != nil:
		delete(m.sizes, key)
	case largest > first:
		if m.sizes == nil {
			m.sizes = map[string]int{}
		}
		m.sizes[key] = largest
	}
	return attempted, err
}

// Forget drops what is remembered for key (its object is gone).
func (m *Memory) Forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.sizes, key)
}
