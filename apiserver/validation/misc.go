package validation

import (
	"maps"
	"slices"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var (
	eventTypes      = []string{corev1.EventTypeNormal, corev1.EventTypeWarning}
	namespacePhases = []corev1.NamespacePhase{corev1.NamespaceActive, corev1.NamespaceTerminating}
)

func validateNodeSpec(spec *corev1.NodeSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	type keyEffect struct {
		key    string
		effect corev1.TaintEffect
	}
	seen := map[keyEffect]bool{}
	for i := range spec.Taints {
		t := &spec.Taints[i]
		tp := p.Child("taints").Index(i)
		if t.Key == "" {
			errs = append(errs, field.Required(tp.Child("key"), ""))
		} else {
			errs = append(errs, metav1validation.ValidateLabelName(t.Key, tp.Child("key"))...)
		}
		errs = append(errs, invalidEach(tp.Child("value"), t.Value, content.IsLabelValue(t.Value))...)
		if t.Effect == "" {
			errs = append(errs, field.Required(tp.Child("effect"), ""))
		} else {
			errs = append(errs, oneOfChild(tp, "effect", t.Effect, taintEffects...)...)
		}
		k := keyEffect{t.Key, t.Effect}
		if seen[k] {
			dup := field.Duplicate(tp, t)
			dup.Detail = "taints must be unique by key and effect pair"
			errs = append(errs, dup)
		}
		seen[k] = true
	}
	if spec.PodCIDR != "" {
		errs = append(errs, utilvalidation.IsValidCIDRForLegacyField(p.Child("podCIDR"), spec.PodCIDR, true, nil)...)
	}
	switch {
	case len(spec.PodCIDRs) > 1:
		errs = append(errs, field.TooMany(p.Child("podCIDRs"), len(spec.PodCIDRs), 1))
	case len(spec.PodCIDRs) == 1 && spec.PodCIDRs[0] != spec.PodCIDR:
		errs = append(errs, field.Invalid(p.Child("podCIDRs"), spec.PodCIDRs, "must be [podCIDR]"))
	}
	return errs
}

// validateNodeUpdate is Kubernetes' rule for a node's pod ranges: set once, then fixed
// (the node's pods have addresses in them).
func validateNodeUpdate(old, node *corev1.Node) field.ErrorList {
	if old.Spec.PodCIDR != "" && node.Spec.PodCIDR != old.Spec.PodCIDR {
		return field.ErrorList{field.Forbidden(field.NewPath("spec", "podCIDRs"), `node updates may not change podCIDR except from "" to valid`)}
	}
	return nil
}

func validateNodeStatus(st *corev1.NodeStatus, p *field.Path) field.ErrorList {
	errs := validateResourceList(st.Capacity, p.Child("capacity"))
	errs = append(errs, validateResourceList(st.Allocatable, p.Child("allocatable"))...)
	for i, c := range st.Conditions {
		errs = append(errs, validateCondition(string(c.Type), c.Status, p.Child("conditions").Index(i))...)
	}
	for i, a := range st.Addresses {
		if a.Type == "" {
			errs = append(errs, field.Required(p.Child("addresses").Index(i).Child("type"), ""))
		}
	}
	return errs
}

func validateConfigMap(cm *corev1.ConfigMap) field.ErrorList {
	errs, size := dataKeys(field.NewPath("data"), cm.Data)
	binErrs, binSize := dataKeys(field.NewPath("binaryData"), cm.BinaryData)
	errs = append(errs, binErrs...)
	for _, k := range slices.Sorted(maps.Keys(cm.BinaryData)) {
		if _, dup := cm.Data[k]; dup {
			errs = append(errs, field.Invalid(field.NewPath("binaryData").Key(k), k, "duplicate of key present in data"))
		}
	}
	// Kubernetes' limit for a Secret, which it applies to a ConfigMap too.
	if size+binSize > corev1.MaxSecretSize {
		errs = append(errs, field.TooLong(field.NewPath("data"), "", corev1.MaxSecretSize))
	}
	return errs
}

// EventMessageLimit is the longest an Event's message may be, in bytes: Kubernetes'
// limit of an event's note. Events are many and kept in memory by every watcher of
// them; a message is a sentence, not a payload.
const EventMessageLimit = 1024

func validateEvent(ev *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	// involvedObject's kind and name may be empty, as Kubernetes' core/v1 Events allow
	// (its conformance tests record such an Event).
	io := field.NewPath("involvedObject")
	if ns := ev.InvolvedObject.Namespace; ns != "" {
		errs = append(errs, invalidEach(io.Child("namespace"), ns, apivalidation.ValidateNamespaceName(ns, false))...)
	}
	if ev.Type != "" {
		errs = append(errs, oneOf(field.NewPath("type"), ev.Type, eventTypes...)...)
	}
	if len(ev.Message) > EventMessageLimit {
		errs = append(errs, field.TooLong(field.NewPath("message"), "", EventMessageLimit))
	}
	return append(errs, apivalidation.ValidateNonnegativeField(int64(ev.Count), field.NewPath("count"))...)
}

func validateLeaseSpec(spec *coordinationv1.LeaseSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if d := spec.LeaseDurationSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(p.Child("leaseDurationSeconds"), *d, "must be greater than 0"))
	}
	if t := spec.LeaseTransitions; t != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*t), p.Child("leaseTransitions"))...)
	}
	return errs
}

func validateNamespaceSpec(spec *corev1.NamespaceSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for i, f := range spec.Finalizers {
		errs = append(errs, apivalidation.ValidateFinalizerName(string(f), p.Child("finalizers").Index(i))...)
	}
	return errs
}
