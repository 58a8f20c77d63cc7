package statefulset

import (
	"maps"
	"regexp"
	"sort"
	"strconv"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/controllers/replicaset"
	"github.com/skiffhq/skiff/kinds"
)

// The decisions of the controller as pure functions of a StatefulSet, its pods and
// revisions (Kubernetes' stateful_set_utils.go and stateful_set_control.go): the pods'
// identities, their claims, and the next step of a sync.

// RevisionLabel names the revision (the ControllerRevision's name) a pod was made from
// (Kubernetes' ControllerRevisionHashLabelKey).
const RevisionLabel = appsv1.ControllerRevisionHashLabelKey

// PodNameLabel and PodIndexLabel are the labels Kubernetes gives each pod: its name (so a
// Service can select one pod) and its ordinal.
const (
	PodNameLabel  = appsv1.StatefulSetPodNameLabel
	PodIndexLabel = appsv1.PodIndexLabel
)

var podName = regexp.MustCompile(`^(.*)-([0-9]+)$`)

// Ordinal is the ordinal in a pod's name (web-2: 2), or -1 when the name has none
// (Kubernetes' getParentNameAndOrdinal).
func Ordinal(pod *corev1.Pod) int {
	m := podName.FindStringSubmatch(pod.Name)
	if m == nil {
		return -1
	}
	n, err := strconv.Atoi(m[2])
	if err != nil {
		return -1
	}
	return n
}

// IsMember says whether pod is one of set's by its name: the set's name, a dash and an
// ordinal.
func IsMember(set *appsv1.StatefulSet, pod *corev1.Pod) bool {
	m := podName.FindStringSubmatch(pod.Name)
	return m != nil && m[1] == set.Name
}

// PodName is the name of set's pod of ordinal.
func PodName(set *appsv1.StatefulSet, ordinal int) string {
	return set.Name + "-" + strconv.Itoa(ordinal)
}

// ClaimName is the name of the claim a pod of ordinal has from template: the template's
// name, the set's, the ordinal (Kubernetes' getPersistentVolumeClaimName).
func ClaimName(set *appsv1.StatefulSet, template *corev1.PersistentVolumeClaim, ordinal int) string {
	return template.Name + "-" + PodName(set, ordinal)
}

// StartOrdinal is the first ordinal (spec.ordinals.start, default 0).
func StartOrdinal(set *appsv1.StatefulSet) int {
	if set.Spec.Ordinals != nil {
		return int(set.Spec.Ordinals.Start)
	}
	return 0
}

// Replicas is spec.replicas.
func Replicas(set *appsv1.StatefulSet) int { return int(ptr.Deref(set.Spec.Replicas, 1)) }

// inRange says whether ordinal is one the set should run now.
func inRange(set *appsv1.StatefulSet, ordinal int) bool {
	start := StartOrdinal(set)
	return ordinal >= start && ordinal < start+Replicas(set)
}

// Claims are the claims a pod of ordinal has, one per volumeClaimTemplate: named as
// ClaimName says, labelled with the set's selector's labels and the template's.
func Claims(set *appsv1.StatefulSet, ordinal int) []*corev1.PersistentVolumeClaim {
	var out []*corev1.PersistentVolumeClaim
	for i := range set.Spec.VolumeClaimTemplates {
		t := &set.Spec.VolumeClaimTemplates[i]
		c := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{Name: ClaimName(set, t, ordinal), Namespace: set.Namespace,
			Labels: maps.Clone(t.Labels), Annotations: maps.Clone(t.Annotations)}, Spec: *t.Spec.DeepCopy()}
		if c.Labels == nil {
			c.Labels = map[string]string{}
		}
		if set.Spec.Selector != nil {
			maps.Copy(c.Labels, set.Spec.Selector.MatchLabels)
		}
		out = append(out, c)
	}
	return out
}

// NewPod is set's pod of ordinal made from template (the template of revision rev): its
// stable name, hostname and subdomain (the set's serviceName), its identity labels, and
// a volume per claim template naming that ordinal's claim (replacing a template volume
// of the same name), as Kubernetes' newVersionedStatefulSetPod.
func NewPod(set *appsv1.StatefulSet, template *corev1.PodTemplateSpec, rev string, ordinal int) *corev1.Pod {
	t := template.DeepCopy()
	pod := &corev1.Pod{ObjectMeta: t.ObjectMeta, Spec: t.Spec}
	pod.Name, pod.Namespace, pod.GenerateName = PodName(set, ordinal), set.Namespace, ""
	pod.OwnerReferences = []metav1.OwnerReference{kinds.NewControllerRef(set)}
	pod.Labels = maps.Clone(pod.Labels)
	if pod.Labels == nil {
		pod.Labels = map[string]string{}
	}
	pod.Labels[PodNameLabel] = pod.Name
	pod.Labels[PodIndexLabel] = strconv.Itoa(ordinal)
	pod.Labels[RevisionLabel] = rev
	pod.Spec.Hostname = pod.Name
	pod.Spec.Subdomain = set.Spec.ServiceName
	for _, c := range Claims(set, ordinal) {
		tmpl := c.Name[:len(c.Name)-len(pod.Name)-1]
		v := corev1.Volume{Name: tmpl, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: c.Name}}}
		replaced := false
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == tmpl {
				pod.Spec.Volumes[i], replaced = v, true
			}
		}
		if !replaced {
			pod.Spec.Volumes = append(pod.Spec.Volumes, v)
		}
	}
	return pod
}

