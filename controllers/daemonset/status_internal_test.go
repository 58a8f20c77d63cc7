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
	if _, err := storeStatus(ctx, f, ds("10", 2), st); err != nil {
		t.Fatalf("stale cache, same spec: %v", err)
	}
	if f.writes != 2 || len(f.written) != 1 || f.written[0].NumberReady != 2 {
		t.Fatalf("stale cache, same spec: %d writes, stored %+v; want the status on the stored DaemonSet", f.writes, f.written)
	}

	f = &fakeStatus{stored: ds("11", 3)}
	if _, err := storeStatus(ctx, f, ds("10", 2), st); err != nil {
		t.Fatalf("newer spec: %v", err)
	}
	if f.writes != 1 || len(f.written) != 0 {
		t.Fatalf("newer spec: %d writes, stored %+v; want the stale status dropped", f.writes, f.written)
	}

	f = &fakeStatus{stored: ds("11", 2)}
	if _, err := storeStatus(ctx, f, ds("11", 2), st); err != nil || f.writes != 1 {
		t.Fatalf("current cache: %d writes, %v", f.writes, err)
	}
}

// TestStatusWrittenOnTheLastWrite: a sync whose cache does not yet show the previous
// sync's status write writes its status on what that write returned, in one write
// instead of a conflict, a read and a second write; once the cache shows it (or the
// spec changed) the cache's copy is used again.
func TestStatusWrittenOnTheLastWrite(t *testing.T) {
	ctx := context.Background()
	const key = "default/agent"
	ds := func(rv string, gen int64) *appsv1.DaemonSet {
		return &appsv1.DaemonSet{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "agent", UID: "u1", ResourceVersion: rv, Generation: gen}}
	}
	c := &Controller{written: map[string]*appsv1.DaemonSet{}}
	f := &fakeStatus{stored: ds("10", 2)}
	cached := ds("10", 2)
	for ready := int32(1); ready <= 3; ready++ {
		out, err := storeStatus(ctx, f, c.statusBase(key, cached), appsv1.DaemonSetStatus{ObservedGeneration: 2, NumberReady: ready})
		if err != nil {
			t.Fatalf("sync %d: %v", ready, err)
		}
		c.remember(key, out)
	}
	if f.writes != 3 || len(f.written) != 3 || f.stored.Status.NumberReady != 3 {
		t.Fatalf("three syncs on a stale cache: %d writes, stored %+v; want 3 writes, none conflicting", f.writes, f.stored.Status)
	}
	// The cache catches up: its copy again, and the memory goes.
	cached = f.stored.DeepCopy()
	if got := c.statusBase(key, cached); got != cached || c.written[key] != nil {
		t.Fatalf("cache caught up: base rv %s, remembered %v", got.ResourceVersion, c.written[key])
	}
	// A newer spec in the cache than the remembered write: the cache's copy.
	c.remember(key, ds("1000", 2))
	if got := c.statusBase(key, ds("999", 3)); got.Generation != 3 {
		t.Fatalf("newer spec: base of generation %d, want the cache's 3", got.Generation)
	}
	// Another object of the same name: the cache's copy, the memory dropped.
	other := ds("5", 1)
	other.UID = "u2"
	if got := c.statusBase(key, other); got != other || c.written[key] != nil {
		t.Fatalf("another object: base uid %s, remembered %v", got.UID, c.written[key])
	}
}
