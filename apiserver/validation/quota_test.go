package validation

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/skiffhq/skiff/kinds"
)

func rl(kv ...string) corev1.ResourceList {
	out := corev1.ResourceList{}
	for i := 0; i < len(kv); i += 2 {
		out[corev1.ResourceName(kv[i])] = resource.MustParse(kv[i+1])
	}
	return out
}

func resourceQuota(hard corev1.ResourceList) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{ObjectMeta: meta("q"), Spec: corev1.ResourceQuotaSpec{Hard: hard}}
}

func scoped(hard corev1.ResourceList, scopes ...corev1.ResourceQuotaScope) *corev1.ResourceQuota {
	q := resourceQuota(hard)
	q.Spec.Scopes = scopes
	return q
}

func selected(hard corev1.ResourceList, reqs ...corev1.ScopedResourceSelectorRequirement) *corev1.ResourceQuota {
	q := resourceQuota(hard)
	q.Spec.ScopeSelector = &corev1.ScopeSelector{MatchExpressions: reqs}
	return q
}

func limitRange(items ...corev1.LimitRangeItem) *corev1.LimitRange {
	return &corev1.LimitRange{ObjectMeta: meta("limits"), Spec: corev1.LimitRangeSpec{Limits: items}}
}

func TestValidateQuotaAndLimitRange(t *testing.T) {
	container := corev1.LimitTypeContainer
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want []string
	}{
		{"quota valid", resourceQuota(rl("pods", "10", "count/pods", "10", "requests.cpu", "2", "limits.memory", "1Gi",
			"count/deployments.apps", "3", "configmaps", "5", "cpu", "1")), nil},
		{"quota negative", resourceQuota(rl("pods", "-1")),
			[]string{`spec.hard[pods]: Invalid value: "-1": must be greater than or equal to 0`}},
		{"quota fraction of an integer resource", resourceQuota(rl("pods", "1500m")),
			[]string{`spec.hard[pods]: Invalid value: "1500m": must be an integer`}},
		{"quota unknown name", resourceQuota(rl("widgets", "1")),
			[]string{`spec.hard[widgets]: Invalid value: "widgets": must be a standard resource for quota`}},
		{"quota name Skiff does not count", resourceQuota(rl("hugepages-2Mi", "1", "count/widgets.example.com", "1", "limits.example.com/foo", "1")),
			[]string{"spec.hard[count/widgets.example.com]: Forbidden: not supported by Skiff",
				"spec.hard[hugepages-2Mi]: Forbidden: not supported by Skiff",
				"spec.hard[limits.example.com/foo]: Forbidden: not supported by Skiff"}},
		{"quota names of services and extended resources", resourceQuota(rl("services", "1", "services.nodeports", "1", "services.loadbalancers", "0",
			"requests.example.com/foo", "3")), nil},
		{"quota scopes", scoped(rl("pods", "1", "requests.cpu", "1"), corev1.ResourceQuotaScopeNotBestEffort, corev1.ResourceQuotaScopeNotTerminating), nil},
		{"quota best effort counts pods only", scoped(rl("pods", "1", "count/pods", "1", "cpu", "1"), corev1.ResourceQuotaScopeBestEffort),
			[]string{`spec.scopes: Invalid value: "BestEffort": unsupported scope BestEffort applied to resource cpu`}},
		{"quota scoped to pods", scoped(rl("count/configmaps", "1"), corev1.ResourceQuotaScopeTerminating),
			[]string{`spec.scopes: Invalid value: "Terminating": unsupported scope Terminating applied to resource count/configmaps`}},
		{"quota conflicting scopes", scoped(rl("pods", "1"), corev1.ResourceQuotaScopeTerminating, corev1.ResourceQuotaScopeNotTerminating),
			[]string{`spec.scopes: Invalid value: "Terminating, NotTerminating": conflicting scopes`}},
		{"quota scope Skiff does not have", scoped(rl("pods", "1"), corev1.ResourceQuotaScopeCrossNamespacePodAffinity),
			[]string{`spec.scopes: Unsupported value: "CrossNamespacePodAffinity": supported values: "Terminating", "NotTerminating", "BestEffort", "NotBestEffort", "PriorityClass"`}},
		{"quota scope selector on priority classes", selected(rl("pods", "10", "requests.cpu", "1"),
			corev1.ScopedResourceSelectorRequirement{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn,
				Values: []string{"system-node-critical", "system-cluster-critical"}},
			corev1.ScopedResourceSelectorRequirement{ScopeName: corev1.ResourceQuotaScopeNotBestEffort, Operator: corev1.ScopeSelectorOpExists}), nil},
		{"quota scope selector In without values", selected(rl("pods", "1"),
			corev1.ScopedResourceSelectorRequirement{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpIn}),
			[]string{"spec.scopeSelector.matchExpressions.values: Required value: must be at least one value when `operator` is 'In' or 'NotIn' for scope selector"}},
		{"quota scope selector Exists with values", selected(rl("pods", "1"),
			corev1.ScopedResourceSelectorRequirement{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpExists, Values: []string{"high"}}),
			[]string{`spec.scopeSelector.matchExpressions.values: Invalid value: ["high"]: must be no value when ` + "`operator`" + ` is 'Exist' or 'DoesNotExist' for scope selector`}},
		{"quota scope selector In on a scope that takes Exists", selected(rl("pods", "1"),
			corev1.ScopedResourceSelectorRequirement{ScopeName: corev1.ResourceQuotaScopeTerminating, Operator: corev1.ScopeSelectorOpIn, Values: []string{"x"}}),
			[]string{`spec.scopeSelector.matchExpressions.operator: Invalid value: "In": must be 'Exist' when scope is any of ResourceQuotaScopeTerminating, ResourceQuotaScopeNotTerminating, ResourceQuotaScopeBestEffort, ResourceQuotaScopeNotBestEffort or ResourceQuotaScopeCrossNamespacePodAffinity`}},
		{"quota scope selector bad operator", selected(rl("pods", "1"),
			corev1.ScopedResourceSelectorRequirement{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: "Gt", Values: []string{"1"}}),
			[]string{`spec.scopeSelector.matchExpressions.operator: Invalid value: "Gt": not a valid selector operator`}},
		{"quota scope selector on a resource priority does not limit", selected(rl("count/configmaps", "1"),
			corev1.ScopedResourceSelectorRequirement{ScopeName: corev1.ResourceQuotaScopePriorityClass, Operator: corev1.ScopeSelectorOpExists}),
			nil},

		{"limitrange valid", limitRange(
			corev1.LimitRangeItem{Type: container, Min: rl("cpu", "100m"), Max: rl("cpu", "2"), Default: rl("cpu", "500m"),
				DefaultRequest: rl("cpu", "200m"), MaxLimitRequestRatio: rl("cpu", "4")},
			corev1.LimitRangeItem{Type: corev1.LimitTypePod, Max: rl("memory", "1Gi")}), nil},
		{"limitrange type", limitRange(corev1.LimitRangeItem{Type: "Node", Max: rl("cpu", "1")}),
			[]string{`spec.limits[0].type: Invalid value: "Node": must be a standard limit type or fully qualified`}},
		{"limitrange duplicate type", limitRange(corev1.LimitRangeItem{Type: container}, corev1.LimitRangeItem{Type: container}),
			[]string{`spec.limits[1].type: Duplicate value: "Container"`}},
		{"limitrange min over max", limitRange(corev1.LimitRangeItem{Type: container, Min: rl("cpu", "2"), Max: rl("cpu", "1"),
			Default: rl("cpu", "1"), DefaultRequest: rl("cpu", "2")}),
			[]string{`spec.limits[0].min[cpu]: Invalid value: "2": min value 2 is greater than max value 1`,
				`spec.limits[0].defaultRequest[cpu]: Invalid value: "2": default request value 2 is greater than max value 1`,
				`spec.limits[0].defaultRequest[cpu]: Invalid value: "2": default request value 2 is greater than default limit value 1`,
				`spec.limits[0].default[cpu]: Invalid value: "2": min value 2 is greater than default value 1`}},
		{"limitrange default over max", limitRange(corev1.LimitRangeItem{Type: container, Max: rl("memory", "1Gi"),
			Default: rl("memory", "2Gi"), DefaultRequest: rl("memory", "1Gi")}),
			[]string{`spec.limits[0].default[memory]: Invalid value: "1Gi": default value 2Gi is greater than max value 1Gi`}},
		{"limitrange pod defaults", limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypePod, Default: rl("cpu", "1")}),
			[]string{"spec.limits[0].default: Forbidden: may not be specified when `type` is 'Pod'"}},
		{"limitrange ratio below 1", limitRange(corev1.LimitRangeItem{Type: container, MaxLimitRequestRatio: rl("cpu", "500m")}),
			[]string{`spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "500m": ratio 500m is less than 1`}},
		{"limitrange ratio over max/min", limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypePod, Min: rl("cpu", "1"),
			Max: rl("cpu", "2"), MaxLimitRequestRatio: rl("cpu", "3")}),
			[]string{`spec.limits[0].maxLimitRequestRatio[cpu]: Invalid value: "3": ratio 3 is greater than max/min = 2.000000`}},
		{"limitrange resource name", limitRange(corev1.LimitRangeItem{Type: container, Max: rl("pods", "1")}),
			// Defaulting copied max into default and defaultRequest.
			[]string{`spec.limits[0].max[pods]: Invalid value: "pods": must be a standard resource for containers`,
				`spec.limits[0].default[pods]: Invalid value: "pods": must be a standard resource for containers`,
				`spec.limits[0].defaultRequest[pods]: Invalid value: "pods": must be a standard resource for containers`}},
		{"limitrange pvc needs storage", limitRange(corev1.LimitRangeItem{Type: corev1.LimitTypePersistentVolumeClaim, Max: rl("cpu", "1")}),
			[]string{`spec.limits[0].max[cpu]: Invalid value: "cpu": must be a standard resource for persistent volume claims`,
				"spec.limits[0].limits: Required value: either minimum or maximum storage value is required, but neither was provided"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			Default(tc.obj)
			checkErrors(t, Validate(tc.obj), tc.want)
		})
	}
}

