package apiserver

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"golang.org/x/time/rate"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/apiserver/flowcontrol"
	"github.com/skiffhq/skiff/connlimit"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
)

// Every request passes, in order: authentication (who: a verified client certificate or
// a bearer token; nobody is Unauthenticated), the user's rate limit when one is set
// (users only), flow control (API Priority and Fairness, package flowcontrol: the request
// waits for a seat of its priority level, or is ResourceExhausted with a retry delay),
// authorization (PermissionDenied, saying who cannot do what), and for watches the
// identity's watch count (ResourceExhausted). An allowed request may carry a
// guard (auth.Guard) that the handlers apply to the stored object they act on.
//
// Without authentication configured (an insecure server), every request is the
// anonymous administrator and no limit applies.

// ReasonUnauthenticated, ReasonForbiddenAccess and ReasonTooManyRequests are the
// ErrorInfo reasons of security refusals.
const (
	ReasonUnauthenticated = "Unauthorized"
	ReasonTooManyRequests = "TooManyRequests"
)

// throttled is a refusal the client should repeat after retryAfter: gRPC's
// RetryInfo carries the delay, as Kubernetes' Retry-After header does, and ErrorInfo the
// priority level ("priorityLevel").
func throttled(level string, retryAfter time.Duration, format string, args ...any) error {
	st := status.New(codes.ResourceExhausted, fmt.Sprintf(format, args...))
	info := &errdetails.ErrorInfo{Reason: ReasonTooManyRequests, Domain: errorDomain, Metadata: map[string]string{"priorityLevel": level}}
	if d, err := st.WithDetails(info, &errdetails.RetryInfo{RetryDelay: durationpb.New(retryAfter)}); err == nil {
		st = d
	}
	return st.Err()
}

// anonymous is every request's identity on an insecure server.
var anonymous = auth.User{Name: "system:anonymous", Groups: []string{"skiff:admin"}}

type guardKey struct{}

// userKey is the context key of the request's authenticated user.
type userKey struct{}

// requestUser is the user a request was authenticated as (anonymous without
// authentication).
func requestUser(ctx context.Context) auth.User {
	if u, ok := ctx.Value(userKey{}).(auth.User); ok {
		return u
	}
	return anonymous
}

// guard applies the request's guard, if any, to obj.
func guard(ctx context.Context, obj kinds.Object) error {
	g, _ := ctx.Value(guardKey{}).(auth.Guard)
	if g == nil {
		return nil
	}
	if err := g(obj); err != nil {
		return statusError(codes.PermissionDenied, ReasonForbidden, nil, "%v", err)
	}
	return nil
}

// gate authenticates, limits and authorizes requests.
type gate struct {
	authn   *auth.Authenticator // nil: insecure
	authz   auth.Authorizer
	flows   *flowcontrol.Controller // nil: no flow control
	limiter *limiter
	log     hclog.Logger
	// refusals rate-limits the log lines of failed authentications: a flood of bad
	// credentials must not become a flood of log lines.
	refusals rate.Sometimes
	// conns, when set, learns of each connection whose request was authenticated.
	conns *connlimit.Guard
}

func (g *gate) credentials(ctx context.Context) auth.Credentials {
	var c auth.Credentials
	if p, ok := peer.FromContext(ctx); ok {
		if ti, ok := p.AuthInfo.(credentials.TLSInfo); ok {
			c.Chain = ti.State.PeerCertificates
		}
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		for _, v := range md.Get("authorization") {
			if tok, ok := strings.CutPrefix(v, "Bearer "); ok {
				c.BearerToken = strings.TrimSpace(tok)
			}
		}
	}
	return c
}

func noop() {}

// authenticate finds who presents c, for request what from address from. Every front
// end's request passes here first.
func (g *gate) authenticate(c auth.Credentials, what, from string) (auth.User, error) {
	if g.authn == nil {
		return anonymous, nil
	}
	user, err := g.authn.Authenticate(c)
	if err != nil {
		g.refusals.Do(func() {
			g.log.Info("authentication failed", "peer", from, "method", what, "error", err, "note", "at most one such line a second")
		})
		return user, statusError(codes.Unauthenticated, ReasonUnauthenticated, nil, "%s: %v", what, err)
	}
	return user, nil
}

