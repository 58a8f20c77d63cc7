package kinds

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// Magic starts every object in Kubernetes' protobuf encoding.
var Magic = []byte{0x6b, 0x38, 0x73, 0x00} // "k8s\x00"

// ContentType is the media type of the encoding.
const ContentType = "application/vnd.kubernetes.protobuf"

// Field numbers of the encoding: runtime.Unknown's, and the two every kind shares
// (metadata is field 1 of every Kubernetes kind, resourceVersion field 6 of ObjectMeta;
// checked in init).
const (
	unknownTypeMeta        protowire.Number = 1
	unknownRaw             protowire.Number = 2
	unknownContentEncoding protowire.Number = 3
	unknownContentType     protowire.Number = 4
	listMetadata           protowire.Number = 1
	listItems              protowire.Number = 2
	typeMetaAPIVersion     protowire.Number = 1
	typeMetaKind           protowire.Number = 2
	objectMetadata         protowire.Number = 1
	metaResourceVersion    protowire.Number = 6
)

func init() {
	// The resourceVersion suffix relies on the two field numbers and on protobuf's merge
	// of a repeated message field: check both for every kind.
	for _, in := range all {
		obj := in.New()
		obj.SetName("n")
		b := make([]byte, obj.Size())
		if _, err := obj.MarshalToSizedBuffer(b); err != nil {
			panic(err)
		}
		got := in.New()
		if err := got.Unmarshal(appendRVSuffix(b, "7")); err != nil || got.GetName() != "n" || got.GetResourceVersion() != "7" {
			panic("kinds: " + in.Kind + " does not keep metadata.resourceVersion in field 1.6")
		}
	}
}

// Encode returns obj in Kubernetes' protobuf encoding, under its kind's apiVersion and
// kind, exactly as apimachinery's protobuf serializer writes it.
func Encode(obj Object) ([]byte, error) {
	in := Of(obj)
	unk := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: in.APIVersion, Kind: in.Kind}}
	size := uint64(obj.Size())
	// runtime.Unknown's size without Raw, plus Raw's tag, length and bytes.
	total := uint64(len(Magic)) + uint64(unk.Size()) + uint64(protowire.SizeTag(unknownRaw)) + uint64(protowire.SizeBytes(int(size)))
	data := make([]byte, total)
	copy(data, Magic)
	n, err := unk.NestedMarshalTo(data[len(Magic):], obj, size)
	if err != nil {
		return nil, fmt.Errorf("encode %s %s: %w", in.Kind, obj.GetName(), err)
	}
	return data[:len(Magic)+n], nil
}

// MustEncode is Encode for objects known to encode (every well-formed object does).
func MustEncode(obj Object) []byte {
	b, err := Encode(obj)
	if err != nil {
		panic(err)
	}
	return b
}

// Envelope is what parsing the outside of encoded bytes finds.
type Envelope struct {
	APIVersion, Kind string
	// Raw is the object's own encoding, a sub-slice of the data parsed.
	Raw []byte
}

var errNotProtobuf = errors.New("not in Kubernetes' protobuf encoding (no k8s\\x00 prefix)")

// Parse reads the envelope of encoded bytes without decoding the object.
func Parse(data []byte) (Envelope, error) {
	var env Envelope
	if !bytes.HasPrefix(data, Magic) {
		return env, errNotProtobuf
	}
	err := eachBytesField(data[len(Magic):], func(num protowire.Number, v []byte) error {
		switch num {
		case unknownTypeMeta:
			return parseTypeMeta(v, &env)
		case unknownRaw:
			env.Raw = v
		}
		return nil
	})
	return env, err
}

func parseTypeMeta(b []byte, env *Envelope) error {
	return eachBytesField(b, func(num protowire.Number, v []byte) error {
		switch num {
		case typeMetaAPIVersion:
			env.APIVersion = string(v)
		case typeMetaKind:
			env.Kind = string(v)
		}
		return nil
	})
}

