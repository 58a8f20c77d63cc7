package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// crontabCRD is Kubernetes' documentation's example: a namespaced CronTab with two
// versions (v1 stored, v2 served with conversion None), a status and a scale
// subresource, printer columns, short names and a category.
const crontabCRD = `{
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "crontabs.stable.example.com"},
  "spec": {
    "group": "stable.example.com", "scope": "Namespaced",
    "names": {"plural": "crontabs", "singular": "crontab", "kind": "CronTab", "shortNames": ["ct"], "categories": ["all"]},
    "versions": [
      {"name": "v1", "served": true, "storage": true,
       "subresources": {"status": {}, "scale": {"specReplicasPath": ".spec.replicas", "statusReplicasPath": ".status.replicas", "labelSelectorPath": ".status.selector"}},
       "additionalPrinterColumns": [
         {"name": "Spec", "type": "string", "jsonPath": ".spec.cronSpec"},
         {"name": "Replicas", "type": "integer", "jsonPath": ".spec.replicas"}],
       "schema": {"openAPIV3Schema": {"type": "object", "properties": {
         "spec": {"type": "object", "properties": {
           "cronSpec": {"type": "string", "pattern": "^(\\d+|\\*)(/\\d+)?(\\s+(\\d+|\\*)(/\\d+)?){4}$"},
           "image": {"type": "string"},
           "replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1},
           "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
         "status": {"type": "object", "properties": {"replicas": {"type": "integer"}, "selector": {"type": "string"}}}}}}},
      {"name": "v2", "served": true, "storage": false,
       "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}
    ]
  }
}`

func crontab(name, cronSpec string) string {
	return fmt.Sprintf(`{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":%q,"labels":{"app":%q}},"spec":{"cronSpec":%q,"image":"busybox"}}`,
		name, name, cronSpec)
}

type crontabObject struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   metav1.ObjectMeta `json:"metadata"`
	Spec       map[string]any    `json:"spec"`
	Status     map[string]any    `json:"status"`
}

