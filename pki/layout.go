package pki

import (
	"crypto/ecdsa"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/skiffhq/skiff/pki/serviceaccount"
)

// A certificate directory made by InitDir holds, besides ca.crt and ca.key:
//
//	apiserver.crt/.key           system:apiserver (skiff:apiservers): API, peers and joins
//	controller-manager.crt/.key  system:controller-manager (skiff:controller-manager)
//	scheduler.crt/.key           system:scheduler (skiff:scheduler)
//	admin.crt/.key               admin (skiff:admin)
//	kubelet-NAME.crt/.key        system:node:NAME (skiff:nodes), one per node: the
//	                             kubelet's client certificate (with server usage too,
//	                             for kubelets that serve with it, as before
//	                             kubelet-NAME-serving)
//	kubelet-NAME-serving.crt/.key  the same identity, server usage only, SAN NAME: the
//	                             kubelet serving certificate of its log/exec server
//	                             (skiff kubelet --tls-cert-file)
//	sa.key, sa.pub               the key pair of service-account tokens (package
//	                             serviceaccount): every apiserver's
//	                             --service-account-signing-key-file and -key-file
//	front-proxy-ca.crt/.key      the front proxy's own CA (frontproxy.go): every
//	                             apiserver's --requestheader-client-ca-file
//	front-proxy-client.crt/.key  front-proxy-client, signed by it: the certificate the
//	                             API servers present to extension API servers
//	                             (--proxy-client-cert-file, -key-file)
//
// Every apiserver shares one certificate naming all --hosts: peers and clients accept
// any certificate of the cluster CA in group skiff:apiservers.

// InitOptions say what InitDir creates.
type InitOptions struct {
	// Nodes are the kubelets' node names.
	Nodes []string
	// Hosts are the API servers' names and addresses (localhost and loopback are added).
	Hosts []string
	// Now is the start of validity (default time.Now()).
	Now time.Time
	// CAValidity and LeafValidity default to CAValidity and LeafValidity.
	CAValidity, LeafValidity time.Duration
}

// Leaves lists the certificates InitDir issues, by file name (without extension).
func (o InitOptions) Leaves() map[string]Request {
	hosts := append([]string{"localhost", "127.0.0.1", "::1"}, o.Hosts...)
	out := map[string]Request{
		"apiserver":          {CommonName: UserAPIServer, Organization: []string{GroupAPIServers}, Hosts: hosts, Server: true, Client: true},
		"controller-manager": {CommonName: UserControllerManager, Organization: []string{GroupControllerManager}, Client: true},
		"scheduler":          {CommonName: UserScheduler, Organization: []string{GroupScheduler}, Client: true},
		"admin":              {CommonName: UserAdmin, Organization: []string{GroupAdmin}, Client: true},
	}
	for _, n := range o.Nodes {
		out["kubelet-"+n] = Request{CommonName: NodeUserPrefix + n, Organization: []string{GroupNodes}, Client: true, Server: true}
		out["kubelet-"+n+"-serving"] = Request{CommonName: NodeUserPrefix + n, Organization: []string{GroupNodes}, Hosts: []string{n}, Server: true}
	}
	return out
}

// InitDir creates a CA and the leaves of opts in dir. It refuses to replace an existing
// CA. It returns the files written.
func InitDir(dir string, opts InitOptions) ([]string, error) {
	if opts.Now.IsZero() {
		opts.Now = time.Now()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("certs init: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		return nil, fmt.Errorf("certs init: %s already holds a CA (use rotate to re-issue its certificates)", dir)
	}
	for _, n := range opts.Nodes {
		if n == "" || strings.ContainsAny(n, "/\\") {
			return nil, fmt.Errorf("certs init: node name %q is not valid", n)
		}
	}
	ca, err := NewCA("skiff-ca", opts.Now, opts.CAValidity)
	if err != nil {
		return nil, err
	}
	if err := ca.Write(dir); err != nil {
		return nil, err
	}
	files := []string{filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)}
	leaves := opts.Leaves()
	names := make([]string, 0, len(leaves))
	for name := range leaves {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		req := leaves[name]
		req.NotBefore, req.Validity = backdated(opts.Now, opts.LeafValidity), opts.LeafValidity
		p, err := ca.Issue(req)
		if err != nil {
			return files, err
		}
		c, k, err := p.Write(dir, name)
		if err != nil {
			return files, err
		}
		files = append(files, c, k)
	}
	sa, err := serviceaccount.EnsureKey(dir)
	files = append(files, sa...)
	if err != nil {
		return files, err
	}
	fp, err := EnsureFrontProxy(dir, opts.Now, opts.CAValidity, opts.LeafValidity)
	return append(files, fp...), err
}

