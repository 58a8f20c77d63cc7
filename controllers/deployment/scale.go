package deployment

import (
	"math"
	"sort"
	"strconv"

	appsv1 "k8s.io/api/apps/v1"
)

// The replica annotations Kubernetes keeps on every ReplicaSet its Deployment controller
// writes: the Deployment's replicas, and replicas+maxSurge, at that write. A Deployment
// whose replicas differ from an active ReplicaSet's desired-replicas has been resized,
// and max-replicas is the size each ReplicaSet's share was taken of.
const (
	DesiredReplicasAnnotation = "deployment.kubernetes.io/desired-replicas"
	MaxReplicasAnnotation     = "deployment.kubernetes.io/max-replicas"
)

// maxSurge is the surge a Deployment's rollouts may take in pods: none for Recreate.
func maxSurge(d *appsv1.Deployment) int32 {
	if d.Spec.Strategy.Type == appsv1.RecreateDeploymentStrategyType {
		return 0
	}
	surge, _, _ := resolveFenceposts(d) // a bad value is refused before it is stored
	return surge
}

// setReplicaAnnotations writes d's desired and max replicas on rs and says whether they
// changed.
func setReplicaAnnotations(d *appsv1.Deployment, rs *appsv1.ReplicaSet) bool {
	want := wantReplicas(d)
	desired, maxReplicas := strconv.Itoa(int(want)), strconv.Itoa(int(want+maxSurge(d)))
	if rs.Annotations[DesiredReplicasAnnotation] == desired && rs.Annotations[MaxReplicasAnnotation] == maxReplicas {
		return false
	}
	if rs.Annotations == nil {
		rs.Annotations = map[string]string{}
	}
	rs.Annotations[DesiredReplicasAnnotation] = desired
	rs.Annotations[MaxReplicasAnnotation] = maxReplicas
	return true
}

// replicaAnnotation reads a non-negative int32 annotation; ok is false when it is
// missing or not such a number (someone edited it).
func replicaAnnotation(rs *appsv1.ReplicaSet, key string) (int32, bool) {
	v, ok := rs.Annotations[key]
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(v, 10, 31)
	if err != nil {
		return 0, false
	}
	return int32(n), true
}

// active are the ReplicaSets with replicas, in the order given.
func active(rss []*appsv1.ReplicaSet) []*appsv1.ReplicaSet {
	var out []*appsv1.ReplicaSet
	for _, rs := range rss {
		if rs != nil && replicasOf(rs) > 0 {
			out = append(out, rs)
		}
	}
	return out
}

// IsScalingEvent says whether the Deployment was resized since its controller last
// wrote its active ReplicaSets (Kubernetes' isScalingEvent): then the replicas are
// shared out by ScaleStep rather than by a rollout step. ReplicaSets without the
// annotation (written before Skiff kept it) say nothing.
func IsScalingEvent(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) bool {
	for _, rs := range active(append([]*appsv1.ReplicaSet{newRS}, old...)) {
		if desired, ok := replicaAnnotation(rs, DesiredReplicasAnnotation); ok && desired != wantReplicas(d) {
			return true
		}
	}
	return false
}

// ScaleStep resizes a Deployment's ReplicaSets to its replicas without rolling it
// forward, as Kubernetes' scale (pkg/controller/deployment/sync.go) does, for a paused
// Deployment or a scaling event:
//   - with at most one active ReplicaSet, that one (else the new one, else the newest)
//     takes all the replicas;
//   - when the new ReplicaSet has all the replicas, available, the old ones go to zero;
//   - otherwise, in a RollingUpdate, replicas+maxSurge less what the active ReplicaSets
//     have is added to (or taken from) each in proportion to its share of the
//     max-replicas it was last sized for, rounded to the nearest; the largest
//     ReplicaSet (the newest of equals when adding, the oldest when removing) takes
//     what rounding leaves over.
//
// newRS may be nil (paused after a template change); old are sorted oldest first. A
// step may keep a ReplicaSet's size: its annotations are out of date. Steps that would
// change nothing are left out.
func ScaleStep(d *appsv1.Deployment, newRS *appsv1.ReplicaSet, old []*appsv1.ReplicaSet) []Scale {
	want := wantReplicas(d)
	all := append(append([]*appsv1.ReplicaSet{}, old...), newRS) // oldest first
	if newRS == nil {
		all = all[:len(all)-1]
	}
	if len(all) == 0 {
		return nil
	}
	act := active(all)
	var out []Scale
	keep := func(rs *appsv1.ReplicaSet, n int32) {
		next := rs.DeepCopy()
		if setReplicaAnnotations(d, next) || n != replicasOf(rs) {
			out = append(out, Scale{rs, n})
		}
	}
	switch {
	case len(act) == 1:
		keep(act[0], want)
	case len(act) == 0:
		keep(all[len(all)-1], want) // the new one, else the newest old one
	case newRS != nil && replicasOf(newRS) == want && newRS.Status.AvailableReplicas == want:
		for _, rs := range act {
			if rs != newRS {
				keep(rs, 0)
			}
		}
	case d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType:
		allowed := int32(0)
		if want > 0 {
			allowed = want + maxSurge(d)
		}
		toAdd := allowed - sum(act, replicasOf)
		age := map[*appsv1.ReplicaSet]int{}
		for i, rs := range act {
			age[rs] = i
		}
		// Largest first; among equals the newest first when adding, the oldest first
		// when removing.
		sort.SliceStable(act, func(i, j int) bool {
			if a, b := replicasOf(act[i]), replicasOf(act[j]); a != b {
				return a > b
			}
			if toAdd > 0 {
				return age[act[i]] > age[act[j]]
			}
			return age[act[i]] < age[act[j]]
		})
		size := map[*appsv1.ReplicaSet]int32{}
		added := int32(0)
		for _, rs := range act {
			p := proportion(d, rs, toAdd, added)
			size[rs] = replicasOf(rs) + p
			added += p
		}
		size[act[0]] = max(size[act[0]]+toAdd-added, 0)
		for _, rs := range act {
			keep(rs, size[rs])
		}
	}
	return out
}

// proportion is how many of toAdd (negative: to remove) replicas rs takes when added
// of them are given out already (Kubernetes' GetReplicaSetProportion): its share,
// never beyond what is left.
func proportion(d *appsv1.Deployment, rs *appsv1.ReplicaSet, toAdd, added int32) int32 {
	if replicasOf(rs) == 0 || toAdd == 0 || toAdd == added {
		return 0
	}
	left := toAdd - added
	if toAdd > 0 {
		return min(share(d, rs), left)
	}
	return max(share(d, rs), left)
}

// share is the change of rs's size that keeps its part of the Deployment's
// replicas+maxSurge: its size times the new maximum over the maximum it was sized for
// (the max-replicas annotation, else the Deployment's status.replicas), rounded.
func share(d *appsv1.Deployment, rs *appsv1.ReplicaSet) int32 {
	if wantReplicas(d) == 0 {
		return -replicasOf(rs)
	}
	before, ok := replicaAnnotation(rs, MaxReplicasAnnotation)
	if !ok || before == 0 {
		if before = d.Status.Replicas; before == 0 {
			return 0
		}
	}
	now := wantReplicas(d) + maxSurge(d)
	return int32(math.Round(float64(replicasOf(rs))*float64(now)/float64(before))) - replicasOf(rs)
}
