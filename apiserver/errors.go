package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/apiserver/encryption"
	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// Errors are one class, apiError: Kubernetes' metav1.Status (message, reason, HTTP code,
// details naming the object and, for Invalid, each field) and the gRPC code it goes out
// with. The REST API sends the Status as it is; the gRPC API sends a status with the same
// message and an ErrorInfo detail: Reason (NotFound, AlreadyExists, Conflict, Invalid, ...)
// and, in Metadata, "resourceVersion" (the object's current one) and
// "oldestResourceVersion" where known. Both front ends say the same words.

const errorDomain = "skiff.dev"

// Reasons in ErrorInfo (and, but for OutcomeUnknown, metav1.Status's reason).
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

// apiError is an error of the API, for both front ends.
type apiError struct {
	status metav1.Status
	code   codes.Code
	meta   map[string]string
}

func (e *apiError) Error() string { return e.status.Message }

// GRPCStatus is the error as the gRPC API sends it (grpc-go finds this method).
func (e *apiError) GRPCStatus() *status.Status {
	st := status.New(e.code, e.status.Message)
	if e.status.Reason == "" {
		return st
	}
	reason := string(e.status.Reason)
	if e.status.Reason == metav1.StatusReasonTimeout && e.code == codes.Unknown {
		reason = ReasonUnknown
	}
	if withInfo, err := st.WithDetails(&errdetails.ErrorInfo{Reason: reason, Domain: errorDomain, Metadata: e.meta}); err == nil {
		st = withInfo
	}
	return st
}

// httpCodes are the HTTP codes of the reasons.
var httpCodes = map[string]int32{
	ReasonNotFound:        http.StatusNotFound,
	ReasonAlreadyExists:   http.StatusConflict,
	ReasonConflict:        http.StatusConflict,
	ReasonInvalid:         http.StatusUnprocessableEntity,
	ReasonBadRequest:      http.StatusBadRequest,
	ReasonForbidden:       http.StatusForbidden,
	ReasonTooOld:          http.StatusGone,
	ReasonUnavailable:     http.StatusServiceUnavailable,
	ReasonUnknown:         http.StatusGatewayTimeout,
	ReasonTooLarge:        http.StatusRequestEntityTooLarge,
	ReasonUnauthenticated: http.StatusUnauthorized,
	ReasonTooManyRequests: http.StatusTooManyRequests,
}

func statusError(code codes.Code, reason string, meta map[string]string, format string, args ...any) *apiError {
	e := &apiError{code: code, meta: meta, status: metav1.Status{
		Status: metav1.StatusFailure, Message: fmt.Sprintf(format, args...), Reason: metav1.StatusReason(reason), Code: httpCodes[reason],
	}}
	if reason == ReasonUnknown {
		e.status.Reason = metav1.StatusReasonTimeout // Kubernetes' word for "may still be processing"
	}
	if e.status.Code == 0 {
		e.status.Code = http.StatusInternalServerError
		e.status.Reason = metav1.StatusReasonInternalError
	}
	return e
}

// about names the object an error is about in its details.
func (e *apiError) about(info *kinds.Info, name string) *apiError {
	e.status.Details = &metav1.StatusDetails{Name: name, Group: info.Group, Kind: info.Plural}
	return e
}

// resourceName is how Kubernetes names a kind in messages: "pods", "deployments.apps".
func resourceName(info *kinds.Info) string {
	if i := strings.IndexByte(info.APIVersion, '/'); i >= 0 {
		return info.Plural + "." + info.APIVersion[:i]
	}
	return info.Plural
}

func notFound(info *kinds.Info, name string) error {
	return statusError(codes.NotFound, ReasonNotFound, nil, "%s %q not found", resourceName(info), name).about(info, name)
}

// invalid refuses an object for its content: err is a validation.ErrorList (or another
// error about one field path), and each problem becomes a cause naming its field, as
// Kubernetes' Invalid errors do.
func invalid(info *kinds.Info, name string, err error) error {
	var list validation.ErrorList
	var errs field.ErrorList
	if errors.As(err, &list) {
		errs = field.ErrorList(list)
	}
	gk := info.GroupVersionKind().GroupKind()
	if len(errs) == 0 {
		// A single problem written as "path: message".
		path, msg, _ := strings.Cut(err.Error(), ": ")
		errs = field.ErrorList{&field.Error{Type: field.ErrorTypeInvalid, Field: path, Detail: msg, BadValue: field.OmitValueType{}}}
		e := statusError(codes.InvalidArgument, ReasonInvalid, nil, "%s %q is invalid: %v", gk.String(), name, err)
		e.status.Details = apierrors.NewInvalid(gk, name, errs).ErrStatus.Details
		return e
	}
	ks := apierrors.NewInvalid(gk, name, errs).ErrStatus
	e := statusError(codes.InvalidArgument, ReasonInvalid, nil, "%s", ks.Message)
	e.status.Details = ks.Details
	return e
}

func badRequest(format string, args ...any) error {
	return statusError(codes.InvalidArgument, ReasonBadRequest, nil, format, args...)
}

func conflict(info *kinds.Info, name string, current int64, why string) error {
	meta := map[string]string{}
	if current != 0 {
		meta["resourceVersion"] = strconv.FormatInt(current, 10)
	}
	return statusError(codes.Aborted, ReasonConflict, meta, "Operation cannot be fulfilled on %s %q: %s", resourceName(info), name, why).about(info, name)
}

func forbidden(info *kinds.Info, name string, why string) error {
	return statusError(codes.FailedPrecondition, ReasonForbidden, nil, "%s %q is forbidden: %s", resourceName(info), name, why).about(info, name)
}

// asStatus is err as Kubernetes' Status: an apiError's own, a gRPC status's (an error
// passed on from a kubelet), or an internal error.
func asStatus(err error) metav1.Status {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae.status
	}
	if st, ok := status.FromError(err); ok {
		reason := ""
		for _, d := range st.Details() {
			if info, ok := d.(*errdetails.ErrorInfo); ok {
				reason = info.GetReason()
			}
		}
		if reason == "" {
			reason = map[codes.Code]string{codes.NotFound: ReasonNotFound, codes.InvalidArgument: ReasonBadRequest,
				codes.Unavailable: ReasonUnavailable, codes.FailedPrecondition: ReasonBadRequest,
				codes.DeadlineExceeded: ReasonUnavailable, codes.PermissionDenied: ReasonForbidden}[st.Code()]
		}
		return statusError(st.Code(), reason, nil, "%s", st.Message()).status
	}
	return statusError(codes.Internal, "", nil, "%v", err).status
}

// storeError maps a store error on object (info, name) to an API error.
func storeError(info *kinds.Info, name string, err error) error {
	if err == nil {
		return nil
	}
	var pe *store.PreconditionError
	var ce *store.CompactedError
	var ae *apiError
	switch {
	case errors.As(err, &ae):
		return err // already an API error (a conversion webhook's failure)
	case errors.As(err, &pe) && errors.Is(err, store.ErrNotFound):
		return notFound(info, name)
	case errors.As(err, &pe) && errors.Is(err, store.ErrAlreadyExists):
		return statusError(codes.AlreadyExists, ReasonAlreadyExists, map[string]string{"resourceVersion": strconv.FormatInt(pe.CurrentRevision, 10)},
			"%s %q already exists", resourceName(info), name).about(info, name)
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
	return statusError(codes.Internal, "", nil, "%s %q: %v", resourceName(info), name, err)
}
