package kubelet

import (
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/skiffhq/skiff/kubelet/crilog"
	kubeletv1 "github.com/skiffhq/skiff/proto/kubelet/v1"
)

// A container's log is kept in the CRI log format (package crilog) by every runtime:
// each line with the time it was written and its stream. The log server prints it as
// `kubectl logs` does: the lines alone, or with --timestamps each prefixed with its
// time; --since-time and --since drop what was written before; --limit-bytes ends the
// output early.

// logOptions are the printing options req asks for, now being the kubelet's clock (for
// since_seconds), or an InvalidArgument error in Kubernetes' words.
func logOptions(req *kubeletv1.ContainerLogsRequest, now time.Time) (crilog.Options, error) {
	opts := crilog.Options{Timestamps: req.GetTimestamps()}
	if req.SinceSeconds != nil && req.SinceTime != nil {
		return opts, status.Error(codes.InvalidArgument, "sinceSeconds: Forbidden: at most one of `sinceTime` or `sinceSeconds` may be specified")
	}
	if req.SinceSeconds != nil {
		if req.GetSinceSeconds() < 1 {
			return opts, status.Errorf(codes.InvalidArgument, "sinceSeconds: Invalid value: %d: must be greater than 0", req.GetSinceSeconds())
		}
		opts.Since = now.Add(-time.Duration(req.GetSinceSeconds()) * time.Second)
	}
	if req.SinceTime != nil {
		if err := req.GetSinceTime().CheckValid(); err != nil {
			return opts, status.Errorf(codes.InvalidArgument, "sinceTime: Invalid value: %v", err)
		}
		opts.Since = req.GetSinceTime().AsTime()
	}
	if req.LimitBytes != nil {
		if req.GetLimitBytes() < 1 {
			return opts, status.Errorf(codes.InvalidArgument, "limitBytes: Invalid value: %d: must be greater than 0", req.GetLimitBytes())
		}
		opts.LimitBytes = req.GetLimitBytes()
	}
	return opts, nil
}
