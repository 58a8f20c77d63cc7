package record_test

import (
	"fmt"
	"runtime"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/client/record"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// BenchmarkRecorderHeap measures what a recorder holds per pod for the events a
// kubelet records about each pod it starts (Pulled, Created, Started): the aggregation
// cache keeps every event until CacheSize pushes it out, and a process of simulated
// nodes has a recorder per node (issue 26). Nothing is written: the events stay
// recorded. The pods are made before the measure, as a kubelet's informer holds them.
func BenchmarkRecorderHeap(b *testing.B) {
	const pods = 1000
	objs := make([]*corev1.Pod, pods)
	for i := range objs {
		objs[i] = &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: fmt.Sprintf("scale-0-5d8f7c9b4-%05d", i),
			UID: types.UID(fmt.Sprintf("0c7e8a52-4f1b-4b8e-9a57-%012d", i)), ResourceVersion: fmt.Sprint(1000 + i)}}
	}
	var perPod float64
	for b.Loop() {
		start := benchfig.HeapInUse()
		r := record.New(&client.Client[*corev1.Event]{}, record.Config{Component: "kubelet", Host: "sim-0", MaxPending: 3 * pods})
		for _, p := range objs {
			r.Event(p, record.Normal, "Pulled", `Container image "busybox" already present on machine`)
			r.Event(p, record.Normal, "Created", "Created container: app")
			r.Event(p, record.Normal, "Started", "Started container app")
		}
		perPod = float64(benchfig.HeapInUse()-start) / pods
		runtime.KeepAlive(r)
	}
	runtime.KeepAlive(objs)
	b.ReportMetric(perPod, "bytes/pod")
}
