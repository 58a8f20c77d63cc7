package cache

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"
)

func names(pods []*corev1.Pod) string {
	var out []string
	for _, p := range pods {
		out = append(out, Key(p))
	}
	return strings.Join(out, " ")
}

// TestListerOrder: List and ByIndex return objects sorted by key ("a-b/x" before "a/x",
// as the strings compare), filtered by the selector.
func TestListerOrder(t *testing.T) {
	s := newIndexedStore[*corev1.Pod]()
	s.addIndexer(IndexNamespace, ByNamespace[*corev1.Pod])
	for _, k := range []string{"b/y", "a/x", "a-b/x", "b/a", "a/y"} {
		ns, name := SplitKey(k)
		s.put(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"n": name}}})
	}
	l := &Lister[*corev1.Pod]{s: s}
	if got := names(l.List(labels.Everything())); got != "a-b/x a/x a/y b/a b/y" {
		t.Errorf("List = %s", got)
	}
	if got := names(l.List(labels.SelectorFromSet(labels.Set{"n": "x"}))); got != "a-b/x a/x" {
		t.Errorf("List n=x = %s", got)
	}
	if got := names(l.ByIndex(IndexNamespace, "b")); got != "b/a b/y" {
		t.Errorf("ByIndex b = %s", got)
	}
}

// TestListSelected: the pods of a namespace that a set of labels selects, the same with
// and without the labels index, which follows label changes and deletions.
func TestListSelected(t *testing.T) {
	for _, indexed := range []bool{true, false} {
		s := newIndexedStore[*corev1.Pod]()
		if indexed {
			s.addIndexer(IndexLabels, ByLabels[*corev1.Pod])
		}
		put := func(key string, l map[string]string) {
			ns, name := SplitKey(key)
			s.put(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: l}})
		}
		put("a/web-1", map[string]string{"app": "web", "tier": "fe"})
		put("a/web-2", map[string]string{"app": "web", "tier": "be"})
		put("a/web-3", map[string]string{"app": "web"})
		put("a/db", map[string]string{"app": "db", "tier": "be"})
		put("b/web", map[string]string{"app": "web", "tier": "fe"})
		put("a/moved", map[string]string{"app": "web"})
		put("a/moved", map[string]string{"app": "other"})
		put("a/gone", map[string]string{"app": "web"})
		s.remove("a/gone")
		l := &Lister[*corev1.Pod]{s: s}
		for _, tc := range []struct {
			ns   string
			set  map[string]string
			want string
		}{
			{"a", map[string]string{"app": "web"}, "a/web-1 a/web-2 a/web-3"},
			{"a", map[string]string{"app": "web", "tier": "be"}, "a/web-2"},
			{"a", map[string]string{"tier": "be"}, "a/db a/web-2"},
			{"a", map[string]string{"app": "web", "tier": "none"}, ""},
			{"a", map[string]string{"app": "other"}, "a/moved"},
			{"b", map[string]string{"app": "web"}, "b/web"},
			{"c", map[string]string{"app": "web"}, ""},
			{"b", map[string]string{}, "b/web"},
			{"b", nil, "b/web"},
		} {
			if got := names(l.ListSelected(tc.ns, tc.set)); got != tc.want {
				t.Errorf("indexed %v: ListSelected(%s, %v) = %q, want %q", indexed, tc.ns, tc.set, got, tc.want)
			}
		}
	}
}

// TestOrphanIndex: a namespace's pods without a controller, following a pod adopted,
// released and deleted; a pod with only plain owner references is an orphan.
func TestOrphanIndex(t *testing.T) {
	s := newIndexedStore[*corev1.Pod]()
	s.addIndexer(IndexOrphan, ByOrphan[*corev1.Pod])
	controller := []metav1.OwnerReference{{Kind: "Job", Name: "j", UID: "j-uid", Controller: ptr.To(true)}}
	plain := []metav1.OwnerReference{{Kind: "ConfigMap", Name: "c", UID: "c-uid"}}
	put := func(key string, refs []metav1.OwnerReference) {
		ns, name := SplitKey(key)
		s.put(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, OwnerReferences: refs}})
	}
	put("a/orphan", nil)
	put("a/plain", plain)
	put("a/owned", controller)
	put("b/orphan", nil)
	put("a/adopted", nil)
	put("a/adopted", controller)
	put("a/released", controller)
	put("a/released", nil)
	put("a/gone", nil)
	s.remove("a/gone")
	l := &Lister[*corev1.Pod]{s: s}
	for ns, want := range map[string]string{"a": "a/orphan a/plain a/released", "b": "b/orphan", "c": ""} {
		if got := names(l.ByIndex(IndexOrphan, ns)); got != want {
			t.Errorf("orphans of %s = %q, want %q", ns, got, want)
		}
	}
}

// BenchmarkListSelected: the ten pods of one of 1,000 Services among 10,000 pods of a
// namespace, through the labels index.
func BenchmarkListSelected(b *testing.B) {
	s := newIndexedStore[*corev1.Pod]()
	s.addIndexer(IndexLabels, ByLabels[*corev1.Pod])
	for i := range 10000 {
		s.put(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("p-%d", i),
			Labels: map[string]string{"app": fmt.Sprintf("svc-%d", i%1000), "tier": "web"}}})
	}
	l := &Lister[*corev1.Pod]{s: s}
	b.ReportAllocs()
	for b.Loop() {
		if n := len(l.ListSelected("default", map[string]string{"app": "svc-7", "tier": "web"})); n != 10 {
			b.Fatalf("%d pods", n)
		}
	}
}

