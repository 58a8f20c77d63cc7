// Package openapi serves the REST API's OpenAPI documents: v2 (/openapi/v2, JSON or
// protobuf) and v3 (/openapi/v3, one document per group-version), as Kubernetes' API
// server does, so that kubectl explain, kubectl's field validation and its patches read
// Skiff's schema. The schemas are Kubernetes' own: package generated holds what
// openapi-gen (k8s.io/kube-openapi) generates from k8s.io/api and k8s.io/apimachinery,
// with their descriptions and x-kubernetes-patch-merge-key/-strategy extensions
// (`make openapi` regenerates it). This package adds what Kubernetes' API server adds:
// the paths and operations of every served resource (x-kubernetes-action,
// x-kubernetes-group-version-kind) and the x-kubernetes-group-version-kind of every
// kind's schema. kube-openapi's builders and handlers do the rest (references, v3
// conversion, ETags, the protobuf encoding of v2). The CRDs' documents come from their
// schemas, made by apiextensions-apiserver's builder (crds.go).
package openapi

import (
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/kube-openapi/pkg/builder"
	"k8s.io/kube-openapi/pkg/builder3"
	"k8s.io/kube-openapi/pkg/common"
	"k8s.io/kube-openapi/pkg/handler"
	"k8s.io/kube-openapi/pkg/handler3"
	"k8s.io/kube-openapi/pkg/spec3"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/skiffhq/skiff/apiserver/openapi/generated"
	"github.com/skiffhq/skiff/kinds"
)

// Resource is one served resource: a kind and its subresources.
type Resource struct {
	Info         *kinds.Info
	Subresources []Subresource
}

// Subresource is one subresource of a kind.
type Subresource struct {
	Name string
	// Model is the OpenAPI model name of what it reads and writes ("" for the kind's,
	// "string" for text).
	Model string
	// Verbs are Kubernetes' verbs it takes (get, update, patch, create).
	Verbs []string
}

// Review is a resource that is only created, answered and never stored (TokenReview,
// SubjectAccessReview…): one POST operation, as Kubernetes documents them.
type Review struct {
	Group, Version, Kind, Plural string
	Namespaced                   bool
}

// model is the review's OpenAPI model name: k8s.io/api's package of its group and
// version (io.k8s.api.authorization.v1.SubjectAccessReview).
func (rv Review) model() string {
	return "io.k8s.api." + strings.Split(rv.Group, ".")[0] + "." + rv.Version + "." + rv.Kind
}

// Handler serves /openapi/v2 and /openapi/v3. The documents of the built-in kinds are
// built on first use; those of the CRDs (SetCRDs) on the first use after they change.
type Handler struct {
	resources []Resource
	reviews   []Review
	version   string
	once      sync.Once
	mux       *http.ServeMux
	err       error
	static    *spec.Swagger // v2 of the built-in kinds
	v2        *handler.OpenAPIService
	v3        *handler3.OpenAPIService
	staticGVs map[string]bool // the built-in kinds' v3 group-versions ("api/v1", "apis/apps/v1")

	// mu guards the CRDs served and what of them the documents hold.
	mu      sync.Mutex
	crds    []*apiextensionsv1.CustomResourceDefinition
	dirty   bool            // crds changed since the documents were made
	crdGVs  map[string]bool // the v3 group-versions the CRDs' documents are served at
	crdsErr error
}

// New prepares the documents of resources and reviews; version is the Kubernetes
// version served.
func New(resources []Resource, reviews []Review, version string) *Handler {
	return &Handler{resources: resources, reviews: reviews, version: version}
}

// ServeHTTP serves /openapi/v2, /openapi/v3 and /openapi/v3/GROUP-VERSION.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.once.Do(func() { h.mux, h.err = h.build() })
	if h.err != nil {
		http.Error(w, h.err.Error(), http.StatusInternalServerError)
		return
	}
	h.mu.Lock()
	if h.dirty {
		h.crdsErr = h.updateCRDs()
		h.dirty = false
	}
	err := h.crdsErr
	h.mu.Unlock()
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h.mux.ServeHTTP(w, r)
}

