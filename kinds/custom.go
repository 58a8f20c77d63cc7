package kinds

import (
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"sync"

	"google.golang.org/protobuf/encoding/protowire"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utiljson "k8s.io/apimachinery/pkg/util/json"
)

// Custom resources are the objects of the kinds CustomResourceDefinitions define. They
// go through the registry as every kind does: a CRD once established is one more Info
// (SetCustom), whose New returns a *Custom, so lookups, routing, storage, watches and
// encoding find it as they find a built-in kind.
//
// A Custom is stored in the same envelope as every kind (Encode): its own encoding is
// field 1, the ObjectMeta in Kubernetes' protobuf encoding (so ParseNames and the
// resourceVersion suffix work on it unchanged), and field 2, the rest of the object
// (spec, status, anything the schema keeps) as JSON.

// Custom is a custom resource: its apiVersion and kind, its metadata and its content.
type Custom struct {
	metav1.TypeMeta
	metav1.ObjectMeta
	// Content is the object without apiVersion, kind and metadata, as JSON decodes
	// it (numbers are int64 or float64, as apimachinery's unstructured objects hold).
	Content map[string]any

	info *Info
}

// CustomKind is what the registry keeps of the CRD a custom kind is served for.
type CustomKind struct {
	// CRD is the definition, as stored (with its status).
	CRD *apiextensionsv1.CustomResourceDefinition
	// Version is the CRD's version this Info serves.
	Version *apiextensionsv1.CustomResourceDefinitionVersion
	// StorageVersion is the version objects are stored in (conversion None: only the
	// apiVersion differs).
	StorageVersion string
	// Hidden says the version is stored but not served.
	Hidden bool

	webhook Converter // the CRD's conversion webhook (nil: conversion None, or not this process's to call)
}

// Converter converts custom resources of a CRD whose conversion strategy is Webhook to
// the version of the kind to, all in one call of the CRD's webhook (the API server's,
// which NewCustomKinds is given). It returns the objects converted, in order.
type Converter func(crd *apiextensionsv1.CustomResourceDefinition, objs []*Custom, to *Info) ([]*Custom, error)

const (
	customMeta    protowire.Number = 1
	customContent protowire.Number = 2
)

var _ Object = (*Custom)(nil)

// GetObjectKind is the object's apiVersion and kind.
func (c *Custom) GetObjectKind() schema.ObjectKind { return &c.TypeMeta }

// DeepCopyObject copies the object, its content included.
func (c *Custom) DeepCopyObject() runtime.Object { return c.DeepCopy() }

// DeepCopy copies the object, its content included.
func (c *Custom) DeepCopy() *Custom {
	if c == nil {
		return nil
	}
	out := &Custom{TypeMeta: c.TypeMeta, info: c.info}
	c.ObjectMeta.DeepCopyInto(&out.ObjectMeta)
	if c.Content != nil {
		out.Content = runtime.DeepCopyJSON(c.Content)
	}
	return out
}

// Info is the kind the object is of (nil for one made outside the registry).
func (c *Custom) Info() *Info { return c.info }

func (c *Custom) contentJSON() ([]byte, error) {
	if len(c.Content) == 0 {
		return nil, nil
	}
	return json.Marshal(c.Content)
}

// Size is the length of the object's own encoding.
func (c *Custom) Size() int {
	n := c.ObjectMeta.Size()
	size := protowire.SizeTag(customMeta) + protowire.SizeBytes(n)
	if b, err := c.contentJSON(); err == nil && len(b) > 0 {
		size += protowire.SizeTag(customContent) + protowire.SizeBytes(len(b))
	}
	return size
}

// MarshalTo writes the object's own encoding into b.
func (c *Custom) MarshalTo(b []byte) (int, error) {
	return c.MarshalToSizedBuffer(b[:c.Size()])
}

// MarshalToSizedBuffer writes the object's own encoding at the end of b, as
// gogo-protobuf's generated code does.
func (c *Custom) MarshalToSizedBuffer(b []byte) (int, error) {
	meta, err := c.ObjectMeta.Marshal()
	if err != nil {
		return 0, err
	}
	content, err := c.contentJSON()
	if err != nil {
		return 0, fmt.Errorf("encode %s %s: %w", c.Kind, c.Name, err)
	}
	out := protowire.AppendTag(nil, customMeta, protowire.BytesType)
	out = protowire.AppendBytes(out, meta)
	if len(content) > 0 {
		out = protowire.AppendTag(out, customContent, protowire.BytesType)
		out = protowire.AppendBytes(out, content)
	}
	if len(out) > len(b) {
		return 0, fmt.Errorf("encode %s %s: buffer too small", c.Kind, c.Name)
	}
	copy(b[len(b)-len(out):], out)
	return len(out), nil
}

// Unmarshal reads the object's own encoding; a repeated metadata field merges into the
// first, as protobuf's do.
func (c *Custom) Unmarshal(b []byte) error {
	return eachBytesField(b, func(num protowire.Number, v []byte) error {
		switch num {
		case customMeta:
			return c.ObjectMeta.Unmarshal(v)
		case customContent:
			var m map[string]any
			if err := utiljson.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("content: %w", err)
			}
			c.Content = m
		}
		return nil
	})
}

