package validation

import (
	"os"
	"path/filepath"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
)

func withAffinity(a *corev1.Affinity) *corev1.Pod {
	return pod(func(p *corev1.Pod) { p.Spec.Affinity = a })
}

func nodeAffinity(terms ...corev1.NodeSelectorTerm) *corev1.Affinity {
	return &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{
		RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{NodeSelectorTerms: terms}}}
}

func exprs(rs ...corev1.NodeSelectorRequirement) corev1.NodeSelectorTerm {
	return corev1.NodeSelectorTerm{MatchExpressions: rs}
}

func antiAffinity(terms ...corev1.PodAffinityTerm) *corev1.Affinity {
	return &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: terms}}
}

func appTerm(key string) corev1.PodAffinityTerm {
	return corev1.PodAffinityTerm{TopologyKey: key, LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}
}

func withSpread(cs ...corev1.TopologySpreadConstraint) *corev1.Pod {
	return pod(func(p *corev1.Pod) { p.Spec.TopologySpreadConstraints = cs })
}

func spread(skew int32, key string, when corev1.UnsatisfiableConstraintAction) corev1.TopologySpreadConstraint {
	return corev1.TopologySpreadConstraint{MaxSkew: skew, TopologyKey: key, WhenUnsatisfiable: when,
		LabelSelector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": "web"}}}
}

func withResources(req, lim corev1.ResourceList) *corev1.Pod {
	return pod(func(p *corev1.Pod) {
		p.Spec.Containers[0].Resources = corev1.ResourceRequirements{Requests: req, Limits: lim}
	})
}

func dongles(q string) corev1.ResourceList {
	return corev1.ResourceList{"example.com/dongle": resource.MustParse(q)}
}

func TestValidateScheduling(t *testing.T) {
	policy := func(p corev1.NodeInclusionPolicy) *corev1.NodeInclusionPolicy { return &p }
	for _, tc := range []struct {
		name string
		obj  kinds.Object
		want []string
	}{
		// Node affinity.
		{"node affinity", withAffinity(nodeAffinity(
			exprs(corev1.NodeSelectorRequirement{Key: "disk", Operator: "In", Values: []string{"ssd"}},
				corev1.NodeSelectorRequirement{Key: "gpu", Operator: "DoesNotExist"},
				corev1.NodeSelectorRequirement{Key: "cores", Operator: "Gt", Values: []string{"8"}}),
			corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: "In", Values: []string{"w1"}}}})), nil},
		{"no terms", withAffinity(nodeAffinity()),
			[]string{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms: Required value: must have at least one node selector term"}},
		{"In without values", withAffinity(nodeAffinity(exprs(corev1.NodeSelectorRequirement{Key: "disk", Operator: "In"}))),
			[]string{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified when `operator` is 'In' or 'NotIn'"}},
		{"Exists with values", withAffinity(nodeAffinity(exprs(corev1.NodeSelectorRequirement{Key: "disk", Operator: "Exists", Values: []string{"x"}}))),
			[]string{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: Forbidden: may not be specified when `operator` is 'Exists' or 'DoesNotExist'"}},
		{"Gt with two values", withAffinity(nodeAffinity(exprs(corev1.NodeSelectorRequirement{Key: "cores", Operator: "Gt", Values: []string{"1", "2"}}))),
			[]string{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].values: Required value: must be specified single value when `operator` is 'Lt' or 'Gt'"}},
		{"bad operator and key", withAffinity(nodeAffinity(exprs(corev1.NodeSelectorRequirement{Key: "a b", Operator: "Near"}))),
			[]string{`spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].operator: Invalid value: "Near": not a valid selector operator`,
				`spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchExpressions[0].key: Invalid value: "a b"`}},
		{"matchFields on labels", withAffinity(nodeAffinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.labels", Operator: "Exists"}}})),
			[]string{`spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].operator: Invalid value: "Exists": not a valid selector operator`,
				`spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].key: Invalid value: "metadata.labels": not a valid field selector key`}},
		{"matchFields two names", withAffinity(nodeAffinity(corev1.NodeSelectorTerm{MatchFields: []corev1.NodeSelectorRequirement{{Key: "metadata.name", Operator: "In", Values: []string{"a", "b"}}}})),
			[]string{"spec.affinity.nodeAffinity.requiredDuringSchedulingIgnoredDuringExecution.nodeSelectorTerms[0].matchFields[0].values: Required value: must be only one value when `operator` is 'In' or 'NotIn' for node field selector"}},
		{"preferred weight", withAffinity(&corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.PreferredSchedulingTerm{
			{Weight: 0, Preference: exprs(corev1.NodeSelectorRequirement{Key: "disk", Operator: "Exists"})}}}}),
			[]string{"spec.affinity.nodeAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 0: must be in the range 1-100"}},

		// Pod affinity and anti-affinity.
		{"anti-affinity", withAffinity(antiAffinity(appTerm(corev1.LabelHostname))), nil},
		{"no topology key", withAffinity(antiAffinity(appTerm(""))),
			[]string{"spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Required value: can not be empty",
				`spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: "": name part must be non-empty`,
				`spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].topologyKey: Invalid value: "": name part must consist of`}},
		{"bad selector and namespace", withAffinity(&corev1.Affinity{PodAffinity: &corev1.PodAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			TopologyKey: "zone", Namespaces: []string{"Bad_NS"},
			LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{Key: "app", Operator: "In"}}}}}}}),
			[]string{"spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].labelSelector.matchExpressions[0].values: Required value",
				`spec.affinity.podAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].namespace: Invalid value: "Bad_NS"`}},
		{"preferred anti-affinity weight", withAffinity(&corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{
			{Weight: 101, PodAffinityTerm: appTerm("zone")}}}}),
			[]string{"spec.affinity.podAntiAffinity.preferredDuringSchedulingIgnoredDuringExecution[0].weight: Invalid value: 101: must be in the range 1-100"}},
		{"matchLabelKeys not supported", withAffinity(&corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{RequiredDuringSchedulingIgnoredDuringExecution: []corev1.PodAffinityTerm{{
			TopologyKey: "zone", LabelSelector: &metav1.LabelSelector{}, MatchLabelKeys: []string{"pod-template-hash"}}}}}),
			[]string{"spec.affinity.podAntiAffinity.requiredDuringSchedulingIgnoredDuringExecution[0].matchLabelKeys: Forbidden: not supported by Skiff"}},

		// Topology spread constraints.
		{"spread", withSpread(spread(1, corev1.LabelTopologyZone, corev1.DoNotSchedule), spread(2, corev1.LabelHostname, corev1.ScheduleAnyway)), nil},
		{"spread errors", withSpread(corev1.TopologySpreadConstraint{MaxSkew: 0, WhenUnsatisfiable: "Maybe"}),
			[]string{"spec.topologySpreadConstraints[0].maxSkew: Invalid value: 0: must be greater than zero",
				"spec.topologySpreadConstraints[0].topologyKey: Required value: can not be empty",
				`spec.topologySpreadConstraints[0].whenUnsatisfiable: Unsupported value: "Maybe": supported values: "DoNotSchedule", "ScheduleAnyway"`}},
		{"spread duplicate", withSpread(spread(1, "zone", corev1.DoNotSchedule), spread(2, "zone", corev1.DoNotSchedule)),
			[]string{`spec.topologySpreadConstraints[0].{topologyKey, whenUnsatisfiable}: Duplicate value: "{zone, DoNotSchedule}"`}},
		{"minDomains", withSpread(func() corev1.TopologySpreadConstraint {
			c := spread(1, "zone", corev1.ScheduleAnyway)
			c.MinDomains = new(int32(0))
			return c
		}()), []string{"spec.topologySpreadConstraints[0].minDomains: Invalid value: 0: must be greater than zero",
			"spec.topologySpreadConstraints[0].minDomains: Invalid value: 0: can only use minDomains if whenUnsatisfiable=DoNotSchedule, not ScheduleAnyway"}},
		{"policies", withSpread(func() corev1.TopologySpreadConstraint {
			c := spread(1, "zone", corev1.DoNotSchedule)
			c.NodeAffinityPolicy, c.NodeTaintsPolicy = policy("Honor"), policy("Always")
			return c
		}()), []string{`spec.topologySpreadConstraints[0].nodeTaintsPolicy: Unsupported value: "Always": supported values: "Honor", "Ignore"`}},

		// Extended resources.
		{"dongles", withResources(dongles("3"), dongles("3")), nil},
		{"dongles limit only", withResources(nil, dongles("3")), nil},
		{"dongles request only", withResources(dongles("3"), nil),
			[]string{"spec.containers[0].resources.limits: Required value: Limit must be set for non overcommitable resources"}},
		{"dongles overcommitted", withResources(dongles("2"), dongles("3")),
			[]string{`spec.containers[0].resources.requests: Invalid value: "2": must be equal to example.com/dongle limit of 3`}},
		{"half a dongle", withResources(dongles("500m"), dongles("500m")),
			[]string{`spec.containers[0].resources.limits[example.com/dongle]: Invalid value: "500m": must be an integer`,
				`spec.containers[0].resources.requests[example.com/dongle]: Invalid value: "500m": must be an integer`}},
		{"not an extended resource name", withResources(corev1.ResourceList{"requests.example.com/x": resource.MustParse("1")}, corev1.ResourceList{"requests.example.com/x": resource.MustParse("1")}),
			[]string{`spec.containers[0].resources.limits[requests.example.com/x]: Invalid value: "requests.example.com/x": doesn't follow extended resource name standard`,
				`spec.containers[0].resources.requests[requests.example.com/x]: Invalid value: "requests.example.com/x": doesn't follow extended resource name standard`}},
		{"not a container resource", withResources(corev1.ResourceList{"pods": resource.MustParse("1")}, nil),
			[]string{`spec.containers[0].resources.requests[pods]: Invalid value: "pods": must be a standard resource for containers`}},
		{"cpu may be overcommitted", withResources(corev1.ResourceList{"cpu": resource.MustParse("100m")}, corev1.ResourceList{"cpu": resource.MustParse("1")}), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			checkErrors(t, Validate(tc.obj), tc.want)
		})
	}
}

