package client

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/anypb"
)

// The API server's errors are gRPC statuses with an ErrorInfo detail; these predicates
// classify them, the way client-go's apierrors do.

func code(err error) codes.Code {
	if se, ok := err.(*resultStatus); ok {
		return codes.Code(se.st.GetCode())
	}
	return status.Code(err)
}

// resultStatus is the error of one object of a batch call (CreateBatch, UpdateBatch):
// its status as the server encoded it. It reads as grpc's status error reads (Error,
// GRPCStatus), but its code and details are read from the decoded message itself:
// status.FromProto and Status.Proto each copy the whole message, and a recorder's batch
// refused by the event rate limit is a hundred such errors, each read for its code and
// its delay (a sixth of the simulated nodes' allocation at 150,000 pods, issue 26).
type resultStatus struct {
	st   *spb.Status
	once sync.Once
	s    *status.Status
}

func (e *resultStatus) Error() string {
	return fmt.Sprintf("rpc error: code = %s desc = %s", codes.Code(e.st.GetCode()), e.st.GetMessage())
}

// GRPCStatus is the status, made (and copied) once, for callers outside the package.
func (e *resultStatus) GRPCStatus() *status.Status {
	e.once.Do(func() { e.s = status.FromProto(e.st) })
	return e.s
}

// details are err's status's details, undecoded: without a copy of the status when err
// is a batch result's.
func details(err error) []*anypb.Any {
	var rs *resultStatus
	if errors.As(err, &rs) {
		return rs.st.GetDetails()
	}
	var se interface{ GRPCStatus() *status.Status }
	if !errors.As(err, &se) {
		return nil
	}
	return se.GRPCStatus().Proto().GetDetails()
}

// retryDelay is the delay a refusal as too many requests asks the client to wait
// (RetryInfo, Kubernetes' Retry-After), and whether err is one.
func retryDelay(err error) (time.Duration, bool) {
	if code(err) != codes.ResourceExhausted {
		return 0, false
	}
	// Only the RetryInfo is decoded: Details would decode every detail, the ErrorInfo
	// and its map too, and a recorder's refused Events each read it.
	for _, a := range details(err) {
		var ri errdetails.RetryInfo
		if a.MessageIs(&ri) && a.UnmarshalTo(&ri) == nil && ri.GetRetryDelay().IsValid() {
			return ri.GetRetryDelay().AsDuration(), true
		}
	}
	return 0, false
}

// RetryAfter is the delay a too-many-requests refusal asked for, or 0.
func RetryAfter(err error) time.Duration {
	d, _ := retryDelay(err)
	return d
}

func errorInfo(err error) *errdetails.ErrorInfo {
	for _, a := range details(err) {
		var info errdetails.ErrorInfo
		if a.MessageIs(&info) && a.UnmarshalTo(&info) == nil {
			return &info
		}
	}
	return nil
}

// IsNotFound: the object does not exist.
func IsNotFound(err error) bool { return code(err) == codes.NotFound }

// IsAlreadyExists: a create found the name taken. See IsRetriedCreate.
func IsAlreadyExists(err error) bool { return code(err) == codes.AlreadyExists }

// IsConflict: a resourceVersion or uid precondition failed; re-read and try again.
func IsConflict(err error) bool { return code(err) == codes.Aborted }

// IsInvalid: the request was refused for what it contains (the message names the field).
func IsInvalid(err error) bool { return code(err) == codes.InvalidArgument }

// IsForbidden: the request is not allowed in the object's current state (being deleted,
// already bound, in a terminating namespace, ...).
func IsForbidden(err error) bool {
	return code(err) == codes.FailedPrecondition || code(err) == codes.PermissionDenied
}

// IsTooManyRequests: the server refused the request for now (Kubernetes' 429): an
// eviction its PodDisruptionBudget does not allow yet, or the server's flow control or
// rate limit, which say when to come back (RetryAfter; client.Conn waits that out
// itself, ThrottleRetries times). Retry later.
func IsTooManyRequests(err error) bool { return code(err) == codes.ResourceExhausted }

// IsUnavailable: no API server could take the request (no leader, all unreachable).
func IsUnavailable(err error) bool { return code(err) == codes.Unavailable }

