package client

import (
	"context"
	"fmt"
	"io"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// EventType is how a watched object changed.
type EventType string

const (
	Added    EventType = "ADDED"
	Modified EventType = "MODIFIED"
	Deleted  EventType = "DELETED"
	// Bookmark carries only a resourceVersion: everything before it has been sent.
	Bookmark EventType = "BOOKMARK"
)

// Event is one change. For Bookmark, Object carries only metadata.resourceVersion.
type Event[T kinds.Object] struct {
	Type            EventType
	Object          T
	ResourceVersion string
}

// WatchOptions selects a watch.
type WatchOptions struct {
	ListOptions
	// ResourceVersion: deliver every change after it; "" starts from now.
	ResourceVersion string
	// AllowBookmarks asks for periodic Bookmark events while nothing changes.
	AllowBookmarks bool
}

// Watcher reads one watch stream. It ends on the first error: the caller resumes with a
// new watch from the last resourceVersion it saw (IsTooOld: re-list first). It also
// ends when the Conn's calls move to another server (see Conn.watchOn), so that the
// resumed watch follows them.
type Watcher[T kinds.Object] struct {
	c      *Client[T]
	stream apiv1.Resources_WatchClient
	cancel context.CancelFunc
	server string
}

// Watch starts a watch on some API server, failing over while none will take it.
func (c *Client[T]) Watch(ctx context.Context, namespace string, opts WatchOptions) (*Watcher[T], error) {
	req := &apiv1.WatchRequest{
		Kind: c.info.Kind, Namespace: namespace, LabelSelector: opts.LabelSelector, FieldSelector: opts.FieldSelector,
		ResourceVersion: opts.ResourceVersion, AllowBookmarks: opts.AllowBookmarks,
	}
	w := &Watcher[T]{c: c}
	err := c.conn.invoke(ctx, idempotent, 0, func(_ context.Context, cc *grpc.ClientConn) error {
		sctx, cancel := context.WithCancel(ctx)
		stream, err := apiv1.NewResourcesClient(cc).Watch(sctx, req)
		var md metadata.MD
		if err == nil {
			md, err = stream.Header() // the server sends headers once the watch is set up
		}
		if err == nil && md == nil {
			// It ended without: refused (too many watches or requests, forbidden, ...).
			// The status is what the first receive returns.
			if err = stream.RecvMsg(new(apiv1.WatchResponse)); err == nil || err == io.EOF {
				err = status.Error(codes.Unavailable, "the watch ended before it started")
			}
		}
		if err != nil {
			cancel()
			return err
		}
		w.stream, w.server = stream, cc.Target()
		unregister := c.conn.watchOn(strings.TrimPrefix(cc.Target(), "passthrough:///"), cancel)
		w.cancel = func() { cancel(); unregister() }
		return nil
	})
	if err != nil {
		return nil, err
	}
	return w, nil
}

// Server is the API server the watch is on.
func (w *Watcher[T]) Server() string { return w.server }

// Next returns the next events: all events of one or more whole revisions, in order.
func (w *Watcher[T]) Next() ([]Event[T], error) {
	resp, err := w.stream.Recv()
	if err != nil {
		w.Stop() // ended: release it, for a caller that resumes without Stop
		return nil, err
	}
	out := make([]Event[T], 0, len(resp.GetEvents()))
	for _, ev := range resp.GetEvents() {
		obj, err := w.c.unwrap(ev.GetObject())
		if err != nil {
			return nil, fmt.Errorf("watch %s: %w", w.c.info.Plural, err)
		}
		out = append(out, Event[T]{Type: EventType(ev.GetType()), Object: obj, ResourceVersion: obj.GetResourceVersion()})
	}
	return out, nil
}

// Stop ends the watch.
func (w *Watcher[T]) Stop() { w.cancel() }
