package apiserver

import (
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
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
	if g.has(ref("w1", "s")) || len(g.pods) != 0 {
		t.Fatal("an unbound pod is in the graph")
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
