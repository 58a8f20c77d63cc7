package apiserver

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"google.golang.org/grpc/codes"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/kinds"
)

// The reviews are questions to the authenticator and the authorizer, answered and not
// stored (POST only), as Kubernetes serves them:
// /apis/authorization.k8s.io/v1/{selfsubjectaccessreviews, subjectaccessreviews,
// selfsubjectrulesreviews}, /apis/authorization.k8s.io/v1/namespaces/NS/
// localsubjectaccessreviews and /apis/authentication.k8s.io/v1/{selfsubjectreviews,
// tokenreviews}. A question about oneself (may I? what may I? who am I?) is any
// authenticated user's, as Kubernetes' system:basic-user grants it; one about another
// (SubjectAccessReview, LocalSubjectAccessReview, TokenReview: what a webhook or
// kube-rbac-proxy asks) needs create on its resource, as system:auth-delegator grants.
const (
	reviewSelfSubjectAccess  = "selfsubjectaccessreviews"
	reviewSubjectAccess      = "subjectaccessreviews"
	reviewLocalSubjectAccess = "localsubjectaccessreviews"
	reviewSelfSubjectRules   = "selfsubjectrulesreviews"
	reviewSelfSubject        = "selfsubjectreviews"
	reviewToken              = "tokenreviews"
)

// reviewOf is the review a path's segments name, and the namespace of a
// LocalSubjectAccessReview ("" and "" for any other path).
func reviewOf(segs []string) (resource, namespace string) {
	if len(segs) < 4 || segs[0] != "apis" || segs[2] != "v1" {
		return "", ""
	}
	switch group := segs[1]; {
	case group == authorizationv1.GroupName && len(segs) == 4:
		switch segs[3] {
		case reviewSelfSubjectAccess, reviewSubjectAccess, reviewSelfSubjectRules:
			return segs[3], ""
		}
	case group == authorizationv1.GroupName && len(segs) == 6 && segs[3] == "namespaces" && segs[5] == reviewLocalSubjectAccess:
		return reviewLocalSubjectAccess, segs[4]
	case group == authenticationv1.GroupName && len(segs) == 4 && (segs[3] == reviewSelfSubject || segs[3] == reviewToken):
		return segs[3], ""
	}
	return "", ""
}

// serveReview answers the review resource (in namespace, a LocalSubjectAccessReview's).
func (a *restAPI) serveReview(w http.ResponseWriter, r *http.Request, resource, namespace string) {
	user := requestUser(r.Context())
	switch resource {
	case reviewSelfSubjectAccess:
		a.accessReview(w, r, user)
		return
	case reviewSelfSubjectRules:
		a.rulesReview(w, r, user)
		return
	case reviewSelfSubject:
		a.selfSubjectReview(w, r, user)
		return
	}
	group := authorizationv1.GroupName
	if resource == reviewToken {
		group = authenticationv1.GroupName
	}
	if _, err := a.gate.authorizeAttrs(r.Context(), auth.Attributes{User: user, Verb: auth.Create, APIGroup: group, Resource: resource, Namespace: namespace}); err != nil {
		a.fail(w, r, err)
		return
	}
	switch resource {
	case reviewSubjectAccess, reviewLocalSubjectAccess:
		a.subjectAccessReview(w, r, namespace)
	case reviewToken:
		a.tokenReview(w, r)
	}
}

// invalidReview is Kubernetes' refusal of a review's content.
func invalidReview(kind, path string, value any, why string) error {
	return statusError(codes.InvalidArgument, ReasonInvalid, nil, `%s.authorization.k8s.io "" is invalid: %s: Invalid value: %s: %s`, kind, path, value, why)
}

// accessReview answers a SelfSubjectAccessReview for user: whether the authorizer allows
// the request its spec describes, and why not. A request a Guard allows (a node's pods)
// is allowed, subject to that check on the object.
func (a *restAPI) accessReview(w http.ResponseWriter, r *http.Request, user auth.User) {
	var review authorizationv1.SelfSubjectAccessReview
	if !a.readReview(w, r, &review, "a SelfSubjectAccessReview") {
		return
	}
	ra, nra := review.Spec.ResourceAttributes, review.Spec.NonResourceAttributes
	if (ra == nil) == (nra == nil) {
		a.fail(w, r, invalidReview("SelfSubjectAccessReview", "spec.resourceAttributes", `""`, "exactly one of nonResourceAttributes or resourceAttributes must be specified"))
		return
	}
	review.Status = a.review(user, ra, nra)
	review.APIVersion, review.Kind = "authorization.k8s.io/v1", "SelfSubjectAccessReview"
	writeJSON(w, http.StatusCreated, &review)
}

