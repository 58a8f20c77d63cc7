package kubelet_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/containerdtest"
)

// TestServiceAccountTokenOnContainerd: on a real containerd and a secure API server, a
// pod gets the kube-api-access volume, its kubelet fills it with a token it requested
// for the pod, and what the pod reads there (token, ca.crt, namespace) calls the API
// server, verified with that ca.crt: the server says who it is, its account.
func TestServiceAccountTokenOnContainerd(t *testing.T) {
	socket := containerdtest.Start(t)
	data, err := containerd.BusyboxArchive("/bin/busybox", busyboxImage)
	if err != nil {
		t.Skipf("no static busybox to build a test image from: %v", err)
	}
	const node, ns = "ctrd-satoken", "satoken"
	dir := apicluster.Certs(t, node)
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, ServiceAccountAdmission: true})
	admin := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	caPEM, err := os.ReadFile(filepath.Join(dir, pki.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	// What the controller-manager makes in every namespace.
	if _, err := admin.Namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ServiceAccounts.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "default"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ConfigMaps.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kube-root-ca.crt"},
		Data: map[string]string{"ca.crt": string(caPEM)}}); err != nil {
		t.Fatal(err)
	}

	rt, err := containerd.New(ctx, containerd.Config{Socket: socket, Namespace: "skiff-satoken", LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	containerdtest.RemoveCgroups(t, "/skiff-satoken")
	t.Cleanup(func() { rt.Close() })
	if _, err := rt.Import(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, cs: client.NewClientset(c.Dial(t, "kubelet-"+node, client.Options{})), ns: ns, node: node}
	e.start(rt, ctrdConfig(e)) // the kubelet, as its node
	e.cs = admin

	// The pod prints what its mount holds; the call to the API server with them is the
	// test's: busybox's wget cannot complete a TLS handshake with the server's ECDSA
	// certificate ("handshake failure").
	const sa = "/var/run/secrets/kubernetes.io/serviceaccount"
	script := `echo "TOKEN=$(cat ` + sa + `/token)"; echo "NS=$(cat ` + sa + `/namespace)"; cat ` + sa + `/ca.crt; sleep 3600`
	p := e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "caller"}, Spec: corev1.PodSpec{
		TerminationGracePeriodSeconds: new(int64(1)),
		Containers:                    []corev1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh", "-c", script}}}}})
	if len(p.Spec.Volumes) != 1 || !strings.HasPrefix(p.Spec.Volumes[0].Name, "kube-api-access-") {
		t.Fatalf("admitted pod's volumes: %+v", p.Spec.Volumes)
	}
	var got string
	e.waitPod("caller", "printing its mount", func(p *corev1.Pod) bool {
		if p.Status.Phase != corev1.PodRunning {
			return false
		}
		got = e.logs(rt, p, "app")
		return strings.Contains(got, "-----END CERTIFICATE-----")
	})
	token, rest, _ := strings.Cut(strings.TrimPrefix(got, "TOKEN="), "\n")
	ns2, ca, _ := strings.Cut(strings.TrimPrefix(rest, "NS="), "\n")
	if ns2 != ns || ca != string(caPEM) || strings.Count(token, ".") != 2 {
		t.Fatalf("the pod read:\n%s", got)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM([]byte(ca)) {
		t.Fatal("the pod's ca.crt holds no certificate")
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, "POST", "https://"+c.Addr(0)+"/apis/authentication.k8s.io/v1/selfsubjectreviews",
		strings.NewReader(`{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated || !strings.Contains(string(body), `"username":"system:serviceaccount:satoken:default"`) {
		t.Errorf("whoami with the pod's token: %d %s", resp.StatusCode, body)
	}
	admin.Pods.Delete(ctx, ns, "caller", client.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	e.waitContainers(rt, "no container left", func(l []kubelet.Container) bool { return len(l) == 0 })
	e.waitVolumesGone()
}
