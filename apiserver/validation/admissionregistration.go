package validation

import (
	"fmt"
	"net/url"
	"slices"
	"strings"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	metav1validation "k8s.io/apimachinery/pkg/apis/meta/v1/validation"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/kinds"
)

// Webhook configurations: Kubernetes' admissionregistration defaults (SetDefaults_*
// of pkg/apis/admissionregistration/v1) and validation (its validation package and
// apiserver's util/webhook), in their words. The API server's admission chain calls the
// webhooks (apiserver/webhooks.go).

// defaultWebhooks fills a configuration's webhooks' defaults: failurePolicy Fail,
// matchPolicy Equivalent, empty selectors, a timeout of 10 s, reinvocationPolicy Never
// (mutating), a rule's scope "*" and a service's port 443.
func defaultWebhooks(obj kinds.Object) {
	hook := func(fp **admissionregistrationv1.FailurePolicyType, mp **admissionregistrationv1.MatchPolicyType,
		ns, os **metav1.LabelSelector, timeout **int32, rules []admissionregistrationv1.RuleWithOperations, cc *admissionregistrationv1.WebhookClientConfig) {
		if *fp == nil {
			*fp = new(admissionregistrationv1.Fail)
		}
		if *mp == nil {
			*mp = new(admissionregistrationv1.Equivalent)
		}
		if *ns == nil {
			*ns = &metav1.LabelSelector{}
		}
		if *os == nil {
			*os = &metav1.LabelSelector{}
		}
		if *timeout == nil {
			*timeout = new(int32(10))
		}
		for i := range rules {
			if rules[i].Scope == nil {
				rules[i].Scope = new(admissionregistrationv1.AllScopes)
			}
		}
		if cc.Service != nil && cc.Service.Port == nil {
			cc.Service.Port = new(int32(443))
		}
	}
	switch o := obj.(type) {
	case *admissionregistrationv1.MutatingWebhookConfiguration:
		for i := range o.Webhooks {
			h := &o.Webhooks[i]
			hook(&h.FailurePolicy, &h.MatchPolicy, &h.NamespaceSelector, &h.ObjectSelector, &h.TimeoutSeconds, h.Rules, &h.ClientConfig)
			if h.ReinvocationPolicy == nil {
				h.ReinvocationPolicy = new(admissionregistrationv1.NeverReinvocationPolicy)
			}
		}
	case *admissionregistrationv1.ValidatingWebhookConfiguration:
		for i := range o.Webhooks {
			h := &o.Webhooks[i]
			hook(&h.FailurePolicy, &h.MatchPolicy, &h.NamespaceSelector, &h.ObjectSelector, &h.TimeoutSeconds, h.Rules, &h.ClientConfig)
		}
	}
}

// validateWebhooks is Kubernetes' Validate{Mutating,Validating}WebhookConfiguration.
// Kubernetes relaxes on an update what the stored configuration already broke (a
// sideEffects of Some or Unknown, v1beta1's); Skiff never stored such a configuration, so
// its rules are the same on every write.
func validateWebhooks(obj kinds.Object) field.ErrorList {
	hooks, mutating := kinds.Webhooks(obj)
	var errs field.ErrorList
	names := map[string]bool{}
	for i := range hooks {
		p := field.NewPath("webhooks").Index(i)
		errs = append(errs, validateWebhook(&hooks[i], mutating, p)...)
		errs = append(errs, validateReviewVersions(hooks[i].AdmissionReviewVersions, p.Child("admissionReviewVersions"))...)
		if hooks[i].Name != "" {
			if names[hooks[i].Name] {
				errs = append(errs, field.Duplicate(p.Child("name"), hooks[i].Name))
			}
			names[hooks[i].Name] = true
		}
	}
	return errs
}

var (
	failurePolicies       = []string{string(admissionregistrationv1.Fail), string(admissionregistrationv1.Ignore)}
	matchPolicies         = []string{string(admissionregistrationv1.Equivalent), string(admissionregistrationv1.Exact)}
	noSideEffectClasses   = []string{"None", "NoneOnDryRun"}
	reinvocationPolicies  = []string{string(admissionregistrationv1.IfNeededReinvocationPolicy), string(admissionregistrationv1.NeverReinvocationPolicy)}
	webhookOperations     = []string{"*", "CONNECT", "CREATE", "DELETE", "UPDATE"}
	ruleScopes            = []string{"*", "Cluster", "Namespaced"}
	acceptedReviewVersion = []string{"v1", "v1beta1"}
)

func isAcceptedReviewVersion(v string) bool { return slices.Contains(acceptedReviewVersion, v) }

