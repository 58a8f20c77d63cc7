package apiserver_test

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/crdconversion"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestRESTSelectableFieldsConverted: with a conversion webhook, objects read in another
// version than their storage version keep that version's fields; a field selector on a
// version's selectableFields selects the objects as converted to that version (v2's
// host, of objects stored in v1 with hostPort), as Kubernetes evaluates it; in a list, a
// page of it, and a watch, where an object entering the selection is ADDED and one
// leaving it DELETED.
func TestRESTSelectableFieldsConverted(t *testing.T) {
	rc, v1, v2 := serveHostPortWebhook(t)
	put := func(method, name, hostPort string) {
		t.Helper()
		path, code := v1, 201
		if method == "PUT" {
			path, code = v1+"/"+name, 200
		}
		body := fmt.Sprintf(`{"apiVersion":"stable.example.com/v1","kind":"E2eTest","metadata":{"name":%q},"hostPort":%q}`, name, hostPort)
		if method == "PUT" {
			cur := decodeJSON[map[string]any](t, rc.want(rc.do("GET", v1+"/"+name, "", "", nil), 200, "get "+name).body)
			rv := cur["metadata"].(map[string]any)["resourceVersion"]
			body = fmt.Sprintf(`{"apiVersion":"stable.example.com/v1","kind":"E2eTest","metadata":{"name":%q,"resourceVersion":%q},"hostPort":%q}`, name, rv, hostPort)
		}
		rc.want(rc.do(method, path, "application/json", "", body), code, method+" "+name)
	}
	put("POST", "a", "localhost:8080")
	put("POST", "b", "example.com:443")
	put("POST", "c", "localhost:9090")

	names := func(path string) []string {
		t.Helper()
		l := decodeJSON[struct {
			Metadata metav1.ListMeta `json:"metadata"`
			Items    []struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			} `json:"items"`
		}](t, rc.want(rc.do("GET", path, "", "", nil), 200, "list "+path).body)
		var out []string
		for _, it := range l.Items {
			out = append(out, it.Metadata.Name)
		}
		if l.Metadata.Continue != "" {
			out = append(out, "continue:"+l.Metadata.Continue)
		}
		return out
	}
	// Read in v2, pruned and defaulted by v2's schema (not v1's, which has no host).
	if body := string(rc.want(rc.do("GET", v2, "", "", nil), 200, "list in v2").body); strings.Count(body, `"host":"localhost"`) != 2 {
		t.Errorf("list in v2 = %s, want a and c with host localhost", body)
	}
	sel := func(s string) string { return "?fieldSelector=" + url.QueryEscape(s) }
	for _, tc := range []struct{ path, want string }{
		{v2 + sel("host=localhost"), "a c"},
		{v2 + sel("host!=localhost"), "b"},
		{v2 + sel("host=example.com,metadata.name=b"), "b"},
		{v1 + sel("hostPort=example.com:443"), "b"},
	} {
		if got := strings.Join(names(tc.path), " "); got != tc.want {
			t.Errorf("list %s = %q, want %q", tc.path, got, tc.want)
		}
	}
	// Pages: the store's pages, filtered once converted (a page may be short); together
	// the selection.
	var all []string
	path := v2 + sel("host=localhost") + "&limit=1"
	for range 5 {
		got := names(path)
		if n := len(got); n > 0 && strings.HasPrefix(got[n-1], "continue:") {
			all = append(all, got[:n-1]...)
			path = v2 + sel("host=localhost") + "&limit=1&continue=" + url.QueryEscape(strings.TrimPrefix(got[n-1], "continue:"))
			continue
		}
		all = append(all, got...)
		break
	}
	if !slices.Equal(all, []string{"a", "c"}) {
		t.Errorf("pages of host=localhost = %v, want [a c]", all)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events := rc.watch(ctx, v2+sel("host=example.com")+"&watch=1")
	var seen []string
	next := func() string {
		t.Helper()
		select {
		case ev := <-events:
			s := ev.Type + " " + ev.Object.Name
			seen = append(seen, s)
			return s
		case <-ctx.Done():
			t.Fatalf("watch: saw only %v", seen)
		}
		return ""
	}
	if got := next(); got != "ADDED b" {
		t.Fatalf("initial event %q, want ADDED b", got)
	}
	put("PUT", "b", "localhost:443")    // leaves the selection
	put("PUT", "c", "localhost:1")      // outside it before and after: not seen
	put("PUT", "a", "example.com:8080") // enters it
	put("PUT", "a", "example.com:8081") // stays in it
	for _, want := range []string{"DELETED b", "ADDED a", "MODIFIED a"} {
		if got := next(); got != want {
			t.Fatalf("watch events %v, want DELETED b, ADDED a, MODIFIED a", seen)
		}
	}
}

