package e2e

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/podsigner"
	"github.com/skiffhq/skiff/test/waitfor"
	"github.com/skiffhq/skiff/up/daemon"
)

// podCertManifest is a pod that prints the credentials its podCertificate volume holds.
const podCertManifest = `apiVersion: v1
kind: Pod
metadata: {name: web}
spec:
  terminationGracePeriodSeconds: 1
  containers:
  - name: web
    image: docker.io/library/busybox:latest
    imagePullPolicy: IfNotPresent
    command: ["sh", "-c", "cat /creds/credentials.pem; sleep 3600"]
    volumeMounts: [{name: creds, mountPath: /creds}]
  volumes:
  - name: creds
    projected:
      sources:
      - podCertificate: {signerName: example.com/pods, keyType: ECDSAP256, credentialBundlePath: credentials.pem}
`

// TestPodCertificateUp: on skiff up with its real kubelet and containerd, a pod with a
// podCertificate volume waits for its kubelet's PodCertificateRequest; issued by a
// signer outside the cluster (the test's, with skiff up's admin credentials: Kubernetes
// ships no pod certificate signer), the pod starts and prints a credential bundle whose
// key is its leaf certificate's, the leaf the signer made for the pod.
func TestPodCertificateUp(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: containerd")
	}
	if err := daemon.Usable(); err != nil {
		t.Skipf("skiff up's private containerd: %v", err)
	}
	if _, err := os.Stat("/bin/busybox"); err != nil {
		t.Skip("the image comes from /bin/busybox (busybox-static), which is missing")
	}
	dir, addr := upPlace(t, 1)
	data := filepath.Join(dir, "up")
	up := start(t, "skiff up", "up", "--data-dir", data, "--listen", addr, "--node-name", "podcert", "--pod-network=false",
		"--containerd-address", staleSocket(t, dir))
	privateContainerd(t, up)
	waitfor.Condition(t, 60*time.Second, "the node ready", func() (bool, string) {
		out, errs, err := ctl(addr, "get", "nodes")
		return err == nil && strings.Contains(out, " Ready"), out + errs
	})
	mustCtlStdin(t, addr, podCertManifest, "apply", "-f", "-")

	conn, err := client.Dial([]string{addr}, client.Options{TLS: apicluster.ClientTLS(t, filepath.Join(data, "pki"), "admin")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	cs := client.NewClientset(conn)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	ca := podsigner.New(t)
	waitfor.Condition(t, 2*time.Minute, "the kubelet's request, issued", func() (bool, string) {
		l, err := cs.PodCertificateRequests.List(ctx, "default", client.ListOptions{FieldSelector: "spec.signerName=example.com/pods"})
		if err != nil || len(l.Items) == 0 {
			return false, "no request yet: " + errText(err)
		}
		pcr := l.Items[0]
		if err := ca.Issue(pcr, time.Now(), 2*time.Hour, time.Hour); err != nil {
			t.Fatal(err)
		}
		_, err = cs.PodCertificateRequests.UpdateStatus(ctx, pcr)
		return err == nil, errText(err)
	})
	var logs string
	waitfor.Condition(t, 2*time.Minute, "web printing its credentials", func() (bool, string) {
		out, errs, err := ctl(addr, "logs", "web")
		logs = out
		return err == nil && strings.Count(out, "-----END CERTIFICATE-----") == 2, out + errs
	})
	keyBlock, rest := pem.Decode([]byte(logs))
	leafBlock, _ := pem.Decode(rest)
	if keyBlock == nil || keyBlock.Type != "PRIVATE KEY" || leafBlock == nil {
		t.Fatalf("web printed:\n%s", logs)
	}
	key, err := x509.ParsePKCS8PrivateKey(keyBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(leafBlock.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !key.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) ||
		len(leaf.URIs) != 1 || leaf.URIs[0].String() != podsigner.PodURI("default", "web") {
		t.Fatalf("the bundle's leaf %v is not for its key and the pod", leaf.URIs)
	}
	mustCtl(t, addr, "delete", "pod", "web")
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}
