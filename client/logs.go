package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/timestamppb"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// LogOptions select a pod's output.
type LogOptions struct {
	// Container names the container; empty means the pod's only one.
	Container string
	// Follow streams output until the container exits or ctx ends.
	Follow bool
	// TailLines, when set, starts with the last *TailLines lines written so far (nil:
	// all of them).
	TailLines *int64
	// Previous reads the container's previous run (before its last restart).
	Previous bool
	// Timestamps begins each line with the time it was written (RFC 3339 with
	// nanoseconds) and a space.
	Timestamps bool
	// SinceSeconds or SinceTime, at most one, keep only what was written in the last
	// seconds (by the node's clock) or at or after a time.
	SinceSeconds *int64
	SinceTime    *time.Time
	// LimitBytes, when set, ends the output after that many bytes.
	LimitBytes *int64
}

// Logs copies a pod's container output to w, as the kubelet of its node holds it. A
// stream broken midway is an error (it is not repeated, which would print twice).
func (c *Conn) Logs(ctx context.Context, namespace, name string, opts LogOptions, w io.Writer) error {
	return c.invoke(ctx, once, 0, func(ctx context.Context, cc *grpc.ClientConn) error {
		req := &apiv1.PodLogsRequest{
			Namespace: namespace, Name: name, Container: opts.Container, Follow: opts.Follow, TailLines: opts.TailLines, Previous: opts.Previous,
			Timestamps: opts.Timestamps, SinceSeconds: opts.SinceSeconds, LimitBytes: opts.LimitBytes,
		}
		if opts.SinceTime != nil {
			req.SinceTime = timestamppb.New(*opts.SinceTime)
		}
		stream, err := apiv1.NewPodsClient(cc).Logs(ctx, req)
		if err != nil {
			return err
		}
		for {
			chunk, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if _, err := w.Write(chunk.GetData()); err != nil {
				return fmt.Errorf("logs of pod %s/%s: %w", namespace, name, err)
			}
		}
	})
}
