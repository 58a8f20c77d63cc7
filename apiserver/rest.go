package apiserver

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/apiserver/validation"
	"github.com/skiffhq/skiff/internal/workers"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/kinds/table"
	"github.com/skiffhq/skiff/store"
)

// The REST API is Kubernetes' HTTP API (the one kubectl, client-go and Helm speak) over
// the same operations, authentication and authorization as the gRPC API: this file
// routes a request to its kind and verb, authenticates and authorizes it, decodes its
// body and encodes the reply; resources.go does the work. Every kind in kinds.All is
// served at Kubernetes' paths, with no code per kind.

// restAPI is the REST front end.
type restAPI struct {
	res      *resources
	gate     *gate
	pods     *pods
	metrics  *metrics
	log      hclog.Logger
	now      func() time.Time
	maxBody  int64
	ready    func(ctx context.Context) error
	openapi  http.Handler
	serverIP func(r *http.Request) string
	workers  *workers.Pool // nil: every request on its own goroutine
	agg      *aggregator
}

// restRequest is a resource request, as its path and method say.
type restRequest struct {
	verb                         string // get list watch create update patch delete deletecollection
	info                         *kinds.Info
	namespace, name, subresource string
	body                         []byte // a create's body, once read (serve reads it for the name)
	bodyRead                     bool
	proxy                        *proxyTarget // the proxy subresource's target (rest_proxy.go)
	// apiService, when set, is the APIService whose Service serves the request
	// (aggregator.go), resource the path's resource; info is then nil.
	apiService *apiregistrationv1.APIService
	resource   string
}

// REST verbs, Kubernetes' words.
const (
	verbGet              = "get"
	verbList             = "list"
	verbWatch            = "watch"
	verbCreate           = "create"
	verbUpdate           = "update"
	verbPatch            = "patch"
	verbDelete           = "delete"
	verbDeleteCollection = "deletecollection"
)

// authVerbs maps REST verbs to the authorizer's: a patch is an update, a collection's
// deletion the deletion of each object.
var authVerbs = map[string]string{
	verbGet: auth.Get, verbList: auth.List, verbWatch: auth.Watch, verbCreate: auth.Create,
	verbUpdate: auth.Update, verbPatch: auth.Update, verbDelete: auth.Delete, verbDeleteCollection: auth.Delete,
}

func (a *restAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if a.workers != nil && r.Method != http.MethodGet && r.Method != http.MethodHead && !isPodStreamPath(r.URL.Path) {
		// Writes on a worker (internal/workers); reads, watches and followed logs,
		// which may last, on the request's goroutine.
		a.workers.Do(func() { a.serveHTTP(w, r) })
		return
	}
	a.serveHTTP(w, r)
}

func (a *restAPI) serveHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	sw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
	label := a.serve(sw, r)
	if a.metrics != nil && label != "" {
		a.metrics.requests.WithLabelValues(label, strconv.Itoa(sw.code)).Inc()
		if !strings.HasSuffix(label, " watch") {
			a.metrics.latency.WithLabelValues(label).Observe(time.Since(start).Seconds())
		}
	}
	if a.log.IsDebug() {
		a.log.Debug("request", "method", r.Method, "path", r.URL.Path, "code", sw.code, "duration", time.Since(start), "peer", r.RemoteAddr, "agent", r.UserAgent())
	}
}

// statusWriter remembers the code written, and flushes for watches.
type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}

