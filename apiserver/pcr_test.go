package apiserver_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/podsigner"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestRESTPodCertificateRequests: over REST, a kubelet asks for a certificate for a pod
// bound to it (maxExpirationSeconds defaulted to a day, the status empty) and reads
// its request, which another node may not; it may not ask for another node's pod, in
// another node's name, or for a signer its pod does not name (NodeRestriction, 403).
// The spec is immutable; the chain is written through the status by a user with verb
// sign on the signer only (422 naming spec.signerName otherwise), once.
func TestRESTPodCertificateRequests(t *testing.T) {
	dir := apicluster.Certs(t, "w1", "w2")
	toks, err := auth.ParseTokens(auth.HashToken("signer-token") + ",signer\n")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Tokens: toks})
	admin := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	w1 := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "kubelet-w1"), "")
	w2 := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "kubelet-w2"), "")
	signer := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "signer-token")
	send := func(rc *restClient, method, path string, obj any, code int, what string) reply {
		t.Helper()
		return rc.want(rc.do(method, path, "application/json", "", obj), code, what)
	}
	const ns, signerName = "pc", "example.com/pods"
	send(admin, "POST", "/api/v1/namespaces", &corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: ns}}, 201, "namespace")
	sa := decodeJSON[corev1.ServiceAccount](t, send(admin, "POST", "/api/v1/namespaces/"+ns+"/serviceaccounts", &corev1.ServiceAccount{
		TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"}, ObjectMeta: metav1.ObjectMeta{Name: "app"}}, 201, "account").body)
	nodeUID := map[string]types.UID{}
	for _, n := range []string{"w1", "w2"} {
		node := decodeJSON[corev1.Node](t, send(admin, "POST", "/api/v1/nodes", &corev1.Node{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Node"},
			ObjectMeta: metav1.ObjectMeta{Name: n}}, 201, "node "+n).body)
		nodeUID[n] = node.UID
	}
	pods := map[string]*corev1.Pod{}
	for name, node := range map[string]string{"web": "w1", "other": "w2"} {
		p := decodeJSON[corev1.Pod](t, send(admin, "POST", "/api/v1/namespaces/"+ns+"/pods", &corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: name}, Spec: corev1.PodSpec{NodeName: node, ServiceAccountName: "app",
				Volumes: []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
					{PodCertificate: &corev1.PodCertificateProjection{SignerName: signerName, KeyType: "ED25519", CredentialBundlePath: "bundle.pem"}}}}}}},
				Containers: []corev1.Container{{Name: "c", Image: "busybox:1.36"}}}}, 201, "pod "+name).body)
		pods[name] = &p
	}
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	stub, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, key)
	if err != nil {
		t.Fatal(err)
	}
	pcr := func(pod, node string, mut func(*certificatesv1.PodCertificateRequestSpec)) *certificatesv1.PodCertificateRequest {
		p := pods[pod]
		out := &certificatesv1.PodCertificateRequest{TypeMeta: metav1.TypeMeta{APIVersion: "certificates.k8s.io/v1", Kind: "PodCertificateRequest"},
			ObjectMeta: metav1.ObjectMeta{GenerateName: pod + "-"},
			Spec: certificatesv1.PodCertificateRequestSpec{SignerName: signerName, PodName: pod, PodUID: p.UID, ServiceAccountName: "app", ServiceAccountUID: sa.UID,
				NodeName: types.NodeName(node), NodeUID: nodeUID[node], StubPKCS10Request: stub}}
		if mut != nil {
			mut(&out.Spec)
		}
		return out
	}
	pcrs := "/apis/certificates.k8s.io/v1/namespaces/" + ns + "/podcertificaterequests"
	forbidden := func(rc *restClient, method, path string, obj any, want string) {
		t.Helper()
		if st := send(rc, method, path, obj, 403, want).status(); !strings.Contains(st.Message, want) {
			t.Errorf("%s %s: %q, want %q", method, path, st.Message, want)
		}
	}

	made := decodeJSON[certificatesv1.PodCertificateRequest](t, send(w1, "POST", pcrs, pcr("web", "w1", nil), 201, "w1's request for web").body)
	if m := made.Spec.MaxExpirationSeconds; m == nil || *m != 86400 || len(made.Status.Conditions) != 0 || !strings.HasPrefix(made.Name, "web-") {
		t.Fatalf("made %s: maxExpirationSeconds %v, status %+v", made.Name, m, made.Status)
	}
	forbidden(w1, "POST", pcrs, pcr("other", "w2", nil), `PodCertificateRequest.Spec.NodeName="w2", which is not the requesting node "w1"`)
	forbidden(w1, "POST", pcrs, pcr("other", "w1", nil), `pod "pc/other" is not running on node "w1" named in the PodCertificateRequest`)
	forbidden(w1, "POST", pcrs, pcr("web", "w1", func(s *certificatesv1.PodCertificateRequestSpec) { s.SignerName = "example.com/other" }),
		`pod "pc/web" has no podCertificate projected volume source for signer "example.com/other"`)
	forbidden(w1, "POST", pcrs, pcr("web", "w1", func(s *certificatesv1.PodCertificateRequestSpec) { s.PodName = "gone" }),
		`while retrieving pod "gone" named in the PodCertificateRequest`)
	send(w1, "GET", pcrs+"/"+made.Name, nil, 200, "w1 reads its request")
	forbidden(w2, "GET", pcrs+"/"+made.Name, nil, "a node may only read the podcertificaterequests it made")
	if l := decodeJSON[certificatesv1.PodCertificateRequestList](t, send(w1, "GET", pcrs+"?fieldSelector=spec.nodeName%3Dw1", nil, 200, "w1 lists its requests").body); len(l.Items) != 1 {
		t.Errorf("w1 lists %d requests, want 1", len(l.Items))
	}

	changed := made.DeepCopy()
	changed.Spec.PodName = "other"
	if st := send(admin, "PUT", pcrs+"/"+made.Name, changed, 422, "spec change").status(); !strings.Contains(st.Message, "spec: Invalid value: field is immutable") {
		t.Errorf("spec change: %s", st.Message)
	}

	// The signer may update the status (RBAC) but not yet sign for the signer.
	ca := podsigner.New(t)
	issued := made.DeepCopy()
	if err := ca.Issue(issued, time.Now(), 2*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	rbacPath := "/apis/rbac.authorization.k8s.io/v1"
	role := func(rules ...rbacv1.PolicyRule) *rbacv1.ClusterRole {
		return &rbacv1.ClusterRole{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"}, ObjectMeta: metav1.ObjectMeta{Name: "pod-signer"}, Rules: rules}
	}
	statusRule := rbacv1.PolicyRule{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"podcertificaterequests/status"}, Verbs: []string{"update"}}
	cr := decodeJSON[rbacv1.ClusterRole](t, send(admin, "POST", rbacPath+"/clusterroles", role(statusRule), 201, "role").body)
	send(admin, "POST", rbacPath+"/clusterrolebindings", &rbacv1.ClusterRoleBinding{TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
		ObjectMeta: metav1.ObjectMeta{Name: "pod-signer"}, RoleRef: rbacv1.RoleRef{APIGroup: "rbac.authorization.k8s.io", Kind: "ClusterRole", Name: "pod-signer"},
		Subjects: []rbacv1.Subject{{APIGroup: "rbac.authorization.k8s.io", Kind: "User", Name: "signer"}}}, 201, "binding")
	waitfor.Condition(t, time.Minute, "the signer refused the sign verb", func() (bool, string) {
		r := signer.do("PUT", pcrs+"/"+made.Name+"/status", "application/json", "", issued)
		st := r.status()
		return r.code == 422 && strings.Contains(st.Message, `spec.signerName: Forbidden: User "signer" is not permitted to "sign" for signer "example.com/pods"`), string(r.body)
	})
	cr.Rules = append(cr.Rules, rbacv1.PolicyRule{APIGroups: []string{"certificates.k8s.io"}, Resources: []string{"signers"}, ResourceNames: []string{"example.com/*"}, Verbs: []string{"sign"}})
	send(admin, "PUT", rbacPath+"/clusterroles/pod-signer", &cr, 200, "role with sign")
	var got certificatesv1.PodCertificateRequest
	waitfor.Condition(t, time.Minute, "the signer issues", func() (bool, string) {
		r := signer.do("PUT", pcrs+"/"+made.Name+"/status", "application/json", "", issued)
		if r.code != 200 {
			return false, string(r.body)
		}
		got = decodeJSON[certificatesv1.PodCertificateRequest](t, r.body)
		return true, ""
	})
	if got.Status.CertificateChain != issued.Status.CertificateChain || got.Status.BeginRefreshAt == nil || len(got.Status.Conditions) != 1 {
		t.Fatalf("issued status: %+v", got.Status)
	}
	again := got.DeepCopy()
	if err := ca.Issue(again, time.Now(), 3*time.Hour, time.Hour); err != nil {
		t.Fatal(err)
	}
	again.Status.Conditions = again.Status.Conditions[1:]
	if st := send(signer, "PUT", pcrs+"/"+made.Name+"/status", again, 422, "issued twice").status(); !strings.Contains(st.Message, "immutable after PodCertificateRequest is issued, denied, or failed") {
		t.Errorf("issued twice: %s", st.Message)
	}
}