// IsTooOld: a watch asked for a resourceVersion older than the server's history; re-list.
func IsTooOld(err error) bool { return code(err) == codes.OutOfRange }

// IsUnknownOutcome: a write may or may not have happened; read before acting on it.
func IsUnknownOutcome(err error) bool {
	return code(err) == codes.Unknown || errors.Is(err, errUnknownOutcome)
}

// CurrentResourceVersion is the object's resourceVersion an error reports (a conflict's
// current version, the version a cut watch reached), or "".
func CurrentResourceVersion(err error) string {
	if info := errorInfo(err); info != nil {
		return info.GetMetadata()["resourceVersion"]
	}
	return ""
}

// OldestResourceVersion is the oldest version a too-old watch could start from, or 0.
func OldestResourceVersion(err error) int64 {
	if info := errorInfo(err); info != nil {
		n, _ := strconv.ParseInt(info.GetMetadata()["oldestResourceVersion"], 10, 64)
		return n
	}
	return 0
}

// serverRefused says the API server answered Unavailable itself (it carries Skiff's
// ErrorInfo): it did nothing, so any call may be retried, elsewhere.
func serverRefused(err error) bool {
	if code(err) != codes.Unavailable {
		return false
	}
	info := errorInfo(err)
	return info != nil && info.GetDomain() == "skiff.dev"
}

// transportFailed says the call failed on the way (connection refused, reset, closed):
// it may or may not have reached the server.
func transportFailed(err error) bool {
	return code(err) == codes.Unavailable && !serverRefused(err)
}

var errUnknownOutcome = errors.New("outcome unknown")

// RetriedCreateError is AlreadyExists from a create that was sent again after its first
// attempt's outcome was lost: the object may be the one this call created.
type RetriedCreateError struct{ Err error }

func (e *RetriedCreateError) Error() string {
	return e.Err.Error() + " (the request was retried after a lost reply: the object may have been created by this call)"
}

func (e *RetriedCreateError) Unwrap() error { return e.Err }

// GRPCStatus keeps the AlreadyExists code visible through the wrapper.
func (e *RetriedCreateError) GRPCStatus() *status.Status { return status.Convert(e.Err) }

// IsRetriedCreate reports an AlreadyExists that may be this call's own object.
func IsRetriedCreate(err error) bool {
	var rc *RetriedCreateError
	return errors.As(err, &rc)
}

// grpcTooLarge is how gRPC refuses a message over the receiver's limit.
var grpcTooLarge = regexp.MustCompile(`(received|trying to send) message larger than max \((\d+) vs\. (\d+)\)`)

// tooLarge rewrites gRPC's refusal of an oversized request in the user's terms.
func tooLarge(err error) (error, bool) {
	if code(err) != codes.ResourceExhausted {
		return nil, false
	}
	m := grpcTooLarge.FindStringSubmatch(status.Convert(err).Message())
	if m == nil {
		return nil, false
	}
	size, _ := strconv.ParseInt(m[2], 10, 64)
	limit, _ := strconv.ParseInt(m[3], 10, 64)
	if m[1] == "trying to send" {
		return status.Errorf(codes.InvalidArgument, "request of %d bytes exceeds this client's limit of %s", size, byteSize(limit)), true
	}
	return status.Errorf(codes.InvalidArgument, "request of %d bytes exceeds the API server's %s limit (--max-request-bytes)", size, byteSize(limit)), true
}

// byteSize says n in MiB or KiB when it is a whole number of them.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d-byte", n)
}

// notUTF8 rewrites gRPC's refusal to send a request holding a string that is not UTF-8
// (a name, a namespace, a selector: the objects' own strings go as Kubernetes' protobuf
// and the server names their field) as the caller's mistake, not the server's failure.
func notUTF8(err error) (error, bool) {
	if code(err) != codes.Internal || !strings.Contains(status.Convert(err).Message(), "string field contains invalid UTF-8") {
		return nil, false
	}
	return status.Error(codes.InvalidArgument, "the request holds a string that is not valid UTF-8 (a name, namespace or selector)"), true
}