// RotateDir re-issues every leaf certificate in dir (each *.crt but ca.crt and the
// front proxy's) from the CA there, and the front-proxy client certificate from the
// front-proxy CA, with a new key, the same subject, names and usages, valid for validity
// (0: LeafValidity) from now. It returns the certificates rewritten.
func RotateDir(dir string, now time.Time, validity time.Duration) ([]string, error) {
	ca, err := LoadCA(dir)
	if err != nil {
		return nil, fmt.Errorf("certs rotate: %w", err)
	}
	crts, err := leafFiles(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	var errs []error
	for _, path := range crts {
		certs, err := ReadCerts(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		req := RequestFor(certs[0])
		if strings.HasPrefix(req.CommonName, NodeUserPrefix) {
			req.Server = true // kubelets serve logs (certificates made before that could not)
		}
		req.NotBefore, req.Validity = backdated(now, validity), validity
		p, err := ca.Issue(req)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, _, err := p.Write(dir, strings.TrimSuffix(filepath.Base(path), ".crt")); err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, path)
	}
	fp, err := rotateFrontProxy(dir, now, validity)
	return append(out, fp...), errors.Join(append(errs, err)...)
}

// CANextKeyFile holds the new CA's key between RotateCA's steps add and switch.
const CANextKeyFile = "ca-next.key"

// CA rotation steps (RotateCA), in order.
const (
	RotateCAAdd    = "add"
	RotateCASwitch = "switch"
	RotateCADrop   = "drop"
)

// RotateCA takes one step of replacing dir's CA with overlap, so that no component is
// ever refused:
//
//   - add: a new CA; ca.crt lists the old one (which still signs) and the new one, and
//     the new key waits in ca-next.key. Copy ca.crt to every machine: everyone trusts
//     both.
//   - switch: the new CA signs: ca.crt lists it first, ca.key is its key, and every leaf
//     of dir is re-issued by it. Copy ca.crt (and ca.key, to the API servers that renew
//     certificates): members re-issue their own certificates and components renew theirs
//     through them (pki.NeedsRenewal), while the old CA's are still trusted.
//   - drop: once no certificate of the old CA is in use, ca.crt lists the new CA alone.
//     It refuses while a leaf of dir is still the old CA's. Copy ca.crt everywhere.
//
// It returns the files it wrote.
func RotateCA(dir, step string, now time.Time) ([]string, error) {
	p := func(n string) string { return filepath.Join(dir, n) }
	ca, err := LoadCA(dir)
	if err != nil {
		return nil, fmt.Errorf("rotate CA: %w", err)
	}
	_, nextErr := os.Stat(p(CANextKeyFile))
	switch step {
	case RotateCAAdd:
		if len(ca.Bundle) > 1 || nextErr == nil {
			return nil, fmt.Errorf("rotate CA: %s already holds a new CA (finish with switch, then drop)", dir)
		}
		next, err := NewCA("skiff-ca-"+now.UTC().Format("20060102-150405"), now, 0)
		if err != nil {
			return nil, err
		}
		keyPEM, err := encodeKey(next.Key)
		if err != nil {
			return nil, err
		}
		if err := WriteFile(p(CANextKeyFile), keyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := WriteFile(p(CACertFile), bundlePEM(ca.Cert, next.Cert), 0o644); err != nil {
			return nil, err
		}
		return []string{p(CACertFile), p(CANextKeyFile)}, nil
	case RotateCASwitch:
		if nextErr != nil || len(ca.Bundle) != 2 {
			return nil, fmt.Errorf("rotate CA: %s has no new CA to switch to (run add first)", dir)
		}
		keyPEM, err := os.ReadFile(p(CANextKeyFile))
		if err != nil {
			return nil, err
		}
		key, err := parseKey(keyPEM)
		if err != nil {
			return nil, fmt.Errorf("rotate CA: %s: %w", p(CANextKeyFile), err)
		}
		if pub, ok := ca.Bundle[1].PublicKey.(*ecdsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
			return nil, fmt.Errorf("rotate CA: %s is not the key of ca.crt's second CA", p(CANextKeyFile))
		}
		next := &CA{Cert: ca.Bundle[1], Key: key, Bundle: []*x509.Certificate{ca.Bundle[1], ca.Cert}}
		// Key first: a reader of the pair in between finds them mismatched and waits.
		if err := WriteFile(p(CAKeyFile), keyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := WriteFile(p(CACertFile), bundlePEM(next.Bundle...), 0o644); err != nil {
			return nil, err
		}
		if err := os.Remove(p(CANextKeyFile)); err != nil {
			return nil, fmt.Errorf("rotate CA: %w", err)
		}
		out := []string{p(CACertFile), p(CAKeyFile)}
		leaves, err := leafFiles(dir)
		if err != nil {
			return out, err
		}
		var errs []error
		for _, crt := range leaves {
			if _, renewed, err := RenewFile(next, crt, strings.TrimSuffix(crt, ".crt")+".key", now); err != nil {
				errs = append(errs, err)
			} else if renewed {
				out = append(out, crt)
			}
		}
		return out, errors.Join(errs...)
	case RotateCADrop:
		if len(ca.Bundle) < 2 {
			return nil, fmt.Errorf("rotate CA: %s trusts one CA only: nothing to drop", dir)
		}
		if nextErr == nil {
			return nil, fmt.Errorf("rotate CA: %s: the new CA does not sign yet (run switch first)", dir)
		}
		leaves, err := leafFiles(dir)
		if err != nil {
			return nil, err
		}
		var old []string
		for _, crt := range leaves {
			certs, err := ReadCerts(crt)
			if err != nil {
				return nil, err
			}
			if certs[0].CheckSignatureFrom(ca.Cert) != nil {
				old = append(old, filepath.Base(crt))
			}
		}
		if len(old) > 0 {
			return nil, fmt.Errorf("rotate CA: %s still holds certificates of the old CA (%s): run switch", dir, strings.Join(old, ", "))
		}
		if err := WriteFile(p(CACertFile), bundlePEM(ca.Cert), 0o644); err != nil {
			return nil, err
		}
		return []string{p(CACertFile)}, nil
	}
	return nil, fmt.Errorf("rotate CA: unknown step %q (add, switch, drop)", step)
}

// leafFiles are the cluster CA's leaf certificates of dir: every *.crt but ca.crt and
// the front proxy's.
func leafFiles(dir string) ([]string, error) {
	crts, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(crts, func(f string) bool { return filepath.Base(f) == CACertFile || IsFrontProxyFile(f) }), nil
}

func bundlePEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, encodeCert(c)...)
	}
	return out
}
