package skiffctl

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// TestDrainFilters: kubectl's verdict on each kind of pod, flag by flag. (The API server
// refuses emptyDir volumes for now, so the local storage filter is seen here only.)
func TestDrainFilters(t *testing.T) {
	now := time.Date(2026, 12, 5, 10, 0, 0, 0, time.UTC)
	owned := func(kind string) []metav1.OwnerReference {
		return []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: kind, Name: "o", UID: "u", Controller: ptr.To(true)}}
	}
	pod := func(mut func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "default", OwnerReferences: owned("ReplicaSet")},
			Status: corev1.PodStatus{Phase: corev1.PodRunning}}
		mut(p)
		return p
	}
	emptyDir := func(p *corev1.Pod) {
		p.Spec.Volumes = []corev1.Volume{{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}}
	}
	for _, tc := range []struct {
		name string
		d    *drainer
		pod  *corev1.Pod
		want podDelete
	}{
		{"replicated", &drainer{}, pod(func(*corev1.Pod) {}), okay()},
		{"bare", &drainer{}, pod(func(p *corev1.Pod) { p.OwnerReferences = nil }), needsFlag(unmanagedFatal)},
		{"bare, --force", &drainer{force: true}, pod(func(p *corev1.Pod) { p.OwnerReferences = nil }), withWarning(true, unmanagedWarning)},
		{"bare but finished", &drainer{}, pod(func(p *corev1.Pod) { p.OwnerReferences, p.Status.Phase = nil, corev1.PodSucceeded }), okay()},
		{"daemonset", &drainer{}, pod(func(p *corev1.Pod) { p.OwnerReferences = owned("DaemonSet") }), needsFlag(daemonSetFatal)},
		{"daemonset, --ignore-daemonsets", &drainer{ignoreDaemonSets: true}, pod(func(p *corev1.Pod) { p.OwnerReferences = owned("DaemonSet") }),
			withWarning(false, daemonSetWarning)},
		{"daemonset gone", &drainer{}, pod(func(p *corev1.Pod) { p.OwnerReferences = owned("DaemonSet"); p.Name = "gone" }),
			needsFlag("NotFound")},
		{"daemonset gone, --force", &drainer{force: true}, pod(func(p *corev1.Pod) { p.OwnerReferences = owned("DaemonSet"); p.Name = "gone" }),
			okay()}, // kubectl's later filters drop the warning here too
		{"daemonset, finished", &drainer{}, pod(func(p *corev1.Pod) { p.OwnerReferences, p.Status.Phase = owned("DaemonSet"), corev1.PodFailed }), okay()},
		{"emptyDir", &drainer{}, pod(emptyDir), needsFlag(localStorageFatal)},
		// kubectl's later filters drop this filter's warning (a TODO of kubectl's own).
		{"emptyDir, --delete-emptydir-data", &drainer{deleteEmptyDirData: true}, pod(emptyDir), okay()},
		{"emptyDir, bare, both flags", &drainer{deleteEmptyDirData: true, force: true},
			pod(func(p *corev1.Pod) { emptyDir(p); p.OwnerReferences = nil }), withWarning(true, unmanagedWarning)},
		{"mirror", &drainer{}, pod(func(p *corev1.Pod) { p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"} }), podDelete{status: "skip"}},
		{"deleted long ago, --skip-wait-for-delete-timeout", &drainer{skipWaitForDeleteTimeout: 10},
			pod(func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.NewTime(now.Add(-time.Minute))) }), podDelete{status: "skip"}},
		{"deleted just now, --skip-wait-for-delete-timeout", &drainer{skipWaitForDeleteTimeout: 10},
			pod(func(p *corev1.Pod) { p.DeletionTimestamp = ptr.To(metav1.NewTime(now.Add(-time.Second))) }), okay()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.d.now = func() time.Time { return now }
			tc.d.getDaemonSet = func(context.Context, string, string) error {
				if tc.pod.Name == "gone" {
					return status.Error(codes.NotFound, "NotFound")
				}
				return nil
			}
			got := tc.d.filter(context.Background(), tc.pod)
			got.pod = nil
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
