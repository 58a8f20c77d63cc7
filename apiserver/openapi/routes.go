package openapi

import (
	"strings"

	"k8s.io/kube-openapi/pkg/common"
)

// The paths and operations of a resource, as Kubernetes' API server installs them:
// the collection (list, create, deletecollection), the list across namespaces of a
// namespaced kind, the object (read, replace, patch, delete) and its subresources,
// with the query parameters each takes.

// model stands for a generated definition by its name.
type model string

func (m model) OpenAPIModelName() string { return string(m) }

const (
	statusModel = model("io.k8s.apimachinery.pkg.apis.meta.v1.Status")
	patchModel  = model("io.k8s.apimachinery.pkg.apis.meta.v1.Patch")
	deleteModel = model("io.k8s.apimachinery.pkg.apis.meta.v1.DeleteOptions")
)

// routes is one resource's RouteContainer, rooted at its group-version.
type routes struct {
	root   string // "/api/v1", "/apis/apps/v1"
	routes []common.Route
}

func (c *routes) RootPath() string                   { return c.root }
func (c *routes) PathParameters() []common.Parameter { return nil }
func (c *routes) Routes() []common.Route             { return c.routes }

type route struct {
	method, path, operation, description, tag string
	params                                    []common.Parameter
	consumes, produces                        []string
	meta                                      map[string]any
	body                                      any
	responses                                 []common.StatusCodeResponse
}

func (r *route) Method() string                                   { return r.method }
func (r *route) Path() string                                     { return r.path }
func (r *route) OperationName() string                            { return r.operation }
func (r *route) Parameters() []common.Parameter                   { return r.params }
func (r *route) Description() string                              { return r.description }
func (r *route) Consumes() []string                               { return r.consumes }
func (r *route) Produces() []string                               { return r.produces }
func (r *route) Metadata() map[string]any                         { return r.meta }
func (r *route) RequestPayloadSample() any                        { return r.body }
func (r *route) ResponsePayloadSample() any                       { return nil }
func (r *route) StatusCodeResponses() []common.StatusCodeResponse { return r.responses }

type response struct {
	code    int
	message string
	model   any
}

func (r response) Code() int       { return r.code }
func (r response) Message() string { return r.message }
func (r response) Model() any      { return r.model }

type param struct {
	name, description, dataType string
	kind                        common.ParameterKind
	required                    bool
}

func (p param) Name() string               { return p.name }
func (p param) Description() string        { return p.description }
func (p param) Required() bool             { return p.required }
func (p param) Kind() common.ParameterKind { return p.kind }
func (p param) DataType() string           { return p.dataType }
func (p param) AllowMultiple() bool        { return false }

func query(name, dataType, description string) param {
	return param{name: name, dataType: dataType, description: description, kind: common.QueryParameterKind}
}

func path(name, description string) param {
	return param{name: name, dataType: "string", description: description, kind: common.PathParameterKind, required: true}
}

var (
	pName      = path("name", "name of the resource")
	pNamespace = path("namespace", "object name and auth scope, such as for teams and projects")
	pBody      = param{name: "body", kind: common.BodyParameterKind, required: true}
	pPretty    = query("pretty", "string", "If 'true', then the output is pretty printed.")
	pDryRun    = query("dryRun", "string", "When present, indicates that modifications should not be persisted. An invalid or unrecognized dryRun directive will result in an error response and no further processing of the request. Valid values are: - All: all dry run stages will be processed")
	pManager   = query("fieldManager", "string", "fieldManager is a name associated with the actor or entity that is making these changes.")
	pFieldVal  = query("fieldValidation", "string", "fieldValidation instructs the server on how to handle objects in the request (POST/PUT/PATCH) containing unknown or duplicate fields. Valid values are: - Ignore - Warn (the default) - Strict")
	pForce     = query("force", "boolean", "Force is going to \"force\" Apply requests. It means user will re-acquire conflicting fields owned by other people.")
	listParams = []common.Parameter{
		query("allowWatchBookmarks", "boolean", "allowWatchBookmarks requests watch events with type \"BOOKMARK\"."),
		query("continue", "string", "The continue option should be set when retrieving more results from the server."),
		query("fieldSelector", "string", "A selector to restrict the list of returned objects by their fields. Defaults to everything."),
		query("labelSelector", "string", "A selector to restrict the list of returned objects by their labels. Defaults to everything."),
		query("limit", "integer", "limit is a maximum number of responses to return for a list call."),
		query("resourceVersion", "string", "resourceVersion sets a constraint on what resource versions a request may be served from."),
		query("resourceVersionMatch", "string", "resourceVersionMatch determines how resourceVersion is applied to list calls."),
		query("sendInitialEvents", "boolean", "`sendInitialEvents=true` may be set together with `watch=true`: the stream begins with synthetic events for the state of all objects, then a bookmark annotated \"k8s.io/initial-events-end\"."),
		query("timeoutSeconds", "integer", "Timeout for the list/watch call."),
		query("watch", "boolean", "Watch for changes to the described resources and return them as a stream of add, update, and remove notifications."),
	}
	deleteParams = []common.Parameter{pDryRun,
		query("gracePeriodSeconds", "integer", "The duration in seconds before the object should be deleted."),
		query("propagationPolicy", "string", "Whether and how garbage collection will be performed: 'Orphan', 'Background' or 'Foreground'."),
		query("orphanDependents", "boolean", "Deprecated: please use the PropagationPolicy."),
	}
	jsonTypes  = []string{"application/json", "application/yaml", "application/vnd.kubernetes.protobuf"}
	patchTypes = []string{"application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json"}
)

