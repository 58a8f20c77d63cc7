package apiserver_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	apidiscoveryv2 "k8s.io/api/apidiscovery/v2"
	appsv1 "k8s.io/api/apps/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"sigs.k8s.io/yaml"

	"github.com/skiffhq/skiff/apiserver"
	"github.com/skiffhq/skiff/apiserver/auth"
	"github.com/skiffhq/skiff/client"
	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/waitfor"
)

// restClient is a net/http client of one API server's REST API, over HTTP/2 without
// TLS (h2c, as the splitter accepts on an insecure server) or HTTP/1.1.
type restClient struct {
	t    testing.TB
	base string
	c    *http.Client
}

func newREST(t testing.TB, addr string, h2 bool) *restClient {
	tr := &http.Transport{}
	if h2 {
		var p http.Protocols
		p.SetUnencryptedHTTP2(true)
		tr.Protocols = &p
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &restClient{t: t, base: "http://" + addr, c: &http.Client{Transport: tr}}
}

type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (r reply) status() metav1.Status {
	var st metav1.Status
	json.Unmarshal(r.body, &st)
	return st
}

func (rc *restClient) do(method, path, contentType, accept string, body any) reply {
	rc.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		js, err := json.Marshal(b)
		if err != nil {
			rc.t.Fatal(err)
		}
		rd = bytes.NewReader(js)
	}
	req, err := http.NewRequest(method, rc.base+path, rd)
	if err != nil {
		rc.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := rc.c.Do(req)
	if err != nil {
		rc.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{code: resp.StatusCode, header: resp.Header, body: b}
}

func (rc *restClient) want(r reply, code int, what string) reply {
	rc.t.Helper()
	if r.code != code {
		rc.t.Fatalf("%s: HTTP %d, want %d: %s", what, r.code, code, r.body)
	}
	return r
}

func decodeJSON[T any](t testing.TB, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %T: %v: %s", v, err, b)
	}
	return v
}

func restDeployment(name string, replicas int32) *appsv1.Deployment {
	d := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"app": name}},
		Spec: appsv1.DeploymentSpec{Replicas: &replicas, Selector: &metav1.LabelSelector{MatchLabels: map[string]string{"app": name}},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": name}},
				Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "web", Image: "nginx:1.25"}}}}}}
	kinds.SetTypeMeta(d)
	return d
}

// TestRESTServesKubernetesPaths: one port serves gRPC and REST; the REST API answers at
// Kubernetes' paths in Kubernetes' encodings, for either HTTP version.
func TestRESTServesKubernetesPaths(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			rc := newREST(t, c.Addr(0), h2)
			if r := rc.want(rc.do("GET", "/healthz", "", "", nil), 200, "healthz"); string(r.body) != "ok" {
				t.Errorf("healthz = %q", r.body)
			}
			rc.want(rc.do("GET", "/readyz", "", "", nil), 200, "readyz")
			v := decodeJSON[map[string]string](t, rc.want(rc.do("GET", "/version", "", "", nil), 200, "version").body)
			if v["major"] != "1" || v["minor"] != "37" || !strings.HasPrefix(v["gitVersion"], apiserver.KubernetesVersion) {
				t.Errorf("version = %v", v)
			}
		})
	}
	// gRPC still works on the same port (the other tests of this package use it).
	res, _ := dial(t, c.Addr(0))
	if _, err := res.List(testCtx(t), &apiv1.ListRequest{Kind: "pods"}); err != nil {
		t.Fatalf("gRPC list on the shared port: %v", err)
	}
}

// TestRESTDiscovery: the legacy and aggregated discovery documents list every kind,
// with short names, categories and subresources.
func TestRESTDiscovery(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	versions := decodeJSON[metav1.APIVersions](t, rc.want(rc.do("GET", "/api", "", "", nil), 200, "/api").body)
	if len(versions.Versions) != 1 || versions.Versions[0] != "v1" {
		t.Errorf("/api = %+v", versions)
	}
	core := decodeJSON[metav1.APIResourceList](t, rc.want(rc.do("GET", "/api/v1", "", "", nil), 200, "/api/v1").body)
	byName := map[string]metav1.APIResource{}
	for _, r := range core.APIResources {
		byName[r.Name] = r
	}
	if p := byName["pods"]; p.Kind != "Pod" || !p.Namespaced || len(p.ShortNames) != 1 || p.ShortNames[0] != "po" || len(p.Categories) != 1 || p.Categories[0] != "all" {
		t.Errorf("pods = %+v", p)
	}
	if b := byName["pods/binding"]; b.Kind != "Binding" || len(b.Verbs) != 1 || b.Verbs[0] != "create" {
		t.Errorf("pods/binding = %+v", b)
	}
	if e := byName["pods/eviction"]; e.Group != "policy" || e.Kind != "Eviction" {
		t.Errorf("pods/eviction = %+v", e)
	}
	groups := decodeJSON[metav1.APIGroupList](t, rc.want(rc.do("GET", "/apis", "", "", nil), 200, "/apis").body)
	names := []string{}
	for _, g := range groups.Groups {
		names = append(names, g.Name+"/"+g.PreferredVersion.Version)
	}
	if got := strings.Join(names, ","); got != "admissionregistration.k8s.io/v1,apiextensions.k8s.io/v1,apiregistration.k8s.io/v1,apps/v1,authentication.k8s.io/v1,authorization.k8s.io/v1,autoscaling/v2,batch/v1,certificates.k8s.io/v1,coordination.k8s.io/v1,discovery.k8s.io/v1,events.k8s.io/v1,flowcontrol.apiserver.k8s.io/v1,networking.k8s.io/v1,node.k8s.io/v1,policy/v1,rbac.authorization.k8s.io/v1,scheduling.k8s.io/v1,storage.k8s.io/v1,storagemigration.k8s.io/v1" {
		t.Errorf("/apis groups = %s", got)
	}
	apps := decodeJSON[metav1.APIResourceList](t, rc.want(rc.do("GET", "/apis/apps/v1", "", "", nil), 200, "/apis/apps/v1").body)
	found := false
	for _, r := range apps.APIResources {
		found = found || r.Name == "deployments/scale" && r.Group == "autoscaling" && r.Kind == "Scale"
	}
	if !found {
		t.Errorf("/apis/apps/v1 has no deployments/scale: %+v", apps.APIResources)
	}
	agg := rc.want(rc.do("GET", "/apis", "", "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json", nil), 200, "aggregated /apis")
	if ct := agg.header.Get("Content-Type"); ct != "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList" {
		t.Errorf("aggregated content type = %q", ct)
	}
	if !bytes.Contains(agg.body, []byte(`"resource":"deployments"`)) || !bytes.Contains(agg.body, []byte(`"shortNames":["deploy"]`)) {
		t.Errorf("aggregated /apis = %s", agg.body)
	}
	// The reviews: create-only resources of authentication.k8s.io and authorization.k8s.io,
	// in the legacy and the aggregated documents.
	authz := decodeJSON[metav1.APIResourceList](t, rc.want(rc.do("GET", "/apis/authorization.k8s.io/v1", "", "", nil), 200, "/apis/authorization.k8s.io/v1").body)
	reviews := map[string]metav1.APIResource{}
	for _, r := range authz.APIResources {
		reviews[r.Name] = r
	}
	if r := reviews["selfsubjectaccessreviews"]; r.Kind != "SelfSubjectAccessReview" || r.Namespaced || strings.Join(r.Verbs, ",") != "create" {
		t.Errorf("selfsubjectaccessreviews = %+v", r)
	}
	if r := reviews["localsubjectaccessreviews"]; r.Kind != "LocalSubjectAccessReview" || !r.Namespaced {
		t.Errorf("localsubjectaccessreviews = %+v", r)
	}
	if len(reviews) != 4 || authz.GroupVersion != "authorization.k8s.io/v1" {
		t.Errorf("/apis/authorization.k8s.io/v1 = %+v", authz)
	}
	authn := decodeJSON[metav1.APIGroup](t, rc.want(rc.do("GET", "/apis/authentication.k8s.io", "", "", nil), 200, "/apis/authentication.k8s.io").body)
	if authn.PreferredVersion.GroupVersion != "authentication.k8s.io/v1" {
		t.Errorf("/apis/authentication.k8s.io = %+v", authn)
	}
	aggList := decodeJSON[apidiscoveryv2.APIGroupDiscoveryList](t, agg.body)
	var tokenReviews *apidiscoveryv2.APIResourceDiscovery
	for _, g := range aggList.Items {
		for _, v := range g.Versions {
			for i, r := range v.Resources {
				if g.Name == "authentication.k8s.io" && v.Version == "v1" && r.Resource == "tokenreviews" {
					tokenReviews = &v.Resources[i]
				}
			}
		}
	}
	if tokenReviews == nil || tokenReviews.ResponseKind.Kind != "TokenReview" || tokenReviews.Scope != apidiscoveryv2.ScopeCluster ||
		strings.Join(tokenReviews.Verbs, ",") != "create" {
		t.Errorf("aggregated tokenreviews = %+v", tokenReviews)
	}
	rc.want(rc.do("GET", "/apis/nope.example.com/v1", "", "", nil), 404, "unknown group")
}

