package apiserver

import (
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/kinds"
	legacyv1 "github.com/skiffhq/skiff/proto/legacy/v1"
)

// decodeOld decodes msg's old encoding as the kind named.
func decodeOld(t *testing.T, kind string, msg proto.Message) kinds.Object {
	t.Helper()
	value, err := proto.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	if !isLegacy(value) {
		t.Fatalf("an old %s reads as the new encoding", kind)
	}
	obj, err := decodeLegacy(kinds.MustLookup(kind), value)
	if err != nil {
		t.Fatalf("old %s: %v", kind, err)
	}
	return obj
}

// The old JSON differs from Kubernetes' in 64-bit integers (quoted) and sub-second times
// (0 to 9 digits): the kinds testdata/legacy lacks (Events, Leases: written by components)
// and the fields it does not set are read too, to the microsecond where Kubernetes keeps it.
func TestDecodeLegacyIntegersAndTimes(t *testing.T) {
	at := time.Date(2026, 12, 4, 23, 18, 24, 484383915, time.UTC)
	micro := at.Truncate(time.Microsecond)
	whole := at.Truncate(time.Second)

	ev := decodeOld(t, kinds.Event, &legacyv1.Event{
		Metadata:  &legacyv1.ObjectMeta{Name: "web.1", Namespace: "default", Generation: 1 << 40, CreationTimestamp: timestamppb.New(at)},
		Reason:    "Started",
		Count:     3,
		EventTime: timestamppb.New(at), FirstTimestamp: timestamppb.New(whole), LastTimestamp: timestamppb.New(at),
	}).(*corev1.Event)
	if !ev.EventTime.Time.Equal(micro) || !ev.FirstTimestamp.Time.Equal(whole) || ev.Count != 3 || ev.Generation != 1<<40 ||
		!ev.CreationTimestamp.Time.Truncate(time.Second).Equal(whole) {
		t.Errorf("old event read as %+v", ev)
	}

	lease := decodeOld(t, kinds.Lease, &legacyv1.Lease{
		Metadata: &legacyv1.ObjectMeta{Name: "w1", Namespace: "kube-node-lease"},
		Spec: &legacyv1.LeaseSpec{HolderIdentity: "w1", LeaseDurationSeconds: proto.Int32(40),
			AcquireTime: timestamppb.New(whole), RenewTime: timestamppb.New(at)},
	}).(*coordinationv1.Lease)
	if ptr.Deref(lease.Spec.HolderIdentity, "") != "w1" || ptr.Deref(lease.Spec.LeaseDurationSeconds, 0) != 40 ||
		lease.Spec.RenewTime == nil || !lease.Spec.RenewTime.Time.Equal(micro) ||
		lease.Spec.AcquireTime == nil || !lease.Spec.AcquireTime.Time.Equal(whole) {
		t.Errorf("old lease read as %+v", lease.Spec)
	}

	pod := decodeOld(t, kinds.Pod, &legacyv1.Pod{
		Metadata: &legacyv1.ObjectMeta{Name: "p", Namespace: "default", DeletionTimestamp: timestamppb.New(at), DeletionGracePeriodSeconds: proto.Int64(30)},
		Spec: &legacyv1.PodSpec{TerminationGracePeriodSeconds: proto.Int64(5),
			Tolerations: []*legacyv1.Toleration{{Key: "k", Operator: "Exists", Effect: "NoExecute", TolerationSeconds: proto.Int64(300)}}},
	}).(*corev1.Pod)
	if ptr.Deref(pod.DeletionGracePeriodSeconds, 0) != 30 || ptr.Deref(pod.Spec.TerminationGracePeriodSeconds, 0) != 5 ||
		len(pod.Spec.Tolerations) != 1 || ptr.Deref(pod.Spec.Tolerations[0].TolerationSeconds, 0) != 300 || pod.DeletionTimestamp == nil {
		t.Errorf("old pod read as %+v", pod)
	}
}
