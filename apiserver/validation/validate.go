package validation

import (
	"fmt"
	"net"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/kinds"
)

// Validate checks an object as it is written by create: its metadata and its desired
// state. It returns nil or an ErrorList with every problem found.
func Validate(obj kinds.Object) error {
	var e errs
	e.object(obj)
	return e.list.err()
}

// ValidateUpdate checks obj as it is written over old: everything Validate checks, and
// that fields which may not change did not. old is the stored object. Defaults do not
// count as changes: a pod spec is compared with Default's values filled in on both sides.
func ValidateUpdate(old, obj kinds.Object) error {
	var e errs
	e.object(obj)
	e.update(old, obj)
	return e.list.err()
}

// ValidateStatus checks the status of obj, as written by UpdateStatus. It looks at the
// status only: the rest of obj is the stored object, which was validated when written.
func ValidateStatus(obj kinds.Object) error {
	var e errs
	p := path("status")
	switch o := obj.(type) {
	case *corev1.Pod:
		e.podStatus(p, o.GetStatus())
	case *corev1.Deployment:
		st := o.GetStatus()
		if st == nil {
			st = &corev1.DeploymentStatus{}
		}
		e.nonNegative(p.child("observedGeneration"), st.GetObservedGeneration())
		for _, f := range []struct {
			name string
			n    int32
		}{{"replicas", st.GetReplicas()}, {"updatedReplicas", st.GetUpdatedReplicas()}, {"readyReplicas", st.GetReadyReplicas()},
			{"availableReplicas", st.GetAvailableReplicas()}, {"unavailableReplicas", st.GetUnavailableReplicas()}} {
			e.nonNegative(p.child(f.name), int64(f.n))
		}
		if st.CollisionCount != nil {
			e.nonNegative(p.child("collisionCount"), int64(st.GetCollisionCount()))
		}
		for i, c := range st.GetConditions() {
			e.condition(p.child("conditions").index(i), c.GetType(), c.GetStatus())
		}
	case *corev1.ReplicaSet:
		st := o.GetStatus()
		e.nonNegative(p.child("observedGeneration"), st.GetObservedGeneration())
		for _, f := range []struct {
			name string
			n    int32
		}{{"replicas", st.GetReplicas()}, {"fullyLabeledReplicas", st.GetFullyLabeledReplicas()},
			{"readyReplicas", st.GetReadyReplicas()}, {"availableReplicas", st.GetAvailableReplicas()}} {
			e.nonNegative(p.child(f.name), int64(f.n))
		}
		for i, c := range st.GetConditions() {
			e.condition(p.child("conditions").index(i), c.GetType(), c.GetStatus())
		}
	case *corev1.Node:
		st := o.GetStatus()
		e.quantities(p.child("capacity"), st.GetCapacity())
		e.quantities(p.child("allocatable"), st.GetAllocatable())
		for i, c := range st.GetConditions() {
			e.condition(p.child("conditions").index(i), c.GetType(), c.GetStatus())
		}
		for i, a := range st.GetAddresses() {
			if a.GetType() == "" {
				e.required(p.child("addresses").index(i).child("type"), "")
			}
		}
	case *corev1.Namespace:
		if ph := o.GetStatus().GetPhase(); ph != "" {
			e.oneOf(p.child("phase"), ph, namespacePhase...)
		}
	}
	return e.list.err()
}

// object checks metadata and then the kind's own rules.
func (e *errs) object(obj kinds.Object) {
	info := kinds.Of(obj)
	e.objectMeta("metadata", obj.GetMetadata(), info)
	spec := path("spec")
	switch o := obj.(type) {
	case *corev1.Pod:
		e.podSpec(spec, o.GetSpec())
	case *corev1.Deployment:
		e.deploymentSpec(spec, o.GetSpec())
	case *corev1.ReplicaSet:
		e.replicaSetSpec(spec, o.GetSpec())
	case *corev1.Node:
		e.nodeSpec(spec, o.GetSpec())
	case *corev1.ConfigMap:
		e.configMap(o)
	case *corev1.Event:
		e.event(o)
	case *corev1.Lease:
		e.leaseSpec(spec, o.GetSpec())
	case *corev1.Namespace:
		e.namespaceSpec(spec, o.GetSpec())
	}
}

