// Package serviceaccount owns service-account tokens: the signing key's files (sa.key,
// sa.pub, as kubeadm names them), the JWTs an API server issues for a TokenRequest or a
// legacy kubernetes.io/service-account-token Secret, with Kubernetes' claims, and their
// verification (signature, issuer, audience, validity). It also renders what OIDC
// discovery serves: the issuer's configuration and its keys (JWKS).
//
// It does not decide whether the objects a token is bound to still exist (the API
// server does, from its cache), nor who may ask for a token (apiserver/auth). Keys are
// ECDSA P-256 (ES256), as the cluster's other keys; RSA keys (RS256), which Kubernetes
// clusters often carry, are read too.
package serviceaccount

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"k8s.io/apimachinery/pkg/util/uuid"
)

// Files of a certificate directory (skiff certs init).
const (
	// SigningKeyFile is the private key API servers sign tokens with
	// (--service-account-signing-key-file).
	SigningKeyFile = "sa.key"
	// PublicKeyFile is the public key they verify tokens with (--service-account-key-file).
	PublicKeyFile = "sa.pub"
)

// DefaultIssuer is the issuer (iss) of tokens when --service-account-issuer is not
// given: the in-cluster name of the API, as kubeadm's default.
const DefaultIssuer = "https://kubernetes.default.svc.cluster.local"

// LegacyIssuer is the issuer of the tokens of legacy kubernetes.io/service-account-token
// Secrets, as Kubernetes' token controller signs them.
const LegacyIssuer = "kubernetes/serviceaccount"

// Subject prefix and groups of service-account users.
const (
	UserPrefix    = "system:serviceaccount:"
	AllGroup      = "system:serviceaccounts"
	GroupPrefix   = "system:serviceaccounts:"
	Authenticated = "system:authenticated"
)

// UserName is the user of service account namespace/name.
func UserName(namespace, name string) string { return UserPrefix + namespace + ":" + name }

// Groups are the groups of a service account of namespace.
func Groups(namespace string) []string {
	return []string{AllGroup, GroupPrefix + namespace, Authenticated}
}

// GenerateKey writes a new signing key and its public key, refusing to replace an
// existing key (tokens signed with it would stop working). It returns the files written.
func GenerateKey(keyPath, pubPath string) ([]string, error) {
	if _, err := os.Stat(keyPath); err == nil {
		return nil, fmt.Errorf("service-account key: %s exists", keyPath)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	pubDER, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("service-account key: %w", err)
	}
	if err := writeFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		return nil, err
	}
	if err := writeFile(pubPath, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o644); err != nil {
		return []string{keyPath}, err
	}
	return []string{keyPath, pubPath}, nil
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// LoadSigningKey reads a private key (PKCS#8, SEC 1 or PKCS#1 PEM; ECDSA P-256 or RSA).
func LoadSigningKey(path string) (crypto.Signer, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("service-account signing key: %w", err)
	}
	for rest := b; ; {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return nil, fmt.Errorf("service-account signing key %s: no private key", path)
		}
		var k any
		switch block.Type {
		case "PRIVATE KEY":
			k, err = x509.ParsePKCS8PrivateKey(block.Bytes)
		case "EC PRIVATE KEY":
			k, err = x509.ParseECPrivateKey(block.Bytes)
		case "RSA PRIVATE KEY":
			k, err = x509.ParsePKCS1PrivateKey(block.Bytes)
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("service-account signing key %s: %w", path, err)
		}
		s, ok := k.(crypto.Signer)
		if !ok || algorithm(s.Public()) == "" {
			return nil, fmt.Errorf("service-account signing key %s: a %T key, want ECDSA P-256 or RSA", path, k)
		}
		return s, nil
	}
}

