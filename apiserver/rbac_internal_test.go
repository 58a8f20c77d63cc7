package apiserver

import (
	"context"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
)

// TestAdmitRBACSkipsOtherKinds: an update of a kind that grants no permission (here a
// pod whose finalizer goes, as a Job releases its finished pods) passes the escalation
// check without the copies and comparison of onlyGCFields: nothing allocated.
func TestAdmitRBACSkipsOtherKinds(t *testing.T) {
	r := &resources{authz: &auth.Authorizer{RBAC: auth.NewRBAC()}}
	ctx := context.WithValue(context.Background(), userKey{}, auth.User{Name: "system:serviceaccount:kube-system:job-controller"})
	old := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "p", Finalizers: []string{"batch.kubernetes.io/job-tracking"}},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "c", Image: "busybox"}}}}
	next := old.DeepCopy()
	next.Finalizers = nil
	info := kinds.MustLookup(kinds.Pod)
	allocs := testing.AllocsPerRun(100, func() {
		if err := r.admitRBAC(ctx, info, old, next); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("a pod's update allocated %v times in admitRBAC, want 0", allocs)
	}
}
