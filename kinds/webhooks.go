package kinds

import (
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
)

// Webhooks are the webhooks of a MutatingWebhookConfiguration or a
// ValidatingWebhookConfiguration (mutating says which), a validating webhook as a
// mutating one without reinvocationPolicy: the two types have the same fields but that
// one, so validation and the admission chain read one type.
func Webhooks(obj Object) (hooks []admissionregistrationv1.MutatingWebhook, mutating bool) {
	switch o := obj.(type) {
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		return o.Webhooks, true
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		hooks = make([]admissionregistrationv1.MutatingWebhook, len(o.Webhooks))
		for i, h := range o.Webhooks {
			hooks[i] = admissionregistrationv1.MutatingWebhook{Name: h.Name, ClientConfig: h.ClientConfig, Rules: h.Rules,
				FailurePolicy: h.FailurePolicy, MatchPolicy: h.MatchPolicy, NamespaceSelector: h.NamespaceSelector,
				ObjectSelector: h.ObjectSelector, SideEffects: h.SideEffects, TimeoutSeconds: h.TimeoutSeconds,
				AdmissionReviewVersions: h.AdmissionReviewVersions, MatchConditions: h.MatchConditions}
		}
		return hooks, false
	}
	return nil, false
}
