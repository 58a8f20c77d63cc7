package apiserver

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/skiffhq/skiff/internal/workers"
	"github.com/skiffhq/skiff/test/goroutines"
)

// TestUnaryCallsOnWorkers: a unary call's handler (with the interceptors after onWorker)
// runs on one of the server's workers, whose stacks have grown already, not on gRPC's
// goroutine for the call (a watch holds one of gRPC's own workers for its life), and
// its answer and error come back to the call.
func TestUnaryCallsOnWorkers(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	intercept := onWorker(workers.New(4, time.Hour, stop))
	wantErr := errors.New("refused")
	for _, c := range []struct {
		name string
		resp any
		err  error
	}{{"answer", "pod", nil}, {"error", nil, wantErr}} {
		onWorker := false
		resp, err := intercept(context.Background(), "req", &grpc.UnaryServerInfo{FullMethod: "/skiff.api.v1.Resources/Create"},
			func(_ context.Context, req any) (any, error) {
				onWorker = goroutines.Within("workers.(*Pool).loop")
				return c.resp, c.err
			})
		if !onWorker {
			t.Errorf("%s: the handler ran off the server's workers", c.name)
		}
		if resp != c.resp || !errors.Is(err, c.err) {
			t.Errorf("%s: got %v, %v; want %v, %v", c.name, resp, err, c.resp, c.err)
		}
	}
}
