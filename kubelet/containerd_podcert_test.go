package kubelet_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kubelet"
	"github.com/skiffhq/skiff/kubelet/containerd"
	"github.com/skiffhq/skiff/kubelet/volume"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/containerdtest"
	"github.com/skiffhq/skiff/test/podsigner"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestPodCertificateOnContainerd: on a real containerd and a secure API server (node
// authorization and NodeRestriction on), a pod with a podCertificate projected volume
// waits while its kubelet's PodCertificateRequest is pending; once a signer (the
// test's: Kubernetes ships none) issues it, the pod starts and reads, from its
// volume, a credential bundle whose key is its leaf certificate's, a leaf naming the
// pod and verifying with the signer's CA, and the same chain in its own file.
func TestPodCertificateOnContainerd(t *testing.T) {
	socket := containerdtest.Start(t)
	data, err := containerd.BusyboxArchive("/bin/busybox", busyboxImage)
	if err != nil {
		t.Skipf("no static busybox to build a test image from: %v", err)
	}
	const node, ns, signer = "ctrd-podcert", "podcert", "example.com/pods"
	dir := apicluster.Certs(t, node)
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir})
	admin := client.NewClientset(c.Dial(t, "admin", client.Options{}))
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	if _, err := admin.Namespaces.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.ServiceAccounts.Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "app"}}); err != nil {
		t.Fatal(err)
	}

	rt, err := containerd.New(ctx, containerd.Config{Socket: socket, Namespace: "skiff-podcert", LogDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	containerdtest.RemoveCgroups(t, "/skiff-podcert")
	t.Cleanup(func() { rt.Close() })
	if _, err := rt.Import(ctx, bytes.NewReader(data)); err != nil {
		t.Fatal(err)
	}
	e := &env{t: t, ctx: ctx, cs: client.NewClientset(c.Dial(t, "kubelet-"+node, client.Options{})), ns: ns, node: node}
	e.start(rt, ctrdConfig(e)) // the kubelet, as its node
	e.cs = admin
	// A failure stops the test with the pod's tmpfs volume mounted: unmount what is left.
	t.Cleanup(func() {
		m, err := volume.New(volume.Config{Root: e.rootDir})
		if err != nil {
			t.Error(err)
			return
		}
		uids, _ := m.Pods()
		for _, uid := range uids {
			if err := m.TearDown(uid); err != nil {
				t.Error(err)
			}
		}
	})

	script := `cat /creds/bundle.pem; echo SPLIT; cat /creds/tls/chain.pem; sleep 3600`
	e.create(&corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "web"}, Spec: corev1.PodSpec{
		ServiceAccountName:            "app",
		TerminationGracePeriodSeconds: new(int64(1)),
		Volumes: []corev1.Volume{{Name: "creds", VolumeSource: corev1.VolumeSource{Projected: &corev1.ProjectedVolumeSource{Sources: []corev1.VolumeProjection{
			{PodCertificate: &corev1.PodCertificateProjection{SignerName: signer, KeyType: "ED25519", MaxExpirationSeconds: new(int32(7200)),
				CredentialBundlePath: "bundle.pem", KeyPath: "tls/key.pem", CertificateChainPath: "tls/chain.pem"}},
		}}}}},
		Containers: []corev1.Container{{Name: "app", Image: busyboxImage, ImagePullPolicy: corev1.PullIfNotPresent, Command: []string{"sh", "-c", script},
			VolumeMounts: []corev1.VolumeMount{{Name: "creds", MountPath: "/creds"}}}}}})

	// The signer: the kubelet's request, issued for two hours.
	ca := podsigner.New(t)
	waitfor.Condition(t, time.Minute, "the kubelet's request, issued", func() (bool, string) {
		l, err := admin.PodCertificateRequests.List(ctx, ns, client.ListOptions{})
		if err != nil || len(l.Items) == 0 {
			return false, "no request yet"
		}
		pcr := l.Items[0]
		if pcr.Spec.PodName != "web" || pcr.Spec.NodeName != node || pcr.Spec.ServiceAccountName != "app" || pcr.Spec.SignerName != signer {
			t.Fatalf("the kubelet asked for %+v", pcr.Spec)
		}
		if p, err := admin.Pods.Get(ctx, ns, "web"); err != nil || p.Status.Phase != corev1.PodPending {
			t.Fatalf("the pod is %v before its certificate (%v)", p.Status.Phase, err)
		}
		if err := ca.Issue(pcr, time.Now(), 2*time.Hour, time.Hour); err != nil {
			t.Fatal(err)
		}
		_, err = admin.PodCertificateRequests.UpdateStatus(ctx, pcr)
		return err == nil, "issue: " + errString(err)
	})

	var got string
	e.waitPod("web", "printing its credentials", func(p *corev1.Pod) bool {
		if p.Status.Phase != corev1.PodRunning {
			return false
		}
		got = e.logs(rt, p, "app")
		return strings.Count(got, "-----END CERTIFICATE-----") == 4
	})
	bundle, chain, _ := strings.Cut(got, "SPLIT\n")
	keyBlock, rest := pem.Decode([]byte(bundle))
	if keyBlock == nil || keyBlock.Type != "PRIVATE KEY" || string(rest) != chain {
		t.Fatalf("the pod read:\n%s", got)
	}
	key, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	leafBlock, _ := pem.Decode([]byte(chain))
	leaf, err := x509.ParseCertificate(leafBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Fatal("the bundle's key is not its leaf certificate's")
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca.Cert)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil ||
		len(leaf.URIs) != 1 || leaf.URIs[0].String() != podsigner.PodURI(ns, "web") {
		t.Fatalf("leaf %v (%v), want one for the pod from the signer", leaf.URIs, err)
	}

	admin.Pods.Delete(ctx, ns, "web", client.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0)})
	e.waitContainers(rt, "no container left", func(l []kubelet.Container) bool { return len(l) == 0 })
}

func errString(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
