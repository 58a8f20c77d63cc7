package client

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRetryOnConflict(t *testing.T) {
	saved := ConflictBackoff
	defer func() { ConflictBackoff = saved }()
	ConflictBackoff.Duration = time.Millisecond
	conflict := status.Error(codes.Aborted, "the object has been modified")
	other := errors.New("invalid")
	for _, tc := range []struct {
		name  string
		errs  []error // fn's outcomes, in order; the last repeats
		want  error
		calls int
	}{
		{"success at once", []error{nil}, nil, 1},
		{"conflicts, then success", []error{conflict, conflict, nil}, nil, 3},
		{"another error ends it", []error{conflict, other}, other, 2},
		{"conflicts to the end", []error{conflict}, conflict, ConflictBackoff.Steps},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			err := RetryOnConflict(context.Background(), func() error {
				calls++
				return tc.errs[min(calls, len(tc.errs))-1]
			})
			if !errors.Is(err, tc.want) || calls != tc.calls {
				t.Errorf("got %v after %d calls, want %v after %d", err, calls, tc.want, tc.calls)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	if err := RetryOnConflict(ctx, func() error { calls++; return conflict }); !IsConflict(err) || calls != 1 {
		t.Errorf("cancelled: %v after %d calls", err, calls)
	}
}