// build makes both documents and their handlers.
func (h *Handler) build() (*http.ServeMux, error) {
	mux := http.NewServeMux()
	byGV := map[string][]common.RouteContainer{}
	var all []common.RouteContainer
	cs := make([]*routes, 0, len(h.resources)+len(h.reviews))
	for _, res := range h.resources {
		cs = append(cs, container(res))
	}
	for _, rv := range h.reviews {
		cs = append(cs, reviewContainer(rv))
	}
	for _, c := range cs {
		byGV[c.root] = append(byGV[c.root], c)
		all = append(all, c)
	}
	info := &spec.Info{InfoProps: spec.InfoProps{Title: "Kubernetes", Version: h.version}}
	v2, err := builder.BuildOpenAPISpecFromRoutes(all, &common.Config{
		Info: info, GetDefinitions: generated.GetOpenAPIDefinitions, GetDefinitionName: h.definitionName,
		GetOperationIDAndTagsFromRoute: operationIDAndTags,
		DefaultResponse:                &spec.Response{ResponseProps: spec.ResponseProps{Description: "Default Response."}},
	})
	if err != nil {
		return nil, fmt.Errorf("openapi v2: %w", err)
	}
	h.static, h.v2 = v2, handler.NewOpenAPIService(v2)
	h.v2.RegisterOpenAPIVersionedService("/openapi/v2", mux)
	v3 := handler3.NewOpenAPIService()
	h.v3, h.staticGVs = v3, map[string]bool{}
	for gv, cs := range byGV {
		doc, err := builder3.BuildOpenAPISpecFromRoutes(cs, &common.OpenAPIV3Config{
			Info: info, GetDefinitions: generated.GetOpenAPIDefinitions, GetDefinitionName: h.definitionName,
			GetOperationIDAndTagsFromRoute: operationIDAndTags,
			DefaultResponse:                &spec3.Response{ResponseProps: spec3.ResponseProps{Description: "Default Response."}},
		})
		if err != nil {
			return nil, fmt.Errorf("openapi v3 %s: %w", gv, err)
		}
		v3.UpdateGroupVersion(strings.TrimPrefix(gv, "/"), doc)
		h.staticGVs[strings.TrimPrefix(gv, "/")] = true
	}
	if err := v3.RegisterOpenAPIV3VersionedService("/openapi/v3", prefixMux{mux}); err != nil {
		return nil, err
	}
	return mux, nil
}

// prefixMux is common.PathHandlerByGroupVersion over a ServeMux.
type prefixMux struct{ *http.ServeMux }

func (m prefixMux) HandlePrefix(path string, h http.Handler) { m.Handle(path, h) }

// gvk is the value of x-kubernetes-group-version-kind.
func gvk(group, version, kind string) map[string]any {
	return map[string]any{"group": group, "version": version, "kind": kind}
}

// gvks maps model names to the group, version and kind that name them: every kind and
// its list, and the API's other objects (a Handler adds its reviews').
var gvks = func() map[string][]any {
	m := map[string][]any{
		"io.k8s.apimachinery.pkg.apis.meta.v1.Status":        {gvk("", "v1", "Status")},
		"io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions": {gvk("", "v1", "DeleteOptions")},
		"io.k8s.apimachinery.pkg.apis.meta.v1.WatchEvent":    {gvk("", "v1", "WatchEvent")},
		"io.k8s.api.autoscaling.v1.Scale":                    {gvk("autoscaling", "v1", "Scale")},
		"io.k8s.api.core.v1.Binding":                         {gvk("", "v1", "Binding")},
		"io.k8s.api.policy.v1.Eviction":                      {gvk("policy", "v1", "Eviction")},
	}
	for _, in := range kinds.Served() {
		name := modelName(in)
		m[name] = []any{gvk(in.Group, in.Version, in.Kind)}
		m[name+"List"] = []any{gvk(in.Group, in.Version, in.Kind+"List")}
	}
	return m
}()

// definitionName keeps the generated names (io.k8s.api.core.v1.Pod) and adds the
// group-version-kind extension to the kinds'.
func definitionName(name string) (string, spec.Extensions) {
	if v, ok := gvks[name]; ok {
		return name, spec.Extensions{"x-kubernetes-group-version-kind": v}
	}
	return name, nil
}

// definitionName is the package's, adding the extension to h's reviews too.
func (h *Handler) definitionName(name string) (string, spec.Extensions) {
	if _, ok := gvks[name]; ok {
		return definitionName(name)
	}
	for _, rv := range h.reviews {
		if rv.model() == name {
			return name, spec.Extensions{"x-kubernetes-group-version-kind": []any{gvk(rv.Group, rv.Version, rv.Kind)}}
		}
	}
	return name, nil
}

// modelName is a kind's OpenAPI model name.
func modelName(in *kinds.Info) string {
	type namer interface{ OpenAPIModelName() string }
	if n, ok := in.New().(namer); ok {
		return n.OpenAPIModelName()
	}
	return in.Kind
}

// Models returns the names of the generated definitions (for tests and staleness checks).
func Models() []string {
	defs := generated.GetOpenAPIDefinitions(func(string) spec.Ref { return spec.Ref{} })
	out := make([]string, 0, len(defs))
	for k := range defs {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// ModelName is a kind's OpenAPI model name (io.k8s.api.apps.v1.Deployment).
func ModelName(in *kinds.Info) string { return modelName(in) }

func operationIDAndTags(r common.Route) (string, []string, error) {
	rt := r.(*route)
	return r.OperationName(), []string{rt.tag}, nil
}