// MarshalJSON writes the object as Kubernetes does: apiVersion, kind, metadata and the
// content's fields.
func (c *Custom) MarshalJSON() ([]byte, error) {
	m := make(map[string]any, len(c.Content)+3)
	for k, v := range c.Content {
		m[k] = v
	}
	if c.APIVersion != "" {
		m["apiVersion"] = c.APIVersion
	}
	if c.Kind != "" {
		m["kind"] = c.Kind
	}
	m["metadata"] = &c.ObjectMeta
	return json.Marshal(m)
}

// UnmarshalJSON reads an object's JSON; metadata is decoded strictly into ObjectMeta.
func (c *Custom) UnmarshalJSON(b []byte) error {
	var m map[string]any
	if err := utiljson.Unmarshal(b, &m); err != nil {
		return err
	}
	if m == nil {
		return fmt.Errorf("the object is null")
	}
	if v, ok := m["apiVersion"].(string); ok {
		c.APIVersion = v
	}
	if v, ok := m["kind"].(string); ok {
		c.Kind = v
	}
	c.ObjectMeta = metav1.ObjectMeta{}
	if meta, ok := m["metadata"]; ok && meta != nil {
		mb, err := json.Marshal(meta)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(mb, &c.ObjectMeta); err != nil {
			return fmt.Errorf("metadata: %w", err)
		}
	}
	delete(m, "apiVersion")
	delete(m, "kind")
	delete(m, "metadata")
	c.Content = m
	return nil
}

// The custom kinds, replaced as a whole by SetCustom.
var custom struct {
	sync.RWMutex
	served []*Info            // the built-in kinds, then the custom ones
	byName map[string]*Info   // the custom kinds' names, as byName
	byGVK  map[string]*Info   // "apiVersion/Kind"
	crds   map[string][]*Info // by CRD name
}

var customType = reflect.TypeOf((*Custom)(nil))

// NewCustomKinds makes the Infos of crd's served versions. A version other than the
// storage version is served over the storage version's objects, converted (ConvertCustom:
// conversion None rewrites the apiVersion, nothing else; Webhook calls webhook).
func NewCustomKinds(crd *apiextensionsv1.CustomResourceDefinition, webhook Converter) []*Info {
	var out []*Info
	var stored *Info
	for i := range crd.Spec.Versions {
		v := &crd.Spec.Versions[i]
		if !v.Served && !v.Storage {
			continue
		}
		in := newCustomKind(crd, v)
		in.Custom.webhook = webhook
		if v.Storage {
			stored = in
		}
		if v.Served {
			out = append(out, in)
		}
	}
	if stored == nil {
		return nil
	}
	for _, in := range out {
		if in != stored {
			in.Conversion = &Conversion{Storage: stored, ToStorage: convertTo(stored), FromStorage: convertTo(in)}
		}
	}
	if !stored.Custom.Version.Served {
		// Stored but not served: kept only as the other versions' storage.
		stored.Custom.Hidden = true
		out = append(out, stored)
	}
	return out
}

// convertTo converts a custom resource to in's version.
func convertTo(in *Info) func(Object) (Object, error) {
	return func(obj Object) (Object, error) {
		out, err := in.ConvertCustom([]*Custom{obj.(*Custom)})
		if err != nil {
			return nil, err
		}
		return out[0], nil
	}
}

// ConvertCustom converts objs, custom resources of in's CRD in any of its versions (a
// CRD's objects are stored in the storage version of the time they were written), to
// in's version: copies, with in's apiVersion (an object already of kind in is returned
// as it is). Conversion None changes nothing else; Webhook sends those of another
// version to the CRD's webhook, in one call.
func (in *Info) ConvertCustom(objs []*Custom) ([]*Custom, error) {
	ck := in.Custom
	webhook := ck.CRD.Spec.Conversion != nil && ck.CRD.Spec.Conversion.Strategy == apiextensionsv1.WebhookConverter
	out := make([]*Custom, len(objs))
	var others []*Custom
	var at []int
	for i, c := range objs {
		if c.info == in && c.APIVersion == in.APIVersion {
			out[i] = c
			continue
		}
		if c.APIVersion == in.APIVersion || c.APIVersion == "" || !webhook {
			out[i] = c.DeepCopy()
			out[i].info = in
			if c.APIVersion != "" {
				out[i].APIVersion = in.APIVersion
			}
			continue
		}
		others, at = append(others, c), append(at, i)
	}
	if len(others) == 0 {
		return out, nil
	}
	if ck.webhook == nil {
		return nil, fmt.Errorf("conversion webhook for %s, Kind=%s failed: this process does not call conversion webhooks", others[0].APIVersion, in.Kind)
	}
	converted, err := ck.webhook(ck.CRD, others, in)
	if err != nil {
		return nil, err
	}
	for j, i := range at {
		converted[j].info = in
		out[i] = converted[j]
	}
	return out, nil
}

