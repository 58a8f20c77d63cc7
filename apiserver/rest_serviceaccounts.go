package apiserver

import (
	"fmt"
	"net/http"
	"slices"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/pki/serviceaccount"
)

// The REST side of service-account tokens (satokens.go): serviceaccounts/token, who
// the server says a request is (SelfSubjectReview, kubectl auth whoami), and OIDC
// discovery of the tokens' issuer.

// Paths outside the resource tree.
const (
	// openIDConfiguration and openIDKeys are OIDC discovery's document and key set.
	openIDConfiguration = "/.well-known/openid-configuration"
	openIDKeys          = "/openid/v1/jwks"
)

// token serves serviceaccounts/token: a TokenRequest, as the gRPC CreateToken.
func (a *restAPI) token(w http.ResponseWriter, r *http.Request, req *restRequest) {
	opts, err := writeOptionsOf(r.URL.Query())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	var tr authenticationv1.TokenRequest
	if !a.readInto(w, r, &tr, "a TokenRequest") {
		return
	}
	out, err := a.res.requestToken(r.Context(), req.namespace, req.name, &tr, opts.dryRun)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, out)
}

// selfSubjectReview answers a SelfSubjectReview: the user the request was
// authenticated as, which any authenticated user may ask about itself.
func (a *restAPI) selfSubjectReview(w http.ResponseWriter, r *http.Request, user auth.User) {
	var review authenticationv1.SelfSubjectReview
	if !a.readReview(w, r, &review, "a SelfSubjectReview") {
		return
	}
	review.APIVersion, review.Kind = "authentication.k8s.io/v1", "SelfSubjectReview"
	groups := user.Groups
	if a.gate.authn != nil && !user.InGroup(serviceaccount.Authenticated) {
		groups = append(append([]string(nil), groups...), serviceaccount.Authenticated)
	}
	review.Status.UserInfo = userInfo(user)
	review.Status.UserInfo.Groups = groups
	writeJSON(w, http.StatusCreated, &review)
}

// tokenReview answers a TokenReview: whom the API server authenticates spec.token as
// (a token of the token file, or a service-account token), for spec.audiences (default
// the API's audiences). This server checks tokens for its own audiences alone: a review
// for others is answered for those among them, and is unauthenticated when there are
// none.
func (a *restAPI) tokenReview(w http.ResponseWriter, r *http.Request) {
	var review authenticationv1.TokenReview
	if !a.readReview(w, r, &review, "a TokenReview") {
		return
	}
	if review.Spec.Token == "" {
		a.fail(w, r, badRequest("token is required for TokenReview in authentication"))
		return
	}
	review.APIVersion, review.Kind = "authentication.k8s.io/v1", "TokenReview"
	if a.gate.authn == nil {
		writeJSON(w, http.StatusCreated, &review)
		return
	}
	var api []string
	if t := a.res.tokens; t != nil {
		api = t.cfg.Audiences
	}
	auds := api
	if len(review.Spec.Audiences) > 0 {
		auds = nil
		for _, x := range review.Spec.Audiences {
			if len(api) == 0 || slices.Contains(api, x) {
				auds = append(auds, x)
			}
		}
		if len(auds) == 0 {
			review.Status.Error = fmt.Sprintf("token audiences %q are not this API server's %q", review.Spec.Audiences, api)
			writeJSON(w, http.StatusCreated, &review)
			return
		}
	}
	u, err := a.gate.authn.Authenticate(auth.Credentials{BearerToken: review.Spec.Token})
	if err != nil {
		review.Status.Error = err.Error()
	} else {
		review.Status.Authenticated, review.Status.User, review.Status.Audiences = true, userInfo(u), auds
	}
	writeJSON(w, http.StatusCreated, &review)
}

// openID serves OIDC discovery (path openIDConfiguration or openIDKeys) to any
// authenticated user, as Kubernetes' system:service-account-issuer-discovery role
// lets service accounts read it. 404 when the server has no service-account keys.
func (a *restAPI) openID(w http.ResponseWriter, r *http.Request, path string) {
	t := a.res.tokens
	if t == nil || t.verifier == nil {
		a.fail(w, r, notFoundPath())
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		a.fail(w, r, methodNotAllowed(r.Method))
		return
	}
	w.Header().Set("Cache-Control", "public, max-age=3600")
	if path == openIDConfiguration {
		writeJSON(w, http.StatusOK, serviceaccount.Discovery(t.cfg.Issuers[0], t.cfg.JWKSURI, t.cfg.Keys))
		return
	}
	set, err := serviceaccount.JWKS(t.cfg.Keys)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSONType(w, "application/jwk-set+json", set)
}

// userInfo is user as Kubernetes' reviews report it.
func userInfo(u auth.User) authenticationv1.UserInfo {
	info := authenticationv1.UserInfo{Username: u.Name, UID: u.UID, Groups: u.Groups}
	if len(u.Extra) > 0 {
		info.Extra = make(map[string]authenticationv1.ExtraValue, len(u.Extra))
		for k, v := range u.Extra {
			info.Extra[k] = v
		}
	}
	return info
}
