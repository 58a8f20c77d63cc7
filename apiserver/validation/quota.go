package validation

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/api/validate/content"
	apivalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/quota"
)

// standardQuotaResources are the names Kubernetes accepts in a quota without a domain.
var standardQuotaResources = map[corev1.ResourceName]bool{
	"pods": true, "services": true, "replicationcontrollers": true, "resourcequotas": true, "secrets": true,
	"configmaps": true, "persistentvolumeclaims": true, "services.nodeports": true, "services.loadbalancers": true,
	"requests.cpu": true, "requests.memory": true, "requests.storage": true, "requests.ephemeral-storage": true,
	"limits.cpu": true, "limits.memory": true, "limits.ephemeral-storage": true, "cpu": true, "memory": true,
	"ephemeral-storage": true,
}

// integerQuotaResources are counted in whole units.
var integerQuotaResources = map[corev1.ResourceName]bool{
	"pods": true, "services": true, "replicationcontrollers": true, "resourcequotas": true, "secrets": true,
	"configmaps": true, "persistentvolumeclaims": true, "services.nodeports": true, "services.loadbalancers": true,
}

// validateResourceQuotaList is Kubernetes' check of a quota's hard or used list, and
// Skiff's refusal of what it does not account for.
func validateResourceQuotaList(list corev1.ResourceList, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	for _, name := range slices.Sorted(maps.Keys(list)) {
		kp, q := p.Key(string(name)), list[name]
		errs = append(errs, invalidEach(kp, string(name), content.IsLabelKey(string(name)))...)
		switch {
		case !strings.Contains(string(name), "/") && !standardQuotaResources[name] &&
			!strings.HasPrefix(string(name), corev1.ResourceHugePagesPrefix) &&
			!strings.HasPrefix(string(name), corev1.ResourceRequestsHugePagesPrefix):
			errs = append(errs, field.Invalid(kp, string(name), "must be a standard resource for quota"))
		case !quota.Tracked(name):
			errs = append(errs, field.Forbidden(kp, notSupportedMsg))
		}
		if q.Sign() < 0 {
			errs = append(errs, field.Invalid(kp, q.String(), apivalidation.IsNegativeErrorMsg))
		}
		if integerQuotaResources[name] && q.MilliValue()%1000 != 0 {
			errs = append(errs, field.Invalid(kp, q.String(), "must be an integer"))
		}
	}
	return errs
}

// validateResourceQuotaSpec is Kubernetes' ValidateResourceQuotaSpec, for the scopes Skiff
// supports: each limits pods only (BestEffort their count only), and a scope and its
// opposite conflict; a scopeSelector's expressions as Kubernetes checks them.
func validateResourceQuotaSpec(spec *corev1.ResourceQuotaSpec, p *field.Path) field.ErrorList {
	errs := validateResourceQuotaList(spec.Hard, p.Child("hard"))
	sp := p.Child("scopes")
	scopes := make([]string, len(spec.Scopes))
	for i, s := range spec.Scopes {
		scopes[i] = string(s)
	}
	shown := strings.Join(scopes, ", ")
	for _, s := range spec.Scopes {
		if !slices.Contains(quota.Scopes, s) {
			errs = append(errs, field.NotSupported(sp, string(s), quota.Scopes))
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(spec.Hard)) {
			if !quota.ScopeAllows(s, name) {
				errs = append(errs, field.Invalid(sp, shown, fmt.Sprintf("unsupported scope %s applied to resource %s", s, name)))
			}
		}
	}
	if conflictingScopes(spec.Scopes) {
		errs = append(errs, field.Invalid(sp, shown, "conflicting scopes"))
	}
	if spec.ScopeSelector != nil {
		errs = append(errs, validateScopeSelector(spec, p.Child("scopeSelector", "matchExpressions"))...)
	}
	return errs
}

// conflictingScopes reports whether scopes holds a scope and its opposite.
func conflictingScopes(scopes []corev1.ResourceQuotaScope) bool {
	for _, pair := range [][2]corev1.ResourceQuotaScope{
		{corev1.ResourceQuotaScopeBestEffort, corev1.ResourceQuotaScopeNotBestEffort},
		{corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating},
	} {
		if slices.Contains(scopes, pair[0]) && slices.Contains(scopes, pair[1]) {
			return true
		}
	}
	return false
}