// Hijack hands an upgraded connection (a pod's exec, attach or portforward) over.
func (w *statusWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	h, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		return nil, nil, fmt.Errorf("this connection cannot be upgraded (HTTP/2)")
	}
	w.code = http.StatusSwitchingProtocols
	return h.Hijack()
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// serve handles one request and returns its metrics label.
func (a *restAPI) serve(w http.ResponseWriter, r *http.Request) string {
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch {
	case path == "/healthz" || path == "/livez" || strings.HasPrefix(path, "/healthz/") || strings.HasPrefix(path, "/livez/"):
		a.health(w, r, nil)
		return ""
	case path == "/readyz" || strings.HasPrefix(path, "/readyz/"):
		a.health(w, r, a.ready)
		return ""
	case path == "/version":
		writeJSON(w, http.StatusOK, serverVersion())
		return "rest version"
	}
	user, err := a.gate.authenticate(a.credentials(r), r.Method+" "+r.URL.Path, r.RemoteAddr)
	if err != nil {
		a.fail(w, r, err)
		return "rest unauthenticated"
	}
	if user, err = a.gate.impersonate(user, r.Header); err != nil {
		a.fail(w, r, err)
		return "rest impersonation"
	}
	if a.gate.conns != nil {
		// Its client has identified itself: the connection is no longer pending.
		a.gate.conns.EstablishedAddr(r.RemoteAddr)
	}
	ctx := context.WithValue(r.Context(), userKey{}, user)
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	resourcePath := segs[0] == "api" && len(segs) >= 3 || segs[0] == "apis" && len(segs) >= 4
	review, reviewNS := reviewOf(segs)
	if !resourcePath || review != "" {
		// Discovery, OpenAPI and reviews: through flow control as the user's.
		done, err := a.gate.limit(ctx, auth.Attributes{User: user})
		if err != nil {
			a.fail(w, r, err)
			return "rest throttled"
		}
		defer done()
	}
	switch {
	case review != "":
		a.serveReview(w, r.WithContext(ctx), review, reviewNS)
		return "rest " + review + " create"
	case path == openIDConfiguration || path == openIDKeys:
		a.openID(w, r, path)
		return "rest openid"
	case path == "/api" || path == "/apis":
		a.discoveryRoot(w, r, path)
		return "rest discovery"
	case len(segs) == 2 && segs[0] == "apis":
		a.discoveryGroup(w, r, segs[1])
		return "rest discovery"
	case segs[0] == "openapi":
		a.openapi.ServeHTTP(w, r)
		return "rest openapi"
	}
	var group, version string
	var rest []string
	switch {
	case len(segs) >= 2 && segs[0] == "api":
		version, rest = segs[1], segs[2:]
	case len(segs) >= 3 && segs[0] == "apis":
		group, version, rest = segs[1], segs[2], segs[3:]
	default:
		a.fail(w, r, notFoundPath())
		return "rest notfound"
	}
	// A group and version no built-in kind, review or custom resource has may be an
	// APIService's that names a Service: proxied to it (aggregator.go).
	apiService := a.agg.lookup(ctx, group, version)
	if len(rest) == 0 {
		if apiService != nil {
			a.aggregate(w, r.WithContext(ctx), apiService)
		} else {
			a.discoveryVersion(w, r, group, version)
		}
		return "rest discovery"
	}
	var req *restRequest
	if apiService != nil {
		req, err = aggregatedRequest(r.Method, r.URL.Query(), rest, apiService)
	} else {
		req, err = parseResourcePath(r.Method, r.URL.Query(), group, version, rest)
	}
	if err != nil {
		a.fail(w, r, err)
		return "rest notfound"
	}
	plural := req.resource
	if req.info != nil {
		plural = req.info.Plural
	}
	label := "rest " + plural
	if req.subresource != "" {
		label += "/" + req.subresource
	}
	label += " " + req.verb
	attrs := auth.Attributes{User: user, Verb: authVerbs[req.verb], Resource: plural, Subresource: req.subresource,
		Namespace: req.namespace, Name: req.name, FieldSelector: r.URL.Query().Get("fieldSelector"), APIGroup: group}
	if attrs.Verb != req.verb {
		attrs.RequestVerb = req.verb // patch, deletecollection: RBAC's rules name them
	}
	if req.name == "" && (req.verb == verbList || req.verb == verbWatch) {
		// A list or watch of one object by fieldSelector metadata.name=NAME is
		// authorized as of that object, as Kubernetes' RequestInfo and the gRPC API
		// take it (RBAC's resourceNames: extension servers read their ConfigMap so).
		attrs.Name = selectedName(attrs.FieldSelector)
	}
	if podStreamSubresource(req.subresource) {
		attrs.Verb = auth.Create // a GET too: Kubernetes authorizes WebSocket upgrades so
	}
	if req.verb == verbCreate && req.subresource == "" && req.apiService == nil {
		// The name is the object's: read it from the body, as the gRPC API reads it.
		body, err := a.readBody(r)
		if err != nil {
			a.fail(w, r, err)
			return label
		}
		req.body, req.bodyRead = body, true // decoded by the handler, not read again
		attrs.Name = peekName(r.Header.Get("Content-Type"), body)
	}
	done, err := a.gate.limit(ctx, attrs)
	if err != nil {
		a.fail(w, r, err)
		return label
	}
	if req.verb == verbWatch || req.subresource == "log" && r.URL.Query().Get("follow") == "true" || podStreamSubresource(req.subresource) ||
		req.subresource == auth.SubresourceProxy {
		// A stream holds its seat only while it is admitted, as Kubernetes' watches do.
		done()
		done = noop
	}
	defer done()
	if ctx, err = a.gate.authorizeAttrs(ctx, attrs); err != nil {
		a.fail(w, r, err)
		return label
	}
	if req.verb == verbWatch && a.gate.authn != nil {
		if err := a.gate.limiter.watchStart(user.Name); err != nil {
			a.fail(w, r, err)
			return label
		}
		defer a.gate.limiter.watchDone(user.Name)
	}
	if req.apiService != nil {
		a.aggregate(w, r.WithContext(ctx), req.apiService)
		return label
	}
	manager := r.URL.Query().Get("fieldManager")
	if manager == "" {
		manager = userAgentManager(r.UserAgent())
	}
	ctx = withRequested(withWarnings(withManager(withClient(ctx, "HTTP "+r.Method, r.UserAgent()), manager)), req.info)
	a.dispatch(w, r.WithContext(ctx), req)
	return label
}

// credentials are what an HTTP request presents: its connection's client certificate
// and its bearer token.
func (a *restAPI) credentials(r *http.Request) auth.Credentials {
	var c auth.Credentials
	if st := requestTLS(r.Context()); st != nil {
		c.Chain = st.PeerCertificates
	} else if r.TLS != nil {
		c.Chain = r.TLS.PeerCertificates
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		c.BearerToken = strings.TrimSpace(tok)
	}
	return c
}

// peekName reads metadata.name of a body, "" if it has none, without decoding the rest:
// the handler decodes it, once.
func peekName(contentType string, body []byte) string {
	if mediaType(contentType) == kinds.ContentType {
		names, _ := kinds.ParseNames(body)
		return names.Name
	}
	var m struct {
		Metadata struct{ Name string } `json:"metadata"`
	}
	if js, err := yaml.YAMLToJSON(body); err == nil {
		_ = json.Unmarshal(js, &m)
	}
	return m.Metadata.Name
}

// pathInfo is what a resource path below /api/v1 or /apis/GROUP/VERSION says before
// its kind is looked up, read as Kubernetes' RequestInfo reads it:
// [watch/][namespaces/NS/]RESOURCE[/NAME[/SUBRESOURCE]], where namespaces/NS/status and
// namespaces/NS/finalize are the namespace's own.
type pathInfo struct {
	verb                         string // "" for a method with none (methodVerb)
	namespace, name, subresource string
	parts                        []string // RESOURCE[/NAME[/SUBRESOURCE...]]
}

func readResourcePath(method string, q url.Values, parts []string) pathInfo {
	var p pathInfo
	watch := false
	if len(parts) > 0 && parts[0] == "watch" {
		watch, parts = true, parts[1:]
	}
	if len(parts) > 1 && parts[0] == "namespaces" {
		p.namespace = parts[1]
		if len(parts) > 2 && parts[2] != "status" && parts[2] != "finalize" {
			parts = parts[2:]
		}
	}
	p.parts = parts
	if len(parts) > 1 {
		p.name = parts[1]
	}
	if len(parts) > 2 {
		p.subresource = parts[2]
	}
	if b, _ := strconv.ParseBool(q.Get("watch")); b {
		watch = true
	}
	p.verb = methodVerb(method)
	switch {
	case p.verb == verbGet && watch:
		p.verb = verbWatch
	case p.verb == verbGet && p.name == "":
		p.verb = verbList
	case p.verb == verbDelete && p.name == "":
		p.verb = verbDeleteCollection
	}
	return p
}