// serveHostPortWebhook serves the conformance test's conversion webhook and a CRD it
// converts, as the conformance tests define it: v1 stored (hostPort), v2 (host and
// port), each selecting on its fields, no unknown field kept (pruned); it returns a
// REST client and the two versions' collections in namespace default.
func serveHostPortWebhook(t *testing.T) (rc *restClient, v1, v2 string) {
	cs := crdconversion.Serve(t, map[string]crdconversion.Handler{
		"/crdconvert": func(req *apiextensionsv1.ConversionRequest, objs []map[string]any) *apiextensionsv1.ConversionResponse {
			for _, o := range objs {
				crdconversion.ConvertHostPort(o, req.DesiredAPIVersion)
			}
			return nil
		},
	})
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc = newREST(t, c.Addr(0), true)
	crds := "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
	hook := cs.Server.URL + "/crdconvert"
	schema := func(fields ...string) *apiextensionsv1.CustomResourceValidation {
		props := map[string]apiextensionsv1.JSONSchemaProps{}
		for _, f := range fields {
			props[f] = apiextensionsv1.JSONSchemaProps{Type: "string"}
		}
		return &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", Properties: props}}
	}
	crd := &apiextensionsv1.CustomResourceDefinition{TypeMeta: metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-tests.stable.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "stable.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "e2e-tests", Singular: "e2e-test", Kind: "E2eTest", ListKind: "E2eTestList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{
				{Name: "v1", Served: true, Storage: true, Schema: schema("hostPort"), SelectableFields: []apiextensionsv1.SelectableField{{JSONPath: ".hostPort"}}},
				{Name: "v2", Served: true, Schema: schema("host", "port"), SelectableFields: []apiextensionsv1.SelectableField{{JSONPath: ".host"}, {JSONPath: ".port"}}}},
			Conversion: &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{ConversionReviewVersions: []string{"v1"},
					ClientConfig: &apiextensionsv1.WebhookClientConfig{URL: &hook, CABundle: cs.CABundle}}}}}
	rc.want(rc.do("POST", crds, "application/json", "", crd), 201, "create CRD")
	v1 = "/apis/stable.example.com/v1/namespaces/default/e2e-tests"
	v2 = "/apis/stable.example.com/v2/namespaces/default/e2e-tests"
	waitfor.Condition(t, 30*time.Second, "e2e-tests served", func() (bool, string) {
		r := rc.do("GET", v2, "", "", nil)
		return r.code == 200, fmt.Sprintf("HTTP %d %s", r.code, r.body)
	})
	return rc, v1, v2
}

// TestRESTApplyConvertedByWebhook: server-side apply's field manager converts objects
// between versions through the CRD's conversion webhook, as Kubernetes' does: alice's
// hostPort, applied in v1, is v2's host and port, so bob's apply of another host in v2
// conflicts with her (converting by apiVersion alone, her v1 fields named no v2 field).
func TestRESTApplyConvertedByWebhook(t *testing.T) {
	rc, v1, v2 := serveHostPortWebhook(t)
	const applyType = "application/apply-patch+yaml"
	rc.want(rc.do("PATCH", v1+"/a?fieldManager=alice", applyType, "",
		"apiVersion: stable.example.com/v1\nkind: E2eTest\nmetadata:\n  name: a\nhostPort: localhost:8080\n"), 201, "alice applies in v1")
	st := rc.want(rc.do("PATCH", v2+"/a?fieldManager=bob", applyType, "",
		"apiVersion: stable.example.com/v2\nkind: E2eTest\nmetadata:\n  name: a\nhost: example.com\n"), 409, "bob applies another host in v2").status()
	// The conflict is named in alice's version, as structured-merge-diff finds it.
	wantApplyConflict(t, st, ".hostPort", "alice")
	got := decodeJSON[map[string]any](t, rc.want(rc.do("PATCH", v2+"/a?fieldManager=bob&force=true", applyType, "",
		"apiVersion: stable.example.com/v2\nkind: E2eTest\nmetadata:\n  name: a\nhost: example.com\n"), 200, "bob forces").body)
	if got["host"] != "example.com" || got["port"] != "8080" {
		t.Errorf("after bob's forced apply: %v", got)
	}
}