// impersonate is the identity user acts as when h (HTTP headers or gRPC metadata) asks
// to impersonate another (auth.Authorizer.Impersonate): a Bad Request for groups
// without a user, Kubernetes' Forbidden when user may not, else user as it is.
func (g *gate) impersonate(user auth.User, h map[string][]string) (auth.User, error) {
	im, err := auth.ParseImpersonation(h)
	if err != nil {
		return user, badRequest("%v", err)
	}
	if !im.Requested() {
		return user, nil
	}
	as, err := g.authz.Impersonate(user, im)
	var d *auth.Denied
	switch {
	case errors.As(err, &d):
		return user, kubeForbidden(d)
	case err != nil:
		return user, err
	}
	return as, nil
}

// kubeForbidden is a refusal in Kubernetes' words: `users "x" is forbidden: User "y"
// cannot impersonate resource "users" in API group "" at the cluster scope`.
func kubeForbidden(d *auth.Denied) error {
	res := d.Resource
	if d.Subresource != "" {
		res += "/" + d.Subresource
	}
	scope := "at the cluster scope"
	if d.Namespace != "" {
		scope = fmt.Sprintf("in the namespace %q", d.Namespace)
	}
	msg := fmt.Sprintf("User %q cannot %s resource %q in API group %q %s", d.User.Name, d.Verb, res, d.APIGroup, scope)
	if d.Reason != "" {
		msg += ": " + d.Reason
	}
	qualified := d.Resource
	if d.APIGroup != "" {
		qualified += "." + d.APIGroup
	}
	e := statusError(codes.PermissionDenied, ReasonForbidden, nil, "%s %q is forbidden: %s", qualified, d.Name, msg)
	e.status.Details = &metav1.StatusDetails{Name: d.Name, Group: d.APIGroup, Kind: d.Resource}
	return e
}

// authorizeAttrs decides whether a.User may do a, and returns the context its handler
// runs in (with the guard an allowed action may carry).
func (g *gate) authorizeAttrs(ctx context.Context, a auth.Attributes) (context.Context, error) {
	if g.authn == nil {
		return ctx, nil
	}
	gd, err := g.authz.Authorize(a)
	if err != nil {
		return ctx, statusError(codes.PermissionDenied, ReasonForbidden, nil, "%v", err)
	}
	if gd != nil {
		ctx = context.WithValue(ctx, guardKey{}, gd)
	}
	return ctx, nil
}

// admit runs the checks for one gRPC request and returns the context its handler runs
// in, and done, which the caller calls when the request ends (it frees the request's
// seat).
func (g *gate) admit(ctx context.Context, method string, req any) (_ context.Context, _ auth.User, done func(), _ error) {
	if g.authn == nil {
		return ctx, anonymous, noop, nil
	}
	from, hasPeer := "unknown", false
	if p, ok := peer.FromContext(ctx); ok {
		from, hasPeer = p.Addr.String(), true
	}
	user, err := g.authenticate(g.credentials(ctx), method, from)
	if err != nil {
		return ctx, user, nil, err
	}
	if md, ok := metadata.FromIncomingContext(ctx); ok {
		if user, err = g.impersonate(user, md); err != nil {
			return ctx, user, nil, err
		}
	}
	batch, isBatch := batchItems(req)
	first := req
	if len(batch) > 0 {
		first = batch[0]
	}
	attrs, err := attributesFor(method, first)
	if err != nil {
		return ctx, user, nil, err
	}
	if g.conns != nil && hasPeer {
		g.conns.EstablishedAddr(from)
	}
	attrs.User = user
	ctx = context.WithValue(ctx, userKey{}, user)
	if done, err = g.limit(ctx, attrs); err != nil {
		return ctx, user, nil, err
	}
	if isBatch {
		// Each item is authorized as its own request; one refused refuses the batch.
		for i, item := range batch {
			gd, err := g.authorize(method, item, user)
			if err == nil && gd != nil {
				err = statusError(codes.PermissionDenied, ReasonForbidden, nil, "a write subject to a check on the stored object cannot be batched")
			}
			if err != nil {
				done()
				st := status.Convert(err).Proto()
				st.Message = fmt.Sprintf("%s[%d]: %s", batchField(req), i, st.GetMessage())
				return ctx, user, nil, status.FromProto(st).Err()
			}
		}
		return ctx, user, done, nil
	}
	if ctx, err = g.authorizeAttrs(ctx, attrs); err != nil {
		done()
		return ctx, user, nil, err
	}
	return ctx, user, done, nil
}

