package cache_test

import (
	"fmt"
	"reflect"
	"runtime"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client/cache"
	"github.com/skiffhq/skiff/kinds"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// runningPod is pod i of ReplicaSet rs as a simulated node's cache holds it once
// Running: what the API server's defaults and admission made of the scale
// benchmarks' template (the token volume's name is each pod's own), its own names,
// node, addresses and status. It comes decoded from its encoding, as from the wire.
func runningPod(t testing.TB, rs string, i int, cpu string) *corev1.Pod {
	return runningPodSince(t, rs, i, cpu, int64(i))
}

// runningPodSince is runningPod started, scheduled and Ready at second second.
func runningPodSince(t testing.TB, rs string, i int, cpu string, second int64) *corev1.Pod {
	start := metav1.NewTime(time.Unix(1_765_000_000+second, 0))
	token := fmt.Sprintf("kube-api-access-%05x", i)
	mode, grace, expiry, toleration := int32(0o644), int64(30), int64(3607), int64(300)
	node, ip := fmt.Sprintf("sim-%d", i%100), fmt.Sprintf("10.42.%d.%d", i/250, i%250+2)
	cond := func(typ corev1.PodConditionType) corev1.PodCondition {
		return corev1.PodCondition{Type: typ, Status: corev1.ConditionTrue, LastTransitionTime: start}
	}
	p := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%05d", rs, i), GenerateName: rs + "-", Namespace: "default",
			UID: types.UID(fmt.Sprintf("0c7e8a52-4f1b-4b8e-9a57-%012d", i)), ResourceVersion: fmt.Sprint(1000 + i), CreationTimestamp: start,
			Labels: map[string]string{"app": rs, "bench": "scale", "pod-template-hash": "5d8f7c9b4"},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs,
				UID: types.UID("rs-uid-" + rs), Controller: new(true), BlockOwnerDeletion: new(true)}},
			ManagedFields: []metav1.ManagedFieldsEntry{{Manager: "skiffctl", Operation: metav1.ManagedFieldsOperationApply, APIVersion: "v1"}}},
		Spec: corev1.PodSpec{
			Volumes: []corev1.Volume{{Name: token, VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{
				DefaultMode: &mode,
				Sources: []corev1.VolumeProjection{
					{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token", ExpirationSeconds: &expiry}},
					{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"},
						Items: []corev1.KeyToPath{{Key: "ca.crt", Path: "ca.crt"}}}},
					{DownwardAPI: &corev1.DownwardAPIProjection{Items: []corev1.DownwardAPIVolumeFile{{Path: "namespace",
						FieldRef: &corev1.ObjectFieldSelector{APIVersion: "v1", FieldPath: "metadata.namespace"}}}}},
				}}}}},
			Containers: []corev1.Container{{Name: "app", Image: "busybox", Command: []string{"sleep", "3600"},
				Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{
					corev1.ResourceCPU: resource.MustParse(cpu), corev1.ResourceMemory: resource.MustParse("16Mi")}},
				VolumeMounts:           []corev1.VolumeMount{{Name: token, ReadOnly: true, MountPath: "/var/run/secrets/kubernetes.io/serviceaccount"}},
				TerminationMessagePath: "/dev/termination-log", TerminationMessagePolicy: corev1.TerminationMessageReadFile,
				ImagePullPolicy: corev1.PullAlways}},
			RestartPolicy: corev1.RestartPolicyAlways, TerminationGracePeriodSeconds: &grace, DNSPolicy: corev1.DNSClusterFirst,
			ServiceAccountName: "default", DeprecatedServiceAccount: "default", NodeName: node,
			SecurityContext: &corev1.PodSecurityContext{}, SchedulerName: corev1.DefaultSchedulerName,
			Tolerations: []corev1.Toleration{
				{Key: corev1.TaintNodeNotReady, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &toleration},
				{Key: corev1.TaintNodeUnreachable, Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: &toleration}},
			Priority: new(int32(0)), EnableServiceLinks: new(true), PreemptionPolicy: new(corev1.PreemptLowerPriority),
		},
		Status: corev1.PodStatus{Phase: corev1.PodRunning,
			Conditions: []corev1.PodCondition{cond("PodReadyToStartContainers"), cond(corev1.PodInitialized), cond(corev1.PodReady),
				cond(corev1.ContainersReady), cond(corev1.PodScheduled)},
			HostIP: "127.0.0.1", HostIPs: []corev1.HostIP{{IP: "127.0.0.1"}}, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}, StartTime: &start,
			ContainerStatuses: []corev1.ContainerStatus{{Name: "app", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: start}},
				Ready: true, Image: "docker.io/library/busybox:latest", ImageID: "sha256:5f3a0e2e8c1d7b9a",
				ContainerID: fmt.Sprintf("sim://%016x", i), Started: new(true)}},
			QOSClass: corev1.PodQOSBurstable},
	}
	data, err := kinds.Encode(p)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := kinds.Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	return obj.(*corev1.Pod)
}

