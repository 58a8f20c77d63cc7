package deployment

import (
	"fmt"
	"hash/fnv"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/utils/ptr"
)

// Annotations and labels, as Kubernetes names them.
const (
	RevisionAnnotation   = "deployment.kubernetes.io/revision"
	PodTemplateHashLabel = appsv1.DefaultDeploymentUniqueLabelKey
)

// TemplateHash is the pod-template-hash of a template: FNV-32a over its deterministic
// encoding (Kubernetes' protobuf encoding, which writes map entries in key order, so
// that an unchanged template always hashes the same) and the collision count, written
// with Kubernetes' safe alphabet.
func TemplateHash(t *corev1.PodTemplateSpec, collisions int32) string {
	b, _ := t.Marshal() // every template that was decoded or built encodes
	h := fnv.New32a()
	h.Write(b)
	if collisions > 0 {
		fmt.Fprintf(h, "%d", collisions)
	}
	return rand.SafeEncodeString(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// templateEqual compares a ReplicaSet's template with a deployment's, ignoring the
// pod-template-hash label (Kubernetes' EqualIgnoreHash). Semantic equality: an empty
// map or list is the same as none, 1000m the same quantity as 1.
func templateEqual(rsTmpl, dTmpl *corev1.PodTemplateSpec) bool {
	a, b := rsTmpl.DeepCopy(), dTmpl.DeepCopy()
	delete(a.Labels, PodTemplateHashLabel)
	delete(b.Labels, PodTemplateHashLabel)
	return equality.Semantic.DeepEqual(a, b)
}

// defaultRollingParam is maxSurge's and maxUnavailable's value when unset (the API
// server sets it; objects made by hand may not have it).
var defaultRollingParam = intstr.FromString("25%")

// resolveFenceposts turns maxSurge and maxUnavailable (ints or percents of replicas)
// into pod counts as Kubernetes does: surge rounds up, unavailable down, and both zero
// means one unavailable.
func resolveFenceposts(d *appsv1.Deployment) (surge, unavailable int32, err error) {
	var maxSurge, maxUnavailable *intstr.IntOrString
	if ru := d.Spec.Strategy.RollingUpdate; ru != nil {
		maxSurge, maxUnavailable = ru.MaxSurge, ru.MaxUnavailable
	}
	replicas := int(wantReplicas(d))
	s, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(maxSurge, defaultRollingParam), replicas, true)
	if err != nil {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate.maxSurge: %w", err)
	}
	u, err := intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(maxUnavailable, defaultRollingParam), replicas, false)
	if err != nil {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate.maxUnavailable: %w", err)
	}
	surge, unavailable = int32(s), int32(u)
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable, nil
}

func revisionOf(rs *appsv1.ReplicaSet) int64 {
	n, _ := strconv.ParseInt(rs.Annotations[RevisionAnnotation], 10, 64)
	return n
}

// replicasOf is a ReplicaSet's spec.replicas, wantReplicas a Deployment's (both
// defaulted by the API server; unset counts as none).
func replicasOf(rs *appsv1.ReplicaSet) int32  { return ptr.Deref(rs.Spec.Replicas, 0) }
func wantReplicas(d *appsv1.Deployment) int32 { return ptr.Deref(d.Spec.Replicas, 0) }

func sum(rss []*appsv1.ReplicaSet, f func(*appsv1.ReplicaSet) int32) int32 {
	var n int32
	for _, rs := range rss {
		n += f(rs)
	}
	return n
}

// sortOldestFirst orders ReplicaSets by revision, then as sortByCreation does
// (Kubernetes' ReplicaSetsByRevision). Revisions are what orders a rollout: creation
// timestamps are whole seconds, so ReplicaSets made within one second tie on them.
func sortOldestFirst(rss []*appsv1.ReplicaSet) {
	sort.Slice(rss, func(i, j int) bool {
		if ri, rj := revisionOf(rss[i]), revisionOf(rss[j]); ri != rj {
			return ri < rj
		}
		return createdBefore(rss[i], rss[j])
	})
}

