package auth

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"
)

// User is an authenticated identity: a name, its groups and, as Kubernetes' user info
// has them, a uid and extra fields (a bound service-account token's pod and node, an
// impersonated user's Impersonate-Extra-* headers).
type User struct {
	Name   string
	Groups []string
	UID    string
	Extra  map[string][]string
}

// InGroup reports whether u is in group g.
func (u User) InGroup(g string) bool {
	for _, x := range u.Groups {
		if x == g {
			return true
		}
	}
	return false
}

// Credentials are what a request presents.
type Credentials struct {
	// Chain is the client certificate chain, leaf first (unverified).
	Chain []*x509.Certificate
	// BearerToken is the token of an "authorization: Bearer ..." header.
	BearerToken string
}

// ErrNoCredentials says a request presented neither certificate nor token.
var ErrNoCredentials = errors.New("no client certificate or bearer token presented")

// Authenticator finds the identity of a request: a client certificate that chains to
// Roots, or else a bearer token in Tokens.
type Authenticator struct {
	// Roots returns the CA bundle client certificates must chain to; nil refuses
	// certificates.
	Roots func() (*x509.CertPool, error)
	// Tokens are the known bearer tokens; nil refuses tokens.
	Tokens *Tokens
	// ServiceAccounts authenticates the bearer tokens not in Tokens (service-account
	// tokens); nil refuses them.
	ServiceAccounts TokenAuthenticator
	// Now is the clock for certificate validity (default time.Now).
	Now func() time.Time

	// verified remembers the certificates found valid, so that a connection's requests
	// pay for verifying its chain once, not each (a chain's signatures cost more than
	// the rest of a small request). An entry holds while the CA bundle is the same
	// (checked at most once a second) and the chain is still valid.
	mu       sync.Mutex
	verified map[*x509.Certificate]verifiedCert
}

type verifiedCert struct {
	user     User
	roots    *x509.CertPool
	notAfter time.Time // of the chain's first certificate to expire
	checked  time.Time // when roots was last found current
}

// maxVerified bounds the remembered certificates: a connection's certificate is one
// entry, so this is more connections than a server holds.
const maxVerified = 16384

// Authenticate returns the identity of c, or an error that says why there is none. A
// certificate, when presented, must be valid: a bad certificate is not excused by a token.
//
// Every identity found is in system:authenticated, as in Kubernetes (RBAC's default
// roles bind to it).
func (a *Authenticator) Authenticate(c Credentials) (User, error) {
	u, err := a.authenticate(c)
	if err != nil || u.InGroup(GroupAuthenticated) {
		return u, err
	}
	return authenticated(u), nil
}

// authenticated is u in system:authenticated (a copy: u's groups are not written).
func authenticated(u User) User {
	u.Groups = append(slices.Clip(u.Groups), GroupAuthenticated)
	return u
}

func (a *Authenticator) authenticate(c Credentials) (User, error) {
	if len(c.Chain) > 0 && a.Roots != nil {
		return a.certificate(c.Chain)
	}
	if c.BearerToken != "" {
		if a.Tokens == nil && a.ServiceAccounts == nil {
			return User{}, errors.New("bearer tokens are not accepted (no --token-file, no --service-account-key-file)")
		}
		if a.Tokens != nil {
			if u, ok := a.Tokens.Lookup(c.BearerToken); ok {
				return u, nil
			}
		}
		if a.ServiceAccounts != nil {
			u, found, err := a.ServiceAccounts.AuthenticateToken(c.BearerToken)
			switch {
			case err != nil:
				return User{}, err
			case found:
				return u, nil
			}
		}
		return User{}, errors.New("invalid bearer token")
	}
	return User{}, ErrNoCredentials
}

// TokenAuthenticator authenticates bearer tokens of another kind than the token file's
// (service-account tokens). found is false for a token that is not of its kind; err
// says why one of its kind is refused.
type TokenAuthenticator interface {
	AuthenticateToken(token string) (u User, found bool, err error)
}

