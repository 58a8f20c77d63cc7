package pki

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"
)

// Reloader holds a certificate, its key and a CA bundle read from files, and reads them
// again when a file changes (another inode, size or modification time). Each handshake
// asks it, so new connections use rotated files at once; open connections keep theirs.
// A change that does not load (a certificate whose key is not written yet) keeps the
// previous one and is tried again on the next handshake.
type Reloader struct {
	certFile, keyFile, caFile string

	mu        sync.Mutex
	pair      *tls.Certificate
	pairStamp [2]os.FileInfo
	pool      *x509.CertPool
	caPEM     []byte
	caStamp   os.FileInfo
}

// NewReloader loads the files once, failing if they do not load. certFile and keyFile
// come together or not at all; caFile may be empty.
func NewReloader(certFile, keyFile, caFile string) (*Reloader, error) {
	if (certFile == "") != (keyFile == "") {
		return nil, fmt.Errorf("certificate %q and key %q: give both or neither", certFile, keyFile)
	}
	r := &Reloader{certFile: certFile, keyFile: keyFile, caFile: caFile}
	if certFile != "" {
		if _, err := r.Certificate(); err != nil {
			return nil, err
		}
	}
	if caFile != "" {
		if _, err := r.Pool(); err != nil {
			return nil, err
		}
	}
	return r, nil
}

func changed(old, cur os.FileInfo) bool {
	return old == nil || !os.SameFile(old, cur) || old.Size() != cur.Size() || !old.ModTime().Equal(cur.ModTime())
}

// Certificate is the current certificate and key.
func (r *Reloader) Certificate() (*tls.Certificate, error) {
	if r.certFile == "" {
		return nil, errors.New("no certificate configured")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	cs, err1 := os.Stat(r.certFile)
	ks, err2 := os.Stat(r.keyFile)
	if err := errors.Join(err1, err2); err != nil {
		if r.pair != nil {
			return r.pair, nil // mid-replacement: keep serving the last good pair
		}
		return nil, fmt.Errorf("load certificate: %w", err)
	}
	if r.pair != nil && !changed(r.pairStamp[0], cs) && !changed(r.pairStamp[1], ks) {
		return r.pair, nil
	}
	p, err := LoadPair(r.certFile, r.keyFile)
	if err != nil {
		if r.pair != nil {
			return r.pair, nil
		}
		return nil, err
	}
	r.pair = &tls.Certificate{Certificate: [][]byte{p.Cert.Raw}, PrivateKey: p.Key, Leaf: p.Cert}
	r.pairStamp = [2]os.FileInfo{cs, ks}
	return r.pair, nil
}

// Pool is the current CA bundle.
func (r *Reloader) Pool() (*x509.CertPool, error) {
	pool, _, err := r.ca()
	return pool, err
}

// CAPEM is the current CA bundle as its file holds it (PEM), read anew when the file
// changes, as Pool is: what a publisher of the cluster's CA hands on (the
// controller-manager's kube-root-ca.crt), so that a CA rotation reaches it too.
func (r *Reloader) CAPEM() ([]byte, error) {
	_, b, err := r.ca()
	return b, err
}

func (r *Reloader) ca() (*x509.CertPool, []byte, error) {
	if r.caFile == "" {
		return nil, nil, errors.New("no CA file configured")
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	st, err := os.Stat(r.caFile)
	if err != nil {
		if r.pool != nil {
			return r.pool, r.caPEM, nil
		}
		return nil, nil, fmt.Errorf("load CA: %w", err)
	}
	if r.pool != nil && !changed(r.caStamp, st) {
		return r.pool, r.caPEM, nil
	}
	b, err := os.ReadFile(r.caFile)
	if err == nil {
		var pool *x509.CertPool
		if pool, err = Pool(b); err == nil {
			r.pool, r.caPEM, r.caStamp = pool, b, st
			return pool, b, nil
		}
	}
	if r.pool != nil {
		return r.pool, r.caPEM, nil
	}
	return nil, nil, fmt.Errorf("load CA %s: %w", r.caFile, err)
}

// VerifyPeer checks a presented chain against the current CA bundle: it must chain to
// it for usage, and its leaf must be in group (when group is not empty).
func (r *Reloader) VerifyPeer(chain []*x509.Certificate, usage x509.ExtKeyUsage, group string, now time.Time) error {
	if len(chain) == 0 {
		return errors.New("no certificate presented")
	}
	pool, err := r.Pool()
	if err != nil {
		return err
	}
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err = chain[0].Verify(x509.VerifyOptions{Roots: pool, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{usage}, CurrentTime: now})
	if err != nil {
		return err
	}
	if group != "" && !slices.Contains(chain[0].Subject.Organization, group) {
		return fmt.Errorf("certificate of %q is not in group %q", chain[0].Subject.CommonName, group)
	}
	return nil
}

// Every TLS configuration below sets DynamicRecordSizingDisabled. Otherwise Go's TLS
// sends the first 128 KiB of each connection in records of one TCP segment (~1.2 KiB),
// one write system call each: that suits a browser's first paint, not API connections,
// where most of a kubelet's or a watch's traffic falls within those first 128 KiB. With
// a thousand simulated kubelets, the 10,000-pod run spent 2.5 times as long in socket
// writes as the same run without TLS.

// ServerTLS is an API server's TLS: it serves the current certificate and asks clients
// for theirs without checking it in the handshake. The API server checks the chain
// itself (against Pool), so that a bad client certificate is an Unauthenticated error
// that says why, not a broken connection.
func (r *Reloader) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:                  tls.VersionTLS12,
		DynamicRecordSizingDisabled: true,
		ClientAuth:                  tls.RequestClientCert,
		GetCertificate:              func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.Certificate() },
		NextProtos:                  []string{"h2"},
	}
}