// TestRESTCRUD: create, get, list, update, status, delete at Kubernetes' paths, with
// Kubernetes' codes and Status errors in the gRPC API's words.
func TestRESTCRUD(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	base := "/apis/apps/v1/namespaces/default/deployments"
	created := decodeJSON[appsv1.Deployment](t, rc.want(rc.do("POST", base, "application/json", "", restDeployment("web", 2)), 201, "create").body)
	if created.UID == "" || created.ResourceVersion == "" || created.Generation != 1 || created.Kind != "Deployment" || created.APIVersion != "apps/v1" {
		t.Fatalf("created = %+v", created.ObjectMeta)
	}
	// The same name again: 409 AlreadyExists, in the gRPC API's words.
	st := rc.want(rc.do("POST", base, "application/json", "", restDeployment("web", 2)), 409, "create twice").status()
	if st.Reason != metav1.StatusReasonAlreadyExists || st.Message != `deployments.apps "web" already exists` || st.Details.Kind != "deployments" || st.Details.Group != "apps" {
		t.Errorf("create twice = %+v", st)
	}
	// Invalid: 422 with a cause per field.
	bad := restDeployment("bad", -1)
	bad.Spec.Template.Spec.Containers[0].Image = ""
	st = rc.want(rc.do("POST", base, "application/json", "", bad), 422, "invalid").status()
	if st.Reason != metav1.StatusReasonInvalid || len(st.Details.Causes) != 2 || st.Details.Causes[0].Field != "spec.replicas" ||
		!strings.HasPrefix(st.Message, `Deployment.apps "bad" is invalid: [spec.replicas: Invalid value: -1`) {
		t.Errorf("invalid = %+v", st)
	}
	// Unknown fields: refused with fieldValidation=Strict, a warning by default.
	body := `{"apiVersion":"apps/v1","kind":"Deployment","metadata":{"name":"typo"},"spec":{"replicas":1,"selector":{"matchLabels":{"app":"typo"}},"template":{"metadata":{"labels":{"app":"typo"}},"spec":{"containers":[{"name":"c","image":"x","imagePullPolice":"Always"}]}}}}`
	st = rc.want(rc.do("POST", base+"?fieldValidation=Strict", "application/json", "", body), 400, "strict").status()
	if st.Message != `strict decoding error: unknown field "spec.template.spec.containers[0].imagePullPolice"` {
		t.Errorf("strict = %q", st.Message)
	}
	r := rc.want(rc.do("POST", base+"?dryRun=All", "application/json", "", body), 201, "warn")
	if w := r.header.Get("Warning"); w != `299 - "unknown field \"spec.template.spec.containers[0].imagePullPolice\""` {
		t.Errorf("warning = %q", w)
	}
	rc.want(rc.do("GET", base+"/typo", "", "", nil), 404, "a dry run stores nothing")
	// Get, and NotFound.
	got := decodeJSON[appsv1.Deployment](t, rc.want(rc.do("GET", base+"/web", "", "", nil), 200, "get").body)
	if got.UID != created.UID {
		t.Errorf("get = %+v", got.ObjectMeta)
	}
	st = rc.want(rc.do("GET", base+"/nope", "", "", nil), 404, "get missing").status()
	if st.Reason != metav1.StatusReasonNotFound || st.Message != `deployments.apps "nope" not found` || st.Details.Name != "nope" {
		t.Errorf("not found = %+v", st)
	}
	// Update with a stale resourceVersion: 409 Conflict.
	got.Spec.Replicas = ptrTo[int32](3)
	updated := decodeJSON[appsv1.Deployment](t, rc.want(rc.do("PUT", base+"/web", "application/json", "", got), 200, "update").body)
	if updated.Generation != 2 || *updated.Spec.Replicas != 3 {
		t.Errorf("updated = %+v", updated.ObjectMeta)
	}
	st = rc.want(rc.do("PUT", base+"/web", "application/json", "", got), 409, "stale update").status()
	if st.Reason != metav1.StatusReasonConflict || !strings.Contains(st.Message, "the object has been modified") {
		t.Errorf("conflict = %+v", st)
	}
	// The status goes through its subresource, and leaves generation alone.
	updated.Status.ObservedGeneration, updated.Status.Replicas = 2, 3
	withStatus := decodeJSON[appsv1.Deployment](t, rc.want(rc.do("PUT", base+"/web/status", "application/json", "", updated), 200, "status").body)
	if withStatus.Status.Replicas != 3 || withStatus.Generation != 2 {
		t.Errorf("status update = %+v %+v", withStatus.ObjectMeta, withStatus.Status)
	}
	// The list: kind, apiVersion, metadata.resourceVersion, items without kind.
	list := rc.want(rc.do("GET", base+"?labelSelector=app%3Dweb", "", "", nil), 200, "list")
	var l struct {
		Kind, APIVersion string
		Metadata         metav1.ListMeta
		Items            []map[string]any
	}
	if err := json.Unmarshal(list.body, &l); err != nil || l.Kind != "DeploymentList" || l.APIVersion != "apps/v1" || l.Metadata.ResourceVersion == "" ||
		len(l.Items) != 1 || l.Items[0]["kind"] != nil {
		t.Errorf("list = %s", list.body)
	}
	if !bytes.HasPrefix(list.body, []byte(`{"kind":"DeploymentList","apiVersion":"apps/v1","metadata":{"resourceVersion":`)) {
		t.Errorf("list does not start as Kubernetes' does: %.80s", list.body)
	}
	// Delete: Success once gone, the object while a finalizer holds it.
	st = rc.want(rc.do("DELETE", base+"/web", "", "", nil), 200, "delete").status()
	if st.Status != metav1.StatusSuccess || st.Details.Name != "web" || st.Details.UID != created.UID {
		t.Errorf("delete = %s", rc.do("GET", base+"/web", "", "", nil).body)
	}
	rc.want(rc.do("POST", base, "application/json", "", restDeployment("held", 1)), 201, "create held")
	held := decodeJSON[appsv1.Deployment](t, rc.want(rc.do("DELETE", base+"/held", "application/json", "", `{"propagationPolicy":"Foreground"}`), 200, "delete held").body)
	if held.DeletionTimestamp == nil || len(held.Finalizers) != 1 || held.Finalizers[0] != "foregroundDeletion" {
		t.Errorf("foreground delete = %+v", held.ObjectMeta)
	}
	// Paths and methods that are not there.
	rc.want(rc.do("GET", "/apis/apps/v1/namespaces/default/widgets", "", "", nil), 404, "unknown resource")
	rc.want(rc.do("GET", "/api/v1/namespaces/default/nodes/x", "", "", nil), 404, "cluster-scoped kind under a namespace")
	rc.want(rc.do("PUT", base, "application/json", "", "{}"), 405, "update of a collection")
}

// TestRESTEviction: pods/eviction deletes a pod as the gRPC Evict does, and refuses
// with 429 and the budget's cause when its PodDisruptionBudget allows no disruption.
func TestRESTEviction(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	pods := "/api/v1/namespaces/default/pods"
	for _, name := range []string{"pending", "guarded"} {
		p := boundPod(name, "w1")
		p.Labels = map[string]string{"app": name}
		kinds.SetTypeMeta(p)
		rc.want(rc.do("POST", pods, "application/json", "", p), 201, "create "+name)
	}
	rc.want(rc.do("PATCH", pods+"/guarded/status", "application/merge-patch+json", "",
		`{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}`), 200, "guarded runs")
	rc.want(rc.do("POST", "/apis/policy/v1/namespaces/default/poddisruptionbudgets", "application/json", "",
		`{"apiVersion":"policy/v1","kind":"PodDisruptionBudget","metadata":{"name":"guard"},"spec":{"minAvailable":1,"selector":{"matchLabels":{"app":"guarded"}}}}`), 201, "budget")
	eviction := func(name string) string {
		return `{"apiVersion":"policy/v1","kind":"Eviction","metadata":{"name":"` + name + `","namespace":"default"}}`
	}
	st := rc.want(rc.do("POST", pods+"/pending/eviction", "application/json", "", eviction("pending")), 201, "evict pending").status()
	if st.Status != metav1.StatusSuccess {
		t.Errorf("eviction = %+v", st)
	}
	st = rc.want(rc.do("POST", pods+"/guarded/eviction", "application/json", "", eviction("guarded")), 429, "evict guarded").status()
	if st.Reason != metav1.StatusReasonTooManyRequests || len(st.Details.Causes) != 1 || st.Details.Causes[0].Type != "DisruptionBudget" {
		t.Errorf("refused eviction = %+v", st)
	}
	rc.want(rc.do("POST", pods+"/guarded/eviction", "application/json", "", eviction("other")), 400, "names differ")
}

