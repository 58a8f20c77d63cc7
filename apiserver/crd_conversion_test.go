package apiserver_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/kinds"
	apiv1 "github.com/skiffhq/skiff/proto/api/v1"
	"github.com/skiffhq/skiff/test/apicluster"
	"github.com/skiffhq/skiff/test/crdconversion"
	"github.com/skiffhq/skiff/test/waitfor"
)

// TestRESTCustomResourceConversionWebhook: what Kubernetes' conformance tests
// "CustomResourceConversionWebhook ... should be able to convert from CR v1 to CR v2"
// and "... a non homogeneous list of CRs" do, through the REST API: a CR created in v1
// is read in v2; one created in v2 is stored in v1; once the storage version is v2, a
// list holds objects stored in either version, converted to the version asked for (one
// review for the list, and for a watch's batch of events); watches and patches convert
// too; a failing webhook fails the read in Kubernetes' words.
func TestRESTCustomResourceConversionWebhook(t *testing.T) {
	var failing atomic.Bool
	cs := crdconversion.Serve(t, map[string]crdconversion.Handler{
		"/crdconvert": func(req *apiextensionsv1.ConversionRequest, objs []map[string]any) *apiextensionsv1.ConversionResponse {
			if failing.Load() {
				return &apiextensionsv1.ConversionResponse{UID: req.UID, Result: metav1.Status{Status: metav1.StatusFailure, Message: "the converter is down"}}
			}
			for _, o := range objs {
				crdconversion.ConvertHostPort(o, req.DesiredAPIVersion)
			}
			return nil
		},
	})
	c := apicluster.Start(t, 1, apicluster.Options{})
	rc := newREST(t, c.Addr(0), true)
	crds := "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
	url := cs.Server.URL + "/crdconvert"
	schema := apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: new(true)}}
	crd := &apiextensionsv1.CustomResourceDefinition{TypeMeta: metav1.TypeMeta{APIVersion: "apiextensions.k8s.io/v1", Kind: "CustomResourceDefinition"},
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-tests.stable.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "stable.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "e2e-tests", Singular: "e2e-test", Kind: "E2eTest", ListKind: "E2eTestList"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true, Schema: &schema},
				{Name: "v2", Served: true, Schema: &schema}},
			Conversion: &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{ConversionReviewVersions: []string{"v1", "v1beta1"},
					ClientConfig: &apiextensionsv1.WebhookClientConfig{URL: &url, CABundle: cs.CABundle}}}}}
	rc.want(rc.do("POST", crds, "application/json", "", crd), 201, "create CRD")
	v1 := "/apis/stable.example.com/v1/namespaces/default/e2e-tests"
	v2 := "/apis/stable.example.com/v2/namespaces/default/e2e-tests"
	waitfor.Condition(t, 30*time.Second, "e2e-tests served", func() (bool, string) {
		r := rc.do("GET", v2, "", "", nil)
		return r.code == 200, fmt.Sprintf("HTTP %d %s", r.code, r.body)
	})
	type object map[string]any
	decode := func(r reply) object {
		t.Helper()
		return decodeJSON[object](t, r.body)
	}
	wantV1 := func(what string, o object) {
		t.Helper()
		if o["apiVersion"] != "stable.example.com/v1" || o["hostPort"] != "localhost:8080" || o["host"] != nil || o["port"] != nil {
			t.Errorf("%s = %v, want v1 with hostPort", what, o)
		}
	}
	wantV2 := func(what string, o object) {
		t.Helper()
		if o["apiVersion"] != "stable.example.com/v2" || o["host"] != "localhost" || o["port"] != "8080" || o["hostPort"] != nil {
			t.Errorf("%s = %v, want v2 with host and port", what, o)
		}
	}
	cr := func(version, name string) string {
		if version == "v2" {
			return fmt.Sprintf(`{"apiVersion":"stable.example.com/v2","kind":"E2eTest","metadata":{"name":%q},"host":"localhost","port":"8080"}`, name)
		}
		return fmt.Sprintf(`{"apiVersion":"stable.example.com/v1","kind":"E2eTest","metadata":{"name":%q},"hostPort":"localhost:8080"}`, name)
	}

	// Created in v1, read in v2.
	wantV1("created in v1", decode(rc.want(rc.do("POST", v1, "application/json", "", cr("v1", "cr-instance-1")), 201, "create in v1")))
	rc.want(rc.do("POST", v1, "application/json", "", cr("v1", "cr-instance-0")), 201, "create another in v1")
	wantV2("read in v2", decode(rc.want(rc.do("GET", v2+"/cr-instance-1", "", "", nil), 200, "get in v2")))
	// Created in v2: stored in v1, answered in v2; deleted through v2.
	wantV2("created in v2", decode(rc.want(rc.do("POST", v2, "application/json", "", cr("v2", "stub")), 201, "create in v2")))
	wantV1("v2's create read in v1", decode(rc.want(rc.do("GET", v1+"/stub", "", "", nil), 200, "get stub in v1")))
	rc.want(rc.do("DELETE", v2+"/stub", "", "", nil), 200, "delete in v2")

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	before := len(cs.Requests())
	events := rc.watch(ctx, v2+"?watch=1")
	var seen []string
	next := func() {
		t.Helper()
		select {
		case ev := <-events:
			var o object
			json.Unmarshal(ev.Raw, &o)
			seen = append(seen, fmt.Sprintf("%s %s %v %v", ev.Type, ev.Object.Name, o["apiVersion"], o["host"]))
		case <-ctx.Done():
			t.Fatalf("watch: saw only %v", seen)
		}
	}
	// The watch's initial events: the two objects converted in one review.
	next()
	next()
	if reqs := cs.Requests()[before:]; len(reqs) != 1 || len(reqs[0].Objects) != 2 {
		t.Errorf("a watch's initial events: %d reviews, want one of 2 objects", len(reqs))
	}

	// The storage version becomes v2; a CR created in v1 is stored in v2.
	cur := decodeJSON[apiextensionsv1.CustomResourceDefinition](t, rc.want(rc.do("GET", crds+"/"+crd.Name, "", "", nil), 200, "get CRD").body)
	cur.Spec.Versions[0].Storage, cur.Spec.Versions[1].Storage = false, true
	rc.want(rc.do("PUT", crds+"/"+crd.Name, "application/json", "", &cur), 200, "storage version v2")
	waitfor.Condition(t, 30*time.Second, "v2 the storage version", func() (bool, string) {
		c := decodeJSON[apiextensionsv1.CustomResourceDefinition](t, rc.want(rc.do("GET", crds+"/"+crd.Name, "", "", nil), 200, "get CRD").body)
		return strings.Join(c.Status.StoredVersions, ",") == "v1,v2", fmt.Sprint(c.Status.StoredVersions)
	})
	// Each probe created shows on the v2 watch, created and then deleted: one, or more
	// when the first creates came before the switch reached the write path.
	probes := 0
	waitfor.Condition(t, 30*time.Second, "a v1 create stored in v2", func() (bool, string) {
		rc.do("DELETE", v1+"/probe", "", "", nil)
		before := len(cs.Requests())
		r := rc.do("POST", v1, "application/json", "", cr("v1", "probe"))
		if r.code == 201 {
			probes++
		}
		// Stored in v2: the create converted v1 to v2, and back for the answer.
		return r.code == 201 && len(cs.Requests()) == before+2, fmt.Sprintf("HTTP %d, %d reviews", r.code, len(cs.Requests())-before)
	})
	rc.want(rc.do("DELETE", v1+"/probe", "", "", nil), 200, "delete probe")
	wantV1("created in v1, stored in v2", decode(rc.want(rc.do("POST", v1, "application/json", "", cr("v1", "cr-instance-2")), 201, "create cr-instance-2")))

	// A list of objects stored in either version, in either version.
	type list struct {
		APIVersion string `json:"apiVersion"`
		Items      []object
	}
	for _, version := range []string{"v1", "v2"} {
		before = len(cs.Requests())
		l := decodeJSON[list](t, rc.want(rc.do("GET", "/apis/stable.example.com/"+version+"/namespaces/default/e2e-tests", "", "", nil), 200, "list").body)
		if len(l.Items) != 3 {
			t.Fatalf("list in %s = %v", version, l.Items)
		}
		for _, it := range l.Items {
			if version == "v1" {
				wantV1("listed in v1", it)
			} else {
				wantV2("listed in v2", it)
			}
		}
		// One review, of the objects stored in the other version: cr-instance-2 (v2) for
		// v1, cr-instance-0 and -1 (v1) for v2.
		if reqs, n := cs.Requests()[before:], map[string]int{"v1": 1, "v2": 2}[version]; len(reqs) != 1 || len(reqs[0].Objects) != n {
			t.Errorf("list in %s: %d reviews, want one of %d objects", version, len(reqs), n)
		}
	}
	// The gRPC API serves the storage version: every object in it, whatever it was
	// stored in.
	grpc, _ := dial(t, c.Addr(0))
	gl, err := grpc.List(ctx, &apiv1.ListRequest{Kind: "e2e-tests.stable.example.com"})
	if err != nil || len(gl.Items) != 3 {
		t.Fatalf("gRPC list = %v, %v", gl, err)
	}
	for _, it := range gl.Items {
		obj, err := kinds.Unwrap(it)
		if err != nil {
			t.Errorf("gRPC list: %v", err)
			continue
		}
		if cr := obj.(*kinds.Custom); cr.APIVersion != "stable.example.com/v2" || cr.Content["host"] != "localhost" {
			t.Errorf("gRPC list: %s %s %v", cr.Name, cr.APIVersion, cr.Content)
		}
	}

	// Patched through v1: the patch applies to the v1 form, the object is stored in v2.
	p := decode(rc.want(rc.do("PATCH", v1+"/cr-instance-1", "application/merge-patch+json", "", `{"hostPort":"example.com:443"}`), 200, "patch in v1"))
	if p["hostPort"] != "example.com:443" || p["apiVersion"] != "stable.example.com/v1" {
		t.Errorf("patched = %v", p)
	}
	if g := decode(rc.want(rc.do("GET", v2+"/cr-instance-1", "", "", nil), 200, "get patched in v2")); g["host"] != "example.com" || g["port"] != "443" {
		t.Errorf("patched, in v2 = %v", g)
	}

	// The v2 watch saw each change in v2.
	want := []string{"ADDED cr-instance-0 stable.example.com/v2 localhost", "ADDED cr-instance-1 stable.example.com/v2 localhost"}
	for range probes {
		want = append(want, "ADDED probe stable.example.com/v2 localhost", "DELETED probe stable.example.com/v2 localhost")
	}
	want = append(want, "ADDED cr-instance-2 stable.example.com/v2 localhost", "MODIFIED cr-instance-1 stable.example.com/v2 example.com")
	for len(seen) < len(want) {
		next()
	}
	if strings.Join(seen, ",") != strings.Join(want, ",") {
		t.Errorf("watch = %v\nwant %v", seen, want)
	}

	// A webhook that fails: reads needing it fail in Kubernetes' words; those that do
	// not need it (v2, the storage version, of an object stored in v2) do not.
	failing.Store(true)
	st := rc.want(rc.do("GET", v1+"/cr-instance-1", "", "", nil), 500, "get through a failing webhook").status()
	if st.Reason != metav1.StatusReasonInternalError ||
		!strings.Contains(st.Message, "conversion webhook for stable.example.com/v2, Kind=E2eTest failed: the converter is down") {
		t.Errorf("failed conversion = %+v", st)
	}
	rc.want(rc.do("GET", v2+"/cr-instance-1", "", "", nil), 200, "get in the version stored")
}

