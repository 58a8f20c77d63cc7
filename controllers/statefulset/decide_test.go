package statefulset

import (
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
)

var now = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func testSet(replicas int32, mut func(*appsv1.StatefulSet)) *appsv1.StatefulSet {
	s := &appsv1.StatefulSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "set"}, Spec: appsv1.StatefulSetSpec{
		Replicas: &replicas, PodManagementPolicy: appsv1.OrderedReadyPodManagement,
		UpdateStrategy: appsv1.StatefulSetUpdateStrategy{Type: appsv1.RollingUpdateStatefulSetStrategyType}}}
	if mut != nil {
		mut(s)
	}
	return s
}

// pod is web-N of revision rev: "ready", "unready" (running), "pending", "failed" or
// "gone" (being deleted).
func pod(n int, rev, state string) *corev1.Pod {
	p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("web-%d", n), UID: "u", Labels: map[string]string{RevisionLabel: rev}}}
	switch state {
	case "ready":
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionTrue}}}
	case "unready":
		p.Status = corev1.PodStatus{Phase: corev1.PodRunning, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: corev1.ConditionFalse}}}
	case "gone":
		p.DeletionTimestamp = &metav1.Time{Time: now}
	case "failed":
		p.Status.Phase = corev1.PodFailed
	}
	return p
}

func describe(s Step) string {
	var out []string
	for _, p := range s.Create {
		out = append(out, "+"+p.Name+"@"+p.Labels[RevisionLabel])
	}
	for _, p := range s.Delete {
		out = append(out, "-"+p.Name)
	}
	return strings.Join(out, " ")
}