// LoadPublicKeys reads every public key of the files (public keys, certificates, or
// private keys whose public half is taken), as kube-apiserver's --service-account-key-file.
func LoadPublicKeys(paths ...string) ([]crypto.PublicKey, error) {
	var out []crypto.PublicKey
	for _, path := range paths {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("service-account key: %w", err)
		}
		n := len(out)
		for rest := b; ; {
			var block *pem.Block
			if block, rest = pem.Decode(rest); block == nil {
				break
			}
			var pub crypto.PublicKey
			switch block.Type {
			case "PUBLIC KEY":
				pub, err = x509.ParsePKIXPublicKey(block.Bytes)
			case "RSA PUBLIC KEY":
				pub, err = x509.ParsePKCS1PublicKey(block.Bytes)
			case "CERTIFICATE":
				var c *x509.Certificate
				if c, err = x509.ParseCertificate(block.Bytes); err == nil {
					pub = c.PublicKey
				}
			case "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY":
				var s crypto.Signer
				if s, err = LoadSigningKey(path); err == nil {
					pub = s.Public()
				}
			default:
				continue
			}
			if err != nil {
				return nil, fmt.Errorf("service-account key %s: %w", path, err)
			}
			if algorithm(pub) == "" {
				return nil, fmt.Errorf("service-account key %s: a %T key, want ECDSA P-256 or RSA", path, pub)
			}
			out = append(out, pub)
		}
		if len(out) == n {
			return nil, fmt.Errorf("service-account key %s: no public key", path)
		}
	}
	return out, nil
}

// algorithm is the JWS algorithm of a public key ("" for one not supported).
func algorithm(pub crypto.PublicKey) jose.SignatureAlgorithm {
	switch k := pub.(type) {
	case *ecdsa.PublicKey:
		if k.Curve == elliptic.P256() {
			return jose.ES256
		}
	case *rsa.PublicKey:
		return jose.RS256
	}
	return ""
}

// KeyID is the kid of a public key, as Kubernetes makes it: the unpadded base64url
// SHA-256 of its PKIX DER encoding.
func KeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}

// Ref names an object a token is bound to.
type Ref struct {
	Name string `json:"name,omitempty"`
	UID  string `json:"uid,omitempty"`
}

// Kubernetes is the "kubernetes.io" claim of a bound token.
type Kubernetes struct {
	Namespace      string           `json:"namespace,omitempty"`
	ServiceAccount Ref              `json:"serviceaccount"`
	Pod            *Ref             `json:"pod,omitempty"`
	Secret         *Ref             `json:"secret,omitempty"`
	Node           *Ref             `json:"node,omitempty"`
	WarnAfter      *jwt.NumericDate `json:"warnafter,omitempty"`
}

// Claims are a token's claims: the registered ones and Kubernetes'.
type Claims struct {
	jwt.Claims
	Kubernetes *Kubernetes `json:"kubernetes.io,omitempty"`
	// The claims of a legacy Secret's token (no kubernetes.io).
	LegacyNamespace  string `json:"kubernetes.io/serviceaccount/namespace,omitempty"`
	LegacySecret     string `json:"kubernetes.io/serviceaccount/secret.name,omitempty"`
	LegacyAccount    string `json:"kubernetes.io/serviceaccount/service-account.name,omitempty"`
	LegacyAccountUID string `json:"kubernetes.io/serviceaccount/service-account.uid,omitempty"`
}

// Legacy reports whether c is a legacy Secret's token.
func (c *Claims) Legacy() bool { return c.Kubernetes == nil && c.LegacySecret != "" }

// Account is the namespace, name and uid of the service account c is of.
func (c *Claims) Account() (namespace, name, uid string) {
	if c.Kubernetes != nil {
		return c.Kubernetes.Namespace, c.Kubernetes.ServiceAccount.Name, c.Kubernetes.ServiceAccount.UID
	}
	return c.LegacyNamespace, c.LegacyAccount, c.LegacyAccountUID
}

// The extra fields of a service account's user info, as Kubernetes sets them from a
// bound token's claims (kubectl auth whoami shows them).
const (
	ExtraPodName      = "authentication.kubernetes.io/pod-name"
	ExtraPodUID       = "authentication.kubernetes.io/pod-uid"
	ExtraNodeName     = "authentication.kubernetes.io/node-name"
	ExtraNodeUID      = "authentication.kubernetes.io/node-uid"
	ExtraCredentialID = "authentication.kubernetes.io/credential-id"
)

