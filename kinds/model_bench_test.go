package kinds_test

// The object model side by side: Skiff's earlier hand-written messages (proto/legacy/v1,
// kept to read old data) against Kubernetes' types in Kubernetes' protobuf encoding, for a
// pod as the chain leaves it (bound, running, ready). docs/architecture.md quotes the figures.

import (
	"runtime"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"
	k8score "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	corev1 "github.com/skiffhq/skiff/proto/legacy/v1"
	"github.com/skiffhq/skiff/test/bench"
)

var t0 = time.Date(2026, 12, 4, 10, 0, 0, 0, time.UTC)

func oldPod() *corev1.Pod {
	tr := true
	g := int64(5)
	ts := timestamppb.New(t0)
	return &corev1.Pod{ApiVersion: "v1", Kind: "Pod",
		Metadata: &corev1.ObjectMeta{Name: "nginx-deployment-7c5ddbdf54-x2b7k", GenerateName: "nginx-deployment-7c5ddbdf54-",
			Namespace: "default", Uid: "0b0b7a4e-4b1d-4f6c-9a53-0c2d3e5f6a7b", Generation: 1, CreationTimestamp: ts,
			Labels: map[string]string{"app": "nginx", "pod-template-hash": "7c5ddbdf54"},
			OwnerReferences: []*corev1.OwnerReference{{ApiVersion: "apps/v1", Kind: "ReplicaSet", Name: "nginx-deployment-7c5ddbdf54",
				Uid: "1c1c8b5f-5c2e-4a7d-8b64-1d3e4f607b8c", Controller: &tr, BlockOwnerDeletion: &tr}}},
		Spec: &corev1.PodSpec{NodeName: "w1-17", RestartPolicy: "Always", TerminationGracePeriodSeconds: &g,
			Containers: []*corev1.Container{{Name: "nginx", Image: "docker.io/library/busybox:latest", ImagePullPolicy: "IfNotPresent",
				Command:   []string{"sleep", "3600"},
				Resources: &corev1.ResourceRequirements{Requests: map[string]string{"cpu": "100m", "memory": "32Mi"}}}}},
		Status: &corev1.PodStatus{Phase: "Running", HostIp: "10.0.0.17", PodIp: "10.0.0.17", StartTime: ts,
			Conditions: []*corev1.PodCondition{
				{Type: "PodScheduled", Status: "True", LastTransitionTime: ts},
				{Type: "Initialized", Status: "True", LastTransitionTime: ts},
				{Type: "ContainersReady", Status: "True", LastTransitionTime: ts},
				{Type: "Ready", Status: "True", LastTransitionTime: ts}},
			ContainerStatuses: []*corev1.ContainerStatus{{Name: "nginx", Ready: true, Started: &tr, Image: "docker.io/library/busybox:latest",
				ImageId: "sha256:0a5ff6ebc8f4a8a6d1a7f1f1b0c1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d", ContainerId: "containerd://nginx-7c5ddbdf54-x2b7k",
				State: &corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: ts}}}}}}
}

