package validation

import (
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	schedulingv1 "k8s.io/api/scheduling/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// PriorityClasses: Kubernetes' scheduling validation (pkg/apis/scheduling) and
// defaults. The Priority admission (apiserver) resolves a pod's class into its
// priority; the scheduler orders and preempts by it.

// The classes Kubernetes reserves and its API servers create at start, and the limits
// of what users may define (Kubernetes' scheduling constants).
const (
	SystemPriorityClassPrefix = "system-"
	// HighestUserDefinablePriority is the largest value of a class outside the
	// system- prefix.
	HighestUserDefinablePriority = int32(1000000000)
	SystemCriticalPriority       = 2 * HighestUserDefinablePriority
	SystemClusterCritical        = SystemPriorityClassPrefix + "cluster-critical"
	SystemNodeCritical           = SystemPriorityClassPrefix + "node-critical"
)

// SystemPriorityClasses are Kubernetes' two built-in classes, which the API servers
// create when they start (unless they exist).
func SystemPriorityClasses() []*schedulingv1.PriorityClass {
	return []*schedulingv1.PriorityClass{
		{ObjectMeta: metav1.ObjectMeta{Name: SystemClusterCritical}, Value: SystemCriticalPriority, Description: "Used for system critical pods that must run in the cluster, but can be moved to another node if necessary."},
		{ObjectMeta: metav1.ObjectMeta{Name: SystemNodeCritical}, Value: SystemCriticalPriority + 1000, Description: "Used for system critical pods that must not be moved from their current node."},
	}
}

// preemptionPolicies are the values of a pod's or class's preemptionPolicy.
var preemptionPolicies = []string{string(corev1.PreemptLowerPriority), string(corev1.PreemptNever)}

// defaultPriorityClass is Kubernetes' SetDefaults_PriorityClass: a class preempts lower
// priorities unless it says otherwise.
func defaultPriorityClass(pc *schedulingv1.PriorityClass) {
	if pc.PreemptionPolicy == nil {
		pc.PreemptionPolicy = new(corev1.PreemptLowerPriority)
	}
}

// validatePreemptionPolicy is Kubernetes' ValidatePreemptionPolicy.
func validatePreemptionPolicy(policy *corev1.PreemptionPolicy, p *field.Path) field.ErrorList {
	switch *policy {
	case corev1.PreemptLowerPriority, corev1.PreemptNever:
		return nil
	case "":
		return field.ErrorList{field.Required(p, "")}
	}
	return field.ErrorList{field.NotSupported(p, *policy, preemptionPolicies)}
}

// validatePriorityClass is Kubernetes' ValidatePriorityClass: a name with the system-
// prefix must be one of the built-in classes, with its value and globalDefault; a
// user's class is at most HighestUserDefinablePriority.
func validatePriorityClass(pc *schedulingv1.PriorityClass) field.ErrorList {
	var errs field.ErrorList
	if strings.HasPrefix(pc.Name, SystemPriorityClassPrefix) {
		if err := knownSystemPriorityClass(pc); err != nil {
			errs = append(errs, field.Forbidden(field.NewPath("metadata", "name"),
				"priority class names with '"+SystemPriorityClassPrefix+"' prefix are reserved for system use only. error: "+err.Error()))
		}
	} else if pc.Value > HighestUserDefinablePriority {
		errs = append(errs, field.Forbidden(field.NewPath("value"), fmt.Sprintf("maximum allowed value of a user defined priority is %v", HighestUserDefinablePriority)))
	}
	if pc.PreemptionPolicy != nil {
		errs = append(errs, validatePreemptionPolicy(pc.PreemptionPolicy, field.NewPath("preemptionPolicy"))...)
	}
	return errs
}

// knownSystemPriorityClass is Kubernetes' IsKnownSystemPriorityClass.
func knownSystemPriorityClass(pc *schedulingv1.PriorityClass) error {
	for _, spc := range SystemPriorityClasses() {
		if spc.Name != pc.Name {
			continue
		}
		if spc.Value != pc.Value {
			return fmt.Errorf("value of %v PriorityClass must be %v", spc.Name, spc.Value)
		}
		if spc.GlobalDefault != pc.GlobalDefault {
			return fmt.Errorf("globalDefault of %v PriorityClass must be %v", spc.Name, spc.GlobalDefault)
		}
		return nil
	}
	return fmt.Errorf("%v is not a known system priority class", pc.Name)
}

// validatePriorityClassUpdate is Kubernetes' ValidatePriorityClassUpdate: the value and
// the preemption policy are immutable.
func validatePriorityClassUpdate(old, pc *schedulingv1.PriorityClass) field.ErrorList {
	var errs field.ErrorList
	if pc.Value != old.Value {
		errs = append(errs, field.Forbidden(field.NewPath("value"), "may not be changed in an update."))
	}
	return append(errs, apivalidation.ValidateImmutableField(pc.PreemptionPolicy, old.PreemptionPolicy, field.NewPath("preemptionPolicy"))...)
}
