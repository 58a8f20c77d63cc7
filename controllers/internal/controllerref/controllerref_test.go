package controllerref

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/skiffhq/skiff/kinds"
)

var (
	owner = &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "default", UID: "rs-uid"}}
	other = &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "other", Namespace: "default", UID: "other-uid"}}
	// A reference to owner that is not its controller reference.
	plainRef = metav1.OwnerReference{APIVersion: "apps/v1", Kind: kinds.ReplicaSet, Name: "web", UID: "rs-uid"}
	// Some other owner's plain reference, which claiming keeps.
	keptRef = metav1.OwnerReference{APIVersion: "v1", Kind: kinds.ConfigMap, Name: "cm", UID: "cm-uid"}
)

// pod makes a pod with labels app=APP, version 1, and owner references.
func pod(name, app string, refs ...metav1.OwnerReference) *corev1.Pod {
	return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "default", ResourceVersion: "1",
		Labels: map[string]string{"app": app}, OwnerReferences: refs}}
}

func deleting(p *corev1.Pod) *corev1.Pod {
	now := metav1.Now()
	p.DeletionTimestamp = &now
	return p
}

// fakeUpdate records the updates it is given and fails those of the pods in fail.
type fakeUpdate struct {
	fail       map[string]error
	updates    map[string][]metav1.OwnerReference // by pod name
	finalizers map[string][]string                // by pod name, when set
}

func (f *fakeUpdate) update(_ context.Context, p *corev1.Pod) (*corev1.Pod, error) {
	f.updates[p.Name] = p.OwnerReferences
	if f.finalizers != nil {
		f.finalizers[p.Name] = p.Finalizers
	}
	if err := f.fail[p.Name]; err != nil {
		return nil, err
	}
	p.ResourceVersion = "2"
	return p, nil
}

func refUIDs(refs []metav1.OwnerReference) string {
	var out []string
	for _, r := range refs {
		uid := string(r.UID)
		if r.Controller != nil && *r.Controller {
			uid += "(controller)"
		}
		out = append(out, uid)
	}
	return strings.Join(out, ",")
}

