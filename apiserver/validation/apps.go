package validation

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"google.golang.org/protobuf/types/known/structpb"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
	"github.com/skiffhq/skiff/proto/labels"
)

const (
	percentFmt = `[0-9]+%`
	percentMsg = "a valid percent string must be a numeric string followed by an ending '%' " +
		"(e.g. '1%',  or '93%', regex used for validation is '" + percentFmt + "')"
)

var percentRE = regexp.MustCompile(`^` + percentFmt + `$`)

var (
	strategyTypes       = []string{"RollingUpdate", "Recreate"}
	selectorOps         = []string{"In", "NotIn", "Exists", "DoesNotExist"}
	defaultRollingParam = "25%"
)

func (e *errs) deploymentSpec(p path, spec *corev1.DeploymentSpec) {
	if spec == nil {
		spec = &corev1.DeploymentSpec{}
	}
	if spec.Replicas != nil {
		e.nonNegative(p.child("replicas"), int64(spec.GetReplicas()))
	}
	e.selectorAndTemplate(p, "deployment", spec.GetSelector(), spec.GetTemplate())
	e.strategy(p.child("strategy"), spec.GetStrategy())
	e.nonNegative(p.child("minReadySeconds"), int64(spec.GetMinReadySeconds()))
	if spec.RevisionHistoryLimit != nil {
		e.nonNegative(p.child("revisionHistoryLimit"), int64(spec.GetRevisionHistoryLimit()))
	}
	if spec.ProgressDeadlineSeconds != nil {
		pd := spec.GetProgressDeadlineSeconds()
		e.nonNegative(p.child("progressDeadlineSeconds"), int64(pd))
		if pd >= 0 && pd <= spec.GetMinReadySeconds() {
			e.invalid(p.child("progressDeadlineSeconds"), pd, "must be greater than minReadySeconds")
		}
	}
}

func (e *errs) replicaSetSpec(p path, spec *corev1.ReplicaSetSpec) {
	if spec == nil {
		spec = &corev1.ReplicaSetSpec{}
	}
	if spec.Replicas != nil {
		e.nonNegative(p.child("replicas"), int64(spec.GetReplicas()))
	}
	e.nonNegative(p.child("minReadySeconds"), int64(spec.GetMinReadySeconds()))
	e.selectorAndTemplate(p, "replicaset", spec.GetSelector(), spec.GetTemplate())
}

// selectorAndTemplate checks a controller's selector and template, and that the pods it
// stamps out are ones it selects: otherwise it would create pods forever.
func (e *errs) selectorAndTemplate(p path, kind string, ls *corev1.LabelSelector, t *corev1.PodTemplateSpec) {
	sp := p.child("selector")
	ok := true
	switch {
	case ls == nil:
		e.required(sp, "")
		ok = false
	case len(ls.GetMatchLabels()) == 0 && len(ls.GetMatchExpressions()) == 0:
		e.invalid(sp, "", "empty selector is invalid for "+kind)
		ok = false
	default:
		ok = e.labelSelector(sp, ls)
	}
	e.podTemplate(p.child("template"), t)
	if !ok || t == nil {
		return
	}
	sel, err := labels.FromLabelSelector(ls, string(sp))
	if err != nil {
		// labelSelector accepted it, so this would be a disagreement between the two.
		e.invalid(sp, nil, err.Error())
		return
	}
	if !sel.Matches(t.GetMetadata().GetLabels()) {
		e.invalid(sp, selectorString(ls), "selector does not match template labels")
	}
}