// batchItems is a batch request's items, each as the request of its own that it is
// authorized as (CreateBatch's objects as Creates, BindBatch's bindings as Binds), and
// whether req is a batch.
func batchItems(req any) ([]any, bool) {
	switch r := req.(type) {
	case *apiv1.CreateBatchRequest:
		items := make([]any, len(r.GetObjects()))
		for i, o := range r.GetObjects() {
			items[i] = &apiv1.CreateRequest{Object: o}
		}
		return items, true
	case *apiv1.UpdateBatchRequest:
		items := make([]any, len(r.GetObjects()))
		for i, o := range r.GetObjects() {
			items[i] = &apiv1.UpdateRequest{Object: o}
		}
		return items, true
	case *apiv1.BindBatchRequest:
		items := make([]any, len(r.GetBindings()))
		for i, b := range r.GetBindings() {
			items[i] = b
		}
		return items, true
	}
	return nil, false
}

// batchField is the field of a batch request that holds its items.
func batchField(req any) string {
	if _, ok := req.(*apiv1.BindBatchRequest); ok {
		return "bindings"
	}
	return "objects"
}

// limit admits a request through flow control and the rate limit. done frees its seat.
func (g *gate) limit(ctx context.Context, attrs auth.Attributes) (done func(), err error) {
	if g.authn == nil {
		return noop, nil
	}
	level := flowcontrol.Classify(flowcontrol.Request{User: attrs.User, Resource: attrs.Resource, Namespace: attrs.Namespace})
	if level == flowcontrol.GlobalDefault {
		if err := g.limiter.allow(attrs.User.Name); err != nil {
			return nil, err
		}
	}
	if g.flows == nil {
		return noop, nil
	}
	done, err = g.flows.Admit(ctx, level, attrs.User.Name)
	var r *flowcontrol.Rejected
	switch {
	case errors.As(err, &r):
		return nil, throttled(r.Level, r.RetryAfter, "%v", r)
	case err != nil:
		return nil, status.FromContextError(err).Err()
	}
	return done, nil
}

// authorize decides whether user may make the request.
func (g *gate) authorize(method string, req any, user auth.User) (auth.Guard, error) {
	attrs, err := attributesFor(method, req)
	if err != nil {
		return nil, err
	}
	attrs.User = user
	gd, err := g.authz.Authorize(attrs)
	if err != nil {
		return nil, statusError(codes.PermissionDenied, ReasonForbidden, nil, "%v", err)
	}
	return gd, nil
}

func (g *gate) unary() grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, _, done, err := g.admit(ctx, info.FullMethod, req)
		if err != nil {
			return nil, err
		}
		defer done()
		return handler(ctx, req)
	}
}

func (g *gate) stream() grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		gs := &gatedStream{ServerStream: ss, gate: g, method: info.FullMethod, ctx: ss.Context()}
		err := handler(srv, gs)
		if gs.watching {
			g.limiter.watchDone(gs.user.Name)
		}
		return err
	}
}

// gatedStream admits a server stream on its request, the first message it receives.
type gatedStream struct {
	grpc.ServerStream
	gate     *gate
	method   string
	ctx      context.Context
	admitted bool
	user     auth.User
	watching bool
}

