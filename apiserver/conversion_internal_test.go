package apiserver

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	k8stypes "k8s.io/apimachinery/pkg/types"

	"github.com/skiffhq/skiff/kinds"
	"github.com/skiffhq/skiff/test/crdconversion"
)

// hostPortCRD is the conformance test's CRD: v1 stored, v2 served, converted by the
// webhook at url.
func hostPortCRD(url string, caBundle []byte) *apiextensionsv1.CustomResourceDefinition {
	preserve := true
	schema := &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: &preserve}}
	return &apiextensionsv1.CustomResourceDefinition{ObjectMeta: metav1.ObjectMeta{Name: "e2e-tests.stable.example.com"},
		Spec: apiextensionsv1.CustomResourceDefinitionSpec{Group: "stable.example.com", Scope: apiextensionsv1.NamespaceScoped,
			Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "e2e-tests", Singular: "e2e-test", Kind: "E2eTest"},
			Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{Name: "v1", Served: true, Storage: true, Schema: schema},
				{Name: "v2", Served: true, Schema: schema}},
			Conversion: &apiextensionsv1.CustomResourceConversion{Strategy: apiextensionsv1.WebhookConverter,
				Webhook: &apiextensionsv1.WebhookConversion{ConversionReviewVersions: []string{"v1", "v1beta1"},
					ClientConfig: &apiextensionsv1.WebhookClientConfig{URL: &url, CABundle: caBundle}}}},
		Status: apiextensionsv1.CustomResourceDefinitionStatus{Conditions: []apiextensionsv1.CustomResourceDefinitionCondition{
			{Type: apiextensionsv1.Established, Status: apiextensionsv1.ConditionTrue}}}}
}

