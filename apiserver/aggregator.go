package apiserver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/grpc/codes"
	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/httpstream"
	"k8s.io/apimachinery/pkg/util/proxy"
	"k8s.io/apiserver/pkg/endpoints"
	"k8s.io/client-go/transport"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	apiregistrationv1helper "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki"
	"github.com/skiffhq/skiff/store"
)

// The aggregation layer, as kube-apiserver's (k8s.io/kube-aggregator) with
// --enable-aggregator-routing: an apiregistration.k8s.io/v1 APIService that names a
// Service hands its group and version to an extension API server (metrics-server,
// Kubernetes' sample-apiserver) that runs behind that Service.
//
//   - Proxy: a request under /apis/GROUP/VERSION of such an APIService is authenticated,
//     given its seat by flow control and authorized here, as a request for a built-in
//     kind is (rest.go: the same RequestInfo, the same words), then proxied to a ready
//     endpoint of the Service (servicecalls.go) over TLS verified with the APIService's
//     caBundle for SERVICE.NAMESPACE.svc (or not at all with insecureSkipTLSVerify),
//     with the front-proxy client certificate and the user in X-Remote-User,
//     X-Remote-Group and X-Remote-Extra-* (the caller's own such headers and its
//     Authorization removed). apimachinery's UpgradeAwareHandler, kube-aggregator's own,
//     relays it: HTTP/1.1 or HTTP/2 to the backend, streams (watches) flushed as they
//     come, upgrades (WebSocket, SPDY) over HTTP/1.1. An APIService not Available, or a
//     Service without a ready endpoint, is a 503 Status saying why.
//   - Availability: every Config.Aggregator.AvailabilityInterval the leader checks each
//     such APIService — the Service, its port, a ready endpoint, then a GET of
//     /apis/GROUP/VERSION on it as system:kube-aggregator (system:masters) within 5 s —
//     and writes its Available condition with kube-aggregator's reasons
//     (ServiceNotFound, ServicePortError, EndpointsNotFound, MissingEndpoints,
//     FailedDiscoveryCheck; Passed when True).
//   - Discovery: /apis and /apis/GROUP list the aggregated groups and versions (every
//     such APIService, Available or not, as Kubernetes lists them), ordered by
//     groupPriorityMinimum and versionPriority after the built-in groups;
//     /apis/GROUP/VERSION is proxied. Aggregated discovery (apidiscovery.k8s.io/v2)
//     includes each Available version's resources, read from the backend's
//     /apis/GROUP/VERSION and kept Config.Aggregator.DiscoveryTTL; a version whose
//     backend stopped answering is listed Stale with what it last said, one never read
//     is left out. OpenAPI is not aggregated: the extension servers' schemas are not in
//     /openapi/v2 or v3.
//   - kube-system/extension-apiserver-authentication: the ConfigMap extension servers
//     read to authenticate the requests they get (the cluster's client CA, the front
//     proxy's CA and its request headers), kept by the leader with the built-in objects
//     (builtins.go) from the files, so that a rotated CA reaches it.
//
// Local APIServices (spec.service nil, the built-in groups') are builtins.go's. A group
// and version served by a built-in kind or a custom resource is never proxied.

// aggregator is the aggregation layer of one API server.
type aggregator struct {
	res *resources
	log hclog.Logger
	cfg Aggregator
	now func() time.Time
	// apiServices are the APIServices, as this node has them.
	apiServices *nsLists
	// transports call the extension servers with the front-proxy certificate.
	transports serviceTransports
	// frontProxy reads the front-proxy certificate and CA, clientCA the client CA
	// (nil: not configured).
	frontProxy, clientCA *pki.Reloader

	mu        sync.Mutex
	discovery map[schema.GroupVersion]*backendDiscovery
	// listed are the aggregated APIServices decoded from the list of objects from.
	listed struct {
		from     []store.Object
		services []*apiregistrationv1.APIService
	}
}

// backendDiscovery is what an extension server last said of its version's resources.
type backendDiscovery struct {
	at        time.Time // of the last attempt
	resources []apidiscoveryv2.APIResourceDiscovery
	read      bool // resources were read once
	fresh     bool // the last attempt read them
}

