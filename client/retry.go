package client

import (
	"context"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
)

// ConflictBackoff is how RetryOnConflict spaces its attempts: jittered and growing, so
// that writers racing for one object spread out, and Steps attempts in all, enough that a dozen
// writers of one object all get through (each round, one of them wins).
var ConflictBackoff = wait.Backoff{Duration: 10 * time.Millisecond, Factor: 1.5, Jitter: 1, Steps: 16, Cap: time.Second}

// RetryOnConflict runs fn, a read-modify-write that reads the object afresh each time,
// again after a conflict (IsConflict: someone else wrote the object in between), backing
// off by ConflictBackoff, as client-go's retry.RetryOnConflict does. It returns fn's
// first other outcome, or the last conflict when the attempts or ctx run out.
func RetryOnConflict(ctx context.Context, fn func() error) error {
	b := ConflictBackoff
	attempts := b.Steps // Step stops counting once the delay reaches the cap
	for attempt := 1; ; attempt++ {
		err := fn()
		if !IsConflict(err) || attempt >= attempts {
			return err
		}
		t := time.NewTimer(b.Step())
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