// parseResourcePath reads a resource path below /api/v1 or /apis/GROUP/VERSION
// (readResourcePath) and finds its kind.
func parseResourcePath(method string, q url.Values, group, version string, parts []string) (*restRequest, error) {
	p := readResourcePath(method, q, parts)
	parts = p.parts
	if len(parts) >= 3 && parts[2] == auth.SubresourceProxy {
		return parseProxyPath(method, group, version, p.namespace, parts)
	}
	if len(parts) == 0 || len(parts) > 3 {
		return nil, notFoundPath()
	}
	info := lookupResource(group, version, parts[0])
	if info == nil {
		return nil, notFoundPath()
	}
	req := &restRequest{verb: p.verb, info: info, namespace: p.namespace, name: p.name, subresource: p.subresource}
	if info.Kind == kinds.Namespace {
		req.namespace = ""
	} else if !info.Namespaced && req.namespace != "" {
		return nil, notFoundPath()
	}
	if req.verb == "" {
		return nil, methodNotAllowed(method)
	}
	if info.Namespaced && req.namespace == "" && req.verb != verbList && req.verb != verbWatch {
		return nil, notFoundPath() // only lists and watches span namespaces
	}
	if !subresourceAllows(info, req.subresource, req.verb) {
		if req.subresource != "" && !subresourceExists(info, req.subresource) {
			return nil, notFoundPath()
		}
		return nil, methodNotAllowed(method)
	}
	if (req.verb == verbUpdate || req.verb == verbPatch || req.verb == verbDelete) && req.name == "" ||
		req.verb == verbCreate && req.name != "" && req.subresource == "" {
		return nil, methodNotAllowed(method)
	}
	return req, nil
}

// methodVerb is an HTTP method's verb on one object ("": none).
func methodVerb(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead:
		return verbGet
	case http.MethodPost:
		return verbCreate
	case http.MethodPut:
		return verbUpdate
	case http.MethodPatch:
		return verbPatch
	case http.MethodDelete:
		return verbDelete
	}
	return ""
}

// lookupResource finds the kind a path's group, version and resource name.
func lookupResource(group, version, resource string) *kinds.Info {
	for _, in := range kinds.Served() {
		if in.Group == group && in.Version == version && in.Plural == resource {
			return in
		}
	}
	return nil
}

func notFoundPath() error {
	e := statusError(codes.NotFound, ReasonNotFound, nil, "the server could not find the requested resource")
	e.status.Details = &metav1.StatusDetails{Causes: []metav1.StatusCause{{Type: metav1.CauseTypeUnexpectedServerResponse, Message: "404 page not found"}}}
	return e
}

func methodNotAllowed(method string) error {
	e := statusError(codes.Unimplemented, "", nil, "the server does not allow this method on the requested resource")
	e.status.Reason, e.status.Code = metav1.StatusReasonMethodNotAllowed, http.StatusMethodNotAllowed
	_ = method
	return e
}

// dispatch runs a routed, authorized request.
func (a *restAPI) dispatch(w http.ResponseWriter, r *http.Request, req *restRequest) {
	q := r.URL.Query()
	switch req.subresource {
	case "":
	case "status", SubresourceApproval:
		a.status(w, r, req)
		return
	case "scale":
		a.scale(w, r, req)
		return
	case "binding":
		a.binding(w, r, req)
		return
	case "log":
		a.podLog(w, r, req)
		return
	case "eviction":
		a.eviction(w, r, req)
		return
	case subresourceEphemeralContainers, subresourceResize:
		a.podSpecSubresource(w, r, req)
		return
	case auth.SubresourceToken:
		a.token(w, r, req)
		return
	case auth.SubresourceExec, auth.SubresourceAttach:
		a.podExec(w, r, req)
		return
	case auth.SubresourcePortForward:
		a.podPortForward(w, r, req)
		return
	case auth.SubresourceProxy:
		a.proxy(w, r, req)
		return
	}
	// req.info may be served over another kind's storage (rest_versions.go): the
	// registry is given its stored kind, and what it answers is converted back.
	ctx, view := r.Context(), req.info
	switch req.verb {
	case verbGet:
		res, err := a.res.getObject(ctx, view.Stored(), req.namespace, req.name, readOptions(q.Get("resourceVersion")))
		res, err = asVersion(view)(res, err)
		a.respond(w, r, http.StatusOK, res, err)
	case verbList:
		a.list(w, r, req)
	case verbWatch:
		a.watch(w, r, req)
	case verbCreate:
		opts, err := writeOptionsOf(q)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		obj, err := a.decodeBody(w, r, req, "")
		if err == nil {
			obj, err = toStorage(view, obj)
		}
		if err != nil {
			a.fail(w, r, err)
			return
		}
		res, err := asVersion(view)(a.res.create(ctx, obj, opts))
		a.respond(w, r, http.StatusCreated, res, err)
	case verbUpdate:
		opts, err := writeOptionsOf(q)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		obj, err := a.decodeBody(w, r, req, req.name)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		if obj, err = convertToStorage(view, obj); err != nil {
			a.fail(w, r, err)
			return
		}
		res, err := asVersion(view)(a.res.replace(ctx, obj, opts, func(cur, next kinds.Object) error {
			return checkVersionUpdate(view, cur, next)
		}))
		a.respond(w, r, http.StatusOK, res, err)
	case verbPatch:
		a.patch(w, r, req, func(cur kinds.Object, patched kinds.Object) (kinds.Object, error) {
			next, err := a.res.nextState(ctx, view.Stored(), cur, patched, false)
			if err == nil {
				err = checkVersionUpdate(view, cur, next)
			}
			return next, err
		})
	case verbDelete:
		opts, err := a.deleteOptionsOf(r)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		res, err := asVersion(view)(a.res.delete(ctx, view.Stored(), req.namespace, req.name, opts))
		a.respondDeleted(w, r, req, res, err)
	case verbDeleteCollection:
		a.deleteCollection(w, r, req)
	}
}

// readOptions are a get's consistency, from its resourceVersion: "" the current state,
// "0" any (this node's), N this node's once it has applied N.
func readOptions(rv string) store.ReadOptions {
	switch rv {
	case "":
		return store.ReadOptions{}
	case "0":
		return store.ReadOptions{Stale: true}
	}
	n, _ := strconv.ParseInt(rv, 10, 64)
	return store.ReadOptions{Stale: true, MinRevision: n}
}