// labelSelector reports every problem in ls, where labels.FromLabelSelector stops at the
// first, and says whether there were none.
func (e *errs) labelSelector(p path, ls *corev1.LabelSelector) bool {
	before := len(e.list)
	e.labels(p.child("matchLabels"), ls.GetMatchLabels())
	for i, r := range ls.GetMatchExpressions() {
		rp := p.child("matchExpressions").index(i)
		if err := labels.ValidateKey(r.GetKey()); err != nil {
			e.invalid(rp.child("key"), r.GetKey(), stripSubject(err))
		}
		switch r.GetOperator() {
		case "In", "NotIn":
			if len(r.GetValues()) == 0 {
				e.required(rp.child("values"), "must be specified when `operator` is 'In' or 'NotIn'")
			}
		case "Exists", "DoesNotExist":
			if len(r.GetValues()) > 0 {
				e.forbidden(rp.child("values"), "may not be specified when `operator` is 'Exists' or 'DoesNotExist'")
			}
		default:
			e.oneOf(rp.child("operator"), r.GetOperator(), selectorOps...)
		}
		for j, v := range r.GetValues() {
			if err := labels.ValidateValue(v); err != nil {
				e.invalid(rp.child("values").index(j), v, stripSubject(err))
			}
		}
	}
	return len(e.list) == before
}

func (e *errs) strategy(p path, s *corev1.DeploymentStrategy) {
	tp := s.GetType()
	if tp != "" {
		e.oneOf(p.child("type"), tp, strategyTypes...)
	}
	ru := s.GetRollingUpdate()
	if ru == nil {
		return
	}
	rp := p.child("rollingUpdate")
	if tp == "Recreate" {
		e.forbidden(rp, "may not be specified when strategy `type` is 'Recreate'")
		return
	}
	surge, surgeOK := e.intOrPercent(rp.child("maxSurge"), ru.GetMaxSurge())
	unavail, unavailOK := e.intOrPercent(rp.child("maxUnavailable"), ru.GetMaxUnavailable())
	if unavailOK && unavail.percent && unavail.n > 100 {
		e.invalid(rp.child("maxUnavailable"), unavail.String(), "must not be greater than 100%")
	}
	if surgeOK && unavailOK && surge.n == 0 && unavail.n == 0 {
		e.invalid(rp.child("maxUnavailable"), unavail.value(), "may not be 0 when `maxSurge` is 0")
	}
}

// intOrPercent is Kubernetes' IntOrString as rolling updates use it: a count or a percent.
type intOrPercent struct {
	n       int64
	percent bool
}

func (v intOrPercent) String() string {
	if v.percent {
		return fmt.Sprintf("%d%%", v.n)
	}
	return strconv.FormatInt(v.n, 10)
}

// value is what an error prints: a number bare, a percent quoted.
func (v intOrPercent) value() any {
	if v.percent {
		return v.String()
	}
	return v.n
}

// intOrPercent parses a maxSurge or maxUnavailable. An unset value is the default, 25%.
func (e *errs) intOrPercent(p path, v *structpb.Value) (intOrPercent, bool) {
	if v == nil {
		return parsePercent(defaultRollingParam), true
	}
	switch k := v.GetKind().(type) {
	case *structpb.Value_NumberValue:
		n := k.NumberValue
		if n != math.Trunc(n) || math.Abs(n) > math.MaxInt32 {
			e.invalid(p, n, "must be an integer or a percentage string")
			return intOrPercent{}, false
		}
		if n < 0 {
			e.invalid(p, int64(n), "must be greater than or equal to 0")
			return intOrPercent{}, false
		}
		return intOrPercent{n: int64(n)}, true
	case *structpb.Value_StringValue:
		s := k.StringValue
		if !percentRE.MatchString(s) {
			e.invalid(p, s, percentMsg)
			return intOrPercent{}, false
		}
		return parsePercent(s), true
	}
	e.invalid(p, nil, "must be an integer or a percentage string")
	return intOrPercent{}, false
}

func parsePercent(s string) intOrPercent {
	n, err := strconv.ParseInt(strings.TrimSuffix(s, "%"), 10, 64)
	if err != nil {
		n = math.MaxInt64 // only digits matched, so it overflowed: certainly over 100%
	}
	return intOrPercent{n: n, percent: true}
}