// ClientTLS is a client's TLS toward API servers: it presents the current certificate
// (if one is configured) and accepts a server whose certificate chains to the CA bundle
// and is in group skiff:apiservers. Names are not checked: the cluster CA is private, and
// clients dial addresses (often IPs) that the group check makes unnecessary.
func (r *Reloader) ClientTLS() *tls.Config {
	c := &tls.Config{
		MinVersion:                  tls.VersionTLS12,
		DynamicRecordSizingDisabled: true,
		InsecureSkipVerify:          true, // VerifyConnection verifies, against the current CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := r.VerifyPeer(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, GroupAPIServers, time.Now()); err != nil {
				return fmt.Errorf("API server certificate: %w", err)
			}
			return nil
		},
	}
	if r.certFile != "" {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return r.Certificate() }
	}
	return c
}

// PeerTLS is mutual TLS between store peers (Raft and the peer service), on both ends of
// a connection: each side must present a certificate of the cluster CA in group
// skiff:apiservers, or the handshake fails.
func (r *Reloader) PeerTLS() *tls.Config {
	verify := func(usage x509.ExtKeyUsage) func(tls.ConnectionState) error {
		return func(cs tls.ConnectionState) error {
			if err := r.VerifyPeer(cs.PeerCertificates, usage, GroupAPIServers, time.Now()); err != nil {
				return fmt.Errorf("peer certificate: %w", err)
			}
			return nil
		}
	}
	return &tls.Config{
		MinVersion:                  tls.VersionTLS12,
		DynamicRecordSizingDisabled: true,
		// Client side.
		InsecureSkipVerify:   true, // VerifyConnection verifies
		VerifyConnection:     verify(x509.ExtKeyUsageServerAuth),
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return r.Certificate() },
		// Server side: a fresh config per handshake.
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, err := r.Certificate()
			if err != nil {
				return nil, err
			}
			return &tls.Config{
				MinVersion:                  tls.VersionTLS12,
				DynamicRecordSizingDisabled: true,
				Certificates:                []tls.Certificate{*cert},
				ClientAuth:                  tls.RequireAnyClientCert,
				VerifyConnection:            verify(x509.ExtKeyUsageClientAuth),
			}, nil
		},
	}
}

// KubeletServerTLS is a kubelet's log server TLS: it serves the kubelet's certificate
// and accepts only clients whose certificate chains to the CA bundle and is in group
// skiff:apiservers: the API servers, which authorize users before they ask.
func (r *Reloader) KubeletServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:                  tls.VersionTLS12,
		DynamicRecordSizingDisabled: true,
		ClientAuth:                  tls.RequireAnyClientCert,
		GetCertificate:              func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return r.Certificate() },
		NextProtos:                  []string{"h2"},
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := r.VerifyPeer(cs.PeerCertificates, x509.ExtKeyUsageClientAuth, GroupAPIServers, time.Now()); err != nil {
				return fmt.Errorf("client certificate: only API servers may call a kubelet: %w", err)
			}
			return nil
		},
	}
}

// KubeletClientTLS is an API server's TLS toward the kubelet of node: it presents the
// current certificate and accepts only node's own certificate (user system:node:NODE in
// group skiff:nodes, chaining to the CA bundle, for server use). Names are not checked:
// the identity is.
func (r *Reloader) KubeletClientTLS(node string) *tls.Config {
	c := &tls.Config{
		MinVersion:                  tls.VersionTLS12,
		DynamicRecordSizingDisabled: true,
		InsecureSkipVerify:          true, // VerifyConnection verifies, against the current CA
		VerifyConnection: func(cs tls.ConnectionState) error {
			if err := r.VerifyPeer(cs.PeerCertificates, x509.ExtKeyUsageServerAuth, GroupNodes, time.Now()); err != nil {
				return fmt.Errorf("kubelet certificate of node %s: %w", node, err)
			}
			if cn := cs.PeerCertificates[0].Subject.CommonName; cn != NodeUserPrefix+node {
				return fmt.Errorf("kubelet certificate of node %s: it is %q's, not %q", node, cn, NodeUserPrefix+node)
			}
			return nil
		},
	}
	if r.certFile != "" {
		c.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return r.Certificate() }
	}
	return c
}
