package kinds

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestReplicaSetOf: a ReplicationController seen as a ReplicaSet keeps its metadata,
// replicas, template and status, its selector as matchLabels; its status comes back
// whole, conditions with it.
func TestReplicaSetOf(t *testing.T) {
	lbl := map[string]string{"name": "web"}
	rc := &corev1.ReplicationController{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "u", Generation: 3},
		Spec: corev1.ReplicationControllerSpec{Replicas: ptr.To[int32](2), MinReadySeconds: 5, Selector: lbl,
			Template: &corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: lbl}}},
		Status: corev1.ReplicationControllerStatus{Replicas: 2, FullyLabeledReplicas: 2, ReadyReplicas: 1, AvailableReplicas: 1, ObservedGeneration: 3,
			Conditions: []corev1.ReplicationControllerCondition{{Type: corev1.ReplicationControllerReplicaFailure, Status: corev1.ConditionTrue,
				Reason: "FailedCreate", Message: "exceeded quota", LastTransitionTime: metav1.NewTime(time.Date(2026, 12, 5, 18, 0, 0, 0, time.UTC))}}}}
	rs := ReplicaSetOf(rc)
	if rs.Name != "web" || rs.UID != "u" || rs.Generation != 3 || *rs.Spec.Replicas != 2 || rs.Spec.MinReadySeconds != 5 ||
		!equality.Semantic.DeepEqual(rs.Spec.Selector, &metav1.LabelSelector{MatchLabels: lbl}) || rs.Spec.Template.Labels["name"] != "web" {
		t.Fatalf("as a ReplicaSet: %+v", rs)
	}
	if back := ReplicationControllerStatusOf(rs.Status); !equality.Semantic.DeepEqual(back, rc.Status) {
		t.Errorf("status back: %+v, want %+v", back, rc.Status)
	}
	empty := ReplicaSetOf(&corev1.ReplicationController{})
	if empty.Spec.Selector != nil || !equality.Semantic.DeepEqual(empty.Spec.Template, corev1.PodTemplateSpec{}) {
		t.Errorf("no selector, no template: %+v", empty.Spec)
	}
}