// Extra is the user info's extra fields of a bound token (nil for a legacy one): the
// pod it is bound to, that pod's node, and its credential id (JTI=jti).
func (c *Claims) Extra() map[string][]string {
	k := c.Kubernetes
	if k == nil {
		return nil
	}
	extra := map[string][]string{}
	if k.Pod != nil && k.Pod.Name != "" && k.Pod.UID != "" {
		extra[ExtraPodName], extra[ExtraPodUID] = []string{k.Pod.Name}, []string{k.Pod.UID}
	}
	if c.ID != "" {
		extra[ExtraCredentialID] = []string{"JTI=" + c.ID}
	}
	if k.Node != nil && k.Node.Name != "" {
		extra[ExtraNodeName] = []string{k.Node.Name}
		if k.Node.UID != "" {
			extra[ExtraNodeUID] = []string{k.Node.UID}
		}
	}
	if len(extra) == 0 {
		return nil
	}
	return extra
}

// Binding is what a bound token is for.
type Binding struct {
	Namespace         string
	ServiceAccount    Ref
	Pod, Secret, Node *Ref
	Audiences         []string
	// Expiration is the token's life.
	Expiration time.Duration
}

// MinExpiration is the shortest life a TokenRequest may ask for (Kubernetes' 10 min).
const MinExpiration = 10 * time.Minute

// Issuer signs tokens.
type Issuer struct {
	iss string
	alg jose.SignatureAlgorithm
	// signer is go-jose's signer of the same key, the one that made header.
	signer jose.Signer
	// key signs; header is the tokens' encoded protected header (alg, kid, typ), the
	// same for every token.
	key    crypto.Signer
	header string
}

// NewIssuer makes an Issuer signing with key as iss.
func NewIssuer(iss string, key crypto.Signer) (*Issuer, error) {
	alg := algorithm(key.Public())
	if alg == "" {
		return nil, fmt.Errorf("service-account signing key: a %T key, want ECDSA P-256 or RSA", key)
	}
	kid, err := KeyID(key.Public())
	if err != nil {
		return nil, err
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, fmt.Errorf("service-account signer: %w", err)
	}
	// The header as go-jose writes it, taken from a token it signed.
	jws, err := signer.Sign([]byte("{}"))
	if err != nil {
		return nil, fmt.Errorf("service-account signer: %w", err)
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		return nil, fmt.Errorf("service-account signer: %w", err)
	}
	header, _, _ := strings.Cut(compact, ".")
	return &Issuer{iss: iss, alg: alg, signer: signer, key: key, header: header}, nil
}

// Issue signs a token for b, valid from now; it returns the token and its expiry.
func (is *Issuer) Issue(b Binding, now time.Time) (string, time.Time, error) {
	exp := now.Add(b.Expiration)
	c := Claims{
		Claims: jwt.Claims{
			Issuer: is.iss, Subject: UserName(b.Namespace, b.ServiceAccount.Name), Audience: jwt.Audience(b.Audiences),
			Expiry: jwt.NewNumericDate(exp), IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
			ID: string(uuid.NewUUID()),
		},
		Kubernetes: &Kubernetes{Namespace: b.Namespace, ServiceAccount: b.ServiceAccount, Pod: b.Pod, Secret: b.Secret, Node: b.Node},
	}
	tok, err := is.sign(&c)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok, exp, nil
}

// sign makes the compact JWS (RFC 7515) of c's JSON: the header made once, the
// payload, and the signature of both, base64url without padding. go-jose's jwt builder
// makes the same payload the long way (c to JSON, back to a map, the map to JSON
// again), and its signer writes the same header again for every token and keeps each
// part twice: a third, then a sixth, of a pod's token's CPU on the API server, one
// token a pod.
func (is *Issuer) sign(c *Claims) (string, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	enc := base64.RawURLEncoding
	n := len(is.header) + 1 + enc.EncodedLen(len(payload))
	tok := make([]byte, 0, n+1+enc.EncodedLen(512)) // room for an RSA-4096 signature
	tok = append(tok, is.header...)
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, payload)
	digest := sha256.Sum256(tok)
	sig, err := is.signature(digest[:])
	if err != nil {
		return "", fmt.Errorf("sign token: %w", err)
	}
	tok = append(tok, '.')
	tok = enc.AppendEncode(tok, sig)
	return string(tok), nil
}

