// Package crdconversion serves CustomResourceDefinition conversion webhooks in tests:
// a TLS server answering ConversionReviews (apiextensions.k8s.io/v1 or v1beta1, the same
// on the wire, answered in the version asked) by handler, and the
// conversion of Kubernetes' conformance test's webhook (agnhost crd-conversion-webhook).
package crdconversion

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// ConvertHostPort converts obj as the conformance test's webhook does: v1's hostPort
// "HOST:PORT" is v2's host and port.
func ConvertHostPort(obj map[string]any, to string) {
	from, _ := obj["apiVersion"].(string)
	switch {
	case strings.HasSuffix(from, "/v1") && strings.HasSuffix(to, "/v2"):
		if hp, ok := obj["hostPort"].(string); ok {
			host, port, _ := strings.Cut(hp, ":")
			obj["host"], obj["port"] = host, port
			delete(obj, "hostPort")
		}
	case strings.HasSuffix(from, "/v2") && strings.HasSuffix(to, "/v1"):
		if host, ok := obj["host"].(string); ok {
			obj["hostPort"] = host + ":" + fmt.Sprint(obj["port"])
			delete(obj, "host")
			delete(obj, "port")
		}
	}
	obj["apiVersion"] = to
}

// Handler answers a review: it changes objs, the request's objects decoded, in place
// and returns nil (a success with them), or returns a response of its own.
type Handler func(req *apiextensionsv1.ConversionRequest, objs []map[string]any) *apiextensionsv1.ConversionResponse

// Server is a TLS conversion webhook that keeps the requests it got.
type Server struct {
	Server *httptest.Server
	// CABundle is the PEM of the server's certificate, a CRD's caBundle.
	CABundle []byte

	mu       sync.Mutex
	got      []*apiextensionsv1.ConversionRequest
	versions []string // each review's apiVersion
}

// Serve serves handlers, by path, until the test ends.
func Serve(t testing.TB, handlers map[string]Handler) *Server {
	cs := &Server{}
	mux := http.NewServeMux()
	for path, h := range handlers {
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			var rev apiextensionsv1.ConversionReview
			if err := json.NewDecoder(r.Body).Decode(&rev); err != nil || rev.Request == nil {
				http.Error(w, fmt.Sprintf("bad review: %v", err), http.StatusBadRequest)
				return
			}
			cs.mu.Lock()
			cs.got = append(cs.got, rev.Request)
			cs.versions = append(cs.versions, rev.APIVersion)
			cs.mu.Unlock()
			objs := make([]map[string]any, len(rev.Request.Objects))
			for i, o := range rev.Request.Objects {
				if err := json.Unmarshal(o.Raw, &objs[i]); err != nil {
					http.Error(w, fmt.Sprintf("bad object %d: %v", i, err), http.StatusBadRequest)
					return
				}
			}
			resp := h(rev.Request, objs)
			if resp == nil {
				resp = &apiextensionsv1.ConversionResponse{UID: rev.Request.UID, Result: metav1.Status{Status: metav1.StatusSuccess}}
				for _, o := range objs {
					b, _ := json.Marshal(o)
					resp.ConvertedObjects = append(resp.ConvertedObjects, runtime.RawExtension{Raw: b})
				}
			}
			rev.Request, rev.Response = nil, resp
			json.NewEncoder(w).Encode(&rev)
		})
	}
	cs.Server = httptest.NewTLSServer(mux)
	cs.CABundle = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cs.Server.Certificate().Raw})
	t.Cleanup(cs.Server.Close)
	return cs
}

// Requests are the reviews' requests the server got, in order.
func (cs *Server) Requests() []*apiextensionsv1.ConversionRequest {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]*apiextensionsv1.ConversionRequest(nil), cs.got...)
}

// ReviewVersions are the apiVersions of the reviews the server got, in order.
func (cs *Server) ReviewVersions() []string {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return append([]string(nil), cs.versions...)
}
