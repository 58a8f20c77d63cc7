package apiserver

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	kjson "sigs.k8s.io/json"

	"github.com/skiffhq/skiff/kinds"
	legacyv1 "github.com/skiffhq/skiff/proto/legacy/v1"
)

// Objects written before Skiff took Kubernetes' types as its model were stored as
// Skiff's own protobuf messages (proto/legacy/v1), without the k8s\x00 prefix. Their
// JSON form was Kubernetes' by design, so an old object is read by decoding its message
// and its JSON into the Kubernetes type. Every write stores the new encoding, so an old
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
	js, err := protojson.Marshal(msg)
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

// current returns a stored value in the current encoding: old-encoded values converted,
// others as they are.
func current(info *kinds.Info, value []byte) []byte {
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
