package apiserver

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"google.golang.org/grpc/codes"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// A REST watch is a chunked stream of JSON watch events, {"type":...,"object":...} one
// per line, as Kubernetes writes them, fed from the same store watch as the gRPC API's.
// A client that prefers protobuf (client-go's typed clients) gets Kubernetes' protobuf
// stream instead (application/vnd.kubernetes.protobuf;stream=watch): each event a
// metav1.WatchEvent, in protobuf without the envelope, after its length (4 bytes, big
// endian), its object in the envelope as a GET answers it (kinds.Encode).
// It starts as Kubernetes' does:
//
//   - resourceVersion N: with the changes after N (410 Expired in an ERROR event when N
//     is older than the history);
//   - resourceVersion "" or "0" (without sendInitialEvents): with an ADDED event for
//     every object that exists, then the changes;
//   - sendInitialEvents=true (with resourceVersionMatch=NotOlderThan and bookmarks
//     allowed, as client-go's watch-list sends it): the same ADDED events for the state
//     at a revision no older than resourceVersion, then a BOOKMARK annotated
//     k8s.io/initial-events-end, then the changes.
//
// With allowWatchBookmarks, an idle watch gets a BOOKMARK carrying the current
// revision; timeoutSeconds ends the watch cleanly.

// InitialEventsAnnotation marks the bookmark that ends a watch's initial events.
const InitialEventsAnnotation = metav1.InitialEventsAnnotationKey

func (a *restAPI) watch(w http.ResponseWriter, r *http.Request, req *restRequest) {
	q := r.URL.Query()
	rv, match := q.Get("resourceVersion"), q.Get("resourceVersionMatch")
	bookmarks, _ := strconv.ParseBool(q.Get("allowWatchBookmarks"))
	var sendInitial *bool
	if v := q.Get("sendInitialEvents"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			a.fail(w, r, badRequest("sendInitialEvents: Invalid value: %q: must be a boolean", v))
			return
		}
		sendInitial = &b
	}
	switch {
	case sendInitial != nil && match != string(metav1.ResourceVersionMatchNotOlderThan):
		a.fail(w, r, statusError(codes.InvalidArgument, ReasonInvalid, nil, "resourceVersionMatch: Forbidden: sendInitialEvents requires setting resourceVersionMatch to NotOlderThan"))
		return
	case sendInitial != nil && !bookmarks:
		a.fail(w, r, statusError(codes.InvalidArgument, ReasonInvalid, nil, "allowWatchBookmarks: Forbidden: sendInitialEvents requires setting allowWatchBookmarks to true"))
		return
	case sendInitial == nil && match != "":
		a.fail(w, r, statusError(codes.InvalidArgument, ReasonInvalid, nil, "resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided"))
		return
	}
	f, ok := negotiate(r.Header.Get("Accept"), hasProtobuf(req.info))
	if !ok {
		a.fail(w, r, notAcceptable(req.info))
		return
	}
	fieldSel := q.Get("fieldSelector")
	if req.name != "" {
		// A watch of one object (the legacy /watch/.../NAME form).
		sel := fields.OneTermEqualSelector("metadata.name", req.name).String()
		if fieldSel != "" {
			sel += "," + fieldSel
		}
		fieldSel = sel
	}
	ctx := r.Context()
	if v := q.Get("timeoutSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			a.fail(w, r, badRequest("timeoutSeconds: Invalid value: %q: must be a non-negative integer", v))
			return
		}
		if n > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, time.Duration(n)*time.Second)
			defer cancel()
		}
	}
	initial := sendInitial != nil && *sendInitial || sendInitial == nil && (rv == "" || rv == "0")
	var after int64
	var items []store.Object
	if initial {
		if rv == "" {
			match = "" // the current state: what NotOlderThan "" means
		}
		l, err := a.res.list(ctx, req.info, listOptions{namespace: req.namespace, labelSelector: q.Get("labelSelector"),
			fieldSelector: fieldSel, resourceVersion: rv, resourceVersionMatch: match})
		if err != nil {
			a.fail(w, r, err)
			return
		}
		after, items = l.rev, l.items
	} else if rv != "" && rv != "0" {
		n, err := parseRV(req.info, "", rv)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		after = n
	}
	wt, cs, err := a.res.openWatch(req.info, watchOptions{namespace: req.namespace, labelSelector: q.Get("labelSelector"),
		fieldSelector: fieldSel, after: after, bookmarks: bookmarks})
	var ae *apiError
	if err != nil && !(errors.As(err, &ae) && ae.status.Reason == metav1.StatusReasonExpired) {
		a.fail(w, r, err)
		return
	}
	if f == formatProtobuf {
		w.Header().Set("Content-Type", watchProtobufContentType)
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	flush := func() {
		if fl, ok := w.(http.Flusher); ok {
			fl.Flush()
		}
	}
	enc := &watchEncoder{a: a, r: r, info: req.info, format: f}
	if err != nil {
		w.Write(enc.errorEvent(err))
		flush()
		return
	}
	defer wt.Close()
	a.res.watches(req.info.Kind, 1)
	defer a.res.watches(req.info.Kind, -1)
	var buf []byte
	if err := enc.predecode(items); err != nil {
		w.Write(enc.errorEvent(err))
		return
	}
	for i := range items {
		if buf, err = enc.event(buf, "ADDED", &items[i], nil); err != nil {
			w.Write(enc.errorEvent(err))
			return
		}
	}
	if sendInitial != nil && *sendInitial {
		buf = enc.bookmark(buf, after, map[string]string{InitialEventsAnnotation: "true"})
	}
	if len(buf) > 0 {
		if _, err := w.Write(buf); err != nil {
			return
		}
	}
	flush()
	for {
		evs, err := wt.Next(ctx)
		if err != nil {
			if ctx.Err() == nil || !errors.Is(err, ctx.Err()) {
				w.Write(enc.errorEvent(storeError(req.info, "", err)))
			}
			return
		}
		if evs, err = a.res.atRest.openEvents(req.info.Stored(), evs); err != nil {
			w.Write(enc.errorEvent(storeError(req.info, "", err)))
			return
		}
		if cs != nil {
			if evs, err = cs.filterEvents(evs); err != nil {
				w.Write(enc.errorEvent(err))
				return
			}
		}
		if err := enc.predecodeEvents(evs); err != nil {
			w.Write(enc.errorEvent(err))
			return
		}
		buf = buf[:0]
		for i := range evs {
			ev := &evs[i]
			if ev.Type == store.Bookmark {
				buf = enc.bookmark(buf, ev.Object.ModRevision, nil)
				continue
			}
			if buf, err = enc.event(buf, ev.Type.String(), &ev.Object, nil); err != nil {
				w.Write(enc.errorEvent(err))
				return
			}
		}
		if _, err := w.Write(buf); err != nil {
			return
		}
		flush()
	}
}

