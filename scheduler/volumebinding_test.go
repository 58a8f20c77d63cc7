package scheduler

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	storagev1 "k8s.io/api/storage/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func withClaim(name string) podOpt {
	return func(p *corev1.Pod) {
		p.Spec.Volumes = append(p.Spec.Volumes, corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: name}}})
	}
}

// fakeVolumes: claim "bound-w1" bound to a volume on w1, "unbound-wait" and
// "unbound-now" unbound in a WaitForFirstConsumer and an Immediate class, "going" being
// deleted.
func fakeVolumes() *Volumes {
	class := func(s string) *string { return &s }
	claims := map[string]*corev1.PersistentVolumeClaim{
		"bound-w1":     {Spec: corev1.PersistentVolumeClaimSpec{VolumeName: "pv-w1"}},
		"unbound-wait": {Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: class("local-path")}},
		"unbound-now":  {Spec: corev1.PersistentVolumeClaimSpec{StorageClassName: class("fast")}},
		"going":        {ObjectMeta: metav1.ObjectMeta{DeletionTimestamp: &metav1.Time{}}},
	}
	pv := &corev1.PersistentVolume{Spec: corev1.PersistentVolumeSpec{NodeAffinity: &corev1.VolumeNodeAffinity{Required: &corev1.NodeSelector{
		NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{
			{Key: corev1.LabelHostname, Operator: corev1.NodeSelectorOpIn, Values: []string{"w1"}}}}}}}}}
	wait, now := storagev1.VolumeBindingWaitForFirstConsumer, storagev1.VolumeBindingImmediate
	classes := map[string]*storagev1.StorageClass{"local-path": {VolumeBindingMode: &wait}, "fast": {VolumeBindingMode: &now}}
	return &Volumes{
		Claim: func(_, name string) (*corev1.PersistentVolumeClaim, bool) { c, ok := claims[name]; return c, ok },
		Volume: func(name string) (*corev1.PersistentVolume, bool) {
			return pv, name == "pv-w1"
		},
		Class: func(name string) (*storagev1.StorageClass, bool) { c, ok := classes[name]; return c, ok },
	}
}

func TestVolumeBinding(t *testing.T) {
	w1 := makeNode("w1", "4", "8Gi", withLabel(corev1.LabelHostname, "w1"))
	w2 := makeNode("w2", "4", "8Gi", withLabel(corev1.LabelHostname, "w2"))
	for _, tc := range []struct {
		name   string
		pod    *corev1.Pod
		node   *corev1.Node
		reason string
	}{
		{"no claims", makePod("p", "1", "1Gi"), w2, ""},
		{"a bound volume's node", makePod("p", "1", "1Gi", withClaim("bound-w1")), w1, ""},
		{"another node", makePod("p", "1", "1Gi", withClaim("bound-w1")), w2, ReasonVolumeNodeAffinity},
		{"waits for its first consumer: any node", makePod("p", "1", "1Gi", withClaim("unbound-wait")), w2, ""},
		{"unbound, immediate", makePod("p", "1", "1Gi", withClaim("unbound-now")), w1, ReasonUnboundImmediateClaims},
		{"missing", makePod("p", "1", "1Gi", withClaim("nope")), w1, `persistentvolumeclaim "nope" not found`},
		{"being deleted", makePod("p", "1", "1Gi", withClaim("going")), w1, `persistentvolumeclaim "going" is being deleted`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := cacheWith([]*corev1.Node{tc.node})
			c.SetVolumes(fakeVolumes())
			state := &CycleState{}
			pi := NewPodInfo(tc.pod)
			var st *Status
			if pre := (VolumeBinding{}).PreFilter(state, pi, c); pre == nil {
				st = (VolumeBinding{}).Filter(state, pi, c.nodes[tc.node.Name])
			} else if pre.Code != Skip {
				t.Fatalf("prefilter %v", pre)
			}
			got := ""
			if !st.IsSuccess() {
				got = st.Reasons[0]
			}
			if got != tc.reason {
				t.Errorf("got %q, want %q", got, tc.reason)
			}
		})
	}
}
