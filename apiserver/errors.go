package apiserver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiffhq/skiff/apiserver/encryption"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// Errors reach clients as gRPC statuses with Kubernetes-style messages and an ErrorInfo
// detail: Reason (NotFound, AlreadyExists, Conflict, Invalid, ...) and, in Metadata,
// "resourceVersion" (the object's current one) and "oldestResourceVersion" where known.
// The client library turns them back into its own error classes.

const errorDomain = "skiff.dev"

// Reasons in ErrorInfo.
const (
	ReasonNotFound      = "NotFound"
	ReasonAlreadyExists = "AlreadyExists"
	ReasonConflict      = "Conflict"
	ReasonInvalid       = "Invalid"
	ReasonBadRequest    = "BadRequest"
	ReasonForbidden     = "Forbidden"
	ReasonTooOld        = "Expired"
	ReasonUnavailable   = "ServiceUnavailable"
	ReasonUnknown       = "OutcomeUnknown"
	ReasonTooLarge      = "RequestEntityTooLarge"
	ReasonInternal      = "InternalError"
	// ReasonNoSpace: the store's NOSPACE alarm refuses creates and updates.
	ReasonNoSpace = "InsufficientStorage"
)

func statusError(code codes.Code, reason string, meta map[string]string, format string, args ...any) error {
	st := status.New(code, fmt.Sprintf(format, args...))
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: meta}); err == nil {
		st = withInfo
	}
	return st.Err()
}

// resourceName is how Kubernetes names a kind in messages: "pods", "deployments.apps".
func resourceName(info *kinds.Info) string {
	if i := strings.IndexByte(info.APIVersion, '/'); i >= 0 {
		return info.Plural + "." + info.APIVersion[:i]
	}
	return info.Plural
}

func notFound(info *kinds.Info, name string) error {
	return statusError(codes.NotFound, ReasonNotFound, nil, "%s %q not found", resourceName(info), name)
}

func invalid(info *kinds.Info, name string, err error) error {
	return statusError(codes.InvalidArgument, ReasonInvalid, nil, "%s %q is invalid: %v", resourceName(info), name, err)
}

func badRequest(format string, args ...any) error {
	return statusError(codes.InvalidArgument, ReasonBadRequest, nil, format, args...)
}

func conflict(info *kinds.Info, name string, current int64, why string) error {
	meta := map[string]string{}
	if current != 0 {
		meta["resourceVersion"] = strconv.FormatInt(current, 10)
	}
	return statusError(codes.Aborted, ReasonConflict, meta, "Operation cannot be fulfilled on %s %q: %s", resourceName(info), name, why)
}

func forbidden(info *kinds.Info, name string, why string) error {
	return statusError(codes.FailedPrecondition, ReasonForbidden, nil, "%s %q is forbidden: %s", resourceName(info), name, why)
}

// storeError maps a store error on object (info, name) to a gRPC status.
func storeError(info *kinds.Info, name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *store.PreconditionError
	var ce *store.CompactedError
	switch {
	case errors.As(err, &pe) && errors.Is(err, store.ErrNotFound):
		return notFound(info, name)
	case errors.As(err, &pe) && errors.Is(err, store.ErrAlreadyExists):
		return statusError(codes.AlreadyExists, ReasonAlreadyExists, map[string]string{"resourceVersion": strconv.FormatInt(pe.CurrentRevision, 10)},
			"%s %q already exists", resourceName(info), name)
	case errors.As(err, &pe) && errors.Is(err, store.ErrConflict):
		return conflict(info, name, pe.CurrentRevision, "the object has been modified; please apply your changes to the latest version and try again")
	case errors.As(err, &ce):
		return statusError(codes.OutOfRange, ReasonTooOld, map[string]string{"oldestResourceVersion": strconv.FormatInt(ce.Oldest, 10)},
			"too old resource version: %d (oldest available %d)", ce.Requested, ce.Oldest)
	case errors.Is(err, store.ErrWatchTooSlow):
		var ts *store.TooSlowError
		meta := map[string]string{}
		if errors.As(err, &ts) {
			meta["resourceVersion"] = strconv.FormatInt(ts.LastRevision, 10)
		}
		return statusError(codes.Unavailable, ReasonUnavailable, meta, "watch of %s fell behind and was closed: %v", resourceName(info), err)
	case errors.Is(err, store.ErrNoSpace):
		return statusError(codes.ResourceExhausted, ReasonNoSpace, nil, "%s %q: %v", resourceName(info), name, err)
	case errors.Is(err, store.ErrRefused):
		return statusError(codes.FailedPrecondition, ReasonForbidden, nil, "%s %q: %v", resourceName(info), name, err)
	case errors.Is(err, store.ErrTooLarge):
		return statusError(codes.InvalidArgument, ReasonTooLarge, nil, "%s %q: %v", resourceName(info), name, err)
	case errors.Is(err, store.ErrInvalid):
		return badRequest("%s %q: %v", resourceName(info), name, err)
	case errors.Is(err, store.ErrIndeterminate):
		return statusError(codes.Unknown, ReasonUnknown, nil, "%s %q: %v; read the object before retrying", resourceName(info), name, err)
	case errors.Is(err, store.ErrNoLeader), errors.Is(err, store.ErrNotLeader), errors.Is(err, store.ErrClosed):
		return statusError(codes.Unavailable, ReasonUnavailable, nil, "%v", err)
	case errors.Is(err, encryption.ErrTransform):
		// The value names itself; which object of a list or watch it is does not matter.
		return statusError(codes.Internal, ReasonInternal, nil, "Internal error occurred: %v", err)
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	}
	return status.Errorf(codes.Internal, "%s %q: %v", resourceName(info), name, err)
}
