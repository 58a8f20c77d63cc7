package apiserver

import (
	"mime"
	"net"
	"net/http"
	"runtime"
	"sort"
	"strings"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/version"

	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/apiserver/openapi"
	"github.com/skiffhq/skiff/kinds"
)

// Discovery tells clients which groups, versions and resources the server has, from
// kinds.Served, the aggregated APIServices (aggregator.go) and the reviews (authentication.k8s.io's and authorization.k8s.io's
// create-only questions, rest_access.go): Kubernetes' legacy documents (/api, /apis, /apis/GROUP, and the resource
// lists of /api/v1 and /apis/GROUP/VERSION) and the aggregated one (apidiscovery.k8s.io/v2
// at /api and /apis, which kubectl asks for first). Short names and categories ("all")
// let kubectl resolve `get deploy,po` and `get all`.

// KubernetesVersion is the Kubernetes release whose API Skiff serves: that of its
// k8s.io modules.
const KubernetesVersion = "v1.37.2"

// serverVersion is /version's answer.
func serverVersion() *version.Info {
	major, minor, _ := strings.Cut(strings.TrimPrefix(KubernetesVersion, "v"), ".")
	minor, _, _ = strings.Cut(minor, ".")
	return &version.Info{Major: major, Minor: minor, GitVersion: KubernetesVersion + "+skiff", GitTreeState: "clean",
		GoVersion: runtime.Version(), Compiler: runtime.Compiler, Platform: runtime.GOOS + "/" + runtime.GOARCH}
}

// groupVersion is one served group and version, its kinds, and the reviews it answers.
type groupVersion struct {
	group, version string
	kinds          []*kinds.Info
	reviews        []reviewResource
}

// reviewResource is a review (rest_access.go): a resource with no objects, whose one
// verb is create, listed in discovery as Kubernetes lists them.
type reviewResource struct {
	group, resource, singular, kind string
	namespaced                      bool
}

// reviewResources are the reviews Skiff answers, each of group/v1.
var reviewResources = []reviewResource{
	{group: authenticationv1.GroupName, resource: reviewSelfSubject, singular: "selfsubjectreview", kind: "SelfSubjectReview"},
	{group: authenticationv1.GroupName, resource: reviewToken, singular: "tokenreview", kind: "TokenReview"},
	{group: authorizationv1.GroupName, resource: reviewLocalSubjectAccess, singular: "localsubjectaccessreview", kind: "LocalSubjectAccessReview", namespaced: true},
	{group: authorizationv1.GroupName, resource: reviewSelfSubjectAccess, singular: "selfsubjectaccessreview", kind: "SelfSubjectAccessReview"},
	{group: authorizationv1.GroupName, resource: reviewSelfSubjectRules, singular: "selfsubjectrulesreview", kind: "SelfSubjectRulesReview"},
	{group: authorizationv1.GroupName, resource: reviewSubjectAccess, singular: "subjectaccessreview", kind: "SubjectAccessReview"},
}

// reviewVerbs are a review's verbs.
var reviewVerbs = metav1.Verbs{verbCreate}

func (gv groupVersion) String() string {
	if gv.group == "" {
		return gv.version
	}
	return gv.group + "/" + gv.version
}

// servedGroups lists the groups and versions of kinds.Served, the core group first, then
// by name.
func servedGroups() []groupVersion {
	var out []groupVersion
	for _, in := range kinds.Served() {
		found := false
		for i := range out {
			if out[i].group == in.Group && out[i].version == in.Version {
				out[i].kinds, found = append(out[i].kinds, in), true
			}
		}
		if !found {
			out = append(out, groupVersion{group: in.Group, version: in.Version, kinds: []*kinds.Info{in}})
		}
	}
	for _, rv := range reviewResources {
		found := false
		for i := range out {
			if out[i].group == rv.group && out[i].version == "v1" {
				out[i].reviews, found = append(out[i].reviews, rv), true
			}
		}
		if !found {
			out = append(out, groupVersion{group: rv.group, version: "v1", reviews: []reviewResource{rv}})
		}
	}
	// By group, then its versions by Kubernetes' priority (v2 before v1 before v1beta1).
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].group != out[j].group {
			return out[i].group < out[j].group
		}
		return version.CompareKubeAwareVersionStrings(out[i].version, out[j].version) > 0
	})
	return out
}

// byGroup splits servedGroups' list into its groups, each with its versions, the
// preferred first.
func byGroup(gvs []groupVersion) [][]groupVersion {
	var out [][]groupVersion
	for _, gv := range gvs {
		if n := len(out); n > 0 && out[n-1][0].group == gv.group {
			out[n-1] = append(out[n-1], gv)
			continue
		}
		out = append(out, []groupVersion{gv})
	}
	return out
}

