package validation

import (
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

var strategyTypes = []appsv1.DeploymentStrategyType{appsv1.RecreateDeploymentStrategyType, appsv1.RollingUpdateDeploymentStrategyType}

func validateDeploymentSpec(spec *appsv1.DeploymentSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.Replicas != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*spec.Replicas), p.Child("replicas"))...)
	}
	errs = append(errs, validateSelectorAndTemplate(spec.Selector, &spec.Template, "deployment", p)...)
	errs = append(errs, validateStrategy(&spec.Strategy, p.Child("strategy"))...)
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), p.Child("minReadySeconds"))...)
	if spec.RevisionHistoryLimit != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*spec.RevisionHistoryLimit), p.Child("revisionHistoryLimit"))...)
	}
	if pd := spec.ProgressDeadlineSeconds; pd != nil {
		pp := p.Child("progressDeadlineSeconds")
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*pd), pp)...)
		if *pd >= 0 && *pd <= spec.MinReadySeconds {
			errs = append(errs, field.Invalid(pp, *pd, "must be greater than minReadySeconds"))
		}
	}
	return errs
}

func validateReplicaSetSpec(spec *appsv1.ReplicaSetSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if spec.Replicas != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*spec.Replicas), p.Child("replicas"))...)
	}
	errs = append(errs, apivalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), p.Child("minReadySeconds"))...)
	return append(errs, validateSelectorAndTemplate(spec.Selector, &spec.Template, "replicaset", p)...)
}

// validateReplicationControllerSpec is Kubernetes' ValidateReplicationControllerSpec: a
// ReplicaSet's rules, with the selector a map (defaulted from the template's labels) and
// a template that may not set a deadline.
func validateReplicationControllerSpec(spec *corev1.ReplicationControllerSpec, p *field.Path) field.ErrorList {
	errs := apivalidation.ValidateNonnegativeField(int64(spec.MinReadySeconds), p.Child("minReadySeconds"))
	if len(spec.Selector) == 0 {
		errs = append(errs, field.Required(p.Child("selector"), ""))
	}
	if spec.Replicas != nil {
		errs = append(errs, apivalidation.ValidateNonnegativeField(int64(*spec.Replicas), p.Child("replicas"))...)
	}
	tp := p.Child("template")
	if spec.Template == nil || templateMissing(spec.Template) {
		return append(errs, field.Required(tp, ""))
	}
	t := spec.Template
	if len(spec.Selector) > 0 && !labels.SelectorFromSet(spec.Selector).Matches(labels.Set(t.Labels)) {
		errs = append(errs, field.Invalid(tp.Child("metadata", "labels"), t.Labels, "`selector` does not match template `labels`"))
	}
	errs = append(errs, validatePodTemplate(t, tp)...)
	if t.Spec.ActiveDeadlineSeconds != nil {
		errs = append(errs, field.Invalid(tp.Child("spec", "activeDeadlineSeconds"), *t.Spec.ActiveDeadlineSeconds,
			"activeDeadlineSeconds in ReplicationController is not Supported"))
	}
	return errs
}

// validateReplicationControllerStatus is Kubernetes' ValidateReplicationControllerStatus.
func validateReplicationControllerStatus(st *corev1.ReplicationControllerStatus, p *field.Path) field.ErrorList {
	errs := apivalidation.ValidateNonnegativeField(st.ObservedGeneration, p.Child("observedGeneration"))
	errs = append(errs, nonNegativeCounts(p, count{"replicas", st.Replicas}, count{"fullyLabeledReplicas", st.FullyLabeledReplicas},
		count{"readyReplicas", st.ReadyReplicas}, count{"availableReplicas", st.AvailableReplicas})...)
	const msg = "cannot be greater than status.replicas"
	for _, c := range []count{{"fullyLabeledReplicas", st.FullyLabeledReplicas}, {"readyReplicas", st.ReadyReplicas}, {"availableReplicas", st.AvailableReplicas}} {
		if c.n > st.Replicas {
			errs = append(errs, field.Invalid(p.Child(c.name), c.n, msg))
		}
	}
	if st.AvailableReplicas > st.ReadyReplicas {
		errs = append(errs, field.Invalid(p.Child("availableReplicas"), st.AvailableReplicas, "cannot be greater than readyReplicas"))
	}
	for i, c := range st.Conditions {
		errs = append(errs, validateCondition(string(c.Type), c.Status, p.Child("conditions").Index(i))...)
	}
	return errs
}

