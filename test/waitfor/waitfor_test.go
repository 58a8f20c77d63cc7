package waitfor

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"
)

// recorder is a testing.TB whose Fatalf records the failure and ends the goroutine, as
// testing's does.
type recorder struct {
	testing.TB
	failure string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.failure = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run runs wait with a recorder in its own goroutine (Fatalf ends it) and returns the
// failure, "" when there was none.
func run(wait func(t testing.TB)) string {
	r := &recorder{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		wait(r)
	}()
	<-done
	return r.failure
}

func TestCondition(t *testing.T) {
	for _, tc := range []struct {
		name    string
		holdsAt int // the poll at which the condition first holds; 0: never
		timeout time.Duration
		want    string // the failure, "" for none
	}{
		{name: "holds at once", holdsAt: 1, timeout: time.Second},
		{name: "holds after a few polls", holdsAt: 4, timeout: 10 * time.Second},
		{name: "never holds", timeout: 50 * time.Millisecond, want: "the thing: not within 50ms; last: poll "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			polls := 0
			got := run(func(t testing.TB) {
				Condition(t, tc.timeout, "the thing", func() (bool, string) {
					polls++
					return polls == tc.holdsAt, fmt.Sprintf("poll %d", polls)
				})
			})
			if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
				t.Fatalf("failure %q, want %q", got, tc.want)
			}
			if tc.holdsAt > 0 && polls != tc.holdsAt {
				t.Fatalf("%d polls, want %d: polling goes on after the condition held", polls, tc.holdsAt)
			}
			// The reason reported is the last one given.
			if tc.want != "" && !strings.HasSuffix(got, fmt.Sprintf("poll %d", polls)) {
				t.Fatalf("failure %q does not give the last reason (poll %d)", got, polls)
			}
		})
	}
}

func TestConditionErr(t *testing.T) {
	polls := 0
	got := run(func(t testing.TB) {
		ConditionErr(t, 10*time.Second, "the thing", func() (bool, error) {
			polls++
			if polls == 2 {
				return false, errors.New("broken")
			}
			return false, nil
		})
	})
	if got != "the thing: broken" || polls != 2 {
		t.Fatalf("failure %q after %d polls, want %q after 2: an error ends the wait at once", got, polls, "the thing: broken")
	}
	if got := run(func(t testing.TB) {
		ConditionErr(t, 10*time.Second, "the thing", func() (bool, error) { return true, nil })
	}); got != "" {
		t.Fatalf("failure %q for a condition that holds", got)
	}
}