// fiveConfigMapsPaged starts a member holding ConfigMaps cm0-cm4 and lists their
// first page of two through the REST API; it returns the client, the ConfigMaps' path
// and the page.
func fiveConfigMapsPaged(t *testing.T) (*restClient, string, corev1.ConfigMapList) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), false)
	base := "/api/v1/namespaces/default/configmaps"
	for i := 0; i < 5; i++ {
		rc.want(rc.do("POST", base, "application/json", "", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("cm%d", i)}}), 201, "create")
	}
	return rc, base, decodeJSON[corev1.ConfigMapList](t, rc.want(rc.do("GET", base+"?limit=2", "", "", nil), 200, "page 1").body)
}

// TestRESTListPages: limit and continue read every page at the first page's revision,
// whatever changes in between; resourceVersionMatch=Exact lists a past state.
func TestRESTListPages(t *testing.T) {
	rc, base, first := fiveConfigMapsPaged(t)
	if len(first.Items) != 2 || first.Continue == "" {
		t.Fatalf("page 1 = %d items, continue %q", len(first.Items), first.Continue)
	}
	// remainingItemCount: what follows a page, on every page but the last; not with a
	// selector (Kubernetes' conformance test "API chunking" counts on both).
	if r := first.RemainingItemCount; r == nil || *r != 3 {
		t.Errorf("page 1 remainingItemCount = %v, want 3", r)
	}
	seen := len(first.Items)
	selected := decodeJSON[corev1.ConfigMapList](t, rc.want(rc.do("GET", base+"?limit=2&labelSelector=x!%3Dy", "", "", nil), 200, "page 1 with a selector").body)
	if selected.Continue == "" || selected.RemainingItemCount != nil {
		t.Errorf("page 1 with a selector: continue %q, remainingItemCount %v", selected.Continue, selected.RemainingItemCount)
	}
	// Changes after the first page do not show in the next ones.
	rc.want(rc.do("DELETE", base+"/cm3", "", "", nil), 200, "delete cm3")
	rc.want(rc.do("POST", base, "application/json", "", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "cm9"}}), 201, "create cm9")
	names := []string{first.Items[0].Name, first.Items[1].Name}
	cont := first.Continue
	for cont != "" {
		page := decodeJSON[corev1.ConfigMapList](t, rc.want(rc.do("GET", base+"?limit=2&continue="+url.QueryEscape(cont), "", "", nil), 200, "next page").body)
		if page.ResourceVersion != first.ResourceVersion {
			t.Errorf("page at %s, want %s", page.ResourceVersion, first.ResourceVersion)
		}
		for _, it := range page.Items {
			names = append(names, it.Name)
		}
		seen += len(page.Items)
		switch r := page.RemainingItemCount; {
		case page.Continue == "" && r != nil:
			t.Errorf("last page remainingItemCount = %d", *r)
		case page.Continue != "" && (r == nil || int(*r)+seen != 5):
			t.Errorf("page ending at %d of 5: remainingItemCount = %v", seen, r)
		}
		cont = page.Continue
	}
	if got := strings.Join(names, ","); got != "cm0,cm1,cm2,cm3,cm4" {
		t.Errorf("paged list = %s", got)
	}
	// The same list in YAML, written from its JSON.
	var inYAML corev1.ConfigMapList
	if err := yaml.Unmarshal(rc.want(rc.do("GET", base+"?limit=2", "", "application/yaml", nil), 200, "page 1 in YAML").body, &inYAML); err != nil ||
		inYAML.Kind != "ConfigMapList" || len(inYAML.Items) != 2 || inYAML.Items[0].Name != "cm0" || inYAML.Continue == "" {
		t.Errorf("page 1 in YAML = %+v %v", inYAML, err)
	}
	exact := decodeJSON[corev1.ConfigMapList](t, rc.want(rc.do("GET", base+"?resourceVersionMatch=Exact&resourceVersion="+first.ResourceVersion, "", "", nil), 200, "exact").body)
	if len(exact.Items) != 5 || exact.ResourceVersion != first.ResourceVersion {
		t.Errorf("exact list = %d items at %s", len(exact.Items), exact.ResourceVersion)
	}
	rc.want(rc.do("GET", base+"?resourceVersionMatch=Exact", "", "", nil), 400, "match without resourceVersion")
	st := rc.want(rc.do("GET", base+"?limit=1&continue=bm90IGEgdG9rZW4", "", "", nil), 400, "bad continue").status()
	if !strings.Contains(st.Message, "continue key is not valid") {
		t.Errorf("bad continue = %q", st.Message)
	}
}

// TestRESTListPagesCountOnce: a list's first page counts what follows it
// (remainingItemCount) and writes the count into its continue token; a later page takes
// its count from the token, less what it lists, instead of reading every key after it
// again. A token with a negative count is refused; one whose count the page exceeds
// gives no remainingItemCount (it is not this list's).
func TestRESTListPagesCountOnce(t *testing.T) {
	rc, base, first := fiveConfigMapsPaged(t)
	raw, err := base64.RawURLEncoding.DecodeString(first.Continue)
	if err != nil {
		t.Fatalf("continue %q: %v", first.Continue, err)
	}
	tok := decodeJSON[map[string]any](t, raw)
	if tok["remaining"] != 3.0 {
		t.Errorf("page 1's token = %s, want remaining 3", raw)
	}
	withCount := func(n int) string {
		tok["remaining"] = n
		b, err := json.Marshal(tok)
		if err != nil {
			t.Fatal(err)
		}
		return url.QueryEscape(base64.RawURLEncoding.EncodeToString(b))
	}
	next := decodeJSON[corev1.ConfigMapList](t, rc.want(rc.do("GET", base+"?limit=2&continue="+withCount(100), "", "", nil), 200, "page 2").body)
	if r := next.RemainingItemCount; len(next.Items) != 2 || r == nil || *r != 98 {
		t.Errorf("page 2 of a token counting 100: %d items, remainingItemCount %v; want 2 and 98", len(next.Items), r)
	}
	next = decodeJSON[corev1.ConfigMapList](t, rc.want(rc.do("GET", base+"?limit=2&continue="+withCount(1), "", "", nil), 200, "page 2, count too low").body)
	if len(next.Items) != 2 || next.Continue == "" || next.RemainingItemCount != nil {
		t.Errorf("page 2 of a token counting 1: %d items, continue %q, remainingItemCount %v; want 2, a token, none",
			len(next.Items), next.Continue, next.RemainingItemCount)
	}
	rc.want(rc.do("GET", base+"?limit=2&continue="+withCount(-1), "", "", nil), 400, "negative count")
}