func TestPlan(t *testing.T) {
	revs := Revisions{Current: "r1", Update: "r2", CurrentTmpl: &corev1.PodTemplateSpec{}, UpdateTmpl: &corev1.PodTemplateSpec{}}
	same := Revisions{Current: "r2", Update: "r2", CurrentTmpl: revs.UpdateTmpl, UpdateTmpl: revs.UpdateTmpl}
	parallel := func(s *appsv1.StatefulSet) { s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement }
	for _, tc := range []struct {
		name string
		set  *appsv1.StatefulSet
		pods []*corev1.Pod
		revs Revisions
		want string
	}{
		{"ordered: the first pod alone", testSet(3, nil), nil, same, "+web-0@r2"},
		{"ordered: wait for web-0 to be ready", testSet(3, nil), []*corev1.Pod{pod(0, "r2", "pending")}, same, ""},
		{"ordered: then web-1", testSet(3, nil), []*corev1.Pod{pod(0, "r2", "ready")}, same, "+web-1@r2"},
		{"parallel: all at once", testSet(3, parallel), nil, same, "+web-0@r2 +web-1@r2 +web-2@r2"},
		{"ordinals start at 5", testSet(2, func(s *appsv1.StatefulSet) { s.Spec.Ordinals = &appsv1.StatefulSetOrdinals{Start: 5} }),
			nil, same, "+web-5@r2"},
		{"a failed pod is deleted to be made again", testSet(2, nil), []*corev1.Pod{pod(0, "r2", "failed"), pod(1, "r2", "ready")}, same, "-web-0"},
		{"ordered scale-down: highest first", testSet(1, nil),
			[]*corev1.Pod{pod(0, "r2", "ready"), pod(1, "r2", "ready"), pod(2, "r2", "ready")}, same, "-web-2"},
		{"ordered scale-down: wait while it terminates", testSet(1, nil),
			[]*corev1.Pod{pod(0, "r2", "ready"), pod(1, "r2", "ready"), pod(2, "r2", "gone")}, same, ""},
		{"ordered scale-down waits for the pods in range", testSet(1, nil),
			[]*corev1.Pod{pod(0, "r2", "pending"), pod(1, "r2", "ready")}, same, ""},
		{"ordered scale-down halts while a pod is unready", testSet(0, nil),
			[]*corev1.Pod{pod(0, "r2", "unready"), pod(1, "r2", "unready"), pod(2, "r2", "unready")}, same, ""},
		{"ordered scale-down halts while a lower condemned pod is unready", testSet(0, nil),
			[]*corev1.Pod{pod(0, "r2", "ready"), pod(1, "r2", "unready"), pod(2, "r2", "unready")}, same, ""},
		{"ordered scale-down: the lowest unready pod may go", testSet(2, nil),
			[]*corev1.Pod{pod(0, "r2", "ready"), pod(1, "r2", "ready"), pod(2, "r2", "unready")}, same, "-web-2"},
		{"ordered scale-down: a ready pod goes while a lower one is unready", testSet(1, nil),
			[]*corev1.Pod{pod(0, "r2", "ready"), pod(1, "r2", "unready"), pod(2, "r2", "ready")}, same, "-web-2"},
		{"parallel scale-down does not wait for unready pods", testSet(0, parallel),
			[]*corev1.Pod{pod(0, "r2", "unready"), pod(1, "r2", "unready"), pod(2, "r2", "unready")}, same, "-web-2 -web-1 -web-0"},
		{"parallel scale-down: all at once", testSet(1, parallel),
			[]*corev1.Pod{pod(0, "r2", "ready"), pod(1, "r2", "ready"), pod(2, "r2", "ready")}, same, "-web-2 -web-1"},
		{"rolling update: the highest old pod", testSet(3, nil),
			[]*corev1.Pod{pod(0, "r1", "ready"), pod(1, "r1", "ready"), pod(2, "r1", "ready")}, revs, "-web-2"},
		{"rolling update: one unavailable at a time", testSet(3, nil),
			[]*corev1.Pod{pod(0, "r1", "ready"), pod(1, "r1", "ready"), pod(2, "r2", "pending")}, revs, ""},
		{"rolling update: maxUnavailable 2", testSet(3, func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{MaxUnavailable: new(intstr.FromInt32(2))}
			s.Spec.PodManagementPolicy = appsv1.ParallelPodManagement
		}), []*corev1.Pod{pod(0, "r1", "ready"), pod(1, "r1", "ready"), pod(2, "r1", "ready")}, revs, "-web-2 -web-1"},
		{"rolling update: the partition holds the lower ordinals", testSet(3, func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32(2))}
		}), []*corev1.Pod{pod(0, "r1", "ready"), pod(1, "r1", "ready"), pod(2, "r2", "ready")}, revs, ""},
		{"below the partition a pod is made from the current revision", testSet(3, func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy.RollingUpdate = &appsv1.RollingUpdateStatefulSetStrategy{Partition: new(int32(2))}
		}), []*corev1.Pod{pod(0, "r1", "ready"), pod(2, "r2", "ready")}, revs, "+web-1@r1"},
		{"on delete: old pods stay", testSet(2, func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		}), []*corev1.Pod{pod(0, "r1", "ready"), pod(1, "r1", "ready")}, revs, ""},
		{"on delete: a deleted pod comes back updated", testSet(2, func(s *appsv1.StatefulSet) {
			s.Spec.UpdateStrategy = appsv1.StatefulSetUpdateStrategy{Type: appsv1.OnDeleteStatefulSetStrategyType}
		}), []*corev1.Pod{pod(0, "r1", "ready")}, revs, "+web-1@r2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := describe(Plan(tc.set, tc.pods, tc.revs, now)); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestClaimOwners(t *testing.T) {
	policy := func(deleted, scaled appsv1.PersistentVolumeClaimRetentionPolicyType) *appsv1.StatefulSet {
		return testSet(2, func(s *appsv1.StatefulSet) {
			s.Spec.PersistentVolumeClaimRetentionPolicy = &appsv1.StatefulSetPersistentVolumeClaimRetentionPolicy{WhenDeleted: deleted, WhenScaled: scaled}
		})
	}
	retain, del := appsv1.RetainPersistentVolumeClaimRetentionPolicyType, appsv1.DeletePersistentVolumeClaimRetentionPolicyType
	other := metav1.OwnerReference{Kind: "Thing", Name: "x", UID: "other"}
	for _, tc := range []struct {
		name  string
		set   *appsv1.StatefulSet
		pod   int
		owned []metav1.OwnerReference
		want  string
	}{
		{"retain, retain: none", policy(retain, retain), 3, nil, ""},
		{"retain removes the set's reference", policy(retain, retain), 0, []metav1.OwnerReference{{Kind: "StatefulSet", UID: "set"}, other}, "Thing"},
		{"whenDeleted Delete: the set", policy(del, retain), 0, nil, "StatefulSet"},
		{"whenScaled Delete, in range: none", policy(retain, del), 1, nil, ""},
		{"whenScaled Delete, scaled away: the pod", policy(retain, del), 2, nil, "Pod"},
		{"both, scaled away", policy(del, del), 5, nil, "StatefulSet Pod"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			claim := &corev1.PersistentVolumeClaim{ObjectMeta: metav1.ObjectMeta{OwnerReferences: tc.owned}}
			p := pod(tc.pod, "r", "ready")
			var got []string
			for _, r := range ClaimOwners(tc.set, p, claim) {
				got = append(got, r.Kind)
			}
			if strings.Join(got, " ") != tc.want {
				t.Errorf("owners %v, want %q", got, tc.want)
			}
		})
	}
}