// TestRESTSelectableFieldsWrittenInV2: what Kubernetes' conformance test
// "CustomResourceFieldSelectors ... MUST list and watch custom resources matching the
// field selector" lists: objects written in v2 (host and port) are stored in v1
// (hostPort) through the webhook, and a list in v2 by host, or host and port, or in v1
// by hostPort, selects them by their fields in that version; after a deletion by field
// selector and an update out of the selection, none is left. Its lists in v2 found
// none while a v2 read of a v1 object was pruned by v1's schema (the second and fourth
// re-runs of issue 22).
func TestRESTSelectableFieldsWrittenInV2(t *testing.T) {
	rc, v1, v2 := serveHostPortWebhook(t)
	for _, cr := range []struct{ name, fields string }{
		{"cr0", `"host":"host1","port":"80"`}, {"cr1", `"host":"host1","port":"8080"`}, {"cr2", `"host":"host2"`},
	} {
		body := fmt.Sprintf(`{"apiVersion":"stable.example.com/v2","kind":"E2eTest","metadata":{"name":%q},%s}`, cr.name, cr.fields)
		rc.want(rc.do("POST", v2, "application/json", "", body), 201, "create "+cr.name+" in v2")
	}
	if got := decodeJSON[map[string]any](t, rc.want(rc.do("GET", v1+"/cr0", "", "", nil), 200, "get cr0 in v1").body); got["hostPort"] != "host1:80" || got["host"] != nil {
		t.Errorf("cr0 in v1 = %v, want hostPort host1:80", got)
	}
	names := func(path, sel string) string {
		t.Helper()
		l := decodeJSON[struct {
			Items []struct {
				Metadata metav1.ObjectMeta `json:"metadata"`
			} `json:"items"`
		}](t, rc.want(rc.do("GET", path+"?fieldSelector="+url.QueryEscape(sel), "", "", nil), 200, "list "+sel).body)
		var out []string
		for _, it := range l.Items {
			out = append(out, it.Metadata.Name)
		}
		return strings.Join(out, " ")
	}
	for _, tc := range []struct{ path, sel, want string }{
		{v2, "host=host1", "cr0 cr1"},
		{v2, "host=host1,port=80", "cr0"},
		{v1, "hostPort=host1:80", "cr0"},
		{v1, "hostPort=host1:8080", "cr1"},
	} {
		if got := names(tc.path, tc.sel); got != tc.want {
			t.Errorf("list %s by %s = %q, want %q", tc.path, tc.sel, got, tc.want)
		}
	}
	rc.want(rc.do("DELETE", v2+"?fieldSelector="+url.QueryEscape("host=host1,port=80"), "", "", nil), 200, "delete collection by host and port")
	cur := decodeJSON[map[string]any](t, rc.want(rc.do("GET", v2+"/cr1", "", "", nil), 200, "get cr1 in v2").body)
	cur["host"] = "host2"
	rc.want(rc.do("PUT", v2+"/cr1", "application/json", "", cur), 200, "update cr1 in v2")
	for _, sel := range []string{"host=host1", "host=host1,port=80"} {
		if got := names(v2, sel); got != "" {
			t.Errorf("list in v2 by %s after the deletion and update = %q, want none", sel, got)
		}
	}
	if got := names(v2, "host=host2"); got != "cr1 cr2" {
		t.Errorf("list in v2 by host=host2 = %q, want cr1 cr2", got)
	}
}
