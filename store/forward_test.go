package store

import (
	"errors"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestNeverSent(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{status.Error(codes.Unavailable, `connection error: desc = "transport: Error while dialing: dial tcp 127.0.0.1:7101: connect: connection refused"`), true},
		{status.Error(codes.Unavailable, "connection error: desc = \"transport: error while dialing: dial tcp: i/o timeout\""), true},
		{status.Error(codes.Unavailable, "error reading from server: EOF"), false},
		{status.Error(codes.Unavailable, "transport is closing"), false},
		{status.Error(codes.DeadlineExceeded, "context deadline exceeded"), false},
		{status.Error(codes.Internal, "connection refused"), false},
		{errors.New("connection refused"), false},
	} {
		if got := neverSent(tc.err); got != tc.want {
			t.Errorf("neverSent(%v) = %v, want %v", tc.err, got, tc.want)
		}
	}
}
