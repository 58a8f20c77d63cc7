package apiserver

import (
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
	benchfig "github.com/skiffhq/skiff/test/bench"
)

// TestNodeGraphCounts: an object stays readable by a node while any of its pods
// references it; a pod recreated elsewhere under the same name moves its references.
func TestNodeGraphCounts(t *testing.T) {
	g := newNodeGraph(nil, hclog.NewNullLogger())
	stored := func(name, uid, node string, secrets ...string) *store.Object {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: corev1.PodSpec{NodeName: node}}
		for _, s := range secrets {
			p.Spec.ImagePullSecrets = append(p.Spec.ImagePullSecrets, corev1.LocalObjectReference{Name: s})
		}
		return &store.Object{Key: store.Key{Kind: kinds.Pod, Namespace: "default", Name: name}, UID: uid, Value: kinds.MustEncode(p),
			Fields: map[string]string{"spec.nodeName": node}}
	}
	ref := func(node, name string) graphRef {
		return graphRef{node: node, resource: "secrets", namespace: "default", name: name}
	}
	g.put(stored("a", "1", "", "s"))
	if _, bound := g.nodeOf(stored("a", "1", "").Key, "1"); g.has(ref("w1", "s")) || bound || len(g.refs) != 0 {
		t.Fatal("an unbound pod's references are in the graph")
	}
	g.put(stored("a", "1", "w1", "s", "s"))
	g.put(stored("b", "2", "w1", "s", "t"))
	g.remove(stored("a", "1", "w1").Key)
	if !g.has(ref("w1", "s")) || !g.has(ref("w1", "t")) {
		t.Fatal("w1 lost s with b still referencing it")
	}
	// b's spec cannot change: a later event of it is not decoded (an empty value would not decode).
	g.put(&store.Object{Key: stored("b", "2", "w1").Key, UID: "2", Fields: map[string]string{"spec.nodeName": "w1"}})
	if !g.has(ref("w1", "t")) {
		t.Fatal("a status update of b dropped its references")
	}
	g.put(stored("b", "3", "w2", "t"))
	if g.has(ref("w1", "s")) || g.has(ref("w1", "t")) || !g.has(ref("w2", "t")) {
		t.Fatalf("b recreated on w2: %v", g.refs)
	}
	g.remove(stored("b", "3", "w2").Key)
	if len(g.refs) != 0 || len(g.pods) != 0 {
		t.Fatalf("left over: %v %v", g.refs, g.pods)
	}
}

// TestNodeGraphSharesReferences: pods whose references are equal hold one slice of
// them, each counted for its own node; an unbound pod's uid is known without references;
// a pod deleted takes only its own counts.
func TestNodeGraphSharesReferences(t *testing.T) {
	g := newNodeGraph(nil, hclog.NewNullLogger())
	stored := func(name, uid, node string) *store.Object {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name}, Spec: corev1.PodSpec{NodeName: node,
			ServiceAccountName: "default", Volumes: []corev1.Volume{{Name: "token-" + name, VolumeSource: corev1.VolumeSource{
				Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{ConfigMap: &corev1.ConfigMapProjection{
					LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}}}}}}}}}
		return &store.Object{Key: store.Key{Kind: kinds.Pod, Namespace: "default", Name: name}, UID: uid, Value: kinds.MustEncode(p),
			Fields: map[string]string{"spec.nodeName": node}}
	}
	ca := graphRef{node: "w1", resource: "configmaps", namespace: "default", name: "kube-root-ca.crt"}
	g.put(stored("pending", "0", ""))
	if g.pods[stored("pending", "0", "").Key].uid != "0" {
		t.Fatal("an unbound pod's uid is not known")
	}
	if _, ok := g.nodeOf(stored("pending", "0", "").Key, "0"); ok {
		t.Fatal("an unbound pod reads as bound")
	}
	g.put(stored("a", "1", "w1"))
	g.put(stored("b", "2", "w1"))
	g.put(stored("c", "3", "w2"))
	a, b, c := g.pods[stored("a", "", "").Key], g.pods[stored("b", "", "").Key], g.pods[stored("c", "", "").Key]
	if len(a.refs) != 2 || &a.refs[0] != &b.refs[0] || &a.refs[0] != &c.refs[0] {
		t.Fatalf("references not shared: %v %v %v", a.refs, b.refs, c.refs)
	}
	if a.account != "default" || c.node != "w2" {
		t.Fatalf("a's account %q, c's node %q", a.account, c.node)
	}
	if g.refs[ca] != 2 {
		t.Fatalf("w1's CA referenced %d times, want 2", g.refs[ca])
	}
	g.remove(stored("a", "", "").Key)
	if g.refs[ca] != 1 || !g.has(graphRef{node: "w2", resource: "configmaps", namespace: "default", name: "kube-root-ca.crt"}) {
		t.Fatalf("after a's delete: %v", g.refs)
	}
	if node, ok := g.nodeOf(stored("b", "", "").Key, "2"); !ok || node != "w1" {
		t.Fatalf("b's node %q %v", node, ok)
	}
}