func TestClaim(t *testing.T) {
	conflict := status.Error(codes.Aborted, "the object has been modified")
	notFound := status.Error(codes.NotFound, "not found")
	unavailable := status.Error(codes.Unavailable, "no leader")
	controller := kinds.NewControllerRef(owner)
	for _, tc := range []struct {
		name              string
		owner             *appsv1.ReplicaSet
		child             *corev1.Pod
		adoptable         func(*corev1.Pod) bool
		failOnLostRelease bool
		fail              error

		wantOwned   bool
		wantVersion string // of the child returned
		wantUpdate  string // its owner references as written; "-" for no update
		wantErr     string
	}{
		{name: "controlled and matching: kept as is", child: pod("p", "web", controller),
			wantOwned: true, wantVersion: "1", wantUpdate: "-"},
		{name: "controlled, no longer matching: released", child: pod("p", "db", keptRef, controller),
			wantUpdate: "cm-uid"},
		{name: "a release that lost to a change is left to the next sync", child: pod("p", "db", controller), fail: conflict,
			wantUpdate: ""},
		{name: "a release of a pod gone is left to the next sync", child: pod("p", "db", controller), fail: notFound,
			wantUpdate: ""},
		{name: "a lost release fails the claim when asked", child: pod("p", "db", controller), fail: conflict, failOnLostRelease: true,
			wantUpdate: "", wantErr: "update owners of pod default/p: rpc error: code = Aborted"},
		{name: "a release that failed otherwise fails the claim", child: pod("p", "db", controller), fail: unavailable,
			wantUpdate: "", wantErr: "update owners of pod default/p: rpc error: code = Unavailable"},
		{name: "matching orphan: adopted, returned as updated", child: pod("p", "web", keptRef),
			wantOwned: true, wantVersion: "2", wantUpdate: "cm-uid,rs-uid(controller)"},
		{name: "adoption replaces the owner's plain reference", child: pod("p", "web", plainRef),
			wantOwned: true, wantVersion: "2", wantUpdate: "rs-uid(controller)"},
		{name: "an adoption that lost to a change is left to the next sync", child: pod("p", "web"), fail: conflict, failOnLostRelease: true,
			wantUpdate: "rs-uid(controller)"},
		{name: "an adoption of a pod gone is left to the next sync", child: pod("p", "web"), fail: notFound,
			wantUpdate: "rs-uid(controller)"},
		{name: "an adoption that failed otherwise fails the claim", child: pod("p", "web"), fail: unavailable,
			wantUpdate: "rs-uid(controller)", wantErr: "update owners of pod default/p: rpc error: code = Unavailable"},
		{name: "orphan being deleted: left alone", child: deleting(pod("p", "web")), wantUpdate: "-"},
		{name: "owner being deleted adopts nothing", owner: deletingOwner(), child: pod("p", "web"), wantUpdate: "-"},
		{name: "orphan not adoptable: left alone", child: pod("p", "web"), adoptable: func(*corev1.Pod) bool { return false },
			wantUpdate: "-"},
		{name: "adoptable orphan: adopted", child: pod("p", "web"), adoptable: func(*corev1.Pod) bool { return true },
			wantOwned: true, wantVersion: "2", wantUpdate: "rs-uid(controller)"},
		{name: "orphan not matching: left alone", child: pod("p", "db"), wantUpdate: "-"},
		{name: "another's child: left alone", child: pod("p", "web", kinds.NewControllerRef(other)), wantUpdate: "-"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := owner
			if tc.owner != nil {
				o = tc.owner
			}
			f := &fakeUpdate{fail: map[string]error{"p": tc.fail}, updates: map[string][]metav1.OwnerReference{}}
			c := Claimer[*corev1.Pod]{Update: f.update, Adoptable: tc.adoptable, FailOnLostRelease: tc.failOnLostRelease}
			given := refUIDs(tc.child.OwnerReferences)
			owned, err := c.Claim(context.Background(), o, labels.SelectorFromSet(map[string]string{"app": "web"}), []*corev1.Pod{tc.child})

			if tc.wantErr == "" && err != nil || tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)) {
				t.Fatalf("error %v, want %q", err, tc.wantErr)
			}
			if got := len(owned) == 1; got != tc.wantOwned || len(owned) > 1 {
				t.Fatalf("owned %v, want owned: %v", owned, tc.wantOwned)
			}
			if tc.wantOwned && owned[0].ResourceVersion != tc.wantVersion {
				t.Errorf("returned at version %s, want %s", owned[0].ResourceVersion, tc.wantVersion)
			}
			refs, updated := f.updates["p"]
			switch {
			case tc.wantUpdate == "-" && updated:
				t.Errorf("updated to %q; want no update", refUIDs(refs))
			case tc.wantUpdate != "-" && (!updated || refUIDs(refs) != tc.wantUpdate):
				t.Errorf("owner references written %q (updated: %v), want %q", refUIDs(refs), updated, tc.wantUpdate)
			}
			// The cached object is never changed in place.
			if got := refUIDs(tc.child.OwnerReferences); got != given {
				t.Errorf("the child given changed: references %q, were %q", got, given)
			}
		})
	}
}

func deletingOwner() *appsv1.ReplicaSet {
	o := owner.DeepCopy()
	now := metav1.Now()
	o.DeletionTimestamp = &now
	return o
}

// TestClaimJoinsErrors: every child is tried; the error names each one that failed.
func TestClaimJoinsErrors(t *testing.T) {
	unavailable := status.Error(codes.Unavailable, "no leader")
	f := &fakeUpdate{fail: map[string]error{"a": unavailable, "c": unavailable}, updates: map[string][]metav1.OwnerReference{}}
	c := Claimer[*corev1.Pod]{Update: f.update}
	owned, err := c.Claim(context.Background(), owner, labels.SelectorFromSet(map[string]string{"app": "web"}),
		[]*corev1.Pod{pod("a", "web"), pod("b", "web"), pod("c", "db", kinds.NewControllerRef(owner))})
	if len(owned) != 1 || owned[0].Name != "b" {
		t.Fatalf("owned %v, want b alone", owned)
	}
	var names []string
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		names = append(names, strings.TrimSuffix(strings.Fields(e.Error())[4], ":"))
	}
	if !slices.Equal(names, []string{"default/a", "default/c"}) || !errors.Is(err, unavailable) {
		t.Fatalf("error %v: want one for default/a and one for default/c", err)
	}
}

