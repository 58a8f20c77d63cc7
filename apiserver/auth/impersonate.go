package auth

import (
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strings"

	authenticationv1 "k8s.io/api/authentication/v1"
)

// Impersonation is the identity a request asks to act as: Kubernetes' Impersonate-User,
// Impersonate-Group, Impersonate-Uid and Impersonate-Extra-KEY headers (kubectl --as,
// --as-group, --as-uid), over REST as headers and over gRPC as metadata of the same
// names.
type Impersonation struct {
	User   string
	Groups []string
	UID    string
	Extra  map[string][]string
}

// Requested reports whether any impersonation was asked for.
func (im Impersonation) Requested() bool {
	return im.User != "" || len(im.Groups) > 0 || im.UID != "" || len(im.Extra) > 0
}

// Resources the impersonate verb is authorized on, as Kubernetes names them: users,
// groups and serviceaccounts in the core group; uids and userextras/KEY in
// authentication.k8s.io.
const (
	ResourceUsers      = "users"
	ResourceGroups     = "groups"
	ResourceUIDs       = "uids"
	ResourceUserExtras = "userextras"
)

// ErrImpersonationWithoutUser refuses groups, a uid or extras impersonated without a
// user, as Kubernetes does (a Bad Request).
var ErrImpersonationWithoutUser = errors.New("without impersonating a user")

const extraPrefix = authenticationv1.ImpersonateUserExtraHeaderPrefix

// ParseImpersonation reads the impersonation headers of h: HTTP headers or gRPC
// metadata (any case). An extra's key is the rest of its header's name, lower case and
// percent-unescaped, as Kubernetes reads it.
func ParseImpersonation(h map[string][]string) (Impersonation, error) {
	var im Impersonation
	const prefix = "impersonate-"
	for k, vs := range h {
		if len(k) < len(prefix) || !strings.EqualFold(k[:len(prefix)], prefix) || len(vs) == 0 {
			continue // every request's headers pass here: no allocation for them
		}
		switch lk := strings.ToLower(k); {
		case strings.EqualFold(lk, authenticationv1.ImpersonateUserHeader):
			im.User = vs[0]
		case strings.EqualFold(lk, authenticationv1.ImpersonateGroupHeader):
			im.Groups = append(im.Groups, vs...)
		case strings.EqualFold(lk, authenticationv1.ImpersonateUIDHeader):
			im.UID = vs[0]
		case len(lk) > len(extraPrefix) && strings.EqualFold(lk[:len(extraPrefix)], extraPrefix):
			key := lk[len(extraPrefix):]
			if u, err := url.PathUnescape(key); err == nil {
				key = u
			}
			if im.Extra == nil {
				im.Extra = map[string][]string{}
			}
			im.Extra[key] = append(im.Extra[key], vs...)
		}
	}
	if im.User == "" && im.Requested() {
		var what []string
		if len(im.Groups) > 0 {
			what = append(what, "groups "+fmt.Sprintf("%q", im.Groups))
		}
		if im.UID != "" {
			what = append(what, "uid "+fmt.Sprintf("%q", im.UID))
		}
		if len(im.Extra) > 0 {
			what = append(what, "extra fields")
		}
		return im, fmt.Errorf("requested %s %w", strings.Join(what, ", "), ErrImpersonationWithoutUser)
	}
	return im, nil
}

// Impersonate is Kubernetes' impersonation: u may act as im when the authorizer allows
// u the verb impersonate on the user (or, for system:serviceaccount:NS:NAME, the
// ServiceAccount NS/NAME), each group, the uid and each extra value. It returns the
// identity the request then has for everything (authorization, the node rule, who
// wrote what), or the first *Denied. A service account impersonated without groups has
// its groups; every user but system:anonymous is in system:authenticated, unless
// system:unauthenticated is impersonated.
func (az Authorizer) Impersonate(u User, im Impersonation) (User, error) {
	check := func(a Attributes) error {
		a.User, a.Verb = u, Impersonate
		_, err := az.Authorize(a)
		return err
	}
	out := User{Name: im.User, Groups: slices.Clone(im.Groups), UID: im.UID}
	if ns, name, ok := ServiceAccountOf(im.User); ok {
		if err := check(Attributes{Resource: "serviceaccounts", Namespace: ns, Name: name}); err != nil {
			return User{}, err
		}
		if len(im.Groups) == 0 {
			out.Groups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ns}
		}
	} else if err := check(Attributes{Resource: ResourceUsers, Name: im.User}); err != nil {
		return User{}, err
	}
	for _, g := range im.Groups {
		if err := check(Attributes{Resource: ResourceGroups, Name: g}); err != nil {
			return User{}, err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(im.Extra)) {
		for _, v := range im.Extra[k] {
			if err := check(Attributes{APIGroup: authenticationv1.GroupName, Resource: ResourceUserExtras, Subresource: k, Name: v}); err != nil {
				return User{}, err
			}
		}
	}
	if im.UID != "" {
		if err := check(Attributes{APIGroup: authenticationv1.GroupName, Resource: ResourceUIDs, Name: im.UID}); err != nil {
			return User{}, err
		}
	}
	if len(im.Extra) > 0 {
		out.Extra = im.Extra
	}
	if im.User == UserAnonymous {
		if !out.InGroup(GroupUnauthenticated) {
			out.Groups = append(out.Groups, GroupUnauthenticated)
		}
	} else if !out.InGroup(GroupAuthenticated) && !out.InGroup(GroupUnauthenticated) {
		out.Groups = append(out.Groups, GroupAuthenticated)
	}
	return out, nil
}