// TestRESTCustomResources: a CRD is validated by Kubernetes' rules, established by the
// API server, and its custom resources are served at their paths like every kind:
// CRUD, schema validation, pruning and defaulting, fieldValidation, the status
// subresource and generation, patches (strategic merge refused), Table columns,
// discovery with short names and categories, a second version, watch; deleting the
// CRD deletes its resources and stops serving them.
func TestRESTCustomResources(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	crds := "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"

	// Kubernetes' validation of the CRD itself, in its words.
	bad := strings.Replace(crontabCRD, `"served": true, "storage": false`, `"served": true, "storage": true`, 1)
	st := rc.want(rc.do("POST", crds, "application/json", "", bad), 422, "two storage versions").status()
	if !strings.Contains(st.Message, "spec.versions: Invalid value:") || !strings.Contains(st.Message, "must have exactly one version marked as storage version") {
		t.Errorf("two storage versions = %s", st.Message)
	}
	bad = strings.Replace(crontabCRD, `"name": "crontabs.stable.example.com"`, `"name": "cron.stable.example.com"`, 1)
	st = rc.want(rc.do("POST", crds, "application/json", "", bad), 422, "name").status()
	if !strings.Contains(st.Message, `metadata.name: Invalid value: "cron.stable.example.com": must be spec.names.plural+"."+spec.group`) {
		t.Errorf("wrong name = %s", st.Message)
	}
	bad = strings.Replace(crontabCRD, `"replicas": {"type": "integer", "minimum": 1, "maximum": 10, "default": 1}`, `"replicas": {"minimum": 1}`, 1)
	st = rc.want(rc.do("POST", crds, "application/json", "", bad), 422, "not structural").status()
	if !strings.Contains(st.Message, "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[replicas].type: Required value: must not be empty for specified object fields") {
		t.Errorf("not structural = %s", st.Message)
	}
	bad = strings.Replace(crontabCRD, `"image": {"type": "string"}`, `"image": {"type": "string", "x-kubernetes-validations": [{"rule": "self.size() > 0 && self.tag != ''"}]}`, 1)
	st = rc.want(rc.do("POST", crds, "application/json", "", bad), 422, "CEL").status()
	if !strings.Contains(st.Message, "spec.versions[0].schema.openAPIV3Schema.properties[spec].properties[image].x-kubernetes-validations[0].rule: Invalid value: ") ||
		!strings.Contains(st.Message, "compilation failed: ERROR: <input>:1:24: type 'string' does not support field selection") {
		t.Errorf("CEL = %s", st.Message)
	}

	created := decodeJSON[apiextensionsv1.CustomResourceDefinition](t, rc.want(rc.do("POST", crds, "application/json", "", crontabCRD), 201, "create CRD").body)
	if len(created.Finalizers) != 1 || created.Finalizers[0] != "customresourcecleanup.apiextensions.k8s.io" {
		t.Errorf("finalizers = %v", created.Finalizers)
	}
	var crd apiextensionsv1.CustomResourceDefinition
	waitfor.Condition(t, 30*time.Second, "the CRD established", func() (bool, string) {
		crd = decodeJSON[apiextensionsv1.CustomResourceDefinition](t, rc.want(rc.do("GET", crds+"/crontabs.stable.example.com", "", "", nil), 200, "get CRD").body)
		return established(&crd), fmt.Sprintf("conditions %+v", crd.Status.Conditions)
	})
	if crd.Status.AcceptedNames.Kind != "CronTab" || crd.Status.AcceptedNames.ListKind != "CronTabList" || len(crd.Status.StoredVersions) != 1 ||
		crd.Status.StoredVersions[0] != "v1" || !hasCRDCondition(&crd, apiextensionsv1.NamesAccepted, "NoConflicts") {
		t.Errorf("status = %+v", crd.Status)
	}

	// Discovery: the group, its resources with short names and categories.
	dv := decodeJSON[metav1.APIResourceList](t, rc.want(rc.do("GET", "/apis/stable.example.com/v1", "", "", nil), 200, "discovery").body)
	found := false
	for _, r := range dv.APIResources {
		if r.Name == "crontabs" {
			found = r.Namespaced && r.Kind == "CronTab" && strings.Join(r.ShortNames, ",") == "ct" && strings.Join(r.Categories, ",") == "all"
		}
	}
	if !found {
		t.Errorf("discovery = %+v", dv.APIResources)
	}
	agg := decodeJSON[apidiscoveryv2.APIGroupDiscoveryList](t, rc.want(rc.do("GET", "/apis", "",
		"application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList", nil), 200, "aggregated discovery").body)
	found = false
	for _, g := range agg.Items {
		if g.Name == "stable.example.com" && len(g.Versions) == 2 {
			for _, r := range g.Versions[0].Resources {
				found = found || r.Resource == "crontabs" && strings.Join(r.ShortNames, ",") == "ct"
			}
		}
	}
	if !found {
		t.Errorf("aggregated discovery has no crontabs in two versions")
	}

	base := "/apis/stable.example.com/v1/namespaces/default/crontabs"
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events := rc.watch(ctx, base+"?watch=1&allowWatchBookmarks=true")

	// Create: defaulted (replicas), pruned (an unknown field), with generation 1; a
	// status sent with a create is dropped (the status subresource is on).
	body := `{"apiVersion":"stable.example.com/v1","kind":"CronTab","metadata":{"name":"a","labels":{"app":"a"}},"spec":{"cronSpec":"* * * * */5","image":"busybox","color":"red","extra":{"kept":true}},"status":{"replicas":3}}`
	r := rc.want(rc.do("POST", base, "application/json", "", body), 201, "create CR")
	if w := r.header.Get("Warning"); w != `299 - "unknown field \"spec.color\""` {
		t.Errorf("warning = %q", w)
	}
	a := decodeJSON[crontabObject](t, r.body)
	if a.Kind != "CronTab" || a.APIVersion != "stable.example.com/v1" || a.Metadata.Generation != 1 || a.Metadata.UID == "" ||
		a.Spec["replicas"] != float64(1) || a.Spec["color"] != nil || a.Spec["extra"].(map[string]any)["kept"] != true || a.Status != nil {
		t.Errorf("created = %+v", a)
	}
	st = rc.want(rc.do("POST", base+"?fieldValidation=Strict", "application/json", "", strings.Replace(body, `"name":"a"`, `"name":"s"`, 1)), 400, "strict").status()
	if st.Message != `strict decoding error: unknown field "spec.color"` {
		t.Errorf("strict = %q", st.Message)
	}
	// Invalid against the schema: 422, the field's path.
	st = rc.want(rc.do("POST", base, "application/json", "", strings.Replace(crontab("bad", "* * * * *"), `"image":"busybox"`, `"image":"busybox","replicas":20`, 1)), 422, "invalid CR").status()
	if st.Reason != metav1.StatusReasonInvalid || len(st.Details.Causes) != 1 || st.Details.Causes[0].Field != "spec.replicas" ||
		!strings.Contains(st.Message, `CronTab.stable.example.com "bad" is invalid: spec.replicas: Invalid value: 20: spec.replicas in body should be less than or equal to 10`) {
		t.Errorf("invalid = %+v", st)
	}
	rc.want(rc.do("POST", base, "application/json", "", crontab("b", "1 * * * *")), 201, "create b")

	// Get, list with selectors and pages, by the short name's kind.
	got := decodeJSON[crontabObject](t, rc.want(rc.do("GET", base+"/a", "", "", nil), 200, "get").body)
	if got.Metadata.ResourceVersion != a.Metadata.ResourceVersion {
		t.Errorf("get = %+v", got.Metadata)
	}
	type list struct {
		Kind     string
		Metadata metav1.ListMeta
		Items    []crontabObject
	}
	l := decodeJSON[list](t, rc.want(rc.do("GET", base+"?labelSelector=app%3Db", "", "", nil), 200, "list by label").body)
	if l.Kind != "CronTabList" || len(l.Items) != 1 || l.Items[0].Metadata.Name != "b" {
		t.Errorf("list by label = %+v", l)
	}
	l = decodeJSON[list](t, rc.want(rc.do("GET", "/apis/stable.example.com/v1/crontabs?fieldSelector=metadata.name%3Da", "", "", nil), 200, "list by field").body)
	if len(l.Items) != 1 || l.Items[0].Metadata.Name != "a" {
		t.Errorf("list by field = %+v", l)
	}
	l = decodeJSON[list](t, rc.want(rc.do("GET", base+"?limit=1", "", "", nil), 200, "page").body)
	if len(l.Items) != 1 || l.Metadata.Continue == "" {
		t.Errorf("first page = %+v", l)
	}
	l = decodeJSON[list](t, rc.want(rc.do("GET", base+"?limit=1&continue="+l.Metadata.Continue, "", "", nil), 200, "page 2").body)
	if len(l.Items) != 1 || l.Items[0].Metadata.Name != "b" {
		t.Errorf("second page = %+v", l)
	}

	// The second version: the same objects, their apiVersion rewritten.
	v2 := decodeJSON[crontabObject](t, rc.want(rc.do("GET", "/apis/stable.example.com/v2/namespaces/default/crontabs/a", "", "", nil), 200, "get v2").body)
	if v2.APIVersion != "stable.example.com/v2" || v2.Spec["cronSpec"] != "* * * * */5" {
		t.Errorf("v2 = %+v", v2)
	}

	// Table: the CRD's printer columns.
	tb := decodeJSON[metav1.Table](t, rc.want(rc.do("GET", base, "", "application/json;as=Table;g=meta.k8s.io;v=v1", nil), 200, "table").body)
	var cols []string
	for _, c := range tb.ColumnDefinitions {
		cols = append(cols, c.Name)
	}
	if strings.Join(cols, ",") != "Name,Spec,Replicas" || len(tb.Rows) != 2 || fmt.Sprint(tb.Rows[0].Cells) != "[a * * * * */5 1]" {
		t.Errorf("table = %v %+v", cols, tb.Rows)
	}

	// Status: through its subresource, which does not bump generation; a spec change does.
	a.Status = map[string]any{"replicas": 2}
	a.Metadata.ResourceVersion = ""
	s := decodeJSON[crontabObject](t, rc.want(rc.do("PUT", base+"/a/status", "application/json", "", a), 200, "status").body)
	if s.Status["replicas"] != float64(2) || s.Metadata.Generation != 1 {
		t.Errorf("status = %+v", s)
	}
	// Patches: merge and JSON patch; strategic merge refused as Kubernetes does.
	p := decodeJSON[crontabObject](t, rc.want(rc.do("PATCH", base+"/a", "application/merge-patch+json", "", `{"spec":{"image":"nginx"},"status":{"replicas":9}}`), 200, "merge patch").body)
	if p.Spec["image"] != "nginx" || p.Metadata.Generation != 2 || p.Status["replicas"] != float64(2) {
		t.Errorf("merge patched = %+v", p)
	}
	p = decodeJSON[crontabObject](t, rc.want(rc.do("PATCH", base+"/a", "application/json-patch+json", "", `[{"op":"replace","path":"/spec/replicas","value":3}]`), 200, "json patch").body)
	if p.Spec["replicas"] != float64(3) || p.Metadata.Generation != 3 {
		t.Errorf("json patched = %+v", p)
	}
	rc.want(rc.do("PATCH", base+"/a", "application/strategic-merge-patch+json", "", `{"spec":{"image":"x"}}`), 415, "strategic merge")
	// Scale: spec.replicas and status.replicas where the CRD says.
	sc := decodeJSON[autoscalingv1.Scale](t, rc.want(rc.do("GET", base+"/a/scale", "", "", nil), 200, "get scale").body)
	if sc.Spec.Replicas != 3 || sc.Status.Replicas != 2 || sc.Kind != "Scale" {
		t.Errorf("scale = %+v", sc)
	}
	sc = decodeJSON[autoscalingv1.Scale](t, rc.want(rc.do("PATCH", base+"/a/scale", "application/merge-patch+json", "", `{"spec":{"replicas":5}}`), 200, "patch scale").body)
	p = decodeJSON[crontabObject](t, rc.want(rc.do("GET", base+"/a", "", "", nil), 200, "get scaled").body)
	if sc.Spec.Replicas != 5 || p.Spec["replicas"] != float64(5) || p.Metadata.Generation != 4 {
		t.Errorf("scaled = %+v, %+v", sc.Spec, p)
	}
	st = rc.want(rc.do("PATCH", base+"/a", "application/merge-patch+json", "", `{"spec":{"replicas":0}}`), 422, "invalid patch").status()
	if len(st.Details.Causes) != 1 || st.Details.Causes[0].Field != "spec.replicas" {
		t.Errorf("invalid patch = %+v", st)
	}

	// The watch saw the creates and the changes.
	var seen []string
	for len(seen) < 6 {
		select {
		case ev := <-events:
			if ev.Type != "BOOKMARK" {
				seen = append(seen, ev.Type+" "+ev.Object.Name+" "+ev.Kind)
			}
		case <-ctx.Done():
			t.Fatalf("watch: saw only %v", seen)
		}
	}
	if strings.Join(seen, ",") != "ADDED a CronTab,ADDED b CronTab,MODIFIED a CronTab,MODIFIED a CronTab,MODIFIED a CronTab,MODIFIED a CronTab" {
		t.Errorf("watch = %v", seen)
	}

	// Custom resources have no protobuf encoding: a client that also takes JSON (as
	// client-go's "application/vnd.kubernetes.protobuf, */*") gets JSON, one that takes
	// only protobuf 406, and a protobuf body 415, as from Kubernetes.
	const pbOrAny = "application/vnd.kubernetes.protobuf, */*"
	for _, path := range []string{base + "/a", base, base + "/a/status"} {
		r := rc.want(rc.do("GET", path, "", pbOrAny, nil), 200, "GET "+path+" accepting protobuf or anything")
		if ct := r.header.Get("Content-Type"); ct != "application/json" || !json.Valid(r.body) {
			t.Errorf("GET %s accepting protobuf or anything: Content-Type %q, %q", path, ct, r.body)
		}
		st := rc.want(rc.do("GET", path, "", "application/vnd.kubernetes.protobuf", nil), 406, "GET "+path+" accepting protobuf only").status()
		if st.Reason != metav1.StatusReasonNotAcceptable {
			t.Errorf("GET %s accepting protobuf only: %+v", path, st)
		}
	}
	if r := rc.want(rc.do("POST", base, "application/json", pbOrAny, crontab("pb", "* * * * *")), 201, "create accepting protobuf or anything"); r.header.Get("Content-Type") != "application/json" {
		t.Errorf("create accepting protobuf or anything: Content-Type %q", r.header.Get("Content-Type"))
	}
	st = rc.want(rc.do("POST", base, "application/vnd.kubernetes.protobuf", "", []byte("k8s\x00")), 415, "create in protobuf").status()
	if st.Reason != metav1.StatusReasonUnsupportedMediaType || !strings.Contains(st.Message, "application/json") || strings.Contains(st.Message, "protobuf") {
		t.Errorf("create in protobuf: %+v", st)
	}

	// Delete one, then the CRD: its resources go, and its paths with them.
	rc.want(rc.do("DELETE", base+"/b", "", "", nil), 200, "delete b")
	rc.want(rc.do("GET", base+"/b", "", "", nil), 404, "b deleted")
	rc.want(rc.do("DELETE", crds+"/crontabs.stable.example.com", "", "", nil), 200, "delete CRD")
	waitfor.Condition(t, 30*time.Second, "the CRD gone", func() (bool, string) {
		r := rc.do("GET", crds+"/crontabs.stable.example.com", "", "", nil)
		return r.code == 404, fmt.Sprintf("HTTP %d %s", r.code, r.body)
	})
	rc.want(rc.do("GET", base, "", "", nil), 404, "not served")
	// Created again, it has no resources left from before.
	rc.want(rc.do("POST", crds, "application/json", "", crontabCRD), 201, "create CRD again")
	waitfor.Condition(t, 30*time.Second, "crontabs served again", func() (bool, string) {
		r := rc.do("GET", base, "", "", nil)
		return r.code == 200, fmt.Sprintf("HTTP %d", r.code)
	})
	if l := decodeJSON[list](t, rc.do("GET", base, "", "", nil).body); len(l.Items) != 0 {
		t.Errorf("after the CRD's deletion, left: %+v", l.Items)
	}
}