func newCustomKind(crd *apiextensionsv1.CustomResourceDefinition, version *apiextensionsv1.CustomResourceDefinitionVersion) *Info {
	names := crd.Status.AcceptedNames
	if names.Kind == "" {
		names = crd.Spec.Names
	}
	storage := ""
	for _, v := range crd.Spec.Versions {
		if v.Storage {
			storage = v.Name
		}
	}
	in := &Info{Kind: names.Kind, Group: crd.Spec.Group, Version: version.Name, APIVersion: crd.Spec.Group + "/" + version.Name,
		Plural: names.Plural, Singular: names.Singular, ShortNames: names.ShortNames, Categories: names.Categories,
		Namespaced: crd.Spec.Scope == apiextensionsv1.NamespaceScoped, typ: customType,
		Custom: &CustomKind{CRD: crd, Version: version, StorageVersion: storage}}
	if in.Singular == "" {
		in.Singular = strings.ToLower(in.Kind)
	}
	if version.Subresources != nil && version.Subresources.Status != nil {
		in.HasStatus, in.HasSpec = true, true
	}
	in.New = func() Object {
		return &Custom{TypeMeta: metav1.TypeMeta{APIVersion: in.APIVersion, Kind: in.Kind}, info: in}
	}
	return in
}

// SetCustom replaces the custom kinds the registry serves by those given (the served
// versions of every established CRD). A name a built-in kind has stays the built-in's.
func SetCustom(infos []*Info) {
	sorted := append([]*Info(nil), infos...)
	sort.SliceStable(sorted, func(i, j int) bool {
		if sorted[i].Group != sorted[j].Group {
			return sorted[i].Group < sorted[j].Group
		}
		return sorted[i].Plural < sorted[j].Plural
	})
	names, gvks, crds := map[string]*Info{}, map[string]*Info{}, map[string][]*Info{}
	for _, in := range sorted {
		gvks[in.APIVersion+"/"+in.Kind] = in
		crds[in.Custom.CRD.Name] = append(crds[in.Custom.CRD.Name], in)
		if in.Version != in.Custom.StorageVersion || in.Custom.Hidden {
			continue // the plain names are the storage version's
		}
		for _, n := range append([]string{in.Kind, in.Plural, in.Singular, in.Plural + "." + in.Group, in.Singular + "." + in.Group,
			in.Kind + "." + in.Group}, in.ShortNames...) {
			n = strings.ToLower(n)
			if _, builtin := byName[n]; !builtin {
				if _, taken := names[n]; !taken {
					names[n] = in
				}
			}
		}
	}
	for _, in := range sorted {
		n := strings.ToLower(in.Plural + "." + in.Version + "." + in.Group)
		if _, builtin := byName[n]; !builtin {
			names[n] = in
		}
	}
	custom.Lock()
	defer custom.Unlock()
	custom.served = append([]*Info(nil), served...)
	for _, in := range sorted {
		if !in.Custom.Hidden {
			custom.served = append(custom.served, in)
		}
	}
	custom.byName, custom.byGVK, custom.crds = names, gvks, crds
}

// ServeCRDs makes the registry serve the established CRDs among crds (not those being
// deleted): the API server, the controller-manager and skiffctl each call it with the
// CRDs they see, so that every process names, decodes and routes custom resources alike.
// webhook calls conversion webhooks: the API server's; nil in a process that does not
// convert between a CRD's versions (it reads them in their storage version, over gRPC).
func ServeCRDs(crds []*apiextensionsv1.CustomResourceDefinition, webhook Converter) {
	var infos []*Info
	for _, crd := range crds {
		if Established(crd) && crd.DeletionTimestamp == nil {
			infos = append(infos, NewCustomKinds(crd, webhook)...)
		}
	}
	SetCustom(infos)
}

// Established says whether crd has the Established condition: its names accepted,
// its resources served.
func Established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == apiextensionsv1.Established {
			return c.Status == apiextensionsv1.ConditionTrue
		}
	}
	return false
}

// CustomStored returns one Info per served CRD: the kind its objects are stored as.
func CustomStored() []*Info {
	custom.RLock()
	defer custom.RUnlock()
	var out []*Info
	for _, infos := range custom.crds {
		for _, in := range infos {
			if in.Conversion == nil {
				out = append(out, in)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Plural+"."+out[i].Group < out[j].Plural+"."+out[j].Group })
	return out
}

// CustomKinds returns the custom kinds served for the CRD named (nil: none).
func CustomKinds(crd string) []*Info {
	custom.RLock()
	defer custom.RUnlock()
	return custom.crds[crd]
}

func lookupCustom(name string) (*Info, bool) {
	custom.RLock()
	defer custom.RUnlock()
	return lookupFolded(custom.byName, name)
}

func customByGVK(apiVersion, kind string) (*Info, bool) {
	custom.RLock()
	defer custom.RUnlock()
	in, ok := custom.byGVK[apiVersion+"/"+kind]
	return in, ok
}

func servedWithCustom() []*Info {
	custom.RLock()
	defer custom.RUnlock()
	if custom.served == nil {
		return served
	}
	return custom.served
}