// validateWebhook is Kubernetes' validate{Mutating,Validating}Webhook.
func validateWebhook(h *admissionregistrationv1.MutatingWebhook, mutating bool, p *field.Path) field.ErrorList {
	errs := validation.IsFullyQualifiedName(p.Child("name"), h.Name)
	for i := range h.Rules {
		errs = append(errs, validateRuleWithOperations(&h.Rules[i], p.Child("rules").Index(i))...)
	}
	if h.FailurePolicy != nil && !slices.Contains(failurePolicies, string(*h.FailurePolicy)) {
		errs = append(errs, field.NotSupported(p.Child("failurePolicy"), *h.FailurePolicy, failurePolicies))
	}
	if h.MatchPolicy != nil && !slices.Contains(matchPolicies, string(*h.MatchPolicy)) {
		errs = append(errs, field.NotSupported(p.Child("matchPolicy"), *h.MatchPolicy, matchPolicies))
	}
	allowed := noSideEffectClasses
	switch {
	case h.SideEffects == nil:
		errs = append(errs, field.Required(p.Child("sideEffects"), fmt.Sprintf("must specify one of %v", strings.Join(allowed, ", "))))
	case !slices.Contains(allowed, string(*h.SideEffects)):
		errs = append(errs, field.NotSupported(p.Child("sideEffects"), *h.SideEffects, allowed))
	}
	if h.TimeoutSeconds != nil && (*h.TimeoutSeconds > 30 || *h.TimeoutSeconds < 1) {
		errs = append(errs, field.Invalid(p.Child("timeoutSeconds"), *h.TimeoutSeconds, "the timeout value must be between 1 and 30 seconds"))
	}
	if h.NamespaceSelector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(h.NamespaceSelector, metav1validation.LabelSelectorValidationOptions{}, p.Child("namespaceSelector"))...)
	}
	if h.ObjectSelector != nil {
		errs = append(errs, metav1validation.ValidateLabelSelector(h.ObjectSelector, metav1validation.LabelSelectorValidationOptions{}, p.Child("objectSelector"))...)
	}
	errs = append(errs, validateWebhookMatchConditions(h.MatchConditions, p.Child("matchConditions"))...)
	if mutating && h.ReinvocationPolicy != nil && !slices.Contains(reinvocationPolicies, string(*h.ReinvocationPolicy)) {
		errs = append(errs, field.NotSupported(p.Child("reinvocationPolicy"), *h.ReinvocationPolicy, reinvocationPolicies))
	}
	cc := h.ClientConfig
	switch {
	case (cc.URL == nil) == (cc.Service == nil):
		errs = append(errs, field.Required(p.Child("clientConfig"), "exactly one of url or service is required"))
	case cc.URL != nil:
		errs = append(errs, validateWebhookURL(p.Child("clientConfig", "url"), *cc.URL)...)
	default:
		port := int32(443)
		if cc.Service.Port != nil {
			port = *cc.Service.Port
		}
		errs = append(errs, validateWebhookService(p.Child("clientConfig", "service"), cc.Service, port)...)
	}
	return errs
}

// validateRuleWithOperations is Kubernetes' validateRuleWithOperations and validateRule
// (subresources allowed).
func validateRuleWithOperations(r *admissionregistrationv1.RuleWithOperations, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(r.Operations) == 0 {
		errs = append(errs, field.Required(p.Child("operations"), ""))
	}
	if len(r.Operations) > 1 && slices.Contains(r.Operations, admissionregistrationv1.OperationAll) {
		errs = append(errs, field.Invalid(p.Child("operations"), r.Operations, "if '*' is present, must not specify other operations"))
	}
	for i, op := range r.Operations {
		if !slices.Contains(webhookOperations, string(op)) {
			errs = append(errs, field.NotSupported(p.Child("operations").Index(i), op, webhookOperations))
		}
	}
	if len(r.APIGroups) == 0 {
		errs = append(errs, field.Required(p.Child("apiGroups"), ""))
	}
	if len(r.APIGroups) > 1 && slices.Contains(r.APIGroups, "*") {
		errs = append(errs, field.Invalid(p.Child("apiGroups"), r.APIGroups, "if '*' is present, must not specify other API groups"))
	}
	if len(r.APIVersions) == 0 {
		errs = append(errs, field.Required(p.Child("apiVersions"), ""))
	}
	if len(r.APIVersions) > 1 && slices.Contains(r.APIVersions, "*") {
		errs = append(errs, field.Invalid(p.Child("apiVersions"), r.APIVersions, "if '*' is present, must not specify other API versions"))
	}
	for i, v := range r.APIVersions {
		if v == "" {
			errs = append(errs, field.Required(p.Child("apiVersions").Index(i), ""))
		}
	}
	errs = append(errs, validateRuleResources(r.Resources, p.Child("resources"))...)
	if r.Scope != nil && !slices.Contains(ruleScopes, string(*r.Scope)) {
		errs = append(errs, field.NotSupported(p.Child("scope"), *r.Scope, ruleScopes))
	}
	return errs
}