var allVerbs = metav1.Verbs{verbCreate, verbDelete, verbDeleteCollection, verbGet, verbList, verbPatch, verbUpdate, verbWatch}

// aggregatedType is the media type of aggregated discovery.
const aggregatedType = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

// wantsAggregated says whether the Accept header asks for aggregated discovery first.
func wantsAggregated(accept string) bool {
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		if params["as"] == "APIGroupDiscoveryList" && params["g"] == "apidiscovery.k8s.io" && params["v"] == "v2" {
			return mt == "application/json" || mt == "*/*"
		}
		if mt == "application/json" || mt == "*/*" || mt == "application/*" {
			return false
		}
	}
	return false
}

// discoveryRoot answers /api and /apis.
func (a *restAPI) discoveryRoot(w http.ResponseWriter, r *http.Request, path string) {
	core := path == "/api"
	if wantsAggregated(r.Header.Get("Accept")) {
		list := &apidiscoveryv2.APIGroupDiscoveryList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupDiscoveryList", APIVersion: "apidiscovery.k8s.io/v2"}}
		for _, gvs := range byGroup(servedGroups()) {
			if (gvs[0].group == "") != core {
				continue
			}
			g := apidiscoveryv2.APIGroupDiscovery{ObjectMeta: metav1.ObjectMeta{Name: gvs[0].group}}
			for _, gv := range gvs {
				g.Versions = append(g.Versions, apidiscoveryv2.APIVersionDiscovery{Version: gv.version, Resources: aggregatedResources(gv),
					Freshness: apidiscoveryv2.DiscoveryFreshnessCurrent})
			}
			list.Items = append(list.Items, g)
		}
		if !core {
			for _, svcs := range a.agg.groups(r.Context()) {
				if g, ok := a.agg.discoveryGroup(r.Context(), svcs); ok {
					list.Items = append(list.Items, g)
				}
			}
		}
		if list.Items == nil {
			list.Items = []apidiscoveryv2.APIGroupDiscovery{}
		}
		w.Header().Set("Vary", "Accept")
		writeJSONType(w, aggregatedType, list)
		return
	}
	if core {
		writeJSON(w, http.StatusOK, &metav1.APIVersions{TypeMeta: metav1.TypeMeta{Kind: "APIVersions"}, Versions: []string{"v1"},
			ServerAddressByClientCIDRs: []metav1.ServerAddressByClientCIDR{{ClientCIDR: "0.0.0.0/0", ServerAddress: a.serverAddress(r)}}})
		return
	}
	list := &metav1.APIGroupList{TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"}, Groups: []metav1.APIGroup{}}
	for _, gvs := range byGroup(servedGroups()) {
		if gvs[0].group != "" {
			list.Groups = append(list.Groups, apiGroup(gvs))
		}
	}
	for _, svcs := range a.agg.groups(r.Context()) {
		list.Groups = append(list.Groups, apiGroupOf(svcs))
	}
	w.Header().Set("Vary", "Accept")
	writeJSON(w, http.StatusOK, list)
}

func apiGroup(gvs []groupVersion) metav1.APIGroup {
	g := metav1.APIGroup{Name: gvs[0].group}
	for _, gv := range gvs {
		g.Versions = append(g.Versions, metav1.GroupVersionForDiscovery{GroupVersion: gv.String(), Version: gv.version})
	}
	g.PreferredVersion = g.Versions[0]
	return g
}

// discoveryGroup answers /apis/GROUP.
func (a *restAPI) discoveryGroup(w http.ResponseWriter, r *http.Request, group string) {
	for _, gvs := range byGroup(servedGroups()) {
		if gvs[0].group == group && group != "" {
			g := apiGroup(gvs)
			g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
			writeJSON(w, http.StatusOK, &g)
			return
		}
	}
	for _, svcs := range a.agg.groups(r.Context()) {
		if svcs[0].Spec.Group == group {
			g := apiGroupOf(svcs)
			g.TypeMeta = metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"}
			writeJSON(w, http.StatusOK, &g)
			return
		}
	}
	a.fail(w, r, notFoundPath())
}

// discoveryVersion answers /api/v1 and /apis/GROUP/VERSION: the resources and
// subresources of the version.
func (a *restAPI) discoveryVersion(w http.ResponseWriter, r *http.Request, group, version string) {
	for _, gv := range servedGroups() {
		if gv.group != group || gv.version != version {
			continue
		}
		list := &metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"}, GroupVersion: gv.String()}
		for _, in := range gv.kinds {
			list.APIResources = append(list.APIResources, metav1.APIResource{Name: in.Plural, SingularName: in.Singular,
				Namespaced: in.Namespaced, Kind: in.Kind, Verbs: allVerbs, ShortNames: in.ShortNames, Categories: in.Categories})
			for _, s := range subresourcesOf(in) {
				res := metav1.APIResource{Name: in.Plural + "/" + s.name, Namespaced: in.Namespaced, Kind: in.Kind, Verbs: s.verbs}
				if s.kind.Kind != "" {
					res.Group, res.Version, res.Kind = s.kind.Group, s.kind.Version, s.kind.Kind
				}
				list.APIResources = append(list.APIResources, res)
			}
		}
		for _, rv := range gv.reviews {
			list.APIResources = append(list.APIResources, metav1.APIResource{Name: rv.resource, SingularName: rv.singular,
				Namespaced: rv.namespaced, Kind: rv.kind, Verbs: reviewVerbs})
		}
		writeJSON(w, http.StatusOK, list)
		return
	}
	a.fail(w, r, notFoundPath())
}

// aggregatedResources lists a version's resources for aggregated discovery.
func aggregatedResources(gv groupVersion) []apidiscoveryv2.APIResourceDiscovery {
	var out []apidiscoveryv2.APIResourceDiscovery
	for _, in := range gv.kinds {
		scope := apidiscoveryv2.ScopeCluster
		if in.Namespaced {
			scope = apidiscoveryv2.ScopeNamespace
		}
		gvk := in.GroupVersionKind()
		rd := apidiscoveryv2.APIResourceDiscovery{Resource: in.Plural, SingularResource: in.Singular, Scope: scope,
			ResponseKind: &metav1.GroupVersionKind{Group: gvk.Group, Version: gvk.Version, Kind: gvk.Kind},
			Verbs:        allVerbs, ShortNames: in.ShortNames, Categories: in.Categories}
		for _, s := range subresourcesOf(in) {
			k := s.kind
			if k.Kind == "" {
				k = gvk
			}
			rd.Subresources = append(rd.Subresources, apidiscoveryv2.APISubresourceDiscovery{Subresource: s.name,
				ResponseKind: &metav1.GroupVersionKind{Group: k.Group, Version: k.Version, Kind: k.Kind}, Verbs: s.verbs})
		}
		out = append(out, rd)
	}
	for _, rv := range gv.reviews {
		scope := apidiscoveryv2.ScopeCluster
		if rv.namespaced {
			scope = apidiscoveryv2.ScopeNamespace
		}
		out = append(out, apidiscoveryv2.APIResourceDiscovery{Resource: rv.resource, SingularResource: rv.singular, Scope: scope,
			ResponseKind: &metav1.GroupVersionKind{Group: gv.group, Version: gv.version, Kind: rv.kind}, Verbs: reviewVerbs})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Resource < out[j].Resource })
	return out
}