// watchOptions select a watch's events.
type watchOptions struct {
	namespace                    string
	labelSelector, fieldSelector string
	after                        int64 // 0: from now
	bookmarks                    bool
}

// openWatch starts a store watch, for either front end. The events of a custom kind
// converted by a webhook and selected on its fields are finished by the selection it
// returns (nil for every other watch: convertedSelection.filterEvents).
func (r *resources) openWatch(info *kinds.Info, opts watchOptions) (*store.Watcher, *convertedSelection, error) {
	// A kind served over another's storage watches the stored kind's objects.
	requested := info
	info, sel, allowed, err := storageFieldSelector(info, opts.fieldSelector)
	if err != nil {
		return nil, nil, err
	}
	cs := convertedSelectionFor(requested, sel)
	ss, err := selector(info, allowed, opts.labelSelector, sel, cs.deferTo())
	if err != nil {
		return nil, nil, err
	}
	// An equality on the name (kubectl wait, rollout status) or on an indexed field (a
	// kubelet's spec.nodeName=NODE) serves the watch from the store's watch index: the
	// watcher is woken for that object's, or its node's pods', events only.
	so := store.WatchOptions{Kind: info.Kind, After: opts.after, Predicate: ss.pred, IndexField: ss.indexField, IndexValue: ss.indexValue, Name: ss.name}
	if info.Namespaced {
		so.Namespace = opts.namespace
	}
	if opts.bookmarks {
		so.ProgressInterval = r.bookmarkInterval
	}
	w, err := r.store.Watch(so)
	if err != nil {
		return nil, nil, storeError(info, "", err)
	}
	return w, cs, nil
}

// watchEncoder writes watch events in the request's format (JSON objects, or their
// Table or metadata views).
type watchEncoder struct {
	a      *restAPI
	r      *http.Request
	info   *kinds.Info
	format format
	// decoded are the objects of the batch being written, decoded at once (predecode).
	decoded map[decodedKey]kinds.Object
}

type decodedKey struct {
	key store.Key
	rev int64
}

// predecode decodes the objects of a batch at once where that is cheaper than one by
// one: a custom kind's, whose conversion webhook converts them in one review. event
// takes them from there.
func (e *watchEncoder) predecode(os []store.Object) error {
	clear(e.decoded)
	if e.info.Custom == nil || len(os) < 2 {
		return nil
	}
	objs, err := decodeCustom(e.info, os)
	if err != nil {
		return err
	}
	if e.decoded == nil {
		e.decoded = make(map[decodedKey]kinds.Object, len(os))
	}
	for i := range os {
		e.decoded[decodedKey{os[i].Key, os[i].ModRevision}] = objs[i]
	}
	return nil
}

