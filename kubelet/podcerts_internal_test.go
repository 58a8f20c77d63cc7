package kubelet

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"strings"
	"testing"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/test/podsigner"
)

// fakePCRs is the API's PodCertificateRequests, in memory: what the kubelet creates,
// for the test to sign or deny.
type fakePCRs struct {
	made []*certificatesv1.PodCertificateRequest
}

func (f *fakePCRs) Create(_ context.Context, pcr *certificatesv1.PodCertificateRequest) (*certificatesv1.PodCertificateRequest, error) {
	out := pcr.DeepCopy()
	out.Name = fmt.Sprintf("%s%d", pcr.GenerateName, len(f.made))
	f.made = append(f.made, out)
	return out.DeepCopy(), nil
}

func (f *fakePCRs) Get(_ context.Context, namespace, name string) (*certificatesv1.PodCertificateRequest, error) {
	for _, p := range f.made {
		if p.Namespace == namespace && p.Name == name {
			return p.DeepCopy(), nil
		}
	}
	return nil, apierrors.NewNotFound(certificatesv1.Resource("podcertificaterequests"), name)
}

func (f *fakePCRs) last(t *testing.T) *certificatesv1.PodCertificateRequest {
	t.Helper()
	if len(f.made) == 0 {
		t.Fatal("no request made")
	}
	return f.made[len(f.made)-1]
}

func newTestPodCerts(now *time.Time) (*podCertManager, *fakePCRs) {
	f := &fakePCRs{}
	return &podCertManager{
		pcrs: f, node: "w1",
		nodeUID:    func(context.Context) (types.UID, error) { return "node-uid", nil },
		accountUID: func(context.Context, string, string) (types.UID, error) { return "sa-uid", nil },
		now:        func() time.Time { return *now },
		creds:      map[podCertKey]*podCertState{},
	}, f
}

// parseBundle checks that key (a PKCS#8 PEM block) is the key of chain's leaf, and
// returns the leaf.
func parseBundle(t *testing.T, key, chain []byte) *x509.Certificate {
	t.Helper()
	kb, _ := pem.Decode(key)
	if kb == nil || kb.Type != "PRIVATE KEY" {
		t.Fatalf("key is not a PRIVATE KEY block: %q", key)
	}
	priv, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	cb, _ := pem.Decode(chain)
	if cb == nil {
		t.Fatalf("chain has no certificate: %q", chain)
	}
	leaf, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !priv.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(leaf.PublicKey) {
		t.Fatal("the key is not the leaf certificate's")
	}
	return leaf
}

