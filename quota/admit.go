package quota

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"

	"github.com/skiffhq/skiff/kinds"
)

// Charge is Kubernetes' ResourceQuota admission of a new object obj against its
// namespace's quotas: each quota that tracks what obj uses must have room for it. It
// returns the quotas whose status.used grows (copies, with obj's usage added), which the
// caller stores with obj in one transaction, each on the condition that the quota is
// unchanged since it was read; or the refusal, in Kubernetes' words (the caller says
// which object is forbidden). Like Kubernetes, it limits by status.hard, which the quota
// controller copies from spec.hard: a quota it has not synced yet limits nothing, and a
// quota without usage for what it limits refuses until it has some.
func Charge(quotas []*corev1.ResourceQuota, obj kinds.Object, now time.Time) ([]*corev1.ResourceQuota, error) {
	if len(quotas) == 0 {
		return nil, nil
	}
	usage := Usage(obj, now)
	pod, _ := obj.(*corev1.Pod)
	sorted := slices.Clone(quotas)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].Name < sorted[j].Name })
	var out []*corev1.ResourceQuota
	for _, q := range sorted {
		if !Matches(q, obj) {
			continue
		}
		restricted := restrictedBy(q.Status.Hard, usage, pod != nil)
		if len(restricted) == 0 {
			continue
		}
		if pod != nil {
			if err := requireRequests(restricted, pod); err != nil {
				return nil, fmt.Errorf("failed quota: %s: %v", q.Name, err)
			}
		}
		var unknown []string
		for _, name := range restricted {
			if _, ok := q.Status.Used[name]; !ok {
				unknown = append(unknown, string(name))
			}
		}
		if len(unknown) > 0 {
			return nil, fmt.Errorf("status unknown for quota: %s, resources: %s", q.Name, strings.Join(unknown, ","))
		}
		requested := Mask(usage, q.Status.Hard)
		if len(requested) == 0 {
			continue
		}
		next := Add(q.Status.Used, requested)
		var exceeded []corev1.ResourceName
		for name := range requested {
			if n, hard := next[name], q.Status.Hard[name]; n.Cmp(hard) > 0 {
				exceeded = append(exceeded, name)
			}
		}
		if len(exceeded) > 0 {
			return nil, fmt.Errorf("exceeded quota: %s, requested: %s, used: %s, limited: %s", q.Name,
				pretty(requested, exceeded), pretty(q.Status.Used, exceeded), pretty(q.Status.Hard, exceeded))
		}
		if equality.Semantic.DeepEqual(next, q.Status.Used) {
			continue
		}
		charged := q.DeepCopy()
		charged.Status.Used = next
		out = append(out, charged)
	}
	return out, nil
}

// restrictedBy are the names of hard that concern an object using usage: those it uses,
// and for a pod every compute resource (a pod that asks for none still must say so).
func restrictedBy(hard, usage corev1.ResourceList, isPod bool) []corev1.ResourceName {
	var out []corev1.ResourceName
	for name := range hard {
		_, uses := usage[name]
		if uses || isPod && (podCompute[name] || name == Pods) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// requireRequests is Kubernetes' backward-compatible constraint: when a quota limits cpu
// or memory, every container must ask for it (request for cpu, memory and requests.*,
// limit for limits.*).
func requireRequests(restricted []corev1.ResourceName, pod *corev1.Pod) error {
	missing := map[corev1.ResourceName][]string{}
	check := func(c *corev1.Container) {
		for _, name := range restricted {
			if !requestRequired[name] {
				continue
			}
			list, res := c.Resources.Requests, name
			if r, ok := strings.CutPrefix(string(name), "limits."); ok {
				list, res = c.Resources.Limits, corev1.ResourceName(r)
			} else if r, ok := strings.CutPrefix(string(name), "requests."); ok {
				res = corev1.ResourceName(r)
			}
			if _, ok := list[res]; !ok {
				missing[name] = append(missing[name], c.Name)
			}
		}
	}
	for i := range pod.Spec.Containers {
		check(&pod.Spec.Containers[i])
	}
	for i := range pod.Spec.InitContainers {
		check(&pod.Spec.InitContainers[i])
	}
	if len(missing) == 0 {
		return nil
	}
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(missing)) {
		names := slices.Clone(missing[name])
		slices.Sort(names)
		parts = append(parts, fmt.Sprintf("%s for: %s", name, strings.Join(slices.Compact(names), ",")))
	}
	return fmt.Errorf("must specify %s", strings.Join(parts, "; "))
}

// pretty prints the names of list among names as Kubernetes does: "pods=1,requests.cpu=2".
func pretty(list corev1.ResourceList, names []corev1.ResourceName) string {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	parts := make([]string, 0, len(sorted))
	for _, name := range sorted {
		q := list[name]
		parts = append(parts, string(name)+"="+q.String())
	}
	return strings.Join(parts, ",")
}