// update checks what obj may not change from old.
func (e *errs) update(old, obj kinds.Object) {
	if kinds.Of(old) != kinds.Of(obj) {
		e.invalid("kind", kinds.Of(obj).Kind, fmt.Sprintf("must be %s, the kind of the stored object", kinds.Of(old).Kind))
		return
	}
	om, nm := old.GetMetadata(), obj.GetMetadata()
	if om.GetName() != "" && nm.GetName() != om.GetName() {
		e.invalid("metadata.name", nm.GetName(), "field is immutable")
	}
	if om.GetNamespace() != "" && nm.GetNamespace() != om.GetNamespace() {
		e.invalid("metadata.namespace", nm.GetNamespace(), "field is immutable")
	}
	switch o := obj.(type) {
	case *corev1.Pod:
		e.podSpecUpdate("spec", old.(*corev1.Pod).GetSpec(), o.GetSpec())
	case *corev1.Deployment:
		e.selectorUpdate("spec.selector", old.(*corev1.Deployment).GetSpec().GetSelector(), o.GetSpec().GetSelector())
	case *corev1.ReplicaSet:
		e.selectorUpdate("spec.selector", old.(*corev1.ReplicaSet).GetSpec().GetSelector(), o.GetSpec().GetSelector())
	case *corev1.ConfigMap:
		oc := old.(*corev1.ConfigMap)
		if oc.GetImmutable() {
			if !o.GetImmutable() {
				e.forbidden("immutable", "field is immutable when `immutable` is set")
			}
			if !proto.Equal(&corev1.ConfigMap{Data: oc.GetData()}, &corev1.ConfigMap{Data: o.GetData()}) {
				e.forbidden("data", "field is immutable when `immutable` is set")
			}
			if !proto.Equal(&corev1.ConfigMap{BinaryData: oc.GetBinaryData()}, &corev1.ConfigMap{BinaryData: o.GetBinaryData()}) {
				e.forbidden("binaryData", "field is immutable when `immutable` is set")
			}
		}
	}
}

// selectorUpdate: a controller's selector is fixed, or it would orphan the pods it owns
// and adopt others.
func (e *errs) selectorUpdate(p path, old, sel *corev1.LabelSelector) {
	if !proto.Equal(old, sel) {
		e.invalid(p, selectorString(sel), "field is immutable")
	}
}

// selectorString renders a LabelSelector message for an error, in selector syntax.
func selectorString(ls *corev1.LabelSelector) string {
	var parts []string
	for _, k := range sortedKeys(ls.GetMatchLabels()) {
		parts = append(parts, k+"="+ls.GetMatchLabels()[k])
	}
	for _, r := range ls.GetMatchExpressions() {
		switch r.GetOperator() {
		case "Exists":
			parts = append(parts, r.GetKey())
		case "DoesNotExist":
			parts = append(parts, "!"+r.GetKey())
		default:
			parts = append(parts, fmt.Sprintf("%s %s (%s)", r.GetKey(), strings.ToLower(r.GetOperator()), strings.Join(r.GetValues(), ",")))
		}
	}
	return strings.Join(parts, ",")
}

const podUpdateMsg = "pod updates may not change fields other than `spec.containers[*].image` " +
	"and `spec.tolerations` (only additions to existing tolerations)"

