package serviceaccount

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func newKeys(t *testing.T) (*Issuer, *Verifier) {
	is, v, _ := newKeysSigner(t)
	return is, v
}

func newKeysSigner(t *testing.T) (*Issuer, *Verifier, crypto.Signer) {
	t.Helper()
	dir := t.TempDir()
	key, pub := filepath.Join(dir, SigningKeyFile), filepath.Join(dir, PublicKeyFile)
	if _, err := GenerateKey(key, pub); err != nil {
		t.Fatal(err)
	}
	if _, err := GenerateKey(key, pub); err == nil {
		t.Fatal("GenerateKey replaced an existing key")
	}
	signer, err := LoadSigningKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := LoadPublicKeys(pub)
	if err != nil {
		t.Fatal(err)
	}
	is, err := NewIssuer(DefaultIssuer, signer)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(keys, []string{DefaultIssuer}, nil)
	if err != nil {
		t.Fatal(err)
	}
	return is, v, signer
}

func TestTokenClaims(t *testing.T) {
	is, v := newKeys(t)
	now := time.Date(2026, 12, 5, 21, 0, 0, 0, time.UTC)
	b := Binding{Namespace: "ns1", ServiceAccount: Ref{Name: "robot", UID: "sa-uid"}, Pod: &Ref{Name: "p", UID: "pod-uid"},
		Node: &Ref{Name: "w1", UID: "node-uid"}, Audiences: []string{DefaultIssuer}, Expiration: time.Hour}
	tok, exp, err := is.Issue(b, now)
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(time.Hour)) {
		t.Errorf("expiry %v", exp)
	}
	// The payload, as any JWT reader sees it: Kubernetes' claim names.
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var raw map[string]any
	if err := json.Unmarshal(payload, &raw); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "kubernetes.io"} {
		if _, ok := raw[k]; !ok {
			t.Errorf("claim %q missing from %s", k, payload)
		}
	}
	if raw["sub"] != "system:serviceaccount:ns1:robot" {
		t.Errorf("sub = %v", raw["sub"])
	}
	k8s := raw["kubernetes.io"].(map[string]any)
	if k8s["namespace"] != "ns1" || k8s["pod"].(map[string]any)["uid"] != "pod-uid" ||
		k8s["serviceaccount"].(map[string]any)["name"] != "robot" || k8s["node"].(map[string]any)["name"] != "w1" {
		t.Errorf("kubernetes.io = %v", k8s)
	}
	c, err := v.Verify(tok, now.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if ns, name, uid := c.Account(); ns != "ns1" || name != "robot" || uid != "sa-uid" {
		t.Errorf("account %s/%s %s", ns, name, uid)
	}
	if c.Kubernetes.Pod.UID != "pod-uid" {
		t.Errorf("pod %v", c.Kubernetes.Pod)
	}
}

func TestTokenRefused(t *testing.T) {
	is, v, signer := newKeysSigner(t)
	other, _ := newKeys(t)
	now := time.Now()
	b := Binding{Namespace: "ns1", ServiceAccount: Ref{Name: "robot", UID: "u"}, Audiences: []string{DefaultIssuer}, Expiration: MinExpiration}
	good, _, err := is.Issue(b, now)
	if err != nil {
		t.Fatal(err)
	}
	forged, _, _ := other.Issue(b, now)
	b2 := b
	b2.Audiences = []string{"vault"}
	wrongAud, _, _ := is.Issue(b2, now)
	otherIssuer, _ := NewIssuer("https://elsewhere", signer)
	foreign, _, _ := otherIssuer.Issue(b, now)
	for _, tc := range []struct {
		name, tok string
		at        time.Time
		want      string
	}{
		{"expired", good, now.Add(MinExpiration + 2*time.Minute), "expired"},
		{"not yet valid", good, now.Add(-5 * time.Minute), "not valid yet"},
		{"another key", forged, now, "signature"},
		{"another audience", wrongAud, now, "audiences"},
		{"another issuer", foreign, now, ErrNotServiceAccount.Error()},
		{"not a JWT", "abc.def.ghi", now, ErrNotServiceAccount.Error()},
	} {
		_, err := v.Verify(tc.tok, tc.at)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want %q", tc.name, err, tc.want)
		}
	}
	if _, err := v.Verify(good, now); err != nil {
		t.Errorf("good token: %v", err)
	}
}

func TestLegacyToken(t *testing.T) {
	is, v := newKeys(t)
	tok, err := is.IssueLegacy("ns1", "robot", "sa-uid", "robot-token")
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(tok, time.Now().Add(100*365*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Legacy() || c.LegacySecret != "robot-token" {
		t.Errorf("claims %+v", c)
	}
	if ns, name, uid := c.Account(); ns != "ns1" || name != "robot" || uid != "sa-uid" {
		t.Errorf("account %s/%s %s", ns, name, uid)
	}
}