// sortByCreation orders ReplicaSets by creationTimestamp, then name (Kubernetes'
// ReplicaSetsByCreationTimestamp): the name breaks the ties of whole-second timestamps,
// so that the order is the same on every sync.
func sortByCreation(rss []*appsv1.ReplicaSet) {
	sort.Slice(rss, func(i, j int) bool { return createdBefore(rss[i], rss[j]) })
}

func createdBefore(a, b *appsv1.ReplicaSet) bool {
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return a.CreationTimestamp.Before(&b.CreationTimestamp)
	}
	return a.Name < b.Name
}

// Scale is one change of a ReplicaSet's replicas that a rollout step decides.
type Scale struct {
	RS       *appsv1.ReplicaSet
	Replicas int32
}

// RollingStep decides the next scaling of a rolling update, as Kubernetes'
// reconcileNewReplicaSet and reconcileOldReplicaSets: scale the new ReplicaSet up
// within maxSurge, then scale old ones down as far as maxUnavailable allows, unhealthy
// replicas first. newRS exists; old are the other ReplicaSets, oldest first.
func RollingStep(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) ([]Scale, error) {
	surge, unavailable, err := resolveFenceposts(d)
	if err != nil {
		return nil, err
	}
	want := wantReplicas(d)
	all := append([]*appsv1.ReplicaSet{newRS}, old...)
	// Scale the new ReplicaSet.
	if replicasOf(newRS) > want {
		return []Scale{{newRS, want}}, nil
	}
	if replicasOf(newRS) < want {
		current := sum(all, replicasOf)
		up := min(want+surge-current, want-replicasOf(newRS))
		if up > 0 {
			return []Scale{{newRS, replicasOf(newRS) + up}}, nil
		}
	}
	// Scale old ReplicaSets down.
	oldCount := sum(old, replicasOf)
	if oldCount == 0 {
		return nil, nil
	}
	minAvailable := want - unavailable
	newUnavailable := replicasOf(newRS) - newRS.Status.AvailableReplicas
	maxScaledDown := sum(all, replicasOf) - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return nil, nil
	}
	var out []Scale
	scaled := map[*appsv1.ReplicaSet]int32{}
	// First the unhealthy replicas of old ReplicaSets: removing them costs no availability.
	budget := maxScaledDown
	for _, rs := range old {
		if budget <= 0 {
			break
		}
		unhealthy := replicasOf(rs) - rs.Status.AvailableReplicas
		if unhealthy <= 0 {
			continue
		}
		n := min(unhealthy, budget)
		scaled[rs] = replicasOf(rs) - n
		budget -= n
	}
	cleaned := maxScaledDown - budget
	// Then available ones, keeping minAvailable.
	available := sum(all, func(rs *appsv1.ReplicaSet) int32 { return rs.Status.AvailableReplicas })
	total := min(available-minAvailable, maxScaledDown-cleaned)
	for _, rs := range old {
		if total <= 0 {
			break
		}
		cur := replicasOf(rs)
		if v, ok := scaled[rs]; ok {
			cur = v
		}
		n := min(cur, total)
		if n > 0 {
			scaled[rs] = cur - n
			total -= n
		}
	}
	for _, rs := range old {
		if v, ok := scaled[rs]; ok && v != replicasOf(rs) {
			out = append(out, Scale{rs, v})
		}
	}
	return out, nil
}

// RecreateStep decides the next scaling of a Recreate rollout: all old replicas go
// first, and the new ReplicaSet scales up only once no old pod runs.
func RecreateStep(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) []Scale {
	var out []Scale
	for _, rs := range old {
		if replicasOf(rs) != 0 {
			out = append(out, Scale{rs, 0})
		}
	}
	if len(out) > 0 {
		return out
	}
	if sum(old, func(rs *appsv1.ReplicaSet) int32 { return rs.Status.Replicas }) > 0 {
		return nil // wait for the old pods to be gone
	}
	if replicasOf(newRS) != wantReplicas(d) {
		return []Scale{{newRS, wantReplicas(d)}}
	}
	return nil
}
