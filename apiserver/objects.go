package apiserver

import (
	"fmt"
	"strconv"

	"google.golang.org/protobuf/encoding/protowire"
	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
)

// Objects are stored in Kubernetes' protobuf encoding (kinds.Encode) without
// metadata.resourceVersion: the resourceVersion is the store's ModRevision, set on the
// way out, as Kubernetes' etcd storage does. Labels and the fields that selectors and
// indexes use travel beside the value, so the store filters without decoding.

// The fields the store indexes, by kind (store.Config.IndexedFields). An equality field
// selector on one of them lists, and watches, through the index.
var indexedFields = map[string][]string{
	kinds.Pod:   {"spec.nodeName"},
	kinds.Event: {"involvedObject.uid"},
}

// selectableFields are the fields a field selector may name, by kind: Kubernetes' for
// the kind (e2e's framework, kubectl drain and the node controllers list schedulable
// nodes by spec.unschedulable). An object stored before its kind had a field has no
// value for it until its next write.
var selectableFields = map[string][]string{
	kinds.Pod: {"metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"},
	kinds.Event: {"metadata.name", "metadata.namespace", "involvedObject.uid", "involvedObject.name", "involvedObject.kind", "involvedObject.namespace",
		"involvedObject.apiVersion", "involvedObject.resourceVersion", "involvedObject.fieldPath", "reason", "reportingComponent", "source", "type"},
	kinds.Node:                  {"metadata.name", "metadata.namespace", "spec.unschedulable"},
	kinds.Namespace:             {"metadata.name", "metadata.namespace", "status.phase"},
	kinds.Secret:                {"metadata.name", "metadata.namespace", "type"},
	kinds.ReplicationController: {"metadata.name", "metadata.namespace", "status.replicas"},
	kinds.PodCertificateRequest: {"metadata.name", "metadata.namespace", "spec.signerName", "spec.podName", "spec.nodeName"},
	// certificates.k8s.io's signers list their requests and bundles by signer.
	kinds.CertificateSigningRequest: {"metadata.name", "metadata.namespace", "spec.signerName"},
	kinds.ClusterTrustBundle:        {"metadata.name", "metadata.namespace", "spec.signerName"},
}

// selectable are the fields a field selector may name on info's objects: a custom
// kind's are its CRD version's selectableFields.
func selectable(info *kinds.Info) []string {
	if info.Custom != nil {
		return append([]string{"metadata.name", "metadata.namespace"}, info.Custom.SelectableFields()...)
	}
	if f, ok := selectableFields[info.Kind]; ok {
		return f
	}
	return []string{"metadata.name", "metadata.namespace"}
}

// fieldsOf extracts the selectable fields of obj (metadata.name and .namespace are taken
// from the key when matching, so they are not stored).
func fieldsOf(obj kinds.Object) map[string]string {
	switch o := obj.(type) {
	case *kinds.Custom:
		return o.FieldsOf()
	case *corev1.Pod:
		return map[string]string{"spec.nodeName": o.Spec.NodeName, "status.phase": string(o.Status.Phase)}
	case *corev1.Node:
		return map[string]string{"spec.unschedulable": strconv.FormatBool(o.Spec.Unschedulable)}
	case *corev1.Namespace:
		return map[string]string{"status.phase": string(o.Status.Phase)}
	case *corev1.Secret:
		return map[string]string{"type": string(o.Type)}
	case *corev1.ReplicationController:
		return map[string]string{"status.replicas": strconv.Itoa(int(o.Status.Replicas))}
	case *certificatesv1.PodCertificateRequest:
		return map[string]string{"spec.signerName": o.Spec.SignerName, "spec.podName": o.Spec.PodName, "spec.nodeName": string(o.Spec.NodeName)}
	case *certificatesv1.CertificateSigningRequest:
		return map[string]string{"spec.signerName": o.Spec.SignerName}
	case *certificatesv1.ClusterTrustBundle:
		return map[string]string{"spec.signerName": o.Spec.SignerName}
	case *corev1.Event:
		io := &o.InvolvedObject
		// source: the reporting component, of either API's event (Kubernetes' choice).
		source := o.Source.Component
		if source == "" {
			source = o.ReportingController
		}
		return map[string]string{
			"involvedObject.uid": string(io.UID), "involvedObject.name": io.Name, "involvedObject.kind": io.Kind,
			"involvedObject.namespace": io.Namespace, "involvedObject.apiVersion": io.APIVersion,
			"involvedObject.resourceVersion": io.ResourceVersion, "involvedObject.fieldPath": io.FieldPath,
			"reason": o.Reason, "reportingComponent": o.ReportingController, "source": source, "type": o.Type,
		}
	}
	return nil
}

// fieldValue reads one selectable field of a stored object of kind info. A custom
// resource stored before its CRD declared the field has no value for it beside it: it
// is read from the object.
func fieldValue(info *kinds.Info, o *store.Object, field string) string {
	switch field {
	case "metadata.name":
		return o.Name
	case "metadata.namespace":
		return o.Namespace
	}
	v, ok := o.Fields[field]
	if !ok && info.Custom != nil {
		// Read as stored, as the stored fields are (never a conversion webhook's call).
		if obj, err := decodeCustomAsStored(info, o); err == nil {
			v, _ = obj.FieldValue(field)
		}
	}
	return v
}

func keyOf(info *kinds.Info, obj kinds.Object) store.Key {
	return store.Key{Kind: info.Kind, Namespace: obj.GetNamespace(), Name: obj.GetName()}
}