// The user the aggregator calls extension servers as for its own checks, as
// kube-aggregator's.
const aggregatorUser = "system:kube-aggregator"

// discoveryTimeout bounds a check's or a discovery read's call, kube-aggregator's 5 s.
const discoveryTimeout = 5 * time.Second

func newAggregator(cfg Aggregator, res *resources, log hclog.Logger, now func() time.Time) (*aggregator, error) {
	ag := &aggregator{res: res, log: log, cfg: cfg, now: now, apiServices: newNSLists(kinds.APIService),
		discovery: map[schema.GroupVersion]*backendDiscovery{}}
	if cfg.ProxyClientCertFile != "" || cfg.RequestHeaderCAFile != "" {
		r, err := pki.NewReloader(cfg.ProxyClientCertFile, cfg.ProxyClientKeyFile, cfg.RequestHeaderCAFile)
		if err != nil {
			return nil, fmt.Errorf("the front-proxy certificate (--proxy-client-cert-file, --requestheader-client-ca-file): %w", err)
		}
		ag.frontProxy = r
		if cfg.ProxyClientCertFile != "" {
			ag.transports.clientCert = r.Certificate
		}
	}
	if cfg.ClientCAFile != "" {
		r, err := pki.NewReloader("", "", cfg.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("--client-ca-file: %w", err)
		}
		ag.clientCA = r
	}
	return ag, nil
}

// list is every APIService naming a Service whose group and version no built-in kind,
// review or custom resource serves, as this node has them.
func (ag *aggregator) list(ctx context.Context) ([]*apiregistrationv1.APIService, error) {
	objs, err := ag.apiServices.list(ctx, ag.res.store, "", false)
	if err != nil {
		return nil, err
	}
	ag.mu.Lock()
	if len(objs) > 0 && len(ag.listed.from) == len(objs) && &ag.listed.from[0] == &objs[0] {
		out := ag.listed.services // nsLists hands out the same slice until an APIService changes
		ag.mu.Unlock()
		return out, nil
	}
	ag.mu.Unlock()
	info := kinds.MustLookup(kinds.APIService)
	var out []*apiregistrationv1.APIService
	for i := range objs {
		o, err := decode(info, &objs[i])
		if err != nil {
			return nil, err
		}
		s := o.(*apiregistrationv1.APIService)
		if s.Spec.Service != nil && !servedLocally(s.Spec.Group, s.Spec.Version) {
			out = append(out, s)
		}
	}
	ag.mu.Lock()
	ag.listed.from, ag.listed.services = objs, out
	ag.mu.Unlock()
	return out, nil
}

// lookup is the APIService naming a Service that serves group and version, nil if none
// does (or ag is nil: no aggregation).
func (ag *aggregator) lookup(ctx context.Context, group, version string) *apiregistrationv1.APIService {
	if ag == nil || group == "" || servedLocally(group, version) {
		return nil
	}
	list, err := ag.list(ctx)
	if err != nil {
		ag.log.Warn("reading the APIServices failed", "error", err)
		return nil
	}
	for _, s := range list {
		if s.Spec.Group == group && s.Spec.Version == version {
			return s
		}
	}
	return nil
}

// servedLocally says whether a built-in kind, a review or a custom resource has group and
// version.
func servedLocally(group, version string) bool {
	for _, in := range kinds.Served() {
		if in.Group == group && in.Version == version {
			return true
		}
	}
	for _, rv := range reviewResources {
		if rv.group == group && version == "v1" {
			return true
		}
	}
	return false
}

// aggregatedRequest reads the resource path parts of a request for svc's group and
// version, as parseResourcePath reads a built-in kind's, without a kind to check it
// against: the extension server judges the rest.
func aggregatedRequest(method string, q url.Values, parts []string, svc *apiregistrationv1.APIService) (*restRequest, error) {
	p := readResourcePath(method, q, parts)
	if len(p.parts) == 0 {
		return nil, notFoundPath()
	}
	if p.verb == "" {
		return nil, methodNotAllowed(method)
	}
	return &restRequest{verb: p.verb, namespace: p.namespace, name: p.name, subresource: p.subresource, apiService: svc, resource: p.parts[0]}, nil
}

