package daemonset

import (
	"context"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/client"
)

// fakeStatus is a DaemonSets client holding one stored DaemonSet, whose status writes
// succeed only at its resourceVersion (and bump it).
type fakeStatus struct {
	stored  *appsv1.DaemonSet
	writes  int
	written []appsv1.DaemonSetStatus
}

func (f *fakeStatus) Get(_ context.Context, namespace, name string, _ ...client.GetOptions) (*appsv1.DaemonSet, error) {
	return f.stored.DeepCopy(), nil
}

func (f *fakeStatus) UpdateStatus(_ context.Context, ds *appsv1.DaemonSet) (*appsv1.DaemonSet, error) {
	f.writes++
	if ds.ResourceVersion != f.stored.ResourceVersion {
		return nil, status.Error(codes.Aborted, "the object has been modified")
	}
	f.stored = ds.DeepCopy()
	f.stored.ResourceVersion += "1"
	f.written = append(f.written, ds.Status)
	return f.stored.DeepCopy(), nil
}

// TestStoreStatusRetriesAConflictOnce: a status computed from a cached DaemonSet older
// than the stored one (its own last status write not yet seen) is written on the stored
// one, once; not when the stored spec is newer (the status was computed for another
// template).
func TestStoreStatusRetriesAConflictOnce(t *testing.T) {
	ctx := context.Background()
	ds := func(rv string, gen int64) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "agent", UID: "u1", ResourceVersion: rv, Generation: gen}}
	}
	st := appsv1.DaemonSetStatus{ObservedGeneration: 2, DesiredNumberScheduled: 3, NumberReady: 2}

	f := &fakeStatus{stored: ds("11", 2)}
	if err := storeStatus(ctx, f, ds("10", 2), st); err != nil {
		t.Fatalf("stale cache, same spec: %v", err)
	}
	if f.writes != 2 || len(f.written) != 1 || f.written[0].NumberReady != 2 {
		t.Fatalf("stale cache, same spec: %d writes, stored %+v; want the status on the stored DaemonSet", f.writes, f.written)
	}

	f = &fakeStatus{stored: ds("11", 3)}
	if err := storeStatus(ctx, f, ds("10", 2), st); err != nil {
		t.Fatalf("newer spec: %v", err)
	}
	if f.writes != 1 || len(f.written) != 0 {
		t.Fatalf("newer spec: %d writes, stored %+v; want the stale status dropped", f.writes, f.written)
	}

	f = &fakeStatus{stored: ds("11", 2)}
	if err := storeStatus(ctx, f, ds("11", 2), st); err != nil || f.writes != 1 {
		t.Fatalf("current cache: %d writes, %v", f.writes, err)
	}
}
