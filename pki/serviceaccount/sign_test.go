package serviceaccount

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// TestIssueSignsClaimsOnce: a token's header and payload are what go-jose's jwt builder
// makes of the same claims (its payload read back as JSON), and the verifier takes it;
// the claims go to JSON once, not three times, and the token is put together once.
func TestIssueSignsClaimsOnce(t *testing.T) {
	is, v := newKeys(t)
	now := time.Date(2026, 12, 5, 21, 0, 0, 0, time.UTC)
	b := Binding{Namespace: "ns1", ServiceAccount: Ref{Name: "robot", UID: "sa-uid"}, Pod: &Ref{Name: "p", UID: "pod-uid"},
		Node: &Ref{Name: "w1", UID: "node-uid"}, Audiences: []string{DefaultIssuer}, Expiration: time.Hour}
	tok, _, err := is.Issue(b, now)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(tok, now.Add(time.Minute)); err != nil {
		t.Fatalf("verify: %v", err)
	}
	var c Claims
	parts := strings.Split(tok, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	built, err := jwt.Signed(is.signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	bparts := strings.Split(built, ".")
	for i, what := range []string{"header", "payload"} {
		var got, want map[string]any
		for _, d := range []struct {
			part string
			into *map[string]any
		}{{parts[i], &got}, {bparts[i], &want}} {
			raw, err := base64.RawURLEncoding.DecodeString(d.part)
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(raw, d.into); err != nil {
				t.Fatal(err)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s %v, the jwt builder's %v", what, got, want)
		}
	}
	// 301 allocations a token through the jwt builder, 146 through go-jose's signer, 87
	// now.
	if allocs := testing.AllocsPerRun(100, func() { is.Issue(b, now) }); allocs > 100 {
		t.Errorf("a token allocated %v times, want at most 100", allocs)
	}
}

// BenchmarkIssue: a pod's token, as the API server issues one for each pod's
// kube-api-access volume.
func BenchmarkIssue(b *testing.B) {
	dir := b.TempDir()
	key, pub := filepath.Join(dir, SigningKeyFile), filepath.Join(dir, PublicKeyFile)
	if _, err := GenerateKey(key, pub); err != nil {
		b.Fatal(err)
	}
	signer, err := LoadSigningKey(key)
	if err != nil {
		b.Fatal(err)
	}
	is, err := NewIssuer(DefaultIssuer, signer)
	if err != nil {
		b.Fatal(err)
	}
	now := time.Date(2026, 12, 5, 21, 0, 0, 0, time.UTC)
	bd := Binding{Namespace: "ns1", ServiceAccount: Ref{Name: "robot", UID: "sa-uid"}, Pod: &Ref{Name: "p", UID: "pod-uid"},
		Node: &Ref{Name: "w1", UID: "node-uid"}, Audiences: []string{DefaultIssuer}, Expiration: time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := is.Issue(bd, now); err != nil {
			b.Fatal(err)
		}
	}
}

// TestIssueSignaturesAsJWSWants: an ES256 token's signature is r and s of 32 bytes each
// (RFC 7518 3.4, not ASN.1), an RS256 token's PKCS #1 v1.5; the verifier takes both,
// and refuses a token whose signature is another key's.
func TestIssueSignaturesAsJWSWants(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 18, 0, 0, 0, time.UTC)
	b := Binding{Namespace: "ns1", ServiceAccount: Ref{Name: "robot", UID: "sa-uid"}, Audiences: []string{DefaultIssuer}, Expiration: time.Hour}
	for _, tc := range []struct {
		name   string
		key    crypto.Signer
		sigLen int
	}{{"ES256", ec, 64}, {"RS256", rs, 256}} {
		is, err := NewIssuer(DefaultIssuer, tc.key)
		if err != nil {
			t.Fatal(err)
		}
		tok, _, err := is.Issue(b, now)
		if err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(tok, ".")
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil || len(sig) != tc.sigLen {
			t.Errorf("%s: a signature of %d bytes (%v), want %d", tc.name, len(sig), err, tc.sigLen)
		}
		v, err := NewVerifier([]crypto.PublicKey{tc.key.Public()}, []string{DefaultIssuer}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := v.Verify(tok, now.Add(time.Minute)); err != nil {
			t.Errorf("%s: verify: %v", tc.name, err)
		}
		wrong, err := NewVerifier([]crypto.PublicKey{other.Public()}, []string{DefaultIssuer}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := wrong.Verify(tok, now.Add(time.Minute)); err == nil {
			t.Errorf("%s: another key's verifier took the token", tc.name)
		}
	}
}