func (s *gatedStream) Context() context.Context { return s.ctx }

func (s *gatedStream) RecvMsg(m any) error {
	if err := s.ServerStream.RecvMsg(m); err != nil || s.admitted {
		return err
	}
	ctx, user, done, err := s.gate.admit(s.ServerStream.Context(), s.method, m)
	if err != nil {
		return err
	}
	// A stream holds its seat only while it is admitted, as Kubernetes' watches do.
	done()
	s.ctx, s.user, s.admitted = ctx, user, true
	if _, ok := m.(*apiv1.WatchRequest); ok && s.gate.authn != nil {
		if err := s.gate.limiter.watchStart(user.Name); err != nil {
			return err
		}
		s.watching = true
	}
	return nil
}

// attributesFor describes a request for the authorizer. A request too malformed to
// describe gets the error its handler would return.
func attributesFor(method string, req any) (auth.Attributes, error) {
	res := func(kind string) (*kinds.Info, error) { return lookupKind(kind) }
	var a auth.Attributes
	switch r := req.(type) {
	case *apiv1.CreateRequest, *apiv1.UpdateRequest:
		var o *apiv1.Object
		a.Verb = auth.Create
		if u, ok := r.(*apiv1.UpdateRequest); ok {
			o, a.Verb = u.GetObject(), auth.Update
			if strings.HasSuffix(method, "/UpdateStatus") {
				a.Subresource = "status"
			}
		} else {
			o = r.(*apiv1.CreateRequest).GetObject()
		}
		// Only the names: the handler decodes the object, once.
		info, err := res(o.GetKind())
		if err != nil {
			return a, err
		}
		names, err := kinds.ParseNames(o.GetRaw())
		if err != nil {
			return a, badRequest("object: %v", err)
		}
		a.Resource, a.Namespace, a.Name = info.Plural, namespaceFor(info, names.Namespace), names.Name
	case *apiv1.GetRequest:
		info, err := res(r.GetKind())
		if err != nil {
			return a, err
		}
		a.Verb, a.Resource, a.Namespace, a.Name = auth.Get, info.Plural, namespaceFor(info, r.GetNamespace()), r.GetName()
	case *apiv1.DeleteRequest:
		info, err := res(r.GetKind())
		if err != nil {
			return a, err
		}
		a.Verb, a.Resource, a.Namespace, a.Name = auth.Delete, info.Plural, namespaceFor(info, r.GetNamespace()), r.GetName()
	case *apiv1.ListRequest:
		info, err := res(r.GetKind())
		if err != nil {
			return a, err
		}
		a.Verb, a.Resource, a.FieldSelector = auth.List, info.Plural, r.GetFieldSelector()
		if info.Namespaced {
			a.Namespace = r.GetNamespace()
		}
		a.Name = selectedName(a.FieldSelector)
	case *apiv1.WatchRequest:
		info, err := res(r.GetKind())
		if err != nil {
			return a, err
		}
		a.Verb, a.Resource, a.FieldSelector = auth.Watch, info.Plural, r.GetFieldSelector()
		if info.Namespaced {
			a.Namespace = r.GetNamespace()
		}
		a.Name = selectedName(a.FieldSelector)
	case *apiv1.BindRequest:
		info := kinds.MustLookup(kinds.Pod)
		a.Verb, a.Resource, a.Subresource, a.Namespace, a.Name = auth.Create, info.Plural, "binding", namespaceFor(info, r.GetNamespace()), r.GetName()
	case *apiv1.EvictRequest:
		info := kinds.MustLookup(kinds.Pod)
		a.Verb, a.Resource, a.Subresource, a.Namespace, a.Name = auth.Create, info.Plural, "eviction", namespaceFor(info, r.GetNamespace()), r.GetName()
	case *apiv1.PodLogsRequest:
		info := kinds.MustLookup(kinds.Pod)
		a.Verb, a.Resource, a.Subresource, a.Namespace, a.Name = auth.Get, info.Plural, "log", namespaceFor(info, r.GetNamespace()), r.GetName()
	case *apiv1.ExecRequest:
		start := r.GetStart()
		if start == nil {
			return a, badRequest("the first message must be start")
		}
		sub := auth.SubresourceExec
		if strings.HasSuffix(method, "/Attach") {
			sub = auth.SubresourceAttach
		}
		info := kinds.MustLookup(kinds.Pod)
		a.Verb, a.Resource, a.Subresource, a.Namespace, a.Name = auth.Create, info.Plural, sub, namespaceFor(info, start.GetNamespace()), start.GetName()
	case *apiv1.PortForwardRequest:
		start := r.GetStart()
		if start == nil {
			return a, badRequest("the first message must be start")
		}
		info := kinds.MustLookup(kinds.Pod)
		a.Verb, a.Resource, a.Subresource, a.Namespace, a.Name = auth.Create, info.Plural, auth.SubresourcePortForward, namespaceFor(info, start.GetNamespace()), start.GetName()
	case *apiv1.CreateTokenRequest:
		info := kinds.MustLookup(kinds.ServiceAccount)
		a.Verb, a.Resource, a.Subresource, a.Namespace, a.Name = auth.Create, info.Plural, auth.SubresourceToken, namespaceFor(info, r.GetNamespace()), r.GetName()
	case *apiv1.ClusterStatusRequest:
		a.Verb, a.Resource = auth.Get, auth.ResourceCluster
	case *apiv1.AddMemberRequest:
		a.Verb, a.Resource, a.Subresource, a.Name = auth.Create, auth.ResourceCluster, "members", r.GetName()
	case *apiv1.RemoveMemberRequest:
		a.Verb, a.Resource, a.Subresource, a.Name = auth.Delete, auth.ResourceCluster, "members", r.GetName()
	case *apiv1.TransferLeaderRequest:
		a.Verb, a.Resource, a.Subresource = auth.Update, auth.ResourceCluster, "leader"
	case *apiv1.SnapshotRequest:
		a.Verb, a.Resource, a.Subresource = auth.Get, auth.ResourceCluster, "snapshot"
	case *apiv1.ListSnapshotsRequest:
		a.Verb, a.Resource, a.Subresource = auth.List, auth.ResourceCluster, "snapshots"
	case *apiv1.CertificatesRequest:
		a.Verb, a.Resource, a.Subresource = auth.Get, auth.ResourceCluster, "certificates"
	case *apiv1.CertificateSigningRequest:
		a.Verb, a.Resource, a.Subresource = auth.Create, auth.ResourceCertificateSigningRequests, auth.SubresourceRenewal
	case *apiv1.DefragmentRequest:
		a.Verb, a.Resource, a.Subresource = auth.Update, auth.ResourceCluster, "defragment"
	case *apiv1.DisarmAlarmRequest:
		a.Verb, a.Resource, a.Subresource = auth.Update, auth.ResourceCluster, "alarms"
	default:
		// A method this table does not know: only an administrator may call it.
		a.Verb, a.Resource = "call", method
	}
	return a, nil
}