// healthy says whether a pod is Running and Ready (Kubernetes' isRunningAndReady).
func healthy(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodRunning && replicaset.IsReady(p) && p.DeletionTimestamp == nil
}

// available says whether a pod is Running and has been Ready for minReadySeconds.
func available(set *appsv1.StatefulSet, p *corev1.Pod, now time.Time) bool {
	ok, _ := replicaset.AvailableIn(p, time.Duration(set.Spec.MinReadySeconds)*time.Second, now)
	return ok && healthy(p)
}

func finished(p *corev1.Pod) bool {
	return p.Status.Phase == corev1.PodFailed || p.Status.Phase == corev1.PodSucceeded
}

// Revisions are the two templates a sync works with: the current one (the pods of the
// last completed rollout) and the update one (spec.template now).
type Revisions struct {
	Current, Update         string
	CurrentTmpl, UpdateTmpl *corev1.PodTemplateSpec
}

// Step is what one sync does: the pods to create (with their claims first), the pods to
// delete, the claims whose owners change. A monotonic sync (OrderedReady) does one
// thing at a time and waits for it.
type Step struct {
	Create []*corev1.Pod
	Delete []*corev1.Pod
}

// Plan is Kubernetes' updateStatefulSet: pods for the ordinals in range that lack one
// (failed ones deleted to be made again), from the current revision below the partition
// and the update revision from it; pods beyond the range deleted, highest ordinal first;
// then, with RollingUpdate, pods of an old revision deleted from the highest ordinal down
// to the partition, up to maxUnavailable at a time. With OrderedReady each pod must be
// Running and Ready before the next is made, each condemned pod gone before the next
// goes, and none goes while another is unavailable.
func Plan(set *appsv1.StatefulSet, pods []*corev1.Pod, revs Revisions, now time.Time) Step {
	var step Step
	monotonic := set.Spec.PodManagementPolicy != appsv1.ParallelPodManagement
	start, replicas := StartOrdinal(set), Replicas(set)
	slots := make([]*corev1.Pod, replicas)
	var condemned []*corev1.Pod
	for _, p := range pods {
		o := Ordinal(p)
		switch {
		case o < 0:
		case inRange(set, o):
			slots[o-start] = p
		default:
			condemned = append(condemned, p)
		}
	}
	sort.Slice(condemned, func(i, j int) bool { return Ordinal(condemned[i]) > Ordinal(condemned[j]) })
	partition := 0
	ru := set.Spec.UpdateStrategy.RollingUpdate
	if set.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType && ru != nil && ru.Partition != nil {
		partition = int(*ru.Partition)
	}
	podFor := func(ordinal int) *corev1.Pod {
		if set.Spec.UpdateStrategy.Type != appsv1.OnDeleteStatefulSetStrategyType && ordinal < start+partition {
			return NewPod(set, revs.CurrentTmpl, revs.Current, ordinal)
		}
		return NewPod(set, revs.UpdateTmpl, revs.Update, ordinal)
	}
	waiting := false
	for i, p := range slots {
		ordinal := start + i
		switch {
		case p == nil:
			step.Create = append(step.Create, podFor(ordinal))
			waiting = true
		case finished(p) && p.DeletionTimestamp == nil:
			step.Delete = append(step.Delete, p) // made again next sync
			waiting = true
		case !healthy(p):
			waiting = true
		}
		if monotonic && waiting {
			return step
		}
	}
	// With OrderedReady every pod in range is available here; a condemned pod that is not
	// waits for the others to recover, unless it is the lowest unavailable one (Kubernetes'
	// firstUnavailablePod): a scale-down halts while a pod is unhealthy.
	var firstUnavailable *corev1.Pod
	for i := len(condemned) - 1; i >= 0 && firstUnavailable == nil; i-- {
		if !available(set, condemned[i], now) {
			firstUnavailable = condemned[i]
		}
	}
	for _, p := range condemned {
		if p.DeletionTimestamp != nil {
			if monotonic {
				return step
			}
			continue
		}
		if monotonic && p != firstUnavailable && !available(set, p, now) {
			return step
		}
		step.Delete = append(step.Delete, p)
		if monotonic {
			return step
		}
	}
	if waiting || set.Spec.UpdateStrategy.Type == appsv1.OnDeleteStatefulSetStrategyType {
		return step
	}
	maxUnavailable := 1
	if ru != nil && ru.MaxUnavailable != nil {
		maxUnavailable, _ = intstr.GetScaledValueFromIntOrPercent(intstr.ValueOrDefault(ru.MaxUnavailable, intstr.FromInt32(1)), replicas, false)
		maxUnavailable = max(maxUnavailable, 1)
	}
	unavailable := 0
	for i := len(slots) - 1; i >= partition && i >= 0; i-- {
		if !available(set, slots[i], now) {
			unavailable++
		}
	}
	for i := len(slots) - 1; i >= partition && i >= 0 && unavailable < maxUnavailable; i-- {
		p := slots[i]
		if p.Labels[RevisionLabel] != revs.Update && p.DeletionTimestamp == nil {
			step.Delete = append(step.Delete, p)
			if available(set, p, now) {
				unavailable++
			}
		}
	}
	return step
}

