package apiserver

import (
	"errors"
	"strconv"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
)

// Watch streams changes. Objects go out as their stored bytes plus the resourceVersion
// (see appendWireObject), written straight into gRPC's pooled buffers as a
// RawWatchResponse (see encodeWatchResponse): the server never decodes what it streams
// and copies each event's bytes once per watcher, so a thousand watchers cost a
// thousand sends, not a thousand decodes and encodes.
func (r *resources) Watch(req *apiv1.WatchRequest, stream apiv1.Resources_WatchServer) error {
	info, err := lookupKind(req.GetKind())
	if err != nil {
		return err
	}
	after, err := parseRV(info, "", req.GetResourceVersion())
	if err != nil {
		return err
	}
	w, cs, err := r.openWatch(info, watchOptions{namespace: req.GetNamespace(), labelSelector: req.GetLabelSelector(),
		fieldSelector: req.GetFieldSelector(), after: after, bookmarks: req.GetAllowBookmarks()})
	if err != nil {
		return err
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
		if evs, err = r.atRest.openEvents(info, evs); err != nil {
			return storeError(info, "", err)
		}
		if cs != nil {
			if evs, err = cs.filterEvents(evs); err != nil {
				return err
			}
			if len(evs) == 0 {
				continue
			}
		}
		resp := encodeWatchResponse(info, evs)
		if err := stream.SendMsg(resp); err != nil {
			return err
		}
	}
}

// emptyObjects holds each kind's empty object, encoded: a bookmark's object.
var emptyObjects = func() map[string][]byte {
	m := map[string][]byte{}
	for _, in := range kinds.All() {
		m[in.Kind] = kinds.MustEncode(in.New())
	}
	return m
}()

// encodedMessage is a message already in gRPC's wire form; serverCodec sends it as is
// and gRPC frees its buffers once written.
type encodedMessage struct{ data mem.BufferSlice }

// serverCodec is the proto codec, plus encodedMessage.
type serverCodec struct{ encoding.CodecV2 }

func (c serverCodec) Marshal(v any) (mem.BufferSlice, error) {
	if m, ok := v.(*encodedMessage); ok {
		return m.data, nil
	}
	return c.CodecV2.Marshal(v)
}

// RawWatchResponse and RawWatchEvent field numbers (proto/api/v1/api.proto).
const (
	rawWatchEventsField protowire.Number = 1
	rawEventTypeField   protowire.Number = 1
	rawEventObjectField protowire.Number = 2
)

// pooledMin is the smallest response put in a pooled buffer. A smaller one (a watch of
// single ~1 KiB objects sends mostly those) costs less as a plain allocation: a pooled
// buffer carries a reference count and a trip through sync.Pool, and a freed one
// lingers uncached.
const pooledMin = 8 << 10

// encodeWatchResponse writes a RawWatchResponse of evs into one buffer: pooled when it
// is large, allocated when it is small.
func encodeWatchResponse(info *kinds.Info, evs []store.Event) *encodedMessage {
	type event struct {
		typ      string
		prepared kinds.WithResourceVersion
		obj      int // the encoded Object's length
		inner    int // the encoded RawWatchEvent's length
	}
	events := make([]event, len(evs))
	total := 0
	for i := range evs {
		ev := &evs[i]
		var value []byte
		if ev.Type == store.Bookmark {
			value = emptyObjects[info.Kind] // an object of the kind carrying only the resourceVersion
			if info.Custom != nil {
				value = kinds.MustEncode(info.New())
			}
		} else {
			value = current(info, ev.Object.Value)
		}
		e := &events[i]
		e.typ = ev.Type.String()
		e.prepared = kinds.PrepareResourceVersion(value, ev.Object.ModRevision)
		e.obj = wireObjectSize(info, e.prepared)
		e.inner = protowire.SizeTag(rawEventTypeField) + protowire.SizeBytes(len(e.typ)) +
			protowire.SizeTag(rawEventObjectField) + protowire.SizeBytes(e.obj)
		total += protowire.SizeTag(rawWatchEventsField) + protowire.SizeBytes(e.inner)
	}
	var bp *[]byte
	if total >= pooledMin {
		bp = client.BufferPool().Get(total)
	} else {
		b := make([]byte, total)
		bp = &b
	}
	b := (*bp)[:0]
	for i := range events {
		e := &events[i]
		b = protowire.AppendTag(b, rawWatchEventsField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(e.inner))
		b = protowire.AppendTag(b, rawEventTypeField, protowire.BytesType)
		b = protowire.AppendString(b, e.typ)
		b = protowire.AppendTag(b, rawEventObjectField, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(e.obj))
		b = appendWireObject(b, info, e.prepared)
	}
	*bp = b
	if total >= pooledMin {
		return &encodedMessage{data: mem.BufferSlice{mem.NewBuffer(bp, client.BufferPool())}}
	}
	return &encodedMessage{data: mem.BufferSlice{mem.SliceBuffer(b)}}
}