// writeOptionsOf reads dryRun.
func writeOptionsOf(q url.Values) (writeOptions, error) {
	var opts writeOptions
	for _, v := range q["dryRun"] {
		if v != metav1.DryRunAll {
			return opts, statusError(codes.InvalidArgument, ReasonInvalid, nil, "dryRun: Unsupported value: %q: supported values: %q", v, metav1.DryRunAll)
		}
		opts.dryRun = true
	}
	return opts, nil
}

// listOptionsOf reads a list's (or a deletecollection's) ListOptions from the query.
func listOptionsOf(q url.Values, req *restRequest) (listOptions, error) {
	opts := listOptions{namespace: req.namespace, labelSelector: q.Get("labelSelector"), fieldSelector: q.Get("fieldSelector"),
		resourceVersion: q.Get("resourceVersion"), resourceVersionMatch: q.Get("resourceVersionMatch"), continueToken: q.Get("continue")}
	if l := q.Get("limit"); l != "" {
		n, err := strconv.ParseInt(l, 10, 64)
		if err != nil {
			return opts, badRequest("limit: Invalid value: %q: must be an integer", l)
		}
		opts.limit = n
	}
	if q.Has("sendInitialEvents") {
		return opts, statusError(codes.InvalidArgument, ReasonInvalid, nil, "sendInitialEvents: Forbidden: sendInitialEvents is forbidden for list")
	}
	return opts, nil
}

func (a *restAPI) list(w http.ResponseWriter, r *http.Request, req *restRequest) {
	opts, err := listOptionsOf(r.URL.Query(), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	l, err := a.res.list(r.Context(), req.info, opts)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.respondList(w, r, req.info, l)
}

// The encodings of replies.
type format int

const (
	formatJSON format = iota
	formatYAML
	formatProtobuf
	formatTable
	formatMetadata // PartialObjectMetadata(List)
)

// negotiate picks the reply's encoding from the Accept header, in the client's order of
// preference: JSON (also for */*), YAML, Kubernetes' protobuf when protobuf (the kind
// has it: custom resources have not, as in Kubernetes), and for JSON the Table and
// PartialObjectMetadata views. ok is false when nothing acceptable is offered.
func negotiate(accept string, protobuf bool) (f format, ok bool) {
	if strings.TrimSpace(accept) == "" {
		return formatJSON, true
	}
	if !strings.Contains(accept, ";") {
		// No parameters (client-go's and kubectl's usual headers): every offer has q=1,
		// so the first acceptable wins, found without mime.ParseMediaType's allocations.
		for rest := accept; rest != ""; {
			var part string
			part, rest, _ = strings.Cut(rest, ",")
			if f, ok := plainFormat(strings.TrimSpace(part)); ok && (protobuf || f != formatProtobuf) {
				return f, true
			}
		}
		return formatJSON, false
	}
	type offer struct {
		f format
		q float64
	}
	var offers []offer
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			q, _ = strconv.ParseFloat(v, 64)
		}
		if q <= 0 {
			continue
		}
		as, g, v := params["as"], params["g"], params["v"]
		switch mt {
		case "application/json", "*/*", "application/*":
			switch {
			case as == "":
				offers = append(offers, offer{formatJSON, q})
			case as == "Table" && g == "meta.k8s.io" && (v == "v1" || v == "v1beta1"):
				offers = append(offers, offer{formatTable, q})
			case (as == "PartialObjectMetadata" || as == "PartialObjectMetadataList") && g == "meta.k8s.io" && (v == "v1" || v == "v1beta1"):
				offers = append(offers, offer{formatMetadata, q})
			}
		case "application/yaml":
			if as == "" {
				offers = append(offers, offer{formatYAML, q})
			}
		case kinds.ContentType:
			if as == "" && protobuf {
				offers = append(offers, offer{formatProtobuf, q})
			}
		}
	}
	if len(offers) == 0 {
		return formatJSON, false
	}
	sort.SliceStable(offers, func(i, j int) bool { return offers[i].q > offers[j].q })
	return offers[0].f, true
}

// plainFormat is the encoding of a media type without parameters.
func plainFormat(mt string) (format, bool) {
	switch {
	case strings.EqualFold(mt, "application/json"), mt == "*/*", strings.EqualFold(mt, "application/*"):
		return formatJSON, true
	case strings.EqualFold(mt, "application/yaml"):
		return formatYAML, true
	case strings.EqualFold(mt, kinds.ContentType):
		return formatProtobuf, true
	}
	return formatJSON, false
}

// hasProtobuf says whether info's objects have Kubernetes' protobuf encoding: every kind
// but custom resources (nil: not a kind's object, a review).
func hasProtobuf(info *kinds.Info) bool { return info == nil || info.Custom == nil }

// mediaTypes lists the encodings of info's objects, for the errors that name them.
func mediaTypes(info *kinds.Info) string {
	if hasProtobuf(info) {
		return "application/json, application/yaml, " + kinds.ContentType
	}
	return "application/json, application/yaml"
}

func notAcceptable(info *kinds.Info) error {
	e := statusError(codes.InvalidArgument, "", nil, "only the following media types are accepted: %s", mediaTypes(info))
	e.status.Reason, e.status.Code = metav1.StatusReasonNotAcceptable, http.StatusNotAcceptable
	return e
}