// Decode decodes encoded bytes into a new object of the kind they name, with its
// apiVersion and kind set.
func Decode(data []byte) (Object, error) {
	env, err := Parse(data)
	if err != nil {
		return nil, err
	}
	in, ok := ForGroupVersionKind(env.APIVersion, env.Kind)
	if !ok {
		return nil, fmt.Errorf("decode: %s %q is not a kind Skiff serves", env.APIVersion, env.Kind)
	}
	obj := in.New()
	if err := obj.Unmarshal(env.Raw); err != nil {
		return nil, fmt.Errorf("decode %s: %w", in.Kind, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(in.GroupVersionKind())
	return obj, nil
}

// DecodeMeta decodes only the metadata of encoded bytes of any kind, built-in or custom,
// with the apiVersion and kind they name: metadata is field 1 of every kind's encoding
// (a custom resource's too, customMeta), so the rest (spec, status, data, a custom
// resource's JSON) is skipped, not decoded. It is Kubernetes' PartialObjectMetadata, what
// its metadata-only clients read.
func DecodeMeta(data []byte) (*metav1.PartialObjectMetadata, error) {
	env, err := Parse(data)
	if err != nil {
		return nil, err
	}
	m := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: env.APIVersion, Kind: env.Kind}}
	err = eachBytesField(env.Raw, func(num protowire.Number, v []byte) error {
		if num == objectMetadata {
			return m.ObjectMeta.Unmarshal(v) // a repeated metadata field merges, as protobuf's do
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("decode the metadata of %s: %w", env.Kind, err)
	}
	return m, nil
}

// DecodeInto decodes encoded bytes into obj, which must be of the kind they name.
func DecodeInto(data []byte, obj Object) error {
	env, err := Parse(data)
	if err != nil {
		return err
	}
	in := Of(obj)
	if env.APIVersion != in.APIVersion || env.Kind != in.Kind {
		return fmt.Errorf("decode: got %s %s, want %s %s", env.APIVersion, env.Kind, in.APIVersion, in.Kind)
	}
	if err := obj.Unmarshal(env.Raw); err != nil {
		return fmt.Errorf("decode %s: %w", in.Kind, err)
	}
	obj.GetObjectKind().SetGroupVersionKind(in.GroupVersionKind())
	return nil
}

// appendRVSuffix appends the encoding of metadata{resourceVersion: rv}: appended to an
// object's encoding, protobuf's merge of repeated message fields sets its
// resourceVersion, and nothing else.
func appendRVSuffix(b []byte, rv string) []byte {
	inner := protowire.SizeTag(metaResourceVersion) + protowire.SizeBytes(len(rv))
	b = protowire.AppendTag(b, objectMetadata, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(inner))
	b = protowire.AppendTag(b, metaResourceVersion, protowire.BytesType)
	return protowire.AppendString(b, rv)
}

func rvSuffixSize(rv string) int {
	inner := protowire.SizeTag(metaResourceVersion) + protowire.SizeBytes(len(rv))
	return protowire.SizeTag(objectMetadata) + protowire.SizeBytes(inner)
}

// WithResourceVersion is an object's stored bytes ready to be written out with
// metadata.resourceVersion set, without decoding the object: the envelope's head, the
// object's own bytes and the envelope's tail, written around a second metadata field
// holding only the resourceVersion, which protobuf decoders merge into the first. Make
// one with PrepareResourceVersion; Len and AppendTo cost no parsing.
type WithResourceVersion struct {
	head, raw, tail []byte // head is empty when the bytes are not in the encoding
	suffix          []byte // metadata{resourceVersion}; nil: write the bytes as they are
	whole           []byte // the bytes as they were given
}

// PrepareResourceVersion parses stored (an object in the encoding, without a
// resourceVersion) once. Bytes that are not in the encoding, or hold the object twice,
// are written as they are, for the receiver to refuse.
func PrepareResourceVersion(stored []byte, rev int64) WithResourceVersion {
	w := WithResourceVersion{whole: stored}
	if !bytes.HasPrefix(stored, Magic) {
		return w
	}
	rawAt, rawEnd, raws := -1, -1, 0
	b := stored[len(Magic):]
	for off := len(Magic); len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return w
		}
		m := protowire.ConsumeFieldValue(num, typ, b[n:])
		if m < 0 {
			return w
		}
		if num == unknownRaw && typ == protowire.BytesType {
			rawAt, rawEnd = off, off+n+m
			raws++
		}
		b, off = b[n+m:], off+n+m
	}
	if raws != 1 {
		return w
	}
	tagLen := protowire.SizeTag(unknownRaw)
	raw, n := protowire.ConsumeBytes(stored[rawAt+tagLen:])
	if n < 0 {
		return w
	}
	var buf [20]byte
	w.head, w.raw, w.tail = stored[:rawAt], raw, stored[rawEnd:]
	w.suffix = appendRVSuffix(nil, string(strconv.AppendInt(buf[:0], rev, 10)))
	return w
}

// Len is the length of what AppendTo appends.
func (w WithResourceVersion) Len() int {
	if w.suffix == nil {
		return len(w.whole)
	}
	return len(w.head) + protowire.SizeTag(unknownRaw) + protowire.SizeBytes(len(w.raw)+len(w.suffix)) + len(w.tail)
}

