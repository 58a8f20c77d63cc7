package apiserver

import (
	"crypto/tls"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"

	"github.com/skiffhq/skiff/apiserver/auth"
)

// TestValidateRefusesPlainListenersOthersReach: without TLS, a server serves every
// request as an administrator, so it listens only where other hosts cannot reach it,
// unless told --insecure.
func TestValidateRefusesPlainListenersOthersReach(t *testing.T) {
	for _, tc := range []struct {
		name                   string
		listen, raft, http     string
		tls, peerTLS, insecure bool
		wantRefused            bool
	}{
		{name: "loopback", listen: "127.0.0.1:6443", raft: "127.0.0.1:7000", http: "127.0.0.1:8080"},
		{name: "localhost", listen: "localhost:6443", raft: "[::1]:7000"},
		{name: "the API on every address", listen: ":6443", raft: "127.0.0.1:7000", wantRefused: true},
		{name: "the API on 0.0.0.0", listen: "0.0.0.0:6443", raft: "127.0.0.1:7000", wantRefused: true},
		{name: "Raft on a host address", listen: "127.0.0.1:6443", raft: "10.0.0.1:7000", wantRefused: true},
		{name: "metrics on a host address", listen: "127.0.0.1:6443", raft: "127.0.0.1:7000", http: "10.0.0.1:8080", wantRefused: true},
		{name: "insecure on purpose", listen: "0.0.0.0:6443", raft: "0.0.0.0:7000", http: "0.0.0.0:8080", insecure: true},
		{name: "TLS", listen: "0.0.0.0:6443", raft: "0.0.0.0:7000", http: "0.0.0.0:8080", tls: true, peerTLS: true},
		{name: "TLS for clients, Raft plain on a host address", listen: "0.0.0.0:6443", raft: "10.0.0.1:7000", tls: true, wantRefused: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Name, c.DataDir, c.Listen, c.RaftListen, c.HTTPListen, c.Insecure = "n1", t.TempDir(), tc.listen, tc.raft, tc.http, tc.insecure
			if tc.tls {
				c.TLS, c.Tokens = &tls.Config{}, tokens(t, "t", "admin")
			}
			if tc.peerTLS {
				c.Store.PeerTLS = &tls.Config{}
			}
			err := c.Validate()
			if got := errors.Is(err, ErrInsecureListen); got != tc.wantRefused {
				t.Fatalf("Validate: %v; want refused %v", err, tc.wantRefused)
			}
		})
	}
}

// TestMetricsRequireAClient: where other hosts reach /metrics, only the cluster's
// clients read it.
func TestMetricsRequireAClient(t *testing.T) {
	g := &gate{authn: &auth.Authenticator{Tokens: tokens(t, "secret", "prometheus")},
		log: hclog.NewNullLogger(), refusals: rate.Sometimes{Interval: 1}}
	h := g.requireClient(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write([]byte("metrics")) }))
	for _, tc := range []struct {
		header string
		want   int
	}{{"", http.StatusUnauthorized}, {"Bearer wrong", http.StatusUnauthorized}, {"Bearer secret", http.StatusOK}} {
		r := httptest.NewRequest("GET", "/metrics", nil)
		if tc.header != "" {
			r.Header.Set("Authorization", tc.header)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tc.want {
			t.Errorf("Authorization %q: %d %s, want %d", tc.header, w.Code, w.Body, tc.want)
		}
	}
}

func tokens(t *testing.T, token, user string) *auth.Tokens {
	tk, err := auth.ParseTokens(auth.HashToken(token) + "," + user + ",skiff:admin\n")
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// TestValidateCertificateRenewal: the cluster CA's certificate and key come together, and
// the checks get their defaults.
func TestValidateCertificateRenewal(t *testing.T) {
	for _, tc := range []struct {
		name      string
		cert, key string
		wantErr   string
	}{
		{name: "neither"},
		{name: "both", cert: "ca.crt", key: "ca.key"},
		{name: "certificate only", cert: "ca.crt", wantErr: "--cluster-signing-cert-file and --cluster-signing-key-file go together"},
		{name: "key only", key: "ca.key", wantErr: "--cluster-signing-cert-file and --cluster-signing-key-file go together"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := DefaultConfig()
			c.Name, c.DataDir, c.Listen, c.RaftListen = "n1", t.TempDir(), "127.0.0.1:6443", "127.0.0.1:7000"
			c.SigningCertFile, c.SigningKeyFile = tc.cert, tc.key
			err := c.Validate()
			if tc.wantErr == "" {
				if err != nil || c.CertCheckInterval != time.Minute || c.CertExpiryWarning != 30*24*time.Hour {
					t.Fatalf("Validate: %v; check every %v, warn %v before", err, c.CertCheckInterval, c.CertExpiryWarning)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("Validate: %v; want %q", err, tc.wantErr)
			}
		})
	}
}