// validateScopeSelector is Kubernetes' validateScopedResourceSelectorRequirement: each
// expression's scope applies to the quota's resources, the scopes other than
// PriorityClass take Exists only, In and NotIn take values, Exists and DoesNotExist none.
func validateScopeSelector(spec *corev1.ResourceQuotaSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	var scopes []corev1.ResourceQuotaScope
	for _, req := range spec.ScopeSelector.MatchExpressions {
		if !slices.Contains(quota.Scopes, req.ScopeName) {
			errs = append(errs, field.Invalid(p.Child("scopeName"), req.ScopeName, "unsupported scope"))
		}
		for _, name := range slices.Sorted(maps.Keys(spec.Hard)) {
			if standardQuotaResources[name] && !quota.ScopeAllows(req.ScopeName, name) {
				errs = append(errs, field.Invalid(p, spec.ScopeSelector, "unsupported scope applied to resource"))
			}
		}
		if req.ScopeName != corev1.ResourceQuotaScopePriorityClass && req.Operator != corev1.ScopeSelectorOpExists {
			errs = append(errs, field.Invalid(p.Child("operator"), req.Operator,
				"must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity"))
		}
		switch req.Operator {
		case corev1.ScopeSelectorOpIn, corev1.ScopeSelectorOpNotIn:
			if len(req.Values) == 0 {
				errs = append(errs, field.Required(p.Child("values"), "must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"))
			}
		case corev1.ScopeSelectorOpExists, corev1.ScopeSelectorOpDoesNotExist:
			if len(req.Values) != 0 {
				errs = append(errs, field.Invalid(p.Child("values"), req.Values, "must be no value when `operator` is 'Exist' or 'DoesNotExist' for scope selector"))
			}
		default:
			errs = append(errs, field.Invalid(p.Child("operator"), req.Operator, "not a valid selector operator"))
		}
		scopes = append(scopes, req.ScopeName)
	}
	if conflictingScopes(scopes) {
		errs = append(errs, field.Invalid(p, spec.Scopes, "conflicting scopes"))
	}
	return errs
}

func validateResourceQuotaStatus(st *corev1.ResourceQuotaStatus, p *field.Path) field.ErrorList {
	return append(validateResourceQuotaList(st.Hard, p.Child("hard")), validateResourceQuotaList(st.Used, p.Child("used"))...)
}

var limitTypes = []corev1.LimitType{corev1.LimitTypePod, corev1.LimitTypeContainer, corev1.LimitTypePersistentVolumeClaim}

// defaultLimitRange is Kubernetes' defaulting of a Container item: the default limit is
// the max, the default request the default limit, else the min.
func defaultLimitRange(lr *corev1.LimitRange) {
	for i := range lr.Spec.Limits {
		item := &lr.Spec.Limits[i]
		if item.Type != corev1.LimitTypeContainer {
			continue
		}
		if item.Default == nil {
			item.Default = corev1.ResourceList{}
		}
		if item.DefaultRequest == nil {
			item.DefaultRequest = corev1.ResourceList{}
		}
		for _, from := range []struct{ src, dst corev1.ResourceList }{
			{item.Max, item.Default}, {item.Default, item.DefaultRequest}, {item.Min, item.DefaultRequest},
		} {
			for name, q := range from.src {
				if _, ok := from.dst[name]; !ok {
					from.dst[name] = q.DeepCopy()
				}
			}
		}
	}
}

// validateLimitRangeSpec is Kubernetes' ValidateLimitRange: one item per type, resource
// names the type can have, and min <= defaultRequest <= default <= max, with a
// maxLimitRequestRatio of at least 1 that max/min allows.
func validateLimitRangeSpec(spec *corev1.LimitRangeSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	seen := map[corev1.LimitType]bool{}
	for i := range spec.Limits {
		item, ip := &spec.Limits[i], p.Child("limits").Index(i)
		if !strings.Contains(string(item.Type), "/") && !slices.Contains(limitTypes, item.Type) {
			errs = append(errs, field.Invalid(ip.Child("type"), string(item.Type), "must be a standard limit type or fully qualified"))
		} else if !slices.Contains(limitTypes, item.Type) {
			errs = append(errs, field.Forbidden(ip.Child("type"), notSupportedMsg))
		}
		if seen[item.Type] {
			errs = append(errs, field.Duplicate(ip.Child("type"), string(item.Type)))
		}
		seen[item.Type] = true
		lists := []struct {
			name string
			list corev1.ResourceList
		}{{"max", item.Max}, {"min", item.Min}, {"default", item.Default}, {"defaultRequest", item.DefaultRequest},
			{"maxLimitRequestRatio", item.MaxLimitRequestRatio}}
		names := map[corev1.ResourceName]bool{}
		for _, l := range lists {
			if item.Type == corev1.LimitTypePod && (l.name == "default" || l.name == "defaultRequest") {
				if len(l.list) > 0 {
					errs = append(errs, field.Forbidden(ip.Child(l.name), "may not be specified when `type` is 'Pod'"))
				}
				continue
			}
			for _, name := range slices.Sorted(maps.Keys(l.list)) {
				kp := ip.Child(l.name).Key(string(name))
				names[name] = true
				errs = append(errs, validateLimitRangeResource(item.Type, name, kp)...)
				if q := l.list[name]; q.Sign() < 0 {
					errs = append(errs, field.Invalid(kp, q.String(), apivalidation.IsNegativeErrorMsg))
				}
			}
		}
		if item.Type == corev1.LimitTypePersistentVolumeClaim {
			_, hasMin := item.Min[corev1.ResourceStorage]
			_, hasMax := item.Max[corev1.ResourceStorage]
			if !hasMin && !hasMax {
				errs = append(errs, field.Required(ip.Child("limits"), "either minimum or maximum storage value is required, but neither was provided"))
			}
		}
		for _, name := range slices.Sorted(maps.Keys(names)) {
			errs = append(errs, validateLimitRangeOrder(item, name, ip)...)
		}
	}
	return errs
}