// TestRESTNonHomogeneousListPruned: the conformance test "CustomResourceConversionWebhook
// ... should be able to convert a non homogeneous list of CRs" with its schemas (v1 names
// hostPort only, v2 host and port only: what a version's schema does not name is
// pruned): cr-instance-1 is written in v1 while v1 is the storage version,
// cr-instance-2 in v1 once it is v2; a list in either version holds both, each with its
// fields in that version. The list in v1 lacked hostPort on the object stored in v2
// ("HostPort not found.") while an object read in a version was pruned by the storage
// version's schema after its conversion.
func TestRESTNonHomogeneousListPruned(t *testing.T) {
	rc, v1, v2 := serveHostPortWebhook(t)
	crds := "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/e2e-tests.stable.example.com"
	cr := func(name string) string {
		return fmt.Sprintf(`{"apiVersion":"stable.example.com/v1","kind":"E2eTest","metadata":{"name":%q},"hostPort":"localhost:8080"}`, name)
	}
	rc.want(rc.do("POST", v1, "application/json", "", cr("cr-instance-1")), 201, "create cr-instance-1 in v1")
	cur := decodeJSON[apiextensionsv1.CustomResourceDefinition](t, rc.want(rc.do("GET", crds, "", "", nil), 200, "get CRD").body)
	cur.Spec.Versions[0].Storage, cur.Spec.Versions[1].Storage = false, true
	rc.want(rc.do("PUT", crds, "application/json", "", &cur), 200, "storage version v2")
	waitfor.Condition(t, 30*time.Second, "v2 the storage version", func() (bool, string) {
		c := decodeJSON[apiextensionsv1.CustomResourceDefinition](t, rc.want(rc.do("GET", crds, "", "", nil), 200, "get CRD").body)
		return strings.Join(c.Status.StoredVersions, ",") == "v1,v2", fmt.Sprint(c.Status.StoredVersions)
	})
	// The CRD controller serves the new storage version before it writes the status
	// (one API server): cr-instance-2 is stored in v2.
	rc.want(rc.do("POST", v1, "application/json", "", cr("cr-instance-2")), 201, "create cr-instance-2 in v1")
	for _, version := range []string{"v1", "v2"} {
		path := map[string]string{"v1": v1, "v2": v2}[version]
		l := decodeJSON[struct{ Items []map[string]any }](t, rc.want(rc.do("GET", path, "", "", nil), 200, "list in "+version).body)
		if len(l.Items) != 2 {
			t.Fatalf("list in %s = %v, want cr-instance-1 and -2", version, l.Items)
		}
		for _, o := range l.Items {
			ok := o["apiVersion"] == "stable.example.com/v1" && o["hostPort"] == "localhost:8080" && o["host"] == nil && o["port"] == nil
			if version == "v2" {
				ok = o["apiVersion"] == "stable.example.com/v2" && o["host"] == "localhost" && o["port"] == "8080" && o["hostPort"] == nil
			}
			if !ok {
				t.Errorf("listed in %s: %v", version, o)
			}
		}
	}
}