// TestRESTPatch: JSON patch, merge patch and strategic merge patch, on an object, its
// status and its scale.
func TestRESTPatch(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	base := "/apis/apps/v1/namespaces/default/deployments"
	d := restDeployment("web", 1)
	d.Spec.Template.Spec.Containers = append(d.Spec.Template.Spec.Containers, corev1.Container{Name: "side", Image: "busybox:1.36"})
	rc.want(rc.do("POST", base, "application/json", "", d), 201, "create")
	// Strategic merge: the containers list merges by name.
	out := decodeJSON[appsv1.Deployment](t, rc.want(rc.do("PATCH", base+"/web", "application/strategic-merge-patch+json", "",
		`{"spec":{"template":{"spec":{"containers":[{"name":"web","image":"nginx:1.27"}]}}}}`), 200, "strategic").body)
	if cs := out.Spec.Template.Spec.Containers; len(cs) != 2 || cs[0].Image != "nginx:1.27" || cs[1].Name != "side" || out.Generation != 2 {
		t.Errorf("strategic patch = %+v (generation %d)", cs, out.Generation)
	}
	// A merge patch replaces the list.
	out = decodeJSON[appsv1.Deployment](t, rc.want(rc.do("PATCH", base+"/web", "application/merge-patch+json", "",
		`{"metadata":{"labels":{"tier":"front"}},"spec":{"template":{"spec":{"containers":[{"name":"only","image":"x"}]}}}}`), 200, "merge").body)
	if cs := out.Spec.Template.Spec.Containers; len(cs) != 1 || out.Labels["tier"] != "front" {
		t.Errorf("merge patch = %+v %v", cs, out.Labels)
	}
	out = decodeJSON[appsv1.Deployment](t, rc.want(rc.do("PATCH", base+"/web", "application/json-patch+json", "",
		`[{"op":"replace","path":"/spec/replicas","value":4}]`), 200, "json patch").body)
	if *out.Spec.Replicas != 4 {
		t.Errorf("json patch: replicas %d", *out.Spec.Replicas)
	}
	st := rc.want(rc.do("PATCH", base+"/web", "application/json-patch+json", "", `[{"op":"test","path":"/spec/replicas","value":9}]`), 422, "failed test").status()
	if st.Reason != metav1.StatusReasonInvalid {
		t.Errorf("failed json patch test = %+v", st)
	}
	// A resourceVersion in the patch is a precondition.
	rc.want(rc.do("PATCH", base+"/web", "application/merge-patch+json", "", `{"metadata":{"resourceVersion":"1"},"spec":{"replicas":1}}`), 409, "stale patch")
	st = rc.want(rc.do("PATCH", base+"/web?fieldValidation=Strict", "application/merge-patch+json", "", `{"spec":{"replica":1}}`), 400, "strict patch").status()
	if st.Message != `strict decoding error: unknown field "spec.replica"` {
		t.Errorf("strict patch = %q", st.Message)
	}
	rc.want(rc.do("PATCH", base+"/web", "application/apply-patch+cbor", "", "spec: {}"), 415, "a CBOR apply")
	// Status patch, scale.
	// It writes the annotations it sets too (e2e's "patching /status" steps check them),
	// but not a Deployment's labels, as in Kubernetes.
	out = decodeJSON[appsv1.Deployment](t, rc.want(rc.do("PATCH", base+"/web/status", "application/merge-patch+json", "",
		`{"metadata":{"annotations":{"patchedstatus":"true"},"labels":{"tier":"back"}},"status":{"replicas":2},"spec":{"replicas":7}}`), 200, "status patch").body)
	if out.Status.Replicas != 2 || *out.Spec.Replicas != 4 || out.Annotations["patchedstatus"] != "true" || out.Labels["tier"] != "front" {
		t.Errorf("status patch: status %d spec %d annotations %v labels %v", out.Status.Replicas, *out.Spec.Replicas, out.Annotations, out.Labels)
	}
	rc.want(rc.do("PATCH", base+"/web/status", "application/merge-patch+json", "", `{"metadata":{"annotations":{"bad key/x/y":"1"}}}`), 422, "an invalid annotation by a status patch")
	scale := decodeJSON[map[string]any](t, rc.want(rc.do("GET", base+"/web/scale", "", "", nil), 200, "get scale").body)
	if scale["kind"] != "Scale" || scale["apiVersion"] != "autoscaling/v1" || scale["spec"].(map[string]any)["replicas"] != 4.0 ||
		scale["status"].(map[string]any)["selector"] != "app=web" {
		t.Errorf("scale = %v", scale)
	}
	rc.want(rc.do("PATCH", base+"/web/scale", "application/merge-patch+json", "", `{"spec":{"replicas":6}}`), 200, "patch scale")
	out = decodeJSON[appsv1.Deployment](t, rc.want(rc.do("GET", base+"/web", "", "", nil), 200, "get").body)
	if *out.Spec.Replicas != 6 {
		t.Errorf("after scale: replicas %d", *out.Spec.Replicas)
	}
}

// TestRESTTableAndProtobuf: Table responses carry Kubernetes' columns; protobuf replies
// are the stored bytes with the resourceVersion.
func TestRESTTableAndProtobuf(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	base := "/apis/apps/v1/namespaces/default/deployments"
	rc.want(rc.do("POST", base, "application/json", "", restDeployment("web", 2)), 201, "create")
	tableAccept := "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
	tbl := decodeJSON[metav1.Table](t, rc.want(rc.do("GET", base, "", tableAccept, nil), 200, "table").body)
	var cols []string
	for _, cd := range tbl.ColumnDefinitions {
		cols = append(cols, cd.Name)
	}
	if strings.Join(cols, ",") != "Name,Ready,Up-to-date,Available,Age,Containers,Images,Selector" || len(tbl.Rows) != 1 ||
		tbl.Rows[0].Cells[0] != "web" || tbl.Rows[0].Cells[1] != "0/2" || tbl.ResourceVersion == "" {
		t.Errorf("table = %+v", tbl)
	}
	if !bytes.Contains(tbl.Rows[0].Object.Raw, []byte(`"kind":"PartialObjectMetadata"`)) {
		t.Errorf("row object = %s", tbl.Rows[0].Object.Raw)
	}
	pb := rc.want(rc.do("GET", base+"/web", "", "application/vnd.kubernetes.protobuf", nil), 200, "protobuf get")
	obj, err := kinds.Decode(pb.body)
	if err != nil || obj.GetName() != "web" || obj.GetResourceVersion() == "" {
		t.Errorf("protobuf get: %v %v", obj, err)
	}
	pl := rc.want(rc.do("GET", base, "", "application/vnd.kubernetes.protobuf", nil), 200, "protobuf list")
	env, err := kinds.Parse(pl.body)
	var list appsv1.DeploymentList
	if err == nil {
		err = list.Unmarshal(env.Raw)
	}
	if err != nil || env.Kind != "DeploymentList" || len(list.Items) != 1 || list.Items[0].ResourceVersion == "" || list.ResourceVersion == "" {
		t.Errorf("protobuf list: %+v %v", env, err)
	}
	rc.want(rc.do("GET", base, "", "text/html", nil), 406, "not acceptable")
}

// TestRESTWatch: a watch from a resourceVersion streams the changes after it; with
// sendInitialEvents it starts with the state and the initial-events-end bookmark; an
// old resourceVersion gets 410 Expired in an ERROR event.
func TestRESTWatch(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{HistorySize: 20})
	rc := newREST(t, c.Addr(0), true)
	base := "/api/v1/namespaces/default/configmaps"
	cm := decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("POST", base, "application/json", "", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "a"}}), 201, "create").body)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	events := rc.watch(ctx, base+"?watch=1&allowWatchBookmarks=true&resourceVersion="+cm.ResourceVersion)
	rc.want(rc.do("POST", base, "application/json", "", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "b"}}), 201, "create b")
	rc.want(rc.do("DELETE", base+"/a", "", "", nil), 200, "delete a")
	var seen []string
	for len(seen) < 2 {
		ev := <-events
		if ev.Type == "BOOKMARK" {
			continue
		}
		seen = append(seen, ev.Type+" "+ev.Object.Name+" "+ev.Kind)
	}
	if got := strings.Join(seen, ","); got != "ADDED b ConfigMap,DELETED a ConfigMap" {
		t.Errorf("watch = %s", got)
	}
	// A bookmark comes while idle (BookmarkInterval is a second in tests).
	for ev := range events {
		if ev.Type == "BOOKMARK" {
			if ev.Object.ResourceVersion == "" {
				t.Errorf("bookmark without resourceVersion")
			}
			break
		}
	}
	// Watch-list: the state, then the bookmark that ends it.
	initial := rc.watch(ctx, base+"?watch=1&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan")
	ev := <-initial
	if ev.Type != "ADDED" || ev.Object.Name != "b" {
		t.Errorf("first initial event = %+v", ev)
	}
	ev = <-initial
	if ev.Type != "BOOKMARK" || ev.Object.Annotations[apiserver.InitialEventsAnnotation] != "true" {
		t.Errorf("end of initial events = %+v", ev)
	}
	// An unset resourceVersion: the state as ADDED events too.
	if ev := <-rc.watch(ctx, base+"?watch=true"); ev.Type != "ADDED" || ev.Object.Name != "b" {
		t.Errorf("watch without resourceVersion = %+v", ev)
	}
	for i := 0; i < 30; i++ {
		rc.want(rc.do("POST", base, "application/json", "", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("n%d", i)}}), 201, "create")
	}
	ev = <-rc.watch(ctx, base+"?watch=1&resourceVersion="+cm.ResourceVersion)
	if ev.Type != "ERROR" || ev.Status.Code != 410 || ev.Status.Reason != metav1.StatusReasonExpired {
		t.Errorf("too old watch = %+v", ev)
	}
	rc.want(rc.do("GET", base+"?watch=1&sendInitialEvents=true", "", "", nil), 422, "sendInitialEvents without NotOlderThan")
}

