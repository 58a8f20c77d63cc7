package client

import (
	"context"
	"fmt"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
)

// rateRefusal is a refusal as the API server's event rate limit makes it: an ErrorInfo
// with its map, then the RetryInfo.
func rateRefusal(code codes.Code, retry *errdetails.RetryInfo) error {
	st := status.New(code, "limit reached on type Namespace for key default")
	info := &errdetails.ErrorInfo{Reason: "TooManyRequests", Domain: "skiff.dev",
		Metadata: map[string]string{"limitType": "Namespace", "key": "default"}}
	if retry != nil {
		st, _ = st.WithDetails(info, retry)
	} else {
		st, _ = st.WithDetails(info)
	}
	return st.Err()
}

func TestRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want time.Duration
	}{
		{"refused with a delay", rateRefusal(codes.ResourceExhausted, &errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)}), 1500 * time.Millisecond},
		{"refused without a delay", rateRefusal(codes.ResourceExhausted, nil), 0},
		{"an invalid delay", rateRefusal(codes.ResourceExhausted, &errdetails.RetryInfo{RetryDelay: &durationpb.Duration{Seconds: 1, Nanos: -1}}), 0},
		{"not a refusal", rateRefusal(codes.Unavailable, &errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)}), 0},
		{"no details", status.Error(codes.ResourceExhausted, "too many requests"), 0},
		{"no error", nil, 0},
	} {
		if got := RetryAfter(tc.err); got != tc.want {
			t.Errorf("%s: RetryAfter %v, want %v", tc.name, got, tc.want)
		}
	}
}

// TestRetryAfterDecodesOnlyRetryInfo: reading a refusal's delay decodes its RetryInfo,
// not its ErrorInfo's map too (every refused Event of a recorder is read): 21
// allocations a read when every detail was decoded.
func TestRetryAfterDecodesOnlyRetryInfo(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's build allocates more")
	}
	err := rateRefusal(codes.ResourceExhausted, &errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)})
	if n := testing.AllocsPerRun(100, func() { RetryAfter(err) }); n > 12 {
		t.Fatalf("%v allocations a read, want at most 12", n)
	}
}

// countingStatus is a refusal that counts how often its status is read.
type countingStatus struct {
	st    *status.Status
	reads int
}

func (e *countingStatus) Error() string              { return e.st.Message() }
func (e *countingStatus) GRPCStatus() *status.Status { e.reads++; return e.st }

// TestWaitOutLeavesOwnThrottlingToTheCaller: a refusal met by a caller throttling
// itself (the event recorder) is not decoded by the connection, which does not wait it
// out; another caller's is, and waited out.
func TestWaitOutLeavesOwnThrottlingToTheCaller(t *testing.T) {
	c, err := Dial([]string{"127.0.0.1:1"}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	refused := status.Convert(rateRefusal(codes.ResourceExhausted, &errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)}))

	own := &countingStatus{st: refused}
	if d, ok := c.waitOut(OwnThrottling(context.Background()), own, 0); ok || d != 0 {
		t.Errorf("own throttling: waited %v, %v", d, ok)
	}
	if own.reads != 0 {
		t.Errorf("own throttling: the status read %d times, want none", own.reads)
	}
	other := &countingStatus{st: refused}
	if d, ok := c.waitOut(context.Background(), other, 0); !ok || d != time.Second {
		t.Errorf("another caller: waits %v, %v; want 1s, true", d, ok)
	}
	if d, ok := c.waitOut(context.Background(), other, c.opts.ThrottleRetries); ok {
		t.Errorf("past ThrottleRetries: waits %v", d)
	}
}

// encodedRefusal is rateRefusal as a batch result carries it: its status encoded.
func encodedRefusal(t testing.TB, err error) []byte {
	b, merr := proto.Marshal(status.Convert(err).Proto())
	if merr != nil {
		t.Fatal(merr)
	}
	return b
}

// TestBatchResultReadsAsStatus: a batch result's error reads as grpc's status error of
// the same status does, through the package's predicates and grpc's status package
// alike, wrapped or not; an OK status is no error.
func TestBatchResultReadsAsStatus(t *testing.T) {
	what := func() string { return "create Event \"e\"" }
	for _, want := range []error{
		rateRefusal(codes.ResourceExhausted, &errdetails.RetryInfo{RetryDelay: durationpb.New(1500 * time.Millisecond)}),
		rateRefusal(codes.ResourceExhausted, nil),
		rateRefusal(codes.PermissionDenied, nil),
		status.Error(codes.AlreadyExists, `events "e" already exists`),
	} {
		got := resultError(encodedRefusal(t, want), what)
		if got.Error() != want.Error() {
			t.Errorf("Error() = %q, want %q", got.Error(), want.Error())
		}
		for _, err := range []error{got, fmt.Errorf("wrapped: %w", got), &RetriedCreateError{Err: got}} {
			if status.Code(err) != status.Code(want) || code(err) != status.Code(want) {
				t.Errorf("%v: code %v / %v, want %v", err, status.Code(err), code(err), status.Code(want))
			}
			if RetryAfter(err) != RetryAfter(want) || IsTooManyRequests(err) != IsTooManyRequests(want) || IsForbidden(err) != IsForbidden(want) {
				t.Errorf("%v: RetryAfter %v, IsTooManyRequests %v, IsForbidden %v; want %v, %v, %v", err,
					RetryAfter(err), IsTooManyRequests(err), IsForbidden(err), RetryAfter(want), IsTooManyRequests(want), IsForbidden(want))
			}
			if !proto.Equal(errorInfo(err), errorInfo(want)) {
				t.Errorf("%v: ErrorInfo %v, want %v", err, errorInfo(err), errorInfo(want))
			}
		}
		if !proto.Equal(status.Convert(got).Proto(), status.Convert(want).Proto()) {
			t.Errorf("status %v, want %v", status.Convert(got).Proto(), status.Convert(want).Proto())
		}
	}
	if err := resultError(encodedRefusal(t, status.New(codes.OK, "").Err()), what); err != nil {
		t.Errorf("an OK status: %v", err)
	}
}

// TestBatchResultReadWithoutCopies: a refused batch item's error is decoded once and its
// code and delay read from that: 30 allocations an item when the status was copied for
// the error and again for its delay (status.FromProto, Status.Proto).
func TestBatchResultReadWithoutCopies(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector's build allocates more")
	}
	b := encodedRefusal(t, rateRefusal(codes.ResourceExhausted, &errdetails.RetryInfo{RetryDelay: durationpb.New(time.Second)}))
	what := func() string { return "" }
	n := testing.AllocsPerRun(100, func() {
		err := resultError(b, what)
		if !IsTooManyRequests(err) || IsForbidden(err) || RetryAfter(err) != time.Second {
			t.Fatal("not read as a refusal with a delay of 1s")
		}
	})
	if n > 16 {
		t.Fatalf("%v allocations an item, want at most 16", n)
	}
}