func established(crd *apiextensionsv1.CustomResourceDefinition) bool {
	return hasCRDCondition(crd, apiextensionsv1.Established, "")
}

func hasCRDCondition(crd *apiextensionsv1.CustomResourceDefinition, t apiextensionsv1.CustomResourceDefinitionConditionType, reason string) bool {
	for _, c := range crd.Status.Conditions {
		if c.Type == t && c.Status == apiextensionsv1.ConditionTrue && (reason == "" || c.Reason == reason) {
			return true
		}
	}
	return false
}

var _ = json.Marshal

// gadgetCRD has CEL rules: one on the spec (with a messageExpression), one transition
// rule (oldSelf), and a list of ports keyed by name (a map list for apply).
const gadgetCRD = `{
  "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
  "metadata": {"name": "gadgets.example.com"},
  "spec": {
    "group": "example.com", "scope": "Namespaced",
    "names": {"plural": "gadgets", "singular": "gadget", "kind": "Gadget"},
    "versions": [{"name": "v1", "served": true, "storage": true, "subresources": {"status": {}},
      "schema": {"openAPIV3Schema": {"type": "object", "properties": {
        "spec": {"type": "object",
          "x-kubernetes-validations": [
            {"rule": "self.replicas <= self.maxReplicas", "messageExpression": "'replicas must be at most maxReplicas in ' + self.mode + ' mode'"},
            {"rule": "self.mode == oldSelf.mode", "message": "mode is immutable"}],
          "properties": {
            "replicas": {"type": "integer", "minimum": 0, "maximum": 100},
            "maxReplicas": {"type": "integer", "minimum": 0, "maximum": 100, "default": 10},
            "mode": {"type": "string", "maxLength": 20, "default": "fast"},
            "ports": {"type": "array", "x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"], "maxItems": 10,
              "items": {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 20}, "port": {"type": "integer"}}}}}},
        "status": {"type": "object", "properties": {"ready": {"type": "boolean"}}}}}}}]
  }
}`

