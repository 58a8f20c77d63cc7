package deployment

import (
	"fmt"
	"hash/fnv"
	"math"
	"sort"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	corev1 "github.com/skiffhq/skiff/proto/core/v1"
)

// Annotations and labels, as Kubernetes names them.
const (
	RevisionAnnotation   = "deployment.kubernetes.io/revision"
	PodTemplateHashLabel = "pod-template-hash"
)

// TemplateHash is the pod-template-hash of a template: FNV-32a over its deterministic
// encoding (and the collision count), written with Kubernetes' safe alphabet.
func TemplateHash(t *corev1.PodTemplateSpec, collisions int32) string {
	b, _ := proto.MarshalOptions{Deterministic: true}.Marshal(t)
	h := fnv.New32a()
	h.Write(b)
	if collisions > 0 {
		fmt.Fprintf(h, "%d", collisions)
	}
	return safeEncode(strconv.FormatUint(uint64(h.Sum32()), 10))
}

// safeEncode maps digits onto consonants and digits that spell no words (Kubernetes'
// rand.SafeEncodeString).
func safeEncode(s string) string {
	const alphabet = "bcdfghjklmnpqrstvwxz2456789"
	out := make([]byte, len(s))
	for i := 0; i < len(s); i++ {
		out[i] = alphabet[int(s[i])%len(alphabet)]
	}
	return string(out)
}

// templateEqual compares a ReplicaSet's template with a deployment's, ignoring the
// pod-template-hash label the ReplicaSet adds.
func templateEqual(rsTmpl, dTmpl *corev1.PodTemplateSpec) bool {
	a := proto.Clone(rsTmpl).(*corev1.PodTemplateSpec)
	if a.GetMetadata() != nil {
		delete(a.Metadata.Labels, PodTemplateHashLabel)
		if len(a.Metadata.Labels) == 0 {
			a.Metadata.Labels = nil
		}
	}
	b := proto.Clone(dTmpl).(*corev1.PodTemplateSpec)
	if b.GetMetadata() != nil && len(b.Metadata.Labels) == 0 {
		b.Metadata.Labels = nil
	}
	return proto.Equal(a, b)
}

// resolveFenceposts turns maxSurge and maxUnavailable (ints or percents of replicas)
// into pod counts as Kubernetes does: surge rounds up, unavailable down, and both zero
// means one unavailable.
func resolveFenceposts(d *corev1.Deployment) (surge, unavailable int32, err error) {
	ru := d.GetSpec().GetStrategy().GetRollingUpdate()
	replicas := d.GetSpec().GetReplicas()
	surge, err = intOrPercent(ru.GetMaxSurge(), replicas, true, 25)
	if err != nil {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate.maxSurge: %w", err)
	}
	unavailable, err = intOrPercent(ru.GetMaxUnavailable(), replicas, false, 25)
	if err != nil {
		return 0, 0, fmt.Errorf("spec.strategy.rollingUpdate.maxUnavailable: %w", err)
	}
	if surge == 0 && unavailable == 0 {
		unavailable = 1
	}
	return surge, unavailable, nil
}

func intOrPercent(v *structpb.Value, total int32, roundUp bool, defPercent float64) (int32, error) {
	pct := defPercent
	switch k := v.GetKind().(type) {
	case nil:
	case *structpb.Value_NumberValue:
		return int32(k.NumberValue), nil
	case *structpb.Value_StringValue:
		s, ok := strings.CutSuffix(k.StringValue, "%")
		if !ok {
			n, err := strconv.Atoi(k.StringValue)
			if err != nil {
				return 0, fmt.Errorf("invalid value %q: an integer or a percentage", k.StringValue)
			}
			return int32(n), nil
		}
		p, err := strconv.Atoi(s)
		if err != nil {
			return 0, fmt.Errorf("invalid value %q: an integer or a percentage", k.StringValue)
		}
		pct = float64(p)
	default:
		return 0, fmt.Errorf("invalid value: an integer or a percentage")
	}
	x := pct * float64(total) / 100
	if roundUp {
		return int32(math.Ceil(x)), nil
	}
	return int32(math.Floor(x)), nil
}