// A pod that limits a resource without requesting it requests its limit, as in
// Kubernetes; a template is left as written.
func TestDefaultRequestsFromLimits(t *testing.T) {
	p := withResources(corev1.ResourceList{"cpu": resource.MustParse("100m")}, corev1.ResourceList{"cpu": resource.MustParse("1"), "example.com/dongle": resource.MustParse("2")})
	Default(p)
	req := p.Spec.Containers[0].Resources.Requests
	if got := req["example.com/dongle"]; got.String() != "2" {
		t.Errorf("dongle request %s, want 2", got.String())
	}
	if got := req["cpu"]; got.String() != "100m" {
		t.Errorf("cpu request %s, want the 100m set", got.String())
	}
	d := deployment(func(d *appsv1.Deployment) {
		d.Spec.Template.Spec.Containers[0].Resources.Limits = dongles("1")
	})
	Default(d)
	if r := d.Spec.Template.Spec.Containers[0].Resources.Requests; r != nil {
		t.Errorf("template requests defaulted: %v", r)
	}
}

// The manifests in examples/scheduling are written the way the Kubernetes
// documentation's task pages write them; each is accepted as it is.
func TestSchedulingManifests(t *testing.T) {
	files, err := filepath.Glob("../../examples/scheduling/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			obj, err := kinds.DecodeManifest(b)
			if err != nil {
				t.Fatal(err)
			}
			Default(obj)
			if err := Validate(obj); err != nil {
				t.Fatal(err)
			}
		})
	}
}
