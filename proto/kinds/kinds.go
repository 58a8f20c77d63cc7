// Package kinds is the registry of the resource kinds Skiff stores: their Kubernetes names
// (kind, apiVersion, plural, short names), whether they are namespaced or carry a status,
// and how each is wrapped in the API's Object envelope. It is the one place that lists
// the kinds; everything that needs "for each kind" asks it.
package kinds

import (
	"fmt"
	"sort"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

// Object is any resource message: every one has metadata.
type Object interface {
	proto.Message
	GetMetadata() *corev1.ObjectMeta
}

// Info describes one kind.
type Info struct {
	Kind       string // "Deployment"
	APIVersion string // "apps/v1"
	Plural     string // "deployments"
	Singular   string // "deployment"
	ShortNames []string
	Namespaced bool
	// HasStatus says the kind has a status written through UpdateStatus.
	HasStatus bool
	// HasSpec says the kind keeps its desired state in spec (generation counts its changes).
	HasSpec bool
	New     func() Object
	wrap    func(Object) *apiv1.Object
}

// The kinds, by Kind name.
const (
	Pod        = "Pod"
	Node       = "Node"
	ReplicaSet = "ReplicaSet"
	Deployment = "Deployment"
	ConfigMap  = "ConfigMap"
	Event      = "Event"
	Lease      = "Lease"
	Namespace  = "Namespace"
)

var all = []*Info{
	{Kind: Pod, APIVersion: "v1", Plural: "pods", Singular: "pod", ShortNames: []string{"po"},
		Namespaced: true, HasStatus: true, HasSpec: true,
		New:  func() Object { return &corev1.Pod{} },
		wrap: func(o Object) *apiv1.Object { return &apiv1.Object{Kind: &apiv1.Object_Pod{Pod: o.(*corev1.Pod)}} }},
	{Kind: Node, APIVersion: "v1", Plural: "nodes", Singular: "node", ShortNames: []string{"no"},
		HasStatus: true, HasSpec: true,
		New:  func() Object { return &corev1.Node{} },
		wrap: func(o Object) *apiv1.Object { return &apiv1.Object{Kind: &apiv1.Object_Node{Node: o.(*corev1.Node)}} }},
	{Kind: ReplicaSet, APIVersion: "apps/v1", Plural: "replicasets", Singular: "replicaset", ShortNames: []string{"rs"},
		Namespaced: true, HasStatus: true, HasSpec: true,
		New: func() Object { return &corev1.ReplicaSet{} },
		wrap: func(o Object) *apiv1.Object {
			return &apiv1.Object{Kind: &apiv1.Object_ReplicaSet{ReplicaSet: o.(*corev1.ReplicaSet)}}
		}},
	{Kind: Deployment, APIVersion: "apps/v1", Plural: "deployments", Singular: "deployment", ShortNames: []string{"deploy"},
		Namespaced: true, HasStatus: true, HasSpec: true,
		New: func() Object { return &corev1.Deployment{} },
		wrap: func(o Object) *apiv1.Object {
			return &apiv1.Object{Kind: &apiv1.Object_Deployment{Deployment: o.(*corev1.Deployment)}}
		}},
	{Kind: ConfigMap, APIVersion: "v1", Plural: "configmaps", Singular: "configmap", ShortNames: []string{"cm"},
		Namespaced: true,
		New:        func() Object { return &corev1.ConfigMap{} },
		wrap: func(o Object) *apiv1.Object {
			return &apiv1.Object{Kind: &apiv1.Object_ConfigMap{ConfigMap: o.(*corev1.ConfigMap)}}
		}},
	{Kind: Event, APIVersion: "v1", Plural: "events", Singular: "event", ShortNames: []string{"ev"},
		Namespaced: true,
		New:        func() Object { return &corev1.Event{} },
		wrap: func(o Object) *apiv1.Object {
			return &apiv1.Object{Kind: &apiv1.Object_Event{Event: o.(*corev1.Event)}}
		}},
	{Kind: Lease, APIVersion: "coordination.k8s.io/v1", Plural: "leases", Singular: "lease",
		Namespaced: true, HasSpec: true,
		New: func() Object { return &corev1.Lease{} },
		wrap: func(o Object) *apiv1.Object {
			return &apiv1.Object{Kind: &apiv1.Object_Lease{Lease: o.(*corev1.Lease)}}
		}},
	{Kind: Namespace, APIVersion: "v1", Plural: "namespaces", Singular: "namespace", ShortNames: []string{"ns"},
		HasStatus: true, HasSpec: true,
		New: func() Object { return &corev1.Namespace{} },
		wrap: func(o Object) *apiv1.Object {
			return &apiv1.Object{Kind: &apiv1.Object_Namespace{Namespace: o.(*corev1.Namespace)}}
		}},
}

var (
	byName = map[string]*Info{}                // every lower-cased name of every kind
	byType = map[protoreflect.FullName]*Info{} // message full name
)

func init() {
	for _, in := range all {
		names := append([]string{in.Kind, in.Plural, in.Singular}, in.ShortNames...)
		for _, n := range names {
			n = strings.ToLower(n)
			if other, dup := byName[n]; dup && other != in {
				panic("kinds: duplicate name " + n)
			}
			byName[n] = in
		}
		byType[in.New().ProtoReflect().Descriptor().FullName()] = in
	}
}

// All returns every kind, in a stable order.
func All() []*Info { return all }

// Lookup finds a kind by its Kind, plural, singular or short name, ignoring case.
func Lookup(name string) (*Info, bool) {
	in, ok := byName[strings.ToLower(name)]
	return in, ok
}

// MustLookup is Lookup for names known at compile time.
func MustLookup(name string) *Info {
	in, ok := Lookup(name)
	if !ok {
		panic("kinds: unknown kind " + name)
	}
	return in
}

// Names lists the names a user may type, for error messages and completion.
func Names() []string {
	var out []string
	for _, in := range all {
		out = append(out, in.Plural)
	}
	sort.Strings(out)
	return out
}

// Of returns the kind of obj.
func Of(obj Object) *Info {
	in, ok := byType[obj.ProtoReflect().Descriptor().FullName()]
	if !ok {
		panic(fmt.Sprintf("kinds: %T is not a resource kind", obj))
	}
	return in
}

// Wrap puts obj into the API's Object envelope.
func Wrap(obj Object) *apiv1.Object { return Of(obj).wrap(obj) }

// Unwrap takes the resource out of the API's Object envelope.
func Unwrap(o *apiv1.Object) (Object, error) {
	if o == nil || o.GetKind() == nil {
		return nil, fmt.Errorf("object: no kind set")
	}
	m := o.ProtoReflect()
	od := m.Descriptor().Oneofs().ByName("kind")
	fd := m.WhichOneof(od)
	if fd == nil {
		return nil, fmt.Errorf("object: no kind set")
	}
	obj, ok := m.Get(fd).Message().Interface().(Object)
	if !ok {
		return nil, fmt.Errorf("object: field %s is not a resource", fd.Name())
	}
	return obj, nil
}

// Meta returns obj's metadata, creating it when absent.
func Meta(obj Object) *corev1.ObjectMeta {
	if md := obj.GetMetadata(); md != nil {
		return md
	}
	m := obj.ProtoReflect()
	fd := m.Descriptor().Fields().ByName("metadata")
	md := &corev1.ObjectMeta{}
	m.Set(fd, protoreflect.ValueOfMessage(md.ProtoReflect()))
	return md
}

// SetTypeMeta fills apiVersion and kind.
func SetTypeMeta(obj Object) {
	in := Of(obj)
	m := obj.ProtoReflect()
	fields := m.Descriptor().Fields()
	m.Set(fields.ByName("api_version"), protoreflect.ValueOfString(in.APIVersion))
	m.Set(fields.ByName("kind"), protoreflect.ValueOfString(in.Kind))
}

// TypeMeta reads apiVersion and kind as written in obj.
func TypeMeta(obj Object) (apiVersion, kind string) {
	m := obj.ProtoReflect()
	fields := m.Descriptor().Fields()
	return m.Get(fields.ByName("api_version")).String(), m.Get(fields.ByName("kind")).String()
}

// Section names the parts of an object that Update and UpdateStatus own.
type Section int

const (
	// SpecSection is everything but metadata and status: spec, or data, or an Event's fields.
	SpecSection Section = iota
	StatusSection
)

// CopySection copies one section of src into dst (both of the same kind), replacing it.
func CopySection(dst, src Object, s Section) {
	dm, sm := dst.ProtoReflect(), src.ProtoReflect()
	fields := dm.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		switch fd.Name() {
		case "api_version", "kind", "metadata":
			continue
		case "status":
			if s != StatusSection {
				continue
			}
		default:
			if s != SpecSection {
				continue
			}
		}
		if sm.Has(fd) {
			dm.Set(fd, sm.Get(fd))
		} else {
			dm.Clear(fd)
		}
	}
}

// SectionEqual reports whether a and b (of one kind) have equal sections.
func SectionEqual(a, b Object, s Section) bool {
	ca, cb := a.ProtoReflect().New().Interface().(Object), b.ProtoReflect().New().Interface().(Object)
	CopySection(ca, a, s)
	CopySection(cb, b, s)
	return proto.Equal(ca, cb)
}