// selectedName is the one object a list or watch asks for with fieldSelector
// metadata.name=NAME, as Kubernetes takes it for the request's name: authorization is
// then of that object alone. "" when it asks for others too.
func selectedName(fieldSelector string) string {
	sel, err := fields.ParseSelector(fieldSelector)
	if err != nil {
		return "" // the handler refuses it
	}
	name, _ := sel.RequiresExactMatch("metadata.name")
	return name
}

// limiter holds each user's request rate (identities of the global-default priority
// level only: the cluster's own components are never rate-limited) and every identity's
// open watches.
type limiter struct {
	rate       rate.Limit // 0: no rate limit
	burst      int
	maxWatches int // 0: no watch limit
	mu         sync.Mutex
	buckets    map[string]*rate.Limiter
	watches    map[string]int
}

func newLimiter(perSecond float64, burst, maxWatches int) *limiter {
	if burst <= 0 {
		burst = max(1, int(2*perSecond))
	}
	return &limiter{rate: rate.Limit(perSecond), burst: burst, maxWatches: maxWatches,
		buckets: map[string]*rate.Limiter{}, watches: map[string]int{}}
}

func (l *limiter) allow(user string) error {
	if l.rate <= 0 {
		return nil
	}
	l.mu.Lock()
	b, ok := l.buckets[user]
	if !ok {
		b = rate.NewLimiter(l.rate, l.burst)
		l.buckets[user] = b
	}
	l.mu.Unlock()
	r := b.Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		return throttled(flowcontrol.GlobalDefault, d,
			"user %q exceeded its rate limit of %g requests per second (burst %d); retry after %v", user, float64(l.rate), l.burst, d.Round(time.Millisecond))
	}
	return nil
}