// podSpecUpdate enforces that a pod's spec is fixed once created, but for container
// images and added tolerations, as in Kubernetes. nodeName is set by Bind, not by update.
func (e *errs) podSpecUpdate(p path, old, spec *corev1.PodSpec) {
	// Compare defaulted copies, so a default filled on one side only is not a change.
	old, spec = defaultedPodSpec(old), defaultedPodSpec(spec)
	// Take the changes that are allowed into a copy of old; whatever still differs is not.
	allowed := proto.Clone(old).(*corev1.PodSpec)
	if len(allowed.Containers) == len(spec.GetContainers()) {
		for i, c := range allowed.Containers {
			c.Image = spec.GetContainers()[i].GetImage()
		}
	}
	if tolerationsAdded(old.GetTolerations(), spec.GetTolerations()) {
		allowed.Tolerations = spec.GetTolerations()
	}
	if proto.Equal(allowed, spec) {
		return
	}
	changed := changedFields(p, allowed, spec)
	e.forbidden(p, podUpdateMsg+" (changed: "+strings.Join(changed, ", ")+")")
}

func defaultedPodSpec(spec *corev1.PodSpec) *corev1.PodSpec {
	if spec == nil {
		spec = &corev1.PodSpec{}
	}
	spec = proto.Clone(spec).(*corev1.PodSpec)
	defaultPodSpec(spec)
	return spec
}

// tolerationsAdded reports whether next keeps every toleration of old.
func tolerationsAdded(old, next []*corev1.Toleration) bool {
	for _, t := range old {
		found := false
		for _, n := range next {
			if proto.Equal(t, n) {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// changedFields names the fields of a and b (one message type) that differ, by their JSON
// names; for lists of messages of the same length it names the elements' fields.
func changedFields(p path, a, b proto.Message) []string {
	am, bm := a.ProtoReflect(), b.ProtoReflect()
	var out []string
	fields := am.Descriptor().Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		fp := p.child(fd.JSONName())
		if fieldEqual(am, bm, fd) {
			continue
		}
		if fd.IsList() && fd.Message() != nil && am.Get(fd).List().Len() == bm.Get(fd).List().Len() {
			al, bl := am.Get(fd).List(), bm.Get(fd).List()
			for j := 0; j < al.Len(); j++ {
				out = append(out, changedFields(fp.index(j), al.Get(j).Message().Interface(), bl.Get(j).Message().Interface())...)
			}
			continue
		}
		out = append(out, string(fp))
	}
	return out
}

// fieldEqual compares one field of two messages by copying it alone into empty ones.
func fieldEqual(am, bm protoreflect.Message, fd protoreflect.FieldDescriptor) bool {
	x, y := am.New(), bm.New()
	if am.Has(fd) {
		x.Set(fd, am.Get(fd))
	}
	if bm.Has(fd) {
		y.Set(fd, bm.Get(fd))
	}
	return proto.Equal(x.Interface(), y.Interface())
}

var podPhases = []string{"Pending", "Running", "Succeeded", "Failed", "Unknown"}

func (e *errs) podStatus(p path, st *corev1.PodStatus) {
	if ph := st.GetPhase(); ph != "" {
		e.oneOf(p.child("phase"), ph, podPhases...)
	}
	for i, c := range st.GetConditions() {
		e.condition(p.child("conditions").index(i), c.GetType(), c.GetStatus())
	}
	for _, f := range []struct{ name, ip string }{{"hostIP", st.GetHostIp()}, {"podIP", st.GetPodIp()}} {
		if f.ip != "" && net.ParseIP(f.ip) == nil {
			e.invalid(p.child(f.name), f.ip, "must be a valid IP address")
		}
	}
	for i, cs := range st.GetContainerStatuses() {
		cp := p.child("containerStatuses").index(i)
		if cs.GetName() == "" {
			e.required(cp.child("name"), "")
		}
		e.nonNegative(cp.child("restartCount"), int64(cs.GetRestartCount()))
	}
}

// condition checks the two fields every condition has.
func (e *errs) condition(p path, typ, status string) {
	if typ == "" {
		e.required(p.child("type"), "")
	}
	e.oneOf(p.child("status"), status, "True", "False", "Unknown")
}
