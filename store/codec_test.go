package store

import (
	"errors"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/skiffhq/skiff/proto/store/v1"
)

func TestDecodeRejectsBadCommands(t *testing.T) {
	good, _ := encodeTxn([]Op{{Type: Create, Key: key("a"), Value: []byte("v")}})
	if _, ops, err := decodeCommand(good, 100); err != nil || len(ops) != 1 {
		t.Fatalf("good command: %v", err)
	}
	for name, ops := range map[string][]Op{
		"empty txn":     {},
		"no kind":       {{Type: Create, Key: Key{Name: "a"}}},
		"no name":       {{Type: Create, Key: Key{Kind: "Pod"}}},
		"NUL in name":   {{Type: Create, Key: Key{Kind: "Pod", Name: "a\x00b"}}},
		"bad type":      {{Type: OpType(9), Key: key("a")}},
		"too large":     {{Type: Create, Key: key("a"), Value: make([]byte, 101)}},
		"neg revision":  {{Type: Update, Key: key("a"), IfRevision: -1}},
		"empty field":   {{Type: Create, Key: key("a"), Fields: map[string]string{"": "x"}}},
		"NUL in field":  {{Type: Create, Key: key("a"), Fields: map[string]string{"f": "x\x00"}}},
		"zero-op value": {{Key: key("a")}},
	} {
		cmd, err := encodeTxn(ops)
		if err != nil {
			t.Fatal(err)
		}
		_, _, err = decodeCommand(cmd, 100)
		if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	if _, _, err := decodeCommand([]byte{0xff, 0x01}, 100); !errors.Is(err, ErrInvalid) {
		t.Errorf("garbage: %v", err)
	}
	if _, _, err := decodeCommand(nil, 100); !errors.Is(err, ErrInvalid) {
		t.Errorf("empty: %v", err)
	}
}

// FuzzApplyCommand feeds arbitrary bytes to the state machine as a committed entry: the
// decoder must reject or accept them without panicking, and a rejected command must
// change nothing.
func FuzzApplyCommand(f *testing.F) {
	for _, ops := range [][]Op{
		{{Type: Create, Key: key("a"), Value: []byte("v"), Labels: map[string]string{"app": "x"}, Fields: map[string]string{"spec.nodeName": "n"}}},
		{{Type: Update, Key: key("a"), Value: []byte("w"), IfRevision: 1}},
		{{Type: Delete, Key: key("a"), IfUID: "u"}},
		{{Type: Create, Key: key("b")}, {Type: Delete, Key: key("b")}},
	} {
		cmd, _ := encodeTxn(ops)
		f.Add(cmd)
	}
	f.Add(encodeLeaderMark("n1"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		tf := newTestFSM(t, 16)
		tf.one(Op{Type: Create, Key: key("a"), Value: []byte("seed"), UID: "u"})
		before, _, _ := tf.list("ConfigMap", ListOptions{})
		out := tf.f.ApplyBatch([]*raft.Log{{Index: 2, Type: raft.LogCommand, Data: data}})
		o := out[0].(*txnOutcome)
		if tf.f.applied.Load() != 2 {
			t.Fatalf("revision did not advance to the entry's index")
		}
		if o.err != nil {
			after, _, _ := tf.list("ConfigMap", ListOptions{})
			if len(after) != len(before) {
				t.Fatalf("rejected command changed the state: %v", o.err)
			}
		}
	})
}

// TestEncodeRecord: the stored record written by hand reads back, through the protobuf
// module, as the Record it stands for (zero values, empty map keys and values, long
// values whose lengths take several bytes), and costs one allocation.
func TestEncodeRecord(t *testing.T) {
	for name, o := range map[string]*Object{
		"zero":  {},
		"value": {Value: []byte("v"), UID: "u", CreateRevision: 1, ModRevision: 1 << 40},
		"maps": {Value: make([]byte, 70_000), UID: "0f1e2d3c", Labels: map[string]string{"app": "web", "empty": "", "": "no key"},
			Fields: map[string]string{"spec.nodeName": "n1", "status.phase": strings.Repeat("p", 300)}, CreateRevision: 7, ModRevision: 9},
		"empty maps": {Labels: map[string]string{}, Fields: map[string]string{}, ModRevision: 3},
	} {
		var got storev1.Record
		if err := proto.Unmarshal(encodeRecord(o), &got); err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if want := objectToRecord(o); !proto.Equal(&got, want) {
			t.Errorf("%s: read back %v, want %v", name, &got, want)
		}
		if want, _ := proto.Marshal(objectToRecord(o)); len(encodeRecord(o)) != len(want) {
			t.Errorf("%s: %d bytes, the protobuf module writes %d", name, len(encodeRecord(o)), len(want))
		}
	}
	o := &Object{Value: make([]byte, 1500), UID: "u", Labels: map[string]string{"app": "web"}, Fields: map[string]string{"spec.nodeName": "n1"}, ModRevision: 5}
	if n := testing.AllocsPerRun(100, func() { encodeRecord(o) }); n != 1 {
		t.Errorf("%v allocations a record, want 1", n)
	}
}
