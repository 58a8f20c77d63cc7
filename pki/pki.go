package pki

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Groups (certificate organizations) and well-known users.
const (
	GroupAdmin             = "skiff:admin"
	GroupAPIServers        = "skiff:apiservers"
	GroupControllerManager = "skiff:controller-manager"
	GroupScheduler         = "skiff:scheduler"
	GroupNodes             = "skiff:nodes"

	UserAdmin             = "admin"
	UserAPIServer         = "system:apiserver"
	UserControllerManager = "system:controller-manager"
	UserScheduler         = "system:scheduler"
	// NodeUserPrefix + node name is a kubelet's user.
	NodeUserPrefix = "system:node:"
)

// Default lifetimes.
const (
	CAValidity   = 10 * 365 * 24 * time.Hour
	LeafValidity = 365 * 24 * time.Hour
)

// File names inside a certificate directory.
const (
	CACertFile = "ca.crt"
	CAKeyFile  = "ca.key"
)

// CA is a certificate authority: its certificate and private key.
type CA struct {
	Cert *x509.Certificate
	Key  *ecdsa.PrivateKey
	// Bundle is every CA certificate of the file Cert was read from, Cert first: during
	// a CA rotation (RotateCA) the others are the CAs trusted alongside it.
	Bundle []*x509.Certificate
}

// bundle is Bundle, or Cert alone.
func (ca *CA) bundle() []*x509.Certificate {
	if len(ca.Bundle) == 0 {
		return []*x509.Certificate{ca.Cert}
	}
	return ca.Bundle
}

// Pair is an issued certificate with its key, parsed and as PEM.
type Pair struct {
	Cert            *x509.Certificate
	Key             *ecdsa.PrivateKey
	CertPEM, KeyPEM []byte
}

// Request describes a leaf certificate to issue.
type Request struct {
	// CommonName is the identity (user); Organization its groups.
	CommonName   string
	Organization []string
	// Hosts are DNS names and IP addresses the certificate serves (SANs).
	Hosts []string
	// Server and Client select the extended key usages.
	Server, Client bool
	// NotBefore defaults to now minus a minute (clock skew); Validity to LeafValidity.
	NotBefore time.Time
	Validity  time.Duration
}

func serial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
}

// NewCA creates a self-signed CA valid for validity (0: CAValidity) from now.
func NewCA(commonName string, now time.Time, validity time.Duration) (*CA, error) {
	if validity <= 0 {
		validity = CAValidity
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("new CA key: %w", err)
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          sn,
		Subject:               pkix.Name{CommonName: commonName, Organization: []string{"skiff"}},
		NotBefore:             now.Add(-time.Minute),
		NotAfter:              now.Add(validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("new CA %q: %w", commonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, Key: key}, nil
}

// Issue signs a new leaf certificate with a fresh key.
func (ca *CA) Issue(req Request) (*Pair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("issue certificate %q: %w", req.CommonName, err)
	}
	cert, err := ca.Sign(req, &key.PublicKey)
	if err != nil {
		return nil, err
	}
	return NewPair(cert, key)
}

// Sign signs a leaf certificate of req for pub, a key its holder made (a certificate
// signing request's).
func (ca *CA) Sign(req Request, pub crypto.PublicKey) (*x509.Certificate, error) {
	if req.CommonName == "" {
		return nil, errors.New("issue certificate: a common name is required")
	}
	if !req.Server && !req.Client {
		return nil, fmt.Errorf("issue certificate %q: neither server nor client usage", req.CommonName)
	}
	if req.NotBefore.IsZero() {
		req.NotBefore = time.Now().Add(-time.Minute)
	}
	if req.Validity <= 0 {
		req.Validity = LeafValidity
	}
	sn, err := serial()
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: sn,
		Subject:      pkix.Name{CommonName: req.CommonName, Organization: req.Organization},
		NotBefore:    req.NotBefore,
		NotAfter:     req.NotBefore.Add(req.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
	}
	if tmpl.NotAfter.After(ca.Cert.NotAfter) {
		tmpl.NotAfter = ca.Cert.NotAfter // a leaf never outlives its CA
	}
	if req.Server {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageServerAuth)
	}
	if req.Client {
		tmpl.ExtKeyUsage = append(tmpl.ExtKeyUsage, x509.ExtKeyUsageClientAuth)
	}
	for _, h := range req.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(tmpl.IPAddresses, ip.Equal) {
				tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
			}
		} else if h != "" && !slices.Contains(tmpl.DNSNames, h) {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, pub, ca.Key)
	if err != nil {
		return nil, fmt.Errorf("issue certificate %q: %w", req.CommonName, err)
	}
	return x509.ParseCertificate(der)
}

// RequestFor recovers the request a certificate was issued from (for re-issuing it).
func RequestFor(cert *x509.Certificate) Request {
	req := Request{CommonName: cert.Subject.CommonName, Organization: cert.Subject.Organization}
	for _, u := range cert.ExtKeyUsage {
		req.Server = req.Server || u == x509.ExtKeyUsageServerAuth
		req.Client = req.Client || u == x509.ExtKeyUsageClientAuth
	}
	req.Hosts = append(req.Hosts, cert.DNSNames...)
	for _, ip := range cert.IPAddresses {
		req.Hosts = append(req.Hosts, ip.String())
	}
	return req
}

func encodeCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

func encodeKey(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, fmt.Errorf("encode key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// EncodeCert is a certificate as PEM.
func EncodeCert(c *x509.Certificate) []byte { return encodeCert(c) }

// CertPEM is the CA certificate as PEM.
func (ca *CA) CertPEM() []byte { return encodeCert(ca.Cert) }

// WriteCA writes ca.crt and ca.key into dir.
func (ca *CA) Write(dir string) error {
	keyPEM, err := encodeKey(ca.Key)
	if err != nil {
		return err
	}
	if err := WriteFile(filepath.Join(dir, CACertFile), ca.CertPEM(), 0o644); err != nil {
		return err
	}
	return WriteFile(filepath.Join(dir, CAKeyFile), keyPEM, 0o600)
}

// LoadCA reads ca.crt and ca.key from dir.
func LoadCA(dir string) (*CA, error) {
	return LoadCAFiles(filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile))
}

// LoadCAFiles reads a CA's certificate and key.
func LoadCAFiles(certPath, keyPath string) (*CA, error) {
	certs, err := ReadCerts(certPath)
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load CA key: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load CA key %s: %w", keyPath, err)
	}
	if !certs[0].IsCA {
		return nil, fmt.Errorf("load CA %s: not a CA certificate", certPath)
	}
	// The files are replaced one after the other in a CA rotation: never sign with a
	// key that is not the first certificate's.
	if pub, ok := certs[0].PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("load CA %s: the key in %s is not its first certificate's", certPath, keyPath)
	}
	return &CA{Cert: certs[0], Key: key, Bundle: certs}, nil
}

func parseKey(b []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(b)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	switch block.Type {
	case "EC PRIVATE KEY":
		return x509.ParseECPrivateKey(block.Bytes)
	case "PRIVATE KEY":
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, err
		}
		ek, ok := k.(*ecdsa.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("a %T key, want ECDSA", k)
		}
		return ek, nil
	}
	return nil, fmt.Errorf("unexpected PEM block %q", block.Type)
}

// ReadCerts reads every certificate of a PEM file.
func ReadCerts(path string) ([]*x509.Certificate, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read certificates: %w", err)
	}
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("read certificates %s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("read certificates %s: no certificate found", path)
	}
	return out, nil
}

// Write writes NAME.crt and NAME.key into dir (WriteFiles).
func (p *Pair) Write(dir, name string) (certPath, keyPath string, err error) {
	certPath, keyPath = filepath.Join(dir, name+".crt"), filepath.Join(dir, name+".key")
	return certPath, keyPath, p.WriteFiles(certPath, keyPath)
}

// WriteFiles writes the certificate and its key, each replaced atomically. The key goes
// first: a reader that sees the new certificate finds its key already there.
func (p *Pair) WriteFiles(certPath, keyPath string) error {
	if err := WriteFile(keyPath, p.KeyPEM, 0o600); err != nil {
		return err
	}
	return WriteFile(certPath, p.CertPEM, 0o644)
}

// NewPair is cert with its key, encoded.
func NewPair(cert *x509.Certificate, key *ecdsa.PrivateKey) (*Pair, error) {
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &Pair{Cert: cert, Key: key, CertPEM: encodeCert(cert), KeyPEM: keyPEM}, nil
}

// WriteFile replaces path atomically (a temporary file renamed over it) with data, of
// mode: a reader sees the old file or the new one, never a part.
func WriteFile(path string, data []byte, mode os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Chmod(mode); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// LoadPair reads a certificate and its key and checks that they match.
func LoadPair(certPath, keyPath string) (*Pair, error) {
	certPEM, err := os.ReadFile(certPath)
	if err != nil {
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("load key: %w", err)
	}
	key, err := parseKey(keyPEM)
	if err != nil {
		return nil, fmt.Errorf("load key %s: %w", keyPath, err)
	}
	block, _ := pem.Decode(certPEM)
	if block == nil {
		return nil, fmt.Errorf("load certificate %s: no PEM block", certPath)
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("load certificate %s: %w", certPath, err)
	}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || !pub.Equal(&key.PublicKey) {
		return nil, fmt.Errorf("load %s: the key in %s does not match", certPath, keyPath)
	}
	return &Pair{Cert: cert, Key: key, CertPEM: certPEM, KeyPEM: keyPEM}, nil
}

// Identity is the user and groups a certificate names.
func Identity(cert *x509.Certificate) (user string, groups []string) {
	return cert.Subject.CommonName, cert.Subject.Organization
}

// Verify checks that cert chains to roots for usage at now.
func Verify(cert *x509.Certificate, roots *x509.CertPool, usage x509.ExtKeyUsage, now time.Time) error {
	_, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now})
	return err
}

// Pool makes a certificate pool of PEM bytes.
func Pool(pemCerts []byte) (*x509.CertPool, error) {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(bytes.TrimSpace(pemCerts)) {
		return nil, errors.New("no certificate in CA bundle")
	}
	return p, nil
}