// AppendTo appends the object with its resourceVersion.
func (w WithResourceVersion) AppendTo(dst []byte) []byte {
	if w.suffix == nil {
		return append(dst, w.whole...)
	}
	dst = append(dst, w.head...)
	dst = protowire.AppendTag(dst, unknownRaw, protowire.BytesType)
	dst = protowire.AppendVarint(dst, uint64(len(w.raw)+len(w.suffix)))
	dst = append(dst, w.raw...)
	dst = append(dst, w.suffix...)
	return append(dst, w.tail...)
}

// EncodeList encodes a list of objects of kind in (its ...List kind) as apimachinery's
// protobuf serializer does: the envelope, then the list's metadata and, as its items,
// each object's own bytes with its resourceVersion, copied without decoding.
func EncodeList(in *Info, meta metav1.ListMeta, items []WithResourceVersion) ([]byte, error) {
	mb, err := meta.Marshal()
	if err != nil {
		return nil, fmt.Errorf("encode %sList: %w", in.Kind, err)
	}
	size := protowire.SizeTag(listMetadata) + protowire.SizeBytes(len(mb))
	for _, it := range items {
		if it.suffix == nil {
			return nil, fmt.Errorf("encode %sList: an item is %w", in.Kind, errNotProtobuf)
		}
		size += protowire.SizeTag(listItems) + protowire.SizeBytes(len(it.raw)+len(it.suffix))
	}
	unk := runtime.Unknown{TypeMeta: runtime.TypeMeta{APIVersion: in.APIVersion, Kind: in.Kind + "List"}}
	tm, err := unk.TypeMeta.Marshal()
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(Magic)+protowire.SizeTag(unknownTypeMeta)+protowire.SizeBytes(len(tm))+protowire.SizeTag(unknownRaw)+protowire.SizeBytes(size)+16)
	out = append(out, Magic...)
	out = protowire.AppendTag(out, unknownTypeMeta, protowire.BytesType)
	out = protowire.AppendBytes(out, tm)
	out = protowire.AppendTag(out, unknownRaw, protowire.BytesType)
	out = protowire.AppendVarint(out, uint64(size))
	out = protowire.AppendTag(out, listMetadata, protowire.BytesType)
	out = protowire.AppendBytes(out, mb)
	for _, it := range items {
		out = protowire.AppendTag(out, listItems, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(len(it.raw)+len(it.suffix)))
		out = append(out, it.raw...)
		out = append(out, it.suffix...)
	}
	// runtime.Unknown's contentEncoding and contentType: empty, as the serializer
	// writes them.
	out = protowire.AppendTag(out, unknownContentEncoding, protowire.BytesType)
	out = protowire.AppendBytes(out, nil)
	out = protowire.AppendTag(out, unknownContentType, protowire.BytesType)
	return protowire.AppendBytes(out, nil), nil
}

// SizeWithResourceVersion is the length of what AppendWithResourceVersion appends.
func SizeWithResourceVersion(stored []byte, rev int64) int {
	return PrepareResourceVersion(stored, rev).Len()
}

// AppendWithResourceVersion appends stored with metadata.resourceVersion set to rev
// (see WithResourceVersion).
func AppendWithResourceVersion(dst, stored []byte, rev int64) []byte {
	return PrepareResourceVersion(stored, rev).AppendTo(dst)
}

// ObjectNames are the metadata fields that say which object encoded bytes are about.
type ObjectNames struct {
	Name, GenerateName, Namespace string
}

// ObjectMeta field numbers read by ParseNames.
const (
	metaName         protowire.Number = 1
	metaGenerateName protowire.Number = 2
	metaNamespace    protowire.Number = 3
)

// ParseNames reads an encoded object's name, generateName and namespace without
// decoding the rest of it: enough to authorize a write before its handler decodes it.
func ParseNames(data []byte) (ObjectNames, error) {
	var out ObjectNames
	env, err := Parse(data)
	if err != nil {
		return out, err
	}
	err = eachBytesField(env.Raw, func(num protowire.Number, v []byte) error {
		if num != objectMetadata {
			return nil
		}
		// A repeated metadata field merges: later values win.
		return eachBytesField(v, func(num protowire.Number, v []byte) error {
			switch num {
			case metaName:
				out.Name = string(v)
			case metaGenerateName:
				out.GenerateName = string(v)
			case metaNamespace:
				out.Namespace = string(v)
			}
			return nil
		})
	})
	return out, err
}

// eachBytesField calls fn with the number and value of each length-delimited field of b,
// skipping the others.
func eachBytesField(b []byte, fn func(num protowire.Number, v []byte) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("bad object: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return fmt.Errorf("bad object: %w", protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return fmt.Errorf("bad object: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if err := fn(num, v); err != nil {
			return err
		}
	}
	return nil
}