// Status is the set's status over its pods (Kubernetes' computeReplicaStatus and
// completeRollingUpdate): counts of the pods made, ready, available, of the current and
// update revisions; the update revision becomes the current one once every pod has it
// and is ready.
func Status(set *appsv1.StatefulSet, pods []*corev1.Pod, revs Revisions, collisions *int32, now time.Time) appsv1.StatefulSetStatus {
	st := appsv1.StatefulSetStatus{ObservedGeneration: set.Generation, CurrentRevision: revs.Current, UpdateRevision: revs.Update,
		CollisionCount: collisions, Conditions: set.Status.Conditions}
	for _, p := range pods {
		if p.DeletionTimestamp != nil || Ordinal(p) < 0 {
			continue
		}
		st.Replicas++
		if healthy(p) {
			st.ReadyReplicas++
			if available(set, p, now) {
				st.AvailableReplicas++
			}
		}
		switch p.Labels[RevisionLabel] {
		case revs.Update:
			st.UpdatedReplicas++
			if revs.Update == revs.Current {
				st.CurrentReplicas++
			}
		case revs.Current:
			st.CurrentReplicas++
		}
	}
	if set.Spec.UpdateStrategy.Type == appsv1.RollingUpdateStatefulSetStrategyType || set.Spec.UpdateStrategy.Type == "" {
		if int(st.UpdatedReplicas) == Replicas(set) && st.ReadyReplicas == st.UpdatedReplicas && st.Replicas == st.UpdatedReplicas {
			st.CurrentRevision, st.CurrentReplicas = revs.Update, st.UpdatedReplicas
		}
	}
	return st
}

// ClaimOwners is how a claim's ownerReferences should be, by the set's
// persistentVolumeClaimRetentionPolicy (Kubernetes' updateClaimOwnerRefForSetAndPod):
// owned by the set when whenDeleted is Delete (the garbage collector deletes it with the
// set), by its pod when whenScaled is Delete and the pod's ordinal is beyond the range
// (deleted with the pod); otherwise neither. References to others are kept.
func ClaimOwners(set *appsv1.StatefulSet, pod *corev1.Pod, claim *corev1.PersistentVolumeClaim) []metav1.OwnerReference {
	var whenDeleted, whenScaled appsv1.PersistentVolumeClaimRetentionPolicyType = appsv1.RetainPersistentVolumeClaimRetentionPolicyType,
		appsv1.RetainPersistentVolumeClaimRetentionPolicyType
	if p := set.Spec.PersistentVolumeClaimRetentionPolicy; p != nil {
		whenDeleted, whenScaled = p.WhenDeleted, p.WhenScaled
	}
	var out []metav1.OwnerReference
	for _, r := range claim.OwnerReferences {
		if r.UID != set.UID && (pod == nil || r.UID != pod.UID) {
			out = append(out, r)
		}
	}
	if whenDeleted == appsv1.DeletePersistentVolumeClaimRetentionPolicyType {
		out = append(out, ownerRef(set, kinds.StatefulSet, "apps/v1"))
	}
	if whenScaled == appsv1.DeletePersistentVolumeClaimRetentionPolicyType && pod != nil && !inRange(set, Ordinal(pod)) {
		out = append(out, ownerRef(pod, kinds.Pod, "v1"))
	}
	return out
}

// ownerRef is a reference to obj that is not its controller (a claim's owners are
// references the garbage collector follows, not controllers).
func ownerRef(obj metav1.Object, kind, apiVersion string) metav1.OwnerReference {
	return metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: obj.GetName(), UID: obj.GetUID()}
}
