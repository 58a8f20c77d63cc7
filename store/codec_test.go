package store

import (
	"errors"
	"testing"

	"github.com/hashicorp/raft"
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