type restEvent struct {
	Type, Kind string
	Object     metav1.ObjectMeta
	Status     metav1.Status
	Raw        json.RawMessage // the whole object
}

// watch streams a watch's events until ctx ends.
func (rc *restClient) watch(ctx context.Context, path string) <-chan restEvent {
	rc.t.Helper()
	req, _ := http.NewRequestWithContext(ctx, "GET", rc.base+path, nil)
	resp, err := rc.c.Do(req)
	if err != nil || resp.StatusCode != 200 {
		rc.t.Fatalf("watch %s: %v %v", path, err, resp)
	}
	out := make(chan restEvent, 100)
	go func() {
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			var raw struct {
				Type   string
				Object json.RawMessage
			}
			if err := json.Unmarshal(sc.Bytes(), &raw); err != nil {
				return
			}
			ev := restEvent{Type: raw.Type, Raw: raw.Object}
			var o struct {
				Kind     string
				Metadata metav1.ObjectMeta
			}
			json.Unmarshal(raw.Object, &o)
			ev.Object, ev.Kind = o.Metadata, o.Kind
			if raw.Type == "ERROR" {
				json.Unmarshal(raw.Object, &ev.Status)
			}
			select {
			case out <- ev:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

func ptrTo[T any](v T) *T { return &v }

// newRESTTLS is a REST client over TLS (HTTP/2 by ALPN), with a client certificate or a
// bearer token.
func newRESTTLS(t testing.TB, addr string, tc *tls.Config, token string) *restClient {
	tr := &http.Transport{TLSClientConfig: tc, ForceAttemptHTTP2: true}
	t.Cleanup(tr.CloseIdleConnections)
	var rt http.RoundTripper = tr
	if token != "" {
		rt = tokenTransport{token: token, next: tr}
	}
	return &restClient{t: t, base: "https://" + addr, c: &http.Client{Transport: rt}}
}

type tokenTransport struct {
	token string
	next  http.RoundTripper
}

func (tt tokenTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("Authorization", "Bearer "+tt.token)
	return tt.next.RoundTrip(r)
}

// TestRESTSecurity: the REST API authenticates and authorizes as the gRPC API does, on
// the same TLS port, with the same words: a kubelet's certificate gets the node's limits.
func TestRESTSecurity(t *testing.T) {
	dir := apicluster.Certs(t, "w1", "w2")
	toks, err := auth.ParseTokens(auth.HashToken("ci-token") + ",ci,skiff:admin")
	if err != nil {
		t.Fatal(err)
	}
	c := apicluster.Start(t, 1, apicluster.Options{Certs: dir, Tokens: toks})
	admin := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "")
	pods := "/api/v1/namespaces/default/pods"
	for _, p := range []*corev1.Pod{boundPod("mine", "w1"), boundPod("theirs", "w2")} {
		kinds.SetTypeMeta(p)
		r := admin.want(admin.do("POST", pods, "application/json", "", p), 201, "create "+p.Name)
		if r.header.Get("Content-Type") != "application/json" {
			t.Errorf("content type %q", r.header.Get("Content-Type"))
		}
	}
	if r := admin.do("GET", pods, "", "", nil); r.code != 200 {
		t.Fatalf("admin over HTTP/2 and TLS: %d %s", r.code, r.body)
	}
	token := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "ci-token")
	token.want(token.do("GET", pods, "", "", nil), 200, "token")
	nobody := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, ""), "")
	st := nobody.want(nobody.do("GET", pods, "", "", nil), 401, "no credentials").status()
	if st.Reason != metav1.StatusReasonUnauthorized || !strings.Contains(st.Message, "no client certificate or bearer token presented") {
		t.Errorf("no credentials = %+v", st)
	}
	nobody.want(nobody.do("GET", "/healthz", "", "", nil), 200, "healthz needs no credentials")

	w1 := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "kubelet-w1"), "")
	l := decodeJSON[corev1.PodList](t, w1.want(w1.do("GET", "/api/v1/pods?fieldSelector=spec.nodeName%3Dw1", "", "", nil), 200, "own pods").body)
	if len(l.Items) != 1 || l.Items[0].Name != "mine" {
		t.Errorf("own pods = %+v", l.Items)
	}
	w1.want(w1.do("PATCH", pods+"/mine/status", "application/merge-patch+json", "", `{"status":{"phase":"Running"}}`), 200, "own pod's status")
	const msg = `user "system:node:w1" cannot `
	for _, tc := range []struct {
		method, path, body, msg string
	}{
		{"GET", pods + "/theirs", "", msg + `get pods "default/theirs": pod is bound to node "w2"`},
		{"GET", "/api/v1/pods", "", msg + "list pods in all namespaces: a node may only list pods with fieldSelector spec.nodeName=w1"},
		{"GET", "/api/v1/pods?watch=1&fieldSelector=spec.nodeName%3Dw2", "", msg + "watch pods"},
		{"PATCH", pods + "/theirs/status", `{"status":{"phase":"Failed"}}`, msg + `update pods/status "default/theirs": pod is bound to node "w2"`},
		{"PATCH", pods + "/mine", `{"metadata":{"labels":{"a":"b"}}}`, msg + `update pods "default/mine"`},
		{"DELETE", pods + "/theirs", "", msg + `delete pods "default/theirs": pod is bound to node "w2"`},
		{"POST", "/api/v1/nodes", `{"apiVersion":"v1","kind":"Node","metadata":{"name":"w2"}}`, msg + `create nodes "w2": a node may only access its own Node "w1"`},
	} {
		ct := ""
		switch tc.method {
		case "PATCH":
			ct = "application/merge-patch+json"
		case "POST":
			ct = "application/json"
		}
		st := w1.want(w1.do(tc.method, tc.path, ct, "", tc.body), 403, tc.method+" "+tc.path).status()
		if st.Reason != metav1.StatusReasonForbidden || !strings.Contains(st.Message, tc.msg) {
			t.Errorf("%s %s = %q, want %q", tc.method, tc.path, st.Message, tc.msg)
		}
	}
	// kubectl auth can-i: SelfSubjectAccessReview, the authorizer's answer for the asker.
	for _, tc := range []struct {
		who     *restClient
		what    string
		attrs   authorizationv1.ResourceAttributes
		allowed bool
		reason  string
	}{
		{admin, "admin deletes nodes", authorizationv1.ResourceAttributes{Verb: "delete", Resource: "nodes"}, true, ""},
		{admin, "admin creates pods/exec", authorizationv1.ResourceAttributes{Verb: "create", Resource: "pods", Subresource: "exec", Namespace: "default"}, true, ""},
		{w1, "w1 gets its Node", authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Name: "w1"}, true, ""},
		{w1, "w1 gets w2's Node", authorizationv1.ResourceAttributes{Verb: "get", Resource: "nodes", Name: "w2"}, true, ""}, // the routes to w2's pods
		{w1, "w1 updates w2's Node", authorizationv1.ResourceAttributes{Verb: "update", Resource: "nodes", Name: "w2"}, false, msg + `update nodes "w2": a node may only access its own Node "w1"`},
		{w1, "w1 patches a pod", authorizationv1.ResourceAttributes{Verb: "patch", Resource: "pods", Namespace: "default", Name: "mine"}, false, msg + `update pods "default/mine"`},
		{w1, "w1 gets a pod", authorizationv1.ResourceAttributes{Verb: "get", Resource: "pods", Namespace: "default", Name: "mine"}, true, "allowed for the objects the node restriction admits"},
		{w1, "w1 lists deployments", authorizationv1.ResourceAttributes{Verb: "list", Group: "apps", Resource: "deployments"}, false, msg + "list deployments"},
		{w1, "w1 lists a kind not served", authorizationv1.ResourceAttributes{Verb: "list", Group: "storage.k8s.io", Resource: "csidrivers"}, false, `the server does not serve "csidrivers" in group "storage.k8s.io"`},
	} {
		review := &authorizationv1.SelfSubjectAccessReview{TypeMeta: metav1.TypeMeta{APIVersion: "authorization.k8s.io/v1", Kind: "SelfSubjectAccessReview"},
			Spec: authorizationv1.SelfSubjectAccessReviewSpec{ResourceAttributes: &tc.attrs}}
		got := decodeJSON[authorizationv1.SelfSubjectAccessReview](t, tc.who.want(tc.who.do("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "application/json", "", review), 201, tc.what).body)
		if got.Status.Allowed != tc.allowed || !strings.Contains(got.Status.Reason, tc.reason) || got.Kind != "SelfSubjectAccessReview" {
			t.Errorf("%s: %+v, want allowed %v, reason %q", tc.what, got.Status, tc.allowed, tc.reason)
		}
	}
	// An apply that would create needs create too: the controller-manager may update
	// nodes, not create them.
	cm := newRESTTLS(t, c.Addr(0), apicluster.ClientTLS(t, dir, "controller-manager"), "")
	st = cm.want(cm.do("PATCH", "/api/v1/nodes/w9?fieldManager=cm", "application/apply-patch+yaml", "", "apiVersion: v1\nkind: Node\nmetadata: {name: w9}\n"), 403, "apply creating a node").status()
	if !strings.Contains(st.Message, `cannot create nodes "w9"`) {
		t.Errorf("apply creating a node as the controller-manager: %+v", st)
	}
	// A review has no Table view (Kubernetes' "should return a 406 for a backend which
	// does not implement metadata").
	tableOf := admin.want(admin.do("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "application/json",
		"application/json;as=Table;v=v1;g=meta.k8s.io", `{"spec":{"nonResourceAttributes":{"path":"/","verb":"get"}}}`), 406, "a review as a Table").status()
	if tableOf.Reason != metav1.StatusReasonNotAcceptable {
		t.Errorf("a review as a Table: %+v", tableOf)
	}
	bad := admin.want(admin.do("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", "application/json", "", `{"spec":{}}`), 422, "a review of nothing").status()
	if bad.Reason != metav1.StatusReasonInvalid || !strings.Contains(bad.Message, "exactly one of nonResourceAttributes or resourceAttributes must be specified") {
		t.Errorf("a review of nothing: %+v", bad)
	}
	theirs := decodeJSON[corev1.Pod](t, admin.want(admin.do("GET", pods+"/theirs", "", "", nil), 200, "get theirs").body)
	if theirs.Status.Phase == corev1.PodFailed || theirs.DeletionTimestamp != nil {
		t.Errorf("w2's pod changed: %+v", theirs.Status)
	}
	// gRPC on the same port, same certificate.
	if _, err := dialSecure(t, c.Addr(0), apicluster.ClientTLS(t, dir, "admin"), "").List(testCtx(t), &apiv1.ListRequest{Kind: "Pod"}); err != nil {
		t.Errorf("gRPC beside REST: %v", err)
	}
}

// TestRESTOpenAPI: the v2 and v3 documents describe every kind with its
// group-version-kind and patch extensions, and the PATCH operations take fieldValidation
// (which kubectl looks for before it validates on the server).
func TestRESTOpenAPI(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	v2 := decodeJSON[map[string]any](t, rc.want(rc.do("GET", "/openapi/v2", "", "application/json", nil), 200, "v2").body)
	defs := v2["definitions"].(map[string]any)
	dep, ok := defs["io.k8s.api.apps.v1.Deployment"].(map[string]any)
	if !ok || fmt.Sprint(dep["x-kubernetes-group-version-kind"]) != "[map[group:apps kind:Deployment version:v1]]" {
		t.Errorf("v2 Deployment = %v", dep["x-kubernetes-group-version-kind"])
	}
	containers := defs["io.k8s.api.core.v1.PodSpec"].(map[string]any)["properties"].(map[string]any)["containers"].(map[string]any)
	if containers["x-kubernetes-patch-merge-key"] != "name" || containers["x-kubernetes-patch-strategy"] != "merge" {
		t.Errorf("PodSpec.containers = %v", containers)
	}
	patch := v2["paths"].(map[string]any)["/apis/apps/v1/namespaces/{namespace}/deployments/{name}"].(map[string]any)["patch"].(map[string]any)
	if !strings.Contains(fmt.Sprint(patch["parameters"]), "fieldValidation") || fmt.Sprint(patch["x-kubernetes-action"]) != "patch" {
		t.Errorf("v2 deployment PATCH = %v", patch)
	}
	pb := rc.want(rc.do("GET", "/openapi/v2", "", "application/com.github.proto-openapi.spec.v2@v1.0+protobuf", nil), 200, "v2 protobuf")
	if pb.header.Get("Content-Type") != "application/com.github.proto-openapi.spec.v2.v1.0+protobuf" || len(pb.body) < 1000 {
		t.Errorf("v2 protobuf: %q, %d bytes", pb.header.Get("Content-Type"), len(pb.body))
	}
	v3 := decodeJSON[map[string]map[string]map[string]string](t, rc.want(rc.do("GET", "/openapi/v3", "", "", nil), 200, "v3").body)
	url, ok := v3["paths"]["apis/apps/v1"]["serverRelativeURL"]
	if !ok || !strings.HasPrefix(url, "/openapi/v3/apis/apps/v1?hash=") || v3["paths"]["api/v1"]["serverRelativeURL"] == "" {
		t.Fatalf("v3 discovery = %v", v3)
	}
	doc := decodeJSON[map[string]any](t, rc.want(rc.do("GET", url, "", "application/json", nil), 200, "v3 apps/v1").body)
	schemas := doc["components"].(map[string]any)["schemas"].(map[string]any)
	if d, ok := schemas["io.k8s.api.apps.v1.Deployment"].(map[string]any); !ok || d["x-kubernetes-group-version-kind"] == nil {
		t.Errorf("v3 Deployment = %v", d)
	}
	if _, ok := doc["paths"].(map[string]any)["/apis/apps/v1/namespaces/{namespace}/deployments/{name}/scale"]; !ok {
		t.Errorf("v3 apps/v1 has no scale path")
	}
}

// TestRESTServerSideApply: an apply creates the object, records its manager's fields,
// refuses to take another manager's field (409, a cause per field) unless forced, keeps
// fields another manager owns, and tracks an update once the object has managedFields.
// wantApplyConflict checks st is an apply's conflict over one field, with manager.
func wantApplyConflict(t *testing.T, st metav1.Status, field, manager string) {
	t.Helper()
	if st.Reason != metav1.StatusReasonConflict || st.Details == nil || len(st.Details.Causes) != 1 ||
		st.Details.Causes[0].Type != metav1.CauseTypeFieldManagerConflict || st.Details.Causes[0].Field != field ||
		!strings.Contains(st.Details.Causes[0].Message, fmt.Sprintf("conflict with %q", manager)) {
		t.Fatalf("conflict = %+v", st)
	}
}

func TestRESTServerSideApply(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	const path = "/api/v1/namespaces/default/configmaps/cfg"
	const applyType = "application/apply-patch+yaml"
	cm := func(data string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cfg\ndata:\n" + data
	}
	owners := func(obj corev1.ConfigMap) map[string]string {
		out := map[string]string{}
		for _, e := range obj.ManagedFields {
			out[e.Manager] = string(e.Operation) + " " + string(e.FieldsV1.Raw)
		}
		return out
	}

	rc.want(rc.do("PATCH", path, applyType, "", cm("  a: \"1\"\n")), 400, "an apply without fieldManager")
	got := decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("PATCH", path+"?fieldManager=alice", applyType, "", cm("  a: \"1\"\n  b: \"1\"\n")), 201, "apply creates").body)
	if got.Data["a"] != "1" || got.Data["b"] != "1" || !strings.Contains(owners(got)["alice"], `Apply {"f:data":{"f:a":{},"f:b":{}}}`) {
		t.Fatalf("created by apply: %+v %v", got.Data, owners(got))
	}
	// Bob's apply of a different a conflicts with alice's.
	wantApplyConflict(t, rc.want(rc.do("PATCH", path+"?fieldManager=bob", applyType, "", cm("  a: \"2\"\n")), 409, "bob's conflicting apply").status(), ".data.a", "alice")
	// Forced, bob takes a; alice's next apply without a leaves it (bob's), drops nothing else.
	got = decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("PATCH", path+"?fieldManager=bob&force=true", applyType, "", cm("  a: \"2\"\n")), 200, "bob forces").body)
	if got.Data["a"] != "2" || strings.Contains(owners(got)["alice"], "f:a") || !strings.Contains(owners(got)["bob"], `"f:a"`) {
		t.Fatalf("after bob's forced apply: %+v %v", got.Data, owners(got))
	}
	got = decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("PATCH", path+"?fieldManager=alice", applyType, "", cm("  b: \"1\"\n  c: \"1\"\n")), 200, "alice again").body)
	if got.Data["a"] != "2" || got.Data["c"] != "1" {
		t.Fatalf("alice's second apply: %+v", got.Data)
	}
	// An applied field alice no longer applies goes: c.
	got = decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("PATCH", path+"?fieldManager=alice", applyType, "", cm("  b: \"1\"\n")), 200, "alice drops c").body)
	if _, ok := got.Data["c"]; ok || got.Data["b"] != "1" {
		t.Fatalf("alice dropped c: %+v", got.Data)
	}
	// A merge patch by carol is tracked as an Update; alice's apply of b then conflicts.
	got = decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("PATCH", path+"?fieldManager=carol", "application/merge-patch+json", "", `{"data":{"b":"3"}}`), 200, "carol's patch").body)
	if !strings.Contains(owners(got)["carol"], `Update {"f:data":{"f:b":{}}}`) {
		t.Fatalf("carol's update untracked: %v", owners(got))
	}
	st := rc.want(rc.do("PATCH", path+"?fieldManager=alice", applyType, "", cm("  b: \"4\"\n")), 409, "alice against carol").status()
	if len(st.Details.Causes) != 1 || !strings.Contains(st.Details.Causes[0].Message, `conflict with "carol" using v1`) {
		t.Fatalf("conflict with carol = %+v", st)
	}
	rc.want(rc.do("PATCH", path+"?fieldManager=alice&dryRun=All", applyType, "", cm("  b: \"3\"\n")), 200, "a dry-run apply")
	// A key applied twice: refused under fieldValidation Strict, at its line, as
	// Kubernetes' apply patcher; a warning under Warn, the default.
	dup := cm("  e: \"3\"\n  e: \"5\"\n")
	r := rc.want(rc.do("PATCH", path+"?fieldManager=alice&dryRun=All&fieldValidation=Strict", applyType, "", dup), 400, "a strict apply of a duplicate key")
	if !strings.Contains(string(r.body), `line 7: key \"e\" already set in map`) {
		t.Errorf("strict duplicate apply: %s", r.body)
	}
	r = rc.want(rc.do("PATCH", path+"?fieldManager=alice&dryRun=All", applyType, "", dup), 200, "an apply of a duplicate key")
	if w := r.header.Get("Warning"); !strings.Contains(w, `key \"e\" already set in map`) {
		t.Errorf("duplicate apply's warning %q", w)
	}
	// A gRPC update is tracked too, under its client's user agent.
	conn, err := client.Dial(c.Addrs(), client.Options{UserAgent: "tester/v1"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cur, err := client.For[*corev1.ConfigMap](conn).Get(testCtx(t), "default", "cfg")
	if err != nil {
		t.Fatal(err)
	}
	cur.Data["d"] = "1"
	cur.ManagedFields = nil // as a client that never read them: the live ones are kept
	if _, err := client.For[*corev1.ConfigMap](conn).Update(testCtx(t), cur); err != nil {
		t.Fatal(err)
	}
	got = decodeJSON[corev1.ConfigMap](t, rc.want(rc.do("GET", path, "", "", nil), 200, "get").body)
	if !strings.Contains(owners(got)["tester"], `Update {"f:data":{"f:d":{}}}`) || !strings.Contains(owners(got)["carol"], `"f:b"`) {
		t.Fatalf("gRPC update tracked: %v", owners(got))
	}

	// A Deployment applied twice, the second changing the image, and its status untouched.
	dep := `apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  replicas: 1
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: %s}]
`
	dpath := "/apis/apps/v1/namespaces/default/deployments/web?fieldManager=kubectl"
	rc.want(rc.do("PATCH", dpath, applyType, "", fmt.Sprintf(dep, "nginx:1.25")), 201, "apply a deployment")
	d := decodeJSON[appsv1.Deployment](t, rc.want(rc.do("PATCH", dpath, applyType, "", fmt.Sprintf(dep, "nginx:1.27")), 200, "apply it again").body)
	if d.Spec.Template.Spec.Containers[0].Image != "nginx:1.27" || d.Generation != 2 {
		t.Fatalf("re-applied deployment: %+v generation %d", d.Spec.Template.Spec.Containers, d.Generation)
	}
	// Unknown fields are refused with their path.
	st = rc.want(rc.do("PATCH", dpath, applyType, "", fmt.Sprintf(dep, "nginx:1.27")+"  bogus: 1\n"), 422, "an unknown field").status()
	if !strings.Contains(st.Message, "bogus") {
		t.Errorf("unknown field: %+v", st)
	}
	rc.want(rc.do("PATCH", dpath+"&force=true", "application/merge-patch+json", "", `{}`), 422, "force on a merge patch")
}

// Services over REST get what the API server allocates, as over gRPC: a cluster IP on
// create, kept by an update that leaves it out, and a node port when an apply makes the
// Service a NodePort one.
func TestRESTServiceAllocation(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	base := "/api/v1/namespaces/default/services"
	body := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web"},"spec":{"selector":{"app":"web"},"ports":[{"port":80}]}}`
	created := decodeJSON[corev1.Service](t, rc.want(rc.do("POST", base, "application/json", "", body), 201, "create").body)
	if created.Spec.ClusterIP == "" || len(created.Spec.ClusterIPs) != 1 || created.Spec.ClusterIPs[0] != created.Spec.ClusterIP {
		t.Fatalf("created spec = %+v", created.Spec)
	}
	put := `{"apiVersion":"v1","kind":"Service","metadata":{"name":"web","resourceVersion":"` + created.ResourceVersion +
		`"},"spec":{"selector":{"app":"web2"},"ports":[{"port":80}]}}`
	updated := decodeJSON[corev1.Service](t, rc.want(rc.do("PUT", base+"/web", "application/json", "", put), 200, "update").body)
	if updated.Spec.ClusterIP != created.Spec.ClusterIP || updated.Spec.Selector["app"] != "web2" {
		t.Errorf("updated spec = %+v, want cluster IP %s kept", updated.Spec, created.Spec.ClusterIP)
	}
	apply := "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {type: NodePort, selector: {app: web2}, ports: [{port: 80}]}\n"
	applied := decodeJSON[corev1.Service](t, rc.want(rc.do("PATCH", base+"/web?fieldManager=t&force=true", "application/apply-patch+yaml", "", apply), 200, "apply").body)
	if applied.Spec.Type != corev1.ServiceTypeNodePort || len(applied.Spec.Ports) != 1 || applied.Spec.Ports[0].NodePort == 0 ||
		applied.Spec.ClusterIP != created.Spec.ClusterIP {
		t.Errorf("applied spec = %+v, want a node port and cluster IP %s", applied.Spec, created.Spec.ClusterIP)
	}
}

// TestRESTDeleteCollection: DELETE on a collection deletes what a list with its
// labelSelector, fieldSelector and limit finds (nothing with dryRun=All) and answers as
// kube-apiserver does, with the list of the objects it deleted.
func TestRESTDeleteCollection(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), false)
	base := "/api/v1/namespaces/default/configmaps"
	for name, tier := range map[string]string{"web1": "web", "web2": "web", "db1": "db", "db2": "db", "cache": "cache"} {
		rc.want(rc.do("POST", base, "application/json", "", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{"tier": tier}}}), 201, "create "+name)
	}
	names := func(l corev1.ConfigMapList) string {
		var n []string
		for _, it := range l.Items {
			n = append(n, it.Name)
		}
		return strings.Join(n, ",")
	}
	left := func() string {
		return names(decodeJSON[corev1.ConfigMapList](t, rc.want(rc.do("GET", base, "", "", nil), 200, "list").body))
	}
	deleted := func(query, what string) corev1.ConfigMapList {
		t.Helper()
		r := rc.want(rc.do("DELETE", base+"?"+query, "", "", nil), 200, what)
		l := decodeJSON[corev1.ConfigMapList](t, r.body)
		if l.Kind != "ConfigMapList" || l.APIVersion != "v1" || l.ResourceVersion == "" {
			t.Errorf("%s: answered %s", what, r.body)
		}
		return l
	}

	if l := deleted("labelSelector=tier%3Dweb&dryRun=All", "dry run"); names(l) != "web1,web2" {
		t.Errorf("dry-run deletecollection tier=web answered %s", names(l))
	}
	if got := left(); got != "cache,db1,db2,web1,web2" {
		t.Errorf("after a dry run: %s", got)
	}
	if l := deleted("labelSelector=tier%3Dweb", "tier=web"); names(l) != "web1,web2" {
		t.Errorf("deletecollection tier=web answered %s", names(l))
	}
	if got := left(); got != "cache,db1,db2" {
		t.Errorf("after deletecollection tier=web: %s", got)
	}
	if l := deleted("fieldSelector=metadata.name%3Ddb1", "metadata.name=db1"); names(l) != "db1" {
		t.Errorf("deletecollection metadata.name=db1 answered %s", names(l))
	}
	// With limit, one page, and the token for the rest.
	if l := deleted("limit=1", "limit=1"); names(l) != "cache" || l.Continue == "" {
		t.Errorf("deletecollection limit=1 answered %s, continue %q", names(l), l.Continue)
	}
	if got := left(); got != "db2" {
		t.Errorf("after deletecollection limit=1: %s", got)
	}
	// The client's view: a Table of what was deleted.
	r := rc.want(rc.do("DELETE", base, "", "application/json;as=Table;v=v1;g=meta.k8s.io", nil), 200, "as Table")
	if tb := decodeJSON[metav1.Table](t, r.body); tb.Kind != "Table" || len(tb.Rows) != 1 || tb.Rows[0].Cells[0] != "db2" {
		t.Errorf("deletecollection as Table: %s", r.body)
	}
	if got := left(); got != "" {
		t.Errorf("after deleting all: %s", got)
	}
	// Bad options are refused before anything is deleted.
	rc.want(rc.do("POST", base, "application/json", "", &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: "kept"}}), 201, "create kept")
	for q, code := range map[string]int{"labelSelector=a%3D%3D%3Db": 400, "fieldSelector=spec.nope%3Dx": 400, "dryRun=Some": 422, "limit=x": 400} {
		rc.want(rc.do("DELETE", base+"?"+q, "", "", nil), code, "deletecollection "+q)
	}
	if got := left(); got != "kept" {
		t.Errorf("after refused deletecollections: %s", got)
	}
}

