package apiserver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/proxy"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	kubeletv1 "github.com/skiffhq/skiff/proto/kubelet/v1"
	"github.com/skiffhq/skiff/store"
)

// The proxy subresources, as kube-apiserver serves them:
//
//	/api/v1/namespaces/NS/pods/[SCHEME:]NAME[:PORT]/proxy[/PATH]
//	/api/v1/namespaces/NS/services/[SCHEME:]NAME[:PORT]/proxy[/PATH]
//	/api/v1/nodes/NAME[:PORT]/proxy/PATH
//
// A pod's or a Service's request goes, with its method, headers (less the caller's
// credentials), body and query, to PATH on the pod's port, through the kubelet's
// PortForward stream (the gRPC PortForward call's, streams.go), not over the pod
// network: it works wherever the API server reaches the kubelets. apimachinery's
// UpgradeAwareHandler, kube-apiserver's own, does the HTTP side over a transport whose
// every connection is such a stream: the path rewritten, links and redirects in the
// response rewritten under the proxy's path, X-Forwarded-* headers, upgrades
// (WebSocket) relayed. A Service's request goes to a ready endpoint of its
// EndpointSlices, picked at random, that is a pod.
//
// Skiff's kubelet serves no HTTP: a node's proxy answers, from what the kubelet
// serves over gRPC, containerLogs/NS/POD/CONTAINER (Kubernetes' kubelet path for a
// container's output, with pods/log's query), and nothing else.

// proxyTarget is what a proxy path says beside the object's name: the scheme and port
// written with it (NAME, NAME:PORT, SCHEME:NAME:PORT) and the path below proxy.
type proxyTarget struct {
	scheme, port, path string
}

// proxyOptionsKind is the kind discovery names for each proxied kind's subresource.
var proxyOptionsKind = map[string]string{kinds.Pod: "PodProxyOptions", kinds.Service: "ServiceProxyOptions", kinds.Node: "NodeProxyOptions"}

// proxyVerbs are the proxy's verbs, as Kubernetes' discovery lists them.
var proxyVerbs = []string{verbGet, verbCreate, verbUpdate, verbPatch, verbDelete}

// parseProxyPath reads parts, RESOURCE/ID/proxy[/PATH...], of a proxy request. The
// verb is the method's, as Kubernetes maps it (HEAD and OPTIONS: get): a proxy's
// request is never a list or a watch.
func parseProxyPath(method, group, version, namespace string, parts []string) (*restRequest, error) {
	info := lookupResource(group, version, parts[0])
	if info == nil || !subresourceExists(info, auth.SubresourceProxy) || info.Namespaced != (namespace != "") {
		return nil, notFoundPath()
	}
	scheme, name, port, ok := utilnet.SplitSchemeNamePort(parts[1])
	if !ok {
		return nil, badRequest("invalid %s request %q", strings.ToLower(info.Kind), parts[1])
	}
	req := &restRequest{info: info, namespace: namespace, name: name, subresource: auth.SubresourceProxy,
		proxy: &proxyTarget{scheme: scheme, port: port}}
	if len(parts) > 3 {
		req.proxy.path = "/" + strings.Join(parts[3:], "/")
	}
	req.verb = methodVerb(method)
	if method == http.MethodOptions {
		req.verb = verbGet
	}
	if req.verb == "" {
		return nil, methodNotAllowed(method)
	}
	return req, nil
}

// proxy serves an authorized proxy request.
func (a *restAPI) proxy(w http.ResponseWriter, r *http.Request, req *restRequest) {
	if strings.HasSuffix(r.URL.Path, "/") && !strings.HasSuffix(req.proxy.path, "/") {
		req.proxy.path += "/" // the split path lost it; the pod's server may care
	}
	if err := a.admitProxy(r.Context(), req); err != nil {
		a.fail(w, r, err)
		return
	}
	switch req.info.Kind {
	case kinds.Pod:
		a.proxyPod(w, r, req)
	case kinds.Service:
		a.proxyService(w, r, req)
	case kinds.Node:
		a.proxyNode(w, r, req)
	}
}