// aggregate proxies an authorized request to svc's Service, as its user.
func (a *restAPI) aggregate(w http.ResponseWriter, r *http.Request, svc *apiregistrationv1.APIService) {
	ag := a.agg
	if !apiregistrationv1helper.IsAPIServiceConditionTrue(svc, apiregistrationv1.Available) {
		why := "its Available condition is not True"
		if c := apiregistrationv1helper.GetAPIServiceConditionByType(svc, apiregistrationv1.Available); c != nil && c.Message != "" {
			why = fmt.Sprintf("%s (%s)", c.Message, c.Reason)
		}
		a.fail(w, r, statusError(codes.Unavailable, ReasonUnavailable, nil, "the server is currently unable to handle the request: APIService %s is not available: %s", svc.Name, why))
		return
	}
	loc, tr, err := ag.target(r.Context(), svc)
	if err != nil {
		a.fail(w, r, statusError(codes.Unavailable, ReasonUnavailable, nil, "the server is currently unable to handle the request: APIService %s: %v", svc.Name, err))
		return
	}
	loc.Path, loc.RawPath, loc.RawQuery = r.URL.Path, r.URL.RawPath, r.URL.RawQuery
	user := requestUser(r.Context())
	out := r.Clone(r.Context())
	// The caller's credentials and impersonation are the API server's business; the
	// extension server learns the user from the front proxy's headers alone.
	out.Header.Del("Authorization")
	for k := range out.Header {
		if strings.HasPrefix(k, "Impersonate-") { // canonical keys: Impersonate-User, -Group, -Uid, -Extra-*
			out.Header.Del(k)
		}
	}
	transport.SetAuthProxyHeaders(out, user.Name, user.UID, user.Groups, user.Extra)
	h := proxy.NewUpgradeAwareHandler(loc, tr, true, httpstream.IsUpgradeRequest(r), proxyResponder{a})
	h.ServeHTTP(w, out)
}

// target is the URL (scheme and host) of a ready endpoint of svc's Service, and the
// transport to call it with.
func (ag *aggregator) target(ctx context.Context, svc *apiregistrationv1.APIService) (*url.URL, *http.Transport, error) {
	ref := svc.Spec.Service
	port := int32(443)
	if ref.Port != nil {
		port = *ref.Port
	}
	addr, err := ag.res.resolveService(ctx, ref.Namespace, ref.Name, port)
	if err != nil {
		return nil, nil, err
	}
	tr, err := ag.transports.get(svc.Spec.CABundle, serviceServerName(ref.Namespace, ref.Name), svc.Spec.InsecureSkipTLSVerify)
	if err != nil {
		return nil, nil, fmt.Errorf("spec.caBundle: %w", err)
	}
	return &url.URL{Scheme: "https", Host: addr}, tr, nil
}

// getDiscovery GETs svc's /apis/GROUP/VERSION from its Service as the aggregator, and
// returns the resource list it answers.
func (ag *aggregator) getDiscovery(ctx context.Context, svc *apiregistrationv1.APIService) (*metav1.APIResourceList, error) {
	loc, tr, err := ag.target(ctx, svc)
	if err != nil {
		return nil, err
	}
	loc.Path = "/apis/" + svc.Spec.Group + "/" + svc.Spec.Version
	ctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, loc.String(), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	transport.SetAuthProxyHeaders(req, aggregatorUser, "", []string{auth.GroupMasters}, nil)
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, fmt.Errorf("failing or missing response from %s: %w", loc, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 3<<20))
	if err != nil {
		return nil, fmt.Errorf("failing or missing response from %s: %w", loc, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("failing or missing response from %s: bad status from %s: %d", loc, loc, resp.StatusCode)
	}
	var list metav1.APIResourceList
	if err := json.Unmarshal(body, &list); err != nil {
		return nil, fmt.Errorf("failing or missing response from %s: %w", loc, err)
	}
	return &list, nil
}

// keepAvailable checks every aggregated APIService every interval while this server
// leads.
func (s *Server) keepAvailable(ctx context.Context) {
	s.whileLeading(ctx, s.cfg.Aggregator.AvailabilityInterval, func() {
		if err := s.agg.checkAvailability(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("checking the APIServices' availability failed; trying again later", "error", err)
		}
	})
}