// serverAddress is the address the client reached this server at.
func (a *restAPI) serverAddress(r *http.Request) string {
	if a.serverIP != nil {
		return a.serverIP(r)
	}
	if addr, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr); ok {
		return addr.String()
	}
	return r.Host
}

// writeJSONType writes v as JSON with the content type given.
func writeJSONType(w http.ResponseWriter, contentType string, v any) {
	w.Header().Set("Content-Type", contentType)
	writeJSONBody(w, http.StatusOK, v)
}

// openAPIHandler serves the OpenAPI documents of every built-in resource and review,
// and of the CRDs the crdController gives it.
func openAPIHandler() *openapi.Handler {
	var res []openapi.Resource
	for _, in := range kinds.Served() {
		if in.Custom != nil {
			continue // a CRD's: documented by the crdController's SetCRDs, from its schema
		}
		r := openapi.Resource{Info: in}
		for _, s := range subresourcesOf(in) {
			if s.name == auth.SubresourceProxy {
				continue // no object goes in or out: Kubernetes' "connect" operations, not described
			}
			sr := openapi.Subresource{Name: s.name, Verbs: s.verbs}
			switch {
			case s.name == "log":
				sr.Model = "string"
			case s.kind.Kind == "Scale":
				sr.Model = "io.k8s.api.autoscaling.v1.Scale"
			case s.kind.Kind == "Binding":
				sr.Model = "io.k8s.api.core.v1.Binding"
			case s.kind.Kind == "Eviction":
				sr.Model = "io.k8s.api.policy.v1.Eviction"
			}
			r.Subresources = append(r.Subresources, sr)
		}
		res = append(res, r)
	}
	var reviews []openapi.Review
	for _, rv := range reviewResources {
		reviews = append(reviews, openapi.Review{Group: rv.group, Version: "v1", Kind: rv.kind, Plural: rv.resource, Namespaced: rv.namespaced})
	}
	return openapi.New(res, reviews, KubernetesVersion)
}
