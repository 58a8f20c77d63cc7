package store

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	storev1 "github.com/skiffhq/skiff/proto/store/v1"
)

// encodeTxn turns a validated transaction into a Raft command.
func encodeTxn(ops []Op) ([]byte, error) {
	txn := &storev1.Txn{Ops: make([]*storev1.Op, len(ops))}
	for i, op := range ops {
		txn.Ops[i] = &storev1.Op{
			Type:       storev1.Op_Type(op.Type),
			Kind:       op.Key.Kind,
			Namespace:  op.Key.Namespace,
			Name:       op.Key.Name,
			Value:      op.Value,
			Uid:        op.UID,
			Labels:     op.Labels,
			Fields:     op.Fields,
			IfRevision: op.IfRevision,
			IfUid:      op.IfUID,
		}
	}
	return proto.Marshal(&storev1.Command{Command: &storev1.Command_Txn{Txn: txn}})
}

// decodeCommand parses and checks a Raft command. Every node runs it on the same bytes,
// so a command it rejects is rejected everywhere, deterministically. A transaction
// (nearly every entry) comes back as its ops alone, cmd nil; any other command as cmd.
func decodeCommand(data []byte, maxObjectSize int) (*storev1.Command, []Op, error) {
	if ops, ok := decodeTxnOps(data); ok {
		return nil, ops, validateOps(ops, maxObjectSize)
	}
	var cmd storev1.Command
	if err := proto.Unmarshal(data, &cmd); err != nil {
		return nil, nil, fmt.Errorf("decode command: %w: %v", ErrInvalid, err)
	}
	switch c := cmd.Command.(type) {
	case *storev1.Command_LeaderMark, *storev1.Command_ClusterIdentity, *storev1.Command_MemberIncarnation, *storev1.Command_Alarm:
		return &cmd, nil, nil
	case *storev1.Command_Txn:
		ops := opsFromProto(c.Txn.GetOps())
		return nil, ops, validateOps(ops, maxObjectSize)
	default:
		return nil, nil, fmt.Errorf("decode command: %w: no command set", ErrInvalid)
	}
}

// The field numbers of storev1.Command, Txn, Op and Record, and of a map's entries
// (proto/store/v1/store.proto).
const (
	recordValueField          protowire.Number = 1
	recordUIDField            protowire.Number = 2
	recordLabelsField         protowire.Number = 3
	recordFieldsField         protowire.Number = 4
	recordCreateRevisionField protowire.Number = 5
	recordModRevisionField    protowire.Number = 6
	mapKeyField               protowire.Number = 1
	mapValueField             protowire.Number = 2
	commandTxnField           protowire.Number = 1
	txnOpsField               protowire.Number = 1
	opTypeField               protowire.Number = 1
	opKindField               protowire.Number = 2
	opNamespaceField          protowire.Number = 3
	opNameField               protowire.Number = 4
	opValueField              protowire.Number = 5
	opUIDField                protowire.Number = 6
	opLabelsField             protowire.Number = 7
	opFieldsField             protowire.Number = 8
	opIfRevisionField         protowire.Number = 9
	opIfUIDField              protowire.Number = 10
)

// decodeTxnOps reads a Command holding a Txn straight from its wire form into Ops, as
// proto.Unmarshal and opsFromProto would: every member decodes every entry, and the
// generic decoder's map entries and messages were most of what that cost. ok is false
// for anything else — another command, a field this does not know or a wire type it
// does not expect, a malformed or non-UTF-8 string — which decodeCommand's generic
// path then reads (FuzzDecodeTxnOps: whatever this reads, that path reads the same).
func decodeTxnOps(data []byte) (ops []Op, ok bool) {
	num, typ, n := protowire.ConsumeTag(data)
	if n < 0 || num != commandTxnField || typ != protowire.BytesType {
		return nil, false
	}
	txn, m := protowire.ConsumeBytes(data[n:])
	if m < 0 || n+m != len(data) {
		return nil, false // more than the one Txn (a repeated oneof field merges)
	}
	for len(txn) > 0 {
		num, typ, n := protowire.ConsumeTag(txn)
		if n < 0 || num != txnOpsField || typ != protowire.BytesType {
			return nil, false
		}
		b, m := protowire.ConsumeBytes(txn[n:])
		if m < 0 {
			return nil, false
		}
		op, ok := decodeOp(b)
		if !ok {
			return nil, false
		}
		ops = append(ops, op)
		txn = txn[n+m:]
	}
	return ops, true
}

