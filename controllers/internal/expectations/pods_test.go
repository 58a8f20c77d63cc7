package expectations

import (
	"slices"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/kinds"
)

// TestPodEventsQueueOwners: a pod's event queues its controller of the kind; an orphan
// queues the owners whose selector matches it; a pod another controller (of any kind)
// controls queues none, however its labels match.
func TestPodEventsQueueOwners(t *testing.T) {
	rs := func(name, app string) *appsv1.ReplicaSet {
		return &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "ns", UID: types.UID("uid-" + name)},
			Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": app}}}}
	}
	owners := []*appsv1.ReplicaSet{rs("web", "web"), rs("web2", "web"), rs("db", "db")}
	job := &metav1.ObjectMeta{Name: "j", UID: "uid-j"}
	pod := func(refs ...metav1.OwnerReference) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", Labels: map[string]string{"app": "web"}, OwnerReferences: refs}}
	}
	controlledBy := func(kind string, m *metav1.ObjectMeta) metav1.OwnerReference {
		return metav1.OwnerReference{Kind: kind, Name: m.Name, UID: m.UID, Controller: ptr.To(true)}
	}
	for _, tc := range []struct {
		name string
		pod  *corev1.Pod
		want []string
	}{
		{"orphan: the owners that match", pod(), []string{"ns/web", "ns/web2"}},
		{"an owner's plain reference: still an orphan", pod(metav1.OwnerReference{Kind: kinds.ReplicaSet, Name: "db", UID: "uid-db"}), []string{"ns/web", "ns/web2"}},
		{"its controller", pod(controlledBy(kinds.ReplicaSet, &owners[2].ObjectMeta)), []string{"ns/db"}},
		{"another kind's: none", pod(controlledBy(kinds.Job, job)), nil},
	} {
		var queued []string
		h := PodEvents[*appsv1.ReplicaSet]{Kind: kinds.ReplicaSet, Exp: New(time.Minute, time.Now), Add: func(k string) { queued = append(queued, k) },
			Owners:   func(string) []*appsv1.ReplicaSet { return owners },
			Selector: func(r *appsv1.ReplicaSet) *metav1.LabelSelector { return r.Spec.Selector }}
		h.Handler().OnAdd(tc.pod)
		if !slices.Equal(queued, tc.want) {
			t.Errorf("%s: queued %v, want %v", tc.name, queued, tc.want)
		}
	}
}
