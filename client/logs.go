package client

import (
	"context"
	"errors"
	"fmt"
	"io"

	"google.golang.org/grpc"

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
}

// Logs copies a pod's container output to w, as the kubelet of its node holds it. A
// stream broken midway is an error (it is not repeated, which would print twice).
func (c *Conn) Logs(ctx context.Context, namespace, name string, opts LogOptions, w io.Writer) error {
	return c.invoke(ctx, once, 0, func(ctx context.Context, cc *grpc.ClientConn) error {
		stream, err := apiv1.NewPodsClient(cc).Logs(ctx, &apiv1.PodLogsRequest{
			Namespace: namespace, Name: name, Container: opts.Container, Follow: opts.Follow, TailLines: opts.TailLines, Previous: opts.Previous,
		})
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