// respond writes one object, or err.
func (a *restAPI) respond(w http.ResponseWriter, r *http.Request, code int, res result, err error) {
	for _, msg := range takeWarnings(r.Context()) { // the admission webhooks'
		addWarning(w, msg)
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	f, ok := negotiate(r.Header.Get("Accept"), hasProtobuf(res.info))
	if !ok {
		a.fail(w, r, notAcceptable(res.info))
		return
	}
	if f == formatProtobuf && res.value != nil {
		w.Header().Set("Content-Type", kinds.ContentType)
		w.WriteHeader(code)
		w.Write(kinds.PrepareResourceVersion(current(res.info, res.value), res.rev).AppendTo(nil))
		return
	}
	obj, err := res.object()
	if err != nil {
		a.fail(w, r, err)
		return
	}
	now := a.now()
	var out runtime.Object = obj
	switch f {
	case formatTable:
		t, err := a.table(r, res.info, []kinds.Object{obj}, metav1.ListMeta{}, now)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		out = t
	case formatMetadata:
		out = partialMetadata(obj)
	default:
		kinds.SetTypeMeta(obj)
	}
	writeAs(w, f, code, out)
}

// writeAs encodes v in f (Table and metadata views are JSON).
func writeAs(w http.ResponseWriter, f format, code int, v runtime.Object) {
	switch f {
	case formatProtobuf:
		if o, ok := v.(kinds.Object); ok {
			if b, err := kinds.Encode(o); err == nil {
				w.Header().Set("Content-Type", kinds.ContentType)
				w.WriteHeader(code)
				w.Write(b)
				return
			}
		}
	case formatYAML:
		js, err := json.Marshal(v)
		if err == nil {
			if y, err := yaml.JSONToYAML(js); err == nil {
				w.Header().Set("Content-Type", "application/yaml")
				w.WriteHeader(code)
				w.Write(y)
				return
			}
		}
	}
	writeJSON(w, code, v)
}

// writeJSON writes v as Kubernetes' JSON serializer does: encoding/json, one line.
func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	writeJSONBody(w, code, v)
}

func writeJSONBody(w http.ResponseWriter, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.WriteHeader(code)
	w.Write(append(b, '\n'))
}

func partialMetadata(obj kinds.Object) *metav1.PartialObjectMetadata {
	m := &metav1.PartialObjectMetadata{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadata"}}
	if a, err := metaAccessor(obj); err == nil {
		m.ObjectMeta = *a
	}
	return m
}

// metaAccessor is obj's ObjectMeta.
func metaAccessor(obj kinds.Object) (*metav1.ObjectMeta, error) {
	type withMeta interface{ GetObjectMeta() metav1.Object }
	if o, ok := obj.(withMeta); ok {
		if m, ok := o.GetObjectMeta().(*metav1.ObjectMeta); ok {
			return m, nil
		}
	}
	return nil, fmt.Errorf("%T has no ObjectMeta", obj)
}

// listHead is what a list's JSON has before its items.
type listHead struct {
	metav1.TypeMeta `json:",inline"`
	ListMeta        metav1.ListMeta `json:"metadata"`
}

// respondList writes a list.
func (a *restAPI) respondList(w http.ResponseWriter, r *http.Request, info *kinds.Info, l listResult) {
	f, ok := negotiate(r.Header.Get("Accept"), hasProtobuf(info))
	if !ok {
		a.fail(w, r, notAcceptable(info))
		return
	}
	meta := metav1.ListMeta{ResourceVersion: strconv.FormatInt(l.rev, 10), Continue: l.continueToken, RemainingItemCount: l.remaining}
	if f == formatProtobuf {
		items := make([]kinds.WithResourceVersion, len(l.items))
		for i := range l.items {
			if info.Conversion != nil || info.Custom != nil {
				// Served over another kind's storage, or a custom resource (stored in the
				// version of its time): converted, encoded afresh.
				obj, err := decode(info, &l.items[i])
				var b []byte
				if err == nil {
					obj.SetResourceVersion("")
					b, err = kinds.Encode(obj)
				}
				if err != nil {
					a.fail(w, r, storeError(info, l.items[i].Name, err))
					return
				}
				items[i] = kinds.PrepareResourceVersion(b, l.items[i].ModRevision)
				continue
			}
			items[i] = kinds.PrepareResourceVersion(current(info, l.items[i].Value), l.items[i].ModRevision)
		}
		b, err := kinds.EncodeList(info, meta, items)
		if err != nil {
			a.fail(w, r, storeError(info, "", err))
			return
		}
		w.Header().Set("Content-Type", kinds.ContentType)
		w.WriteHeader(http.StatusOK)
		w.Write(b)
		return
	}
	if f == formatJSON || f == formatYAML {
		a.respondListJSON(w, r, info, l, meta, f)
		return
	}
	objs, err := decodeList(info, l.items)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	switch f {
	case formatTable:
		t, err := a.table(r, info, objs, meta, a.now())
		if err != nil {
			a.fail(w, r, err)
			return
		}
		writeJSON(w, http.StatusOK, t)
		return
	case formatMetadata:
		ml := &metav1.PartialObjectMetadataList{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "PartialObjectMetadataList"}, ListMeta: meta}
		for _, o := range objs {
			pm := partialMetadata(o)
			pm.TypeMeta = metav1.TypeMeta{}
			ml.Items = append(ml.Items, *pm)
		}
		if ml.Items == nil {
			ml.Items = []metav1.PartialObjectMetadata{}
		}
		writeJSON(w, http.StatusOK, ml)
		return
	}
}

// listBuffers holds the buffers JSON lists are written in, so that a list's pages reuse
// one rather than each growing its own (a page of 500 pods is about 0.7 MB of JSON).
var listBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledListBuffer bounds the buffers listBuffers keeps: an unpaged list of many
// objects is not held on to.
const maxPooledListBuffer = 8 << 20

