package expectations

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client/record"
)

// TestDeletePodsObservesWhatItCannotSee: a pod already gone when its delete is sent
// (its deletion event came before the deletion was expected, and counted for nothing)
// and a pod whose delete fails are deletions seen, so the owner syncs again at once;
// the one deleted waits for its event. Only the failure is an error.
func TestDeletePodsObservesWhatItCannotSee(t *testing.T) {
	e := New(time.Hour, time.Now)
	pod := func(name string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
	}
	pods := []*corev1.Pod{pod("gone"), pod("refused"), pod("deleted")}
	e.ExpectDeletions("ns/rs", []string{"ns/gone", "ns/refused", "ns/deleted"})
	e.DeletionObserved("ns/rs", "ns/gone") // before it was expected: lost
	e.ExpectDeletions("ns/rs", []string{"ns/gone", "ns/refused", "ns/deleted"})
	del := func(_ context.Context, p *corev1.Pod) error {
		switch p.Name {
		case "gone":
			return status.Error(codes.NotFound, `pods "gone" not found`)
		case "refused":
			return status.Error(codes.Unavailable, "no leader")
		}
		return nil
	}
	owner := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "rs"}}
	err := e.DeletePods(context.Background(), "ns/rs", owner, pods, del, record.New(nil, record.Config{Component: "test"}))
	if err == nil || !strings.Contains(err.Error(), "delete pod ns/refused") || strings.Contains(err.Error(), "gone") {
		t.Fatalf("error %v, want the refused pod's alone", err)
	}
	if c, d := e.Pending("ns/rs"); c != 0 || d != 1 {
		t.Fatalf("pending %d creations, %d deletions; want the deleted pod's alone", c, d)
	}
	e.DeletionObserved("ns/rs", "ns/deleted")
	if !e.Satisfied("ns/rs") {
		t.Fatal("every deletion seen: not satisfied")
	}
}