// signature signs a SHA-256 digest as the issuer's algorithm wants it: ES256 as r and s
// of 32 bytes each (RFC 7518 3.4), RS256 as PKCS #1 v1.5.
func (is *Issuer) signature(digest []byte) ([]byte, error) {
	if is.alg == jose.RS256 {
		return is.key.Sign(rand.Reader, digest, crypto.SHA256)
	}
	der, err := is.key.Sign(rand.Reader, digest, crypto.SHA256) // ASN.1, as crypto.Signer's ECDSA keys sign
	if err != nil {
		return nil, err
	}
	var sig struct{ R, S *big.Int }
	if rest, err := asn1.Unmarshal(der, &sig); err != nil || len(rest) > 0 {
		return nil, fmt.Errorf("ECDSA signature: not ASN.1 (%v)", err)
	}
	out := make([]byte, 64)
	sig.R.FillBytes(out[:32])
	sig.S.FillBytes(out[32:])
	return out, nil
}

// IssueLegacy signs the never-expiring token of a legacy Secret secret of account
// namespace/name (uid), as Kubernetes' token controller does.
func (is *Issuer) IssueLegacy(namespace, account, uid, secret string) (string, error) {
	c := Claims{
		Claims:          jwt.Claims{Issuer: LegacyIssuer, Subject: UserName(namespace, account)},
		LegacyNamespace: namespace, LegacySecret: secret, LegacyAccount: account, LegacyAccountUID: uid,
	}
	return is.sign(&c)
}

// Verifier checks tokens.
type Verifier struct {
	keys map[string]crypto.PublicKey // by kid
	all  []crypto.PublicKey
	algs []jose.SignatureAlgorithm
	// Issuers are the accepted iss values of bound tokens (the first is the one issued).
	issuers []string
	// Audiences are the audiences the server accepts (default: the issuers).
	audiences []string
}

// NewVerifier accepts tokens signed by one of keys, issued by one of issuers for one of
// audiences (none: the issuers), and legacy Secrets' tokens.
func NewVerifier(keys []crypto.PublicKey, issuers, audiences []string) (*Verifier, error) {
	if len(keys) == 0 {
		return nil, errors.New("service-account verifier: no public key")
	}
	if len(audiences) == 0 {
		audiences = issuers
	}
	v := &Verifier{keys: map[string]crypto.PublicKey{}, all: keys, issuers: issuers, audiences: audiences}
	for _, k := range keys {
		kid, err := KeyID(k)
		if err != nil {
			return nil, err
		}
		v.keys[kid] = k
		if a := algorithm(k); !slices.Contains(v.algs, a) {
			v.algs = append(v.algs, a)
		}
	}
	return v, nil
}

// Audiences are the audiences the verifier accepts: a TokenRequest's default.
func (v *Verifier) Audiences() []string { return v.audiences }

// ErrNotServiceAccount says a bearer token is not a JWT of one of the verifier's issuers:
// another authenticator may know it.
var ErrNotServiceAccount = errors.New("not a service-account token")

// LooksLikeJWT reports whether a bearer token has a JWT's shape (three dot-separated
// parts), before any parsing.
func LooksLikeJWT(token string) bool { return strings.Count(token, ".") == 2 }