// respondListJSON writes a list as Kubernetes' JSON serializer does (or as YAML, from
// that JSON): kind, apiVersion, metadata, then the items, whose own kind and apiVersion a
// built-in kind's leave out (a custom resource keeps them in a list, as
// apiextensions-apiserver writes them). Each item of a built-in kind is decoded from the
// store's bytes and encoded into the reply in turn, so a page never holds all its
// decoded objects at once, and the reply's buffer is sized for the page beforehand
// from the stored objects' sizes (JSON is about twice protobuf) and reused by the next
// list. Each item is encoded once, into the reply (as a json.RawMessage of a list,
// json.Marshal would scan and compact it again).
func (a *restAPI) respondListJSON(w http.ResponseWriter, r *http.Request, info *kinds.Info, l listResult, meta metav1.ListMeta, f format) {
	var objs []kinds.Object
	if info.Custom != nil {
		// Converted at once: one call of a conversion webhook for the list.
		var err error
		if objs, err = decodeList(info, l.items); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	buf := listBuffers.Get().(*bytes.Buffer)
	defer func() {
		if buf.Cap() <= maxPooledListBuffer {
			listBuffers.Put(buf)
		}
	}()
	buf.Reset()
	size := 256
	for i := range l.items {
		size += 2 * len(l.items[i].Value)
	}
	buf.Grow(size)
	head, err := json.Marshal(listHead{TypeMeta: metav1.TypeMeta{APIVersion: info.APIVersion, Kind: info.Kind + "List"}, ListMeta: meta})
	if err != nil {
		a.fail(w, r, storeError(info, "", err))
		return
	}
	buf.Write(head[:len(head)-1]) // without its closing brace
	buf.WriteString(`,"items":[`)
	enc := json.NewEncoder(buf)
	for i := range l.items {
		if i > 0 {
			buf.WriteByte(',')
		}
		var o kinds.Object
		if objs != nil {
			o = objs[i]
		} else {
			if o, err = decode(info, &l.items[i]); err != nil {
				a.fail(w, r, storeError(info, l.items[i].Name, err))
				return
			}
			o.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{})
		}
		if err := enc.Encode(o); err != nil {
			a.fail(w, r, storeError(info, o.GetName(), err))
			return
		}
		buf.Truncate(buf.Len() - 1) // Encode's newline
	}
	buf.WriteString("]}\n")
	if f == formatYAML {
		y, err := yaml.JSONToYAML(buf.Bytes())
		if err != nil {
			a.fail(w, r, storeError(info, "", err))
			return
		}
		w.Header().Set("Content-Type", "application/yaml")
		w.WriteHeader(http.StatusOK)
		w.Write(y)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	w.Write(buf.Bytes())
}

// decodeList decodes a list's objects; a custom kind's are converted at once (one call
// of a conversion webhook for the list).
func decodeList(info *kinds.Info, items []store.Object) ([]kinds.Object, error) {
	if info.Custom != nil {
		return decodeCustom(info, items)
	}
	objs := make([]kinds.Object, 0, len(items))
	for i := range items {
		obj, err := decode(info, &items[i])
		if err != nil {
			return nil, storeError(info, items[i].Name, err)
		}
		objs = append(objs, obj)
	}
	return objs, nil
}

// rawObject lets writeAs encode a value that is not a runtime.Object.
type rawObject struct{ v any }

func (o *rawObject) GetObjectKind() schema.ObjectKind { return schema.EmptyObjectKind }
func (o *rawObject) DeepCopyObject() runtime.Object   { return o }
func (o *rawObject) MarshalJSON() ([]byte, error)     { return json.Marshal(o.v) }

// table builds a Table of objs, with Kubernetes' columns for the kind, each row with
// the object as includeObject asks (Metadata by default).
func (a *restAPI) table(r *http.Request, info *kinds.Info, objs []kinds.Object, meta metav1.ListMeta, now time.Time) (*metav1.Table, error) {
	include := r.URL.Query().Get("includeObject")
	switch include {
	case "":
		include = string(metav1.IncludeMetadata)
	case string(metav1.IncludeNone), string(metav1.IncludeMetadata), string(metav1.IncludeObject):
	default:
		return nil, badRequest("includeObject: Unsupported value: %q: supported values: \"None\", \"Metadata\", \"Object\"", include)
	}
	if info.Conversion != nil && info.Custom == nil {
		// Kubernetes prints a kind served over another's storage as the stored kind (a
		// custom kind's version by its own printer columns).
		stored := make([]kinds.Object, len(objs))
		for i, o := range objs {
			var err error
			if stored[i], err = convertToStorage(info, o); err != nil {
				return nil, err
			}
		}
		info, objs = info.Stored(), stored
	}
	cols := table.Columns(info)
	t := &metav1.Table{TypeMeta: metav1.TypeMeta{APIVersion: "meta.k8s.io/v1", Kind: "Table"}, ListMeta: meta,
		ColumnDefinitions: table.Definitions(cols), Rows: make([]metav1.TableRow, 0, len(objs))}
	for _, o := range objs {
		row := metav1.TableRow{Cells: table.Cells(cols, o, now)}
		switch metav1.IncludeObjectPolicy(include) {
		case metav1.IncludeMetadata:
			row.Object.Object = partialMetadata(o)
		case metav1.IncludeObject:
			kinds.SetTypeMeta(o)
			row.Object.Object = o
		}
		t.Rows = append(t.Rows, row)
	}
	return t, nil
}

// fail writes err as Kubernetes' Status.
func (a *restAPI) fail(w http.ResponseWriter, r *http.Request, err error) {
	if r != nil {
		for _, msg := range takeWarnings(r.Context()) { // the admission webhooks'
			addWarning(w, msg)
		}
	}
	st := asStatus(err)
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if st.Code == 0 {
		st.Code = http.StatusInternalServerError
	}
	if gs, ok := status.FromError(err); ok {
		// A refusal to come back later (flow control, the rate limit): Retry-After, which
		// client-go waits for before it retries, as kube-apiserver sends it.
		for _, d := range gs.Details() {
			if ri, ok := d.(*errdetails.RetryInfo); ok {
				secs := int32(math.Ceil(ri.GetRetryDelay().AsDuration().Seconds()))
				w.Header().Set("Retry-After", strconv.Itoa(int(secs)))
				if st.Details == nil {
					st.Details = &metav1.StatusDetails{}
				}
				st.Details.RetryAfterSeconds = secs
			}
		}
	}
	writeJSON(w, int(st.Code), &st)
}

// readBody reads a request's body, at most the server's request size, into a buffer of
// its Content-Length when it says (client-go's do), so it is read without regrowing.
func (a *restAPI) readBody(r *http.Request) ([]byte, error) {
	var b []byte
	var err error
	if n := r.ContentLength; n >= 0 && n <= a.maxBody {
		// Go's server holds the body to its Content-Length (HTTP/1.1 reads no further,
		// HTTP/2 resets a stream that sends more); a shorter body fails ReadFull.
		b = make([]byte, n)
		_, err = io.ReadFull(r.Body, b)
	} else {
		b, err = io.ReadAll(io.LimitReader(r.Body, a.maxBody+1))
	}
	if err != nil {
		return nil, badRequest("reading the request body: %v", err)
	}
	if int64(len(b)) > a.maxBody {
		return nil, statusError(codes.InvalidArgument, ReasonTooLarge, nil, "the request is larger than %d bytes", a.maxBody)
	}
	return b, nil
}

// updateBody is a subresource PUT's object (decodeBody, named as the path says) and its
// write options; an error has been answered.
func (a *restAPI) updateBody(w http.ResponseWriter, r *http.Request, req *restRequest) (kinds.Object, writeOptions, bool) {
	opts, err := writeOptionsOf(r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return nil, opts, false
	}
	obj, err := a.decodeBody(w, r, req, req.name)
	if err != nil {
		a.fail(w, r, err)
		return nil, opts, false
	}
	return obj, opts, true
}

// decodeBody decodes a create's or an update's object, of req's kind, from JSON, YAML or
// protobuf. Unknown and duplicate fields are refused, reported as warnings or ignored as
// fieldValidation says (Strict, Warn (the default), Ignore). name, when set, is the name
// the path gives, which the object must have.
func (a *restAPI) decodeBody(w http.ResponseWriter, r *http.Request, req *restRequest, name string) (kinds.Object, error) {
	body := req.body
	if !req.bodyRead {
		var err error
		if body, err = a.readBody(r); err != nil {
			return nil, err
		}
	}
	obj, warnings, err := decodeObject(r.Header.Get("Content-Type"), body, req.info, r.URL.Query().Get("fieldValidation"))
	if err != nil {
		return nil, err
	}
	for _, msg := range warnings {
		addWarning(w, msg)
	}
	return obj, checkNames(obj, req, name)
}

// checkNames sets and checks the object's namespace and name against the path's.
func checkNames(obj kinds.Object, req *restRequest, name string) error {
	switch {
	case !req.info.Namespaced:
		obj.SetNamespace("")
	case obj.GetNamespace() == "":
		obj.SetNamespace(req.namespace)
	case obj.GetNamespace() != req.namespace:
		return badRequest("the namespace of the provided object does not match the namespace sent on the request")
	}
	if name != "" && obj.GetName() != name {
		return badRequest("the name of the object (%s) does not match the name on the URL (%s)", obj.GetName(), name)
	}
	return nil
}

// decodeObject decodes an object of kind info in the content type given.
func decodeObject(contentType string, body []byte, info *kinds.Info, fieldValidation string) (kinds.Object, []string, error) {
	mt := mediaType(contentType)
	switch fieldValidation {
	case "", "Warn", "Strict", "Ignore":
	default:
		return nil, nil, badRequest("fieldValidation: Unsupported value: %q: supported values: \"Ignore\", \"Warn\", \"Strict\"", fieldValidation)
	}
	switch {
	case mt == kinds.ContentType && hasProtobuf(info):
		obj, err := kinds.Decode(body)
		if err != nil {
			return nil, nil, badRequest("%v", err)
		}
		if kinds.Of(obj) != info {
			return nil, nil, badRequest("the API version in the data (%s) does not match the expected API version (%s)", obj.GetObjectKind().GroupVersionKind().GroupVersion(), info.APIVersion)
		}
		return obj, nil, nil
	case mt == "application/yaml":
		js, err := yaml.YAMLToJSON(body)
		if err != nil {
			return nil, nil, badRequest("the body is not valid YAML: %v", err)
		}
		body = js
	case mt == "", mt == "application/json":
	default:
		e := statusError(codes.InvalidArgument, "", nil, "the body of the request was in an unknown format - accepted media types include: %s", mediaTypes(info))
		e.status.Reason, e.status.Code = metav1.StatusReasonUnsupportedMediaType, http.StatusUnsupportedMediaType
		return nil, nil, e
	}
	var tm metav1.TypeMeta
	if err := json.Unmarshal(body, &tm); err != nil {
		return nil, nil, badRequest("the body is not a JSON object: %v", err)
	}
	if tm.APIVersion != "" && tm.APIVersion != info.APIVersion {
		return nil, nil, badRequest("the API version in the data (%s) does not match the expected API version (%s)", tm.APIVersion, info.APIVersion)
	}
	if tm.Kind != "" && tm.Kind != info.Kind {
		return nil, nil, badRequest("the kind in the data (%s) does not match the expected kind (%s)", tm.Kind, info.Kind)
	}
	obj := info.New()
	strict, err := kjson.UnmarshalStrict(body, obj)
	if err != nil {
		return nil, nil, badRequest("%v", strings.TrimPrefix(err.Error(), "json: "))
	}
	kinds.SetTypeMeta(obj)
	var msgs []string
	for _, e := range strict {
		msgs = append(msgs, e.Error())
	}
	if c, ok := obj.(*kinds.Custom); ok && fieldValidation != "Ignore" {
		// What the CRD's schema does not name is pruned when stored: reported first.
		s, err := validation.SchemaOf(info.Custom)
		if err != nil {
			return nil, nil, err
		}
		for _, p := range s.Prune(c.DeepCopy()) {
			msgs = append(msgs, fmt.Sprintf("unknown field %q", p))
		}
	}
	switch {
	case len(msgs) == 0 || fieldValidation == "Ignore":
		return obj, nil, nil
	case fieldValidation == "Strict":
		return nil, nil, badRequest("strict decoding error: %s", strings.Join(msgs, ", "))
	}
	return obj, msgs, nil
}

// readInto reads a subresource's or a review's body into v (JSON, YAML or protobuf),
// what naming its kind for the error ("a Binding"); it answers a failure itself and
// reports false.
func (a *restAPI) readInto(w http.ResponseWriter, r *http.Request, v protoMessage, what string) bool {
	body, err := a.readBody(r)
	if err != nil {
		a.fail(w, r, err)
		return false
	}
	if err := decodeOptions(r.Header.Get("Content-Type"), body, v); err != nil {
		a.fail(w, r, badRequest("the body is not %s: %v", what, err))
		return false
	}
	return true
}

// readReview reads a review (SelfSubjectAccessReview, SelfSubjectReview): POST only,
// and, not being an object kept, no Table or metadata view (406, as from Kubernetes).
func (a *restAPI) readReview(w http.ResponseWriter, r *http.Request, v protoMessage, what string) bool {
	if r.Method != http.MethodPost {
		a.fail(w, r, methodNotAllowed(r.Method))
		return false
	}
	if f, ok := negotiate(r.Header.Get("Accept"), true); !ok || f == formatTable || f == formatMetadata {
		a.fail(w, r, notAcceptable(nil))
		return false
	}
	return a.readInto(w, r, v, what)
}

// protoMessage is a type with Kubernetes' generated protobuf decoding.
type protoMessage interface{ Unmarshal([]byte) error }

// decodeOptions decodes a body that is not an object of a kind (DeleteOptions, Scale,
// Binding) into v, from JSON, YAML or protobuf; an empty body leaves v as it is.
func decodeOptions(contentType string, body []byte, v protoMessage) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return nil
	}
	mt := mediaType(contentType)
	if mt == kinds.ContentType {
		env, err := kinds.Parse(body)
		if err != nil {
			return err
		}
		return v.Unmarshal(env.Raw)
	}
	js, err := yaml.YAMLToJSON(body)
	if err != nil {
		return err
	}
	return json.Unmarshal(js, v)
}