// validateSelectorAndTemplate checks a controller's selector and template, and that the
// pods it stamps out are ones it selects: otherwise it would create pods forever.
func validateSelectorAndTemplate(ls *metav1.LabelSelector, t *corev1.PodTemplateSpec, kind string, p *field.Path) field.ErrorList {
	sp := p.Child("selector")
	var errs field.ErrorList
	switch {
	case ls == nil:
		errs = append(errs, field.Required(sp, ""))
	case len(ls.MatchLabels) == 0 && len(ls.MatchExpressions) == 0:
		errs = append(errs, field.Invalid(sp, "", "empty selector is invalid for "+kind))
	default:
		errs = append(errs, metav1validation.ValidateLabelSelector(ls, metav1validation.LabelSelectorValidationOptions{}, sp)...)
	}
	selectorOK := len(errs) == 0
	errs = append(errs, validatePodTemplate(t, p.Child("template"))...)
	if !selectorOK || templateMissing(t) {
		return errs
	}
	sel, err := metav1.LabelSelectorAsSelector(ls)
	if err != nil {
		// ValidateLabelSelector accepted it, so this would be a disagreement between the two.
		return append(errs, field.Invalid(sp, metav1.FormatLabelSelector(ls), err.Error()))
	}
	if !sel.Matches(labels.Set(t.Labels)) {
		errs = append(errs, field.Invalid(sp, sel.String(), "selector does not match template labels"))
	}
	return errs
}

func validateStrategy(s *appsv1.DeploymentStrategy, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if s.Type != "" {
		errs = append(errs, oneOfChild(p, "type", s.Type, strategyTypes...)...)
	}
	ru := s.RollingUpdate
	if ru == nil {
		return errs
	}
	rp := p.Child("rollingUpdate")
	if s.Type == appsv1.RecreateDeploymentStrategyType {
		return append(errs, field.Forbidden(rp, "may not be specified when strategy `type` is 'Recreate'"))
	}
	surgePath, unavailPath := rp.Child("maxSurge"), rp.Child("maxUnavailable")
	surge, surgeErrs := rollingParam(ru.MaxSurge, surgePath)
	unavail, unavailErrs := rollingParam(ru.MaxUnavailable, unavailPath)
	errs = append(append(errs, surgeErrs...), unavailErrs...)
	if len(unavailErrs) == 0 && ru.MaxUnavailable != nil {
		errs = append(errs, percentOrCount(ru.MaxUnavailable, unavailPath)...)
	}
	if len(surgeErrs) == 0 && len(unavailErrs) == 0 && surge == 0 && unavail == 0 {
		errs = append(errs, field.Invalid(unavailPath, ru.MaxUnavailable, "may not be 0 when `maxSurge` is 0"))
	}
	return errs
}

// defaultRollingParam is what an unset maxSurge or maxUnavailable means.
var defaultRollingParam = intstr.FromString(DefaultMaxSurge)

// rollingParam reads a maxSurge or maxUnavailable: a count, or a percent of the
// replicas, returning the number either way.
func rollingParam(v *intstr.IntOrString, p *field.Path) (int, field.ErrorList) {
	if v == nil {
		v = &defaultRollingParam
	}
	return intOrPercent(v, p)
}

// intOrPercent reads a non-negative count or a percent ("25%"), returning the number
// either way.
func intOrPercent(v *intstr.IntOrString, p *field.Path) (int, field.ErrorList) {
	switch v.Type {
	case intstr.Int:
		return int(v.IntVal), apivalidation.ValidateNonnegativeField(int64(v.IntVal), p)
	case intstr.String:
		if msgs := utilvalidation.IsValidPercent(v.StrVal); len(msgs) > 0 {
			return 0, invalidEach(p, v.StrVal, msgs)
		}
		// Only digits are left, so the one error is overflow, where Atoi returns the
		// largest int: certainly over 100%.
		n, _ := strconv.Atoi(strings.TrimSuffix(v.StrVal, "%"))
		return n, nil
	}
	// A type neither decoder produces, only hand-made bytes: there is no value to print.
	return 0, field.ErrorList{field.Invalid(p, field.OmitValueType{}, "must be an integer or a percentage string")}
}