// TestPodPartsKeepsWhatConsumersRead: a pod through Share reads exactly as decoded
// (managedFields aside): its siblings' parts replace only equal ones, a pod of another
// owner or none shares nothing.
func TestPodPartsKeepsWhatConsumersRead(t *testing.T) {
	parts := cache.NewPodParts()
	first := parts.Share(runningPod(t, "web-1", 0, "10m"))
	for _, tc := range []struct {
		name  string
		pod   *corev1.Pod
		share bool
	}{
		{"sibling", runningPod(t, "web-1", 1, "10m"), true},
		{"another owner", runningPod(t, "web-2", 3, "10m"), false},
		{"no owner", func() *corev1.Pod { p := runningPod(t, "web-1", 4, "10m"); p.OwnerReferences = nil; return p }(), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want := tc.pod.DeepCopy()
			want.ManagedFields = nil
			got := parts.Share(tc.pod)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("Share changed the pod:\n got %+v\nwant %+v", got, want)
			}
			if shared := reflect.ValueOf(got.Labels).Pointer() == reflect.ValueOf(first.Labels).Pointer(); shared != tc.share {
				t.Errorf("labels shared with the first sibling: %v, want %v", shared, tc.share)
			}
			if shared := &got.Spec.Containers[0].Command[0] == &first.Spec.Containers[0].Command[0]; shared != tc.share {
				t.Errorf("command shared: %v, want %v", shared, tc.share)
			}
			if shared := got.Spec.Volumes[0].Projected == first.Spec.Volumes[0].Projected; shared != tc.share {
				t.Errorf("token volume's source shared: %v, want %v", shared, tc.share)
			}
			if got.Spec.Containers[0].VolumeMounts[0].Name == first.Spec.Containers[0].VolumeMounts[0].Name {
				t.Errorf("the token mount's name is each pod's own")
			}
		})
	}
	// A sibling that differs in its requests shares the rest, not them.
	p := parts.Share(runningPod(t, "web-1", 5, "20m"))
	if reflect.ValueOf(p.Spec.Containers[0].Resources.Requests).Pointer() == reflect.ValueOf(first.Spec.Containers[0].Resources.Requests).Pointer() ||
		p.Spec.Containers[0].Resources.Requests.Cpu().String() != "20m" {
		t.Errorf("requests %v shared with a sibling's other requests", p.Spec.Containers[0].Resources.Requests)
	}
	if &p.Spec.Containers[0].Command[0] != &first.Spec.Containers[0].Command[0] {
		t.Errorf("the command is not shared beside other requests")
	}
	// Siblings started in the same second share their conditions, start time and
	// container state; one of another second holds its own conditions, without the
	// decoder's spare slots. Each reads as decoded.
	share := func(i int, second int64) *corev1.Pod {
		p := runningPodSince(t, "web-1", i, "10m", second)
		want := p.DeepCopy()
		want.ManagedFields = nil
		if got := parts.Share(p); !reflect.DeepEqual(got, want) {
			t.Fatalf("Share changed pod %d:\n got %+v\nwant %+v", i, got.Status, want.Status)
		}
		return p
	}
	a, b, c := share(6, 60), share(7, 60), share(8, 61)
	if &a.Status.Conditions[0] != &b.Status.Conditions[0] || a.Status.StartTime != b.Status.StartTime ||
		a.Status.ContainerStatuses[0].State.Running != b.Status.ContainerStatuses[0].State.Running {
		t.Errorf("the conditions, start time or container state of siblings started in the same second not shared")
	}
	if &c.Status.Conditions[0] == &b.Status.Conditions[0] || cap(c.Status.Conditions) != len(c.Status.Conditions) {
		t.Errorf("conditions of another second: shared %v, %d slots for %d", &c.Status.Conditions[0] == &b.Status.Conditions[0],
			cap(c.Status.Conditions), len(c.Status.Conditions))
	}
}