func newPod() *k8score.Pod {
	tr := true
	g := int64(5)
	ts := metav1.NewTime(t0)
	return &k8score.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "nginx-deployment-7c5ddbdf54-x2b7k", GenerateName: "nginx-deployment-7c5ddbdf54-",
			Namespace: "default", UID: "0b0b7a4e-4b1d-4f6c-9a53-0c2d3e5f6a7b", Generation: 1, CreationTimestamp: ts,
			Labels: map[string]string{"app": "nginx", "pod-template-hash": "7c5ddbdf54"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "nginx-deployment-7c5ddbdf54",
				UID: "1c1c8b5f-5c2e-4a7d-8b64-1d3e4f607b8c", Controller: &tr, BlockOwnerDeletion: &tr}}},
		Spec: k8score.PodSpec{NodeName: "w1-17", RestartPolicy: "Always", TerminationGracePeriodSeconds: &g,
			Containers: []k8score.Container{{Name: "nginx", Image: "docker.io/library/busybox:latest", ImagePullPolicy: "IfNotPresent",
				Command: []string{"sleep", "3600"},
				Resources: k8score.ResourceRequirements{Requests: k8score.ResourceList{
					"cpu": resource.MustParse("100m"), "memory": resource.MustParse("32Mi")}}}}},
		Status: k8score.PodStatus{Phase: "Running", HostIP: "10.0.0.17", PodIP: "10.0.0.17", StartTime: &ts,
			Conditions: []k8score.PodCondition{
				{Type: "PodScheduled", Status: "True", LastTransitionTime: ts},
				{Type: "Initialized", Status: "True", LastTransitionTime: ts},
				{Type: "ContainersReady", Status: "True", LastTransitionTime: ts},
				{Type: "Ready", Status: "True", LastTransitionTime: ts}},
			ContainerStatuses: []k8score.ContainerStatus{{Name: "nginx", Ready: true, Started: &tr, Image: "docker.io/library/busybox:latest",
				ImageID: "sha256:0a5ff6ebc8f4a8a6d1a7f1f1b0c1e2d3c4b5a69788796a5b4c3d2e1f0a1b2c3d", ContainerID: "containerd://nginx-7c5ddbdf54-x2b7k",
				State: k8score.ContainerState{Running: &k8score.ContainerStateRunning{StartedAt: ts}}}}}}
}

var sink any

func heapPer(n int, make func(i int) any) float64 {
	runtime.GC()
	var a, b runtime.MemStats
	runtime.ReadMemStats(&a)
	keep := make2(n, make)
	runtime.GC()
	runtime.ReadMemStats(&b)
	sink = keep
	return float64(b.HeapAlloc-a.HeapAlloc) / float64(n)
}

func make2(n int, f func(int) any) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

func BenchmarkModel(b *testing.B) {
	bench.Want(b, "model_pod_bytes_legacy", "model_pod_bytes_k8s", "model_pod_encode_legacy", "model_pod_encode_k8s",
		"model_pod_decode_legacy", "model_pod_decode_k8s", "model_pod_deepcopy_legacy", "model_pod_deepcopy_k8s",
		"model_pod_heap_legacy", "model_pod_heap_k8s")
	op, np := oldPod(), newPod()
	ob, err := proto.Marshal(op)
	if err != nil {
		b.Fatal(err)
	}
	nb := kinds.MustEncode(np)
	bench.Report("model_pod_bytes_legacy", float64(len(ob)), "bytes")
	bench.Report("model_pod_bytes_k8s", float64(len(nb)), "bytes")
	const n = 100_000
	measure := func(name string, f func()) {
		for i := 0; i < 1000; i++ {
			f()
		}
		start := time.Now()
		for i := 0; i < n; i++ {
			f()
		}
		bench.Report(name, float64(time.Since(start).Nanoseconds())/n, "ns")
	}
	measure("model_pod_encode_legacy", func() { sink, _ = proto.Marshal(op) })
	measure("model_pod_encode_k8s", func() { sink = kinds.MustEncode(np) })
	measure("model_pod_decode_legacy", func() {
		p := &corev1.Pod{}
		if err := proto.Unmarshal(ob, p); err != nil {
			panic(err)
		}
		sink = p
	})
	measure("model_pod_decode_k8s", func() {
		obj, err := kinds.Decode(nb)
		if err != nil {
			panic(err)
		}
		sink = obj
	})
	measure("model_pod_deepcopy_legacy", func() { sink = proto.Clone(op) })
	measure("model_pod_deepcopy_k8s", func() { sink = np.DeepCopy() })
	bench.Report("model_pod_heap_legacy", heapPer(20000, func(int) any {
		p := &corev1.Pod{}
		proto.Unmarshal(ob, p)
		return p
	}), "bytes")
	bench.Report("model_pod_heap_k8s", heapPer(20000, func(int) any {
		obj, _ := kinds.Decode(nb)
		return obj
	}), "bytes")
}
