package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// A certificate directory made by InitDir holds, besides ca.crt and ca.key:
//
//	apiserver.crt/.key           system:apiserver (skiff:apiservers): API, peers and joins
//	controller-manager.crt/.key  system:controller-manager (skiff:controller-manager)
//	scheduler.crt/.key           system:scheduler (skiff:scheduler)
//	admin.crt/.key               admin (skiff:admin)
//	kubelet-NAME.crt/.key        system:node:NAME (skiff:nodes), one per node: the
//	                             kubelet's client certificate and its log server's
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
		req.NotBefore, req.Validity = opts.Now.Add(-time.Minute), opts.LeafValidity
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
	return files, nil
}

// RotateDir re-issues every leaf certificate in dir (each *.crt but ca.crt) from the
// CA there, with a new key, the same subject, names and usages, valid for validity
// (0: LeafValidity) from now. It returns the certificates rewritten.
func RotateDir(dir string, now time.Time, validity time.Duration) ([]string, error) {
	ca, err := LoadCA(dir)
	if err != nil {
		return nil, fmt.Errorf("certs rotate: %w", err)
	}
	crts, err := filepath.Glob(filepath.Join(dir, "*.crt"))
	if err != nil {
		return nil, err
	}
	var out []string
	var errs []error
	for _, path := range crts {
		if filepath.Base(path) == CACertFile {
			continue
		}
		certs, err := ReadCerts(path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		req := RequestFor(certs[0])
		if strings.HasPrefix(req.CommonName, NodeUserPrefix) {
			req.Server = true // kubelets serve logs (certificates made before that could not)
		}
		req.NotBefore, req.Validity = now.Add(-time.Minute), validity
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
	return out, errors.Join(errs...)
}
