package validation

import (
	policyv1 "k8s.io/api/policy/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var unhealthyPodEvictionPolicies = []policyv1.UnhealthyPodEvictionPolicyType{policyv1.AlwaysAllow, policyv1.IfHealthyBudget}

// validatePodDisruptionBudgetSpec is Kubernetes' ValidatePodDisruptionBudgetSpec: at
// most one of minAvailable and maxUnavailable, each a count or a percent of at most
// 100%, and a valid selector. A selector may be left out, or empty: a budget without
// one selects no pods, an empty one every pod of its namespace (policy/v1).
func validatePodDisruptionBudgetSpec(spec *policyv1.PodDisruptionBudgetSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.MinAvailable != nil && spec.MaxUnavailable != nil {
		errs = append(errs, field.Invalid(p, spec, "minAvailable and maxUnavailable cannot be both set"))
	}
	if spec.MinAvailable != nil {
		errs = append(errs, percentOrCount(spec.MinAvailable, p.Child("minAvailable"))...)
	}
	if spec.MaxUnavailable != nil {
		errs = append(errs, percentOrCount(spec.MaxUnavailable, p.Child("maxUnavailable"))...)
	}
	errs = append(errs, metav1validation.ValidateLabelSelector(spec.Selector, metav1validation.LabelSelectorValidationOptions{}, p.Child("selector"))...)
	if pol := spec.UnhealthyPodEvictionPolicy; pol != nil {
		errs = append(errs, oneOfChild(p, "unhealthyPodEvictionPolicy", *pol, unhealthyPodEvictionPolicies...)...)
	}
	return errs
}

// percentOrCount checks an int-or-percent that counts pods: a non-negative count, or a
// percent of at most 100%.
func percentOrCount(v *intstr.IntOrString, p *field.Path) field.ErrorList {
	n, errs := intOrPercent(v, p)
	if len(errs) == 0 && v.Type == intstr.String && n > 100 {
		errs = append(errs, field.Invalid(p, v, "must not be greater than 100%"))
	}
	return errs
}

// validatePodDisruptionBudgetStatus is Kubernetes' ValidatePodDisruptionBudgetStatusUpdate.
func validatePodDisruptionBudgetStatus(st *policyv1.PodDisruptionBudgetStatus, p *field.Path) field.ErrorList {
	errs := metav1validation.ValidateConditions(st.Conditions, p.Child("conditions"))
	errs = append(errs, apivalidation.ValidateNonnegativeField(st.ObservedGeneration, p.Child("observedGeneration"))...)
	return append(errs, nonNegativeCounts(p, count{"disruptionsAllowed", st.DisruptionsAllowed}, count{"currentHealthy", st.CurrentHealthy},
		count{"desiredHealthy", st.DesiredHealthy}, count{"expectedPods", st.ExpectedPods})...)
}
