package store

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
	"google.golang.org/protobuf/encoding/protowire"
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

// FuzzDecodeRecord: whatever the record reader reads, the protobuf module reads the
// same; what it declines, decodeRecord reads the generic way. Seeds: what encodeRecord
// writes, and wire forms it never writes (repeated scalars, an empty map entry, an
// unknown field, a non-UTF-8 UID, a wrong wire type).
func FuzzDecodeRecord(f *testing.F) {
	for _, o := range []*Object{
		{},
		{Value: []byte("v"), UID: "u", CreateRevision: 1, ModRevision: 1 << 40},
		{Value: make([]byte, 3000), UID: "0f1e", Labels: map[string]string{"app": "web", "": ""}, Fields: map[string]string{"spec.nodeName": "n1"}, ModRevision: 9},
	} {
		f.Add(encodeRecord(o))
	}
	str := func(num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
	}
	varint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	f.Add(append(varint(recordModRevisionField, 3), varint(recordModRevisionField, 4)...))
	f.Add(append(str(recordValueField, "a"), str(recordLabelsField, "")...))
	f.Add(append(str(recordUIDField, "u"), varint(40, 1)...))
	f.Add(str(recordUIDField, "\xff"))
	f.Add(varint(recordValueField, 1))
	f.Fuzz(func(t *testing.T, data []byte) {
		var r storev1.Record
		perr := proto.Unmarshal(data, &r)
		k := Key{Kind: "Pod", Namespace: "default", Name: "a"}
		got, ok := readRecord(k, data, true)
		// Without the maps, the same record is read (or declined) the same, less them.
		bare, bareOK := readRecord(k, data, false)
		if bareOK != ok {
			t.Fatalf("read with the maps: %v; without: %v", ok, bareOK)
		}
		if ok && (bare.Labels != nil || bare.Fields != nil || !reflect.DeepEqual(bare, Object{Key: got.Key, Value: got.Value, UID: got.UID,
			CreateRevision: got.CreateRevision, ModRevision: got.ModRevision})) {
			t.Fatalf("read without the maps %+v, want %+v less its maps", bare, got)
		}
		if !ok {
			if _, err := decodeRecord(k, data); (err == nil) != (perr == nil) {
				t.Fatalf("decodeRecord: %v; the protobuf module: %v", err, perr)
			}
			return
		}
		if perr != nil {
			t.Fatalf("read %+v where the protobuf module fails: %v", got, perr)
		}
		if want := recordToObject(k, &r); !reflect.DeepEqual(got, want) {
			t.Fatalf("read %+v, want %+v", got, want)
		}
	})
}

// FuzzDecodeTxnOps: whatever the transaction decoder reads, the protobuf module reads
// the same; whatever it declines, decodeCommand still reads the generic way. Seeds:
// what encodeTxn writes, and wire forms it never writes (empty keys and values in map
// entries, repeated scalars, an unknown field, a non-UTF-8 name, two Txn fields).
func FuzzDecodeTxnOps(f *testing.F) {
	for _, ops := range [][]Op{
		{{Type: Create, Key: Key{Kind: "Pod", Namespace: "default", Name: "a"}, Value: []byte("v"), UID: "u",
			Labels: map[string]string{"app": "x", "": ""}, Fields: map[string]string{"spec.nodeName": "n"}}},
		{{Type: Update, Key: key("a"), Value: []byte("w"), IfRevision: 1 << 40}, {Type: Delete, Key: key("b"), IfUID: "u"}},
		{{Type: OpType(9), Key: key("a"), IfRevision: -1}},
		{},
	} {
		cmd, _ := encodeTxn(ops)
		f.Add(cmd)
		f.Add(append(cmd, cmd...))
	}
	op := func(fields ...[]byte) []byte {
		var b []byte
		for _, fl := range fields {
			b = append(b, fl...)
		}
		txn := protowire.AppendBytes(protowire.AppendTag(nil, txnOpsField, protowire.BytesType), b)
		return protowire.AppendBytes(protowire.AppendTag(nil, commandTxnField, protowire.BytesType), txn)
	}
	str := func(num protowire.Number, s string) []byte {
		return protowire.AppendString(protowire.AppendTag(nil, num, protowire.BytesType), s)
	}
	varint := func(num protowire.Number, v uint64) []byte {
		return protowire.AppendVarint(protowire.AppendTag(nil, num, protowire.VarintType), v)
	}
	f.Add(op(varint(opTypeField, 1), str(opKindField, "Pod"), str(opNameField, "a"), str(opNameField, "b"), varint(opTypeField, 2)))
	f.Add(op(str(opKindField, "Pod"), str(opNameField, "a"), str(opLabelsField, ""), str(opFieldsField, string(str(mapValueField, "v")))))
	f.Add(op(str(opKindField, "Pod"), str(opNameField, "a"), varint(40, 1)))
	f.Add(op(str(opKindField, "Pod"), str(opNameField, "\xff")))
	f.Add(op(str(opKindField, "Pod"), varint(opNameField, 1)))
	f.Add(op(varint(opTypeField, 1<<40), str(opKindField, "Pod"), str(opNameField, "a")))
	f.Add(encodeLeaderMark("n1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var cmd storev1.Command
		perr := proto.Unmarshal(data, &cmd)
		ops, ok := decodeTxnOps(data)
		if !ok {
			return
		}
		txn, isTxn := cmd.Command.(*storev1.Command_Txn)
		if perr != nil || !isTxn {
			t.Fatalf("read %d ops where the protobuf module reads %v, %v", len(ops), perr, cmd.Command)
		}
		want := opsFromProto(txn.Txn.GetOps())
		if len(ops) != len(want) {
			t.Fatalf("%d ops, want %d", len(ops), len(want))
		}
		for i := range ops {
			if !sameOp(ops[i], want[i]) {
				t.Fatalf("op %d = %+v, want %+v", i, ops[i], want[i])
			}
		}
	})
}

