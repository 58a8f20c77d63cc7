package kubelet

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"maps"
	"sync"
	"time"

	certificatesv1 "k8s.io/api/certificates/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
)

// podCertManager gets the credentials of pods' podCertificate projections, as
// Kubernetes' kubelet pod certificate manager does, one per (pod, volume, source): it
// generates a key of the projection's type, asks the projection's signer for a
// certificate with a PodCertificateRequest naming the pod, its service account and
// this node (a stub PKCS#10 request signed by the key), and once the signer has
// written the chain into the request's status it keeps key and chain until the
// status' beginRefreshAt, then asks again with a new key, serving the old ones
// until the new are issued or the old expire. The volume's syncs (every pod with a
// projected volume is synced each object-cache ttl) drive it: nothing runs between
// them. A request denied or failed is final for that source (Kubernetes' kubelet
// does not retry either): the volume reports the signer's reason. A pod's credentials
// are forgotten when it is cleaned up.
type podCertManager struct {
	pcrs podCertRequests
	node string
	// nodeUID and accountUID are the uids a request names (the API server checks them).
	nodeUID    func(ctx context.Context) (types.UID, error)
	accountUID func(ctx context.Context, namespace, name string) (types.UID, error)
	now        func() time.Time

	mu    sync.Mutex
	creds map[podCertKey]*podCertState
}

// podCertRequests is what the manager needs of the API: making a request and reading
// it back (client.Clientset's, or a test's fake signer).
type podCertRequests interface {
	Create(ctx context.Context, pcr *certificatesv1.PodCertificateRequest) (*certificatesv1.PodCertificateRequest, error)
	Get(ctx context.Context, namespace, name string) (*certificatesv1.PodCertificateRequest, error)
}

type podCertKey struct {
	uid    types.UID
	volume string
	source int
}

type podCertState struct {
	// pending is the request in flight ("" none) and pendingKey the key it asks for.
	pending    string
	pendingKey []byte
	// issued is the credential in use (nil none yet).
	issued *podCredential
	// refused is the denial or failure of the last request; final.
	refused error
}

// podCredential is an issued key (PKCS#8 PEM) and chain (CERTIFICATE PEM blocks).
type podCredential struct {
	key, chain        []byte
	refresh, notAfter time.Time
}

func newPodCertManager(cs *client.Clientset, node string, now func() time.Time) *podCertManager {
	return &podCertManager{
		pcrs: clientPCRs{cs},
		node: node,
		nodeUID: func(ctx context.Context) (types.UID, error) {
			n, err := cs.Nodes.Get(ctx, "", node)
			if err != nil {
				return "", err
			}
			return n.UID, nil
		},
		accountUID: func(ctx context.Context, namespace, name string) (types.UID, error) {
			sa, err := cs.ServiceAccounts.Get(ctx, namespace, name)
			if err != nil {
				return "", err
			}
			return sa.UID, nil
		},
		now:   now,
		creds: map[podCertKey]*podCertState{},
	}
}

type clientPCRs struct{ cs *client.Clientset }

func (c clientPCRs) Create(ctx context.Context, pcr *certificatesv1.PodCertificateRequest) (*certificatesv1.PodCertificateRequest, error) {
	return c.cs.PodCertificateRequests.Create(ctx, pcr)
}

func (c clientPCRs) Get(ctx context.Context, namespace, name string) (*certificatesv1.PodCertificateRequest, error) {
	return c.cs.PodCertificateRequests.Get(ctx, namespace, name)
}

// credentials are the key and chain of source (the index of p among its volume's
// sources) of pod's volume, or why there are none yet.
func (m *podCertManager) credentials(ctx context.Context, pod *corev1.Pod, volume string, source int, p *corev1.PodCertificateProjection) (key, chain []byte, err error) {
	k := podCertKey{uid: pod.UID, volume: volume, source: source}
	m.mu.Lock()
	st := m.creds[k]
	if st == nil {
		st = &podCertState{}
		m.creds[k] = st
	}
	m.mu.Unlock()
	// One pod's syncs do not run concurrently (its worker holds it): st is the pod's.
	now := m.now()
	valid := st.issued != nil && now.Before(st.issued.notAfter)
	if st.issued != nil && now.Before(st.issued.refresh) {
		return st.issued.key, st.issued.chain, nil
	}
	if st.refused == nil && st.pending != "" {
		if err := m.collect(ctx, pod.Namespace, st); err != nil && !valid {
			return nil, nil, err
		}
		if st.issued != nil && now.Before(st.issued.refresh) {
			return st.issued.key, st.issued.chain, nil
		}
	}
	if st.refused == nil && st.pending == "" {
		if err := m.request(ctx, pod, st, p); err != nil && !valid {
			return nil, nil, err
		}
	}
	if valid {
		return st.issued.key, st.issued.chain, nil // until the new ones are issued
	}
	if st.refused != nil {
		return nil, nil, st.refused
	}
	return nil, nil, fmt.Errorf("PodCertificateRequest %s/%s is pending (signer %q)", pod.Namespace, st.pending, p.SignerName)
}