func revisionOf(rs *corev1.ReplicaSet) int64 {
	n, _ := strconv.ParseInt(rs.GetMetadata().GetAnnotations()[RevisionAnnotation], 10, 64)
	return n
}

func replicasOf(rs *corev1.ReplicaSet) int32 { return rs.GetSpec().GetReplicas() }

func sum(rss []*corev1.ReplicaSet, f func(*corev1.ReplicaSet) int32) int32 {
	var n int32
	for _, rs := range rss {
		n += f(rs)
	}
	return n
}

// sortOldestFirst orders ReplicaSets by revision, then creation.
func sortOldestFirst(rss []*corev1.ReplicaSet) {
	sort.SliceStable(rss, func(i, j int) bool {
		if ri, rj := revisionOf(rss[i]), revisionOf(rss[j]); ri != rj {
			return ri < rj
		}
		return rss[i].GetMetadata().GetCreationTimestamp().AsTime().Before(rss[j].GetMetadata().GetCreationTimestamp().AsTime())
	})
}

// Scale is one change of a ReplicaSet's replicas that a rollout step decides.
type Scale struct {
	RS       *corev1.ReplicaSet
	Replicas int32
}

// RollingStep decides the next scaling of a rolling update, as Kubernetes'
// reconcileNewReplicaSet and reconcileOldReplicaSets: scale the new ReplicaSet up
// within maxSurge, then scale old ones down as far as maxUnavailable allows, unhealthy
// replicas first. newRS exists; old are the other ReplicaSets, oldest first.
func RollingStep(d *corev1.Deployment, newRS *corev1.ReplicaSet, old []*corev1.ReplicaSet) ([]Scale, error) {
	surge, unavailable, err := resolveFenceposts(d)
	if err != nil {
		return nil, err
	}
	want := d.GetSpec().GetReplicas()
	all := append([]*corev1.ReplicaSet{newRS}, old...)
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
	newUnavailable := replicasOf(newRS) - newRS.GetStatus().GetAvailableReplicas()
	maxScaledDown := sum(all, replicasOf) - minAvailable - newUnavailable
	if maxScaledDown <= 0 {
		return nil, nil
	}
	var out []Scale
	scaled := map[*corev1.ReplicaSet]int32{}
	// First the unhealthy replicas of old ReplicaSets: removing them costs no availability.
	budget := maxScaledDown
	for _, rs := range old {
		if budget <= 0 {
			break
		}
		unhealthy := replicasOf(rs) - rs.GetStatus().GetAvailableReplicas()
		if unhealthy <= 0 {
			continue
		}
		n := min(unhealthy, budget)
		scaled[rs] = replicasOf(rs) - n
		budget -= n
	}
	cleaned := maxScaledDown - budget
	// Then available ones, keeping minAvailable.
	available := sum(all, func(rs *corev1.ReplicaSet) int32 { return rs.GetStatus().GetAvailableReplicas() })
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
func RecreateStep(d *corev1.Deployment, newRS *corev1.ReplicaSet, old []*corev1.ReplicaSet) []Scale {
	var out []Scale
	for _, rs := range old {
		if replicasOf(rs) != 0 {
			out = append(out, Scale{rs, 0})
		}
	}
	if len(out) > 0 {
		return out
	}
	if sum(old, func(rs *corev1.ReplicaSet) int32 { return rs.GetStatus().GetReplicas() }) > 0 {
		return nil // wait for the old pods to be gone
	}
	if replicasOf(newRS) != d.GetSpec().GetReplicas() {
		return []Scale{{newRS, d.GetSpec().GetReplicas()}}
	}
	return nil
}