// sameOp: a and b are the same operation (an empty value or map is no value or map).
func sameOp(a, b Op) bool {
	return a.Type == b.Type && a.Key == b.Key && bytes.Equal(a.Value, b.Value) && a.UID == b.UID &&
		maps.Equal(a.Labels, b.Labels) && maps.Equal(a.Fields, b.Fields) && a.IfRevision == b.IfRevision && a.IfUID == b.IfUID
}

// TestDecodeTxnOpsAllocations: reading a transaction costs the ops, their strings,
// values and maps, nothing for the messages around them.
func TestDecodeTxnOpsAllocations(t *testing.T) {
	cmd, _ := encodeTxn([]Op{{Type: Create, Key: Key{Kind: "Pod", Namespace: "default", Name: "a"}, Value: make([]byte, 1500), UID: "u",
		Labels: map[string]string{"app": "web"}, Fields: map[string]string{"spec.nodeName": "n1"}}})
	if _, ok := decodeTxnOps(cmd); !ok {
		t.Fatal("a transaction declined")
	}
	// The op slice, kind, namespace, name, value, uid, and each map with its key and value.
	if n := testing.AllocsPerRun(100, func() { decodeCommand(cmd, 1<<20) }); n > 12 {
		t.Errorf("%v allocations to decode one op, want at most 12", n)
	}
}

// BenchmarkCodec: what each member pays for an entry of a hundred pod creations (a
// ReplicaSet's batch): decoding it, by hand and by the protobuf module, and encoding one
// pod's record, by hand and by the module.
func BenchmarkCodec(b *testing.B) {
	pod := func(i int) Op {
		return Op{Type: Create, Key: Key{Kind: "Pod", Namespace: "default", Name: fmt.Sprintf("web-5d8f7c9b6-%05d", i)},
			Value: make([]byte, 1500), UID: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0",
			Labels: map[string]string{"app": "web", "pod-template-hash": "5d8f7c9b6"},
			Fields: map[string]string{"spec.nodeName": "", "status.phase": "Pending"}}
	}
	var ops []Op
	for i := range 100 {
		ops = append(ops, pod(i))
	}
	entry, _ := encodeTxn(ops)
	b.Run("decode100", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := decodeCommand(entry, 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("decode100_generic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var cmd storev1.Command
			if err := proto.Unmarshal(entry, &cmd); err != nil {
				b.Fatal(err)
			}
			if err := validateOps(opsFromProto(cmd.GetTxn().GetOps()), 1<<20); err != nil {
				b.Fatal(err)
			}
		}
	})
	o := &Object{Key: ops[0].Key, Value: ops[0].Value, UID: ops[0].UID, Labels: ops[0].Labels, Fields: ops[0].Fields, CreateRevision: 1 << 20, ModRevision: 1 << 20}
	b.Run("record", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			encodeRecord(o)
		}
	})
	b.Run("record_generic", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := proto.Marshal(objectToRecord(o)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
