package apiserver

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
	"github.com/skiffhq/skiff/store"
)

// Objects are stored as their protobuf encoding without metadata.resourceVersion: the
// resourceVersion is the store's ModRevision, set on the way out. Labels and the fields
// that selectors and indexes use travel beside the value, so the store filters without
// decoding.

// The fields the store indexes, by kind (store.Config.IndexedFields). An equality field
// selector on one of them lists, and watches, through the index.
var indexedFields = map[string][]string{
	kinds.Pod:   {"spec.nodeName"},
	kinds.Event: {"involvedObject.uid"},
}

// selectableFields are the fields a field selector may name, by kind.
var selectableFields = map[string][]string{
	kinds.Pod:   {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"},
	kinds.Event: {"metadata.name", "metadata.namespace", "involvedObject.uid", "involvedObject.name", "involvedObject.kind", "involvedObject.namespace", "reason", "type"},
}

func selectable(kind string) []string {
	if f, ok := selectableFields[kind]; ok {
		return f
	}
	return []string{"metadata.name", "metadata.namespace"}
}

// fieldsOf extracts the selectable fields of obj (metadata.name and .namespace are taken
// from the key when matching, so they are not stored).
func fieldsOf(obj kinds.Object) map[string]string {
	switch o := obj.(type) {
	case *corev1.Pod:
		return map[string]string{"spec.nodeName": o.GetSpec().GetNodeName(), "status.phase": o.GetStatus().GetPhase()}
	case *corev1.Event:
		io := o.GetInvolvedObject()
		return map[string]string{
			"involvedObject.uid": io.GetUid(), "involvedObject.name": io.GetName(), "involvedObject.kind": io.GetKind(),
			"involvedObject.namespace": io.GetNamespace(), "reason": o.GetReason(), "type": o.GetType(),
		}
	}
	return nil
}

// fieldValue reads one selectable field of a stored object.
func fieldValue(o *store.Object, field string) string {
	switch field {
	case "metadata.name":
		return o.Name
	case "metadata.namespace":
		return o.Namespace
	}
	return o.Fields[field]
}

func keyOf(info *kinds.Info, md *corev1.ObjectMeta) store.Key {
	return store.Key{Kind: info.Kind, Namespace: md.GetNamespace(), Name: md.GetName()}
}

// encode prepares obj for the store: its bytes without resourceVersion, its labels and
// its fields.
func encode(obj kinds.Object) (value []byte, labels, fields map[string]string, err error) {
	md := kinds.Meta(obj)
	rv := md.ResourceVersion
	md.ResourceVersion = ""
	value, err = proto.Marshal(obj)
	md.ResourceVersion = rv
	if err != nil {
		return nil, nil, nil, fmt.Errorf("encode %s %s: %w", kinds.Of(obj).Kind, md.GetName(), err)
	}
	return value, md.GetLabels(), fieldsOf(obj), nil
}

// decode turns a stored object back into its message, with resourceVersion set.
func decode(info *kinds.Info, o *store.Object) (kinds.Object, error) {
	obj := info.New()
	if err := proto.Unmarshal(o.Value, obj); err != nil {
		return nil, fmt.Errorf("decode stored %s: %w", o.Key, err)
	}
	kinds.Meta(obj).ResourceVersion = strconv.FormatInt(o.ModRevision, 10)
	return obj, nil
}

// The wire encoding, without decoding: an object's message is its stored bytes followed
// by a second `metadata` field holding only resourceVersion, which protobuf parsers merge
// into the first. Every kind has metadata as field 3 and ObjectMeta has resourceVersion as
// field 5 (checked in init).
const (
	metadataField        protowire.Number = 3
	resourceVersionField protowire.Number = 5
)

// objectField is the field number of each kind in the Object envelope.
var objectField = map[string]protowire.Number{}

func init() {
	oneof := (&apiv1.Object{}).ProtoReflect().Descriptor().Oneofs().ByName("kind")
	for _, in := range kinds.All() {
		md := in.New().ProtoReflect().Descriptor()
		if f := md.Fields().ByName("metadata"); f == nil || f.Number() != metadataField {
			panic("apiserver: " + in.Kind + ".metadata is not field 3")
		}
		for i := 0; i < oneof.Fields().Len(); i++ {
			f := oneof.Fields().Get(i)
			if f.Message().FullName() == md.FullName() {
				objectField[in.Kind] = f.Number()
			}
		}
		if _, ok := objectField[in.Kind]; !ok {
			panic("apiserver: kind " + in.Kind + " is missing from the Object envelope")
		}
	}
	rv := (&corev1.ObjectMeta{}).ProtoReflect().Descriptor().Fields().ByName("resource_version")
	if rv.Number() != resourceVersionField || rv.Kind() != protoreflect.StringKind {
		panic("apiserver: ObjectMeta.resourceVersion is not string field 5")
	}
}

// storedObject is the reply for an object just written: its stored bytes, sent as they
// are (see appendWireObject) instead of encoding the object again. The message carries
// the envelope as unknown fields, which protobuf marshals verbatim and a receiver parses
// as the object: it is only for sending, and reads as empty in this process.
func storedObject(kind string, value []byte, rev int64) *apiv1.Object {
	out := &apiv1.Object{}
	out.ProtoReflect().SetUnknown(appendWireObject(make([]byte, 0, wireObjectSize(kind, len(value), rev)), kind, value, rev))
	return out
}

// wireObjectSize is the length of what appendWireObject appends.
func wireObjectSize(kind string, valueLen int, rev int64) int {
	var rvs [20]byte
	inner := protowire.SizeTag(resourceVersionField) + protowire.SizeBytes(len(strconv.AppendInt(rvs[:0], rev, 10)))
	suffix := protowire.SizeTag(metadataField) + protowire.SizeBytes(inner)
	return protowire.SizeTag(objectField[kind]) + protowire.SizeBytes(valueLen+suffix)
}

// appendWireObject appends the encoded Object envelope of a stored object, with
// resourceVersion rev.
func appendWireObject(b []byte, kind string, value []byte, rev int64) []byte {
	var rvs [20]byte
	rvBytes := strconv.AppendInt(rvs[:0], rev, 10)
	// metadata{resourceVersion: rev}
	inner := protowire.SizeTag(resourceVersionField) + protowire.SizeBytes(len(rvBytes))
	suffix := protowire.SizeTag(metadataField) + protowire.SizeBytes(inner)
	b = protowire.AppendTag(b, objectField[kind], protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len(value)+suffix))
	b = append(b, value...)
	b = protowire.AppendTag(b, metadataField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	b = protowire.AppendTag(b, resourceVersionField, protowire.BytesType)
	b = protowire.AppendBytes(b, rvBytes)
	return b
}
