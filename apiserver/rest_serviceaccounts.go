package apiserver

import (
	"net/http"

	authenticationv1 "k8s.io/api/authentication/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/pki/serviceaccount"
)

// The REST side of service-account tokens (satokens.go): serviceaccounts/token, who
// the server says a request is (SelfSubjectReview, kubectl auth whoami), and OIDC
// discovery of the tokens' issuer.

// Paths outside the resource tree.
const (
	// selfSubjectReviews is where Kubernetes serves SelfSubjectReview: "who am I?".
	selfSubjectReviews = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
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
	review.Status.UserInfo = authenticationv1.UserInfo{Username: user.Name, Groups: groups}
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
