package pki

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// The front proxy: the API servers' identity towards extension API servers (the
// aggregation layer), as Kubernetes' front-proxy-ca and front-proxy-client. A CA of its
// own, apart from the cluster CA, signs the one client certificate the API servers
// present when they proxy a request; an extension server trusts that CA (published in
// kube-system/extension-apiserver-authentication) for the X-Remote-User and
// X-Remote-Group headers, and nothing else, so a cluster client certificate cannot set
// them, nor the front-proxy certificate pass for a user.
const (
	FrontProxyCACertFile = "front-proxy-ca.crt"
	FrontProxyCAKeyFile  = "front-proxy-ca.key"
	// FrontProxyClient is the client certificate's file name (without extension) and
	// common name, the one name extension servers allow (requestheader-allowed-names).
	FrontProxyClient = "front-proxy-client"
)

// IsFrontProxyFile says whether a certificate file of a directory made by InitDir is the
// front proxy's (its CA or its client), which the cluster CA neither signs nor renews.
func IsFrontProxyFile(path string) bool {
	switch filepath.Base(path) {
	case FrontProxyCACertFile, FrontProxyClient + ".crt":
		return true
	}
	return false
}

// EnsureFrontProxy makes dir's front-proxy CA and client certificate unless it has them
// (a directory made before the aggregation layer gets them), and issues the client
// certificate again from the CA when it is missing. It returns the files written.
func EnsureFrontProxy(dir string, now time.Time, caValidity, leafValidity time.Duration) ([]string, error) {
	p := func(n string) string { return filepath.Join(dir, n) }
	var files []string
	ca, err := LoadCAFiles(p(FrontProxyCACertFile), p(FrontProxyCAKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		if ca, err = NewCA("front-proxy-ca", now, caValidity); err != nil {
			return nil, err
		}
		keyPEM, err := encodeKey(ca.Key)
		if err != nil {
			return nil, err
		}
		if err := WriteFile(p(FrontProxyCAKeyFile), keyPEM, 0o600); err != nil {
			return nil, err
		}
		if err := WriteFile(p(FrontProxyCACertFile), ca.CertPEM(), 0o644); err != nil {
			return nil, err
		}
		files = append(files, p(FrontProxyCACertFile), p(FrontProxyCAKeyFile))
		os.Remove(p(FrontProxyClient + ".crt")) // another CA's: issued again below
	} else if err != nil {
		return nil, fmt.Errorf("front-proxy CA: %w", err)
	}
	if _, err := os.Stat(p(FrontProxyClient + ".crt")); err == nil {
		return files, nil
	}
	written, err := issueFrontProxy(ca, dir, now, leafValidity)
	return append(files, written...), err
}

// issueFrontProxy issues the front-proxy client certificate from ca into dir and returns
// its files.
func issueFrontProxy(ca *CA, dir string, now time.Time, validity time.Duration) ([]string, error) {
	pair, err := ca.Issue(FrontProxyRequest(now, validity))
	if err != nil {
		return nil, err
	}
	c, k, err := pair.Write(dir, FrontProxyClient)
	if err != nil {
		return nil, err
	}
	return []string{c, k}, nil
}

// FrontProxyRequest is the front-proxy client certificate's request: CN
// front-proxy-client, no group, client usage.
func FrontProxyRequest(now time.Time, validity time.Duration) Request {
	return Request{CommonName: FrontProxyClient, Client: true, NotBefore: backdated(now, validity), Validity: validity}
}

// rotateFrontProxy re-issues dir's front-proxy client certificate from the front-proxy
// CA, when dir has them; it returns the certificate written, if any.
func rotateFrontProxy(dir string, now time.Time, validity time.Duration) ([]string, error) {
	p := func(n string) string { return filepath.Join(dir, n) }
	ca, err := LoadCAFiles(p(FrontProxyCACertFile), p(FrontProxyCAKeyFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("front-proxy CA: %w", err)
	}
	written, err := issueFrontProxy(ca, dir, now, validity)
	return written[:min(len(written), 1)], err // the certificate
}