// checkAvailability writes each aggregated APIService's Available condition.
func (ag *aggregator) checkAvailability(ctx context.Context) error {
	list, err := ag.list(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, svc := range list {
		want := ag.availability(ctx, svc)
		errs = append(errs, ag.res.keepStatus(ctx, svc, func(o kinds.Object) bool {
			return setAvailable(o.(*apiregistrationv1.APIService), want, ag.now())
		}))
	}
	return errors.Join(errs...)
}

// availability is svc's Available condition as a check finds it now.
func (ag *aggregator) availability(ctx context.Context, svc *apiregistrationv1.APIService) apiregistrationv1.APIServiceCondition {
	c := apiregistrationv1.APIServiceCondition{Type: apiregistrationv1.Available, Status: apiregistrationv1.ConditionFalse}
	list, err := ag.getDiscovery(ctx, svc)
	var se *serviceError
	switch {
	case errors.As(err, &se):
		c.Reason, c.Message = se.reason, se.msg
	case err != nil:
		c.Reason, c.Message = "FailedDiscoveryCheck", err.Error()
	default:
		c.Status, c.Reason, c.Message = apiregistrationv1.ConditionTrue, "Passed", "all checks passed"
		ag.noteDiscovery(svc, list.APIResources, true)
	}
	return c
}

// setAvailable sets s's Available condition to want, its transition time now when its
// status changes; it reports a change.
func setAvailable(s *apiregistrationv1.APIService, want apiregistrationv1.APIServiceCondition, now time.Time) bool {
	cur := apiregistrationv1helper.GetAPIServiceConditionByType(s, apiregistrationv1.Available)
	if cur != nil && cur.Status == want.Status && cur.Reason == want.Reason && cur.Message == want.Message {
		return false
	}
	want.LastTransitionTime = metav1.NewTime(now)
	if cur != nil && cur.Status == want.Status {
		want.LastTransitionTime = cur.LastTransitionTime
	}
	apiregistrationv1helper.SetAPIServiceCondition(s, want)
	return true
}

// groups are the aggregated APIServices by group, the groups by groupPriorityMinimum
// (highest first, then by name), each one's versions by versionPriority, as
// kube-aggregator orders them.
func (ag *aggregator) groups(ctx context.Context) [][]*apiregistrationv1.APIService {
	if ag == nil {
		return nil
	}
	list, err := ag.list(ctx)
	if err != nil {
		ag.log.Warn("reading the APIServices failed", "error", err)
		return nil
	}
	return apiregistrationv1helper.SortedByGroupAndVersion(slices.Clone(list)) // it sorts in place; list is shared
}

// apiGroupOf is an aggregated group's entry of /apis and /apis/GROUP.
func apiGroupOf(svcs []*apiregistrationv1.APIService) metav1.APIGroup {
	g := metav1.APIGroup{Name: svcs[0].Spec.Group}
	for _, s := range svcs {
		g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: s.Spec.Group + "/" + s.Spec.Version, Version: s.Spec.Version})
	}
	g.PreferredVersion = g.Versions[0]
	return g
}

// discoveryGroup is an aggregated group's entry of aggregated discovery: each version
// whose backend's resources were read, Stale when the last read failed.
func (ag *aggregator) discoveryGroup(ctx context.Context, svcs []*apiregistrationv1.APIService) (apidiscoveryv2.APIGroupDiscovery, bool) {
	g := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: svcs[0].Spec.Group}}
	for _, s := range svcs {
		d := ag.backendResources(ctx, s)
		if !d.read {
			continue
		}
		v := apidiscoveryv2.APIVersionDiscovery{Version: s.Spec.Version, Resources: d.resources, Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent}
		if !d.fresh {
			v.Freshness = apidiscoveryv2.DiscoveryFreshnessStale
		}
		g.Versions = append(g.Versions, v)
	}
	return g, len(g.Versions) > 0
}