// TestRESTCustomResourceSchemas: an established CRD's schema is in the OpenAPI
// documents; its custom resources take server-side apply (managedFields, conflicts
// 409, force, merges by the schema's list keys) but not strategic merge patches; its
// CEL rules refuse what breaks them, with their messages.
func TestRESTCustomResourceSchemas(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	crds := "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
	rc.want(rc.do("POST", crds, "application/json", "", gadgetCRD), 201, "create CRD")
	base := "/apis/example.com/v1/namespaces/default/gadgets"
	waitfor.Condition(t, 30*time.Second, "gadgets served", func() (bool, string) {
		r := rc.do("GET", base, "", "", nil)
		return r.code == 200, string(r.body)
	})

	// OpenAPI v3: the group-version's document, with the kind's schema.
	waitfor.Condition(t, 30*time.Second, "the CRD's OpenAPI v3 document", func() (bool, string) {
		r := rc.do("GET", "/openapi/v3/apis/example.com/v1", "", "application/json", nil)
		return r.code == 200 && strings.Contains(string(r.body), `"com.example.v1.Gadget"`) &&
			strings.Contains(string(r.body), `"x-kubernetes-group-version-kind"`), fmt.Sprintf("%d %.300s", r.code, r.body)
	})
	if r := rc.want(rc.do("GET", "/openapi/v2", "", "application/json", nil), 200, "v2"); !strings.Contains(string(r.body), `"com.example.v1.Gadget"`) {
		t.Error("no com.example.v1.Gadget in /openapi/v2")
	}

	// Server-side apply creates, records alice's fields, merges ports by name.
	const applyType = "application/apply-patch+yaml"
	gadget := func(spec string) string {
		return "apiVersion: example.com/v1\nkind: Gadget\nmetadata:\n  name: g\nspec:\n" + spec
	}
	owners := func(obj crontabObject) map[string]string {
		out := map[string]string{}
		for _, e := range obj.Metadata.ManagedFields {
			out[e.Manager] = string(e.Operation) + " " + string(e.FieldsV1.Raw)
		}
		return out
	}
	got := decodeJSON[crontabObject](t, rc.want(rc.do("PATCH", base+"/g?fieldManager=alice", applyType, "",
		gadget("  replicas: 2\n  ports:\n  - {name: http, port: 80}\n")), 201, "apply creates").body)
	if got.Spec["replicas"] != float64(2) || got.Spec["mode"] != "fast" || !strings.Contains(owners(got)["alice"], `"f:replicas":{}`) ||
		!strings.Contains(owners(got)["alice"], `"k:{\"name\":\"http\"}"`) {
		t.Fatalf("created by apply: %+v %v", got.Spec, owners(got))
	}
	wantApplyConflict(t, rc.want(rc.do("PATCH", base+"/g?fieldManager=bob", applyType, "", gadget("  replicas: 3\n")), 409, "bob's conflicting apply").status(), ".spec.replicas", "alice")
	got = decodeJSON[crontabObject](t, rc.want(rc.do("PATCH", base+"/g?fieldManager=bob", applyType, "",
		gadget("  ports:\n  - {name: https, port: 443}\n")), 200, "bob adds a port").body)
	if ports, _ := got.Spec["ports"].([]any); len(ports) != 2 {
		t.Errorf("ports merged by name: %v", got.Spec["ports"])
	}
	got = decodeJSON[crontabObject](t, rc.want(rc.do("PATCH", base+"/g?fieldManager=bob&force=true", applyType, "", gadget("  replicas: 3\n")), 200, "bob forces").body)
	if got.Spec["replicas"] != float64(3) || strings.Contains(owners(got)["alice"], "f:replicas") || !strings.Contains(owners(got)["bob"], "f:replicas") {
		t.Fatalf("after bob's forced apply: %+v %v", got.Spec, owners(got))
	}
	// A merge patch is tracked (an Update), as on the built-in kinds.
	got = decodeJSON[crontabObject](t, rc.want(rc.do("PATCH", base+"/g?fieldManager=carol", "application/merge-patch+json", "", `{"spec":{"maxReplicas":20}}`), 200, "carol's patch").body)
	if !strings.Contains(owners(got)["carol"], `Update {"f:spec":{"f:maxReplicas":{}}}`) {
		t.Errorf("carol's update untracked: %v", owners(got))
	}
	// An unknown field in an apply is an error naming it.
	st := rc.want(rc.do("PATCH", base+"/g?fieldManager=alice", applyType, "", gadget("  colour: red\n")), 422, "an unknown field").status()
	if !strings.Contains(st.Message, ".spec.colour: field not declared in schema") {
		t.Errorf("unknown field = %s", st.Message)
	}
	// Strategic merge patch stays refused, with Kubernetes' words.
	st = rc.want(rc.do("PATCH", base+"/g", "application/strategic-merge-patch+json", "", `{"spec":{"replicas":1}}`), 415, "strategic merge").status()
	if st.Message != "the body of the request was in an unknown format - accepted media types include: application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml" {
		t.Errorf("strategic merge = %s", st.Message)
	}

	// CEL: the rules refuse, with their messages, on apply, update and create.
	st = rc.want(rc.do("PATCH", base+"/g?fieldManager=bob", applyType, "", gadget("  replicas: 30\n")), 422, "replicas over max").status()
	if !strings.Contains(st.Message, `Gadget.example.com "g" is invalid: spec: Invalid value: replicas must be at most maxReplicas in fast mode`) {
		t.Errorf("rule = %s", st.Message)
	}
	st = rc.want(rc.do("PATCH", base+"/g?fieldManager=dave", "application/merge-patch+json", "", `{"spec":{"mode":"slow"}}`), 422, "mode changed").status()
	if !strings.Contains(st.Message, "spec: Invalid value: mode is immutable") {
		t.Errorf("transition rule = %s", st.Message)
	}
	st = rc.want(rc.do("POST", base, "application/json", "", `{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"h"},"spec":{"replicas":11}}`), 422, "create over max").status()
	if !strings.Contains(st.Message, "spec: Invalid value: replicas must be at most maxReplicas in fast mode") {
		t.Errorf("rule on create = %s", st.Message)
	}
	rc.want(rc.do("POST", base, "application/json", "", `{"apiVersion":"example.com/v1","kind":"Gadget","metadata":{"name":"h"},"spec":{"replicas":1,"mode":"slow"}}`), 201, "a valid create")
}