func validateLimitRangeResource(t corev1.LimitType, name corev1.ResourceName, p *field.Path) field.ErrorList {
	errs := invalidEach(p, string(name), content.IsLabelKey(string(name)))
	switch t {
	case corev1.LimitTypePersistentVolumeClaim:
		if name != corev1.ResourceStorage {
			errs = append(errs, field.Invalid(p, string(name), "must be a standard resource for persistent volume claims"))
		}
	case corev1.LimitTypePod, corev1.LimitTypeContainer:
		errs = append(errs, validateContainerResource(name, resource.Quantity{}, p, false)...)
	}
	return errs
}

// validateLimitRangeOrder checks one resource's values of an item against each other.
func validateLimitRangeOrder(item *corev1.LimitRangeItem, name corev1.ResourceName, ip *field.Path) field.ErrorList {
	var errs field.ErrorList
	minQ, hasMin := item.Min[name]
	maxQ, hasMax := item.Max[name]
	def, hasDef := item.Default[name]
	defReq, hasDefReq := item.DefaultRequest[name]
	ratio, hasRatio := item.MaxLimitRequestRatio[name]
	if item.Type == corev1.LimitTypePod {
		hasDef, hasDefReq = false, false
	}
	key := func(list string) *field.Path { return ip.Child(list).Key(string(name)) }
	if hasMin && hasMax && minQ.Cmp(maxQ) > 0 {
		errs = append(errs, field.Invalid(key("min"), minQ.String(), fmt.Sprintf("min value %s is greater than max value %s", minQ.String(), maxQ.String())))
	}
	if hasDefReq && hasMin && minQ.Cmp(defReq) > 0 {
		errs = append(errs, field.Invalid(key("defaultRequest"), defReq.String(), fmt.Sprintf("min value %s is greater than default request value %s", minQ.String(), defReq.String())))
	}
	if hasDefReq && hasMax && defReq.Cmp(maxQ) > 0 {
		errs = append(errs, field.Invalid(key("defaultRequest"), defReq.String(), fmt.Sprintf("default request value %s is greater than max value %s", defReq.String(), maxQ.String())))
	}
	if hasDefReq && hasDef && defReq.Cmp(def) > 0 {
		errs = append(errs, field.Invalid(key("defaultRequest"), defReq.String(), fmt.Sprintf("default request value %s is greater than default limit value %s", defReq.String(), def.String())))
	}
	if hasDef && hasMin && minQ.Cmp(def) > 0 {
		errs = append(errs, field.Invalid(key("default"), minQ.String(), fmt.Sprintf("min value %s is greater than default value %s", minQ.String(), def.String())))
	}
	if hasDef && hasMax && def.Cmp(maxQ) > 0 {
		errs = append(errs, field.Invalid(key("default"), maxQ.String(), fmt.Sprintf("default value %s is greater than max value %s", def.String(), maxQ.String())))
	}
	if hasRatio && ratio.Cmp(*resource.NewQuantity(1, resource.DecimalSI)) < 0 {
		errs = append(errs, field.Invalid(key("maxLimitRequestRatio"), ratio.String(), fmt.Sprintf("ratio %s is less than 1", ratio.String())))
	}
	if hasRatio && hasMin && hasMax && !minQ.IsZero() {
		r, lo, hi := float64(ratio.Value()), float64(minQ.Value()), float64(maxQ.Value())
		if ratio.Value() < resource.MaxMilliValue && minQ.Value() < resource.MaxMilliValue && maxQ.Value() < resource.MaxMilliValue {
			r, lo, hi = float64(ratio.MilliValue())/1000, float64(minQ.MilliValue()), float64(maxQ.MilliValue())
		}
		if limit := hi / lo; r > limit {
			errs = append(errs, field.Invalid(key("maxLimitRequestRatio"), ratio.String(), fmt.Sprintf("ratio %s is greater than max/min = %f", ratio.String(), limit)))
		}
	}
	// Resources that cannot be overcommitted have one amount.
	if kinds.IsExtendedResourceName(name) && hasDef && hasDefReq && def.Cmp(defReq) != 0 {
		errs = append(errs, field.Invalid(key("defaultRequest"), defReq.String(), fmt.Sprintf("default value %s must equal to defaultRequest value %s in %s", def.String(), defReq.String(), name)))
	}
	return errs
}