// decodeOp reads one storev1.Op as proto.Unmarshal would (the last of a repeated
// scalar wins; values copied, not aliasing the entry).
func decodeOp(b []byte) (op Op, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Op{}, false
		}
		b = b[n:]
		switch {
		case (num == opTypeField || num == opIfRevisionField) && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return Op{}, false
			}
			if num == opTypeField {
				op.Type = OpType(storev1.Op_Type(int32(v)))
			} else {
				op.IfRevision = int64(v)
			}
			b = b[m:]
		case num >= opKindField && num <= opIfUIDField && num != opIfRevisionField && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return Op{}, false
			}
			b = b[m:]
			if num == opValueField {
				op.Value = append([]byte{}, v...)
				continue
			}
			if num == opLabelsField || num == opFieldsField {
				mp := &op.Labels
				if num == opFieldsField {
					mp = &op.Fields
				}
				if !addMapEntry(mp, v) {
					return Op{}, false
				}
				continue
			}
			if !utf8.Valid(v) {
				return Op{}, false
			}
			switch num {
			case opKindField:
				op.Key.Kind = string(v)
			case opNamespaceField:
				op.Key.Namespace = string(v)
			case opNameField:
				op.Key.Name = string(v)
			case opUIDField:
				op.UID = string(v)
			case opIfUIDField:
				op.IfUID = string(v)
			}
		default:
			return Op{}, false
		}
	}
	return op, true
}

// addMapEntry reads a map<string, string> entry into *m, made when nil.
func addMapEntry(m *map[string]string, entry []byte) bool {
	k, v, ok := decodeMapEntry(entry)
	if !ok {
		return false
	}
	if *m == nil {
		*m = map[string]string{}
	}
	(*m)[k] = v
	return true
}

// validMapEntry says whether b is an entry decodeMapEntry reads, without making its
// strings.
func validMapEntry(b []byte) bool {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || (num != mapKeyField && num != mapValueField) || typ != protowire.BytesType {
			return false
		}
		s, m := protowire.ConsumeBytes(b[n:])
		if m < 0 || !utf8.Valid(s) {
			return false
		}
		b = b[n+m:]
	}
	return true
}

// decodeMapEntry reads a map<string, string> entry: a missing key or value is "".
func decodeMapEntry(b []byte) (k, v string, ok bool) {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 || (num != mapKeyField && num != mapValueField) || typ != protowire.BytesType {
			return "", "", false
		}
		s, m := protowire.ConsumeBytes(b[n:])
		if m < 0 || !utf8.Valid(s) {
			return "", "", false
		}
		if num == mapKeyField {
			k = string(s)
		} else {
			v = string(s)
		}
		b = b[n+m:]
	}
	return k, v, true
}

func opsFromProto(in []*storev1.Op) []Op {
	ops := make([]Op, len(in))
	for i, p := range in {
		ops[i] = Op{
			Type:       OpType(p.GetType()),
			Key:        Key{Kind: p.GetKind(), Namespace: p.GetNamespace(), Name: p.GetName()},
			Value:      p.GetValue(),
			UID:        p.GetUid(),
			Labels:     p.GetLabels(),
			Fields:     p.GetFields(),
			IfRevision: p.GetIfRevision(),
			IfUID:      p.GetIfUid(),
		}
	}
	return ops
}

// validateOps checks a transaction's operations.
func validateOps(ops []Op, maxObjectSize int) error {
	if len(ops) == 0 {
		return fmt.Errorf("transaction: %w: no operations", ErrInvalid)
	}
	for i, op := range ops {
		if err := op.validate(maxObjectSize); err != nil {
			return fmt.Errorf("operation %d: %w", i, err)
		}
	}
	return nil
}

