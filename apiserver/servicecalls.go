package apiserver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/store"
)

// The API server's calls to Services: admission and conversion webhooks (webhooks.go)
// and extension API servers (aggregator.go). A Service is reached at a ready endpoint
// of its EndpointSlices, as kube-apiserver's --enable-aggregator-routing does (the API
// server runs on a node, which reaches pod addresses), over TLS that verifies the
// certificate for SERVICE.NAMESPACE.svc with the caller's CA bundle.

// serviceError says why a Service cannot be reached, with kube-aggregator's reason for
// an APIService's Available condition.
type serviceError struct {
	reason, msg string
	err         error // the store's, when reading failed
}

func (e *serviceError) Error() string { return e.msg }
func (e *serviceError) Unwrap() error { return e.err }

// Kubernetes' reasons (kube-aggregator's availability controller).
const (
	reasonServiceNotFound   = "ServiceNotFound"
	reasonServicePortError  = "ServicePortError"
	reasonEndpointsNotFound = "EndpointsNotFound"
	reasonMissingEndpoints  = "MissingEndpoints"
)

// resolveService is the address of a ready endpoint of Service ns/name behind its port
// numbered port, picked at random, from its EndpointSlices as this node has them. A
// failure is a *serviceError.
func (r *resources) resolveService(ctx context.Context, ns, name string, port int32) (string, error) {
	svcInfo := kinds.MustLookup(kinds.Service)
	obj, _, err := r.get(ctx, svcInfo, store.Key{Kind: kinds.Service, Namespace: ns, Name: name}, store.ReadOptions{Stale: true})
	if isNotFound(err) {
		return "", &serviceError{reason: reasonServiceNotFound, msg: fmt.Sprintf("service/%s in %q is not present", name, ns), err: err}
	}
	if err != nil {
		return "", &serviceError{reason: reasonServiceNotFound, msg: fmt.Sprintf("service %s/%s: %v", ns, name, err), err: err}
	}
	svc := obj.(*corev1.Service)
	var sp *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Port == port {
			sp = &svc.Spec.Ports[i]
		}
	}
	if sp == nil {
		return "", &serviceError{reason: reasonServicePortError, msg: fmt.Sprintf("service/%s in %q is not listening on port %d", name, ns, port)}
	}
	info := kinds.MustLookup(kinds.EndpointSlice)
	objs, _, err := r.store.List(ctx, kinds.EndpointSlice, store.ListOptions{Namespace: ns, Stale: true})
	if err != nil {
		return "", &serviceError{reason: reasonEndpointsNotFound, msg: fmt.Sprintf("endpoints of service %s/%s: %v", ns, name, err), err: err}
	}
	var addrs []string
	nSlices := 0
	for i := range objs {
		if objs[i].Labels[discoveryv1.LabelServiceName] != name {
			continue
		}
		nSlices++
		o, err := decode(info, &objs[i])
		if err != nil {
			return "", err
		}
		es := o.(*discoveryv1.EndpointSlice)
		target := int32(0)
		for _, p := range es.Ports {
			if ptrString(p.Name) == sp.Name && p.Port != nil {
				target = *p.Port
			}
		}
		if target == 0 {
			continue
		}
		for _, ep := range es.Endpoints {
			if (ep.Conditions.Ready == nil || *ep.Conditions.Ready) && len(ep.Addresses) > 0 {
				addrs = append(addrs, net.JoinHostPort(ep.Addresses[0], strconv.Itoa(int(target))))
			}
		}
	}
	switch {
	case nSlices == 0:
		return "", &serviceError{reason: reasonEndpointsNotFound, msg: fmt.Sprintf("cannot find endpoints for service/%s in %q", name, ns)}
	case len(addrs) == 0:
		return "", &serviceError{reason: reasonMissingEndpoints, msg: fmt.Sprintf("endpoints for service/%s in %q have no ready addresses with port name %q", name, ns, sp.Name)}
	}
	return addrs[rand.IntN(len(addrs))], nil
}

// serviceServerName is the name a Service's serving certificate must have.
func serviceServerName(ns, name string) string { return name + "." + ns + ".svc" }

// serviceTransports are the HTTP transports Services are called with, one per CA bundle
// (nil: the system's roots), server name and insecureSkipTLSVerify, each speaking
// HTTP/2 or HTTP/1.1 as the server's ALPN says, kept for their idle connections.
type serviceTransports struct {
	// clientCert, when set, is the client certificate presented (the front proxy's).
	clientCert func() (*tls.Certificate, error)

	mu   sync.Mutex
	byID map[transportKey]*http.Transport
}

type transportKey struct {
	caBundle, serverName string
	insecure             bool
}

// get is the transport for a server of the name given, verified with caBundle, or not
// verified at all when insecure.
func (st *serviceTransports) get(caBundle []byte, serverName string, insecure bool) (*http.Transport, error) {
	k := transportKey{caBundle: string(caBundle), serverName: serverName, insecure: insecure}
	st.mu.Lock()
	defer st.mu.Unlock()
	if tr, ok := st.byID[k]; ok {
		return tr, nil
	}
	var roots *x509.CertPool
	if len(caBundle) > 0 && !insecure {
		roots = x509.NewCertPool()
		if !roots.AppendCertsFromPEM(caBundle) {
			return nil, errors.New("the caBundle holds no PEM certificate")
		}
	}
	tc := &tls.Config{RootCAs: roots, ServerName: serverName, InsecureSkipVerify: insecure, MinVersion: tls.VersionTLS12} //nolint:gosec // insecureSkipTLSVerify, as asked
	if st.clientCert != nil {
		tc.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return st.clientCert() }
	}
	tr := &http.Transport{
		// A transport of TLSClientConfig and a dialer, not a TLS dialer of its own:
		// apimachinery's proxy dials upgrades (WebSocket, SPDY) with them.
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 10 * time.Second,
		ForceAttemptHTTP2:   true,
		MaxIdleConnsPerHost: 16,
		IdleConnTimeout:     90 * time.Second,
	}
	if st.byID == nil || len(st.byID) > 100 { // bounded: bundles of deleted configurations
		st.closeLocked()
		st.byID = map[transportKey]*http.Transport{}
	}
	st.byID[k] = tr
	return tr, nil
}

// close drops the transports' idle connections.
func (st *serviceTransports) close() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.closeLocked()
}

func (st *serviceTransports) closeLocked() {
	for _, tr := range st.byID {
		tr.CloseIdleConnections()
	}
}