// backendResources is what svc's backend says of its resources: read again when older
// than DiscoveryTTL and the APIService is Available.
func (ag *aggregator) backendResources(ctx context.Context, svc *apiregistrationv1.APIService) backendDiscovery {
	gv := schema.GroupVersion{Group: svc.Spec.Group, Version: svc.Spec.Version}
	ag.mu.Lock()
	d, ok := ag.discovery[gv]
	ag.mu.Unlock()
	if ok && ag.now().Sub(d.at) < ag.cfg.DiscoveryTTL {
		return *d
	}
	if !apiregistrationv1helper.IsAPIServiceConditionTrue(svc, apiregistrationv1.Available) {
		return ag.noteDiscovery(svc, nil, false)
	}
	list, err := ag.getDiscovery(ctx, svc)
	if err != nil {
		ag.log.Debug("reading an extension server's discovery failed", "apiservice", svc.Name, "error", err)
		return ag.noteDiscovery(svc, nil, false)
	}
	return ag.noteDiscovery(svc, list.APIResources, true)
}

// noteDiscovery records a read of svc's backend's resources (ok: it answered them) and
// returns what discovery says of it now.
func (ag *aggregator) noteDiscovery(svc *apiregistrationv1.APIService, resources []metav1.APIResource, ok bool) backendDiscovery {
	gv := schema.GroupVersion{Group: svc.Spec.Group, Version: svc.Spec.Version}
	ag.mu.Lock()
	defer ag.mu.Unlock()
	d := ag.discovery[gv]
	if d == nil {
		if len(ag.discovery) > 1000 { // bounded: versions of deleted APIServices
			clear(ag.discovery)
		}
		d = &backendDiscovery{}
		ag.discovery[gv] = d
	}
	d.at, d.fresh = ag.now(), ok
	if ok {
		converted, err := endpoints.ConvertGroupVersionIntoToDiscovery(resources)
		if err != nil {
			ag.log.Warn("an extension server's resources do not convert to aggregated discovery", "apiservice", svc.Name, "error", err)
			d.fresh = false
		} else {
			d.resources, d.read = converted, true
		}
	}
	return *d
}

// The ConfigMap extension servers read, and its keys (Kubernetes' cluster authentication
// trust controller's).
const (
	extensionAuthConfigMap = "extension-apiserver-authentication"
	frontProxyUserHeader   = "X-Remote-User"
	frontProxyGroupHeader  = "X-Remote-Group"
	frontProxyExtraPrefix  = "X-Remote-Extra-"
)

// ensureAuthenticationConfigMap keeps kube-system/extension-apiserver-authentication as
// the CA files say now: client-ca-file (the client CA), and with the front-proxy CA
// requestheader-client-ca-file, requestheader-allowed-names (the front-proxy client's
// name) and the request headers, each a JSON list. Nothing is kept without either CA.
func (ag *aggregator) ensureAuthenticationConfigMap(ctx context.Context) error {
	data := map[string]string{}
	if ag.clientCA != nil {
		ca, err := ag.clientCA.CAPEM()
		if err != nil {
			return fmt.Errorf("%s: client CA: %w", extensionAuthConfigMap, err)
		}
		data["client-ca-file"] = string(ca)
	}
	if ag.frontProxy != nil && ag.cfg.RequestHeaderCAFile != "" {
		ca, err := ag.frontProxy.CAPEM()
		if err != nil {
			return fmt.Errorf("%s: front-proxy CA: %w", extensionAuthConfigMap, err)
		}
		list := func(v ...string) string {
			b, _ := json.Marshal(v)
			return string(b)
		}
		data["requestheader-client-ca-file"] = string(ca)
		data["requestheader-allowed-names"] = list(pki.FrontProxyClient)
		data["requestheader-username-headers"] = list(frontProxyUserHeader)
		data["requestheader-group-headers"] = list(frontProxyGroupHeader)
		data["requestheader-extra-headers-prefix"] = list(frontProxyExtraPrefix)
	}
	if len(data) == 0 {
		return nil
	}
	want := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: extensionAuthConfigMap}, Data: data}
	_, err := ag.res.keep(ctx, want, func(o kinds.Object) bool {
		cm := o.(*corev1.ConfigMap)
		if maps.Equal(cm.Data, data) {
			return false
		}
		cm.Data = data
		return true
	})
	return err
}
