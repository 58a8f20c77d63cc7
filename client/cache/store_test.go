package cache

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
