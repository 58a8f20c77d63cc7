package cache

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	benchfig "github.com/skiffhq/skiff/test/bench"
)

// BenchmarkStoreIndexHeap measures what an informer's store holds per pod beside the
// pods themselves (informer_index_heap_per_pod): 10,000 pods of ten ReplicaSets on 100
// nodes keyed and indexed as the controller-manager's pod informer is (namespace, owner,
// node name, labels).
func BenchmarkStoreIndexHeap(b *testing.B) {
	benchfig.Want(b, "informer_index_heap_per_pod")
	const n = 10000
	pods := make([]*corev1.Pod, n)
	for i := range pods {
		rs := fmt.Sprintf("scale-%d", i%10)
		pods[i] = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", rs, i), Namespace: "default",
			Labels:          map[string]string{"app": rs, "bench": "scale", "pod-template-hash": "5d8f7c9b4"},
			OwnerReferences: []metav1.OwnerReference{{UID: types.UID("rs-uid-" + rs)}}}, Spec: corev1.PodSpec{NodeName: fmt.Sprintf("sim-%d", i%100)}}
	}
	var perPod float64
	for b.Loop() {
		start := benchfig.HeapInUse()
		s := newIndexedStore[*corev1.Pod]()
		s.addIndexer(IndexNamespace, ByNamespace[*corev1.Pod])
		s.addIndexer(IndexOwner, ByOwner[*corev1.Pod])
		s.addIndexer(IndexNodeName, func(p *corev1.Pod) []string { return []string{p.Spec.NodeName} })
		s.addIndexer(IndexLabels, ByLabels[*corev1.Pod])
		for _, p := range pods {
			s.put(p)
		}
		end := benchfig.HeapInUse()
		runtime.KeepAlive(s)
		perPod = float64(end-start) / n
	}
	benchfig.Report("informer_index_heap_per_pod", perPod, "bytes")
}
