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