// proxyPod proxies to a port of the pod: the one named, else its first container's
// first port, else the scheme's (80, 443).
func (a *restAPI) proxyPod(w http.ResponseWriter, r *http.Request, req *restRequest) {
	pod, kc, err := a.pods.dialKubelet(r.Context(), req.namespace, req.name, "nothing to proxy to")
	if err != nil {
		a.fail(w, r, err)
		return
	}
	defer kc.Close()
	port := req.proxy.port
	if port == "" {
		for _, c := range pod.Spec.Containers {
			if len(c.Ports) > 0 {
				port = strconv.Itoa(int(c.Ports[0].ContainerPort))
				break
			}
		}
	}
	if _, err := strconv.Atoi(port); port != "" && err != nil {
		// A named port: the container port of that name (kube-apiserver takes only numbers).
		named := ""
		for _, c := range pod.Spec.Containers {
			for _, p := range c.Ports {
				if p.Name == port && named == "" {
					named = strconv.Itoa(int(p.ContainerPort))
				}
			}
		}
		if named == "" {
			a.fail(w, r, statusError(codes.NotFound, ReasonNotFound, nil, "pod %q has no port named %q", pod.Name, port))
			return
		}
		port = named
	}
	a.proxyTo(w, r, req.proxy.scheme, port, req.proxy.path, kc, pod)
}

// proxyService proxies to a ready endpoint of the Service, as kube-apiserver does:
// PORT is the name of one of its ports, or its number; the endpoint's port of that
// name is the one reached. Endpoints that are not pods are not reached (nor are they
// by kube-apiserver): the kubelet's stream is the way in.
func (a *restAPI) proxyService(w http.ResponseWriter, r *http.Request, req *restRequest) {
	ctx := r.Context()
	svcInfo, sliceInfo := req.info, kinds.MustLookup(kinds.EndpointSlice)
	obj, _, err := a.res.get(ctx, svcInfo, store.Key{Kind: svcInfo.Kind, Namespace: req.namespace, Name: req.name}, store.ReadOptions{})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	svc := obj.(*corev1.Service)
	portName := req.proxy.port
	if n, err := strconv.Atoi(portName); err == nil {
		found := false
		for _, p := range svc.Spec.Ports {
			if int(p.Port) == n && !found {
				portName, found = p.Name, true
			}
		}
		if !found {
			a.fail(w, r, statusError(codes.Unavailable, ReasonUnavailable, nil, "no service port %d found for service %q", n, svc.Name))
			return
		}
	}
	list, err := a.res.list(ctx, sliceInfo, listOptions{namespace: req.namespace, labelSelector: discoveryv1.LabelServiceName + "=" + svc.Name})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	type endpoint struct {
		pod  string
		port int32
	}
	var eps []endpoint
	addresses := 0
	for _, o := range list.items {
		obj, err := decode(sliceInfo, &o)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		es := obj.(*discoveryv1.EndpointSlice)
		addresses += len(es.Endpoints)
		for _, p := range es.Ports {
			if p.Port == nil || (p.Name == nil && portName != "") || (p.Name != nil && *p.Name != portName) {
				continue
			}
			for _, e := range es.Endpoints {
				if e.Conditions.Ready != nil && !*e.Conditions.Ready || e.TargetRef == nil || e.TargetRef.Kind != kinds.Pod {
					continue
				}
				eps = append(eps, endpoint{pod: e.TargetRef.Name, port: *p.Port})
			}
		}
	}
	if addresses == 0 {
		a.fail(w, r, statusError(codes.Unavailable, ReasonUnavailable, nil, "no endpoints available for service %q", svc.Name))
		return
	}
	rand.Shuffle(len(eps), func(i, j int) { eps[i], eps[j] = eps[j], eps[i] })
	for _, e := range eps {
		pod, kc, err := a.pods.dialKubelet(ctx, req.namespace, e.pod, "nothing to proxy to")
		if err != nil {
			continue // gone since: another one
		}
		defer kc.Close()
		a.proxyTo(w, r, req.proxy.scheme, strconv.Itoa(int(e.port)), req.proxy.path, kc, pod)
		return
	}
	id := svc.Name
	if req.proxy.port != "" {
		id += ":" + req.proxy.port
	}
	a.fail(w, r, statusError(codes.Unavailable, ReasonUnavailable, nil, "no endpoints available for service %q", id))
}