// collect reads st's pending request: issued, its credential replaces st's; denied or
// failed, st is refused; gone, a new one will be made.
func (m *podCertManager) collect(ctx context.Context, namespace string, st *podCertState) error {
	pcr, err := m.pcrs.Get(ctx, namespace, st.pending)
	if client.IsNotFound(err) {
		st.pending, st.pendingKey = "", nil
		return nil
	}
	if err != nil {
		return fmt.Errorf("while getting PodCertificateRequest %s/%s: %w", namespace, st.pending, err)
	}
	for _, c := range pcr.Status.Conditions {
		if c.Status != metav1.ConditionTrue {
			continue
		}
		switch c.Type {
		case certificatesv1.PodCertificateRequestConditionTypeDenied, certificatesv1.PodCertificateRequestConditionTypeFailed:
			st.refused = fmt.Errorf("PodCertificateRequest %s/%s was %s by signer %q: %s: %s", namespace, pcr.Name,
				map[string]string{"Denied": "denied", "Failed": "failed"}[c.Type], pcr.Spec.SignerName, c.Reason, c.Message)
			st.pending, st.pendingKey = "", nil
			return st.refused
		case certificatesv1.PodCertificateRequestConditionTypeIssued:
			chain, err := certificatesOnly(pcr.Status.CertificateChain)
			if err != nil || pcr.Status.BeginRefreshAt == nil || pcr.Status.NotAfter == nil {
				return fmt.Errorf("PodCertificateRequest %s/%s: issued without a usable chain and times", namespace, pcr.Name)
			}
			st.issued = &podCredential{key: st.pendingKey, chain: chain, refresh: pcr.Status.BeginRefreshAt.Time, notAfter: pcr.Status.NotAfter.Time}
			st.pending, st.pendingKey = "", nil
			return nil
		}
	}
	return nil
}

// certificatesOnly is a chain's CERTIFICATE blocks without headers or the data between
// them, as Kubernetes' kubelet projects it.
func certificatesOnly(chain string) ([]byte, error) {
	var out []byte
	rest := []byte(chain)
	for {
		var b *pem.Block
		if b, rest = pem.Decode(rest); b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("chain has a %s block", b.Type)
		}
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: b.Bytes})...)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("chain has no certificate")
	}
	return out, nil
}

// request makes a new key and asks p's signer for a certificate for it.
func (m *podCertManager) request(ctx context.Context, pod *corev1.Pod, st *podCertState, p *corev1.PodCertificateProjection) error {
	priv, err := generatePodKey(p.KeyType)
	if err != nil {
		return err
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return fmt.Errorf("while marshaling private key: %w", err)
	}
	stub, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{}, priv)
	if err != nil {
		return fmt.Errorf("while making the stub PKCS#10 request: %w", err)
	}
	nodeUID, err := m.nodeUID(ctx)
	if err != nil {
		return fmt.Errorf("while getting node %q: %w", m.node, err)
	}
	accountUID, err := m.accountUID(ctx, pod.Namespace, pod.Spec.ServiceAccountName)
	if err != nil {
		return fmt.Errorf("while getting service account %s/%s: %w", pod.Namespace, pod.Spec.ServiceAccountName, err)
	}
	pcr := &certificatesv1.PodCertificateRequest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:    pod.Namespace,
			GenerateName: pod.Name + "-",
			// The request goes with its pod.
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID, Controller: new(false)}},
		},
		Spec: certificatesv1.PodCertificateRequestSpec{
			SignerName:                p.SignerName,
			PodName:                   pod.Name,
			PodUID:                    pod.UID,
			ServiceAccountName:        pod.Spec.ServiceAccountName,
			ServiceAccountUID:         accountUID,
			NodeName:                  types.NodeName(m.node),
			NodeUID:                   nodeUID,
			MaxExpirationSeconds:      p.MaxExpirationSeconds,
			StubPKCS10Request:         stub,
			UnverifiedUserAnnotations: p.UserAnnotations,
		},
	}
	out, err := m.pcrs.Create(ctx, pcr)
	if err != nil {
		return fmt.Errorf("while creating PodCertificateRequest: %w", err)
	}
	st.pending = out.Name
	st.pendingKey = pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
	return nil
}

// generatePodKey makes a private key of one of the projection's key types.
func generatePodKey(keyType string) (crypto.Signer, error) {
	switch keyType {
	case "RSA3072":
		return rsa.GenerateKey(rand.Reader, 3072)
	case "RSA4096":
		return rsa.GenerateKey(rand.Reader, 4096)
	case "ECDSAP256":
		return ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "ECDSAP384":
		return ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	case "ECDSAP521":
		return ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	case "ED25519":
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		return priv, err
	}
	return nil, fmt.Errorf("unknown key type %q", keyType)
}

// forget drops the credentials of pod uid.
func (m *podCertManager) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	maps.DeleteFunc(m.creds, func(k podCertKey, _ *podCertState) bool { return k.uid == uid })
}
