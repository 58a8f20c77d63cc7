package apiserver

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/pki/serviceaccount"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/store"
)

// Service-account tokens, as Kubernetes makes them: a TokenRequest (create
// serviceaccounts/token, over REST and gRPC) issues a JWT of the account, bound to a
// pod or a Secret, signed with the --service-account-signing-key-file; a bearer token
// that is such a JWT authenticates as system:serviceaccount:NS:NAME while its signature
// (one of the --service-account-key-file keys), issuer, audience and validity hold and
// the account and the object it is bound to still exist with the uid it names. Those
// checks read this member's caches (the node graph's pods, the local caches of
// accounts and Secrets), never the store per request; so does a kubelet's
// TokenRequest, one per pod it starts, falling back to the store for what the caches
// do not have yet (tokenPod). A legacy
// kubernetes.io/service-account-token Secret's token authenticates while its Secret
// holds it. OIDC discovery (rest.go) serves the issuer and its keys.

// ServiceAccountTokens configures service-account tokens (Config.ServiceAccounts).
type ServiceAccountTokens struct {
	// SigningKey signs the tokens TokenRequests issue; nil issues none (a TokenRequest
	// is refused and the ServiceAccount admission mounts no token).
	SigningKey crypto.Signer
	// Keys verify tokens (the signing key's public half among them); nil accepts no
	// service-account token.
	Keys []crypto.PublicKey
	// Issuers: the first is the iss of the tokens issued, every one is accepted
	// (default serviceaccount.DefaultIssuer).
	Issuers []string
	// Audiences are the API's audiences: a token must be for one of them, and a
	// TokenRequest naming none is for them (default: Issuers).
	Audiences []string
	// JWKSURI is the jwks_uri of OIDC discovery (default ISSUER/openid/v1/jwks).
	JWKSURI string
	// MaxExpiration caps a TokenRequest's life (kube-apiserver's
	// --service-account-max-token-expiration): a request for longer gets this long.
	// 0: no cap; else between 1 hour and 2^32 seconds.
	MaxExpiration time.Duration
}

// validate checks the settings that are not keys.
func (c ServiceAccountTokens) validate() error {
	if m := c.MaxExpiration; m != 0 && (m < time.Hour || m > math.MaxUint32*time.Second) {
		return fmt.Errorf("service-account max token expiration %v: must be between 1 hour and 2^32 seconds", m)
	}
	return nil
}

// DefaultTokenExpiration is a TokenRequest's life when it asks for none.
const DefaultTokenExpiration = time.Hour

// saTokens issues and authenticates service-account tokens.
type saTokens struct {
	cfg      ServiceAccountTokens
	issuer   *serviceaccount.Issuer // nil: none issued
	verifier *serviceaccount.Verifier
	res      *resources
	// secrets caches what the tokens bound to Secrets, and legacy Secrets' tokens,
	// are checked against.
	secrets *localCache[secretToken]
	now     func() time.Time
}

// secretToken is what the token checks keep of a Secret.
type secretToken struct {
	uid   string
	typ   corev1.SecretType
	token []byte
}