// TestRESTCRDStorageVersionChange: a CRD's storage version moved to another version is
// added to status.storedVersions with the update, as Kubernetes' strategy adds it (its
// validation wants the storage version there: AdmissionWebhook's "should mutate custom
// resource with different stored version" patches v2 in as storage).
func TestRESTCRDStorageVersionChange(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	crds := "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
	created := decodeJSON[apiextensionsv1.CustomResourceDefinition](t, rc.want(rc.do("POST", crds, "application/json", "", crontabCRD), 201, "create CRD").body)
	if got := created.Status.StoredVersions; len(got) != 1 || got[0] != "v1" {
		t.Errorf("created: storedVersions %v, want [v1]", got)
	}
	patch := `{"spec": {"versions": [
	  {"name": "v1", "served": true, "storage": false, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}},
	  {"name": "v2", "served": true, "storage": true, "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}`
	patched := decodeJSON[apiextensionsv1.CustomResourceDefinition](t, rc.want(rc.do("PATCH", crds+"/crontabs.stable.example.com",
		"application/merge-patch+json", "", patch), 200, "v2 as the storage version").body)
	if got := patched.Status.StoredVersions; len(got) != 2 || got[0] != "v1" || got[1] != "v2" {
		t.Errorf("patched: storedVersions %v, want [v1 v2]", got)
	}
}