func (op Op) validate(maxObjectSize int) error {
	switch op.Type {
	case Create, Update, Delete:
	default:
		return fmt.Errorf("%w: unknown operation type %d", ErrInvalid, int(op.Type))
	}
	if err := op.Key.validate(); err != nil {
		return err
	}
	if op.IfRevision < 0 {
		return fmt.Errorf("%s %s: %w: negative revision precondition", op.Type, op.Key, ErrInvalid)
	}
	if op.Type != Delete && len(op.Value) > maxObjectSize {
		return fmt.Errorf("%s %s: %w: object is %d bytes, the limit is %d", op.Type, op.Key, ErrTooLarge, len(op.Value), maxObjectSize)
	}
	for k := range op.Fields {
		if k == "" {
			return fmt.Errorf("%s %s: %w: empty field name", op.Type, op.Key, ErrInvalid)
		}
		if containsNUL(k) || containsNUL(op.Fields[k]) {
			return fmt.Errorf("%s %s: %w: NUL byte in field %q", op.Type, op.Key, ErrInvalid, k)
		}
	}
	return nil
}

func containsNUL(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return true
		}
	}
	return false
}

func encodeLeaderMark(id string) []byte {
	b, _ := proto.Marshal(&storev1.Command{Command: &storev1.Command_LeaderMark{LeaderMark: &storev1.LeaderMark{Leader: id}}})
	return b
}

func recordToObject(key Key, r *storev1.Record) Object {
	return Object{
		Key:            key,
		Value:          r.GetValue(),
		UID:            r.GetUid(),
		Labels:         r.GetLabels(),
		Fields:         r.GetFields(),
		CreateRevision: r.GetCreateRevision(),
		ModRevision:    r.GetModRevision(),
	}
}

// decodeRecord reads a stored record into an Object, as proto.Unmarshal and
// recordToObject would: a list decodes every record it returns, and the generic
// decoder's maps and reflection were most of what that cost. A record the wire reader
// does not expect (a field it does not know, a non-UTF-8 string) is read the generic
// way (FuzzDecodeRecord: whatever it reads, the protobuf module reads the same).
func decodeRecord(k Key, b []byte) (Object, error) { return decodeRecordMaps(k, b, true) }

// decodeRecordMaps is decodeRecord, leaving the object's Labels and Fields nil unless
// maps: a list that selects nothing by them (its objects go out as their values) does
// not build two maps an object (ListOptions.ValuesOnly).
func decodeRecordMaps(k Key, b []byte, maps bool) (Object, error) {
	if o, ok := readRecord(k, b, maps); ok {
		return o, nil
	}
	var r storev1.Record
	if err := proto.Unmarshal(b, &r); err != nil {
		return Object{}, fmt.Errorf("decode %s: %w", k, err)
	}
	o := recordToObject(k, &r)
	if !maps {
		o.Labels, o.Fields = nil, nil
	}
	return o, nil
}

// readRecord is decodeRecord's wire reader; ok is false for what it leaves to
// proto.Unmarshal. The value is copied: the record may be bbolt's mapped page. Labels
// and Fields are read only when maps; their entries are checked either way.
func readRecord(k Key, b []byte, maps bool) (o Object, ok bool) {
	o.Key = k
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return Object{}, false
		}
		b = b[n:]
		switch {
		case (num == recordCreateRevisionField || num == recordModRevisionField) && typ == protowire.VarintType:
			v, m := protowire.ConsumeVarint(b)
			if m < 0 {
				return Object{}, false
			}
			if num == recordCreateRevisionField {
				o.CreateRevision = int64(v)
			} else {
				o.ModRevision = int64(v)
			}
			b = b[m:]
		case num >= recordValueField && num <= recordFieldsField && typ == protowire.BytesType:
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return Object{}, false
			}
			b = b[m:]
			switch num {
			case recordValueField:
				o.Value = append(o.Value[:0], v...) // as the protobuf module: a later one replaces it, an empty one is nil
			case recordUIDField:
				if !utf8.Valid(v) {
					return Object{}, false
				}
				o.UID = string(v)
			case recordLabelsField, recordFieldsField:
				m := &o.Labels
				if num == recordFieldsField {
					m = &o.Fields
				}
				if maps && !addMapEntry(m, v) || !maps && !validMapEntry(v) {
					return Object{}, false
				}
			}
		default:
			return Object{}, false
		}
	}
	return o, true
}

