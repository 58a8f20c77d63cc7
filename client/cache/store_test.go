package cache

import (
	"fmt"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
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