// newSATokens makes the tokens' issuer and verifier; the caller sets res.
func newSATokens(cfg ServiceAccountTokens, now func() time.Time) (*saTokens, error) {
	if len(cfg.Issuers) == 0 {
		cfg.Issuers = []string{serviceaccount.DefaultIssuer}
	}
	if len(cfg.Audiences) == 0 {
		cfg.Audiences = cfg.Issuers
	}
	if cfg.JWKSURI == "" {
		cfg.JWKSURI = strings.TrimSuffix(cfg.Issuers[0], "/") + "/openid/v1/jwks"
	}
	if now == nil {
		now = time.Now
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	t := &saTokens{cfg: cfg, now: now}
	if cfg.SigningKey != nil {
		if !slices.ContainsFunc(cfg.Keys, func(k crypto.PublicKey) bool {
			e, ok := k.(interface{ Equal(crypto.PublicKey) bool })
			return ok && e.Equal(cfg.SigningKey.Public())
		}) {
			cfg.Keys = append(cfg.Keys, cfg.SigningKey.Public())
			t.cfg.Keys = cfg.Keys
		}
		var err error
		if t.issuer, err = serviceaccount.NewIssuer(cfg.Issuers[0], cfg.SigningKey); err != nil {
			return nil, err
		}
	}
	if len(cfg.Keys) > 0 {
		var err error
		if t.verifier, err = serviceaccount.NewVerifier(cfg.Keys, cfg.Issuers, cfg.Audiences); err != nil {
			return nil, err
		}
	}
	secretInfo := kinds.MustLookup(kinds.Secret)
	t.secrets = newLocalCache(kinds.Secret, func(o store.Object) (secretToken, error) {
		o, err := t.res.atRest.openObject(secretInfo, o)
		if err != nil {
			return secretToken{}, err
		}
		obj, err := decode(secretInfo, &o)
		if err != nil {
			return secretToken{}, err
		}
		s := obj.(*corev1.Secret)
		return secretToken{uid: string(s.UID), typ: s.Type, token: s.Data[corev1.ServiceAccountTokenKey]}, nil
	})
	return t, nil
}

// issues reports whether the server issues tokens (a nil t issues none).
func (t *saTokens) issues() bool { return t != nil && t.issuer != nil }

var _ auth.TokenAuthenticator = (*saTokens)(nil)

// AuthenticateToken implements auth.TokenAuthenticator.
func (t *saTokens) AuthenticateToken(token string) (auth.User, bool, error) {
	if t.verifier == nil || !serviceaccount.LooksLikeJWT(token) {
		return auth.User{}, false, nil
	}
	c, err := t.verifier.Verify(token, t.now())
	switch {
	case errors.Is(err, serviceaccount.ErrNotServiceAccount):
		return auth.User{}, false, nil
	case err != nil:
		return auth.User{}, true, err
	}
	if err := t.checkBound(c, token); err != nil {
		return auth.User{}, true, fmt.Errorf("invalid bearer token: %w", err)
	}
	ns, name, uid := c.Account()
	return auth.User{Name: serviceaccount.UserName(ns, name), Groups: serviceaccount.Groups(ns), UID: uid, Extra: c.Extra()}, true, nil
}

// checkBound checks that the objects a verified token names still exist with its
// uids, as Kubernetes' validator does, in Kubernetes' words.
func (t *saTokens) checkBound(c *serviceaccount.Claims, token string) error {
	ns, name, uid := c.Account()
	sa, found, err := t.res.serviceAccounts.get(t.res.store, store.Key{Kind: kinds.ServiceAccount, Namespace: ns, Name: name})
	switch {
	case err != nil:
		return err
	case !found:
		return fmt.Errorf("service account %s/%s has been deleted", ns, name)
	case uid != "" && sa.uid != uid:
		return fmt.Errorf("service account UID (%s) does not match claim (%s)", sa.uid, uid)
	}
	secret := func(sname, suid string) (secretToken, error) {
		s, found, err := t.secrets.get(t.res.store, store.Key{Kind: kinds.Secret, Namespace: ns, Name: sname})
		switch {
		case err != nil:
			return s, err
		case !found:
			return s, fmt.Errorf("secret %s/%s has been deleted", ns, sname)
		case suid != "" && s.uid != suid:
			return s, fmt.Errorf("secret UID (%s) does not match claim (%s)", s.uid, suid)
		}
		return s, nil
	}
	if c.Legacy() {
		s, err := secret(c.LegacySecret, "")
		if err != nil {
			return err
		}
		if s.typ != corev1.SecretTypeServiceAccountToken || string(s.token) != token {
			return fmt.Errorf("token does not match the one in secret %s/%s", ns, c.LegacySecret)
		}
		return nil
	}
	k := c.Kubernetes
	if k.Secret != nil {
		if _, err := secret(k.Secret.Name, k.Secret.UID); err != nil {
			return err
		}
	}
	if k.Pod != nil {
		key := store.Key{Kind: kinds.Pod, Namespace: ns, Name: k.Pod.Name}
		switch got := t.res.graph.podUID(key, k.Pod.UID); {
		case got == "":
			return fmt.Errorf("pod %s/%s has been deleted", ns, k.Pod.Name)
		case got != k.Pod.UID:
			return fmt.Errorf("pod UID (%s) does not match claim (%s)", got, k.Pod.UID)
		}
	}
	return nil
}

// requestToken serves a TokenRequest for account namespace/name: Kubernetes'
// serviceaccounts/token, with the NodeRestriction admission's check of a kubelet's
// request (bound to a pod bound to its node).
func (r *resources) requestToken(ctx context.Context, namespace, name string, tr *authenticationv1.TokenRequest, dryRun bool) (*authenticationv1.TokenRequest, error) {
	saInfo := kinds.MustLookup(kinds.ServiceAccount)
	if !r.tokens.issues() {
		return nil, statusError(codes.NotFound, ReasonNotFound, nil,
			"this API server issues no service-account tokens (no --service-account-signing-key-file)").about(saInfo, name)
	}
	t := r.tokens
	if tr.Name != "" && tr.Name != name {
		return nil, badRequest("the name of the object (%s) does not match the name on the URL (%s)", tr.Name, name)
	}
	spec := &tr.Spec
	if len(spec.Audiences) == 0 {
		spec.Audiences = slices.Clone(t.cfg.Audiences)
	}
	if spec.ExpirationSeconds == nil {
		spec.ExpirationSeconds = new(int64(DefaultTokenExpiration / time.Second))
	}
	if m := int64(t.cfg.MaxExpiration / time.Second); m > 0 && *spec.ExpirationSeconds > m {
		spec.ExpirationSeconds = new(m)
	}
	invalidTR := func(format string, args ...any) error {
		return statusError(codes.InvalidArgument, ReasonInvalid, nil, "TokenRequest.authentication.k8s.io %q is invalid: "+format,
			append([]any{name}, args...)...)
	}
	if e := *spec.ExpirationSeconds; e < int64(serviceaccount.MinExpiration/time.Second) {
		return nil, invalidTR("spec.expirationSeconds: Invalid value: %d: may not specify a duration less than 10 minutes", e)
	} else if e > math.MaxUint32 {
		return nil, invalidTR("spec.expirationSeconds: Invalid value: %d: may not specify a duration larger than 2^32 seconds", e)
	}
	// The account from this member's cache, as the ServiceAccount admission reads it;
	// a miss is confirmed by a linearizable read before it refuses.
	saKey := store.Key{Kind: kinds.ServiceAccount, Namespace: namespace, Name: name}
	sa, found, err := r.serviceAccounts.get(r.store, saKey)
	if err == nil && !found {
		sa, found, err = r.serviceAccounts.confirm(ctx, r.store, saKey)
	}
	switch {
	case err != nil:
		return nil, storeError(saInfo, name, err)
	case !found:
		return nil, notFound(saInfo, name)
	}
	b := serviceaccount.Binding{Namespace: namespace, ServiceAccount: serviceaccount.Ref{Name: name, UID: sa.uid},
		Audiences: spec.Audiences, Expiration: time.Duration(*spec.ExpirationSeconds) * time.Second}
	node := auth.NodeOf(requestUser(ctx))
	ref := spec.BoundObjectRef
	if node != "" && (ref == nil || ref.Kind != kinds.Pod) {
		return nil, forbidden(saInfo, name, fmt.Sprintf("node requested token not bound to a pod"))
	}
	if ref != nil {
		if ref.APIVersion != "" && ref.APIVersion != "v1" {
			return nil, invalidTR("spec.boundObjectRef.apiVersion: Unsupported value: %q: supported values: \"v1\"", ref.APIVersion)
		}
		switch ref.Kind {
		case kinds.Pod:
			info := kinds.MustLookup(kinds.Pod)
			pod, err := r.tokenPod(ctx, store.Key{Kind: kinds.Pod, Namespace: namespace, Name: ref.Name}, string(ref.UID))
			if err != nil {
				return nil, err
			}
			if ref.UID != "" && string(ref.UID) != pod.uid {
				return nil, conflictUID(info, ref.Name, ref.UID, types.UID(pod.uid))
			}
			if pod.account != name {
				return nil, badRequest("cannot bind token for serviceaccount %q to pod running with different serviceaccount name.", name)
			}
			if node != "" && pod.node != node {
				return nil, forbidden(saInfo, name, fmt.Sprintf("node requested token bound to a pod scheduled on a different node"))
			}
			b.Pod = &serviceaccount.Ref{Name: ref.Name, UID: pod.uid}
			ref.UID = types.UID(pod.uid)
			if n := pod.node; n != "" {
				b.Node = &serviceaccount.Ref{Name: n}
				// The node's uid as this member has it (no decode: the stored object
				// carries it).
				if no, _, err := r.store.GetLocal(store.Key{Kind: kinds.Node, Name: n}); err == nil {
					b.Node.UID = no.UID
				}
			}
		case kinds.Secret:
			info := kinds.MustLookup(kinds.Secret)
			o, _, err := r.get(ctx, info, store.Key{Kind: kinds.Secret, Namespace: namespace, Name: ref.Name}, store.ReadOptions{})
			if err != nil {
				return nil, err
			}
			if ref.UID != "" && ref.UID != o.GetUID() {
				return nil, conflictUID(info, ref.Name, ref.UID, o.GetUID())
			}
			b.Secret = &serviceaccount.Ref{Name: ref.Name, UID: string(o.GetUID())}
			ref.UID = o.GetUID()
		default:
			return nil, invalidTR("spec.boundObjectRef.kind: Unsupported value: %q: supported values: \"Pod\", \"Secret\"", ref.Kind)
		}
	}
	now := r.now()
	out := tr.DeepCopy()
	out.TypeMeta = metav1.TypeMeta{APIVersion: "authentication.k8s.io/v1", Kind: "TokenRequest"}
	out.Name, out.Namespace, out.CreationTimestamp = name, namespace, metav1.NewTime(now)
	if dryRun {
		return out, nil
	}
	tok, exp, err := t.issuer.Issue(b, now)
	if err != nil {
		return nil, statusError(codes.Internal, "", nil, "failed to generate token: %v", err)
	}
	out.Status = authenticationv1.TokenRequestStatus{Token: tok, ExpirationTimestamp: metav1.NewTime(exp)}
	return out, nil
}

// tokenPod is what a TokenRequest bound to the pod at k needs of it (uid, node, account).
// A kubelet's request names the uid of a pod bound to it: the node graph answers that
// without a store read (boundPod). Anything the graph cannot answer — no uid named, a
// pod not bound yet, or one this member's graph has not seen yet (just created and
// bound through another member) — is read linearizably from the store, so a graph that
// trails the cluster never refuses a pod that exists.
func (r *resources) tokenPod(ctx context.Context, k store.Key, uid string) (graphPod, error) {
	if p, ok := r.graph.boundPod(k, uid); ok {
		return p, nil
	}
	o, _, err := r.get(ctx, kinds.MustLookup(kinds.Pod), k, store.ReadOptions{})
	if err != nil {
		return graphPod{}, err
	}
	pod := o.(*corev1.Pod)
	return graphPod{uid: string(pod.UID), node: pod.Spec.NodeName, account: pod.Spec.ServiceAccountName}, nil
}

// conflictUID refuses a TokenRequest bound to an object whose uid is not the one named.
func conflictUID(info *kinds.Info, name string, want, got types.UID) error {
	return conflict(info, name, 0, fmt.Sprintf("the UID in the bound object reference (%s) does not match the UID in record. The object might have been deleted and then recreated", want))
}

// CreateToken serves the gRPC TokenRequest (serviceaccounts/token).
func (r *resources) CreateToken(ctx context.Context, req *apiv1.CreateTokenRequest) (*apiv1.Object, error) {
	var tr authenticationv1.TokenRequest
	if err := tr.Unmarshal(req.GetRaw()); err != nil {
		return nil, badRequest("raw: not a TokenRequest: %v", err)
	}
	out, err := r.requestToken(ctx, namespaceFor(kinds.MustLookup(kinds.ServiceAccount), req.GetNamespace()), req.GetName(), &tr, req.GetDryRun())
	if err != nil {
		return nil, err
	}
	raw, err := out.Marshal()
	if err != nil {
		return nil, statusError(codes.Internal, "", nil, "encode TokenRequest: %v", err)
	}
	return &apiv1.Object{ApiVersion: "authentication.k8s.io/v1", Kind: "TokenRequest", Raw: raw}, nil
}