// TestPodCertificateCredentials: the kubelet asks the projection's signer for a key of
// the projection's type with a request naming the pod, its account and the node (a
// stub request its key signs); the volume fails while the request is pending, then
// gets key and chain (the leaf issued to that key) and keeps them until
// beginRefreshAt; then it asks again with a new key and serves the old credentials
// until the new are issued. A denial is the volume's error, in the signer's words.
func TestPodCertificateCredentials(t *testing.T) {
	ca := podsigner.New(t)
	for _, tc := range []struct {
		keyType string
		check   func(crypto.PublicKey) bool
	}{
		{"ED25519", func(k crypto.PublicKey) bool { _, ok := k.(ed25519.PublicKey); return ok }},
		{"ECDSAP384", func(k crypto.PublicKey) bool {
			e, ok := k.(*ecdsa.PublicKey)
			return ok && e.Curve.Params().BitSize == 384
		}},
		{"RSA3072", func(k crypto.PublicKey) bool { r, ok := k.(*rsa.PublicKey); return ok && r.Size()*8 == 3072 }},
	} {
		t.Run(tc.keyType, func(t *testing.T) {
			now := time.Now()
			m, f := newTestPodCerts(&now)
			ctx := context.Background()
			pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", UID: "pod-uid"}, Spec: corev1.PodSpec{ServiceAccountName: "app", NodeName: "w1"}}
			p := &corev1.PodCertificateProjection{SignerName: "example.com/pods", KeyType: tc.keyType, MaxExpirationSeconds: new(int32(7200)),
				UserAnnotations: map[string]string{"example.com/team": "a"}}

			_, _, err := m.credentials(ctx, pod, "certs", 1, p)
			if err == nil || !strings.Contains(err.Error(), "PodCertificateRequest ns/web-0 is pending") {
				t.Fatalf("before issue: %v", err)
			}
			pcr := f.last(t)
			s := pcr.Spec
			if s.SignerName != "example.com/pods" || s.PodName != "web" || s.PodUID != "pod-uid" || s.ServiceAccountName != "app" || s.ServiceAccountUID != "sa-uid" ||
				s.NodeName != "w1" || s.NodeUID != "node-uid" || *s.MaxExpirationSeconds != 7200 || s.UnverifiedUserAnnotations["example.com/team"] != "a" {
				t.Fatalf("request spec: %+v", s)
			}
			stub, err := x509.ParseCertificateRequest(s.StubPKCS10Request)
			if err != nil || stub.CheckSignature() != nil || !tc.check(stub.PublicKey) {
				t.Fatalf("stub request: %v, key %T", err, stub.PublicKey)
			}
			if _, _, err := m.credentials(ctx, pod, "certs", 1, p); err == nil || len(f.made) != 1 {
				t.Fatalf("still pending: %v, %d requests (want the same one)", err, len(f.made))
			}

			if err := ca.Issue(pcr, now, 2*time.Hour, time.Hour); err != nil {
				t.Fatal(err)
			}
			key, chain, err := m.credentials(ctx, pod, "certs", 1, p)
			if err != nil {
				t.Fatal(err)
			}
			if leaf := parseBundle(t, key, chain); leaf.Subject.CommonName != "web" || strings.Count(string(chain), "BEGIN CERTIFICATE") != 2 {
				t.Fatalf("leaf %q, chain of %d", leaf.Subject.CommonName, strings.Count(string(chain), "BEGIN CERTIFICATE"))
			}

			now = now.Add(59 * time.Minute) // before beginRefreshAt: kept
			if k2, _, err := m.credentials(ctx, pod, "certs", 1, p); err != nil || string(k2) != string(key) || len(f.made) != 1 {
				t.Fatalf("before refresh: %v, %d requests", err, len(f.made))
			}
			now = now.Add(2 * time.Minute) // past it: a new request, the old credentials meanwhile
			if k2, _, err := m.credentials(ctx, pod, "certs", 1, p); err != nil || string(k2) != string(key) || len(f.made) != 2 {
				t.Fatalf("refreshing: %v, %d requests", err, len(f.made))
			}
			if err := ca.Issue(f.last(t), now, 2*time.Hour, time.Hour); err != nil {
				t.Fatal(err)
			}
			k3, c3, err := m.credentials(ctx, pod, "certs", 1, p)
			if err != nil || string(k3) == string(key) {
				t.Fatalf("refreshed: %v, same key %v", err, string(k3) == string(key))
			}
			parseBundle(t, k3, c3)

			// Another source of the pod is its own request; a denial is final.
			if _, _, err := m.credentials(ctx, pod, "certs", 2, p); err == nil || len(f.made) != 3 {
				t.Fatalf("second source: %v, %d requests", err, len(f.made))
			}
			podsigner.Deny(f.last(t), now, certificatesv1.PodCertificateRequestConditionUnsupportedKeyType, "use ED25519")
			for range 2 {
				_, _, err = m.credentials(ctx, pod, "certs", 2, p)
				if err == nil || !strings.Contains(err.Error(), `was denied by signer "example.com/pods": UnsupportedKeyType: use ED25519`) || len(f.made) != 3 {
					t.Fatalf("denied: %v, %d requests", err, len(f.made))
				}
			}
			m.forget(pod.UID)
			if len(m.creds) != 0 {
				t.Fatalf("forget left %d", len(m.creds))
			}
		})
	}
}