// BenchmarkPodPartsHeap measures the heap a cache holds per Running pod, 10,000 pods
// of ten ReplicaSets on 100 nodes, decoded as from the wire (pod_cache_heap_per_pod),
// and with PodParts as the informer's transform (pod_cache_heap_per_pod_shared): each
// pod started in a second of its own, the case with least to share. In a rollout many
// pods of a ReplicaSet start in one second (the scale runs start 1,000 a second):
// pod_cache_heap_per_pod_shared_rollout is the same with 100 pods started a second,
// ten of each ReplicaSet.
func BenchmarkPodPartsHeap(b *testing.B) {
	benchfig.Want(b, "pod_cache_heap_per_pod", "pod_cache_heap_per_pod_shared", "pod_cache_heap_per_pod_shared_rollout")
	const n = 10000
	measure := func(transform func(*corev1.Pod) *corev1.Pod, perSecond int) float64 {
		pods := make([]*corev1.Pod, n)
		start := benchfig.HeapInUse()
		for i := range pods {
			pods[i] = transform(runningPodSince(b, fmt.Sprintf("scale-%d", i%10), i, "10m", int64(i/perSecond)))
		}
		end := benchfig.HeapInUse()
		runtime.KeepAlive(pods)
		return float64(end-start) / n
	}
	var plain, shared, rollout float64
	for b.Loop() {
		plain = measure(func(p *corev1.Pod) *corev1.Pod { return p }, 1)
		shared = measure(cache.NewPodParts().Share, 1)
		rollout = measure(cache.NewPodParts().Share, 100)
	}
	benchfig.Report("pod_cache_heap_per_pod", plain, "bytes")
	benchfig.Report("pod_cache_heap_per_pod_shared", shared, "bytes")
	benchfig.Report("pod_cache_heap_per_pod_shared_rollout", rollout, "bytes")
}

// One PodParts serves the informers of many simulated nodes at once.
func TestPodPartsConcurrent(t *testing.T) {
	parts := cache.NewPodParts()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 50 {
				p := runningPod(t, "web", w*50+i, "10m")
				want := p.DeepCopy()
				want.ManagedFields = nil
				if got := parts.Share(p); !reflect.DeepEqual(got, want) {
					t.Errorf("pod %d changed by Share", w*50+i)
				}
			}
		})
	}
	wg.Wait()
}

// BenchmarkPodDecode and BenchmarkPodDecodeShare: what Share adds to a pod event's CPU
// (a pod of a ReplicaSet whose last pod is known), beside decoding the pod.
func BenchmarkPodDecode(b *testing.B)      { benchDecode(b, nil) }
func BenchmarkPodDecodeShare(b *testing.B) { benchDecode(b, cache.NewPodParts()) }

func benchDecode(b *testing.B, parts *cache.PodParts) {
	var data [][]byte
	for i := range 100 {
		d, err := kinds.Encode(runningPod(b, "web", i, "10m"))
		if err != nil {
			b.Fatal(err)
		}
		data = append(data, d)
	}
	i := 0
	for b.Loop() {
		obj, err := kinds.Decode(data[i%len(data)])
		if err != nil {
			b.Fatal(err)
		}
		if parts != nil {
			parts.Share(obj.(*corev1.Pod))
		}
		i++
	}
}