func TestValidateQuotaStatus(t *testing.T) {
	q := resourceQuota(rl("pods", "1"))
	q.Status = corev1.ResourceQuotaStatus{Hard: rl("pods", "1"), Used: rl("pods", "-1", "widgets", "1")}
	checkErrors(t, ValidateStatus(q), []string{`status.used[pods]: Invalid value: "-1": must be greater than or equal to 0`,
		`status.used[widgets]: Invalid value: "widgets": must be a standard resource for quota`})
}

// TestDefaultLimitRange: Kubernetes' defaults of a Container item: the default limit is
// the max, the default request the default limit, else the min; a Pod item gets none.
func TestDefaultLimitRange(t *testing.T) {
	lr := limitRange(
		corev1.LimitRangeItem{Type: corev1.LimitTypeContainer, Max: rl("cpu", "2", "memory", "1Gi"), Min: rl("ephemeral-storage", "1Mi"),
			Default: rl("memory", "512Mi")},
		corev1.LimitRangeItem{Type: corev1.LimitTypePod, Max: rl("cpu", "4")})
	Default(lr)
	got := lr.Spec.Limits
	if want := rl("cpu", "2", "memory", "512Mi"); !equality.Semantic.DeepEqual(got[0].Default, want) {
		t.Errorf("default = %v, want %v", got[0].Default, want)
	}
	if want := rl("cpu", "2", "memory", "512Mi", "ephemeral-storage", "1Mi"); !equality.Semantic.DeepEqual(got[0].DefaultRequest, want) {
		t.Errorf("defaultRequest = %v, want %v", got[0].DefaultRequest, want)
	}
	if got[1].Default != nil || got[1].DefaultRequest != nil {
		t.Errorf("a Pod item got defaults: %+v", got[1])
	}
}
