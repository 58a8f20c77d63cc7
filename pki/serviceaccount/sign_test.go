package serviceaccount

import (
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
)

// TestIssueSignsClaimsOnce: a token's header and payload are what go-jose's jwt builder
// makes of the same claims (its payload read back as JSON), and the verifier takes it;
// the claims go to JSON once, not three times (301 allocations a token before, 146).
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
	if allocs := testing.AllocsPerRun(100, func() { is.Issue(b, now) }); allocs > 200 {
		t.Errorf("a token allocated %v times, want at most 200", allocs)
	}
}