// proxyTo proxies the request to path on port of pod, through its kubelet (kc). The
// location's host, the pod's IP, only names it: the connection is the kubelet's stream.
func (a *restAPI) proxyTo(w http.ResponseWriter, r *http.Request, scheme, port, path string, kc *kubeletConn, pod *corev1.Pod) {
	portNum, err := strconv.Atoi(port)
	if port != "" && (err != nil || portNum < 1 || portNum > 65535) {
		a.fail(w, r, badRequest("port: Invalid value: %q: must be between 1 and 65535, inclusive", port))
		return
	}
	host := pod.Status.PodIP
	if host == "" {
		host = pod.Name
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	}
	if scheme == "" {
		scheme = "http"
	}
	ctx := r.Context()
	tr := &http.Transport{
		// addr has the port, the scheme's when none was named.
		DialContext: func(_ context.Context, _, addr string) (net.Conn, error) {
			_, p, err := net.SplitHostPort(addr)
			n, perr := strconv.Atoi(p)
			if err != nil || perr != nil {
				return nil, fmt.Errorf("no port in %q", addr)
			}
			// The request's context, not the dial's: the connection lives as long as the
			// request, its upgrade included.
			return dialPod(ctx, kc, pod, int32(n))
		},
		// As kube-apiserver's proxy: a pod's serving certificate is not one the API
		// server could verify.
		TLSClientConfig:   &tls.Config{InsecureSkipVerify: true}, //nolint:gosec // see above
		DisableKeepAlives: true,                                  // a connection is one request's stream
	}
	defer tr.CloseIdleConnections()
	// The caller's credentials are the API server's business, not the pod's, as
	// kube-apiserver's authentication filter removes them.
	out := r.Clone(ctx)
	out.Header.Del("Authorization")
	loc := &url.URL{Scheme: scheme, Host: host, Path: path}
	h := proxy.NewUpgradeAwareHandler(loc, tr, true, false, proxyResponder{a})
	h.ServeHTTP(w, out)
}

// proxyResponder answers a failed proxy request with a Status: kube-apiserver's
// (apimachinery's proxy transport says "error trying to reach service", 503).
type proxyResponder struct{ a *restAPI }

func (p proxyResponder) Error(w http.ResponseWriter, r *http.Request, err error) {
	var as apierrors.APIStatus
	if errors.As(err, &as) {
		err = &apiError{status: as.Status(), code: codes.Unavailable}
	}
	p.a.fail(w, r, err)
}

