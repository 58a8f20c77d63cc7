// Package waitfor waits, in tests, for a condition that other goroutines or processes
// make true: it polls the condition until it holds or a deadline passes, and then fails
// the test saying what was awaited and why the condition last said no. Polls start
// quick (FirstInterval), so that a condition that holds soon is seen soon, and slow down
// to MaxInterval, so that a long wait on a costly condition (one that runs a process or
// lists objects) does not load the machine it waits on.
//
// It is the tests' one way to wait: none sleeps for a fixed time instead.
package waitfor

import (
	"testing"
	"time"
)

// The polling intervals: the first wait after a poll that said no, doubling up to the
// longest.
const (
	FirstInterval = 10 * time.Millisecond
	MaxInterval   = 100 * time.Millisecond
)

// Condition polls cond until it returns true. When timeout passes first, t fails with
// what was awaited and the reason cond gave last (its state, or why it said no).
func Condition(t testing.TB, timeout time.Duration, what string, cond func() (ok bool, reason string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	interval := FirstInterval
	for {
		ok, reason := cond()
		if ok {
			return
		}
		if !time.Now().Before(deadline) {
			t.Fatalf("%s: not within %v; last: %s", what, timeout, reason)
			return
		}
		time.Sleep(min(interval, time.Until(deadline)))
		interval = min(2*interval, MaxInterval)
	}
}

// ConditionErr is Condition for a cond that can fail outright: its error fails t at
// once, naming what was awaited.
func ConditionErr(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	Condition(t, timeout, what, func() (bool, string) {
		ok, err := cond()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return ok, "the condition did not hold"
	})
}