// Verify checks token's signature, issuer, audience and validity at now and returns
// its claims. A token that is not a JWT of one of the verifier's issuers is
// ErrNotServiceAccount.
func (v *Verifier) Verify(token string, now time.Time) (*Claims, error) {
	tok, err := jwt.ParseSigned(token, v.algs)
	if err != nil {
		return nil, ErrNotServiceAccount
	}
	// The issuer first, unverified, as Kubernetes does: a JWT of another issuer is
	// another authenticator's.
	var unsafe jwt.Claims
	if err := tok.UnsafeClaimsWithoutVerification(&unsafe); err != nil {
		return nil, ErrNotServiceAccount
	}
	if unsafe.Issuer != LegacyIssuer && !slices.Contains(v.issuers, unsafe.Issuer) {
		return nil, ErrNotServiceAccount
	}
	var c Claims
	verified := false
	kid := ""
	if len(tok.Headers) > 0 {
		kid = tok.Headers[0].KeyID
	}
	if k, ok := v.keys[kid]; ok {
		verified = tok.Claims(k, &c) == nil
	} else {
		for _, k := range v.all {
			if tok.Claims(k, &c) == nil {
				verified = true
				break
			}
		}
	}
	if !verified {
		return nil, errors.New("invalid bearer token: the token's signature is not one of the service-account keys'")
	}
	if c.Legacy() {
		if c.Issuer != LegacyIssuer {
			return nil, errors.New("invalid bearer token: a legacy token of a bound token's issuer")
		}
		return &c, nil
	}
	if c.Kubernetes == nil || c.Kubernetes.Namespace == "" || c.Kubernetes.ServiceAccount.Name == "" {
		return nil, errors.New("invalid bearer token: the token names no service account")
	}
	if c.Subject != UserName(c.Kubernetes.Namespace, c.Kubernetes.ServiceAccount.Name) {
		return nil, errors.New("invalid bearer token: the token's subject is not its service account")
	}
	if err := c.Claims.ValidateWithLeeway(jwt.Expected{Time: now}, time.Minute); err != nil {
		return nil, fmt.Errorf("invalid bearer token: %w", err)
	}
	if c.Expiry == nil {
		return nil, errors.New("invalid bearer token: a bound token must expire")
	}
	if !slices.ContainsFunc(v.audiences, func(a string) bool { return c.Audience.Contains(a) }) {
		return nil, errors.New("invalid bearer token: token audiences " + fmt.Sprintf("%q", []string(c.Audience)) +
			" is invalid for the target audiences " + fmt.Sprintf("%q", v.audiences))
	}
	return &c, nil
}

// JWKS is the key set OIDC discovery serves (/openid/v1/jwks).
func JWKS(keys []crypto.PublicKey) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		kid, err := KeyID(k)
		if err != nil {
			return set, err
		}
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k, KeyID: kid, Algorithm: string(algorithm(k)), Use: "sig"})
	}
	return set, nil
}

// OpenIDConfiguration is the issuer's discovery document
// (/.well-known/openid-configuration), as Kubernetes serves it.
type OpenIDConfiguration struct {
	Issuer        string   `json:"issuer"`
	JWKSURI       string   `json:"jwks_uri"`
	ResponseTypes []string `json:"response_types_supported"`
	SubjectTypes  []string `json:"subject_types_supported"`
	SigningAlgs   []string `json:"id_token_signing_alg_values_supported"`
}

// Discovery is the discovery document of issuer, whose keys are at jwksURI.
func Discovery(issuer, jwksURI string, keys []crypto.PublicKey) OpenIDConfiguration {
	var algs []string
	for _, k := range keys {
		if a := string(algorithm(k)); !slices.Contains(algs, a) {
			algs = append(algs, a)
		}
	}
	slices.Sort(algs)
	return OpenIDConfiguration{Issuer: issuer, JWKSURI: jwksURI, ResponseTypes: []string{"id_token"},
		SubjectTypes: []string{"public"}, SigningAlgs: algs}
}

// EnsureKey makes dir's signing key (SigningKeyFile, PublicKeyFile) unless it has one;
// it returns the files written.
func EnsureKey(dir string) ([]string, error) {
	key := filepath.Join(dir, SigningKeyFile)
	if _, err := os.Stat(key); err == nil {
		return nil, nil
	}
	return GenerateKey(key, filepath.Join(dir, PublicKeyFile))
}