// gvRoot is a group-version's path ("/api/v1", "/apis/apps/v1"), gvName how operation
// IDs name it ("CoreV1", "AppsV1") and tag the operations' tag ("core_v1", "apps_v1").
func gvRoot(group, version string) (root, gvName, tag string) {
	root = "/api/" + version
	if group != "" {
		root = "/apis/" + group + "/" + version
	}
	gvName = groupCamel(group) + strings.ToUpper(version[:1]) + version[1:]
	tag = strings.ReplaceAll(strings.Split(group, ".")[0], "-", "_")
	if tag == "" {
		tag = "core"
	}
	return root, gvName, tag + "_" + version
}

// reviewContainer builds a review's one route: POST to its collection, the review in
// and answered out, as Kubernetes' create-only resources are documented.
func reviewContainer(rv Review) *routes {
	root, gvName, tag := gvRoot(rv.Group, rv.Version)
	m := model(rv.model())
	p, nsName, params := root+"/"+rv.Plural, "", []common.Parameter{}
	if rv.Namespaced {
		p, nsName, params = root+"/namespaces/{namespace}/"+rv.Plural, "Namespaced", []common.Parameter{pNamespace}
	}
	r := &route{method: "POST", path: p, operation: "create" + gvName + nsName + rv.Kind, tag: tag,
		description: "create a " + rv.Kind, produces: jsonTypes, body: m,
		meta:      map[string]any{"x-kubernetes-action": "post", "x-kubernetes-group-version-kind": gvk(rv.Group, rv.Version, rv.Kind)},
		params:    append(params, pBody, pDryRun, pManager, pFieldVal, pPretty),
		responses: []common.StatusCodeResponse{response{200, "OK", m}, response{201, "Created", m}, response{202, "Accepted", m}}}
	return &routes{root: root, routes: []common.Route{r}}
}