// TestClaimFinalizers: a claimer with finalizers adds them in the update that adopts a
// child and removes them in the one that releases it (the Job controller's tracking
// finalizer); a child it keeps is not written.
func TestClaimFinalizers(t *testing.T) {
	const tracking = "batch.kubernetes.io/job-tracking"
	controller := kinds.NewControllerRef(owner)
	withFinalizers := func(p *corev1.Pod, f ...string) *corev1.Pod { p.Finalizers = f; return p }
	for _, tc := range []struct {
		name       string
		finalizers []string
		child      *corev1.Pod
		want       string // the finalizers written; "-" for no update
	}{
		{name: "adopted: the finalizer added", finalizers: []string{tracking}, child: withFinalizers(pod("p", "web"), "x"),
			want: "x," + tracking},
		{name: "adopted with the finalizer already: not twice", finalizers: []string{tracking}, child: withFinalizers(pod("p", "web"), tracking),
			want: tracking},
		{name: "released: the finalizer removed, others kept", finalizers: []string{tracking},
			child: withFinalizers(pod("p", "db", controller), "x", tracking, "y"), want: "x,y"},
		{name: "released without the finalizer", finalizers: []string{tracking}, child: withFinalizers(pod("p", "db", controller), "x"),
			want: "x"},
		{name: "kept: not written", finalizers: []string{tracking}, child: pod("p", "web", controller), want: "-"},
		{name: "no finalizers asked: a release keeps the child's", child: withFinalizers(pod("p", "db", controller), tracking),
			want: tracking},
		{name: "no finalizers asked: an adoption adds none", child: pod("p", "web"), want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeUpdate{updates: map[string][]metav1.OwnerReference{}, finalizers: map[string][]string{}}
			given := strings.Join(tc.child.Finalizers, ",")
			c := Claimer[*corev1.Pod]{Update: f.update, Finalizers: tc.finalizers}
			if _, err := c.Claim(context.Background(), owner, labels.SelectorFromSet(map[string]string{"app": "web"}), []*corev1.Pod{tc.child}); err != nil {
				t.Fatal(err)
			}
			got, updated := f.finalizers["p"]
			switch {
			case tc.want == "-" && updated:
				t.Errorf("updated with finalizers %q; want no update", got)
			case tc.want != "-" && (!updated || strings.Join(got, ",") != tc.want):
				t.Errorf("finalizers written %q (updated: %v), want %q", got, updated, tc.want)
			}
			if now := strings.Join(tc.child.Finalizers, ","); now != given {
				t.Errorf("the child given changed: finalizers %q, were %q", now, given)
			}
		})
	}
}

// BenchmarkClaimOwned: the common case of a Job's sync, 10,000 pods all its own and
// matching (the selector Kubernetes defaults for a Job: its controller-uid label).
func BenchmarkClaimOwned(b *testing.B) {
	job := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "j", Namespace: "default", UID: "job-uid"}}
	ref := kinds.NewControllerRef(job)
	pods := make([]*corev1.Pod, 10000)
	for i := range pods {
		pods[i] = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("j-%d", i), Namespace: "default",
			Labels: map[string]string{"batch.kubernetes.io/controller-uid": "job-uid", "batch.kubernetes.io/job-name": "j",
				"batch.kubernetes.io/job-completion-index": strconv.Itoa(i)}, OwnerReferences: []metav1.OwnerReference{ref}}}
	}
	sel := labels.SelectorFromSet(map[string]string{"batch.kubernetes.io/controller-uid": "job-uid", "batch.kubernetes.io/job-name": "j"})
	c := Claimer[*corev1.Pod]{Update: func(context.Context, *corev1.Pod) (*corev1.Pod, error) {
		b.Fatal("no update expected")
		return nil, nil
	}}
	b.ReportAllocs()
	for b.Loop() {
		if owned, _ := c.Claim(context.Background(), job, sel, pods); len(owned) != len(pods) {
			b.Fatalf("%d owned", len(owned))
		}
	}
}