// BenchmarkListerList50k: a List of 50,000 objects (the Events of a large rollout).
func BenchmarkListerList50k(b *testing.B) {
	s := newIndexedStore[*corev1.Event]()
	for i := range 50000 {
		s.put(&corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("web-%d.%x", i, i*7919)}})
	}
	l := &Lister[*corev1.Event]{s: s}
	b.ReportAllocs()
	for b.Loop() {
		l.List(labels.Everything())
	}
}

// TestIndexesHoldTheCurrentObjects: through random puts (new objects, changed labels,
// owners and namespaces, and unchanged index values with a new object), and removes,
// every index read returns what a scan of the store's objects finds under the value,
// and the very objects stored now, not ones they replaced.
func TestIndexesHoldTheCurrentObjects(t *testing.T) {
	s := newIndexedStore[*corev1.Pod]()
	s.addIndexer(IndexNamespace, ByNamespace[*corev1.Pod])
	s.addIndexer(IndexOwner, ByOwner[*corev1.Pod])
	s.addIndexer(IndexOrphan, ByOrphan[*corev1.Pod])
	s.addIndexer(IndexLabels, ByLabels[*corev1.Pod])
	l := &Lister[*corev1.Pod]{s: s}
	rng := rand.New(rand.NewPCG(1, 2))
	pick := func(of ...string) string { return of[rng.IntN(len(of))] }
	for step := range 3000 {
		key := pick("a", "b") + "/p" + strconv.Itoa(rng.IntN(40))
		if rng.IntN(5) == 0 {
			s.remove(key)
		} else {
			ns, name := SplitKey(key)
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, ResourceVersion: strconv.Itoa(step),
				Labels: map[string]string{"app": pick("web", "db")}}}
			if owner := pick("", "rs1", "rs2"); owner != "" {
				p.OwnerReferences = []metav1.OwnerReference{{Kind: "ReplicaSet", Name: owner, UID: types.UID(owner), Controller: ptr.To(true)}}
			}
			s.put(p)
		}
		if step%50 != 0 {
			continue
		}
		all := l.List(labels.Everything())
		scan := func(keep func(*corev1.Pod) bool) []*corev1.Pod {
			var out []*corev1.Pod
			for _, p := range all {
				if keep(p) {
					out = append(out, p)
				}
			}
			return out
		}
		same := func(what string, got, want []*corev1.Pod) {
			if len(got) != len(want) {
				t.Fatalf("step %d: %s = %s; a scan finds %s", step, what, names(got), names(want))
			}
			for i := range got {
				if got[i] != want[i] { // the stored object itself, at its current version
					t.Fatalf("step %d: %s[%d] is %s at version %s; the store holds version %s", step, what, i, Key(got[i]), got[i].ResourceVersion, want[i].ResourceVersion)
				}
			}
		}
		for _, ns := range []string{"a", "b"} {
			same("namespace "+ns, l.ByIndex(IndexNamespace, ns), scan(func(p *corev1.Pod) bool { return p.Namespace == ns }))
			same("orphans of "+ns, l.ByIndex(IndexOrphan, ns), scan(func(p *corev1.Pod) bool { return p.Namespace == ns && len(p.OwnerReferences) == 0 }))
			for _, app := range []string{"web", "db"} {
				same("app="+app+" in "+ns, l.ListSelected(ns, map[string]string{"app": app}),
					scan(func(p *corev1.Pod) bool { return p.Namespace == ns && p.Labels["app"] == app }))
			}
		}
		for _, owner := range []string{"rs1", "rs2"} {
			same("owned by "+owner, l.ByIndex(IndexOwner, owner),
				scan(func(p *corev1.Pod) bool {
					return len(p.OwnerReferences) > 0 && p.OwnerReferences[0].UID == types.UID(owner)
				}))
			anyOrder := l.ByIndexAnyOrder(IndexOwner, owner)
			slices.SortFunc(anyOrder, func(a, b *corev1.Pod) int { return strings.Compare(Key(a), Key(b)) })
			same("owned by "+owner+", in any order", anyOrder, l.ByIndex(IndexOwner, owner))
		}
	}
}

// fiftyReplicaSets is a cache of 50,000 pods owned by fifty ReplicaSets, rs-0 to
// rs-49, a thousand each, indexed by owner.
func fiftyReplicaSets() *Lister[*corev1.Pod] {
	s := newIndexedStore[*corev1.Pod]()
	s.addIndexer(IndexOwner, ByOwner[*corev1.Pod])
	for i := range 50_000 {
		uid := types.UID(fmt.Sprintf("rs-%d", i%50))
		s.put(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("p-%d", i),
			OwnerReferences: []metav1.OwnerReference{{Kind: "ReplicaSet", Name: string(uid), UID: uid, Controller: ptr.To(true)}}}})
	}
	return &Lister[*corev1.Pod]{s: s}
}

// BenchmarkByIndexOwner: a ReplicaSet's 1,000 pods among 50,000, by owner (what its
// controller reads at each sync).
func BenchmarkByIndexOwner(b *testing.B) {
	l := fiftyReplicaSets()
	b.ReportAllocs()
	for b.Loop() {
		if n := len(l.ByIndex(IndexOwner, "rs-7")); n != 1000 {
			b.Fatalf("%d pods", n)
		}
	}
}

// BenchmarkByIndexAnyOrder is BenchmarkByIndexOwner without the order.
func BenchmarkByIndexAnyOrder(b *testing.B) {
	l := fiftyReplicaSets()
	b.ReportAllocs()
	for b.Loop() {
		if n := len(l.ByIndexAnyOrder(IndexOwner, "rs-7")); n != 1000 {
			b.Fatalf("%d pods", n)
		}
	}
}
