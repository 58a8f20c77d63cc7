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
	for batch := max(first, 1); attempted < n; batch *= 2 {
		size := min(batch, n-attempted)
		errs := make([]error, size)
		var wg sync.WaitGroup
		for i := 0; i < size; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = call()
			}()
		}
		wg.Wait()
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

// RunChunks is RunFrom for a call that makes up to size items at once (a batch API
// such as CreateBatch): each batch of the doubling is split into calls of at most size
// items, run concurrently; call(lo, hi) makes items lo..hi-1 and returns how many of
// them succeeded. It stops after the first batch with a failure, and returns how many
// items succeeded and the largest batch that succeeded in full.
func RunChunks(n, first, size int, call func(lo, hi int) (int, error)) (done, largest int, err error) {
	size = max(size, 1)
	for batch, at := max(first, 1), 0; at < n; batch *= 2 {
		end := min(at+batch, n)
		var mu sync.Mutex
		var errs []error
		var wg sync.WaitGroup
		for lo := at; lo < end; lo += size {
			wg.Go(func() {
				ok, err := call(lo, min(lo+size, end))
				mu.Lock()
				defer mu.Unlock()
				done += ok
				errs = append(errs, err)
			})
		}
		wg.Wait()
		if err := errors.Join(errs...); err != nil {
			return done, largest, err
		}
		largest = max(largest, end-at)
		at = end
	}
	return done, largest, nil
}
