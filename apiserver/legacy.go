package apiserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	kjson "sigs.k8s.io/json"

	"github.com/skiffhq/skiff/kinds"
	legacyv1 "github.com/skiffhq/skiff/proto/legacy/v1"
	"github.com/skiffhq/skiff/store"
)

// Objects written before Skiff took Kubernetes' types as its model were stored as
// Skiff's own protobuf messages (proto/legacy/v1), without the k8s\x00 prefix. Their
// JSON form was Kubernetes' by design, so an old object is read by decoding its message
// and its JSON into the Kubernetes type, once the two ways protojson's JSON differs from
// Kubernetes' are mended (kubernetesJSON). Every write stores the new encoding, so an old
// object is converted the first time it changes; until then every read converts it.

// legacyMessages makes the old message of each kind.
var legacyMessages = map[string]func() proto.Message{
	kinds.Pod:        func() proto.Message { return &legacyv1.Pod{} },
	kinds.Node:       func() proto.Message { return &legacyv1.Node{} },
	kinds.ReplicaSet: func() proto.Message { return &legacyv1.ReplicaSet{} },
	kinds.Deployment: func() proto.Message { return &legacyv1.Deployment{} },
	kinds.ConfigMap:  func() proto.Message { return &legacyv1.ConfigMap{} },
	kinds.Event:      func() proto.Message { return &legacyv1.Event{} },
	kinds.Lease:      func() proto.Message { return &legacyv1.Lease{} },
	kinds.Namespace:  func() proto.Message { return &legacyv1.Namespace{} },
}

func isLegacy(value []byte) bool { return !bytes.HasPrefix(value, kinds.Magic) }

// decodeLegacy reads an object stored in the old encoding.
func decodeLegacy(info *kinds.Info, value []byte) (kinds.Object, error) {
	newMsg, ok := legacyMessages[info.Kind]
	if !ok {
		return nil, fmt.Errorf("%s has no encoding from before Kubernetes' types", info.Kind)
	}
	msg := newMsg()
	if err := proto.Unmarshal(value, msg); err != nil {
		return nil, fmt.Errorf("decode old-encoded %s: %w", info.Kind, err)
	}
	js, err := kubernetesJSON(msg)
	if err != nil {
		return nil, fmt.Errorf("convert old-encoded %s: %w", info.Kind, err)
	}
	obj := info.New()
	if err := kjson.UnmarshalCaseSensitivePreserveInts(js, obj); err != nil {
		return nil, fmt.Errorf("convert old-encoded %s: %w", info.Kind, err)
	}
	kinds.SetTypeMeta(obj)
	return obj, nil
}

// kubernetesJSON is an old message's JSON in Kubernetes' form: protojson's, with 64-bit
// integers as numbers (protojson quotes them, as the old skiffctl undid when it printed
// objects) and times with exactly six fractional digits (protojson writes 0, 3, 6 or 9;
// metav1.MicroTime reads exactly 6, metav1.Time any).
func kubernetesJSON(msg proto.Message) ([]byte, error) {
	js, err := protojson.Marshal(msg)
	if err != nil {
		return nil, err
	}
	var tree map[string]any
	dec := json.NewDecoder(bytes.NewReader(js))
	dec.UseNumber()
	if err := dec.Decode(&tree); err != nil {
		return nil, err
	}
	mendMessage(tree, msg.ProtoReflect().Descriptor())
	return json.Marshal(tree)
}

func mendMessage(obj map[string]any, md protoreflect.MessageDescriptor) {
	for k, v := range obj {
		fd := md.Fields().ByJSONName(k)
		switch {
		case fd == nil:
		case fd.IsMap():
			if m, ok := v.(map[string]any); ok {
				for mk, mv := range m {
					m[mk] = mendValue(mv, fd.MapValue())
				}
			}
		case fd.IsList():
			if l, ok := v.([]any); ok {
				for i := range l {
					l[i] = mendValue(l[i], fd)
				}
			}
		default:
			obj[k] = mendValue(v, fd)
		}
	}
}

func mendValue(v any, fd protoreflect.FieldDescriptor) any {
	switch fd.Kind() {
	case protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		if s, ok := v.(string); ok {
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				return json.Number(s)
			}
		}
	case protoreflect.MessageKind:
		switch fd.Message().FullName() {
		case "google.protobuf.Timestamp":
			if s, ok := v.(string); ok {
				if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
					return t.UTC().Format(metav1.RFC3339Micro)
				}
			}
		case "google.protobuf.Value": // an int-or-string, as it is
		default:
			if m, ok := v.(map[string]any); ok {
				mendMessage(m, fd.Message())
			}
		}
	}
	return v
}

// current returns a stored value in the current encoding: old-encoded values converted,
// a custom resource stored in another version of its CRD converted to info's, others as
// they are.
func current(info *kinds.Info, value []byte) []byte {
	if info.Custom != nil {
		return currentCustom(info, value)
	}
	if !isLegacy(value) {
		return value
	}
	obj, err := decodeLegacy(info, value)
	if err != nil {
		return value // the receiver refuses it, naming the problem
	}
	obj.SetResourceVersion("")
	if b, err := kinds.Encode(obj); err == nil {
		return b
	}
	return value
}

// currentCustom is current for a custom resource: in info's version, converted if it
// was stored in another.
func currentCustom(info *kinds.Info, value []byte) []byte {
	if env, err := kinds.Parse(value); err != nil || env.APIVersion == info.APIVersion {
		return value
	}
	objs, err := decodeCustom(info, []store.Object{{Value: value}})
	if err != nil {
		return value // the receiver refuses it, naming the problem
	}
	objs[0].SetResourceVersion("")
	if b, err := kinds.Encode(objs[0]); err == nil {
		return b
	}
	return value
}
