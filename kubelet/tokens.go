package kubelet

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/client"
)

// tokenManager gets the service-account tokens of pods' serviceAccountToken
// projections, as Kubernetes' kubelet token manager does: a TokenRequest for the pod's
// account, bound to the pod, kept and reused until 80% of its life has passed (or 24
// hours), then requested anew; the volume's next sync writes the new one. A pod's
// tokens are forgotten when the pod is cleaned up.
type tokenManager struct {
	request func(ctx context.Context, namespace, name string, tr *authenticationv1.TokenRequest) (*authenticationv1.TokenRequest, error)
	now     func() time.Time

	mu     sync.Mutex
	tokens map[tokenKey]tokenEntry
}

type tokenKey struct {
	uid               types.UID
	account, audience string
	seconds           int64
}

type tokenEntry struct {
	token         string
	issued, renew time.Time
}

// maxTokenAge is the oldest a kept token may be, whatever its life (Kubernetes' 24h).
const maxTokenAge = 24 * time.Hour

func newTokenManager(conn *client.Conn, now func() time.Time) *tokenManager {
	return &tokenManager{request: conn.CreateToken, now: now, tokens: map[tokenKey]tokenEntry{}}
}

// token is the token of projection p for pod.
func (m *tokenManager) token(ctx context.Context, pod *corev1.Pod, p *corev1.ServiceAccountTokenProjection) (string, error) {
	seconds := int64(3600)
	if p.ExpirationSeconds != nil {
		seconds = *p.ExpirationSeconds
	}
	k := tokenKey{uid: pod.UID, account: pod.Spec.ServiceAccountName, audience: p.Audience, seconds: seconds}
	now := m.now()
	m.mu.Lock()
	e, ok := m.tokens[k]
	m.mu.Unlock()
	if ok && now.Before(e.renew) {
		return e.token, nil
	}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{
		ExpirationSeconds: &seconds,
		BoundObjectRef:    &authenticationv1.BoundObjectReference{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID},
	}}
	if p.Audience != "" {
		tr.Spec.Audiences = []string{p.Audience}
	}
	out, err := m.request(ctx, pod.Namespace, pod.Spec.ServiceAccountName, tr)
	if err != nil {
		if ok && now.Before(e.issued.Add(time.Duration(seconds)*time.Second)) {
			return e.token, nil // the kept one is still valid: try again at the next sync
		}
		return "", fmt.Errorf("failed to fetch token: %w", err)
	}
	issued := out.CreationTimestamp.Time
	if issued.IsZero() || issued.After(now) {
		issued = now
	}
	life := out.Status.ExpirationTimestamp.Sub(issued)
	renew := issued.Add(min(life*8/10, maxTokenAge))
	m.mu.Lock()
	m.tokens[k] = tokenEntry{token: out.Status.Token, issued: issued, renew: renew}
	m.mu.Unlock()
	return out.Status.Token, nil
}

// forget drops the tokens of pod uid.
func (m *tokenManager) forget(uid types.UID) {
	m.mu.Lock()
	defer m.mu.Unlock()
	maps.DeleteFunc(m.tokens, func(k tokenKey, _ tokenEntry) bool { return k.uid == uid })
}