// mediaType is a Content-Type's media type, lower case, without parameters ("" when it
// cannot be read); the common plain forms without mime.ParseMediaType's allocations.
func mediaType(contentType string) string {
	switch contentType {
	case "", "application/json", kinds.ContentType, "application/yaml":
		return contentType
	}
	mt, _, _ := mime.ParseMediaType(contentType)
	return mt
}

// addWarning adds a Warning header, as Kubernetes writes them: 299 - "text".
func addWarning(w http.ResponseWriter, msg string) {
	w.Header().Add("Warning", "299 - "+strconv.Quote(msg))
}

// deleteOptionsOf reads DeleteOptions from the body (JSON or YAML, if any) and the query.
func (a *restAPI) deleteOptionsOf(r *http.Request) (deleteOptions, error) {
	var do metav1.DeleteOptions
	body, err := a.readBody(r)
	if err != nil {
		return deleteOptions{}, err
	}
	if err := decodeOptions(r.Header.Get("Content-Type"), body, &do); err != nil {
		return deleteOptions{}, badRequest("the body is not DeleteOptions: %v", err)
	}
	q := r.URL.Query()
	if v := q.Get("gracePeriodSeconds"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return deleteOptions{}, badRequest("gracePeriodSeconds: Invalid value: %q: must be an integer", v)
		}
		do.GracePeriodSeconds = &n
	}
	if v := q.Get("propagationPolicy"); v != "" {
		p := metav1.DeletionPropagation(v)
		do.PropagationPolicy = &p
	}
	if v := q.Get("orphanDependents"); v != "" {
		b, _ := strconv.ParseBool(v)
		do.OrphanDependents = &b
	}
	do.DryRun = append(do.DryRun, q["dryRun"]...)
	opts := deleteOptions{gracePeriodSeconds: do.GracePeriodSeconds}
	for _, v := range do.DryRun {
		if v != metav1.DryRunAll {
			return opts, statusError(codes.InvalidArgument, ReasonInvalid, nil, "dryRun: Unsupported value: %q: supported values: %q", v, metav1.DryRunAll)
		}
		opts.dryRun = true
	}
	if do.PropagationPolicy != nil {
		opts.propagationPolicy = string(*do.PropagationPolicy)
		if do.OrphanDependents != nil {
			return opts, statusError(codes.InvalidArgument, ReasonInvalid, nil, "propagationPolicy: Invalid value: %q: orphanDependents and deletionPropagation cannot be both set", opts.propagationPolicy)
		}
	} else if do.OrphanDependents != nil && *do.OrphanDependents {
		opts.propagationPolicy = string(metav1.DeletePropagationOrphan)
	}
	if p := do.Preconditions; p != nil {
		if p.ResourceVersion != nil {
			opts.resourceVersion = *p.ResourceVersion
		}
		if p.UID != nil {
			opts.uid = string(*p.UID)
		}
	}
	return opts, nil
}

