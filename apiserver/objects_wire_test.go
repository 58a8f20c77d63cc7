package apiserver

import (
	"bytes"
	"math"
	"testing"

	"google.golang.org/protobuf/proto"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
)

// Buffers are sized with wireObjectSize: it must be exactly what appendWireObject writes.
func TestWireObjectSize(t *testing.T) {
	for _, size := range []int{0, 1, 127, 128, 16 << 10, 1<<20 + 512<<10} {
		for _, rev := range []int64{1, 1 << 40, math.MaxInt64} {
			for kind := range objectField {
				value := bytes.Repeat([]byte{1}, size)
				if got, want := len(appendWireObject(nil, kind, value, rev)), wireObjectSize(kind, size, rev); got != want {
					t.Errorf("%s of %d bytes at revision %d: appended %d bytes, wireObjectSize says %d", kind, size, rev, got, want)
				}
			}
		}
	}
}

// encodeWatchResponse writes what marshalling the RawWatchResponse would.
func TestEncodeWatchResponse(t *testing.T) {
	value := bytes.Repeat([]byte{0x0a, 0x00}, 300) // an empty field 1, repeated: any bytes do
	evs := []store.Event{
		{Type: store.Added, Revision: 7, Object: store.Object{Value: value, ModRevision: 7}},
		{Type: store.Modified, Revision: 8, Object: store.Object{Value: value[:3], ModRevision: 8}},
		{Type: store.Deleted, Revision: 1 << 40, Object: store.Object{ModRevision: 1 << 40}},
	}
	want := &apiv1.RawWatchResponse{}
	for _, ev := range evs {
		want.Events = append(want.Events, &apiv1.RawWatchEvent{Type: ev.Type.String(),
			Object: appendWireObject(nil, "Pod", ev.Object.Value, ev.Object.ModRevision)})
	}
	wantBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	msg := encodeWatchResponse("Pod", evs)
	got := msg.data.Materialize()
	msg.data.Free()
	if !bytes.Equal(got, wantBytes) {
		t.Fatalf("encoded %d bytes, differ from the marshalled RawWatchResponse's %d", len(got), len(wantBytes))
	}
}
