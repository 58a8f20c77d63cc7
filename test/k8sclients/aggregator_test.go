package k8sclients

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/skiffhq/skiff/test/waitfor"
)

// TestKubectlAggregatedAPI: kubectl finds an aggregated API (an APIService naming a
// Service, its extension server on an address of this machine's) in discovery and gets
// its resources through Skiff, as it gets metrics-server's or the sample-apiserver's.
func TestKubectlAggregatedAPI(t *testing.T) {
	ip := ""
	if addrs, err := net.InterfaceAddrs(); err == nil {
		for _, a := range addrs {
			if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
				ip = n.IP.String()
				break
			}
		}
	}
	if ip == "" {
		t.Skip("no IPv4 address of this machine's but loopback for an endpoint (an EndpointSlice's may not be loopback)")
	}
	caPEM, cert := servingCert(t, "wardle test CA", "api", "api.wardle.svc")
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/apis/wardle.example.com/v1alpha1", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(&metav1.APIResourceList{TypeMeta: metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: "wardle.example.com/v1alpha1", APIResources: []metav1.APIResource{{Name: "flunders", SingularName: "flunder",
				Namespaced: true, Kind: "Flunder", Verbs: metav1.Verbs{"get", "list"}}}})
	})
	mux.HandleFunc("/apis/wardle.example.com/v1alpha1/namespaces/default/flunders", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if !strings.Contains(r.Header.Get("Accept"), "as=Table") {
			fmt.Fprint(w, `{"apiVersion":"wardle.example.com/v1alpha1","kind":"FlunderList","metadata":{},"items":[{"apiVersion":"wardle.example.com/v1alpha1","kind":"Flunder","metadata":{"name":"one","namespace":"default"}}]}`)
			return
		}
		json.NewEncoder(w).Encode(&metav1.Table{TypeMeta: metav1.TypeMeta{Kind: "Table", APIVersion: "meta.k8s.io/v1"},
			ColumnDefinitions: []metav1.TableColumnDefinition{{Name: "Name", Type: "string", Format: "name"}, {Name: "Seen By", Type: "string"}},
			Rows:              []metav1.TableRow{{Cells: []any{"one", r.Header.Get("X-Remote-User")}}}})
	})
	srv := &http.Server{Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	port := ln.Addr().(*net.TCPAddr).Port

	s := startSkiff(t)
	manifest := fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: wardle
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: wardle
spec:
  ports:
  - name: https
    port: 443
    targetPort: %[1]d
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata:
  name: api-1
  namespace: wardle
  labels:
    kubernetes.io/service-name: api
addressType: IPv4
endpoints:
- addresses: ["%[2]s"]
  conditions: {ready: true}
ports:
- name: https
  port: %[1]d
  protocol: TCP
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata:
  name: v1alpha1.wardle.example.com
spec:
  group: wardle.example.com
  version: v1alpha1
  groupPriorityMinimum: 2000
  versionPriority: 200
  caBundle: %[3]s
  service:
    namespace: wardle
    name: api
`, port, ip, base64.StdEncoding.EncodeToString(caPEM))
	if _, err := s.runEnv(nil, manifest, "apply", "-f", "-"); err != nil {
		t.Fatal(err)
	}
	waitfor.Condition(t, 2*time.Minute, "the APIService Available", func() (bool, string) {
		out, err := s.run("get", "apiservice", "v1alpha1.wardle.example.com", "-o", `jsonpath={.status.conditions[?(@.type=="Available")].status}`)
		return err == nil && out == "True", fmt.Sprint(out, err)
	})
	s.wantOut(`(?m)^flunders\s+wardle.example.com/v1alpha1\s+true\s+Flunder$`, "api-resources", "--api-group=wardle.example.com")
	s.wantOut(`(?m)^NAME\s+SEEN BY\none\s+admin$`, "get", "flunders")
	s.wantOut(`(?m)^v1alpha1.wardle.example.com\s+wardle/api\s+True\s+`, "get", "apiservice", "v1alpha1.wardle.example.com")
}