// respondDeleted writes a delete's reply: the object while something holds it (a
// finalizer, a pod's grace period), Kubernetes' Success status once it is gone.
func (a *restAPI) respondDeleted(w http.ResponseWriter, r *http.Request, req *restRequest, res result, err error) {
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if !res.gone {
		a.respond(w, r, http.StatusOK, res, nil)
		return
	}
	st := &metav1.Status{TypeMeta: metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}, Status: metav1.StatusSuccess,
		Details: &metav1.StatusDetails{Name: req.name, Group: req.info.Group, Kind: req.info.Plural}}
	if res.obj != nil {
		st.Details.UID = res.obj.GetUID()
	}
	writeJSON(w, http.StatusOK, st)
}

// deleteCollection deletes every object a list with the request's ListOptions
// (labelSelector, fieldSelector, limit and continue, resourceVersion) finds, with its
// DeleteOptions (dryRun, gracePeriodSeconds, propagationPolicy, preconditions), and
// answers as kube-apiserver does (k8s.io/apiserver's Store.DeleteCollection): the list
// of the objects it deleted, as listed (kind XList; with limit, that page and its
// continue token), in the encoding or view the client accepts.
func (a *restAPI) deleteCollection(w http.ResponseWriter, r *http.Request, req *restRequest) {
	lo, err := listOptionsOf(r.URL.Query(), req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	opts, err := a.deleteOptionsOf(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	l, err := a.res.list(r.Context(), req.info, lo)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	for _, o := range l.items {
		if _, err := a.res.delete(r.Context(), req.info.Stored(), o.Namespace, o.Name, opts); err != nil && !isNotFound(err) {
			a.fail(w, r, err)
			return
		}
	}
	a.respondList(w, r, req.info, l)
}

func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.status.Reason == metav1.StatusReasonNotFound
}

// health answers /healthz, /livez and /readyz (check nil: always ok), with
// Kubernetes' verbose form when asked.
func (a *restAPI) health(w http.ResponseWriter, r *http.Request, check func(context.Context) error) {
	name := strings.TrimPrefix(strings.TrimSuffix(r.URL.Path, "/"), "/")
	if check != nil {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := check(ctx); err != nil {
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintf(w, "[-]store failed: %v\n%s check failed\n", err, name)
			return
		}
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	if _, verbose := r.URL.Query()["verbose"]; verbose {
		fmt.Fprintf(w, "[+]ping ok\n[+]store ok\n%s check passed\n", name)
		return
	}
	fmt.Fprint(w, "ok")
}