// encodeRecord is proto.Marshal(objectToRecord(o)) written straight into one buffer of
// the right size: every member encodes every object each write stores, and the generic
// marshaller's map entries cost twenty-odd allocations a record and twice the time.
// Zero values are left out, as proto3 leaves them; proto.Unmarshal reads the result
// (TestEncodeRecord).
func encodeRecord(o *Object) []byte {
	n := 0
	if len(o.Value) > 0 {
		n += protowire.SizeTag(recordValueField) + protowire.SizeBytes(len(o.Value))
	}
	if o.UID != "" {
		n += protowire.SizeTag(recordUIDField) + protowire.SizeBytes(len(o.UID))
	}
	n += sizeStringMap(recordLabelsField, o.Labels) + sizeStringMap(recordFieldsField, o.Fields)
	if o.CreateRevision != 0 {
		n += protowire.SizeTag(recordCreateRevisionField) + protowire.SizeVarint(uint64(o.CreateRevision))
	}
	if o.ModRevision != 0 {
		n += protowire.SizeTag(recordModRevisionField) + protowire.SizeVarint(uint64(o.ModRevision))
	}
	b := make([]byte, 0, n)
	if len(o.Value) > 0 {
		b = protowire.AppendTag(b, recordValueField, protowire.BytesType)
		b = protowire.AppendBytes(b, o.Value)
	}
	if o.UID != "" {
		b = protowire.AppendTag(b, recordUIDField, protowire.BytesType)
		b = protowire.AppendString(b, o.UID)
	}
	b = appendStringMap(b, recordLabelsField, o.Labels)
	b = appendStringMap(b, recordFieldsField, o.Fields)
	if o.CreateRevision != 0 {
		b = protowire.AppendTag(b, recordCreateRevisionField, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(o.CreateRevision))
	}
	if o.ModRevision != 0 {
		b = protowire.AppendTag(b, recordModRevisionField, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(o.ModRevision))
	}
	return b
}

// mapEntrySize is the size of a map<string, string> entry's message, the key and the
// value both written (as the protobuf module writes them, empty or not).
func mapEntrySize(k, v string) int {
	return protowire.SizeTag(mapKeyField) + protowire.SizeBytes(len(k)) + protowire.SizeTag(mapValueField) + protowire.SizeBytes(len(v))
}

func sizeStringMap(field protowire.Number, m map[string]string) int {
	n := 0
	for k, v := range m {
		n += protowire.SizeTag(field) + protowire.SizeBytes(mapEntrySize(k, v))
	}
	return n
}

func appendStringMap(b []byte, field protowire.Number, m map[string]string) []byte {
	for k, v := range m {
		b = protowire.AppendTag(b, field, protowire.BytesType)
		b = protowire.AppendVarint(b, uint64(mapEntrySize(k, v)))
		b = protowire.AppendTag(b, mapKeyField, protowire.BytesType)
		b = protowire.AppendString(b, k)
		b = protowire.AppendTag(b, mapValueField, protowire.BytesType)
		b = protowire.AppendString(b, v)
	}
	return b
}

func objectToRecord(o *Object) *storev1.Record {
	return &storev1.Record{
		Value:          o.Value,
		Uid:            o.UID,
		Labels:         o.Labels,
		Fields:         o.Fields,
		CreateRevision: o.CreateRevision,
		ModRevision:    o.ModRevision,
	}
}

// The error and result forms that cross the peer link (forwarded writes).