func (a *Authenticator) certificate(chain []*x509.Certificate) (User, error) {
	now := time.Now()
	if a.Now != nil {
		now = a.Now()
	}
	leaf := chain[0]
	// The certificates of a connection are the same objects on each of its requests.
	// Whether the CA bundle changed is asked at most once a second per certificate
	// (it reads the file's status), by one request: the first after the second has
	// passed marks the entry checked before it asks, and the connection's other
	// requests meanwhile keep the verdict, instead of each asking in turn (a hundred
	// requests in flight on one connection queued on the bundle's lock, once a second).
	a.mu.Lock()
	v, ok := a.verified[leaf]
	ok = ok && len(chain) == 1 && now.Before(v.notAfter)
	if ok && now.Sub(v.checked) < time.Second && !now.Before(v.checked) {
		a.mu.Unlock()
		return v.user, nil
	}
	if ok {
		claimed := v
		claimed.checked = now
		a.verified[leaf] = claimed
	}
	a.mu.Unlock()
	roots, err := a.Roots()
	if ok && (err != nil || v.roots != roots) {
		a.forget(leaf) // not kept for the others: verified anew (below, or by the next)
	}
	if err != nil {
		return User{}, fmt.Errorf("client certificate: %w", err)
	}
	if ok && v.roots == roots {
		return v.user, nil
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}})
	if err != nil {
		return User{}, fmt.Errorf("client certificate %q: %w", leaf.Subject.CommonName, err)
	}
	if leaf.Subject.CommonName == "" {
		return User{}, errors.New("client certificate without a common name")
	}
	u := authenticated(User{Name: leaf.Subject.CommonName, Groups: leaf.Subject.Organization})
	if len(chain) == 1 {
		v := verifiedCert{user: u, roots: roots, notAfter: leaf.NotAfter, checked: now}
		for _, c := range chains[0] {
			if c.NotAfter.Before(v.notAfter) {
				v.notAfter = c.NotAfter
			}
		}
		a.remember(leaf, v)
	}
	return u, nil
}

func (a *Authenticator) forget(leaf *x509.Certificate) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.verified, leaf)
}

func (a *Authenticator) remember(leaf *x509.Certificate, v verifiedCert) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.verified == nil || len(a.verified) >= maxVerified {
		a.verified = map[*x509.Certificate]verifiedCert{}
	}
	a.verified[leaf] = v
}

// Tokens are bearer tokens known by their SHA-256 hash: a stolen token file does not
// give the tokens away.
type Tokens struct {
	entries []tokenEntry
}

type tokenEntry struct {
	hash [sha256.Size]byte
	user User
}

// HashToken is the hex SHA-256 of a token, as a token file holds it.
func HashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// ParseTokens reads a token file: one "sha256hex,user,group[,group...]" per line; blank
// lines and lines starting with # are skipped.
func ParseTokens(text string) (*Tokens, error) {
	t := &Tokens{}
	sc := bufio.NewScanner(strings.NewReader(text))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		parts := strings.Split(line, ",")
		if len(parts) < 2 {
			return nil, fmt.Errorf("line %d: want sha256hex,user,group", n)
		}
		for i := range parts {
			parts[i] = strings.TrimSpace(parts[i])
		}
		raw, err := hex.DecodeString(parts[0])
		if err != nil || len(raw) != sha256.Size {
			return nil, fmt.Errorf("line %d: %q is not a hex SHA-256 hash (64 hex digits)", n, parts[0])
		}
		if parts[1] == "" {
			return nil, fmt.Errorf("line %d: the user is empty", n)
		}
		e := tokenEntry{user: User{Name: parts[1]}}
		copy(e.hash[:], raw)
		for _, g := range parts[2:] {
			if g != "" {
				e.user.Groups = append(e.user.Groups, g)
			}
		}
		e.user = authenticated(e.user)
		t.entries = append(t.entries, e)
	}
	return t, sc.Err()
}

// LoadTokens reads a token file.
func LoadTokens(path string) (*Tokens, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	t, err := ParseTokens(string(b))
	if err != nil {
		return nil, fmt.Errorf("token file %s: %w", path, err)
	}
	return t, nil
}

// Lookup finds a token's user. It compares against every entry in constant time, so
// the time taken says nothing about which hash is near.
func (t *Tokens) Lookup(token string) (User, bool) {
	h := sha256.Sum256([]byte(token))
	found := -1
	for i := range t.entries {
		if subtle.ConstantTimeCompare(h[:], t.entries[i].hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return User{}, false
	}
	return t.entries[found].user, true
}