// predecodeEvents is predecode of the objects of evs (not their bookmarks).
func (e *watchEncoder) predecodeEvents(evs []store.Event) error {
	if e.info.Custom == nil {
		return nil
	}
	os := make([]store.Object, 0, len(evs))
	for i := range evs {
		if evs[i].Type != store.Bookmark {
			os = append(os, evs[i].Object)
		}
	}
	return e.predecode(os)
}

type watchEvent struct {
	Type   string `json:"type"`
	Object any    `json:"object"`
}

// event appends one event about a stored object.
func (e *watchEncoder) event(buf []byte, typ string, o *store.Object, _ map[string]string) ([]byte, error) {
	obj, ok := e.decoded[decodedKey{o.Key, o.ModRevision}]
	if !ok {
		var err error
		if obj, err = decode(e.info, o); err != nil {
			return buf, storeError(e.info, o.Name, err)
		}
	}
	var out runtime.Object = obj
	switch e.format {
	case formatProtobuf:
		b, err := kinds.Encode(obj)
		if err != nil {
			return buf, storeError(e.info, o.Name, err)
		}
		return appendProtobufEvent(buf, typ, b), nil
	case formatTable:
		t, err := e.a.table(e.r, e.info, []kinds.Object{obj}, metav1.ListMeta{ResourceVersion: obj.GetResourceVersion()}, e.a.now())
		if err != nil {
			return buf, err
		}
		out = t
	case formatMetadata:
		out = partialMetadata(obj)
	default:
		kinds.SetTypeMeta(obj)
	}
	return appendEvent(buf, typ, out), nil
}

// bookmark appends a BOOKMARK at rev: an empty object of the kind carrying only the
// revision (and annotations).
func (e *watchEncoder) bookmark(buf []byte, rev int64, annotations map[string]string) []byte {
	obj := e.info.New()
	kinds.SetTypeMeta(obj)
	obj.SetResourceVersion(strconv.FormatInt(rev, 10))
	obj.SetAnnotations(annotations)
	var out runtime.Object = obj
	switch e.format {
	case formatProtobuf:
		return appendProtobufEvent(buf, "BOOKMARK", kinds.MustEncode(obj))
	case formatTable:
		out = &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}, ListMeta: metav1.ListMeta{ResourceVersion: obj.GetResourceVersion()}}
	case formatMetadata:
		out = partialMetadata(obj)
	}
	return appendEvent(buf, "BOOKMARK", out)
}

// errorEvent is an ERROR event carrying err as a Status.
func (e *watchEncoder) errorEvent(err error) []byte {
	st := asStatus(err)
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if e.format == formatProtobuf {
		return appendProtobufEvent(nil, "ERROR", encodeStatus(&st))
	}
	return appendEvent(nil, "ERROR", &st)
}

// watchProtobufContentType is the media type of a protobuf watch stream.
const watchProtobufContentType = kinds.ContentType + ";stream=watch"

// appendProtobufEvent appends one event of a protobuf watch stream: its length, then the
// WatchEvent, whose object is obj (in the envelope).
func appendProtobufEvent(buf []byte, typ string, obj []byte) []byte {
	ev := metav1.WatchEvent{Type: typ, Object: runtime.RawExtension{Raw: obj}}
	n := ev.Size()
	buf = binary.BigEndian.AppendUint32(buf, uint32(n))
	buf = slices.Grow(buf, n)
	m, _ := ev.MarshalToSizedBuffer(buf[len(buf) : len(buf)+n]) // a WatchEvent always encodes
	return buf[:len(buf)+m]
}

// encodeStatus is st in Kubernetes' protobuf encoding (the envelope, apiVersion v1).
func encodeStatus(st *metav1.Status) []byte {
	raw, _ := st.Marshal() // a Status always encodes
	unk := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: "v1", Kind: "Status"}, Raw: raw}
	b, _ := unk.Marshal()
	return append(slices.Clip(kinds.Magic), b...)
}

func appendEvent(buf []byte, typ string, obj any) []byte {
	b, err := json.Marshal(watchEvent{Type: typ, Object: obj})
	if err != nil {
		b, _ = json.Marshal(watchEvent{Type: "ERROR", Object: &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"},
			Status: metav1.StatusFailure, Message: err.Error(), Reason: metav1.StatusReasonInternalError, Code: http.StatusInternalServerError}})
	}
	buf = append(buf, b...)
	return append(buf, '\n')
}
