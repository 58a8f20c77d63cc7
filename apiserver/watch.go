package apiserver

import (
	"errors"
	"strconv"

	"google.golang.org/grpc/metadata"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
)

// Watch streams changes. Objects go out as their stored bytes plus the resourceVersion
// (see appendWireObject): the server never decodes what it streams, so a thousand
// watchers cost a thousand sends, not a thousand decodes and encodes.
func (r *resources) Watch(req *apiv1.WatchRequest, stream apiv1.Resources_WatchServer) error {
	info, err := lookupKind(req.GetKind())
	if err != nil {
		return err
	}
	after, err := parseRV(info, "", req.GetResourceVersion())
	if err != nil {
		return err
	}
	pred, field, value, err := selector(info, req.GetLabelSelector(), req.GetFieldSelector())
	if err != nil {
		return err
	}
	// An equality on an indexed field (a kubelet's spec.nodeName=NODE) serves the watch
	// from the store's watch index: the watcher is woken for its node's pods only.
	opts := store.WatchOptions{Kind: info.Kind, After: after, Predicate: pred, IndexField: field, IndexValue: value}
	if info.Namespaced {
		opts.Namespace = req.GetNamespace()
	}
	if req.GetAllowBookmarks() {
		opts.ProgressInterval = r.bookmarkInterval
	}
	w, err := r.store.Watch(opts)
	if err != nil {
		return storeError(info, "", err)
	}
	defer w.Close()
	// Headers tell the client the watch is established (and from which revision), so it
	// can fail over at once if it is not.
	if err := stream.SendHeader(metadata.Pairs("x-skiff-watch-from", strconv.FormatInt(w.Revision(), 10))); err != nil {
		return err
	}
	r.watches(info.Kind, 1)
	defer r.watches(info.Kind, -1)
	ctx := stream.Context()
	for {
		evs, err := w.Next(ctx)
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				return nil // the client went away
			}
			return storeError(info, "", err)
		}
		resp := &apiv1.RawWatchResponse{Events: make([]*apiv1.RawWatchEvent, len(evs))}
		// A fresh buffer each time: gRPC may still hold the last message after SendMsg.
		var buf []byte
		offsets := make([]int, len(evs)+1)
		for i := range evs {
			ev := &evs[i]
			buf = appendWireObject(buf, info.Kind, ev.Object.Value, ev.Object.ModRevision)
			offsets[i+1] = len(buf)
		}
		for i := range evs {
			resp.Events[i] = &apiv1.RawWatchEvent{Type: evs[i].Type.String(), Object: buf[offsets[i]:offsets[i+1]]}
		}
		if err := stream.SendMsg(resp); err != nil {
			return err
		}
	}
}