// TestRESTEndpoints: core/v1 Endpoints through the REST API, as Kubernetes' conformance
// test "should test the lifecycle of an Endpoint" drives them: create, list across
// namespaces by label, update, strategic merge patch (subsets replaced), the Table's
// columns, validation in Kubernetes' words, and deletecollection by label.
func TestRESTEndpoints(t *testing.T) {
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	base := "/api/v1/namespaces/default/endpoints"
	ep := &corev1.Endpoints{ObjectMeta: metav1.ObjectMeta{Name: "testservice", Labels: map[string]string{"test-endpoint-static": "true"}},
		Subsets: []corev1.EndpointSubset{{Addresses: []corev1.EndpointAddress{{IP: "10.0.0.24"}},
			Ports: []corev1.EndpointPort{{Name: "http", Port: 80}}}}}
	kinds.SetTypeMeta(ep)
	created := decodeJSON[corev1.Endpoints](t, rc.want(rc.do("POST", base, "application/json", "", ep), 201, "create").body)
	if created.Kind != "Endpoints" || created.APIVersion != "v1" || created.Subsets[0].Ports[0].Protocol != corev1.ProtocolTCP {
		t.Fatalf("created = %+v", created)
	}
	list := decodeJSON[corev1.EndpointsList](t, rc.want(rc.do("GET", "/api/v1/endpoints?labelSelector=test-endpoint-static%3Dtrue", "", "", nil), 200, "list").body)
	if list.Kind != "EndpointsList" || len(list.Items) != 1 || list.Items[0].Name != "testservice" {
		t.Fatalf("list = %+v", list)
	}
	created.Labels["test-service"] = "updated"
	updated := decodeJSON[corev1.Endpoints](t, rc.want(rc.do("PUT", base+"/testservice", "application/json", "", created), 200, "update").body)
	if updated.Labels["test-service"] != "updated" {
		t.Errorf("updated labels %v", updated.Labels)
	}
	patched := decodeJSON[corev1.Endpoints](t, rc.want(rc.do("PATCH", base+"/testservice", "application/strategic-merge-patch+json", "",
		`{"metadata":{"labels":{"test-service":"patched"}},"subsets":[{"addresses":[{"ip":"10.0.0.25"}],"ports":[{"name":"http-test","port":8080}]}]}`), 200, "patch").body)
	if ss := patched.Subsets; patched.Labels["test-service"] != "patched" || len(ss) != 1 || len(ss[0].Addresses) != 1 || ss[0].Addresses[0].IP != "10.0.0.25" ||
		ss[0].Ports[0].Port != 8080 {
		t.Errorf("patched = %+v %+v", patched.Labels, patched.Subsets)
	}
	table := decodeJSON[metav1.Table](t, rc.want(rc.do("GET", base+"?fieldSelector=metadata.name%3Dtestservice", "", "application/json;as=Table;g=meta.k8s.io;v=v1", nil), 200, "table").body)
	if len(table.ColumnDefinitions) != 3 || table.ColumnDefinitions[1].Name != "Endpoints" || len(table.Rows) != 1 || table.Rows[0].Cells[1] != "10.0.0.25:8080" {
		t.Errorf("table = %+v", table)
	}
	bad := ep.DeepCopy()
	bad.Name, bad.Subsets[0].Addresses[0].IP = "bad", "127.0.0.1"
	st := rc.want(rc.do("POST", base, "application/json", "", bad), 422, "invalid").status()
	if len(st.Details.Causes) != 1 || st.Details.Causes[0].Field != "subsets[0].addresses[0].ip" || !strings.Contains(st.Message, "may not be in the loopback range") {
		t.Errorf("invalid = %+v", st)
	}
	rc.want(rc.do("DELETE", base+"?labelSelector=test-endpoint-static%3Dtrue", "", "", nil), 200, "deletecollection")
	rc.want(rc.do("GET", base+"/testservice", "", "", nil), 404, "deleted")
	// The API servers' own, as Kubernetes' endpoint reconciler writes them (not mirrored:
	// they write the slice themselves).
	waitfor.Condition(t, 30*time.Second, "endpoints default/kubernetes", func() (bool, string) {
		r := rc.do("GET", base+"/kubernetes", "", "", nil)
		if r.code != 200 {
			return false, string(r.body)
		}
		k := decodeJSON[corev1.Endpoints](t, r.body)
		return k.Labels["endpointslice.kubernetes.io/skip-mirror"] == "true", fmt.Sprint(k.Labels)
	})
	// They list the API server, on loopback here, at the host's address (as
	// kube-apiserver advertises itself), the Endpoints and the EndpointSlice alike
	// (Kubernetes' "should have Endpoints and EndpointSlices pointing to API Server").
	var want []string
	if ip, err := utilnet.ResolveBindAddress(net.ParseIP("127.0.0.1")); err == nil && ip.To4() != nil {
		want = []string{ip.String()}
	} else {
		t.Logf("this machine has no address but loopback (%v): the kubernetes Service has no endpoints", err)
	}
	_, port, _ := net.SplitHostPort(c.Addr(0))
	waitfor.Condition(t, 30*time.Second, "endpoints and endpointslice default/kubernetes list the API server", func() (bool, string) {
		ep := decodeJSON[corev1.Endpoints](t, rc.want(rc.do("GET", base+"/kubernetes", "", "", nil), 200, "kubernetes endpoints").body)
		sl := decodeJSON[discoveryv1.EndpointSliceList](t, rc.want(rc.do("GET",
			"/apis/discovery.k8s.io/v1/namespaces/default/endpointslices?labelSelector=kubernetes.io%2Fservice-name%3Dkubernetes", "", "", nil), 200, "kubernetes endpointslices").body)
		var epAddrs, epPorts, sliceAddrs, slicePorts []string
		for _, ss := range ep.Subsets {
			for _, a := range ss.Addresses {
				epAddrs = append(epAddrs, a.IP)
			}
			for _, p := range ss.Ports {
				epPorts = append(epPorts, fmt.Sprint(p.Port))
			}
		}
		for _, es := range sl.Items {
			for _, e := range es.Endpoints {
				sliceAddrs = append(sliceAddrs, e.Addresses...)
			}
			for _, p := range es.Ports {
				slicePorts = append(slicePorts, fmt.Sprint(*p.Port))
			}
		}
		got := fmt.Sprintf("endpoints %v %v, slices %v %v", epAddrs, epPorts, sliceAddrs, slicePorts)
		if len(want) == 0 {
			return len(epAddrs) == 0 && len(sliceAddrs) == 0, got
		}
		return fmt.Sprint(epAddrs, epPorts, sliceAddrs, slicePorts) == fmt.Sprint(want, []string{port}, want, []string{port}), got
	})
}
