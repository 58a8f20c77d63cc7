package auth

import (
	"errors"
	"strings"
	"testing"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki"
)

func TestAdmitNodeWrite(t *testing.T) {
	w1 := User{Name: pki.NodeUserPrefix + "w1", Groups: []string{pki.GroupNodes}}
	admin := User{Name: "admin", Groups: []string{pki.GroupAdmin}}
	node := func(labels map[string]string, taints []corev1.Taint, unschedulable bool) *corev1.Node {
		return &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", Labels: labels},
			Spec: corev1.NodeSpec{Taints: taints, Unschedulable: unschedulable}}
	}
	event := func(kind, ns, name string) *corev1.Event {
		return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "e"},
			InvolvedObject: corev1.ObjectReference{Kind: kind, Namespace: ns, Name: name}}
	}
	pods := func(ns, name string) (string, bool, error) {
		switch name {
		case "mine":
			return "w1", true, nil
		case "theirs":
			return "w2", true, nil
		case "broken":
			return "", false, errors.New("store unavailable")
		}
		return "", false, nil
	}
	base := map[string]string{"kubernetes.io/hostname": "w1"}
	withLabel := func(k, v string) map[string]string {
		l := map[string]string{"kubernetes.io/hostname": "w1"}
		l[k] = v
		return l
	}
	noSchedule := []corev1.Taint{{Key: "dedicated", Value: "db", Effect: corev1.TaintEffectNoSchedule}}
	for _, tc := range []struct {
		name     string
		user     User
		old, obj kinds.Object
		want     string // "" allowed
	}{
		{"registers with its own labels and taints", w1, nil, node(withLabel("topology.kubernetes.io/zone", "a"), noSchedule, false), ""},
		{"registers with a role", w1, nil, node(withLabel("node-role.kubernetes.io/control-plane", ""), nil, false),
			`node "w1" is not allowed to set the following labels: node-role.kubernetes.io/control-plane`},
		{"registers with a restriction label", w1, nil, node(withLabel("node-restriction.kubernetes.io/fips", "true"), nil, false),
			`node "w1" is not allowed to set the following labels: node-restriction.kubernetes.io/fips`},
		{"adds its own label", w1, node(base, nil, false), node(withLabel("disktype", "ssd"), nil, false), ""},
		{"keeps a role an administrator set", w1, node(withLabel("node-role.kubernetes.io/worker", ""), nil, false),
			node(map[string]string{"kubernetes.io/hostname": "w1", "node-role.kubernetes.io/worker": "", "disktype": "ssd"}, nil, false), ""},
		{"removes a role", w1, node(withLabel("node-role.kubernetes.io/worker", ""), nil, false), node(base, nil, false),
			`node "w1" is not allowed to modify labels: node-role.kubernetes.io/worker`},
		{"changes a restriction label", w1, node(withLabel("node-restriction.kubernetes.io/fips", "false"), nil, false),
			node(withLabel("node-restriction.kubernetes.io/fips", "true"), nil, false), `is not allowed to modify labels: node-restriction.kubernetes.io/fips`},
		{"adds a taint", w1, node(base, nil, false), node(base, noSchedule, false), `node "w1" is not allowed to modify taints`},
		{"removes a taint", w1, node(base, noSchedule, false), node(base, nil, false), `node "w1" is not allowed to modify taints`},
		{"uncordons itself", w1, node(base, nil, true), node(base, nil, false), `node "w1" is not allowed to modify spec.unschedulable`},
		{"an administrator labels and taints", admin, node(base, nil, false), node(withLabel("node-role.kubernetes.io/worker", ""), noSchedule, true), ""},
		{"event about itself", w1, nil, event(kinds.Node, "", "w1"), ""},
		{"event about another node", w1, nil, event(kinds.Node, "", "w2"), `node "w1" may not record events about node "w2"`},
		{"event about its pod", w1, nil, event(kinds.Pod, "default", "mine"), ""},
		{"event about another node's pod", w1, nil, event(kinds.Pod, "default", "theirs"), `may not record events about pod "default/theirs": it is not bound to this node`},
		{"event about no pod", w1, nil, event(kinds.Pod, "default", "ghost"), `may not record events about pod "default/ghost": no such pod`},
		{"event in another namespace", w1, nil, event(kinds.Pod, "kube-system", "mine"), `may not record an event in namespace "default" about pod "kube-system/mine"`},
		{"event about a deployment", w1, nil, event("Deployment", "default", "web"), `may record events only about its Node and its pods, not about Deployment "web"`},
		{"event when the pod cannot be read", w1, nil, event(kinds.Pod, "default", "broken"), "store unavailable"},
		{"an administrator's event about anything", admin, nil, event("Deployment", "default", "web"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := AdmitNodeWrite(tc.user, tc.old, tc.obj, pods)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestAdmitNodePodCertificateRequest: a kubelet may ask for a certificate only for a
// pod bound to it, not a mirror pod, with a podCertificate projection for the signer,
// naming the node, the pod and its service account as they are.
func TestAdmitNodePodCertificateRequest(t *testing.T) {
	node := &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: "w1", UID: "node-uid"}}
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "app", UID: "sa-uid"}}
	pod := func(mut func(*corev1.Pod)) *corev1.Pod {
		p := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web", UID: "pod-uid"},
			Spec: corev1.PodSpec{NodeName: "w1", ServiceAccountName: "app", Volumes: []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{
				Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{{PodCertificate: &corev1.PodCertificateProjection{SignerName: "example.com/pods"}}}}}}}}}
		if mut != nil {
			mut(p)
		}
		return p
	}
	pcr := func(mut func(*certificatesv1.PodCertificateRequestSpec)) *certificatesv1.PodCertificateRequest {
		p := &certificatesv1.PodCertificateRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "web-x"},
			Spec: certificatesv1.PodCertificateRequestSpec{SignerName: "example.com/pods", PodName: "web", PodUID: "pod-uid",
				ServiceAccountName: "app", ServiceAccountUID: "sa-uid", NodeName: "w1", NodeUID: "node-uid"}}
		if mut != nil {
			mut(&p.Spec)
		}
		return p
	}
	for _, tc := range []struct {
		name string
		pcr  *certificatesv1.PodCertificateRequest
		pod  *corev1.Pod
		want string
	}{
		{"its pod", pcr(nil), pod(nil), ""},
		{"another node", pcr(func(s *certificatesv1.PodCertificateRequestSpec) { s.NodeName = "w2" }), pod(nil),
			`PodCertificateRequest.Spec.NodeName="w2", which is not the requesting node "w1"`},
		{"node uid", pcr(func(s *certificatesv1.PodCertificateRequestSpec) { s.NodeUID = "old" }), pod(nil),
			`PodCertificateRequest for pod "default/web" names node UID "old", inconsistent with the running node ("node-uid")`},
		{"pod uid", pcr(func(s *certificatesv1.PodCertificateRequestSpec) { s.PodUID = "old" }), pod(nil),
			`PodCertificateRequest for pod "default/web" contains pod UID ("old") that differs from running pod ("pod-uid")`},
		{"pod on another node", pcr(nil), pod(func(p *corev1.Pod) { p.Spec.NodeName = "w2" }),
			`pod "default/web" is not running on node "w1" named in the PodCertificateRequest`},
		{"mirror pod", pcr(nil), pod(func(p *corev1.Pod) { p.Annotations = map[string]string{corev1.MirrorPodAnnotationKey: "x"} }),
			`pod "default/web" is a mirror pod`},
		{"another account", pcr(func(s *certificatesv1.PodCertificateRequestSpec) { s.ServiceAccountName = "admin" }), pod(nil),
			`PodCertificateRequest for pod "default/web" contains serviceAccountName ("admin") that differs from running pod ("app")`},
		{"account uid", pcr(func(s *certificatesv1.PodCertificateRequestSpec) { s.ServiceAccountUID = "old" }), pod(nil),
			`PodCertificateRequest for pod "default/web" contains serviceAccountUID ("old") that differs from running service account ("sa-uid")`},
		{"a signer the pod does not name", pcr(func(s *certificatesv1.PodCertificateRequestSpec) { s.SignerName = "example.com/other" }), pod(nil),
			`pod "default/web" has no podCertificate projected volume source for signer "example.com/other"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := AdmitNodePodCertificateRequest("w1", tc.pcr, node, tc.pod, sa)
			if (err == nil) != (tc.want == "") || err != nil && err.Error() != tc.want {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}