// subjectAccessReview answers a SubjectAccessReview, or in namespace a
// LocalSubjectAccessReview (the same spec, of that namespace's resources alone), for
// the user, groups, uid and extra its spec names.
func (a *restAPI) subjectAccessReview(w http.ResponseWriter, r *http.Request, namespace string) {
	kind := "SubjectAccessReview"
	if namespace != "" {
		kind = "LocalSubjectAccessReview"
	}
	var review authorizationv1.SubjectAccessReview
	if !a.readReview(w, r, &review, "a "+kind) {
		return
	}
	spec := &review.Spec
	ra, nra := spec.ResourceAttributes, spec.NonResourceAttributes
	var err error
	switch {
	case namespace != "" && review.Namespace != "" && review.Namespace != namespace:
		err = badRequest("the namespace of the provided object does not match the namespace sent on the request")
	case namespace != "" && nra != nil:
		err = invalidReview(kind, "spec.nonResourceAttributes", fmt.Sprintf("%+v", *nra), "disallowed on this kind of request")
	case namespace != "" && ra != nil && ra.Namespace != namespace:
		err = invalidReview(kind, "spec.resourceAttributes.namespace", strconv.Quote(ra.Namespace), "must match metadata.namespace")
	case (ra == nil) == (nra == nil):
		err = invalidReview(kind, "spec.resourceAttributes", `""`, "exactly one of nonResourceAttributes or resourceAttributes must be specified")
	case spec.User == "" && len(spec.Groups) == 0:
		err = invalidReview(kind, "spec.user", `""`, "at least one of user or group must be specified")
	}
	if err != nil {
		a.fail(w, r, err)
		return
	}
	subject := auth.User{Name: spec.User, Groups: spec.Groups, UID: spec.UID}
	for k, v := range spec.Extra {
		if subject.Extra == nil {
			subject.Extra = map[string][]string{}
		}
		subject.Extra[k] = v
	}
	review.Status = a.review(subject, ra, nra)
	review.APIVersion, review.Kind = "authorization.k8s.io/v1", kind
	if namespace != "" {
		review.Namespace = namespace
	}
	writeJSON(w, http.StatusCreated, &review)
}

// rulesReview answers a SelfSubjectRulesReview (kubectl auth can-i --list): what RBAC
// grants user in spec.namespace (cluster-wide rules too). An administrator may
// anything; the built-in rules of Skiff's components (its API servers, controllers,
// scheduler and kubelets) are no list of rules, so their answer is incomplete.
func (a *restAPI) rulesReview(w http.ResponseWriter, r *http.Request, user auth.User) {
	var review authorizationv1.SelfSubjectRulesReview
	if !a.readReview(w, r, &review, "a SelfSubjectRulesReview") {
		return
	}
	if review.Spec.Namespace == "" {
		a.fail(w, r, badRequest("no namespace on request"))
		return
	}
	st := &review.Status
	if a.gate.authn == nil || auth.IsAdmin(user) {
		st.ResourceRules = []authorizationv1.ResourceRule{{Verbs: []string{"*"}, APIGroups: []string{"*"}, Resources: []string{"*"}}}
		st.NonResourceRules = []authorizationv1.NonResourceRule{{Verbs: []string{"*"}, NonResourceURLs: []string{"*"}}}
	} else {
		rules, missing := a.gate.authz.RBAC.RulesFor(user, review.Spec.Namespace)
		for _, rl := range rules {
			if len(rl.NonResourceURLs) > 0 {
				st.NonResourceRules = append(st.NonResourceRules, authorizationv1.NonResourceRule{Verbs: rl.Verbs, NonResourceURLs: rl.NonResourceURLs})
			} else {
				st.ResourceRules = append(st.ResourceRules, authorizationv1.ResourceRule{Verbs: rl.Verbs, APIGroups: rl.APIGroups,
					Resources: rl.Resources, ResourceNames: rl.ResourceNames})
			}
		}
		st.Incomplete = auth.HasBuiltinRules(user)
		if len(missing) > 0 {
			st.EvaluationError = strings.Join(missing, ", ")
		}
	}
	review.APIVersion, review.Kind = "authorization.k8s.io/v1", "SelfSubjectRulesReview"
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