// TestConversionWebhook: a CRD's conversion webhook converts its custom resources both
// ways, those of a list in one review, those already in the version asked for not at
// all; of their metadata only labels and annotations change; a webhook that fails, or
// answers wrongly, fails the conversion in Kubernetes' words.
func TestConversionWebhook(t *testing.T) {
	t.Cleanup(func() { kinds.SetCustom(nil) })
	ok := func(req *apiextensionsv1.ConversionRequest, objs []map[string]any) *apiextensionsv1.ConversionResponse {
		for _, o := range objs {
			crdconversion.ConvertHostPort(o, req.DesiredAPIVersion)
		}
		return nil
	}
	cs := crdconversion.Serve(t, map[string]crdconversion.Handler{
		"/convert": ok,
		"/relabel": func(req *apiextensionsv1.ConversionRequest, objs []map[string]any) *apiextensionsv1.ConversionResponse {
			for _, o := range objs {
				crdconversion.ConvertHostPort(o, req.DesiredAPIVersion)
				meta := o["metadata"].(map[string]any)
				meta["labels"] = map[string]any{"converted": "yes"}
				meta["generation"] = 42
				meta["finalizers"] = []any{"sneaky"}
			}
			return nil
		},
		"/fail": func(req *apiextensionsv1.ConversionRequest, _ []map[string]any) *apiextensionsv1.ConversionResponse {
			return &apiextensionsv1.ConversionResponse{UID: req.UID, Result: metav1.Status{Status: metav1.StatusFailure, Message: "cannot convert a v1 without hostPort"}}
		},
		"/wrong-version": func(req *apiextensionsv1.ConversionRequest, objs []map[string]any) *apiextensionsv1.ConversionResponse {
			for _, o := range objs {
				crdconversion.ConvertHostPort(o, req.DesiredAPIVersion)
				o["apiVersion"] = "stable.example.com/v3"
			}
			return nil
		},
		"/renamed": func(req *apiextensionsv1.ConversionRequest, objs []map[string]any) *apiextensionsv1.ConversionResponse {
			for _, o := range objs {
				crdconversion.ConvertHostPort(o, req.DesiredAPIVersion)
				o["metadata"].(map[string]any)["name"] = "other"
			}
			return nil
		},
		"/wrong-uid": func(req *apiextensionsv1.ConversionRequest, _ []map[string]any) *apiextensionsv1.ConversionResponse {
			return &apiextensionsv1.ConversionResponse{UID: "not-the-request", Result: metav1.Status{Status: metav1.StatusSuccess}}
		},
		"/too-few": func(req *apiextensionsv1.ConversionRequest, _ []map[string]any) *apiextensionsv1.ConversionResponse {
			return &apiextensionsv1.ConversionResponse{UID: req.UID, Result: metav1.Status{Status: metav1.StatusSuccess}}
		},
	})
	bundle := cs.CABundle
	wh := newWebhooks(nil, hclog.NewNullLogger())
	t.Cleanup(wh.close)
	serve := func(path string, caBundle []byte) (v1, v2 *kinds.Info) {
		kinds.ServeCRDs([]*apiextensionsv1.CustomResourceDefinition{hostPortCRD(cs.Server.URL+path, caBundle)}, wh.convertWebhook)
		v1, _ = kinds.ForGroupVersionKind("stable.example.com/v1", "E2eTest")
		v2, _ = kinds.ForGroupVersionKind("stable.example.com/v2", "E2eTest")
		return v1, v2
	}
	v1, v2 := serve("/convert", bundle)
	object := func(in *kinds.Info, name string, content map[string]any) *kinds.Custom {
		c := in.New().(*kinds.Custom)
		c.Namespace, c.Name, c.UID, c.Generation, c.Labels, c.Content = "default", name, k8stypes.UID("uid-"+name), 1, map[string]string{"app": name}, content
		return c
	}
	a := object(v1, "a", map[string]any{"hostPort": "localhost:8080"})
	b := object(v1, "b", map[string]any{"hostPort": "example.com:443"})
	already := object(v2, "c", map[string]any{"host": "h", "port": "1"})

	got, err := v2.ConvertCustom([]*kinds.Custom{a, already, b})
	if err != nil {
		t.Fatal(err)
	}
	if reqs := cs.Requests(); len(reqs) != 1 || len(reqs[0].Objects) != 2 || reqs[0].DesiredAPIVersion != "stable.example.com/v2" {
		t.Fatalf("the webhook got %d reviews (want one, of the two v1 objects)", len(reqs))
	}
	for i, want := range []string{"a localhost 8080", "c h 1", "b example.com 443"} {
		c := got[i]
		if s := fmt.Sprintf("%s %v %v", c.Name, c.Content["host"], c.Content["port"]); s != want || c.APIVersion != "stable.example.com/v2" ||
			kinds.Of(c) != v2 || c.Content["hostPort"] != nil || string(c.UID) != "uid-"+c.Name || c.Labels["app"] != c.Name {
			t.Errorf("converted %d = %+v, want %s", i, c, want)
		}
	}
	back, err := v1.ConvertCustom(got[:1])
	if err != nil || back[0].APIVersion != "stable.example.com/v1" || back[0].Content["hostPort"] != "localhost:8080" || back[0].Content["host"] != nil {
		t.Errorf("back to v1 = %+v, %v", back, err)
	}
	// Through the served version's conversion functions, as the REST API converts.
	stored, err := v2.ToStorage(got[0])
	if err != nil || stored.(*kinds.Custom).Content["hostPort"] != "localhost:8080" || kinds.Of(stored) != v1 {
		t.Errorf("ToStorage = %+v, %v", stored, err)
	}

	// Metadata: the webhook's labels, the original's everything else.
	_, v2 = serve("/relabel", bundle)
	got, err = v2.ConvertCustom([]*kinds.Custom{a})
	if err != nil || got[0].Labels["converted"] != "yes" || got[0].Labels["app"] != "" || got[0].Generation != 1 || len(got[0].Finalizers) != 0 {
		t.Errorf("relabelled = %+v, %v", got, err)
	}

	for _, tc := range []struct {
		path   string
		bundle []byte
		want   string
	}{
		{"/fail", bundle, "conversion webhook for stable.example.com/v1, Kind=E2eTest failed: cannot convert a v1 without hostPort"},
		{"/wrong-version", bundle, "conversion webhook for stable.example.com/v1, Kind=E2eTest returned invalid converted object at index 0: invalid groupVersion (expected stable.example.com/v2, received stable.example.com/v3)"},
		{"/renamed", bundle, "conversion webhook for stable.example.com/v1, Kind=E2eTest returned invalid converted object at index 0: must have the same name: a != other"},
		{"/wrong-uid", bundle, `conversion webhook for stable.example.com/v1, Kind=E2eTest failed: expected response.uid=`},
		{"/too-few", bundle, "conversion webhook for stable.example.com/v1, Kind=E2eTest returned 0 objects, expected 1"},
		{"/missing", bundle, "conversion webhook for stable.example.com/v1, Kind=E2eTest failed: failed to call webhook: the server responded with the status code 404"},
		{"/convert", nil, "conversion webhook for stable.example.com/v1, Kind=E2eTest failed: failed to call webhook: Post \"" + cs.Server.URL + "/convert?timeout=30s\": tls: failed to verify certificate"},
	} {
		_, v2 := serve(tc.path, tc.bundle)
		_, err := v2.ConvertCustom([]*kinds.Custom{a})
		if err == nil || !strings.HasPrefix(err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want %q", tc.path, err, tc.want)
		}
	}
	// A process given no converter (the controller-manager's) converts nothing.
	kinds.ServeCRDs([]*apiextensionsv1.CustomResourceDefinition{hostPortCRD(cs.Server.URL+"/convert", bundle)}, nil)
	v2, _ = kinds.ForGroupVersionKind("stable.example.com/v2", "E2eTest")
	if _, err := v2.ConvertCustom([]*kinds.Custom{a}); err == nil {
		t.Error("converted without a converter")
	}
}