// encode prepares obj for the store: its bytes without resourceVersion, its labels and
// its fields.
func encode(obj kinds.Object) (value []byte, labels, fields map[string]string, err error) {
	rv := obj.GetResourceVersion()
	obj.SetResourceVersion("")
	value, err = kinds.Encode(obj)
	obj.SetResourceVersion(rv)
	if err != nil {
		return nil, nil, nil, err
	}
	return value, obj.GetLabels(), fieldsOf(obj), nil
}

// decode turns a stored object back into its type, with resourceVersion set.
func decode(info *kinds.Info, o *store.Object) (kinds.Object, error) {
	if info.Custom != nil {
		objs, err := decodeCustom(info, []store.Object{*o})
		if err != nil {
			return nil, err
		}
		return objs[0], nil
	}
	if info.Conversion != nil {
		// A kind served over another's storage: decoded as that kind, converted.
		obj, err := decode(info.Stored(), o)
		if err != nil {
			return nil, err
		}
		return info.FromStorage(obj)
	}
	if isLegacy(o.Value) {
		obj, err := decodeLegacy(info, o.Value)
		if err != nil {
			return nil, fmt.Errorf("decode stored %s: %w", o.Key, err)
		}
		obj.SetResourceVersion(strconv.FormatInt(o.ModRevision, 10))
		return obj, nil
	}
	obj := info.New()
	if err := kinds.DecodeInto(o.Value, obj); err != nil {
		return nil, fmt.Errorf("decode stored %s: %w", o.Key, err)
	}
	if c, ok := obj.(*kinds.Custom); ok {
		// Read from storage with its CRD's schema as it is now, as Kubernetes reads
		// custom resources: a default added since the object was written is set.
		validation.Default(c)
	}
	obj.SetResourceVersion(strconv.FormatInt(o.ModRevision, 10))
	return obj, nil
}

// decodeCustom decodes stored custom resources of info's CRD, each in the version it
// was stored in, and converts them to info's version at once (a conversion webhook is
// called once for all those of another version).
func decodeCustom(info *kinds.Info, os []store.Object) ([]kinds.Object, error) {
	raw := make([]*kinds.Custom, len(os))
	for i := range os {
		c, err := decodeCustomAsStored(info, &os[i])
		if err != nil {
			return nil, storeError(info, os[i].Name, err)
		}
		raw[i] = c
	}
	converted, err := info.ConvertCustom(raw)
	if err != nil {
		return nil, conversionFailed(err)
	}
	out := make([]kinds.Object, len(converted))
	for i, c := range converted {
		out[i] = c
	}
	return out, nil
}

// decodeCustomAsStored decodes a stored custom resource of info's CRD as it is stored:
// in the version its apiVersion says, which may be another than info's.
func decodeCustomAsStored(info *kinds.Info, o *store.Object) (*kinds.Custom, error) {
	env, err := kinds.Parse(o.Value)
	if err != nil {
		return nil, fmt.Errorf("decode stored %s: %w", o.Key, err)
	}
	c := info.New().(*kinds.Custom)
	if err := c.Unmarshal(env.Raw); err != nil {
		return nil, fmt.Errorf("decode stored %s: %w", o.Key, err)
	}
	c.APIVersion = env.APIVersion
	c.SetResourceVersion(strconv.FormatInt(o.ModRevision, 10))
	return c, nil
}

// wrap puts an object into the API's envelope.
func wrap(info *kinds.Info, obj kinds.Object) (*apiv1.Object, error) {
	out, err := kinds.Wrap(obj)
	if err != nil {
		return nil, storeError(info, obj.GetName(), err)
	}
	return out, nil
}

// Object envelope field numbers (proto/api/v1/api.proto).
const (
	objectAPIVersionField protowire.Number = 1
	objectKindField       protowire.Number = 2
	objectRawField        protowire.Number = 3
)

// storedObject is the reply for an object just written: its stored bytes, sent as they
// are (see appendWireObject) instead of encoding the object again. The message carries
// the envelope as unknown fields, which protobuf marshals verbatim and a receiver parses
// as the object: it is only for sending, and reads as empty in this process.
func storedObject(info *kinds.Info, value []byte, rev int64) *apiv1.Object {
	obj := kinds.PrepareResourceVersion(current(info, value), rev)
	out := &apiv1.Object{}
	out.ProtoReflect().SetUnknown(appendWireObject(make([]byte, 0, wireObjectSize(info, obj)), info, obj))
	return out
}

// wireObjectSize is the length of what appendWireObject appends.
func wireObjectSize(info *kinds.Info, obj kinds.WithResourceVersion) int {
	return protowire.SizeTag(objectAPIVersionField) + protowire.SizeBytes(len(info.APIVersion)) +
		protowire.SizeTag(objectKindField) + protowire.SizeBytes(len(info.Kind)) +
		protowire.SizeTag(objectRawField) + protowire.SizeBytes(obj.Len())
}

// appendWireObject appends the encoded Object envelope of a stored object, with its
// resourceVersion.
func appendWireObject(b []byte, info *kinds.Info, obj kinds.WithResourceVersion) []byte {
	b = protowire.AppendTag(b, objectAPIVersionField, protowire.BytesType)
	b = protowire.AppendString(b, info.APIVersion)
	b = protowire.AppendTag(b, objectKindField, protowire.BytesType)
	b = protowire.AppendString(b, info.Kind)
	b = protowire.AppendTag(b, objectRawField, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(obj.Len()))
	return obj.AppendTo(b)
}
