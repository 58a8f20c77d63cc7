package validation

import (
	"fmt"
	"reflect"
	"time"

	corev1 "k8s.io/api/core/v1"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
)

// The limits of an Event written through events.k8s.io/v1, Kubernetes'.
const (
	eventReportingInstanceLimit = 128
	eventActionLimit            = 128
	eventReasonLimit            = 128
)

// ValidateEventV1 checks an Event created through events.k8s.io/v1, given in its core/v1
// form (the paths are core/v1's, as Kubernetes reports them), with the rules Kubernetes
// adds for that version to what every Event passes: eventTime, reportingController,
// reportingInstance, action and reason required, their lengths, a type of Normal or
// Warning, a series of at least 2, and none of core/v1's deprecated fields.
func ValidateEventV1(ev *corev1.Event) error {
	errs := validateEventV1(ev)
	errs = append(errs, validateV1EventSeries(ev)...)
	if ev.EventTime.IsZero() {
		errs = append(errs, field.Required(field.NewPath("eventTime"), ""))
	}
	if ev.Type != corev1.EventTypeNormal && ev.Type != corev1.EventTypeWarning {
		errs = append(errs, field.Invalid(field.NewPath("type"), "", fmt.Sprintf("has invalid value: %v", ev.Type)))
	}
	if !ev.FirstTimestamp.IsZero() {
		errs = append(errs, field.Invalid(field.NewPath("firstTimestamp"), "", "needs to be unset"))
	}
	if !ev.LastTimestamp.IsZero() {
		errs = append(errs, field.Invalid(field.NewPath("lastTimestamp"), "", "needs to be unset"))
	}
	if ev.Count != 0 {
		errs = append(errs, field.Invalid(field.NewPath("count"), "", "needs to be unset"))
	}
	if ev.Source.Component != "" || ev.Source.Host != "" {
		errs = append(errs, field.Invalid(field.NewPath("source"), "", "needs to be unset"))
	}
	return asError(errs)
}

// ValidateEventV1Update checks an Event updated through events.k8s.io/v1 (both in their
// core/v1 form): what it was created with may not change, but its series (which must
// stay valid), labels and annotations; eventTime may change below a microsecond, as
// Kubernetes tolerates for clients that truncate it.
func ValidateEventV1Update(old, ev *corev1.Event) error {
	errs := validateEventV1(ev)
	if !reflect.DeepEqual(ev.Series, old.Series) {
		errs = append(errs, validateV1EventSeries(ev)...)
	}
	immutable := func(name string, newVal, oldVal any) {
		errs = append(errs, apivalidation.ValidateImmutableField(newVal, oldVal, field.NewPath(name))...)
	}
	immutable("involvedObject", ev.InvolvedObject, old.InvolvedObject)
	immutable("reason", ev.Reason, old.Reason)
	immutable("message", ev.Message, old.Message)
	immutable("source", ev.Source, old.Source)
	immutable("firstTimestamp", ev.FirstTimestamp, old.FirstTimestamp)
	immutable("lastTimestamp", ev.LastTimestamp, old.LastTimestamp)
	immutable("count", ev.Count, old.Count)
	immutable("type", ev.Type, old.Type)
	immutable("eventTime", metav1.NewMicroTime(ev.EventTime.Truncate(time.Microsecond).UTC()), metav1.NewMicroTime(old.EventTime.Truncate(time.Microsecond).UTC()))
	immutable("action", ev.Action, old.Action)
	immutable("related", ev.Related, old.Related)
	immutable("reportingController", ev.ReportingController, old.ReportingController)
	immutable("reportingInstance", ev.ReportingInstance, old.ReportingInstance)
	return asError(errs)
}

// validateEventV1 is what Kubernetes checks of every Event written through
// events.k8s.io/v1, created or updated (its legacyValidateEvent for that version).
func validateEventV1(ev *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	io := field.NewPath("involvedObject", "namespace")
	if ev.EventTime.IsZero() {
		if ns := ev.InvolvedObject.Namespace; ns == "" && ev.Namespace != metav1.NamespaceNone && ev.Namespace != metav1.NamespaceDefault ||
			ns != "" && ev.Namespace != ns {
			errs = append(errs, field.Invalid(io, ns, "does not match event.namespace"))
		}
	} else {
		if ev.InvolvedObject.Namespace == "" && ev.Namespace != metav1.NamespaceDefault && ev.Namespace != metav1.NamespaceSystem {
			errs = append(errs, field.Invalid(io, ev.InvolvedObject.Namespace, "does not match event.namespace"))
		}
		rc := field.NewPath("reportingController")
		if ev.ReportingController == "" {
			errs = append(errs, field.Required(rc, ""))
		}
		errs = append(errs, invalidEach(rc, ev.ReportingController, utilvalidation.IsQualifiedName(ev.ReportingController))...)
		errs = append(errs, requiredAtMost(field.NewPath("reportingInstance"), ev.ReportingInstance, eventReportingInstanceLimit)...)
		errs = append(errs, requiredAtMost(field.NewPath("action"), ev.Action, eventActionLimit)...)
		errs = append(errs, requiredAtMost(field.NewPath("reason"), ev.Reason, eventReasonLimit)...)
		if len(ev.Message) > EventMessageLimit {
			errs = append(errs, field.Invalid(field.NewPath("message"), "", fmt.Sprintf("can have at most %v characters", EventMessageLimit)))
		}
	}
	return errs
}

// requiredAtMost: Kubernetes' "Required value" when s is empty, "can have at most N
// characters" when it is longer than limit.
func requiredAtMost(p *field.Path, s string, limit int) field.ErrorList {
	switch {
	case s == "":
		return field.ErrorList{field.Required(p, "")}
	case len(s) > limit:
		return field.ErrorList{field.Invalid(p, "", fmt.Sprintf("can have at most %v characters", limit))}
	}
	return nil
}

func validateV1EventSeries(ev *corev1.Event) field.ErrorList {
	var errs field.ErrorList
	if s := ev.Series; s != nil {
		if s.Count < 2 {
			errs = append(errs, field.Invalid(field.NewPath("series.count"), "", "should be at least 2"))
		}
		if s.LastObservedTime.IsZero() {
			errs = append(errs, field.Required(field.NewPath("series.lastObservedTime"), ""))
		}
	}
	return errs
}