// TestPodReferences: every place a pod names a Secret or a ConfigMap, once each.
func TestPodReferences(t *testing.T) {
	ref := func(name string) corev1.LocalObjectReference { return corev1.LocalObjectReference{Name: name} }
	env := []corev1.EnvVar{{Name: "A", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: ref("s-key")}}},
		{Name: "B", ValueFrom: &corev1.EnvVarSource{ConfigMapKeyRef: &corev1.ConfigMapKeySelector{LocalObjectReference: ref("c-key")}}},
		{Name: "C", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "metadata.name"}}}, {Name: "D", Value: "x"}}
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns"}, Spec: corev1.PodSpec{
		ImagePullSecrets: []corev1.LocalObjectReference{ref("s-pull"), ref("s-key")},
		InitContainers:   []corev1.Container{{EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("s-init")}}}}},
		Containers:       []corev1.Container{{Env: env, EnvFrom: []corev1.EnvFromSource{{ConfigMapRef: &corev1.ConfigMapEnvSource{LocalObjectReference: ref("c-from")}}}}},
		EphemeralContainers: []corev1.EphemeralContainer{{EphemeralContainerCommon: corev1.EphemeralContainerCommon{
			EnvFrom: []corev1.EnvFromSource{{SecretRef: &corev1.SecretEnvSource{LocalObjectReference: ref("s-debug")}}}}}},
		Volumes: []corev1.Volume{
			{VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "s-vol"}}},
			{VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: ref("c-vol")}}},
			{VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}},
			{VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
				{Secret: &corev1.SecretProjection{LocalObjectReference: ref("s-proj")}}, {ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: ref("c-proj")}},
				{DownwardAPI: &corev1.DownwardAPIProjection{}}}}}},
			{VolumeSource: corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "data"}}},
		},
	}}
	var got []string
	for _, r := range podReferences(pod) {
		if r.namespace != "ns" {
			t.Errorf("%v: not in the pod's namespace", r)
		}
		got = append(got, r.resource+"/"+r.name)
	}
	want := "secrets/s-pull secrets/s-key secrets/s-init configmaps/c-from configmaps/c-key secrets/s-debug secrets/s-vol configmaps/c-vol secrets/s-proj configmaps/c-proj persistentvolumeclaims/data"
	if g := strings.Join(got, " "); g != want {
		t.Errorf("references:\n got %s\nwant %s", g, want)
	}
}

// BenchmarkNodeGraphHeap measures the heap a member's node graph holds per pod
// (node_graph_heap_per_pod): 10,000 pods of the scale benchmarks' shape (the
// namespace's account, its token volume), each seen unbound, then bound to one of 1,000
// nodes, as the member's watch of pods sees them.
func BenchmarkNodeGraphHeap(b *testing.B) {
	benchfig.Want(b, "node_graph_heap_per_pod")
	const n = 10000
	objs := make([]store.Object, 0, 2*n)
	for i := range n {
		name := fmt.Sprintf("scale-%d-5d8f9c7b6-%05d", i/1000, i)
		uid := fmt.Sprintf("0c7e8a52-4f1b-4b8e-9a57-%012d", i)
		for _, node := range []string{"", fmt.Sprintf("sim-%d", i%1000)} {
			p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: name, UID: types.UID(uid)}, Spec: corev1.PodSpec{
				NodeName: node, ServiceAccountName: "default", Volumes: []corev1.Volume{{Name: "kube-api-access-" + name[len(name)-5:],
					VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
						{ServiceAccountToken: &corev1.ServiceAccountTokenProjection{Path: "token"}},
						{ConfigMap: &corev1.ConfigMapProjection{LocalObjectReference: corev1.LocalObjectReference{Name: "kube-root-ca.crt"}}}}}}}},
				Containers: []corev1.Container{{Name: "app", Image: "busybox"}}}}
			// As the store holds them: each object its own key strings and uid.
			objs = append(objs, store.Object{Key: store.Key{Kind: kinds.Pod, Namespace: strings.Clone("default"), Name: strings.Clone(name)},
				UID: strings.Clone(uid), Value: kinds.MustEncode(p), Fields: map[string]string{"spec.nodeName": node}})
		}
	}
	var perPod float64
	for b.Loop() {
		g := newNodeGraph(nil, hclog.NewNullLogger())
		start := benchfig.HeapInUse()
		for i := range objs {
			g.put(&objs[i])
		}
		end := benchfig.HeapInUse()
		runtime.KeepAlive(g)
		perPod = float64(end-start) / n
	}
	benchfig.Report("node_graph_heap_per_pod", perPod, "bytes")
}