// TestRESTCustomResourceDefaultedOnRead: a default added to a CRD's schema after a
// custom resource was stored is set when it is read, as Kubernetes reads custom
// resources ("custom resource defaulting for requests and from storage works").
func TestRESTCustomResourceDefaultedOnRead(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	crds := "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
	rc.want(rc.do("POST", crds, "application/json", "", crontabCRD), 201, "create CRD")
	base := "/apis/stable.example.com/v1/namespaces/default/crontabs"
	waitfor.Condition(t, 30*time.Second, "crontabs served", func() (bool, string) {
		r := rc.do("POST", base, "application/json", "", crontab("early", "* * * * */5"))
		return r.code == 201, string(r.body)
	})
	image := func() any {
		return decodeJSON[crontabObject](t, rc.want(rc.do("GET", base+"/early", "", "", nil), 200, "get").body).Spec["image"]
	}
	patch := `[{"op": "remove", "path": "/spec/image"}]`
	rc.want(rc.do("PATCH", base+"/early", "application/json-patch+json", "", patch), 200, "remove spec.image")
	if got := image(); got != nil {
		t.Fatalf("image %v after its removal", got)
	}
	rc.want(rc.do("PATCH", crds+"/crontabs.stable.example.com", "application/json-patch+json", "",
		`[{"op": "add", "path": "/spec/versions/0/schema/openAPIV3Schema/properties/spec/properties/image/default", "value": "nginx"}]`), 200, "a default for image")
	waitfor.Condition(t, 30*time.Second, "the stored crontab read with the new default", func() (bool, string) {
		got := image()
		return got == "nginx", fmt.Sprint(got)
	})
}