// container builds the routes of one resource.
func container(res Resource) *routes {
	in := res.Info
	root, gvName, tag := gvRoot(in.Group, in.Version)
	c := &routes{root: root}
	kindModel := model(modelName(in))
	listModel := model(modelName(in) + "List")
	ns, nsName := "", ""
	scope := []common.Parameter{}
	if in.Namespaced {
		ns, nsName = "/namespaces/{namespace}", "Namespaced"
		scope = []common.Parameter{pNamespace}
	}
	collection := root + ns + "/" + in.Plural
	item := collection + "/{name}"
	add := func(method, p, verb, action string, meta map[string]any, body any, params []common.Parameter, consumes []string, produces []string, resps ...response) {
		r := &route{method: method, path: p, operation: verb, tag: tag,
			description: action, consumes: consumes, produces: produces, meta: meta, body: body}
		r.params = append(r.params, params...)
		for _, rs := range resps {
			r.responses = append(r.responses, rs)
		}
		c.routes = append(c.routes, r)
	}
	meta := func(action, group, version, kind string) map[string]any {
		return map[string]any{"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk(group, version, kind)}
	}
	kindMeta := func(action string) map[string]any { return meta(action, in.Group, in.Version, in.Kind) }
	ok := func(m any) response { return response{200, "OK", m} }
	produces := jsonTypes
	with := func(ps ...common.Parameter) []common.Parameter {
		return append(append([]common.Parameter{}, scope...), ps...)
	}

	add("GET", collection, "list"+gvName+nsName+in.Kind, "list or watch objects of kind "+in.Kind, kindMeta("list"), nil,
		with(append([]common.Parameter{pPretty}, listParams...)...), nil, append(jsonTypes, "application/json;stream=watch"), ok(listModel))
	add("POST", collection, "create"+gvName+nsName+in.Kind, "create a "+in.Kind, kindMeta("post"), kindModel,
		with(pBody, pPretty, pDryRun, pManager, pFieldVal), nil, produces, ok(kindModel), response{201, "Created", kindModel}, response{202, "Accepted", kindModel})
	add("DELETE", collection, "deletecollection"+gvName+nsName+in.Kind, "delete collection of "+in.Kind, kindMeta("deletecollection"), deleteModel,
		with(append(append([]common.Parameter{pBody, pPretty}, deleteParams...), listParams...)...), nil, produces, ok(statusModel))
	if in.Namespaced {
		add("GET", root+"/"+in.Plural, "list"+gvName+in.Kind+"ForAllNamespaces", "list or watch objects of kind "+in.Kind, kindMeta("list"), nil,
			append([]common.Parameter{pPretty}, listParams...), nil, append(jsonTypes, "application/json;stream=watch"), ok(listModel))
	}
	add("GET", item, "read"+gvName+nsName+in.Kind, "read the specified "+in.Kind, kindMeta("get"), nil,
		with(pName, pPretty), nil, produces, ok(kindModel))
	add("PUT", item, "replace"+gvName+nsName+in.Kind, "replace the specified "+in.Kind, kindMeta("put"), kindModel,
		with(pName, pBody, pPretty, pDryRun, pManager, pFieldVal), nil, produces, ok(kindModel), response{201, "Created", kindModel})
	add("PATCH", item, "patch"+gvName+nsName+in.Kind, "partially update the specified "+in.Kind, kindMeta("patch"), patchModel,
		with(pName, pBody, pPretty, pDryRun, pManager, pFieldVal, pForce), patchTypes, produces, ok(kindModel), response{201, "Created", kindModel})
	add("DELETE", item, "delete"+gvName+nsName+in.Kind, "delete a "+in.Kind, kindMeta("delete"), deleteModel,
		with(append([]common.Parameter{pName, pBody, pPretty}, deleteParams...)...), nil, produces, ok(statusModel), response{202, "Accepted", statusModel})
	for _, s := range res.Subresources {
		m, g, v, k := kindModel, in.Group, in.Version, in.Kind
		switch s.Model {
		case "":
		case "io.k8s.api.autoscaling.v1.Scale":
			m, g, v, k = model(s.Model), "autoscaling", "v1", "Scale"
		case "io.k8s.api.core.v1.Binding":
			m, g, v, k = model(s.Model), "", "v1", "Binding"
		case "io.k8s.api.policy.v1.Eviction":
			m, g, v, k = model(s.Model), "policy", "v1", "Eviction"
		default:
			m = model(s.Model)
		}
		p := item + "/" + s.Name
		suffix := gvName + nsName + in.Kind + strings.ToUpper(s.Name[:1]) + s.Name[1:]
		for _, verb := range s.Verbs {
			switch verb {
			case "get":
				var resp any = m
				prod := produces
				if s.Model == "string" {
					resp, prod = "", []string{"text/plain", "application/json"}
				}
				add("GET", p, "read"+suffix, "read "+s.Name+" of the specified "+in.Kind, meta("get", g, v, k), nil,
					with(pName, pPretty), nil, prod, ok(resp))
			case "update":
				add("PUT", p, "replace"+suffix, "replace "+s.Name+" of the specified "+in.Kind, meta("put", g, v, k), m,
					with(pName, pBody, pPretty, pDryRun, pManager, pFieldVal), nil, produces, ok(m), response{201, "Created", m})
			case "patch":
				add("PATCH", p, "patch"+suffix, "partially update "+s.Name+" of the specified "+in.Kind, meta("patch", g, v, k), patchModel,
					with(pName, pBody, pPretty, pDryRun, pManager, pFieldVal, pForce), patchTypes, produces, ok(m), response{201, "Created", m})
			case "create":
				add("POST", p, "create"+suffix, "create "+s.Name+" of a "+in.Kind, meta("post", g, v, k), m,
					with(pName, pBody, pPretty, pDryRun, pManager, pFieldVal), nil, produces, ok(m), response{201, "Created", m}, response{202, "Accepted", m})
			}
		}
	}
	return c
}

// groupCamel is how Kubernetes' operation IDs name a group: Core, Apps, Coordination.
func groupCamel(group string) string {
	if group == "" {
		return "Core"
	}
	first := strings.Split(group, ".")[0]
	var b strings.Builder
	for _, part := range strings.FieldsFunc(first, func(r rune) bool { return r == '-' }) {
		b.WriteString(strings.ToUpper(part[:1]) + part[1:])
	}
	return b.String()
}
