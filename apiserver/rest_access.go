package apiserver

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
)

// selfSubjectAccessReviews is where Kubernetes serves SelfSubjectAccessReview, the
// question "may I?" that kubectl auth can-i asks. It is not stored: the answer is the
// authorizer's for the requester.
const selfSubjectAccessReviews = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"

// accessReview answers a SelfSubjectAccessReview for user: whether the authorizer allows
// the request its spec describes, and why not. Any authenticated user may ask about
// itself, as in Kubernetes (system:basic-user). A request a Guard allows (a node's pods)
// is allowed, subject to that check on the object.
func (a *restAPI) accessReview(w http.ResponseWriter, r *http.Request, user auth.User) {
	var review authorizationv1.SelfSubjectAccessReview
	if !a.readReview(w, r, &review, "a SelfSubjectAccessReview") {
		return
	}
	ra, nra := review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes
	if (ra == nil) == (nra == nil) {
		a.fail(w, r, statusError(codes.InvalidArgument, ReasonInvalid, nil,
			`SelfSubjectAccessReview.authorization.k8s.io "" is invalid: spec.resourceAttributes: Invalid value: "": exactly one of nonResourceAttributes or resourceAttributes must be specified`))
		return
	}
	review.Status = a.review(user, ra, nra)
	review.APIVersion, review.Kind = "authorization.k8s.io/v1", "SelfSubjectAccessReview"
	writeJSON(w, http.StatusCreated, &review)
}

// review is the authorizer's answer for user: the built-in rules' and RBAC's.
func (a *restAPI) review(user auth.User, ra *authorizationv1.ResourceAttributes, nra *authorizationv1.NonResourceAttributes) authorizationv1.SubjectAccessReviewStatus {
	if a.gate.authn == nil {
		return authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: "this API server authorizes every request (no client CA and no token file)"}
	}
	if nra != nil {
		// Health, version, discovery and OpenAPI are open to every authenticated user
		// (Kubernetes' system:discovery and system:public-info-viewer); other paths are
		// RBAC's nonResourceURLs.
		for _, p := range []string{"/healthz", "/livez", "/readyz", "/version", "/api", "/apis", "/openapi"} {
			if (nra.Path == p || strings.HasPrefix(nra.Path, p+"/")) && nra.Verb == "get" {
				return authorizationv1.SubjectAccessReviewStatus{Allowed: true}
			}
		}
		_, why, err := a.gate.authz.Decide(auth.Attributes{User: user, Verb: nra.Verb, Path: nra.Path})
		if err != nil {
			return authorizationv1.SubjectAccessReviewStatus{Reason: err.Error()}
		}
		return authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: why}
	}
	verbs := []string{ra.Verb}
	if ra.Verb == "*" {
		verbs = []string{verbGet, verbList, verbWatch, verbCreate, verbUpdate, verbDelete}
	}
	var reasons []string
	for _, v := range verbs {
		attrs := auth.Attributes{User: user, Verb: v, Resource: ra.Resource, Subresource: ra.Subresource, Namespace: ra.Namespace, Name: ra.Name,
			APIGroup: ra.Group}
		if av, ok := authVerbs[v]; ok && av != v {
			attrs.Verb, attrs.RequestVerb = av, v // patch, deletecollection
		}
		gd, why, err := a.gate.authz.Decide(attrs)
		if err != nil {
			if !served(ra) && !auth.IsAdmin(user) {
				return authorizationv1.SubjectAccessReviewStatus{Reason: fmt.Sprintf("the server does not serve %q in group %q", ra.Resource, ra.Group)}
			}
			return authorizationv1.SubjectAccessReviewStatus{Reason: err.Error()}
		}
		if gd != nil {
			why = "allowed for the objects the node restriction admits"
		}
		if why != "" && !slices.Contains(reasons, why) {
			reasons = append(reasons, why)
		}
	}
	return authorizationv1.SubjectAccessReviewStatus{Allowed: true, Reason: strings.Join(reasons, "; ")}
}

// served reports whether ra names a resource Skiff serves (its version, when given).
func served(ra *authorizationv1.ResourceAttributes) bool {
	for _, in := range kinds.All() {
		if in.Group == ra.Group && in.Plural == ra.Resource && (ra.Version == "" || ra.Version == "*" || ra.Version == in.Version) {
			return true
		}
	}
	return false
}