// validateRuleResources is Kubernetes' validateResources: resources and
// resource/subresource pairs, with wildcards that may not overlap.
func validateRuleResources(resources []string, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(resources) == 0 {
		errs = append(errs, field.Required(p, ""))
	}
	wildSub, wildRes := map[string]bool{}, map[string]bool{} // x/* and */x
	doubleWild, singleWild, plain := false, false, false
	for i, rs := range resources {
		if rs == "" {
			errs = append(errs, field.Required(p.Index(i), ""))
			continue
		}
		doubleWild = doubleWild || rs == "*/*"
		singleWild = singleWild || rs == "*"
		res, sub, ok := strings.Cut(rs, "/")
		if !ok {
			plain = rs != "*"
			continue
		}
		if wildSub[res] {
			errs = append(errs, field.Invalid(p.Index(i), rs, fmt.Sprintf("if '%s/*' is present, must not specify %s", res, rs)))
		}
		if wildRes[sub] {
			errs = append(errs, field.Invalid(p.Index(i), rs, fmt.Sprintf("if '*/%s' is present, must not specify %s", sub, rs)))
		}
		if sub == "*" {
			wildSub[res] = true
		}
		if res == "*" {
			wildRes[sub] = true
		}
	}
	if len(resources) > 1 && doubleWild {
		errs = append(errs, field.Invalid(p, resources, "if '*/*' is present, must not specify other resources"))
	}
	if singleWild && plain {
		errs = append(errs, field.Invalid(p, resources, "if '*' is present, must not specify other resources without subresources"))
	}
	return errs
}

// validateReviewVersions is Kubernetes' validateAdmissionReviewVersions.
func validateReviewVersions(versions []string, p *field.Path) field.ErrorList {
	if len(versions) == 0 {
		return field.ErrorList{field.Required(p, fmt.Sprintf("must specify one of %v", strings.Join(acceptedReviewVersion, ", ")))}
	}
	var errs field.ErrorList
	seen := map[string]bool{}
	for i, v := range versions {
		if seen[v] {
			errs = append(errs, field.Invalid(p.Index(i), v, "duplicate version"))
			continue
		}
		seen[v] = true
		for _, msg := range validation.IsDNS1035Label(v) {
			errs = append(errs, field.Invalid(p.Index(i), v, msg))
		}
	}
	if !slices.ContainsFunc(versions, isAcceptedReviewVersion) {
		errs = append(errs, field.Invalid(p, versions, fmt.Sprintf("must include at least one of %v", strings.Join(acceptedReviewVersion, ", "))))
	}
	return errs
}

// validateWebhookURL is apiserver's ValidateWebhookURL, https only.
func validateWebhookURL(p *field.Path, raw string) field.ErrorList {
	const form = "; desired format: https://host[/path]"
	u, err := url.Parse(raw)
	if err != nil {
		return field.ErrorList{field.Required(p, "url must be a valid URL: "+err.Error()+form)}
	}
	var errs field.ErrorList
	if u.Scheme != "https" {
		errs = append(errs, field.Invalid(p, u.Scheme, "'https' is the only allowed URL scheme"+form))
	}
	if u.Host == "" {
		errs = append(errs, field.Invalid(p, u.Host, "host must be specified"+form))
	}
	if u.User != nil {
		errs = append(errs, field.Invalid(p, u.User.String(), "user information is not permitted in the URL"))
	}
	if u.Fragment != "" {
		errs = append(errs, field.Invalid(p, u.Fragment, "fragments are not permitted in the URL"))
	}
	if u.RawQuery != "" {
		errs = append(errs, field.Invalid(p, u.RawQuery, "query parameters are not permitted in the URL"))
	}
	return errs
}

// validateWebhookService is apiserver's ValidateWebhookService.
func validateWebhookService(p *field.Path, svc *admissionregistrationv1.ServiceReference, port int32) field.ErrorList {
	var errs field.ErrorList
	if svc.Name == "" {
		errs = append(errs, field.Required(p.Child("name"), ""))
	}
	if svc.Namespace == "" {
		errs = append(errs, field.Required(p.Child("namespace"), ""))
	}
	if msgs := validation.IsValidPortNum(int(port)); msgs != nil {
		errs = append(errs, field.Invalid(p.Child("port"), port, "port is not valid: "+strings.Join(msgs, ", ")))
	}
	if svc.Path == nil || *svc.Path == "/" || *svc.Path == "" {
		return errs
	}
	path := *svc.Path
	if path == "//" {
		return append(errs, field.Invalid(p.Child("path"), path, "segment[0] may not be empty"))
	}
	if !strings.HasPrefix(path, "/") {
		errs = append(errs, field.Invalid(p.Child("path"), path, "must start with a '/'"))
	}
	for i, step := range strings.Split(strings.TrimSuffix(path[1:], "/"), "/") {
		if step == "" {
			errs = append(errs, field.Invalid(p.Child("path"), path, fmt.Sprintf("segment[%d] may not be empty", i)))
			continue
		}
		for _, msg := range validation.IsDNS1123Subdomain(step) {
			errs = append(errs, field.Invalid(p.Child("path"), path, fmt.Sprintf("segment[%d]: %v", i, msg)))
		}
	}
	return errs
}
