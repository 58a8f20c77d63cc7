package client_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// statusServer answers UpdateStatus with the pod it was sent, given a resourceVersion,
// or with reply when set.
type statusServer struct {
	apiv1.UnimplementedResourcesServer
	reply *apiv1.Object
	got   *corev1.Pod
}

func (s *statusServer) UpdateStatus(_ context.Context, req *apiv1.UpdateRequest) (*apiv1.Object, error) {
	if s.reply != nil {
		return s.reply, nil
	}
	obj, err := kinds.Unwrap(req.GetObject())
	if err != nil {
		return nil, err
	}
	s.got = obj.(*corev1.Pod)
	stored := s.got.DeepCopy()
	stored.ResourceVersion = "42"
	stored.Spec.NodeName = "n1"
	return kinds.Wrap(stored)
}

// TestUpdateStatusMeta: the status is sent as UpdateStatus sends it, and the reply's
// metadata comes back (its resourceVersion, what a kubelet reads); a reply whose bytes
// are not the kind its envelope names is an error, as it is for UpdateStatus.
func TestUpdateStatusMeta(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s := &statusServer{}
	conn, err := client.Dial([]string{startFake(t, s)}, client.Options{BackoffBase: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pods := client.NewClientset(conn).Pods
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p", UID: "u1"},
		Status: corev1.PodStatus{Phase: corev1.PodRunning}}
	m, err := pods.UpdateStatusMeta(ctx, pod)
	if err != nil {
		t.Fatal(err)
	}
	if m.ResourceVersion != "42" || m.Name != "p" || m.Namespace != "ns" || m.UID != "u1" || m.Kind != "Pod" {
		t.Errorf("metadata %+v", m)
	}
	if s.got == nil || s.got.Status.Phase != corev1.PodRunning || s.got.UID != "u1" {
		t.Errorf("the server got %+v", s.got)
	}
	cm, err := kinds.Wrap(&corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	s.reply = &apiv1.Object{ApiVersion: "v1", Kind: "Pod", Raw: cm.GetRaw()}
	if _, err := pods.UpdateStatusMeta(ctx, pod); err == nil || !strings.Contains(err.Error(), "ConfigMap") {
		t.Errorf("a ConfigMap's bytes in a Pod's envelope: %v", err)
	}
}