func (l *limiter) watchStart(user string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.maxWatches > 0 && l.watches[user] >= l.maxWatches {
		return statusError(codes.ResourceExhausted, ReasonTooManyRequests, nil,
			"user %q has %d open watches, the most allowed; close some first", user, l.watches[user])
	}
	l.watches[user]++
	return nil
}

func (l *limiter) watchDone(user string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.watches[user]--; l.watches[user] <= 0 {
		delete(l.watches, user)
	}
}

// newGate builds the request checks from the config.
func newGate(cfg *Config) (*gate, error) {
	g := &gate{limiter: newLimiter(cfg.RateLimit, cfg.RateBurst, cfg.MaxWatchesPerUser), log: cfg.Logger,
		refusals: rate.Sometimes{Interval: time.Second}}
	if cfg.ClientRoots != nil || cfg.Tokens != nil {
		g.authn = &auth.Authenticator{Roots: cfg.ClientRoots, Tokens: cfg.Tokens, Now: cfg.Now}
	}
	if cfg.PriorityAndFairness && g.authn != nil {
		fc := cfg.FlowControl
		if fc.Now == nil {
			fc.Now = cfg.Now
		}
		var err error
		if g.flows, err = flowcontrol.New(fc); err != nil {
			return nil, err
		}
	}
	return g, nil
}

// ErrInsecureListen is Validate's refusal to serve the API, or Raft, on an address other
// hosts reach without TLS (unless Insecure is set): every request would be served as
// an administrator, and anyone could send Raft entries.
var ErrInsecureListen = errors.New("without TLS every request is served as an administrator: listen on a loopback address (127.0.0.1), give --tls-cert-file, --tls-key-file, --client-ca-file, --peer-cert-file, --peer-key-file and --peer-ca-file (skiff certs init makes them), or --insecure to serve without encryption, authentication and authorization anyway")

// ErrInsecureCluster is Validate's refusal of a cluster of several members without TLS
// (unless Insecure is set).
var ErrInsecureCluster = errors.New("refusing to run a cluster of several members without TLS: give --tls-cert-file, --tls-key-file, --client-ca-file, --peer-cert-file, --peer-key-file and --peer-ca-file (skiff certs init makes them), or --insecure to run without encryption, authentication and authorization anyway")

// requireClient serves h only to an authenticated client: a certificate of the cluster
// CA or a bearer token (the HTTP port's /metrics, when other hosts reach it).
func (g *gate) requireClient(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if g.authn == nil {
			h.ServeHTTP(w, r)
			return
		}
		var c auth.Credentials
		if r.TLS != nil {
			c.Chain = r.TLS.PeerCertificates
		}
		if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
			c.BearerToken = tok
		}
		if _, err := g.authn.Authenticate(c); err != nil {
			g.refusals.Do(func() {
				g.log.Info("authentication failed", "peer", r.RemoteAddr, "path", r.URL.Path, "error", err, "note", "at most one such line a second")
			})
			http.Error(w, "Unauthorized: "+err.Error(), http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}