func errorToProto(err error) *storev1.Error {
	if err == nil {
		return nil
	}
	e := &storev1.Error{Message: err.Error()}
	var pe *PreconditionError
	var nl *NotLeaderError
	switch {
	case errors.As(err, &pe):
		e.Op, e.Kind, e.Namespace, e.Name = int32(pe.Op), pe.Key.Kind, pe.Key.Namespace, pe.Key.Name
		e.CurrentRevision = pe.CurrentRevision
		e.Message = pe.Detail
		switch pe.Err {
		case ErrNotFound:
			e.Code = storev1.Error_NOT_FOUND
		case ErrAlreadyExists:
			e.Code = storev1.Error_ALREADY_EXISTS
		default:
			e.Code = storev1.Error_CONFLICT
		}
	case errors.As(err, &nl):
		e.Code, e.LeaderId, e.LeaderAddress = storev1.Error_NOT_LEADER, nl.LeaderID, nl.LeaderAddress
		if nl.LeaderID == "" {
			e.Code = storev1.Error_NO_LEADER
		}
	case errors.Is(err, ErrInvalid):
		e.Code = storev1.Error_INVALID
	case errors.Is(err, ErrTooLarge):
		e.Code = storev1.Error_TOO_LARGE
	case errors.Is(err, ErrNoLeader):
		e.Code = storev1.Error_NO_LEADER
	case errors.Is(err, ErrClosed):
		e.Code = storev1.Error_CLOSED
	case errors.Is(err, ErrNoSpace):
		e.Code = storev1.Error_NO_SPACE
	case errors.Is(err, ErrRefused):
		e.Code = storev1.Error_REFUSED
	default:
		e.Code = storev1.Error_INDETERMINATE
	}
	return e
}

func errorFromProto(e *storev1.Error) error {
	if e == nil {
		return nil
	}
	key := Key{Kind: e.GetKind(), Namespace: e.GetNamespace(), Name: e.GetName()}
	switch e.GetCode() {
	case storev1.Error_NOT_FOUND:
		return &PreconditionError{Err: ErrNotFound, Op: int(e.GetOp()), Key: key, CurrentRevision: e.GetCurrentRevision(), Detail: e.GetMessage()}
	case storev1.Error_ALREADY_EXISTS:
		return &PreconditionError{Err: ErrAlreadyExists, Op: int(e.GetOp()), Key: key, CurrentRevision: e.GetCurrentRevision(), Detail: e.GetMessage()}
	case storev1.Error_CONFLICT:
		return &PreconditionError{Err: ErrConflict, Op: int(e.GetOp()), Key: key, CurrentRevision: e.GetCurrentRevision(), Detail: e.GetMessage()}
	case storev1.Error_NOT_LEADER:
		return &NotLeaderError{LeaderID: e.GetLeaderId(), LeaderAddress: e.GetLeaderAddress()}
	case storev1.Error_NO_LEADER:
		return fmt.Errorf("leader: %w", ErrNoLeader)
	case storev1.Error_INVALID:
		return fmt.Errorf("%w: %s", ErrInvalid, e.GetMessage())
	case storev1.Error_TOO_LARGE:
		return fmt.Errorf("%w: %s", ErrTooLarge, e.GetMessage())
	case storev1.Error_CLOSED:
		return fmt.Errorf("leader: %w", ErrNoLeader)
	case storev1.Error_NO_SPACE:
		return noSpaceError{msg: e.GetMessage()}
	case storev1.Error_REFUSED:
		return refusedError{msg: e.GetMessage()}
	default:
		return fmt.Errorf("%w: leader: %s", ErrIndeterminate, e.GetMessage())
	}
}

func resultToProto(res *TxnResult) *storev1.TxnResult {
	out := &storev1.TxnResult{Revision: res.Revision, Objects: make([]*storev1.ObjectResult, len(res.Objects))}
	for i := range res.Objects {
		o := &res.Objects[i]
		out.Objects[i] = &storev1.ObjectResult{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name, Record: objectToRecord(o)}
	}
	return out
}

func resultFromProto(p *storev1.TxnResult) *TxnResult {
	res := &TxnResult{Revision: p.GetRevision(), Objects: make([]Object, len(p.GetObjects()))}
	for i, o := range p.GetObjects() {
		res.Objects[i] = recordToObject(Key{Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()}, o.GetRecord())
	}
	return res
}

// noSpaceError and refusedError carry the leader's message across the peer link, which
// already names the class.
type noSpaceError struct{ msg string }

func (e noSpaceError) Error() string { return e.msg }
func (e noSpaceError) Unwrap() error { return ErrNoSpace }

type refusedError struct{ msg string }

func (e refusedError) Error() string { return e.msg }
func (e refusedError) Unwrap() error { return ErrRefused }