// TestConversionReviewVersions: the review is sent in the first of the webhook's
// conversionReviewVersions that Skiff knows (v1beta1 or v1), as Kubernetes sends it; a
// v1beta1 answer's uid is not checked (Kubernetes never checked it), a v1 answer's is.
func TestConversionReviewVersions(t *testing.T) {
	t.Cleanup(func() { kinds.SetCustom(nil) })
	convert := func(req *apiextensionsv1.ConversionRequest, objs []map[string]any) *apiextensionsv1.ConversionResponse {
		for _, o := range objs {
			crdconversion.ConvertHostPort(o, req.DesiredAPIVersion)
		}
		return nil
	}
	cs := crdconversion.Serve(t, map[string]crdconversion.Handler{
		"/convert": convert,
		"/any-uid": func(req *apiextensionsv1.ConversionRequest, objs []map[string]any) *apiextensionsv1.ConversionResponse {
			resp := &apiextensionsv1.ConversionResponse{UID: "not-the-request", Result: metav1.Status{Status: metav1.StatusSuccess}}
			for _, o := range objs {
				crdconversion.ConvertHostPort(o, req.DesiredAPIVersion)
				b, _ := json.Marshal(o)
				resp.ConvertedObjects = append(resp.ConvertedObjects, runtime.RawExtension{Raw: b})
			}
			return resp
		},
	})
	wh := newWebhooks(nil, hclog.NewNullLogger())
	t.Cleanup(wh.close)
	for _, tc := range []struct {
		versions   []string
		path       string
		wantReview string // the review's apiVersion ("": none sent)
		wantErr    string // a prefix of the error ("": converted)
	}{
		{[]string{"v1beta1"}, "/convert", "apiextensions.k8s.io/v1beta1", ""},
		{[]string{"v1beta1", "v1"}, "/convert", "apiextensions.k8s.io/v1beta1", ""},
		{[]string{"v3", "v1", "v1beta1"}, "/convert", "apiextensions.k8s.io/v1", ""},
		{[]string{"v1beta1"}, "/any-uid", "apiextensions.k8s.io/v1beta1", ""},
		{[]string{"v1"}, "/any-uid", "apiextensions.k8s.io/v1", "conversion webhook for stable.example.com/v1, Kind=E2eTest failed: expected response.uid="},
		{[]string{"v3"}, "/convert", "", "conversion webhook for stable.example.com/v1, Kind=E2eTest failed: no supported conversion review versions"},
	} {
		crd := hostPortCRD(cs.Server.URL+tc.path, cs.CABundle)
		crd.Spec.Conversion.Webhook.ConversionReviewVersions = tc.versions
		kinds.ServeCRDs([]*apiextensionsv1.CustomResourceDefinition{crd}, wh.convertWebhook)
		v1, _ := kinds.ForGroupVersionKind("stable.example.com/v1", "E2eTest")
		v2, _ := kinds.ForGroupVersionKind("stable.example.com/v2", "E2eTest")
		a := v1.New().(*kinds.Custom)
		a.Namespace, a.Name, a.UID, a.Content = "default", "a", "uid-a", map[string]any{"hostPort": "localhost:8080"}
		sent := len(cs.ReviewVersions())
		got, err := v2.ConvertCustom([]*kinds.Custom{a})
		what := fmt.Sprintf("%v %s", tc.versions, tc.path)
		switch {
		case tc.wantErr == "" && err != nil:
			t.Errorf("%s: %v", what, err)
		case tc.wantErr == "" && (got[0].Content["host"] != "localhost" || got[0].APIVersion != "stable.example.com/v2"):
			t.Errorf("%s: converted %+v", what, got[0])
		case tc.wantErr != "" && (err == nil || !strings.HasPrefix(err.Error(), tc.wantErr)):
			t.Errorf("%s: error = %v, want %q", what, err, tc.wantErr)
		}
		reviews := cs.ReviewVersions()[sent:]
		if tc.wantReview == "" && len(reviews) != 0 || tc.wantReview != "" && (len(reviews) != 1 || reviews[0] != tc.wantReview) {
			t.Errorf("%s: reviews sent %v, want one of %s", what, reviews, tc.wantReview)
		}
	}
}