// proxyNode serves a node's proxy: what Skiff's kubelet serves of Kubernetes' kubelet
// API, containerLogs/NS/POD/CONTAINER, read through the pod's log path.
func (a *restAPI) proxyNode(w http.ResponseWriter, r *http.Request, req *restRequest) {
	ctx := r.Context()
	nodeInfo, podInfo := req.info, kinds.MustLookup(kinds.Pod)
	obj, _, err := a.res.get(ctx, nodeInfo, store.Key{Kind: nodeInfo.Kind, Name: req.name}, store.ReadOptions{Stale: true})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	node := obj.(*corev1.Node)
	if kp := node.Status.DaemonEndpoints.KubeletEndpoint.Port; req.proxy.port != "" && req.proxy.port != strconv.Itoa(int(kp)) {
		a.fail(w, r, badRequest("Skiff proxies to node %s's kubelet alone, on port %d, not to port %s", node.Name, kp, req.proxy.port))
		return
	}
	parts := strings.Split(strings.Trim(req.proxy.path, "/"), "/")
	if len(parts) != 4 || parts[0] != "containerLogs" {
		a.fail(w, r, statusError(codes.NotFound, ReasonNotFound, nil,
			"the kubelet of node %s serves no %q through Skiff's proxy: it serves containerLogs/NAMESPACE/POD/CONTAINER alone", node.Name, req.proxy.path))
		return
	}
	if req.verb != verbGet {
		a.fail(w, r, methodNotAllowed(r.Method))
		return
	}
	ns, name, container := parts[1], parts[2], parts[3]
	pobj, _, err := a.res.get(ctx, podInfo, store.Key{Kind: podInfo.Kind, Namespace: ns, Name: name}, store.ReadOptions{})
	if err == nil && pobj.(*corev1.Pod).Spec.NodeName != node.Name {
		err = statusError(codes.NotFound, ReasonNotFound, nil, "pod %s/%s does not run on node %s", ns, name, node.Name)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	lr, err := logsRequest(r.URL.Query(), ns, name, container)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.writeLogs(w, r, lr)
}

// portConn is a connection to a pod's port: the kubelet's PortForward stream.
type portConn struct {
	*portForwardStream
	wmu    sync.Mutex // Send and CloseSend, one at a time
	unread []byte     // of the last message, Read by Read alone
}

// dialPod connects to port of pod through kc, its kubelet, for as long as ctx lasts
// or until the connection is closed. The kubelet's refusal (no running container, a
// port nobody listens on) is the dial's error.
func dialPod(ctx context.Context, kc *kubeletConn, pod *corev1.Pod, port int32) (net.Conn, error) {
	k, err := startPortForward(ctx, pod, kc, port)
	if err != nil {
		return nil, err
	}
	first, err := k.ks.Recv()
	if errors.Is(err, io.EOF) {
		err = fmt.Errorf("port %d of pod %s/%s: the kubelet closed the stream before connecting", port, pod.Namespace, pod.Name)
	}
	if err != nil {
		k.cancel()
		return nil, kc.kubeletError(ctx, err)
	}
	return &portConn{portForwardStream: k, unread: first.GetData()}, nil
}

func (c *portConn) Read(b []byte) (int, error) {
	for len(c.unread) == 0 {
		m, err := c.ks.Recv()
		switch {
		case errors.Is(err, io.EOF):
			return 0, io.EOF
		case err != nil && c.ctx.Err() != nil:
			return 0, net.ErrClosed
		case err != nil:
			return 0, c.kc.kubeletError(c.ctx, err)
		}
		c.unread = m.GetData()
	}
	n := copy(b, c.unread)
	c.unread = c.unread[n:]
	return n, nil
}

// maxPortChunk bounds one message of a connection's data, well under gRPC's 4 MiB.
const maxPortChunk = 64 << 10

func (c *portConn) Write(b []byte) (int, error) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	written := 0
	for len(b) > 0 {
		n := min(len(b), maxPortChunk)
		if err := c.ks.Send(&kubeletv1.PortForwardInput{Msg: &kubeletv1.PortForwardInput_Data{Data: b[:n]}}); err != nil {
			if c.ctx.Err() != nil {
				return written, net.ErrClosed
			}
			return written, fmt.Errorf("write to the kubelet of node %s: %w", c.kc.node, err)
		}
		written += n
		b = b[n:]
	}
	return written, nil
}

// CloseWrite half-closes: the kubelet half-closes the pod's connection.
func (c *portConn) CloseWrite() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.ks.CloseSend()
}

// Close ends the stream (the kubelet closes the pod's connection).
func (c *portConn) Close() error {
	c.cancel()
	return nil
}

type portAddr string

func (a portAddr) Network() string { return "kubelet-portforward" }
func (a portAddr) String() string  { return string(a) }

func (c *portConn) LocalAddr() net.Addr  { return portAddr("apiserver") }
func (c *portConn) RemoteAddr() net.Addr { return portAddr("kubelet " + c.kc.addr) }

// Deadlines are not kept: the request's context bounds the connection, and closing it
// ends a blocked Read or Write.
func (c *portConn) SetDeadline(time.Time) error      { return nil }
func (c *portConn) SetReadDeadline(time.Time) error  { return nil }
func (c *portConn) SetWriteDeadline(time.Time) error { return nil }
